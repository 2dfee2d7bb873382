/**
 * A small declarative schema language for Kubernetes-style objects. Validation walks the plain JS
 * value, and every finding names the exact field path (`spec.ports[1].protocol`) so the caller can
 * turn it into file:line. Unknown fields are reported, never dropped silently.
 */
import { isIP } from 'node:net';
import { nearest } from '../suggest.js';

export type Schema =
  | { readonly t: 'string'; readonly enum?: readonly string[]; readonly check?: (s: string) => string | undefined }
  | { readonly t: 'int'; readonly min?: number; readonly max?: number }
  | { readonly t: 'number' }
  | { readonly t: 'bool' }
  | { readonly t: 'duration' }
  | { readonly t: 'intOrString' }
  | { readonly t: 'object'; readonly fields: Readonly<Record<string, Schema>>; readonly required?: readonly string[]; readonly open?: boolean }
  | { readonly t: 'map'; readonly values: Schema; readonly keyCheck?: (k: string) => string | undefined }
  | { readonly t: 'array'; readonly items: Schema; readonly minItems?: number }
  | { readonly t: 'any' };

export interface Finding {
  readonly path: readonly (string | number)[];
  readonly severity: 'error' | 'warning';
  readonly code: string;
  readonly message: string;
}

// Builders keep the per-kind schema files short and readable.
export const str = (check?: (s: string) => string | undefined): Schema => (check ? { t: 'string', check } : { t: 'string' });
export const oneOf = (...values: string[]): Schema => ({ t: 'string', enum: values });
export const int = (min?: number, max?: number): Schema => ({ t: 'int', ...(min === undefined ? {} : { min }), ...(max === undefined ? {} : { max }) });
export const num: Schema = { t: 'number' };
export const bool: Schema = { t: 'bool' };
export const duration: Schema = { t: 'duration' };
export const intOrString: Schema = { t: 'intOrString' };
export const any: Schema = { t: 'any' };
export const arr = (items: Schema, minItems?: number): Schema => (minItems === undefined ? { t: 'array', items } : { t: 'array', items, minItems });
export const map = (values: Schema, keyCheck?: (k: string) => string | undefined): Schema => (keyCheck ? { t: 'map', values, keyCheck } : { t: 'map', values });
export const obj = (fields: Record<string, Schema>, required: string[] = []): Schema => ({ t: 'object', fields, required });
/** An object whose listed fields are validated but whose other fields are accepted without a word. */
export const openObj = (fields: Record<string, Schema>, required: string[] = []): Schema => ({ t: 'object', fields, required, open: true });
export const stringMap: Schema = map({ t: 'string' });

export const port = int(1, 65535);
export const ip = str((s) => (isIP(s) ? undefined : 'is not an IP address'));
export const cidr = str(checkCidr);
export const ipOrCidr = str((s) => (s.includes('/') ? checkCidr(s) : isIP(s) ? undefined : 'is not an IP address or CIDR'));

export function checkCidr(s: string): string | undefined {
  const slash = s.indexOf('/');
  const addr = slash < 0 ? s : s.slice(0, slash);
  const fam = isIP(addr);
  if (fam === 0) return 'is not a CIDR (address/prefix)';
  if (slash < 0) return undefined;
  const bits = s.slice(slash + 1);
  if (!/^\d{1,3}$/.test(bits) || Number(bits) > (fam === 4 ? 32 : 128)) return `has an invalid prefix length "${bits}"`;
  return undefined;
}

// The micro sign as \u00b5: V8 holds a source text with any non-ASCII character (here: a whole
// bundle chunk) at two bytes per character, and scripts/bundle.mjs refuses such output.
const DURATION = /^(?:\d+(?:\.\d+)?(?:h|m|s|ms|us|\u00b5s|ns))+$/;

/** Parses a Go/protobuf style duration ("5s", "1.5s", "100ms", "1m30s") into milliseconds. */
export function parseDurationMs(s: string): number | undefined {
  if (!DURATION.test(s)) return undefined;
  const unit: Record<string, number> = { h: 3_600_000, m: 60_000, s: 1000, ms: 1, us: 0.001, '\u00b5s': 0.001, ns: 0.000001 };
  let total = 0;
  for (const m of s.matchAll(/(\d+(?:\.\d+)?)(h|ms|m|s|us|\u00b5s|ns)/g)) total += Number(m[1]) * (unit[m[2] ?? 's'] ?? 0);
  return total;
}

export function formatPath(path: readonly (string | number)[]): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out ? `.${p}` : p;
  return out;
}

function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'an object';
  return `${typeof v} ${JSON.stringify(v)}`;
}

export function validate(value: unknown, schema: Schema, path: (string | number)[] = [], out: Finding[] = []): Finding[] {
  const err = (message: string, code = 'TG_CONFIG_INVALID'): void => {
    out.push({ path: [...path], severity: 'error', code, message: `${formatPath(path)} ${message}` });
  };
  switch (schema.t) {
    case 'any':
      return out;
    case 'string': {
      if (typeof value !== 'string') {
        // YAML turns `version: 1.0` into a number; Kubernetes would reject it, so do we.
        err(`must be a string, got ${typeName(value)}`);
        return out;
      }
      if (schema.enum && !schema.enum.includes(value)) err(`${JSON.stringify(value)} is not one of ${schema.enum.join(', ')}`);
      const problem = schema.check?.(value);
      if (problem) err(`${JSON.stringify(value)} ${problem}`);
      return out;
    }
    case 'int': {
      if (typeof value !== 'number' || !Number.isInteger(value)) {
        err(`must be an integer, got ${typeName(value)}`);
        return out;
      }
      if (schema.min !== undefined && value < schema.min) err(`${value} is below the minimum ${schema.min}`);
      if (schema.max !== undefined && value > schema.max) err(`${value} is above the maximum ${schema.max}`);
      return out;
    }
    case 'number':
      if (typeof value !== 'number') err(`must be a number, got ${typeName(value)}`);
      return out;
    case 'bool':
      if (typeof value !== 'boolean') err(`must be true or false, got ${typeName(value)}`);
      return out;
    case 'duration':
      if (typeof value !== 'string' || parseDurationMs(value) === undefined) err(`must be a duration such as "5s" or "250ms", got ${typeName(value)}`);
      return out;
    case 'intOrString':
      if (typeof value !== 'string' && !(typeof value === 'number' && Number.isInteger(value))) err(`must be an integer or a string, got ${typeName(value)}`);
      return out;
    case 'array': {
      if (!Array.isArray(value)) {
        err(`must be a list, got ${typeName(value)}`);
        return out;
      }
      if (schema.minItems !== undefined && value.length < schema.minItems) err(`must have at least ${schema.minItems} item(s)`);
      value.forEach((item, i) => validate(item, schema.items, [...path, i], out));
      return out;
    }
    case 'map': {
      if (value === null || typeof value !== 'object' || Array.isArray(value)) {
        err(`must be a map, got ${typeName(value)}`);
        return out;
      }
      for (const [k, v] of Object.entries(value)) {
        const problem = schema.keyCheck?.(k);
        if (problem) out.push({ path: [...path, k], severity: 'error', code: 'TG_CONFIG_INVALID', message: `${formatPath([...path, k])}: key ${problem}` });
        validate(v, schema.values, [...path, k], out);
      }
      return out;
    }
    case 'object': {
      if (value === null || typeof value !== 'object' || Array.isArray(value)) {
        err(`must be an object, got ${typeName(value)}`);
        return out;
      }
      const rec = value as Record<string, unknown>;
      for (const r of schema.required ?? []) {
        if (rec[r] === undefined || rec[r] === null) {
          out.push({ path: [...path], severity: 'error', code: 'TG_CONFIG_REQUIRED', message: `${formatPath([...path, r])} is required` });
        }
      }
      for (const [k, v] of Object.entries(rec)) {
        const fieldSchema = schema.fields[k];
        if (fieldSchema) {
          if (v !== null) validate(v, fieldSchema, [...path, k], out);
        } else if (!schema.open) {
          // A near miss of a field we know is a typo whose intent is lost silently otherwise: an error.
          const near = nearest(k, Object.keys(schema.fields));
          out.push(near !== undefined
            ? { path: [...path, k], severity: 'error', code: 'TG_CONFIG_UNKNOWN_FIELD', message: `${formatPath([...path, k])} is not a known field; did you mean "${near}"?` }
            : { path: [...path, k], severity: 'warning', code: 'TG_CONFIG_UNKNOWN_FIELD', message: `${formatPath([...path, k])} is not a known field; it is ignored` });
        }
      }
      return out;
    }
  }
}
