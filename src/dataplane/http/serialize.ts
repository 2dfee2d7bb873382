/**
 * HTTP/1.1 serialisation: message heads, chunk framing, canned responses and the hop-by-hop filter.
 *
 * Framing is owned here: writeRequestHead/writeResponseHead drop any Content-Length or
 * Transfer-Encoding found in the header list and write the framing the caller chose. A proxy never
 * forwards a framing header it did not decide itself, so a smuggled or stale one cannot leak through.
 *
 * Heads are returned as strings of latin1 characters (the parser decodes header bytes as latin1):
 * write them with `socket.write(head, 'latin1')` so each character becomes the byte it came from.
 * Header names and values are trusted: they come from the strict parser or from validated config.
 */
import { Buffer } from 'node:buffer';
import { TollgateError } from '../../shared/errors.js';
import type { HttpParseError } from './errors.js';

/** A Content-Length to write (a safe integer >= 0), 'chunked', or 'none' (no framing header). */
export type Framing = number | 'chunked' | 'none';

export function writeRequestHead(method: string, target: string, headers: readonly string[], framing: Framing, connection?: string): string {
  return appendFields(`${method} ${target} HTTP/1.1\r\n`, headers, framing, connection);
}

export function writeResponseHead(status: number, reason: string, headers: readonly string[], framing: Framing, connection?: string): string {
  if (!Number.isInteger(status) || status < 100 || status > 999) throw new TollgateError('TG_HTTP_BAD_STATUS', `cannot serialise status ${status}`);
  return appendFields(`HTTP/1.1 ${status} ${reason}\r\n`, headers, framing, connection);
}

function appendFields(s: string, headers: readonly string[], framing: Framing, connection: string | undefined): string {
  for (let i = 0; i + 1 < headers.length; i += 2) {
    const name = headers[i]!;
    // Length first: only 3 names are candidates, so most headers cost one integer compare.
    const n = name.length;
    if (n === 14 || n === 17 || (n === 10 && connection !== undefined)) {
      const lower = name.toLowerCase();
      if (lower === 'content-length' || lower === 'transfer-encoding' || lower === 'connection') continue;
    }
    s += name + ': ' + headers[i + 1]! + '\r\n';
  }
  if (framing === 'chunked') s += 'Transfer-Encoding: chunked\r\n';
  else if (framing !== 'none') {
    if (!Number.isSafeInteger(framing) || framing < 0) throw new TollgateError('TG_HTTP_BAD_FRAMING', `cannot serialise Content-Length ${framing}`);
    s += 'Content-Length: ' + framing + '\r\n';
  }
  if (connection !== undefined) s += 'Connection: ' + connection + '\r\n';
  return s + '\r\n';
}

// ---------------------------------------------------------------- chunked framing

/** `<hex length>\r\n`, written before each non-empty chunk of data. */
export function chunkHeader(len: number): string {
  if (!Number.isSafeInteger(len) || len <= 0) throw new TollgateError('TG_HTTP_BAD_FRAMING', `chunk length must be a positive integer, got ${len}`);
  return len.toString(16) + '\r\n';
}

/** Written after each chunk's data. */
export const CHUNK_END = '\r\n';

/** The last chunk with an empty trailer section: ends a chunked body. */
export const LAST_CHUNK = '0\r\n\r\n';

/** The last chunk followed by trailer fields (flat [name, value, ...]). */
export function lastChunk(trailers: readonly string[] = []): string {
  let s = '0\r\n';
  for (let i = 0; i + 1 < trailers.length; i += 2) s += trailers[i]! + ': ' + trailers[i + 1]! + '\r\n';
  return s + '\r\n';
}

// ---------------------------------------------------------------- canned responses

const REASONS: Readonly<Record<number, string>> = {
  100: 'Continue', 101: 'Switching Protocols',
  200: 'OK', 201: 'Created', 202: 'Accepted', 204: 'No Content', 206: 'Partial Content',
  301: 'Moved Permanently', 302: 'Found', 304: 'Not Modified', 307: 'Temporary Redirect', 308: 'Permanent Redirect',
  400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 405: 'Method Not Allowed',
  407: 'Proxy Authentication Required', 408: 'Request Timeout', 411: 'Length Required', 413: 'Content Too Large',
  414: 'URI Too Long', 417: 'Expectation Failed', 421: 'Misdirected Request', 426: 'Upgrade Required',
  429: 'Too Many Requests', 431: 'Request Header Fields Too Large',
  500: 'Internal Server Error', 501: 'Not Implemented', 502: 'Bad Gateway', 503: 'Service Unavailable',
  504: 'Gateway Timeout', 505: 'HTTP Version Not Supported',
};

export function reasonPhrase(status: number): string {
  return REASONS[status] ?? 'Unknown';
}

/**
 * A complete response the proxy generates itself (errors, denials): text body, Content-Length and
 * `Connection: close` — after a bad request the connection is not trusted for another message.
 * For statuses that cannot carry a body (1xx, 204, 304) the body is dropped.
 */
export function simpleResponse(status: number, body: string, extraHeaders: readonly string[] = []): Buffer {
  const bodyless = status < 200 || status === 204 || status === 304;
  const bytes = bodyless ? Buffer.alloc(0) : Buffer.from(body, 'utf8');
  let headers = extraHeaders;
  if (!bodyless && !hasHeader(extraHeaders, 'content-type')) headers = [...extraHeaders, 'Content-Type', 'text/plain; charset=utf-8'];
  const head = writeResponseHead(status, reasonPhrase(status), headers, bodyless ? 'none' : bytes.length, 'close');
  const out = Buffer.allocUnsafe(Buffer.byteLength(head, 'latin1') + bytes.length);
  const n = out.write(head, 0, 'latin1');
  bytes.copy(out, n);
  return out;
}

/** The canned answer to a parse error: its status, the stable code in the body, connection closed. */
export function errorResponse(err: HttpParseError): Buffer {
  return simpleResponse(err.status, `${reasonPhrase(err.status)} (${err.code})\n`);
}

function hasHeader(headers: readonly string[], lowerName: string): boolean {
  for (let i = 0; i < headers.length; i += 2) if (headers[i]!.toLowerCase() === lowerName) return true;
  return false;
}

// ---------------------------------------------------------------- hop-by-hop

/** Fields that describe one connection (RFC 9110 §7.6.1 and the de-facto ones), never forwarded. */
const HOP_BY_HOP: ReadonlySet<string> = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade',
  'proxy-authorization', 'proxy-authenticate', 'http2-settings',
]);

/**
 * Fields a sender may NOT remove by naming them in Connection. Dropping Content-Length would change
 * the framing the proxy computed from (`Connection: close, Content-Length` smuggling); dropping Host
 * would change the authority the request was routed and authorised on.
 */
const NOT_NOMINATABLE: ReadonlySet<string> = new Set(['content-length', 'host']);

export interface HopByHopOptions {
  /** Keep Upgrade (a request being upgraded, or a 101 response); send `Connection: upgrade` yourself. */
  readonly keepUpgrade?: boolean;
}

/**
 * Returns a new flat header list without hop-by-hop fields and without the fields named in the
 * message's Connection header (`connectionTokens`, lowercased, as the parser gives them) — except
 * Content-Length and Host, which stay whatever Connection says. Transfer-Encoding is always removed:
 * the serialiser re-applies framing.
 */
export function hopByHopFilter(headers: readonly string[], connectionTokens: readonly string[], options: HopByHopOptions = {}): string[] {
  const keepUpgrade = options.keepUpgrade === true;
  let nominated: Set<string> | null = null;
  for (const token of connectionTokens) {
    if (NOT_NOMINATABLE.has(token) || HOP_BY_HOP.has(token)) continue;
    (nominated ??= new Set()).add(token);
  }
  const out: string[] = [];
  for (let i = 0; i + 1 < headers.length; i += 2) {
    const name = headers[i]!;
    const lower = name.toLowerCase();
    if (HOP_BY_HOP.has(lower)) {
      if (!(keepUpgrade && lower === 'upgrade')) continue;
    } else if (nominated !== null && nominated.has(lower)) {
      continue;
    }
    out.push(name, headers[i + 1]!);
  }
  return out;
}
