/**
 * Errors raised by the HTTP/1.1 codec. Every parse failure is fatal for the connection it came
 * from: after a framing error nobody can know where the next message starts, so the connection is
 * answered (requests) or discarded (responses) and closed — never reused.
 */
import { TollgateError } from '../../shared/errors.js';

export type MessageKind = 'request' | 'response';

/**
 * Stable codes and the status a server answers with when a *request* fails that way. When a
 * *response* from upstream fails, the proxy answers 502 whatever the code (see HttpParseError).
 */
export const HTTP_ERROR_STATUS = {
  TG_HTTP_BAD_REQUEST_LINE: 400, // not `method SP target SP version CRLF`
  TG_HTTP_BAD_STATUS_LINE: 502, // not `version SP 3DIGIT [SP reason] CRLF` (responses only)
  TG_HTTP_BAD_METHOD: 400, // method is not a token, or longer than maxMethodLength
  TG_HTTP_BAD_TARGET: 400, // request-target malformed, or its form does not fit the method
  TG_HTTP_URI_TOO_LONG: 414, // request line longer than maxRequestLineBytes
  TG_HTTP_BAD_VERSION: 400, // not `HTTP/<digit>.<digit>` (e.g. `http/1.1`, `HTTP/1.10`)
  TG_HTTP_VERSION_NOT_SUPPORTED: 505, // well formed but not 1.0 or 1.1 (e.g. `HTTP/2.0`)
  TG_HTTP_BAD_HEADER_NAME: 400, // field name empty or not a token, or a line without a colon
  TG_HTTP_UNDERSCORE_HEADER: 400, // field name with `_` under --headers-with-underscores reject
  TG_HTTP_BAD_HEADER_VALUE: 400, // control character (other than HT) in a field value
  TG_HTTP_SPACE_BEFORE_COLON: 400, // `Name : value` (RFC 9112 §5.1 MUST reject)
  TG_HTTP_OBS_FOLD: 400, // line folding (line starting with SP/HT)
  TG_HTTP_BARE_LF: 400, // LF not preceded by CR in the head, a chunk line or the trailers
  TG_HTTP_BARE_CR: 400, // CR not followed by LF
  TG_HTTP_NUL: 400, // NUL byte in the head
  TG_HTTP_HEADERS_TOO_LARGE: 431, // head (or trailer section) longer than maxHeaderBytes
  TG_HTTP_TOO_MANY_HEADERS: 431, // more than maxHeaders fields (or trailer fields)
  TG_HTTP_MISSING_HOST: 400, // HTTP/1.1 request without Host
  TG_HTTP_DUPLICATE_HOST: 400, // more than one Host line
  TG_HTTP_BAD_HOST: 400, // Host is not `host[:port]` with a DNS-style name or an IP literal
  TG_HTTP_BAD_CONTENT_LENGTH: 400, // not 1*DIGIT, > 2^53-1, a list, or more than one line
  TG_HTTP_BAD_TE: 400, // malformed Transfer-Encoding, chunked not last, two lines, HTTP/1.0
  TG_HTTP_TE_NOT_IMPLEMENTED: 501, // well-formed Transfer-Encoding with codings we do not decode
  TG_HTTP_CL_TE: 400, // both Content-Length and Transfer-Encoding (request smuggling)
  TG_HTTP_CONNECT_BODY: 400, // CONNECT with Content-Length > 0 or Transfer-Encoding
  TG_HTTP_BAD_CHUNK: 400, // chunk-size not hex / too big / bad extension / no CRLF after data
  TG_HTTP_CHUNK_EXT_TOO_LONG: 400, // chunk line or total chunk extensions above the limits
  TG_HTTP_BAD_TRAILER: 400, // framing field (Content-Length, Transfer-Encoding, Host) in trailers
  TG_HTTP_TRUNCATED: 400, // EOF inside a head or before the declared body ended
} as const;

export type HttpErrorCode = keyof typeof HTTP_ERROR_STATUS;

export class HttpParseError extends TollgateError {
  declare readonly code: HttpErrorCode;
  /** Status to answer the downstream client with: the table's status, or 502 for responses. */
  readonly status: number;
  readonly kind: MessageKind;
  /** Always true: the byte stream is desynchronised, the connection must be closed, never reused. */
  readonly closeConnection = true as const;

  constructor(code: HttpErrorCode, kind: MessageKind, detail: string) {
    const where = kind === 'request' ? 'request from downstream' : 'response from upstream';
    const tail = kind === 'response' ? '; do not reuse this upstream connection' : '; closing the connection';
    super(code, `${code}: malformed ${where}: ${detail}${tail}`, {
      source: kind === 'request' ? 'downstream' : 'upstream',
      retryable: false,
    });
    this.name = 'HttpParseError';
    this.kind = kind;
    this.status = kind === 'request' ? HTTP_ERROR_STATUS[code] : 502;
  }
}
