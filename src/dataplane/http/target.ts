/**
 * Request-target forms (RFC 9112 §3.2) and authority syntax. Pure string functions, called once per
 * request head. The aim is that routing and ACLs see exactly one authority and one path, both in a
 * syntax with a single reading: no userinfo, no %-encoded or sub-delim host names, no malformed
 * %-escapes or "#" in the path.
 */
import { Buffer } from 'node:buffer';
import { HEX, HOST_CHAR, IPV6_CHAR, PATH_CHAR, QUERY_CHAR } from './chars.js';

export type TargetForm = 'origin' | 'absolute' | 'authority' | 'asterisk';

export interface ParsedTarget {
  readonly form: TargetForm;
  /** Lowercased scheme for absolute-form ('http' | 'https'), else undefined. */
  readonly scheme: string | undefined;
  /** The authority written in the target (absolute- and authority-form), else undefined. */
  readonly authority: string | undefined;
  /** What to send upstream in origin-form: path and query; "*" for asterisk-form, "" for CONNECT. */
  readonly path: string;
}

/**
 * Parses `target` for `method`. Returns the parsed target, or a string describing the fault.
 * `bytes[offset, offset + target.length)` may hold the same latin1 bytes: the path check then reads
 * bytes, which is faster than charCodeAt on a (sliced) string.
 */
export function parseTarget(method: string, target: string, bytes?: Uint8Array, offset = 0): ParsedTarget | string {
  if (bytes === undefined) {
    bytes = Buffer.from(target, 'latin1');
    offset = 0;
  }
  const c0 = target.charCodeAt(0);
  if (method === 'CONNECT') {
    // RFC 9110 §9.3.6: CONNECT takes authority-form only, and the port is required.
    const bad = checkAuthority(target, true);
    if (bad !== undefined) return `CONNECT target ${bad}`;
    return { form: 'authority', scheme: undefined, authority: target, path: '' };
  }
  if (c0 === 0x2f /* / */) {
    const bad = checkPathAndQuery(bytes, offset, offset + target.length);
    return bad ?? { form: 'origin', scheme: undefined, authority: undefined, path: target };
  }
  if (target === '*') {
    if (method !== 'OPTIONS') return 'asterisk-form is only allowed with OPTIONS';
    return { form: 'asterisk', scheme: undefined, authority: undefined, path: '*' };
  }
  return parseAbsolute(target, bytes, offset);
}

function parseAbsolute(target: string, bytes: Uint8Array, offset: number): ParsedTarget | string {
  const colon = target.indexOf('://');
  if (colon <= 0) return 'request-target is not origin-form, absolute-form or asterisk-form';
  const scheme = target.slice(0, colon).toLowerCase();
  // Only http and https: this is an HTTP proxy, and other schemes have other authority rules.
  if (scheme !== 'http' && scheme !== 'https') return `unsupported scheme "${scheme}" in absolute-form`;
  const authStart = colon + 3;
  let authEnd = authStart;
  while (authEnd < target.length) {
    const c = target.charCodeAt(authEnd);
    if (c === 0x2f || c === 0x3f) break; // "/" or "?"
    authEnd++;
  }
  const authority = target.slice(authStart, authEnd);
  const bad = checkAuthority(authority, false);
  if (bad !== undefined) return `absolute-form authority ${bad}`;
  let path = target.slice(authEnd);
  const badPath = checkPathAndQuery(bytes, offset + authEnd, offset + target.length);
  if (badPath !== undefined) return badPath;
  // RFC 9112 §3.2.1: an empty path is sent as "/" in origin-form.
  if (path === '' || path.charCodeAt(0) === 0x3f) path = '/' + path;
  return { form: 'absolute', scheme, authority, path };
}

/** Checks path-abempty [ "?" query ] in b[i, n); undefined when valid. */
function checkPathAndQuery(b: Uint8Array, i: number, n: number): string | undefined {
  for (; i < n; i++) {
    const c = b[i]!;
    if (PATH_CHAR[c] === 1) continue;
    if (c === 0x3f /* ? */) break;
    if (c === 0x25 /* % */) {
      // A malformed escape would be decoded differently by different normalisers: refuse it.
      if (i + 2 >= n || HEX[b[i + 1]!]! < 0 || HEX[b[i + 2]!]! < 0) return 'malformed %-escape in path';
      i += 2;
      continue;
    }
    return `byte 0x${c.toString(16)} not allowed in path`;
  }
  for (i++; i < n; i++) {
    const c = b[i]!;
    if (QUERY_CHAR[c] !== 1) return `byte 0x${c.toString(16)} not allowed in query`;
  }
  return undefined;
}

/**
 * Checks `host [":" port]` where host is an IPv6 literal or a name of RFC 3986 unreserved bytes,
 * and port is 1-65535 without leading zeros. Returns a fault description or undefined.
 */
export function checkAuthority(a: string, requirePort: boolean): string | undefined {
  const n = a.length;
  if (n === 0) return 'is empty';
  let i = 0;
  if (a.charCodeAt(0) === 0x5b /* [ */) {
    i = 1;
    while (i < n && IPV6_CHAR[a.charCodeAt(i)] === 1) i++;
    if (i === 1 || i >= n || a.charCodeAt(i) !== 0x5d /* ] */) return 'has a malformed IP literal';
    i++;
  } else {
    while (i < n && HOST_CHAR[a.charCodeAt(i)] === 1) i++;
    if (i === 0) return 'has an empty host';
  }
  if (i === n) return requirePort ? 'has no port' : undefined;
  if (a.charCodeAt(i) !== 0x3a /* : */) {
    return a.charCodeAt(i) === 0x40 /* @ */ ? 'has userinfo' : `has byte 0x${a.charCodeAt(i).toString(16)} in host`;
  }
  const digits = n - i - 1;
  if (digits < 1 || digits > 5 || a.charCodeAt(i + 1) === 0x30) return 'has a malformed port';
  let port = 0;
  for (i++; i < n; i++) {
    const d = a.charCodeAt(i) - 0x30;
    if (d < 0 || d > 9) return 'has a malformed port';
    port = port * 10 + d;
  }
  return port > 65535 ? 'has a port above 65535' : undefined;
}

/**
 * Whether two (already valid) authorities name the same host and port, ignoring host case. A
 * missing port means `defaultPort`; when that is undefined (CONNECT) a missing port matches any.
 */
export function sameAuthority(a: string, b: string, defaultPort: string | undefined): boolean {
  const pa = portStart(a);
  const pb = portStart(b);
  const hostA = pa < 0 ? a : a.slice(0, pa);
  const hostB = pb < 0 ? b : b.slice(0, pb);
  if (hostA.toLowerCase() !== hostB.toLowerCase()) return false;
  const portA = pa < 0 ? defaultPort : a.slice(pa + 1);
  const portB = pb < 0 ? defaultPort : b.slice(pb + 1);
  return portA === undefined || portB === undefined || portA === portB;
}

function portStart(a: string): number {
  const close = a.lastIndexOf(']');
  const colon = a.lastIndexOf(':');
  return colon > close ? colon : -1;
}

export function defaultPortOf(scheme: string | undefined): string | undefined {
  return scheme === 'https' ? '443' : scheme === 'http' ? '80' : undefined;
}
