/**
 * TLS inspector: reads the ClientHello at the start of a connection without terminating TLS, to
 * choose a filter chain by SNI / ALPN (Envoy's tls_inspector listener filter).
 *
 * Usage: the listener accumulates the bytes it has read and calls `inspectClientHello(buf)` after
 * each read until the state is not 'need-more'. While the hello is incomplete only record headers
 * are walked (a few bytes per record), and the body is parsed once when it is complete, so
 * re-calling with a growing buffer stays cheap. The bytes are not consumed: the caller forwards the
 * whole buffer upstream (passthrough) or hands it to a TLS server.
 *
 * Limits (errors, never exceptions):
 * - handshake message (4-byte header + body) larger than `maxHelloBytes` (16 KiB) -> TG_TLS_HELLO_TOO_LARGE,
 *   decided as soon as the 4-byte handshake header has arrived;
 * - the records carrying the hello (headers included) larger than 2 x maxHelloBytes, which bounds
 *   what a client can make us buffer with tiny records -> TG_TLS_HELLO_TOO_LARGE;
 * - first byte not 0x16 (HTTP, SSLv2-style hello, anything else) or record version major not 3 -> TG_TLS_NOT_TLS;
 * - a handshake message other than ClientHello -> TG_TLS_NOT_CLIENT_HELLO;
 * - bad lengths, zero-length or > 2^14 records, a non-handshake record before the hello is
 *   complete, bytes after the hello in its last record, duplicate extensions -> TG_TLS_MALFORMED;
 * - server_name present but not exactly one valid DNS host name (empty, > 255 bytes, not a
 *   hostname, an IP literal - RFC 6066 §3 forbids them - or two host_name entries) -> TG_TLS_BAD_SNI.
 */
import { normalizeHost } from '../../net/hostname.js';

export const DEFAULT_MAX_HELLO_BYTES = 16 * 1024;

const RECORD_HEADER = 5;
const MAX_RECORD_FRAGMENT = 16384;
const CT_HANDSHAKE = 0x16;
const HT_CLIENT_HELLO = 0x01;
const EXT_SERVER_NAME = 0x0000;
const EXT_ALPN = 0x0010;
const EXT_SUPPORTED_VERSIONS = 0x002b;

export interface ClientHelloInfo {
  readonly state: 'done';
  /** Normalized server name (lowercase, trailing dot stripped); absent when the client sent none. */
  readonly sni?: string;
  /** ALPN protocol ids in client order (latin1-decoded bytes); empty when not offered. */
  readonly alpn: readonly string[];
  /** Bytes of `buf`, from 0, up to the end of the record holding the last byte of the hello. */
  readonly helloBytes: number;
  /** ClientHello.legacy_version, e.g. 0x0303. */
  readonly legacyVersion: number;
  /** supported_versions extension contents (GREASE values included); absent when not sent. */
  readonly supportedVersions?: readonly number[];
}

export type TlsInspectorErrorCode =
  | 'TG_TLS_NOT_TLS'
  | 'TG_TLS_NOT_CLIENT_HELLO'
  | 'TG_TLS_MALFORMED'
  | 'TG_TLS_BAD_SNI'
  | 'TG_TLS_HELLO_TOO_LARGE';

export type InspectResult =
  | { readonly state: 'need-more' }
  | ClientHelloInfo
  | { readonly state: 'error'; readonly code: TlsInspectorErrorCode; readonly reason: string };

export interface InspectOptions {
  /** Largest accepted ClientHello handshake message, header included. Default 16 KiB. */
  readonly maxHelloBytes?: number;
}

const NEED_MORE: InspectResult = Object.freeze({ state: 'need-more' });

function err(code: TlsInspectorErrorCode, reason: string): InspectResult {
  return { state: 'error', code, reason };
}

/**
 * Inspects the start of a connection for a TLS ClientHello. Pure: depends only on `buf`.
 */
export function inspectClientHello(buf: Buffer, opts: InspectOptions = {}): InspectResult {
  const maxHello = opts.maxHelloBytes ?? DEFAULT_MAX_HELLO_BYTES;
  const maxWire = 2 * maxHello;
  const n = buf.length;
  if (n === 0) return NEED_MORE;
  const b0 = buf[0]!;
  if (b0 !== CT_HANDSHAKE) {
    if ((b0 & 0x80) !== 0 && n >= 3 && buf[2] === 0x01) return err('TG_TLS_NOT_TLS', 'SSLv2-style ClientHello is not supported');
    return err('TG_TLS_NOT_TLS', `first byte 0x${b0.toString(16).padStart(2, '0')} is not a TLS handshake record`);
  }
  if (n >= 2 && buf[1] !== 0x03) return err('TG_TLS_NOT_TLS', `record version major ${buf[1]} is not 3`);

  // Walk the records. `got` = handshake bytes available, `need` = handshake bytes required
  // (4 + body length, known once the 4-byte handshake header has arrived).
  let pos = 0;
  let got = 0;
  let need = -1;
  let records = 0;
  let singleStart = -1; // start of the fragment when the whole hello sits in one record
  const hsHeader = [0, 0, 0, 0];
  while (true) {
    if (pos + RECORD_HEADER > n) return pos + RECORD_HEADER > maxWire ? tooLargeWire(maxWire) : NEED_MORE;
    const type = buf[pos]!;
    if (type !== CT_HANDSHAKE) return err('TG_TLS_MALFORMED', `record type ${type} before the ClientHello was complete`);
    if (buf[pos + 1] !== 0x03) return err('TG_TLS_MALFORMED', `record version major ${buf[pos + 1]} is not 3`);
    const len = buf.readUInt16BE(pos + 3);
    if (len === 0) return err('TG_TLS_MALFORMED', 'zero-length handshake record');
    if (len > MAX_RECORD_FRAGMENT) return err('TG_TLS_MALFORMED', `record length ${len} exceeds 2^14`);
    const fragStart = pos + RECORD_HEADER;
    const fragEnd = fragStart + len;
    if (fragEnd > maxWire) return tooLargeWire(maxWire);
    const avail = Math.min(fragEnd, n) - fragStart;
    // Pick up handshake header bytes as they arrive.
    for (let i = 0; got + i < 4 && i < avail; i++) hsHeader[got + i] = buf[fragStart + i]!;
    if (records === 0) singleStart = fragStart;
    records++;
    got += avail;
    if (need < 0 && got >= 4) {
      if (hsHeader[0] !== HT_CLIENT_HELLO) {
        return err('TG_TLS_NOT_CLIENT_HELLO', `handshake type ${hsHeader[0]} is not ClientHello (1)`);
      }
      need = 4 + ((hsHeader[1]! << 16) | (hsHeader[2]! << 8) | hsHeader[3]!);
      if (need > maxHello) return err('TG_TLS_HELLO_TOO_LARGE', `ClientHello of ${need} bytes exceeds ${maxHello}`);
    } else if (need < 0 && got >= 1 && hsHeader[0] !== HT_CLIENT_HELLO) {
      return err('TG_TLS_NOT_CLIENT_HELLO', `handshake type ${hsHeader[0]} is not ClientHello (1)`);
    }
    if (need >= 0 && got >= need) {
      // The hello ends in this record; nothing else may follow it there.
      if (fragEnd > n) return NEED_MORE;
      if (got > need) return err('TG_TLS_MALFORMED', `${got - need} bytes after the ClientHello in its last record`);
      const hello = records === 1 ? buf.subarray(singleStart, singleStart + need) : gather(buf, need);
      return parseHello(hello, fragEnd);
    }
    if (fragEnd > n) return NEED_MORE;
    pos = fragEnd;
  }
}

function tooLargeWire(maxWire: number): InspectResult {
  return err('TG_TLS_HELLO_TOO_LARGE', `ClientHello records exceed ${maxWire} bytes`);
}

/** Copies the handshake bytes of consecutive records into one buffer (only for split hellos). */
function gather(buf: Buffer, need: number): Buffer {
  const out = Buffer.allocUnsafe(need);
  let pos = 0;
  let off = 0;
  while (off < need) {
    const len = buf.readUInt16BE(pos + 3);
    const take = Math.min(len, need - off);
    buf.copy(out, off, pos + RECORD_HEADER, pos + RECORD_HEADER + take);
    off += take;
    pos += RECORD_HEADER + len;
  }
  return out;
}

/** Parses a complete ClientHello handshake message (4-byte header included). */
function parseHello(h: Buffer, helloBytes: number): InspectResult {
  const end = h.length;
  let p = 4;
  const malformed = (what: string): InspectResult => err('TG_TLS_MALFORMED', `ClientHello: ${what}`);
  if (p + 2 + 32 + 1 > end) return malformed('truncated before session_id');
  const legacyVersion = h.readUInt16BE(p);
  if (legacyVersion >>> 8 !== 3) return malformed(`legacy_version 0x${legacyVersion.toString(16)}`);
  p += 2 + 32;
  const sidLen = h[p]!;
  if (sidLen > 32) return malformed(`session_id length ${sidLen} > 32`);
  p += 1 + sidLen;
  if (p + 2 > end) return malformed('truncated before cipher_suites');
  const csLen = h.readUInt16BE(p);
  if (csLen < 2 || (csLen & 1) !== 0) return malformed(`cipher_suites length ${csLen}`);
  p += 2 + csLen;
  if (p + 1 > end) return malformed('truncated before compression_methods');
  const cmLen = h[p]!;
  if (cmLen < 1) return malformed('empty compression_methods');
  p += 1 + cmLen;
  if (p > end) return malformed('truncated in compression_methods');

  let sni: string | undefined;
  let alpn: string[] = [];
  let supportedVersions: number[] | undefined;
  if (p < end) {
    if (p + 2 > end) return malformed('truncated extensions length');
    const extLen = h.readUInt16BE(p);
    p += 2;
    if (p + extLen !== end) return malformed(`extensions length ${extLen} does not match the ${end - p} bytes left`);
    const seen = new Set<number>();
    while (p < end) {
      if (p + 4 > end) return malformed('truncated extension header');
      const type = h.readUInt16BE(p);
      const len = h.readUInt16BE(p + 2);
      p += 4;
      if (p + len > end) return malformed(`extension ${type} overruns the extensions block`);
      if (seen.has(type)) return malformed(`duplicate extension ${type}`);
      seen.add(type);
      const extEnd = p + len;
      if (type === EXT_SERVER_NAME) {
        const r = parseServerName(h, p, extEnd);
        if (typeof r !== 'string' && r !== undefined) return r;
        sni = r;
      } else if (type === EXT_ALPN) {
        const r = parseAlpn(h, p, extEnd);
        if (!Array.isArray(r)) return r as InspectResult;
        alpn = r;
      } else if (type === EXT_SUPPORTED_VERSIONS) {
        if (len < 1 || h[p]! + 1 !== len || (h[p]! & 1) !== 0 || h[p] === 0) return malformed('supported_versions');
        supportedVersions = [];
        for (let q = p + 1; q < extEnd; q += 2) supportedVersions.push(h.readUInt16BE(q));
      }
      p = extEnd;
    }
  }
  const base = { state: 'done' as const, alpn, helloBytes, legacyVersion };
  if (sni !== undefined && supportedVersions !== undefined) return { ...base, sni, supportedVersions };
  if (sni !== undefined) return { ...base, sni };
  if (supportedVersions !== undefined) return { ...base, supportedVersions };
  return base;
}

/**
 * server_name (RFC 6066 §3): a list of (name_type, name); exactly one host_name (type 0) allowed.
 * Entries of other types are skipped. Returns the normalized name, undefined (no host_name) or an error.
 */
function parseServerName(h: Buffer, p: number, end: number): string | undefined | InspectResult {
  if (p + 2 > end) return err('TG_TLS_MALFORMED', 'server_name: truncated list length');
  const listLen = h.readUInt16BE(p);
  p += 2;
  if (p + listLen !== end || listLen === 0) return err('TG_TLS_MALFORMED', 'server_name: list length mismatch');
  let name: string | undefined;
  while (p < end) {
    if (p + 3 > end) return err('TG_TLS_MALFORMED', 'server_name: truncated entry');
    const nameType = h[p]!;
    const len = h.readUInt16BE(p + 1);
    p += 3;
    if (p + len > end) return err('TG_TLS_MALFORMED', 'server_name: entry overruns the list');
    if (nameType === 0) {
      if (name !== undefined) return err('TG_TLS_BAD_SNI', 'more than one host_name in server_name');
      if (len === 0) return err('TG_TLS_BAD_SNI', 'empty host_name');
      if (len > 255) return err('TG_TLS_BAD_SNI', `host_name of ${len} bytes exceeds 255`);
      for (let i = p; i < p + len; i++) {
        const c = h[i]!;
        if (c <= 0x20 || c >= 0x7f) return err('TG_TLS_BAD_SNI', `host_name byte 0x${c.toString(16)} is not a host name character`);
      }
      const r = normalizeServerName(h.toString('latin1', p, p + len));
      if (!r.ok) return err('TG_TLS_BAD_SNI', r.detail);
      name = r.name;
    }
    p += len;
  }
  return name;
}

/**
 * One host_name as the listener matches it: normalizeHost (lower case, one trailing dot removed,
 * IDNA), never an IP literal. Shared with `trace --sni`.
 */
export function normalizeServerName(raw: string): { readonly ok: true; readonly name: string } | { readonly ok: false; readonly detail: string } {
  const r = normalizeHost(raw);
  if (!r.ok) return { ok: false, detail: `host_name ${JSON.stringify(raw)}: ${r.error}` };
  if (r.ip !== undefined) return { ok: false, detail: `host_name ${JSON.stringify(raw)} is an IP address (RFC 6066 forbids literal addresses)` };
  return { ok: true, name: r.host };
}

/** ALPN (RFC 7301 §3.1): non-empty list of non-empty protocol names. */
function parseAlpn(h: Buffer, p: number, end: number): string[] | InspectResult {
  if (p + 2 > end) return err('TG_TLS_MALFORMED', 'alpn: truncated list length');
  const listLen = h.readUInt16BE(p);
  p += 2;
  if (p + listLen !== end || listLen < 2) return err('TG_TLS_MALFORMED', 'alpn: list length mismatch');
  const out: string[] = [];
  while (p < end) {
    const len = h[p]!;
    p += 1;
    if (len === 0 || p + len > end) return err('TG_TLS_MALFORMED', 'alpn: bad protocol name length');
    out.push(h.toString('latin1', p, p + len));
    p += len;
  }
  return out;
}
