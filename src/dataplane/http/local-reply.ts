/**
 * Responses the proxy writes itself: denials, routing failures, upstream failures, direct
 * responses and redirects. Unlike serialize.ts `simpleResponse` (always `Connection: close`, used
 * after parse errors), these keep the connection open when the request was read completely, as
 * Envoy does for its local replies. Denials and errors carry `x-tollgate-reason` so a client can see
 * why without access to the logs.
 */
import { Buffer } from 'node:buffer';
import { reasonPhrase } from './serialize.js';

export interface LocalReply {
  readonly status: number;
  readonly body: string;
  /** Stable reason (docs/errors.md); written as x-tollgate-reason when set. */
  readonly reason?: string | undefined;
  /** Extra fields, flat [name, value, ...] (Location for redirects). */
  readonly headers?: readonly string[] | undefined;
  /** No text body and no content-type of ours: `headers` say it all (a trailers-only gRPC reply). */
  readonly bare?: boolean;
}

/** Serializes a local reply. `close` adds `Connection: close`; `headOnly` (HEAD) omits the body. */
export function localReplyBytes(r: LocalReply, close: boolean, headOnly: boolean, http10KeepAlive: boolean): Buffer {
  const bodyless = r.status < 200 || r.status === 204 || r.status === 304;
  const body = bodyless ? '' : r.body;
  const bodyLen = Buffer.byteLength(body, 'utf8');
  let s = `HTTP/1.1 ${r.status} ${reasonPhrase(r.status)}\r\n`;
  const extra = r.headers;
  if (extra) for (let i = 0; i + 1 < extra.length; i += 2) s += `${extra[i]!}: ${extra[i + 1]!}\r\n`;
  if (r.reason !== undefined) s += `x-tollgate-reason: ${r.reason}\r\n`;
  if (r.bare === true) s += 'content-length: 0\r\n';
  else if (!bodyless) s += `content-type: text/plain; charset=utf-8\r\ncontent-length: ${bodyLen}\r\n`;
  if (close) s += 'connection: close\r\n';
  else if (http10KeepAlive) s += 'connection: keep-alive\r\n';
  s += '\r\n';
  const headLen = Buffer.byteLength(s, 'latin1');
  const out = Buffer.allocUnsafe(headLen + (headOnly ? 0 : bodyLen));
  out.write(s, 0, 'latin1');
  if (!headOnly && bodyLen > 0) out.write(body, headLen, 'utf8');
  return out;
}

/** The body Tollgate writes for a reply without a configured body: "<reason phrase>: <reason>\n". */
export function defaultBody(status: number, reason: string | undefined): string {
  return reason === undefined ? `${reasonPhrase(status)}\n` : `${reasonPhrase(status)}: ${reason}\n`;
}
