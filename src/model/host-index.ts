/**
 * Host lookup with Istio/Envoy wildcard semantics over many registered patterns: exact names win
 * over `*.suffix` (longest suffix first), which win over `*`. Lookup cost is bounded by the number
 * of labels in the looked-up name, not by the number of patterns. Unlike net/hostname's
 * HostMatcher (one value per pattern, for routing), this keeps every value: several registry
 * services may declare the same host, and the model must see them all.
 */
export class HostIndex<T> {
  private readonly exact = new Map<string, T[]>();
  /** Keyed by the suffix after `*` (e.g. ".kmcert.com"). */
  private readonly wildcard = new Map<string, T[]>();
  private readonly any: T[] = [];

  add(pattern: string, value: T): void {
    const p = pattern.toLowerCase();
    if (p === '*') this.any.push(value);
    else if (p.startsWith('*.')) push(this.wildcard, p.slice(1), value);
    else push(this.exact, p, value);
  }

  /** All values for the best-matching pattern class, most specific first. */
  lookupAll(host: string): T[] {
    const h = host.toLowerCase().replace(/\.$/, '');
    const out: T[] = [...(this.exact.get(h) ?? [])];
    for (let i = h.indexOf('.'); i >= 0; i = h.indexOf('.', i + 1)) {
      const vs = this.wildcard.get(h.slice(i));
      if (vs) out.push(...vs);
    }
    out.push(...this.any);
    return out;
  }

  lookup(host: string): T | undefined {
    return this.lookupAll(host)[0];
  }
}

function push<T>(m: Map<string, T[]>, k: string, v: T): void {
  const list = m.get(k);
  if (list) list.push(v);
  else m.set(k, [v]);
}
