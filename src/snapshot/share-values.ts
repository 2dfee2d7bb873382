/**
 * A snapshot that arrives as JSON (from the control plane, or from the child process that builds
 * it from files) holds a fresh copy of every string: a cluster's name three times per registry
 * entry, the same file name in every origin. Walking it once and keeping one copy of each distinct
 * string cuts its heap by about a fifth at 10,000 ServiceEntries; the walk costs a few ms.
 */

/** Makes equal strings in freshly parsed JSON data one string, in place; returns the same value. */
export function shareStrings<T>(value: T): T {
  const seen = new Map<string, string>();
  const one = (s: string): string => {
    const kept = seen.get(s);
    if (kept !== undefined) return kept;
    seen.set(s, s);
    return s;
  };
  const walk = (v: unknown): void => {
    if (Array.isArray(v)) {
      for (let i = 0; i < v.length; i++) {
        const x: unknown = v[i];
        if (typeof x === 'string') v[i] = one(x);
        else if (typeof x === 'object' && x !== null) walk(x);
      }
      return;
    }
    const o = v as Record<string, unknown>;
    for (const k of Object.keys(o)) {
      const x = o[k];
      if (typeof x === 'string') o[k] = one(x);
      else if (typeof x === 'object' && x !== null) walk(x);
    }
  };
  if (typeof value === 'object' && value !== null) walk(value);
  return value;
}
