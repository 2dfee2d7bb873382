/**
 * Request normalisation, applied once per request before routing: the result is what the virtual
 * host and route matchers see AND what is forwarded upstream (Host and path), so the proxy, its
 * access log and `trace` all read one spelling of the request.
 *
 * Path, by level (Istio's meshConfig.pathNormalization, same names and order of steps as Envoy):
 *   NONE                       the path as received.
 *   BASE                       RFC 3986 §6.2.2: %XX of an unreserved character (ALPHA DIGIT - . _ ~)
 *                              decoded, other escapes upper-cased ("%3a" -> "%3A"); dot segments
 *                              removed ("/a/./b/../c" -> "/a/c"; "/.." stays at the root).
 *   MERGE_SLASHES              BASE, then runs of "/" merged into one ("//admin" -> "/admin").
 *   DECODE_AND_MERGE_SLASHES   %2F and %5C first decoded to "/" (a backslash is a separator, as
 *                              Envoy's canonicaliser and many servers read it), then MERGE_SLASHES.
 * An escaped slash (%2F, %5C) under the first three levels is rejected (400, policy 'reject', the
 * default) or kept undecoded ('keep'): it never becomes a separator on our side while a server
 * behind that decodes it would read a different path.
 * Fast path: a path with no "%", no "/." and no "//" is returned as is (no allocation).
 */

export type PathNormalization = 'NONE' | 'BASE' | 'MERGE_SLASHES' | 'DECODE_AND_MERGE_SLASHES';
export const PATH_NORMALIZATIONS: readonly PathNormalization[] = ['NONE', 'BASE', 'MERGE_SLASHES', 'DECODE_AND_MERGE_SLASHES'];
/** What a proxy uses when the mesh config does not say (Istio's default is BASE; `//admin` bypasses path rules under it). */
export const DEFAULT_PATH_NORMALIZATION: PathNormalization = 'MERGE_SLASHES';

export type EncodedSlashPolicy = 'reject' | 'keep';

const HEX = new Int8Array(128).fill(-1);
for (let i = 0; i < 10; i++) HEX[0x30 + i] = i;
for (let i = 0; i < 6; i++) {
  HEX[0x41 + i] = 10 + i;
  HEX[0x61 + i] = 10 + i;
}

const UNRESERVED = new Uint8Array(128);
for (let c = 0x30; c <= 0x39; c++) UNRESERVED[c] = 1;
for (let c = 0x41; c <= 0x5a; c++) UNRESERVED[c] = 1;
for (let c = 0x61; c <= 0x7a; c++) UNRESERVED[c] = 1;
UNRESERVED[0x2d] = 1; // -
UNRESERVED[0x2e] = 1; // .
UNRESERVED[0x5f] = 1; // _
UNRESERVED[0x7e] = 1; // ~

const HEX_UPPER = '0123456789ABCDEF';

/**
 * Normalises `path` (no query) at `level`. Returns the normalised path, or null when it carries an
 * escaped slash and the policy rejects it.
 */
export function normalizePath(path: string, level: PathNormalization, encodedSlash: EncodedSlashPolicy): string | null {
  const hasPct = path.indexOf('%') >= 0;
  if (level === 'NONE') return hasPct && encodedSlash === 'reject' && hasEncodedSlash(path) ? null : path;
  const merge = level !== 'BASE';
  if (!hasPct && path.indexOf('/.') < 0 && !(merge && path.indexOf('//') >= 0)) return path;
  let p = path;
  if (hasPct) {
    const d = decodeUnreserved(path, level === 'DECODE_AND_MERGE_SLASHES' ? 'decode' : encodedSlash);
    if (d === null) return null;
    p = d;
  }
  if (p.indexOf('/.') >= 0) p = removeDotSegments(p);
  return merge && p.indexOf('//') >= 0 ? p.replace(/\/{2,}/g, '/') : p;
}

function hasEncodedSlash(path: string): boolean {
  for (let i = path.indexOf('%'); i >= 0; i = path.indexOf('%', i + 1)) {
    const byte = escapedByte(path, i);
    if (byte === 0x2f || byte === 0x5c) return true;
  }
  return false;
}

function escapedByte(path: string, i: number): number {
  const hi = HEX[path.charCodeAt(i + 1)] ?? -1;
  const lo = HEX[path.charCodeAt(i + 2)] ?? -1;
  return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

function decodeUnreserved(path: string, slashes: EncodedSlashPolicy | 'decode'): string | null {
  let out = '';
  let from = 0;
  let i = path.indexOf('%');
  while (i >= 0) {
    const byte = escapedByte(path, i);
    if (byte < 0) {
      // The strict parser never hands one over; left as is.
      i = path.indexOf('%', i + 1);
      continue;
    }
    out += path.slice(from, i);
    from = i + 3;
    i = path.indexOf('%', from);
    if (byte === 0x2f || byte === 0x5c) {
      if (slashes === 'reject') return null;
      if (slashes === 'decode') {
        out += '/';
        continue;
      }
    }
    out += byte < 128 && UNRESERVED[byte] === 1 ? String.fromCharCode(byte) : '%' + HEX_UPPER[byte >> 4]! + HEX_UPPER[byte & 15]!;
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
