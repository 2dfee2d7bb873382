/**
 * `--set key=value` for `tollgate manifest generate`: each profile declares its keys with a default
 * and a one-line meaning; an unknown key or a bad value is a usage error that lists what is allowed.
 */
export interface ValueSpec {
  readonly default: string;
  readonly help: string;
  /** Returns an error message, or undefined when the value is acceptable. */
  readonly check?: (v: string) => string | undefined;
}

export type ValueSpecs = Readonly<Record<string, ValueSpec>>;

export class Values {
  constructor(private readonly specs: ValueSpecs, private readonly set: ReadonlyMap<string, string>) {}

  get(key: string): string {
    const spec = this.specs[key];
    if (!spec) throw new Error(`internal: value "${key}" is not declared`);
    return this.set.get(key) ?? spec.default;
  }

  int(key: string): number {
    return Number(this.get(key));
  }

  bool(key: string): boolean {
    return this.get(key) === 'true';
  }

  /** Comma-separated list; empty entries dropped. */
  list(key: string): string[] {
    return this.get(key).split(',').map((s) => s.trim()).filter(Boolean);
  }
}

/** Parses `key=value` assignments against the specs; throws an Error whose message is for the user. */
export function parseValues(specs: ValueSpecs, assignments: readonly string[], profile: string): Values {
  const set = new Map<string, string>();
  for (const a of assignments) {
    const eq = a.indexOf('=');
    if (eq <= 0) throw new Error(`--set ${a}: expected key=value`);
    const key = a.slice(0, eq);
    const value = a.slice(eq + 1);
    const spec = specs[key];
    if (!spec) throw new Error(`--set ${key}: not a setting of profile ${profile}; its settings are: ${Object.keys(specs).join(', ')}`);
    const problem = spec.check?.(value);
    if (problem) throw new Error(`--set ${key}=${value}: ${problem}`);
    set.set(key, value);
  }
  return new Values(specs, set);
}

export const isInt = (min: number, max: number) => (v: string): string | undefined =>
  /^\d+$/.test(v) && Number(v) >= min && Number(v) <= max ? undefined : `must be a whole number from ${min} to ${max}`;
export const oneOf = (...allowed: string[]) => (v: string): string | undefined => (allowed.includes(v) ? undefined : `must be one of ${allowed.join(', ')}`);
export const isBool = oneOf('true', 'false');
export const QUANTITY = (v: string): string | undefined => (/^\d+(\.\d+)?(m|Ki|Mi|Gi)?$/.test(v) ? undefined : 'must be a Kubernetes quantity such as 100m, 128Mi');
export const DNS_LABEL = (v: string): string | undefined => (/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(v) ? undefined : 'must be a DNS label (lower case letters, digits, -)');
