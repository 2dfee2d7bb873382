/**
 * Request path normalization, applied once per request; the result is what routing matches AND
 * what is forwarded upstream, so the two can never disagree (GUIDE §5 A).
 *
 * Input: the path part of an origin-form target as the strict parser accepted it (RFC 3986
 * pchar and "/" only, every "%" followed by two hex digits). Steps (RFC 3986 §6.2.2, as Envoy's
 * `normalize_path` does):
 *   1. %XX that encodes an unreserved character (ALPHA DIGIT - . _ ~) is decoded ("%41" -> "A",
 *      "%2e" -> "."); every other escape gets upper-case hex ("%3a" -> "%3A").
 *   2. An escaped "/" or "\" (%2F, %5C) is rejected (policy 'reject', the default) or kept as the
 *      escape (policy 'keep'); it is never decoded, so it never becomes a segment separator.
 *   3. Dot segments are removed ("/a/./b/../c" -> "/a/c"); "/.." at the root stays at the root.
 * Not done: merging "//" (Istio's default BASE normalization keeps it), touching the query.
 * Fast path: a path without "%" and without "/." is returned as is (no allocation).
 */
import { HEX } from './chars.js';
import type { EncodedSlashPolicy } from './options.js';

/** Result when the path has an encoded slash and the policy rejects it. */
export const ENCODED_SLASH = null;

const UNRESERVED = new Uint8Array(128);
for (let c = 0x30; c <= 0x39; c++) UNRESERVED[c] = 1;
for (let c = 0x41; c <= 0x5a; c++) UNRESERVED[c] = 1;
for (let c = 0x61; c <= 0x7a; c++) UNRESERVED[c] = 1;
UNRESERVED[0x2d] = 1; // -
UNRESERVED[0x2e] = 1; // .
UNRESERVED[0x5f] = 1; // _
UNRESERVED[0x7e] = 1; // ~

const HEX_UPPER = '0123456789ABCDEF';

/** Normalizes `path` (no query). Returns the normalized path, or null (ENCODED_SLASH) when rejected. */
export function normalizePath(path: string, encodedSlash: EncodedSlashPolicy): string | null {
  const hasPct = path.indexOf('%') >= 0;
  if (!hasPct && path.indexOf('/.') < 0) return path;
  let p = path;
  if (hasPct) {
    const d = decodeUnreserved(path, encodedSlash);
    if (d === null) return null;
    p = d;
  }
  return p.indexOf('/.') >= 0 ? removeDotSegments(p) : p;
}

function decodeUnreserved(path: string, encodedSlash: EncodedSlashPolicy): string | null {
  let out = '';
  let from = 0;
  for (let i = path.indexOf('%'); i >= 0; i = path.indexOf('%', i + 3)) {
    const hi = HEX[path.charCodeAt(i + 1)] ?? -1;
    const lo = HEX[path.charCodeAt(i + 2)] ?? -1;
    if (hi < 0 || lo < 0) continue; // cannot happen after the parser; left as is
    const byte = hi * 16 + lo;
    if (byte === 0x2f || byte === 0x5c) {
      if (encodedSlash === 'reject') return null;
    }
    out += path.slice(from, i);
    out += byte < 128 && UNRESERVED[byte] === 1 ? String.fromCharCode(byte) : '%' + HEX_UPPER[hi]! + HEX_UPPER[lo]!;
    from = i + 3;
  }
  return out + path.slice(from);
}

/** RFC 3986 §5.2.4 for an absolute path (starts with "/"). */
export function removeDotSegments(p: string): string {
  const segs = p.split('/');
  const out: string[] = [];
  const last = segs.length - 1;
  for (let i = 1; i <= last; i++) {
    const s = segs[i]!;
    if (s === '.') {
      if (i === last) out.push('');
      continue;
    }
    if (s === '..') {
      out.pop();
      if (i === last) out.push('');
      continue;
    }
    out.push(s);
  }
  return '/' + out.join('/');
}
