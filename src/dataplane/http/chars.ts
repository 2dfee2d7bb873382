/**
 * Byte classes for the HTTP/1.1 grammar (RFC 9110 §5.6, RFC 9112, RFC 3986), as 256-entry lookup
 * tables: the parser tests one byte with one array load instead of a regex or a chain of compares.
 */

export const CR = 0x0d;
export const LF = 0x0a;
export const SP = 0x20;
export const HT = 0x09;
export const COLON = 0x3a;
export const SEMI = 0x3b;
export const EQUALS = 0x3d;
export const DQUOTE = 0x22;
export const BACKSLASH = 0x5c;

function table(pred: (c: number) => boolean): Uint8Array {
  const t = new Uint8Array(256);
  for (let c = 0; c < 256; c++) t[c] = pred(c) ? 1 : 0;
  return t;
}

const isAlpha = (c: number): boolean => (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);
const isDigit = (c: number): boolean => c >= 0x30 && c <= 0x39;
const oneOf = (chars: string) => (c: number): boolean => chars.includes(String.fromCharCode(c));

/** tchar: field names, methods, transfer codings, chunk-extension names and plain values. */
export const TOKEN = table((c) => isAlpha(c) || isDigit(c) || oneOf("!#$%&'*+-.^_`|~")(c));

/** field-vchar / SP / HT: what may appear inside a field value (obs-text 0x80-0xFF included). */
export const FIELD_VALUE = table((c) => c === HT || (c >= 0x20 && c <= 0x7e) || c >= 0x80);

/** qdtext of a quoted-string (RFC 9110 §5.6.4): anything printable but `"` and `\`. */
export const QDTEXT = table((c) => c === HT || c === SP || c === 0x21 || (c >= 0x23 && c <= 0x5b) || (c >= 0x5d && c <= 0x7e) || c >= 0x80);

/** Hex digit value, or -1. */
export const HEX: Int8Array = (() => {
  const t = new Int8Array(256).fill(-1);
  for (let c = 0; c < 10; c++) t[0x30 + c] = c;
  for (let c = 0; c < 6; c++) {
    t[0x41 + c] = 10 + c;
    t[0x61 + c] = 10 + c;
  }
  return t;
})();

/** pchar + "/" (RFC 3986) without "%", which the target parser checks for two hex digits. */
export const PATH_CHAR = table((c) => isAlpha(c) || isDigit(c) || oneOf("-._~!$&'()*+,;=:@/")(c));

/**
 * Query bytes: every visible ASCII byte except "#". RFC 3986 forbids `"<>[\]^`{|}` here but
 * clients send them in queries all the time; the path, which routing and ACLs read, stays strict.
 */
export const QUERY_CHAR = table((c) => c >= 0x21 && c <= 0x7e && c !== 0x23);

/** Bytes allowed in a host name: RFC 3986 unreserved only (no sub-delims, no %-encoding). */
export const HOST_CHAR = table((c) => isAlpha(c) || isDigit(c) || oneOf('-._~')(c));

/** Bytes allowed inside an IP-literal `[...]`: IPv6 addresses only (no IPvFuture, no zone id). */
export const IPV6_CHAR = table((c) => isDigit(c) || oneOf('abcdefABCDEF:.')(c));

/** The name as lowercase ASCII bytes, for case-insensitive compares against raw buffer bytes. */
export function lowerBytes(name: string): Uint8Array {
  return Uint8Array.from(name.toLowerCase(), (ch) => ch.charCodeAt(0));
}

/**
 * True when buf[start..start+lit.length) equals `lit` ignoring ASCII case. Only used on bytes that
 * already passed the TOKEN table, and `lit` holds lowercase letters and "-", so OR-ing 0x20 is exact.
 */
export function equalsLower(buf: Uint8Array, start: number, lit: Uint8Array): boolean {
  for (let i = 0; i < lit.length; i++) {
    if ((buf[start + i]! | 0x20) !== lit[i]) return false;
  }
  return true;
}
