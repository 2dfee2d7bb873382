/**
 * Message heads as the parser hands them out. Raw headers keep the sender's case and order; the
 * facts the proxy needs for framing and routing are derived once, while parsing, so nothing later
 * re-scans the header list for them.
 */
import type { TargetForm } from './target.js';

export type HttpVersion = '1.0' | '1.1';

/**
 * What follows the head on the wire: 'none' (no body by rule: request without CL/TE, HEAD/1xx/204/
 * 304 responses, 2xx to CONNECT), 'length' (Content-Length bytes, possibly 0), 'chunked', or 'eof'
 * (a response without CL/TE: the body runs until the server closes, so the connection is not reused).
 */
export type BodyFraming = 'none' | 'length' | 'chunked' | 'eof';

interface MessageHead {
  readonly version: HttpVersion;
  /** Flat [name, value, name, value, ...], latin1-decoded, case and order preserved, OWS trimmed. */
  readonly headers: string[];
  /**
   * Declared Content-Length, or -1 when absent or when the message is chunked. For a response that
   * has no body by rule (HEAD, 1xx, 204, 304) it is what the field says, e.g. to forward on HEAD.
   */
  readonly contentLength: number;
  /** Transfer-Encoding is exactly `chunked` (the only coding accepted). */
  readonly chunked: boolean;
  /** How the body that follows this head is delimited (see BodyFraming). */
  readonly bodyFraming: BodyFraming;
  /** The connection may carry another message after this one (version + Connection tokens). */
  readonly keepAlive: boolean;
  /** Lowercased tokens from every Connection line ("close", "keep-alive", "upgrade", names). */
  readonly connectionTokens: string[];
  /** Request: asks for a protocol switch (Upgrade + Connection: upgrade, HTTP/1.1). Response: 101. */
  readonly upgrade: boolean;
  /** The Upgrade header value when `upgrade` is true, e.g. "websocket". */
  readonly upgradeProtocol: string | undefined;
}

export interface RequestHead extends MessageHead {
  readonly kind: 'request';
  readonly method: string;
  /** The request-target exactly as received. */
  readonly target: string;
  readonly targetForm: TargetForm;
  /** 'http' | 'https' for absolute-form, else undefined. */
  readonly scheme: string | undefined;
  /**
   * The one authority to route and authorise on: the target's authority for absolute- and
   * authority-form (RFC 9112 §3.2.2: Host is then ignored), otherwise Host. Raw case.
   */
  readonly authority: string | undefined;
  /** Origin-form path + query to forward ("/" when an absolute-form path is empty). */
  readonly path: string;
  /** The Host field value, or undefined when there is none. */
  readonly host: string | undefined;
  /** Absolute- or authority-form target names a different host/port than the Host field. */
  readonly authorityMismatch: boolean;
  /** HTTP/1.1 request with `Expect: 100-continue`. */
  readonly expectContinue: boolean;
  /**
   * As ResponseHead.raw: the field lines as received (the head arrived in one read), forwarded as
   * slices of that text; `headers` is built from them only if something reads it. Undefined once
   * the fields were edited (editHeaders): `headers` is then what is forwarded.
   */
  readonly raw?: RawFields | undefined;
}

export interface ResponseHead extends MessageHead {
  readonly kind: 'response';
  readonly statusCode: number;
  readonly reason: string;
  /**
   * The field lines as received, when the parser kept them that way (the whole head arrived in
   * one read): `headers` is then built from them only if something reads it, and the proxy
   * forwards the lines it keeps as they are.
   */
  readonly raw?: RawFields | undefined;
}

/**
 * Field lines as received: `text` holds them, and `pos` has five offsets into it per line, in
 * order: line start (= name start), name end (the colon), value start, value end (OWS trimmed),
 * line end (after its CRLF).
 */
export interface RawFields {
  readonly text: string;
  readonly pos: readonly number[];
}

/** The head's `headers`, to edit in place: from then on they, not the raw lines, are what is forwarded. */
export function editHeaders(head: RequestHead): string[] {
  const h = head.headers;
  if (head.raw !== undefined) (head as { raw?: RawFields | undefined }).raw = undefined;
  return h;
}

/** Index into `pos` of the first line at or after line index `from` whose name is `lower` (ASCII case ignored), or -1. */
export function rawFind(raw: RawFields, lower: string, from = 0): number {
  const t = raw.text;
  const pos = raw.pos;
  const n = lower.length;
  next: for (let i = from; i + 4 < pos.length; i += 5) {
    const ls = pos[i]!;
    if (pos[i + 1]! - ls !== n) continue;
    for (let k = 0; k < n; k++) if ((t.charCodeAt(ls + k) | 0x20) !== lower.charCodeAt(k)) continue next;
    return i;
  }
  return -1;
}

/** The value of the raw line at index `i` (from rawFind). */
export function rawValue(raw: RawFields, i: number): string {
  return raw.text.slice(raw.pos[i + 2]!, raw.pos[i + 3]!);
}

/** `headers` of raw field lines: flat [name, value, ...]. */
export function fieldsOf(raw: RawFields): string[] {
  const t = raw.text;
  const pos = raw.pos;
  const out: string[] = [];
  for (let i = 0; i + 4 < pos.length; i += 5) out.push(t.slice(pos[i]!, pos[i + 1]!), t.slice(pos[i + 2]!, pos[i + 3]!));
  return out;
}

export type HttpHead = RequestHead | ResponseHead;
