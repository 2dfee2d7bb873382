/**
 * The heads the proxy writes: the request it sends upstream and the response it sends downstream.
 *
 * One pass over the raw header list per head, building the latin1 string directly. The rules are
 * those of `hopByHopFilter` (serialize.ts; a test checks the two agree):
 * - hop-by-hop fields are dropped (Connection, Keep-Alive, Proxy-Connection, TE, Trailer,
 *   Transfer-Encoding, Upgrade unless the message is an upgrade, Proxy-Authorization,
 *   Proxy-Authenticate, HTTP2-Settings), and so is every field the Connection header names —
 *   except Content-Length and Host, which no client can remove by naming them;
 * - framing (Content-Length / Transfer-Encoding) is never copied: the caller decides it;
 * - Host is written first, from the authority the request was routed on (or the route's rewrite);
 * - X-Forwarded-Client-Cert is forwarded, replaced or removed as the connection's XfccPolicy says
 *   (xfcc.ts: Istio's defaults; never trusted from a client without a verified certificate);
 * - X-Forwarded-For gets the client address appended, X-Forwarded-Proto is set, X-Request-Id is
 *   added when absent (each switchable, see options.ts); to a MESH_EXTERNAL destination no
 *   X-Forwarded-For is sent at all, neither received nor appended: pod and client addresses do
 *   not leave the mesh (the access log still records the received value);
 * - route header mutations (VirtualService headers.request/response set/add/remove) apply last.
 *   They cannot touch Host, framing or hop-by-hop fields (those are ignored).
 * Cost: names are only lower-cased when their length and first letter could be one of the names
 * above, so most fields cost two array loads.
 */
import type { HeaderMutations } from '../../snapshot/types.js';
import type { RawFields } from './head.js';
import type { Framing } from './serialize.js';
import type { XfccPolicy } from './xfcc.js';
import { requestId } from './request-id.js';

// ------------------------------------------------------------------ name classes

const SKIP = 1; // dropped (hop-by-hop, framing, our own Host / X-Forwarded-Proto)
const UPGRADE = 2; // kept only when the message is an upgrade
const XFF = 3;
const EXPECT = 4;
const REQUEST_ID = 5;
const USER_AGENT = 6;
const XFCC = 7;

const HOP_BY_HOP = ['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'proxy-authorization', 'proxy-authenticate', 'http2-settings'];

const REQUEST_NAMES = new Map<string, number>([
  ...HOP_BY_HOP.map((n): [string, number] => [n, SKIP]),
  ['host', SKIP],
  ['content-length', SKIP],
  ['x-forwarded-proto', SKIP],
  ['upgrade', UPGRADE],
  ['x-forwarded-for', XFF],
  ['expect', EXPECT],
  ['x-request-id', REQUEST_ID],
  ['user-agent', USER_AGENT],
  ['x-forwarded-client-cert', XFCC],
]);

const RESPONSE_NAMES = new Map<string, number>([
  ...HOP_BY_HOP.map((n): [string, number] => [n, SKIP]),
  ['content-length', SKIP],
  ['upgrade', UPGRADE],
]);

/** Names that can never be set/removed by route mutations or removed via Connection. */
const PROTECTED = new Set(['host', 'content-length', 'transfer-encoding', 'connection', 'upgrade', 'keep-alive', 'proxy-connection', 'te', 'trailer']);

/**
 * (length, lower-case first letter) -> index + 1 into a name list: among the names above no two
 * share both, so one table load finds the only candidate, confirmed by a case-insensitive compare
 * (no lower-casing, no hashing of a freshly sliced header name).
 */
interface NameTable {
  readonly slot: Uint8Array;
  readonly names: readonly string[];
  readonly codes: readonly number[];
}

function nameTable(map: ReadonlyMap<string, number>): NameTable {
  const slot = new Uint8Array(64 * 128);
  const names: string[] = [];
  const codes: number[] = [];
  for (const [n, code] of map) {
    const i = n.length * 128 + n.charCodeAt(0);
    if (slot[i] !== 0) throw new Error(`header name table collision: ${n}`);
    names.push(n);
    codes.push(code);
    slot[i] = names.length;
  }
  return { slot, names, codes };
}
const REQUEST_TABLE = nameTable(REQUEST_NAMES);
const RESPONSE_TABLE = nameTable(RESPONSE_NAMES);

/** s[start, start + lower.length) equals `lower` (lower case) ignoring ASCII case; the first letter is already known to. */
function eqLower(s: string, start: number, lower: string): boolean {
  for (let i = 1; i < lower.length; i++) {
    const c = s.charCodeAt(start + i);
    if (c !== lower.charCodeAt(i) && (c | 0x20) !== lower.charCodeAt(i)) return false;
  }
  return true;
}

function classify(name: string, t: NameTable): number {
  return classifyAt(name, 0, name.length, t);
}

/** classify() of the name s[start, end) without slicing it out. */
function classifyAt(s: string, start: number, end: number, t: NameTable): number {
  const n = end - start;
  if (n >= 64 || n === 0) return 0;
  const k = t.slot[n * 128 + (s.charCodeAt(start) | 0x20)]!;
  if (k === 0) return 0;
  return eqLower(s, start, t.names[k - 1]!) ? t.codes[k - 1]! : 0;
}

/** Connection tokens that nominate end-to-end fields for removal (rare): a set, else null. */
export function nominatedFields(tokens: readonly string[]): ReadonlySet<string> | null {
  let out: Set<string> | null = null;
  for (const t of tokens) {
    if (t === 'close' || t === 'keep-alive' || t === 'upgrade' || PROTECTED.has(t) || REQUEST_NAMES.get(t) === SKIP) continue;
    (out ??= new Set()).add(t);
  }
  return out;
}

// ------------------------------------------------------------------ route mutations

export interface CompiledHeaderOps {
  /** Lower-case names dropped from the message (`remove` plus the names `set` replaces). */
  readonly remove: ReadonlySet<string>;
  /** Written after the kept fields: `set` then `add`, as "Name: value\r\n" text. */
  readonly append: string;
}

/** Compiled once per route when the snapshot is applied (filters/header-mutation.ts); null when there is nothing to do. */
export function compileHeaderOps(m: HeaderMutations | undefined): CompiledHeaderOps | null {
  if (m === undefined) return null;
  const remove = new Set<string>();
  let append = '';
  for (const n of m.remove ?? []) if (!PROTECTED.has(n.toLowerCase())) remove.add(n.toLowerCase());
  for (const [n, v] of Object.entries(m.set ?? {})) {
    if (PROTECTED.has(n.toLowerCase())) continue;
    remove.add(n.toLowerCase());
    append += `${n}: ${v}\r\n`;
  }
  for (const [n, v] of Object.entries(m.add ?? {})) {
    if (PROTECTED.has(n.toLowerCase())) continue;
    append += `${n}: ${v}\r\n`;
  }
  return remove.size === 0 && append === '' ? null : { remove, append };
}

// ------------------------------------------------------------------ request head

/** Facts the request builder reads while it passes over the fields (for the access log). */
export interface RequestHeadFacts {
  xffIn: string | null;
  requestId: string | null;
  userAgent: string | null;
}

export interface RequestHeadParams {
  readonly method: string;
  /** Origin-form path + query to send. */
  readonly target: string;
  /** Host to send. */
  readonly host: string;
  /** The received fields: flat [name, value, ...], or the raw lines (copied as they are where kept). */
  readonly headers: readonly string[] | RawFields;
  readonly connectionTokens: readonly string[];
  readonly framing: Framing;
  /** Forward Upgrade and send `Connection: upgrade`. */
  readonly upgrade: boolean;
  /** Drop Expect (the proxy answers 100-continue itself). */
  readonly stripExpect: boolean;
  /** Client IP to append to X-Forwarded-For; null: leave X-Forwarded-For as received. */
  readonly xffAppend: string | null;
  /** Send no X-Forwarded-For (a MESH_EXTERNAL destination); the received value is still recorded. */
  readonly stripXff: boolean;
  readonly proto: string;
  readonly addRequestId: boolean;
  readonly ops: CompiledHeaderOps | null;
  /** x-forwarded-client-cert: keep what the client sent, and/or add this connection's certificate. */
  readonly xfcc: XfccPolicy;
}

export function buildRequestHead(p: RequestHeadParams, facts: RequestHeadFacts): string {
  const headers = p.headers;
  const nominated = p.connectionTokens.length > 0 ? nominatedFields(p.connectionTokens) : null;
  const ops = p.ops;
  let s = p.method + ' ' + p.target + ' HTTP/1.1\r\nHost: ' + p.host + '\r\n';
  let xff: string | null = null;
  let xfcc: string | null = null;
  // One loop for both shapes of the received fields: field f is headers[2f], headers[2f + 1], or
  // raw line f, whose name is t[pos[5f], pos[5f + 1]) (see RawFields).
  const arr = Array.isArray(headers) ? (headers as readonly string[]) : null;
  const raw = arr === null ? (headers as RawFields) : null;
  const t = raw === null ? '' : raw.text;
  const pos = raw === null ? EMPTY_POS : raw.pos;
  const count = arr !== null ? arr.length >> 1 : pos.length / 5;
  if (raw !== null) RAW_LINES.start(t);
  for (let f = 0; f < count; f++) {
    const name = arr !== null ? arr[2 * f]! : t;
    const ns = arr !== null ? 0 : pos[5 * f]!;
    const ne = arr !== null ? name.length : pos[5 * f + 1]!;
    const k = classifyAt(name, ns, ne, REQUEST_TABLE);
    if (k !== 0) {
      if (k === SKIP) continue;
      if (k === XFF) {
        const value = arr !== null ? arr[2 * f + 1]! : t.slice(pos[5 * f + 2]!, pos[5 * f + 3]!);
        xff = xff === null ? value : xff + ', ' + value;
        continue;
      }
      if (k === XFCC) {
        if (p.xfcc.forward) {
          const value = arr !== null ? arr[2 * f + 1]! : t.slice(pos[5 * f + 2]!, pos[5 * f + 3]!);
          xfcc = xfcc === null ? value : xfcc + ',' + value;
        }
        continue;
      }
      if (k === UPGRADE && !p.upgrade) continue;
      if (k === EXPECT && p.stripExpect) continue;
      if (k === REQUEST_ID || k === USER_AGENT) {
        const value = arr !== null ? arr[2 * f + 1]! : t.slice(pos[5 * f + 2]!, pos[5 * f + 3]!);
        if (k === REQUEST_ID) facts.requestId = value;
        else facts.userAgent = value;
      }
    }
    if (nominated !== null || ops !== null) {
      const lower = (arr !== null ? name : name.slice(ns, ne)).toLowerCase();
      if (nominated !== null && nominated.has(lower)) continue;
      if (ops !== null && ops.remove.has(lower)) continue;
    }
    if (arr !== null) s += name + ': ' + arr[2 * f + 1]! + '\r\n';
    else RAW_LINES.keep(pos, 5 * f);
  }
  if (raw !== null) s += RAW_LINES.finish();
  facts.xffIn = xff;
  if (p.stripXff) {
    // nothing: internal addresses stay inside
  } else if (p.xffAppend !== null) s += 'X-Forwarded-For: ' + (xff === null ? p.xffAppend : xff + ', ' + p.xffAppend) + '\r\n';
  else if (xff !== null) s += 'X-Forwarded-For: ' + xff + '\r\n';
  const set = p.xfcc.set;
  if (xfcc !== null || set !== null) s += 'X-Forwarded-Client-Cert: ' + (xfcc === null ? set : set === null ? xfcc : xfcc + ',' + set) + '\r\n';
  s += 'X-Forwarded-Proto: ' + p.proto + '\r\n';
  if (facts.requestId === null && p.addRequestId) {
    const id = requestId();
    facts.requestId = id;
    s += 'X-Request-Id: ' + id + '\r\n';
  }
  if (ops !== null) s += ops.append;
  s += framingLine(p.framing);
  if (p.upgrade) s += 'Connection: upgrade\r\n';
  return s + '\r\n';
}

const EMPTY_POS: readonly number[] = [];

function framingLine(f: Framing): string {
  if (f === 'none') return '';
  if (f === 'chunked') return 'Transfer-Encoding: chunked\r\n';
  return 'Content-Length: ' + f + '\r\n';
}

// ------------------------------------------------------------------ response head

export interface ResponseHeadParams {
  readonly status: number;
  readonly reason: string;
  /** The received fields: flat [name, value, ...], or the raw lines (copied as they are where kept). */
  readonly headers: readonly string[] | RawFields;
  readonly connectionTokens: readonly string[];
  readonly framing: Framing;
  /** Connection header to write ('close', 'keep-alive', 'upgrade') or undefined for none. */
  readonly connection: string | undefined;
  readonly upgrade: boolean;
  readonly ops: CompiledHeaderOps | null;
}

export function buildResponseHead(p: ResponseHeadParams): string {
  const headers = p.headers;
  const nominated = p.connectionTokens.length > 0 ? nominatedFields(p.connectionTokens) : null;
  const ops = p.ops;
  let s = 'HTTP/1.1 ' + p.status + ' ' + p.reason + '\r\n';
  if (!Array.isArray(headers)) return s + rawResponseFields(headers as RawFields, p, nominated) + responseTail(p);
  for (let i = 0; i + 1 < headers.length; i += 2) {
    const name = headers[i]!;
    const k = classify(name, RESPONSE_TABLE);
    if (k === SKIP || (k === UPGRADE && !p.upgrade)) continue;
    if (nominated !== null || ops !== null) {
      const lower = name.toLowerCase();
      if (nominated !== null && nominated.has(lower)) continue;
      if (ops !== null && ops.remove.has(lower)) continue;
    }
    s += name + ': ' + headers[i + 1]! + '\r\n';
  }
  return s + responseTail(p);
}

/** The kept field lines of a raw head, by the same rules as the loop in buildResponseHead. */
function rawResponseFields(raw: RawFields, p: ResponseHeadParams, nominated: ReadonlySet<string> | null): string {
  const t = raw.text;
  const pos = raw.pos;
  const ops = p.ops;
  RAW_LINES.start(t);
  for (let i = 0; i + 4 < pos.length; i += 5) {
    const ls = pos[i]!;
    const ne = pos[i + 1]!;
    const k = classifyAt(t, ls, ne, RESPONSE_TABLE);
    if (k === SKIP || (k === UPGRADE && !p.upgrade)) continue;
    if (nominated !== null || ops !== null) {
      const lower = t.slice(ls, ne).toLowerCase();
      if (nominated !== null && nominated.has(lower)) continue;
      if (ops !== null && ops.remove.has(lower)) continue;
    }
    RAW_LINES.keep(pos, i);
  }
  return RAW_LINES.finish();
}

/**
 * The text of the kept lines of a raw head (RawFields), a line at a time: a line already written
 * as the builders write one (`Name: value` CRLF, one space, no trailing whitespace) is copied with
 * its kept neighbours as one slice of the received text; others are rewritten so. One instance
 * serves both builders: neither calls the other, and start() resets it.
 */
class RawLineWriter {
  private text = '';
  private out = '';
  private runStart = -1;
  private runEnd = -1;

  start(text: string): void {
    this.text = text;
    this.out = '';
    this.runStart = this.runEnd = -1;
  }

  /** Keeps the line whose five offsets start at pos[i]. */
  keep(pos: readonly number[], i: number): void {
    const t = this.text;
    const ls = pos[i]!;
    const ne = pos[i + 1]!;
    const vs = pos[i + 2]!;
    const ve = pos[i + 3]!;
    const le = pos[i + 4]!;
    if (vs === ne + 2 && t.charCodeAt(ne + 1) === 0x20 && ve === le - 2) {
      if (this.runEnd === ls) this.runEnd = le;
      else {
        this.flush();
        this.runStart = ls;
        this.runEnd = le;
      }
      return;
    }
    this.flush();
    this.out += t.slice(ls, ne) + ': ' + t.slice(vs, ve) + '\r\n';
  }

  finish(): string {
    this.flush();
    const out = this.out;
    this.out = this.text = '';
    return out;
  }

  private flush(): void {
    if (this.runStart < 0) return;
    this.out += this.text.slice(this.runStart, this.runEnd);
    this.runStart = this.runEnd = -1;
  }
}
const RAW_LINES = new RawLineWriter();

/** What follows the received fields: route additions, framing, Connection, the empty line. */
function responseTail(p: ResponseHeadParams): string {
  let s = p.ops !== null ? p.ops.append : '';
  s += framingLine(p.framing);
  if (p.connection !== undefined) s += 'Connection: ' + p.connection + '\r\n';
  return s + '\r\n';
}
