/**
 * Host names as Istio and Envoy match them.
 *
 * - `splitHostPort` splits an authority (`host`, `host:port`, `[v6]:port`) strictly.
 * - `normalizeHost` turns a request host (Host header, CONNECT target, SNI) into the one canonical
 *   string that routing and ACLs compare: lowercase, one trailing dot stripped, IDN converted to
 *   punycode (reported), IP literals in any spelling (including legacy `0x7f000001`, `127.1`)
 *   detected and returned as the address they denote, everything else validated as RFC 1123
 *   labels (plus `_`, see below).
 * - `hostMatches`, `HostMatcher`, `patternsOverlap`: Istio semantics. A pattern is an exact name,
 *   `*` (everything) or `*.suffix` (any name with at least one more label, at any depth, never
 *   `suffix` itself). Precedence: exact, then the longest wildcard suffix, then `*`.
 *
 * Decisions (docs/egress-security.md, "Host normalisation"):
 * - `_` is accepted in labels. Envoy accepts it in SNI and Host, real names carry it
 *   (`_dmarc`, `build_server.corp`), and accepting it cannot widen access: a host still has to equal
 *   a registry entry. Rejecting it would make such a name unreachable rather than safer.
 * - A name whose last label is numeric (`foo.123`, `a.0x1f`) is rejected, as the WHATWG URL parser
 *   does: it is neither a valid DNS name nor an address, and resolvers disagree about it.
 * - IPv6 zone ids are rejected (see ip.ts).
 *
 * All matching functions expect normalized input (the output of `normalizeHost` /
 * `normalizeHostPattern`); they compare strings exactly and do no normalization per call.
 */
import { domainToASCII } from 'node:url';
import { TollgateError } from '../shared/errors.js';
import { formatIp, parseIp, parseLooseIpv4, type Ip } from './ip.js';

export const MAX_HOST_LENGTH = 253;
export const MAX_LABEL_LENGTH = 63;

// ---------------------------------------------------------------------------------------------
// splitHostPort

export type SplitHostPortResult =
  | { readonly ok: true; readonly host: string; readonly port: number; readonly bracketed: boolean }
  | { readonly ok: false; readonly code: string; readonly error: string };

function fail(code: string, error: string): { readonly ok: false; readonly code: string; readonly error: string } {
  return { ok: false, code, error };
}

/** Decimal port 1..65535, no sign, no leading zero. -1 when invalid. */
function parsePort(s: string, start: number): number {
  const len = s.length - start;
  if (len < 1 || len > 5) return -1;
  if (s.charCodeAt(start) === 48) return -1;
  let v = 0;
  for (let i = start; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 48 || c > 57) return -1;
    v = v * 10 + (c - 48);
  }
  return v >= 1 && v <= 65535 ? v : -1;
}

/**
 * Splits an authority into host and port. Accepts `host`, `host:port`, `[v6]` and `[v6]:port`.
 * Rejects: an empty host, an empty/zero/non-decimal/out-of-range port or one with a leading zero,
 * userinfo (`@`), whitespace and control characters, `/ \ ? # %`, stray brackets, and an
 * unbracketed IPv6 address (more than one colon). The host is returned as written (brackets
 * removed); pass it to `normalizeHost`.
 */
export function splitHostPort(authority: string, defaultPort: number): SplitHostPortResult {
  const n = authority.length;
  if (n === 0) return fail('TG_HOST_EMPTY', 'empty authority');
  let colon = -1;
  let colons = 0;
  for (let i = 0; i < n; i++) {
    const c = authority.charCodeAt(i);
    if (c <= 0x20 || c === 0x7f) return fail('TG_HOST_INVALID_CHAR', 'whitespace or control character in authority');
    if (c === 0x40) return fail('TG_HOST_USERINFO', 'userinfo (@) is not allowed in an authority');
    if (c === 0x2f || c === 0x5c || c === 0x3f || c === 0x23 || c === 0x25) {
      return fail('TG_HOST_INVALID_CHAR', `character ${JSON.stringify(authority[i])} is not allowed in an authority`);
    }
    if (c === 0x3a) {
      colons++;
      colon = i;
    }
  }
  if (authority.charCodeAt(0) === 0x5b) {
    const close = authority.indexOf(']');
    if (close < 0) return fail('TG_HOST_BAD_IPV6', 'missing ] in IPv6 literal');
    const host = authority.slice(1, close);
    const ip = parseIp(host);
    if (ip === undefined || ip.family !== 6) return fail('TG_HOST_BAD_IPV6', `invalid IPv6 literal [${host}]`);
    if (close === n - 1) return { ok: true, host, port: defaultPort, bracketed: true };
    if (authority.charCodeAt(close + 1) !== 0x3a) return fail('TG_HOST_INVALID_CHAR', 'unexpected character after ]');
    const port = parsePort(authority, close + 2);
    if (port < 0) return fail('TG_HOST_BAD_PORT', `invalid port ${JSON.stringify(authority.slice(close + 2))}`);
    return { ok: true, host, port, bracketed: true };
  }
  if (authority.indexOf('[') >= 0 || authority.indexOf(']') >= 0) {
    return fail('TG_HOST_INVALID_CHAR', 'brackets are only allowed around an IPv6 literal');
  }
  if (colons > 1) return fail('TG_HOST_BAD_IPV6', 'an IPv6 address in an authority must be bracketed');
  if (colons === 0) return { ok: true, host: authority, port: defaultPort, bracketed: false };
  if (colon === 0) return fail('TG_HOST_EMPTY', 'empty host');
  const port = parsePort(authority, colon + 1);
  if (port < 0) return fail('TG_HOST_BAD_PORT', `invalid port ${JSON.stringify(authority.slice(colon + 1))}`);
  return { ok: true, host: authority.slice(0, colon), port, bracketed: false };
}

// ---------------------------------------------------------------------------------------------
// normalizeHost

export type NormalizedHost =
  | {
      readonly ok: true;
      /** Canonical form: lowercase A-labels without trailing dot, or canonical IP text. */
      readonly host: string;
      /** True when IDNA processing (non-ASCII input) changed the name. */
      readonly converted: boolean;
      /** Set when the host is an IP literal in any spelling. */
      readonly ip?: Ip;
      /** True when `ip` was written in a legacy IPv4 form (`0x7f000001`, `127.1`, `0177.0.0.1`). */
      readonly legacyIp?: boolean;
    }
  | { readonly ok: false; readonly code: string; readonly error: string };

/** 0 = invalid ASCII, 1 = allowed (a-z 0-9 - _ .), 2 = uppercase letter. */
const ASCII_CLASS = new Uint8Array(128);
for (let c = 97; c <= 122; c++) ASCII_CLASS[c] = 1;
for (let c = 48; c <= 57; c++) ASCII_CLASS[c] = 1;
for (let c = 65; c <= 90; c++) ASCII_CLASS[c] = 2;
ASCII_CLASS[45] = 1; // -
ASCII_CLASS[95] = 1; // _
ASCII_CLASS[46] = 1; // .

function isNumericLabel(s: string, start: number, end: number): boolean {
  if (start >= end) return false;
  let i = start;
  if (end - start >= 2 && s.charCodeAt(i) === 48 && (s.charCodeAt(i + 1) | 0x20) === 120) {
    for (i += 2; i < end; i++) {
      const c = s.charCodeAt(i) | 0x20;
      if (!((c >= 48 && c <= 57) || (c >= 97 && c <= 102))) return false;
    }
    return true;
  }
  for (; i < end; i++) {
    const c = s.charCodeAt(i);
    if (c < 48 || c > 57) return false;
  }
  return true;
}

/** Validates lowercase ASCII labels. Returns an error result or undefined when valid. */
function checkLabels(h: string): NormalizedHost | undefined {
  if (h.length > MAX_HOST_LENGTH) return fail('TG_HOST_TOO_LONG', `host name longer than ${MAX_HOST_LENGTH} characters`);
  let start = 0;
  let lastStart = 0;
  for (let i = 0; i <= h.length; i++) {
    if (i !== h.length && h.charCodeAt(i) !== 46) continue;
    const len = i - start;
    if (len === 0) return fail('TG_HOST_EMPTY_LABEL', 'empty label in host name');
    if (len > MAX_LABEL_LENGTH) return fail('TG_HOST_LABEL_TOO_LONG', `label longer than ${MAX_LABEL_LENGTH} characters`);
    if (h.charCodeAt(start) === 45 || h.charCodeAt(i - 1) === 45) {
      return fail('TG_HOST_BAD_HYPHEN', 'a label must not start or end with "-"');
    }
    lastStart = start;
    start = i + 1;
  }
  if (isNumericLabel(h, lastStart, h.length)) {
    return fail('TG_HOST_NUMERIC_TLD', 'the last label of a host name must not be numeric');
  }
  return undefined;
}

function ipResult(ip: Ip, written: string, converted: boolean): NormalizedHost {
  const host = formatIp(ip);
  return { ok: true, host, converted, ip, legacyIp: ip.family === 4 && host !== written };
}

/**
 * Normalizes a request host. See the module comment for the rules. Accepts a bracketed IPv6
 * literal too. Never calls a resolver.
 */
export function normalizeHost(input: string): NormalizedHost {
  let h = input;
  const n = h.length;
  if (n === 0) return fail('TG_HOST_EMPTY', 'empty host');
  if (n > 1024) return fail('TG_HOST_TOO_LONG', 'host name longer than 1024 characters');
  if (h.indexOf(':') >= 0) {
    if (h.charCodeAt(0) === 0x5b && h.charCodeAt(n - 1) === 0x5d) h = h.slice(1, n - 1);
    const ip = parseIp(h);
    if (ip === undefined || ip.family !== 6) return fail('TG_HOST_BAD_IPV6', `invalid IPv6 literal ${JSON.stringify(input)}`);
    return { ok: true, host: formatIp(ip), converted: false, ip };
  }
  let upper = false;
  let nonAscii = false;
  for (let i = 0; i < n; i++) {
    const c = h.charCodeAt(i);
    if (c >= 128) {
      nonAscii = true;
      continue;
    }
    const k = ASCII_CLASS[c];
    if (k === 0) return fail('TG_HOST_INVALID_CHAR', `character ${JSON.stringify(h[i])} is not allowed in a host name`);
    if (k === 2) upper = true;
  }
  let converted = false;
  if (nonAscii) {
    // Only reached when every ASCII character is a name character: domainToASCII parses its input
    // as a URL host and would silently cut 'a/b.com' to 'a', so it never sees delimiters.
    const ascii = domainToASCII(h);
    if (ascii === '') return fail('TG_HOST_IDNA', `host ${JSON.stringify(input)} is not a valid internationalized name`);
    for (let i = 0; i < ascii.length; i++) {
      const c = ascii.charCodeAt(i);
      if (c >= 128 || ASCII_CLASS[c] !== 1) {
        return fail('TG_HOST_IDNA', `host ${JSON.stringify(input)} converts to invalid name ${JSON.stringify(ascii)}`);
      }
    }
    h = ascii;
    converted = true;
  } else if (upper) {
    h = h.toLowerCase();
  }
  if (h.charCodeAt(h.length - 1) === 46) h = h.slice(0, -1);
  if (h.length === 0) return fail('TG_HOST_EMPTY', 'empty host');
  const c0 = h.charCodeAt(0);
  if (c0 >= 48 && c0 <= 57) {
    const ip = parseLooseIpv4(h);
    if (ip !== undefined) return ipResult(ip, h, converted);
  }
  const err = checkLabels(h);
  if (err !== undefined) return err;
  return { ok: true, host: h, converted };
}

export type NormalizedPattern =
  | { readonly ok: true; readonly pattern: string; readonly converted: boolean }
  | { readonly ok: false; readonly code: string; readonly error: string };

/**
 * Normalizes a host pattern from config: `*`, `*.suffix` or an exact host (an IP is allowed as an
 * exact host, as in ServiceEntry). The `*` may only be a whole leftmost label.
 */
export function normalizeHostPattern(p: string): NormalizedPattern {
  if (p === '*') return { ok: true, pattern: '*', converted: false };
  let prefix = '';
  let rest = p;
  if (p.startsWith('*.')) {
    prefix = '*.';
    rest = p.slice(2);
  }
  if (rest.indexOf('*') >= 0) {
    return fail('TG_HOST_BAD_PATTERN', `wildcard ${JSON.stringify(p)} must be "*" or start with "*." and contain no other "*"`);
  }
  const r = normalizeHost(rest);
  if (!r.ok) return r;
  if (prefix !== '' && r.ip !== undefined) {
    return fail('TG_HOST_BAD_PATTERN', `wildcard ${JSON.stringify(p)} must not be applied to an IP address`);
  }
  return { ok: true, pattern: prefix + r.host, converted: r.converted };
}

// ---------------------------------------------------------------------------------------------
// matching

/** True when `p` is `*` or `*.suffix`. */
export function isWildcardPattern(p: string): boolean {
  return p.charCodeAt(0) === 42;
}

/** host ends with p[1..] (".suffix") and has at least one character before it. */
function endsWithSuffix(host: string, p: string): boolean {
  const sl = p.length - 1;
  const off = host.length - sl;
  if (off < 1) return false;
  for (let i = 0; i < sl; i++) {
    if (host.charCodeAt(off + i) !== p.charCodeAt(i + 1)) return false;
  }
  return true;
}

/**
 * Istio host matching of one normalized host against one normalized pattern: exact, `*`
 * (everything), `*.example.com` (any subdomain at any depth, never `example.com` itself).
 */
export function hostMatches(pattern: string, host: string): boolean {
  if (pattern.charCodeAt(0) !== 42) return pattern === host;
  if (pattern.length === 1) return true;
  if (pattern.charCodeAt(1) !== 46) return false;
  return endsWithSuffix(host, pattern);
}

/**
 * Whether two patterns can match a common host (Istio's `host.Name.Matches`): used by analyze to
 * intersect Gateway hosts with VirtualService hosts. Symmetric.
 */
export function patternsOverlap(a: string, b: string): boolean {
  const aw = isWildcardPattern(a);
  const bw = isWildcardPattern(b);
  if (aw && bw) return a.length < b.length ? b.endsWith(a.slice(1)) : a.endsWith(b.slice(1));
  if (aw) return hostMatches(a, b);
  if (bw) return hostMatches(b, a);
  return a === b;
}

/**
 * The narrower of two overlapping patterns (what a host must match to match both), or undefined
 * when they do not overlap. `*.a.com` ∩ `*.b.a.com` = `*.b.a.com`; `*.a.com` ∩ `x.a.com` = `x.a.com`.
 */
export function patternIntersection(a: string, b: string): string | undefined {
  if (!patternsOverlap(a, b)) return undefined;
  const aw = isWildcardPattern(a);
  const bw = isWildcardPattern(b);
  if (aw && bw) return a.length >= b.length ? a : b;
  if (aw) return b;
  return a;
}

export interface HostMatch<T> {
  /** The normalized pattern that matched. */
  readonly pattern: string;
  readonly value: T;
}

/**
 * Many patterns compiled once; `lookup` picks exact over longest wildcard over `*`.
 *
 * Wildcards are indexed by their suffix (`*.example.com` under `example.com`), so a lookup costs
 * one exact-map probe plus one probe per dot in the host (longest suffix first), independent of
 * the number of patterns. Patterns are normalized on construction (invalid ones throw
 * TG_HOST_BAD_PATTERN); when two patterns normalize to the same string the first one wins and the
 * later one is listed in `duplicates`. Hosts given to `lookup` must already be normalized.
 */
export class HostMatcher<T> {
  private readonly exact = new Map<string, HostMatch<T>>();
  private readonly suffixes = new Map<string, HostMatch<T>>();
  private readonly catchAll: HostMatch<T> | undefined;
  readonly duplicates: readonly string[];
  readonly size: number;

  constructor(entries: Iterable<readonly [pattern: string, value: T]>) {
    const duplicates: string[] = [];
    let catchAll: HostMatch<T> | undefined;
    let size = 0;
    for (const [raw, value] of entries) {
      const r = normalizeHostPattern(raw);
      if (!r.ok) throw new TollgateError('TG_HOST_BAD_PATTERN', `invalid host pattern ${JSON.stringify(raw)}: ${r.error}`, { source: 'config' });
      const pattern = r.pattern;
      const entry: HostMatch<T> = Object.freeze({ pattern, value });
      let map: Map<string, HostMatch<T>> | undefined;
      let key = pattern;
      if (pattern === '*') {
        if (catchAll !== undefined) { duplicates.push(raw); continue; }
        catchAll = entry;
        size++;
        continue;
      } else if (pattern.charCodeAt(0) === 42) {
        map = this.suffixes;
        key = pattern.slice(2);
      } else {
        map = this.exact;
      }
      if (map.has(key)) { duplicates.push(raw); continue; }
      map.set(key, entry);
      size++;
    }
    this.catchAll = catchAll;
    this.duplicates = duplicates;
    this.size = size;
  }

  /** The winning entry for a normalized host, or undefined. Allocates only substrings. */
  match(host: string): HostMatch<T> | undefined {
    const e = this.exact.get(host);
    if (e !== undefined) return e;
    if (this.suffixes.size !== 0) {
      // Start after the first character so the wildcard label is never empty.
      for (let i = host.indexOf('.', 1); i >= 0; i = host.indexOf('.', i + 1)) {
        const w = this.suffixes.get(host.slice(i + 1));
        if (w !== undefined) return w;
      }
    }
    return this.catchAll;
  }

  lookup(host: string): T | undefined {
    return this.match(host)?.value;
  }
}
