/**
 * IP addresses, CIDRs, address classes and the SSRF guard.
 *
 * Representation (chosen for cheap contains-checks and classification, no allocation on the hot
 * path): an IPv4 address is one unsigned 32-bit number; an IPv6 address is four unsigned 32-bit
 * words, most significant first. A CIDR carries its (already masked) base and mask in the same
 * shape, so `cidrContains` is one AND + compare per word.
 *
 * Parsing is strict (see docs/egress-security.md):
 * - `parseIp` accepts only canonical dotted-quad IPv4 (no leading zeros, no octal/hex, exactly four
 *   parts) and every RFC 4291 IPv6 text form (full, `::`-compressed, embedded dotted quad, any case).
 *   IPv6 zone ids (`fe80::1%eth0`) are REJECTED: a zone only makes sense for link-local addresses,
 *   which the gateway never dials, and stripping it silently would hide a smuggling attempt.
 *   Brackets are not part of an address; `splitHostPort` (hostname.ts) removes them.
 * - `parseLooseIpv4` recognises the legacy forms that `inet_aton`/getaddrinfo and the WHATWG URL
 *   parser accept (`2130706433`, `0x7f000001`, `0177.0.0.1`, `127.1`, `127.0.1`), so a Host header
 *   or SNI spelled that way is treated as the address it denotes, never handed to a resolver.
 */
import { TollgateError } from '../shared/errors.js';

export interface Ipv4 {
  readonly family: 4;
  /** The address as an unsigned 32-bit integer (`127.0.0.1` = 0x7f000001). */
  readonly value: number;
}

export interface Ipv6 {
  readonly family: 6;
  /** Four unsigned 32-bit words, most significant first. */
  readonly w0: number;
  readonly w1: number;
  readonly w2: number;
  readonly w3: number;
}

export type Ip = Ipv4 | Ipv6;

export interface Cidr4 {
  readonly family: 4;
  readonly prefix: number;
  /** Network base, host bits cleared. */
  readonly base: number;
  readonly mask: number;
}

export interface Cidr6 {
  readonly family: 6;
  readonly prefix: number;
  /** Network base words, host bits cleared. */
  readonly b0: number;
  readonly b1: number;
  readonly b2: number;
  readonly b3: number;
  readonly m0: number;
  readonly m1: number;
  readonly m2: number;
  readonly m3: number;
}

export type Cidr = Cidr4 | Cidr6;

// ---------------------------------------------------------------------------------------------
// constructors

export function ipv4(a: number, b: number, c: number, d: number): Ipv4 {
  return { family: 4, value: (((a & 255) << 24) | ((b & 255) << 16) | ((c & 255) << 8) | (d & 255)) >>> 0 };
}

export function ipv6FromWords(w0: number, w1: number, w2: number, w3: number): Ipv6 {
  return { family: 6, w0: w0 >>> 0, w1: w1 >>> 0, w2: w2 >>> 0, w3: w3 >>> 0 };
}

export function ipEquals(a: Ip, b: Ip): boolean {
  if (a.family === 4) return b.family === 4 && a.value === b.value;
  return b.family === 6 && a.w0 === b.w0 && a.w1 === b.w1 && a.w2 === b.w2 && a.w3 === b.w3;
}

// ---------------------------------------------------------------------------------------------
// parsing

const CH_0 = 48;
const CH_9 = 57;
const CH_DOT = 46;
const CH_COLON = 58;

/** Canonical dotted quad over s[start, end) -> uint32, or -1. */
function parseDottedQuad(s: string, start: number, end: number): number {
  let value = 0;
  let parts = 0;
  let i = start;
  while (true) {
    const partStart = i;
    let part = 0;
    while (i < end) {
      const c = s.charCodeAt(i);
      if (c < CH_0 || c > CH_9) break;
      part = part * 10 + (c - CH_0);
      i++;
    }
    const len = i - partStart;
    if (len === 0 || len > 3 || part > 255) return -1;
    if (len > 1 && s.charCodeAt(partStart) === CH_0) return -1; // leading zero: octal in inet_aton
    value = value * 256 + part;
    parts++;
    if (i === end) break;
    if (s.charCodeAt(i) !== CH_DOT || parts === 4) return -1;
    i++;
  }
  return parts === 4 ? value : -1;
}

function hexVal(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

// Scratch space for the IPv6 parser (the parser is synchronous and never re-entered).
const groups = new Uint16Array(8);

function parseIpv6(s: string): Ipv6 | undefined {
  const n = s.length;
  if (n < 2 || n > 45) return undefined;
  let i = 0;
  let count = 0;
  let dbl = -1;
  if (s.charCodeAt(0) === CH_COLON) {
    if (s.charCodeAt(1) !== CH_COLON) return undefined;
    dbl = 0;
    i = 2;
    if (i === n) return ipv6FromWords(0, 0, 0, 0);
  }
  while (true) {
    if (count === 8) return undefined;
    const start = i;
    let val = 0;
    while (i < n) {
      const h = hexVal(s.charCodeAt(i));
      if (h < 0) break;
      val = (val << 4) | h;
      i++;
      if (i - start > 4) return undefined;
    }
    if (i === start) return undefined;
    if (i < n && s.charCodeAt(i) === CH_DOT) {
      // Embedded dotted quad: must be the last 32 bits.
      if (count > 6) return undefined;
      const v4 = parseDottedQuad(s, start, n);
      if (v4 < 0) return undefined;
      groups[count++] = v4 >>> 16;
      groups[count++] = v4 & 0xffff;
      break;
    }
    groups[count++] = val;
    if (i === n) break;
    if (s.charCodeAt(i) !== CH_COLON) return undefined;
    i++;
    if (i < n && s.charCodeAt(i) === CH_COLON) {
      if (dbl >= 0) return undefined;
      dbl = count;
      i++;
      if (i === n) break;
    } else if (i === n) {
      return undefined; // trailing single colon
    }
  }
  if (dbl < 0) {
    if (count !== 8) return undefined;
  } else {
    // `::` stands for one or more groups (RFC 4291 §2.2).
    if (count > 7) return undefined;
    const gap = 8 - count;
    for (let k = count - 1; k >= dbl; k--) groups[k + gap] = groups[k]!;
    for (let k = dbl; k < dbl + gap; k++) groups[k] = 0;
  }
  return ipv6FromWords(
    (groups[0]! << 16) | groups[1]!,
    (groups[2]! << 16) | groups[3]!,
    (groups[4]! << 16) | groups[5]!,
    (groups[6]! << 16) | groups[7]!,
  );
}

/**
 * Parses a canonical dotted-quad IPv4 address or any RFC 4291 IPv6 text form.
 * Returns undefined for anything else, including zone ids (`%eth0`), brackets, whitespace and
 * legacy IPv4 spellings (use `parseLooseIpv4` for those).
 */
export function parseIp(s: string): Ip | undefined {
  if (s.indexOf(':') >= 0) return parseIpv6(s);
  const v = parseDottedQuad(s, 0, s.length);
  return v < 0 ? undefined : { family: 4, value: v };
}

/**
 * Parses one inet_aton / WHATWG-URL style number part over s[start, end). Returns -1 if invalid.
 * Decimal, octal (leading 0) or hex (0x / 0X; an empty "0x" counts as 0, as in WHATWG).
 */
function parseLoosePart(s: string, start: number, end: number): number {
  if (start >= end) return -1;
  let i = start;
  let radix = 10;
  if (s.charCodeAt(i) === CH_0 && end - start > 1) {
    const c1 = s.charCodeAt(i + 1);
    if (c1 === 120 || c1 === 88) {
      radix = 16;
      i += 2;
    } else {
      radix = 8;
      i += 1;
    }
  }
  let v = 0;
  for (; i < end; i++) {
    const c = s.charCodeAt(i);
    let d: number;
    if (radix === 16) d = hexVal(c);
    else d = c >= CH_0 && c <= CH_9 ? c - CH_0 : -1;
    if (d < 0 || d >= radix) return -1;
    v = v * radix + d;
    if (v > 0xffffffff) return -1;
  }
  return v;
}

const looseParts = [0, 0, 0, 0];

/**
 * Recognises every IPv4 spelling that `inet_aton` (and so glibc getaddrinfo, which Node's
 * dns.lookup uses) or the WHATWG URL host parser would turn into an address:
 * 1 to 4 dot-separated parts, each decimal, octal (`0177`) or hex (`0x7f`); the last part fills the
 * remaining bytes (`127.1` = 127.0.0.1, `127.0.1` = 127.0.0.1, `2130706433` = 127.0.0.1); one
 * trailing dot is allowed. Canonical dotted quads are accepted too (they are a subset).
 * Returns undefined when the string is not an IPv4 literal in any of these forms.
 */
export function parseLooseIpv4(s: string): Ipv4 | undefined {
  let end = s.length;
  if (end === 0) return undefined;
  if (s.charCodeAt(end - 1) === CH_DOT) end--;
  let n = 0;
  let start = 0;
  for (let i = 0; i <= end; i++) {
    if (i === end || s.charCodeAt(i) === CH_DOT) {
      if (n === 4) return undefined;
      const v = parseLoosePart(s, start, i);
      if (v < 0) return undefined;
      looseParts[n++] = v;
      start = i + 1;
    }
  }
  let value: number;
  const p0 = looseParts[0]!;
  const p1 = looseParts[1]!;
  const p2 = looseParts[2]!;
  const p3 = looseParts[3]!;
  switch (n) {
    case 1:
      value = p0;
      break;
    case 2:
      if (p0 > 255 || p1 > 0xffffff) return undefined;
      value = p0 * 0x1000000 + p1;
      break;
    case 3:
      if (p0 > 255 || p1 > 255 || p2 > 0xffff) return undefined;
      value = p0 * 0x1000000 + p1 * 0x10000 + p2;
      break;
    case 4:
      if (p0 > 255 || p1 > 255 || p2 > 255 || p3 > 255) return undefined;
      value = p0 * 0x1000000 + p1 * 0x10000 + p2 * 0x100 + p3;
      break;
    default:
      return undefined;
  }
  return { family: 4, value };
}

function maskV4(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

function maskWord(prefix: number, wordIndex: number): number {
  const bits = prefix - wordIndex * 32;
  if (bits <= 0) return 0;
  if (bits >= 32) return 0xffffffff;
  return (0xffffffff << (32 - bits)) >>> 0;
}

/** Builds a CIDR from an address and prefix length (host bits are cleared). */
export function cidrOf(ip: Ip, prefix: number): Cidr {
  const max = ip.family === 4 ? 32 : 128;
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > max) {
    throw new TollgateError('TG_NET_BAD_CIDR', `prefix length ${prefix} out of range 0..${max}`);
  }
  if (ip.family === 4) {
    const mask = maskV4(prefix);
    return { family: 4, prefix, base: (ip.value & mask) >>> 0, mask };
  }
  const m0 = maskWord(prefix, 0);
  const m1 = maskWord(prefix, 1);
  const m2 = maskWord(prefix, 2);
  const m3 = maskWord(prefix, 3);
  return {
    family: 6, prefix,
    b0: (ip.w0 & m0) >>> 0, b1: (ip.w1 & m1) >>> 0, b2: (ip.w2 & m2) >>> 0, b3: (ip.w3 & m3) >>> 0,
    m0, m1, m2, m3,
  };
}

export interface ParseCidrOptions {
  /** Reject CIDRs with host bits set (`10.1.0.0/8`). Default false: host bits are cleared. */
  readonly strict?: boolean;
}

/**
 * Parses `10.0.0.0/8`, `2001:db8::/32`, or a bare address (= /32 or /128). The prefix is decimal
 * without sign or leading zeros. Host bits are cleared unless `strict` is set, in which case a CIDR
 * with host bits set is rejected. Returns undefined when invalid.
 */
export function parseCidr(s: string, opts: ParseCidrOptions = {}): Cidr | undefined {
  const slash = s.indexOf('/');
  const ip = parseIp(slash < 0 ? s : s.slice(0, slash));
  if (ip === undefined) return undefined;
  const max = ip.family === 4 ? 32 : 128;
  let prefix = max;
  if (slash >= 0) {
    const p = s.slice(slash + 1);
    if (p.length === 0 || p.length > 3) return undefined;
    if (p.length > 1 && p.charCodeAt(0) === CH_0) return undefined;
    prefix = 0;
    for (let i = 0; i < p.length; i++) {
      const c = p.charCodeAt(i);
      if (c < CH_0 || c > CH_9) return undefined;
      prefix = prefix * 10 + (c - CH_0);
    }
    if (prefix > max) return undefined;
  }
  const cidr = cidrOf(ip, prefix);
  if (opts.strict === true && !ipEquals(cidrBase(cidr), ip)) return undefined;
  return cidr;
}

/** True when `ip` lies inside `cidr`. Families never cross (see SsrfGuard for embedded IPv4). */
export function cidrContains(cidr: Cidr, ip: Ip): boolean {
  if (cidr.family === 4) {
    return ip.family === 4 && ((ip.value & cidr.mask) >>> 0) === cidr.base;
  }
  return (
    ip.family === 6 &&
    ((ip.w0 & cidr.m0) >>> 0) === cidr.b0 &&
    ((ip.w1 & cidr.m1) >>> 0) === cidr.b1 &&
    ((ip.w2 & cidr.m2) >>> 0) === cidr.b2 &&
    ((ip.w3 & cidr.m3) >>> 0) === cidr.b3
  );
}

export function cidrBase(cidr: Cidr): Ip {
  return cidr.family === 4 ? { family: 4, value: cidr.base } : ipv6FromWords(cidr.b0, cidr.b1, cidr.b2, cidr.b3);
}

// ---------------------------------------------------------------------------------------------
// formatting

function formatV4(v: number): string {
  return `${v >>> 24}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`;
}

/**
 * Formats an address in canonical text: dotted quad for IPv4, RFC 5952 for IPv6 (lowercase, no
 * leading zeros, the longest run of two or more zero groups compressed, first run on a tie,
 * IPv4-mapped addresses as `::ffff:a.b.c.d`).
 */
export function formatIp(ip: Ip): string {
  if (ip.family === 4) return formatV4(ip.value);
  if (ip.w0 === 0 && ip.w1 === 0 && ip.w2 === 0xffff) return `::ffff:${formatV4(ip.w3)}`;
  const g = [ip.w0 >>> 16, ip.w0 & 0xffff, ip.w1 >>> 16, ip.w1 & 0xffff, ip.w2 >>> 16, ip.w2 & 0xffff, ip.w3 >>> 16, ip.w3 & 0xffff];
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) { bestStart = i; bestLen = j - i; }
    i = j;
  }
  if (bestStart < 0) return g.map((x) => x.toString(16)).join(':');
  const head = g.slice(0, bestStart).map((x) => x.toString(16)).join(':');
  const tail = g.slice(bestStart + bestLen).map((x) => x.toString(16)).join(':');
  return `${head}::${tail}`;
}

export function formatCidr(cidr: Cidr): string {
  return `${formatIp(cidrBase(cidr))}/${cidr.prefix}`;
}

// ---------------------------------------------------------------------------------------------
// classification

export type IpClass =
  | 'loopback'
  | 'private'
  | 'link-local'
  | 'metadata'
  | 'cgnat'
  | 'unspecified'
  | 'multicast'
  | 'broadcast'
  | 'reserved'
  | 'documentation'
  | 'public';

/** The special-purpose range an address falls in. Constant objects: no allocation per lookup. */
export interface IpRange {
  readonly cls: IpClass;
  /** Human name used in deny reasons, e.g. 'RFC 1918'. */
  readonly name: string;
  /** The range itself, e.g. '10.0.0.0/8'. */
  readonly cidr: string;
}

function r(cls: IpClass, cidr: string, name: string): IpRange {
  return Object.freeze({ cls, name, cidr });
}

const V4_THIS_HOST = r('unspecified', '0.0.0.0/32', 'unspecified address');
const V4_THIS_NET = r('reserved', '0.0.0.0/8', '"this network", RFC 791');
const V4_PRIV10 = r('private', '10.0.0.0/8', 'RFC 1918');
const V4_PRIV172 = r('private', '172.16.0.0/12', 'RFC 1918');
const V4_PRIV192 = r('private', '192.168.0.0/16', 'RFC 1918');
const V4_CGNAT = r('cgnat', '100.64.0.0/10', 'carrier-grade NAT, RFC 6598');
const V4_META_ALIBABA = r('metadata', '100.100.100.200/32', 'Alibaba Cloud instance metadata');
const V4_LOOP = r('loopback', '127.0.0.0/8', 'RFC 1122');
const V4_META = r('metadata', '169.254.169.254/32', 'cloud instance metadata (AWS, GCP, Azure, OpenStack)');
const V4_META_ECS = r('metadata', '169.254.170.2/32', 'AWS ECS task metadata');
const V4_META_AZURE = r('metadata', '168.63.129.16/32', 'Azure WireServer');
const V4_LINK = r('link-local', '169.254.0.0/16', 'RFC 3927');
const V4_IETF = r('reserved', '192.0.0.0/24', 'IETF protocol assignments, RFC 6890');
const V4_TEST1 = r('documentation', '192.0.2.0/24', 'TEST-NET-1, RFC 5737');
const V4_6TO4_RELAY = r('reserved', '192.88.99.0/24', 'deprecated 6to4 relay anycast, RFC 7526');
const V4_BENCH = r('documentation', '198.18.0.0/15', 'benchmarking, RFC 2544');
const V4_TEST2 = r('documentation', '198.51.100.0/24', 'TEST-NET-2, RFC 5737');
const V4_TEST3 = r('documentation', '203.0.113.0/24', 'TEST-NET-3, RFC 5737');
const V4_MCAST = r('multicast', '224.0.0.0/4', 'RFC 5771');
const V4_BCAST = r('broadcast', '255.255.255.255/32', 'limited broadcast, RFC 919');
const V4_RESERVED = r('reserved', '240.0.0.0/4', 'reserved for future use, RFC 1112');
const V4_PUBLIC = r('public', '0.0.0.0/0', 'public');

/** Range of an IPv4 address given as uint32. Dispatches on the first octet. */
export function rangeOfIpv4(v: number): IpRange {
  const a = v >>> 24;
  const b = (v >>> 16) & 255;
  switch (a) {
    case 0:
      return v === 0 ? V4_THIS_HOST : V4_THIS_NET;
    case 10:
      return V4_PRIV10;
    case 100:
      if (v === 0x646464c8) return V4_META_ALIBABA;
      return b >= 64 && b <= 127 ? V4_CGNAT : V4_PUBLIC;
    case 127:
      return V4_LOOP;
    case 168:
      return v === 0xa83f8110 ? V4_META_AZURE : V4_PUBLIC;
    case 169:
      if (b !== 254) return V4_PUBLIC;
      if (v === 0xa9fea9fe) return V4_META;
      if (v === 0xa9feaa02) return V4_META_ECS;
      return V4_LINK;
    case 172:
      return b >= 16 && b <= 31 ? V4_PRIV172 : V4_PUBLIC;
    case 192: {
      const c = (v >>> 8) & 255;
      if (b === 168) return V4_PRIV192;
      if (b === 0 && c === 0) return V4_IETF;
      if (b === 0 && c === 2) return V4_TEST1;
      if (b === 88 && c === 99) return V4_6TO4_RELAY;
      return V4_PUBLIC;
    }
    case 198:
      if (b === 18 || b === 19) return V4_BENCH;
      if (b === 51 && ((v >>> 8) & 255) === 100) return V4_TEST2;
      return V4_PUBLIC;
    case 203:
      return b === 0 && ((v >>> 8) & 255) === 113 ? V4_TEST3 : V4_PUBLIC;
    default:
      if (a >= 224 && a <= 239) return V4_MCAST;
      if (a >= 240) return v === 0xffffffff ? V4_BCAST : V4_RESERVED;
      return V4_PUBLIC;
  }
}

/** How an IPv6 address carries an IPv4 address. */
export interface Ipv4Embedding {
  readonly name: string;
  readonly cidr: string;
}

const EMB_MAPPED: Ipv4Embedding = Object.freeze({ name: 'IPv4-mapped', cidr: '::ffff:0:0/96' });
const EMB_TRANSLATED: Ipv4Embedding = Object.freeze({ name: 'IPv4-translated', cidr: '::ffff:0:0:0/96' });
const EMB_COMPAT: Ipv4Embedding = Object.freeze({ name: 'IPv4-compatible', cidr: '::/96' });
const EMB_NAT64: Ipv4Embedding = Object.freeze({ name: 'NAT64', cidr: '64:ff9b::/96' });
const EMB_6TO4: Ipv4Embedding = Object.freeze({ name: '6to4', cidr: '2002::/16' });
const EMB_TEREDO: Ipv4Embedding = Object.freeze({ name: 'Teredo', cidr: '2001::/32' });

/** Which embedding an IPv6 address uses, or undefined. `::` and `::1` are not embeddings. */
function embeddingOf(ip: Ipv6): Ipv4Embedding | undefined {
  const { w0, w1, w2, w3 } = ip;
  if (w0 === 0 && w1 === 0) {
    if (w2 === 0xffff) return EMB_MAPPED;
    if (w2 === 0xffff0000) return EMB_TRANSLATED;
    if (w2 === 0 && w3 > 1) return EMB_COMPAT;
    return undefined;
  }
  if (w0 === 0x0064ff9b && w1 === 0 && w2 === 0) return EMB_NAT64;
  if (w0 >>> 16 === 0x2002) return EMB_6TO4;
  if (w0 === 0x20010000) return EMB_TEREDO;
  return undefined;
}

function embeddedValue(ip: Ipv6, emb: Ipv4Embedding): number {
  if (emb === EMB_6TO4) return (((ip.w0 & 0xffff) << 16) | (ip.w1 >>> 16)) >>> 0;
  if (emb === EMB_TEREDO) return (~ip.w3) >>> 0; // client address is stored XOR 0xffffffff
  return ip.w3;
}

/**
 * The IPv4 address an IPv6 address embeds: IPv4-mapped `::ffff:0:0/96`, IPv4-translated
 * `::ffff:0:0:0/96`, IPv4-compatible `::/96` (except `::` and `::1`), NAT64 `64:ff9b::/96`,
 * 6to4 `2002::/16` (bits 16..47) and Teredo `2001::/32` (the client address, de-obfuscated).
 */
export function embeddedIpv4(ip: Ip): { readonly ipv4: Ipv4; readonly via: Ipv4Embedding } | undefined {
  if (ip.family === 4) return undefined;
  const emb = embeddingOf(ip);
  if (emb === undefined) return undefined;
  return { ipv4: { family: 4, value: embeddedValue(ip, emb) }, via: emb };
}

const V6_UNSPEC = r('unspecified', '::/128', 'unspecified address');
const V6_LOOP = r('loopback', '::1/128', 'RFC 4291');
const V6_RESERVED0 = r('reserved', '::/8', 'reserved by IETF, RFC 4291');
const V6_NAT64_LOCAL = r('private', '64:ff9b:1::/48', 'local-use NAT64, RFC 8215');
const V6_DISCARD = r('reserved', '100::/64', 'discard-only, RFC 6666');
const V6_BENCH = r('documentation', '2001:2::/48', 'benchmarking, RFC 5180');
const V6_DOC = r('documentation', '2001:db8::/32', 'documentation, RFC 3849');
const V6_DOC2 = r('documentation', '3fff::/20', 'documentation, RFC 9637');
const V6_META_AWS = r('metadata', 'fd00:ec2::254/128', 'AWS instance metadata (IPv6)');
const V6_ULA = r('private', 'fc00::/7', 'unique local, RFC 4193');
const V6_LINK = r('link-local', 'fe80::/10', 'RFC 4291');
const V6_SITE = r('private', 'fec0::/10', 'deprecated site-local, RFC 3879');
const V6_MCAST = r('multicast', 'ff00::/8', 'RFC 4291');
const V6_UNASSIGNED = r('reserved', 'outside 2000::/3', 'not allocated for global unicast');
const V6_PUBLIC = r('public', '2000::/3', 'public');

/** Range of an IPv6 address itself (embedded IPv4 not considered; see `describeIp`). */
function rangeOfIpv6Own(ip: Ipv6): IpRange {
  const { w0, w1, w2, w3 } = ip;
  const top8 = w0 >>> 24;
  if (top8 === 0) {
    if (w0 === 0 && w1 === 0 && w2 === 0) {
      if (w3 === 0) return V6_UNSPEC;
      if (w3 === 1) return V6_LOOP;
    }
    if (w0 === 0x0064ff9b && w1 >>> 16 === 1) return V6_NAT64_LOCAL;
    return V6_RESERVED0;
  }
  if (top8 === 0x01) return w0 === 0x01000000 && w1 === 0 ? V6_DISCARD : V6_UNASSIGNED;
  if (top8 === 0xff) return V6_MCAST;
  const top16 = w0 >>> 16;
  if (top16 >= 0xfe80 && top16 <= 0xfebf) return V6_LINK;
  if (top16 >= 0xfec0 && top16 <= 0xfeff) return V6_SITE;
  if (top16 >= 0xfc00 && top16 <= 0xfdff) {
    if (w0 === 0xfd000ec2 && w1 === 0 && w2 === 0 && w3 === 0x254) return V6_META_AWS;
    return V6_ULA;
  }
  if (top16 < 0x2000 || top16 > 0x3fff) return V6_UNASSIGNED;
  if (w0 === 0x20010db8) return V6_DOC;
  if (w0 === 0x20010002 && w1 >>> 16 === 0) return V6_BENCH;
  if (w0 >>> 12 === 0x3fff0) return V6_DOC2;
  return V6_PUBLIC;
}

export interface IpDescription {
  readonly cls: IpClass;
  /** The range that decided the class (of the embedded IPv4 address, when there is one). */
  readonly range: IpRange;
  /** Present when an IPv6 address was classified by the IPv4 address it embeds. */
  readonly embedded?: { readonly ipv4: Ipv4; readonly via: Ipv4Embedding };
}

/** Full classification with the deciding range; allocates only for embedded-IPv4 forms. */
export function describeIp(ip: Ip): IpDescription {
  if (ip.family === 4) {
    const range = rangeOfIpv4(ip.value);
    return { cls: range.cls, range };
  }
  const emb = embeddingOf(ip);
  if (emb !== undefined) {
    const v = embeddedValue(ip, emb);
    const range = rangeOfIpv4(v);
    return { cls: range.cls, range, embedded: { ipv4: { family: 4, value: v }, via: emb } };
  }
  const range = rangeOfIpv6Own(ip);
  return { cls: range.cls, range };
}

/**
 * Classifies an address. IPv6 forms that embed IPv4 (mapped, translated, compatible, NAT64,
 * 6to4, Teredo) take the class of the embedded IPv4 address. No allocation.
 */
export function classifyIp(ip: Ip): IpClass {
  if (ip.family === 4) return rangeOfIpv4(ip.value).cls;
  const emb = embeddingOf(ip);
  if (emb !== undefined) return rangeOfIpv4(embeddedValue(ip, emb)).cls;
  return rangeOfIpv6Own(ip).cls;
}

// ---------------------------------------------------------------------------------------------
// SSRF guard

/** Classes the guard denies unless allowed by CIDR. 'documentation' and 'public' are not here. */
export const DEFAULT_DENIED_CLASSES: readonly IpClass[] = Object.freeze([
  'loopback', 'private', 'link-local', 'metadata', 'cgnat', 'unspecified', 'multicast', 'broadcast', 'reserved',
] as const);

/**
 * Classes a ServiceEntry may open for the DNS answers of its own hosts
 * (`tollgate.io/allow-private-addresses`): private space and CGNAT, where on-premises hosts live.
 * Loopback, link-local, metadata and the rest are opened only by the operator (--allow-cidr).
 */
export const ENTRY_ALLOWABLE_CLASSES: ReadonlySet<IpClass> = new Set<IpClass>(['private', 'cgnat']);

export type SsrfVerdict = { readonly allowed: true } | { readonly allowed: false; readonly reason: string };

const ALLOWED: SsrfVerdict = Object.freeze({ allowed: true });

export interface SsrfGuardOptions {
  /** Override the denied classes (e.g. add 'documentation'). Default DEFAULT_DENIED_CLASSES. */
  readonly deny?: readonly IpClass[];
}

/**
 * Decides whether the data plane may connect to an address. Denies the classes in
 * DEFAULT_DENIED_CLASSES unless the address is inside one of `allowCidrs`. For an IPv6 address
 * that embeds IPv4, an allow CIDR matching either the IPv6 address or the embedded IPv4 address
 * allows it (allowing 10.0.0.0/8 allows ::ffff:10.1.2.3, which reaches the same host).
 *
 * Cost: public addresses are a switch and return a shared constant; the allow list (a linear
 * scan, expected to be short) is consulted only for denied classes.
 */
export class SsrfGuard {
  private readonly allow4: readonly Cidr4[];
  private readonly allow6: readonly Cidr6[];
  private readonly denied: ReadonlySet<IpClass>;

  constructor(allowCidrs: readonly Cidr[], opts: SsrfGuardOptions = {}) {
    this.allow4 = allowCidrs.filter((c): c is Cidr4 => c.family === 4);
    this.allow6 = allowCidrs.filter((c): c is Cidr6 => c.family === 6);
    this.denied = new Set(opts.deny ?? DEFAULT_DENIED_CLASSES);
  }

  check(ip: Ip): SsrfVerdict {
    if (ip.family === 4) {
      const range = rangeOfIpv4(ip.value);
      if (!this.denied.has(range.cls) || this.allowedV4(ip.value)) return ALLOWED;
      return { allowed: false, reason: `ssrf_denied: ${formatV4(ip.value)} is ${range.cls} (${range.name})` };
    }
    const emb = embeddingOf(ip);
    if (emb === undefined) {
      const range = rangeOfIpv6Own(ip);
      if (!this.denied.has(range.cls) || this.allowedV6(ip)) return ALLOWED;
      return { allowed: false, reason: `ssrf_denied: ${formatIp(ip)} is ${range.cls} (${range.name})` };
    }
    const v = embeddedValue(ip, emb);
    const range = rangeOfIpv4(v);
    if (!this.denied.has(range.cls) || this.allowedV6(ip) || this.allowedV4(v)) return ALLOWED;
    return {
      allowed: false,
      reason: `ssrf_denied: ${formatIp(ip)} is ${range.cls} (${range.name}, via ${emb.name} ${emb.cidr} -> ${formatV4(v)})`,
    };
  }

  private allowedV4(v: number): boolean {
    const list = this.allow4;
    for (let i = 0; i < list.length; i++) {
      const c = list[i]!;
      if (((v & c.mask) >>> 0) === c.base) return true;
    }
    return false;
  }

  private allowedV6(ip: Ipv6): boolean {
    const list = this.allow6;
    for (let i = 0; i < list.length; i++) {
      if (cidrContains(list[i]!, ip)) return true;
    }
    return false;
  }
}
