/**
 * Strict, push-style HTTP/1.1 parser (RFC 9112) for requests and responses.
 *
 * Feed it bytes with execute(); it calls a handler object (no closures per message) with the head,
 * zero-copy body slices and completion. Anything that could let two parsers disagree on where a
 * message ends is rejected with a distinct code (see errors.ts and docs/http-codec.md).
 *
 * How bytes move: the head, chunk-size lines and trailers are parsed line by line, directly from the
 * caller's buffer. Only when a line is cut by the end of a read are its bytes copied, into one
 * growable scratch buffer capped by the line's byte budget; the line is finished from there once its
 * LF arrives. Each byte of the head is therefore examined once, plus once more when a read split it.
 * The field lines of a head that arrived in one read take a faster loop (parseFieldLines) with the
 * same grammar; the line parser takes over at any line that loop does not accept.
 */
import { Buffer } from 'node:buffer';
import { COLON, CR, FIELD_VALUE, HEX, HT, LF, QDTEXT, SEMI, SP, TOKEN, BACKSLASH, DQUOTE, EQUALS, equalsLower, lowerBytes } from './chars.js';
import { HttpParseError, type HttpErrorCode, type MessageKind } from './errors.js';
import { fieldsOf, type BodyFraming, type HttpHead, type HttpVersion, type RawFields, type RequestHead, type ResponseHead } from './head.js';
import { checkAuthority, defaultPortOf, parseTarget, sameAuthority, type ParsedTarget, type TargetForm } from './target.js';

export interface HttpParserOptions {
  /** Start line + fields + final CRLF; also the cap for a trailer section. Default 16 KiB (-> 431). */
  readonly maxHeaderBytes?: number;
  /** Field lines in the head; also the cap for trailer fields. Default 100 (-> 431). */
  readonly maxHeaders?: number;
  /** Request line including CRLF. Default 8 KiB (-> 414). */
  readonly maxRequestLineBytes?: number;
  /** Default 32. Longest registered method (UPDATEREDIRECTREF) has 17 bytes. */
  readonly maxMethodLength?: number;
  /** One chunk-size line including extensions and CRLF. Default 1 KiB. */
  readonly maxChunkLineBytes?: number;
  /** Chunk-extension bytes summed over one message (a flood of tiny chunks). Default 16 KiB. */
  readonly maxChunkExtBytes?: number;
}

export interface HttpParserHandler<H> {
  onHead(head: H): void;
  /** A slice of the buffer given to execute(): copy it if you keep it past the call. */
  onBody(chunk: Buffer): void;
  /** Trailer fields of a chunked message, flat [name, value, ...]; only called when non-empty. */
  onTrailers?(trailers: string[]): void;
  /**
   * After passChunkedBody(): the chunked body as received, in validated pieces (chunk lines with
   * their extensions, data, CRLFs, the last chunk and the trailer section), instead of onBody.
   * `dataBytes`: how many of them are chunk data. A slice of the buffer given to execute() (a copy
   * for a line that a read split): copy it if you keep it past the call.
   */
  onChunkedBytes?(bytes: Buffer, dataBytes: number): void;
  onMessageComplete(): void;
  /** Called once; the parser then ignores all input. Close the connection (see HttpParseError). */
  onError(err: HttpParseError): void;
}

export type HeadOf<K extends MessageKind> = K extends 'request' ? RequestHead : ResponseHead;

/**
 * Parser states. Plain module constants, not an enum: under verbatimModuleSyntax tsc emits enums as
 * mutable objects, and the hot loop should compare small integer literals.
 */
type State = number;
const START_LINE = 0; // request line or status line (requests: optional leading CRLFs)
const FIELDS = 1; // header field lines up to the empty line
const BODY_LENGTH = 2; // Content-Length bytes
const CHUNK_LINE = 3; // chunk-size [extensions] CRLF
const CHUNK_DATA = 4;
const CHUNK_DATA_CR = 5; // the CR after chunk data
const CHUNK_DATA_LF = 6; // the LF after chunk data
const TRAILERS = 7;
const BODY_EOF = 8; // response body delimited by connection close
const UPGRADED = 9; // after 101 / 2xx to CONNECT: bytes belong to another protocol, caller takes them
const FAILED_STATE = 10;
const FINISHED = 11; // finish() was called

/** Line parser results that are not positions. */
const INCOMPLETE = -1;
const FAILED = -2;

/** RFC 9112 §2.2 says to ignore "at least one" empty line before a request; we ignore up to four. */
const MAX_LEADING_EMPTY_LINES = 4;
const MAX_SAFE = Number.MAX_SAFE_INTEGER;
/** `headers` while the field lines are kept raw: never pushed to (leaving raw makes a new list). */
const NO_FIELDS: string[] = [];

const L_HOST = lowerBytes('host');
const L_EXPECT = lowerBytes('expect');
const L_UPGRADE = lowerBytes('upgrade');
const L_CONNECTION = lowerBytes('connection');
const L_CONTENT_LENGTH = lowerBytes('content-length');
const L_TRANSFER_ENCODING = lowerBytes('transfer-encoding');

interface Latin1Buffer extends Buffer {
  latin1Slice(start: number, end: number): string;
}
/** Buffer#latin1Slice skips toString()'s argument juggling; header bytes are latin1 by definition. */
const latin1 = (b: Buffer, start: number, end: number): string => (b as Latin1Buffer).latin1Slice(start, end);
const HEAD_END = Buffer.from('\r\n\r\n', 'latin1');

export class HttpParser<K extends MessageKind = MessageKind> {
  readonly kind: K;
  private readonly handler: HttpParserHandler<HttpHead>;
  private readonly isRequest: boolean;
  private readonly maxHeaderBytes: number;
  private readonly maxHeaders: number;
  private readonly maxRequestLineBytes: number;
  private readonly maxMethodLength: number;
  private readonly maxChunkLineBytes: number;
  private readonly maxChunkExtBytes: number;

  private state: State = START_LINE;
  private paused = false;
  /** Partial line carried over between execute() calls: scratch[0, partialLen). */
  private scratch: Buffer | null = null;
  private partialLen = 0;
  /**
   * The head decoded once: latin1 of textBuf[textBase, textEnd), or null. Crossing into C++ for
   * each of ~20 small strings costs more than the parsing; one decode plus String#slice does not.
   * Only valid during the execute() call that set it (a caller may refill the same Buffer).
   */
  private text: string | null = null;
  private textBuf: Buffer | null = null;
  private textBase = 0;
  private textEnd = 0;
  /**
   * The field lines of the head being parsed are kept as offsets into `rawText` (see RawFields)
   * instead of strings. Null when a line of the head is not in that decoded text (a head split
   * across reads): the lines so far become strings then, and so do the rest.
   */
  private rawText: string | null = null;
  private rawPos: number[] = [];

  // Per-message state, reset by beginMessage(). Initialised here so every parser has one shape.
  private sectionBytes = 0; // bytes of the head (or of the trailer section) so far
  private fieldCount = 0;
  private emptyLines = 0;
  private minor = 1;
  private method = '';
  private target = '';
  private parsedTarget: ParsedTarget | null = null;
  private statusCode = 0;
  private reason = '';
  private headers: string[] = [];
  private trailers: string[] = [];
  private contentLength = -1;
  private chunked = false;
  private teSeen = false;
  private host: string | undefined = undefined;
  private hostSeen = false;
  private connectionTokens: string[] = [];
  private connClose = false;
  private connKeepAlive = false;
  private connUpgrade = false;
  private upgradeValue: string | undefined = undefined;
  private expect100 = false;
  private remaining = 0;
  private chunkExtBytes = 0;
  private upgradeAfter = false;
  /** This message's chunked body goes to onChunkedBytes as received (passChunkedBody). */
  private passChunked = false;
  /** passChunked: where the validated body bytes not yet handed on start in this execute()'s buffer (-1: none). */
  private rawFrom = -1;
  /** passChunked: chunk-data bytes among them. */
  private rawData = 0;
  /** passChunked: the trailer section ended; the message completes once its bytes are handed on. */
  private rawDone = false;
  /** Method of the request the next response answers (responses only). */
  private pendingMethod: string | undefined = undefined;

  constructor(kind: K, handler: HttpParserHandler<HeadOf<K>>, options: HttpParserOptions = {}) {
    this.kind = kind;
    this.handler = handler;
    this.isRequest = kind === 'request';
    this.maxHeaderBytes = options.maxHeaderBytes ?? 16 * 1024;
    this.maxHeaders = options.maxHeaders ?? 100;
    this.maxRequestLineBytes = options.maxRequestLineBytes ?? 8 * 1024;
    this.maxMethodLength = options.maxMethodLength ?? 32;
    this.maxChunkLineBytes = options.maxChunkLineBytes ?? 1024;
    this.maxChunkExtBytes = options.maxChunkExtBytes ?? 16 * 1024;
  }

  /**
   * Consumes bytes, calling the handler. Returns how many bytes were consumed: all of them, unless
   * the parser was paused (pause() from a callback stops right after that event), upgraded (the
   * rest belongs to the new protocol) or failed. Unconsumed bytes are the caller's to re-feed.
   */
  execute(buf: Buffer): number {
    const len = buf.length;
    let pos = 0;
    this.textBuf = null;
    this.rawFrom = -1;
    while (pos < len && !this.paused) {
      const state = this.state;
      if (this.passChunked && this.rawFrom < 0 && state >= CHUNK_LINE && state <= TRAILERS) this.rawFrom = pos;
      switch (state) {
        case START_LINE:
        case FIELDS:
        case CHUNK_LINE:
        case TRAILERS: {
          const next = this.lineStep(buf, pos, len);
          if (next < 0) return pos;
          pos = next;
          if (this.rawDone) this.completeRaw(buf, pos);
          break;
        }
        case BODY_LENGTH: {
          const n = Math.min(this.remaining, len - pos);
          const chunk = buf.subarray(pos, pos + n);
          pos += n;
          this.remaining -= n;
          this.handler.onBody(chunk);
          // A message whose last byte is in is complete even if onBody paused: no bytes needed.
          if (this.remaining === 0 && this.state === BODY_LENGTH) this.completeMessage();
          break;
        }
        case CHUNK_DATA: {
          const n = Math.min(this.remaining, len - pos);
          this.remaining -= n;
          if (this.remaining === 0) this.state = CHUNK_DATA_CR;
          if (this.passChunked) {
            this.rawData += n;
            pos += n;
            break;
          }
          const chunk = buf.subarray(pos, pos + n);
          pos += n;
          this.handler.onBody(chunk);
          break;
        }
        case CHUNK_DATA_CR:
          if (buf[pos] !== CR) return this.failAt(pos, 'TG_HTTP_BAD_CHUNK', 'chunk data not followed by CRLF');
          pos++;
          this.state = CHUNK_DATA_LF;
          break;
        case CHUNK_DATA_LF:
          if (buf[pos] !== LF) return this.failAt(pos, 'TG_HTTP_BAD_CHUNK', 'chunk data not followed by CRLF');
          pos++;
          this.state = CHUNK_LINE;
          break;
        case BODY_EOF: {
          const chunk = buf.subarray(pos);
          pos = len;
          this.handler.onBody(chunk);
          break;
        }
        default: // UPGRADED, FAILED_STATE, FINISHED
          return pos;
      }
    }
    if (this.rawFrom >= 0) this.handOnRaw(buf, pos);
    return pos;
  }

  /**
   * The rest of this message's chunked body (the next byte onward) goes to onChunkedBytes as
   * received, each piece only once the parser has validated it, instead of decoded data to onBody:
   * a proxy forwarding it to an HTTP/1.1 peer writes it unchanged rather than re-chunking it. Call
   * it from onHead (it applies to that message only, and only if its body is chunked).
   */
  passChunkedBody(): void {
    if (this.chunked && this.handler.onChunkedBytes !== undefined) this.passChunked = true;
  }

  /** passChunkedBody() took effect: this message's body goes to onChunkedBytes. */
  get passesChunkedBody(): boolean {
    return this.passChunked;
  }

  /** passChunked: hands on buf[rawFrom, to), the validated bytes since the last hand-on. */
  private handOnRaw(buf: Buffer, to: number): void {
    const from = this.rawFrom;
    this.rawFrom = -1;
    if (to <= from) return;
    const data = this.rawData;
    this.rawData = 0;
    this.handler.onChunkedBytes!(buf.subarray(from, to), data);
  }

  /** passChunked: the trailer section ended at `pos`: hand its bytes on, then complete the message. */
  private completeRaw(buf: Buffer, pos: number): void {
    this.rawDone = false;
    this.passChunked = false;
    if (this.rawFrom >= 0) this.handOnRaw(buf, pos);
    this.handler.onMessageComplete();
  }

  /**
   * End of input (the peer closed). Completes a close-delimited response body; anything else cut
   * short (a partial head, a body shorter than declared, a chunked body without its last chunk) is
   * reported as TG_HTTP_TRUNCATED. Call it after feeding every byte received.
   */
  finish(): void {
    const s = this.state;
    if (s === FAILED_STATE || s === UPGRADED || s === FINISHED) return;
    this.state = FINISHED;
    if (s === BODY_EOF) {
      this.handler.onMessageComplete();
    } else if (s === START_LINE) {
      if (this.partialLen > 0) this.failTruncated('connection closed inside a start line');
    } else if (s === FIELDS) {
      this.failTruncated('connection closed inside the header section');
    } else if (s === BODY_LENGTH || s === CHUNK_LINE || s === CHUNK_DATA || s === CHUNK_DATA_CR || s === CHUNK_DATA_LF || s === TRAILERS) {
      this.failTruncated('connection closed before the end of the body');
    }
  }

  /** Stop consuming after the current event; execute() returns the bytes consumed so far. */
  pause(): void {
    this.paused = true;
  }

  /** Allow consumption again. Re-feed the bytes execute() did not consume. */
  resume(): void {
    this.paused = false;
  }

  /** Responses only: the method of the request the next response answers (HEAD, CONNECT matter). */
  expectResponseTo(method: string): void {
    this.pendingMethod = method;
  }

  get isPaused(): boolean {
    return this.paused;
  }

  /** After a 101 response or a 2xx to CONNECT: the unconsumed bytes belong to the new protocol. */
  get upgraded(): boolean {
    return this.state === UPGRADED;
  }

  get failed(): boolean {
    return this.state === FAILED_STATE;
  }

  /** Between messages with nothing buffered: the connection may be reused or closed cleanly. */
  get idle(): boolean {
    return this.state === START_LINE && this.partialLen === 0 && this.emptyLines === 0;
  }

  // ---------------------------------------------------------------- line machinery

  /** Parses one line (or stores its start). Returns the position after it, or -1 on failure. */
  private lineStep(buf: Buffer, pos: number, len: number): number {
    if (this.state === FIELDS && this.rawText !== null && buf === this.textBuf && this.text === this.rawText && this.partialLen === 0) {
      // The field lines the fast path takes; the line parser goes on from the first it does not.
      pos = this.parseFieldLines(buf, pos);
      if (pos < 0) return -1;
    }
    const budget = this.lineBudget();
    if (budget <= 0) return this.failLineTooLong();
    if (this.partialLen === 0) {
      // Fast path: parse in place, never looking past the budget.
      if (this.state <= FIELDS && (buf !== this.textBuf || pos >= this.textEnd)) this.decodeHead(buf, pos);
      const end = len - pos > budget ? pos + budget : len;
      const r = this.parseLine(buf, pos, end);
      if (r >= 0) return r;
      if (r === FAILED) return -1;
      if (end < len) return this.failLineTooLong();
      // passChunked: the bytes before this line are validated; the line is handed on once complete.
      if (this.rawFrom >= 0) this.handOnRaw(buf, pos);
      this.savePartial(buf, pos, len);
      return len;
    }
    // A line started in an earlier read: take bytes up to its LF, then parse it from scratch.
    // passChunked: its bytes are handed on from the scratch copy once it parsed, not from this read.
    const raw = this.rawFrom >= 0;
    if (raw) this.handOnRaw(buf, pos);
    const lf = buf.indexOf(LF, pos);
    const stop = lf < 0 ? len : lf + 1;
    if (this.partialLen + (stop - pos) > budget) return this.failLineTooLong();
    this.savePartial(buf, pos, stop);
    if (lf < 0) return len;
    const lineLen = this.partialLen;
    this.partialLen = 0;
    const r = this.parseLine(this.scratch!, 0, lineLen);
    if (r === FAILED) return -1;
    // Every line parser stops at the LF at the latest, so a complete line is always consumed.
    if (r !== lineLen) return this.fail('TG_HTTP_BAD_REQUEST_LINE', 'internal error: buffered line not consumed');
    if (raw) {
      // The line as received, copied out of the scratch buffer the next line reuses.
      const data = this.rawData;
      this.rawData = 0;
      this.rawFrom = stop;
      this.handler.onChunkedBytes!(Buffer.from(this.scratch!.subarray(0, lineLen)), data);
    }
    return stop;
  }

  private parseLine(b: Buffer, p: number, end: number): number {
    switch (this.state) {
      case START_LINE:
        return this.isRequest ? this.parseRequestLine(b, p, end) : this.parseStatusLine(b, p, end);
      case CHUNK_LINE:
        return this.parseChunkLine(b, p, end);
      default: // Fields, Trailers
        return this.parseFieldLine(b, p, end);
    }
  }

  /** Bytes the current line may take, CRLF included. */
  private lineBudget(): number {
    switch (this.state) {
      case START_LINE:
        return this.isRequest ? Math.min(this.maxRequestLineBytes, this.maxHeaderBytes) : this.maxHeaderBytes;
      case CHUNK_LINE:
        return this.maxChunkLineBytes;
      default:
        return this.maxHeaderBytes - this.sectionBytes;
    }
  }

  private failLineTooLong(): number {
    if (this.state === CHUNK_LINE) return this.fail('TG_HTTP_CHUNK_EXT_TOO_LONG', `chunk line longer than ${this.maxChunkLineBytes} bytes`);
    if (this.state === START_LINE && this.isRequest && this.maxRequestLineBytes <= this.maxHeaderBytes) {
      return this.fail('TG_HTTP_URI_TOO_LONG', `request line longer than ${this.maxRequestLineBytes} bytes`);
    }
    const what = this.state === TRAILERS ? 'trailer section' : 'header section';
    return this.fail('TG_HTTP_HEADERS_TOO_LARGE', `${what} larger than ${this.maxHeaderBytes} bytes`);
  }

  /** Decodes the head starting at `pos` in one call when its end is in this buffer. */
  private decodeHead(buf: Buffer, pos: number): void {
    this.textBuf = buf;
    const end = buf.indexOf(HEAD_END, pos);
    if (end < 0 || end + 4 - pos > this.maxHeaderBytes) {
      this.text = null;
      this.textEnd = buf.length; // do not search this buffer again
      return;
    }
    this.textBase = pos;
    this.textEnd = end + 4;
    this.text = latin1(buf, pos, end + 4);
  }

  /**
   * latin1 string of b[s, e): a slice of the decoded head when it covers the range. V8 may share
   * the head's memory with such slices; the head is at most maxHeaderBytes and lives as long as
   * its headers do, which is what we want for the life of one request.
   */
  private str(b: Buffer, s: number, e: number): string {
    const text = this.text;
    if (b === this.textBuf && text !== null && e <= this.textEnd) return text.slice(s - this.textBase, e - this.textBase);
    return latin1(b, s, e);
  }

  /** Appends buf[from, to) to the scratch line, growing it geometrically (callers bound the size). */
  private savePartial(buf: Buffer, from: number, to: number): void {
    const need = this.partialLen + (to - from);
    let s = this.scratch;
    if (s === null || s.length < need) {
      const grown = Buffer.allocUnsafe(Math.max(need, s === null ? 256 : Math.min(s.length * 2, this.maxHeaderBytes)));
      if (s !== null) s.copy(grown, 0, 0, this.partialLen);
      this.scratch = s = grown;
    }
    buf.copy(s, this.partialLen, from, to);
    this.partialLen = need;
  }

  /**
   * Classifies the byte that ended a line's content at b[i] (i < end): CRLF is the good case and
   * returns i + 2; a CR whose LF is not in yet returns INCOMPLETE. Others fail with a specific code.
   */
  private lineEnd(b: Buffer, i: number, end: number, otherCode: HttpErrorCode, what: string): number {
    const c = b[i]!;
    if (c === CR) {
      if (i + 1 >= end) return INCOMPLETE;
      if (b[i + 1] === LF) return i + 2;
      return this.fail('TG_HTTP_BARE_CR', `CR not followed by LF in ${what}`);
    }
    if (c === LF) return this.fail('TG_HTTP_BARE_LF', `LF without CR in ${what}`);
    if (c === 0) return this.fail('TG_HTTP_NUL', `NUL byte in ${what}`);
    return this.fail(otherCode, `byte 0x${c.toString(16)} not allowed in ${what}`);
  }

  // ---------------------------------------------------------------- start lines

  private beginMessage(): void {
    this.sectionBytes = 0;
    this.fieldCount = 0;
    this.emptyLines = 0;
    this.contentLength = -1;
    this.chunked = false;
    this.teSeen = false;
    this.host = undefined;
    this.hostSeen = false;
    this.connectionTokens = [];
    this.connClose = false;
    this.connKeepAlive = false;
    this.connUpgrade = false;
    this.upgradeValue = undefined;
    this.expect100 = false;
    this.chunkExtBytes = 0;
    this.upgradeAfter = false;
    this.passChunked = false;
    this.rawData = 0;
    this.rawDone = false;
  }

  /** `method SP request-target SP HTTP-version CRLF`, single spaces, nothing else. */
  private parseRequestLine(b: Buffer, p: number, end: number): number {
    const c0 = b[p]!;
    if (c0 === CR || c0 === LF) return this.parseLeadingEmptyLine(b, p, end);
    let i = p;
    while (i < end && TOKEN[b[i]!] === 1) i++;
    if (i - p > this.maxMethodLength) return this.fail('TG_HTTP_BAD_METHOD', `method longer than ${this.maxMethodLength} bytes`);
    if (i >= end) return INCOMPLETE;
    if (b[i] !== SP) {
      return b[i] === CR
        ? this.failOrIncomplete(b, i, end, 'TG_HTTP_BAD_REQUEST_LINE', 'request line has no target')
        : this.failOrIncomplete(b, i, end, 'TG_HTTP_BAD_METHOD', 'method is not a token');
    }
    if (i === p) return this.fail('TG_HTTP_BAD_REQUEST_LINE', 'request line starts with whitespace');
    const methodEnd = i++;
    const targetStart = i;
    // Target bytes: visible ASCII here; form-specific rules are checked by parseTarget (target.ts).
    while (i < end) {
      const c = b[i]!;
      if (c <= SP || c >= 0x7f) break;
      i++;
    }
    if (i >= end) return INCOMPLETE;
    if (b[i] !== SP) {
      return b[i] === CR
        ? this.failOrIncomplete(b, i, end, 'TG_HTTP_BAD_REQUEST_LINE', 'request line has no HTTP version')
        : this.failOrIncomplete(b, i, end, 'TG_HTTP_BAD_TARGET', 'request-target has a byte outside visible ASCII');
    }
    if (i === targetStart) return this.fail('TG_HTTP_BAD_REQUEST_LINE', 'empty request-target (two spaces)');
    const targetEnd = i++;
    const versionStart = i;
    while (i < end && b[i] !== CR && b[i] !== LF) i++;
    if (i >= end) return INCOMPLETE;
    const next = this.lineEnd(b, i, end, 'TG_HTTP_BAD_REQUEST_LINE', 'request line');
    if (next < 0) return next;
    if (!this.parseVersion(b, versionStart, i)) return FAILED;

    this.beginMessage();
    this.sectionBytes = next - p;
    const method = this.method = internMethod(b, p, methodEnd);
    const target = this.target = this.str(b, targetStart, targetEnd);
    const parsed = parseTarget(method, target, b, targetStart);
    if (typeof parsed === 'string') return this.fail('TG_HTTP_BAD_TARGET', parsed);
    this.parsedTarget = parsed;
    this.state = FIELDS;
    this.keepRawFields(b, next);
    return next;
  }

  /** An empty line before the request line: tolerated (RFC 9112 §2.2), but only a few, and CRLF. */
  private parseLeadingEmptyLine(b: Buffer, p: number, end: number): number {
    const next = this.lineEnd(b, p, end, 'TG_HTTP_BAD_REQUEST_LINE', 'empty line before the request line');
    if (next < 0) return next;
    if (++this.emptyLines > MAX_LEADING_EMPTY_LINES) return this.fail('TG_HTTP_BAD_REQUEST_LINE', 'too many empty lines before the request line');
    return next;
  }

  /** `HTTP-version SP 3DIGIT [SP reason-phrase] CRLF`; a missing SP before an empty reason is tolerated. */
  private parseStatusLine(b: Buffer, p: number, end: number): number {
    let i = p;
    while (i < end && b[i] !== SP && b[i] !== CR && b[i] !== LF) i++;
    if (i >= end) return INCOMPLETE;
    if (b[i] !== SP) return this.failOrIncomplete(b, i, end, 'TG_HTTP_BAD_STATUS_LINE', 'status line has no status code');
    if (!this.parseVersion(b, p, i)) return FAILED;
    i++;
    let status = 0;
    for (let k = 0; k < 3; k++, i++) {
      if (i >= end) return INCOMPLETE;
      const d = b[i]! - 0x30;
      if (d < 0 || d > 9) return this.failOrIncomplete(b, i, end, 'TG_HTTP_BAD_STATUS_LINE', 'status code is not three digits');
      status = status * 10 + d;
    }
    if (status < 100 || status > 599) return this.fail('TG_HTTP_BAD_STATUS_LINE', 'status code is not 100-599');
    if (i >= end) return INCOMPLETE;
    let reasonStart = i;
    if (b[i] === SP) {
      reasonStart = ++i;
      while (i < end && FIELD_VALUE[b[i]!] === 1) i++;
      if (i >= end) return INCOMPLETE;
    }
    const next = this.lineEnd(b, i, end, 'TG_HTTP_BAD_STATUS_LINE', 'status line');
    if (next < 0) return next;
    this.beginMessage();
    this.sectionBytes = next - p;
    this.statusCode = status;
    this.reason = this.str(b, reasonStart, i);
    this.state = FIELDS;
    this.keepRawFields(b, next);
    return next;
  }

  /** The start line ended at `next` in `b`: the field lines are kept as offsets when the whole head was decoded at once. */
  private keepRawFields(b: Buffer, next: number): void {
    if (b === this.textBuf && this.text !== null && next <= this.textEnd) {
      this.rawText = this.text;
      this.rawPos = [];
      this.headers = NO_FIELDS;
    } else {
      this.rawText = null;
      this.headers = [];
    }
  }

  /**
   * `HTTP/1.0` or `HTTP/1.1` -> sets this.minor. Any other `HTTP/d.d` -> 505; anything else -> 400.
   * Note that beginMessage() does not touch minor, so it survives for the message being parsed.
   */
  private parseVersion(b: Buffer, s: number, e: number): boolean {
    if (e - s === 8 && b[s] === 0x48 && b[s + 1] === 0x54 && b[s + 2] === 0x54 && b[s + 3] === 0x50 && b[s + 4] === 0x2f && b[s + 6] === 0x2e) {
      const major = b[s + 5]! - 0x30;
      const minor = b[s + 7]! - 0x30;
      if (major >= 0 && major <= 9 && minor >= 0 && minor <= 9) {
        if (major === 1 && minor <= 1) {
          this.minor = minor;
          return true;
        }
        this.fail('TG_HTTP_VERSION_NOT_SUPPORTED', `HTTP/${major}.${minor} is not supported`);
        return false;
      }
    }
    for (let i = s; i < e; i++) {
      if (b[i] === SP) {
        this.fail(this.isRequest ? 'TG_HTTP_BAD_REQUEST_LINE' : 'TG_HTTP_BAD_STATUS_LINE', 'extra space in the start line');
        return false;
      }
    }
    this.fail('TG_HTTP_BAD_VERSION', 'malformed HTTP version');
    return false;
  }

  // ---------------------------------------------------------------- field lines

  /** `field-name ":" OWS field-value OWS CRLF`, or the empty line that ends the section. */
  private parseFieldLine(b: Buffer, p: number, end: number): number {
    const c0 = b[p]!;
    if (c0 === CR || c0 === LF) {
      const next = this.lineEnd(b, p, end, 'TG_HTTP_BAD_HEADER_NAME', 'field line');
      if (next < 0) return next;
      this.sectionBytes += 2;
      if (this.state === TRAILERS) this.finishTrailers();
      else if (!this.finishHead()) return FAILED;
      return next;
    }
    if (c0 === SP || c0 === HT) return this.fail('TG_HTTP_OBS_FOLD', 'line folding (a field line starting with whitespace)');
    let i = p;
    while (i < end && TOKEN[b[i]!] === 1) i++;
    if (i >= end) return INCOMPLETE;
    const nameEnd = i;
    let c = b[i]!;
    if (c !== COLON) {
      if (c === SP || c === HT) return this.fail('TG_HTTP_SPACE_BEFORE_COLON', 'whitespace between field name and colon');
      if (c === CR && i + 1 < end && b[i + 1] === LF) return this.fail('TG_HTTP_BAD_HEADER_NAME', 'field line without a colon');
      return this.lineEnd(b, i, end, 'TG_HTTP_BAD_HEADER_NAME', 'field name');
    }
    if (i === p) return this.fail('TG_HTTP_BAD_HEADER_NAME', 'empty field name');
    i++;
    while (i < end && ((c = b[i]!) === SP || c === HT)) i++;
    const valueStart = i;
    while (i < end && FIELD_VALUE[b[i]!] === 1) i++;
    if (i >= end) return INCOMPLETE;
    let valueEnd = i;
    const next = this.lineEnd(b, i, end, 'TG_HTTP_BAD_HEADER_VALUE', 'field value');
    if (next < 0) return next;
    while (valueEnd > valueStart && ((c = b[valueEnd - 1]!) === SP || c === HT)) valueEnd--;

    this.sectionBytes += next - p;
    if (++this.fieldCount > this.maxHeaders) {
      const what = this.state === TRAILERS ? 'trailer fields' : 'header fields';
      return this.fail('TG_HTTP_TOO_MANY_HEADERS', `more than ${this.maxHeaders} ${what}`);
    }
    if (this.rawText !== null && this.state === FIELDS) {
      if (b === this.textBuf && this.text === this.rawText && next <= this.textEnd) {
        const base = this.textBase;
        this.rawPos.push(p - base, nameEnd - base, valueStart - base, valueEnd - base, next - base);
        return this.noteField(b, p, nameEnd - p, valueStart, valueEnd, null) ? next : FAILED;
      }
      this.headers = fieldsOf({ text: this.rawText, pos: this.rawPos });
      this.rawText = null;
    }
    const name = this.str(b, p, nameEnd);
    const value = this.str(b, valueStart, valueEnd);
    if (this.state === TRAILERS) {
      if (isFramingName(b, p, nameEnd - p)) return this.fail('TG_HTTP_BAD_TRAILER', `${name} is not allowed in trailers`);
      this.trailers.push(name, value);
      return next;
    }
    this.headers.push(name, value);
    return this.noteField(b, p, nameEnd - p, valueStart, valueEnd, value) ? next : FAILED;
  }

  /**
   * Field lines from `p` in a head decoded in one piece (so every line ends inside `b`): the
   * grammar of parseFieldLine in one loop, with the byte values written out and the table held in
   * a local (an imported binding is loaded and checked on every use, in every iteration). The
   * field count and the fields that decide framing are checked line by line, as parseFieldLine
   * does. Stops at the empty line or at a line it does not take as it is (parseFieldLine then
   * says what is wrong with it). Returns the position it stopped at, or FAILED.
   */
  private parseFieldLines(b: Buffer, p: number): number {
    const token = TOKEN;
    const base = this.textBase;
    const pos = this.rawPos;
    let i = p;
    for (;;) {
      const ls = i;
      let c = b[i]!;
      while (token[c] === 1) c = b[++i]!;
      if (c !== 0x3a || i === ls) return ls;
      const ne = i;
      c = b[++i]!;
      while (c === 0x20 || c === 0x09) c = b[++i]!;
      const vs = i;
      for (;;) {
        while (c >= 0x20 && c !== 0x7f) c = b[++i]!;
        if (c !== 0x09) break;
        c = b[++i]!;
      }
      if (c !== 0x0d || b[i + 1] !== 0x0a) return ls;
      let ve = i;
      while (ve > vs && ((c = b[ve - 1]!) === 0x20 || c === 0x09)) ve--;
      i += 2;
      this.sectionBytes += i - ls;
      if (++this.fieldCount > this.maxHeaders) return this.fail('TG_HTTP_TOO_MANY_HEADERS', `more than ${this.maxHeaders} header fields`);
      pos.push(ls - base, ne - base, vs - base, ve - base, i - base);
      if (!this.noteField(b, ls, ne - ls, vs, ve, null)) return FAILED;
    }
  }

  /**
   * Records the few fields that decide framing, routing and connection reuse. `value` is the
   * value's string when the caller made one (null: made here, only for these fields).
   */
  private noteField(b: Buffer, p: number, nameLen: number, vs: number, ve: number, value: string | null): boolean {
    switch (nameLen) {
      case 4:
        if (!this.isRequest || !equalsLower(b, p, L_HOST)) return true;
        if (this.hostSeen) return this.reject('TG_HTTP_DUPLICATE_HOST', 'more than one Host field');
        this.hostSeen = true;
        this.host = value ?? this.str(b, vs, ve);
        return true;
      case 6:
        if (this.isRequest && equalsLower(b, p, L_EXPECT) && ve - vs === 12 && (value ?? this.str(b, vs, ve)).toLowerCase() === '100-continue') this.expect100 = true;
        return true;
      case 7:
        if (equalsLower(b, p, L_UPGRADE)) this.upgradeValue = value ?? this.str(b, vs, ve);
        return true;
      case 10:
        if (equalsLower(b, p, L_CONNECTION)) this.noteConnection(value ?? this.str(b, vs, ve));
        return true;
      case 14:
        return equalsLower(b, p, L_CONTENT_LENGTH) ? this.noteContentLength(b, vs, ve) : true;
      case 17:
        return equalsLower(b, p, L_TRANSFER_ENCODING) ? this.noteTransferEncoding(value ?? this.str(b, vs, ve)) : true;
      default:
        return true;
    }
  }

  /** Content-Length = 1*DIGIT, one line only, at most 2^53-1. Lists (`5, 5`) are refused too. */
  private noteContentLength(b: Buffer, vs: number, ve: number): boolean {
    if (this.contentLength >= 0) return this.reject('TG_HTTP_BAD_CONTENT_LENGTH', 'more than one Content-Length field');
    if (this.teSeen) return this.reject('TG_HTTP_CL_TE', 'both Content-Length and Transfer-Encoding');
    if (ve === vs || ve - vs > 16) return this.reject('TG_HTTP_BAD_CONTENT_LENGTH', 'Content-Length is empty or too long');
    let n = 0;
    for (let i = vs; i < ve; i++) {
      const d = b[i]! - 0x30;
      if (d < 0 || d > 9) return this.reject('TG_HTTP_BAD_CONTENT_LENGTH', 'Content-Length is not a decimal number');
      n = n * 10 + d;
    }
    if (n > MAX_SAFE) return this.reject('TG_HTTP_BAD_CONTENT_LENGTH', 'Content-Length above 2^53-1');
    this.contentLength = n;
    return true;
  }

  private noteTransferEncoding(value: string): boolean {
    if (this.teSeen) return this.reject('TG_HTTP_BAD_TE', 'more than one Transfer-Encoding field');
    this.teSeen = true;
    if (this.contentLength >= 0) return this.reject('TG_HTTP_CL_TE', 'both Content-Length and Transfer-Encoding');
    // RFC 9112 §6.1: Transfer-Encoding in HTTP/1.0 means faulty framing.
    if (this.minor === 0) return this.reject('TG_HTTP_BAD_TE', 'Transfer-Encoding in an HTTP/1.0 message');
    const verdict = classifyTransferEncoding(value);
    if (verdict === 'chunked') {
      this.chunked = true;
      return true;
    }
    if (verdict === 'unsupported') return this.reject('TG_HTTP_TE_NOT_IMPLEMENTED', 'transfer codings other than chunked are not implemented');
    return this.reject('TG_HTTP_BAD_TE', verdict);
  }

  private noteConnection(value: string): void {
    const tokens = this.connectionTokens;
    let start = 0;
    const n = value.length;
    // Split on commas, trim OWS, lowercase; empty list elements are legal (RFC 9110 §5.6.1).
    while (start <= n) {
      let comma = value.indexOf(',', start);
      if (comma < 0) comma = n;
      let s = start;
      let e = comma;
      while (s < e && isOws(value.charCodeAt(s))) s++;
      while (e > s && isOws(value.charCodeAt(e - 1))) e--;
      if (e > s) {
        const token = value.slice(s, e).toLowerCase();
        tokens.push(token);
        if (token === 'close') this.connClose = true;
        else if (token === 'keep-alive') this.connKeepAlive = true;
        else if (token === 'upgrade') this.connUpgrade = true;
      }
      start = comma + 1;
    }
  }

  // ---------------------------------------------------------------- end of head

  private finishHead(): boolean {
    return this.isRequest ? this.finishRequestHead() : this.finishResponseHead();
  }

  private finishRequestHead(): boolean {
    const v11 = this.minor === 1;
    const method = this.method;
    const isConnect = method === 'CONNECT';
    const host = this.host;
    // RFC 9112 §3.2. CONNECT is exempt (as in Go's net/http): its target is the authority.
    if (!this.hostSeen && v11 && !isConnect) return this.reject('TG_HTTP_MISSING_HOST', 'HTTP/1.1 request without Host');
    if (host !== undefined) {
      const bad = checkAuthority(host, false);
      if (bad !== undefined) return this.reject('TG_HTTP_BAD_HOST', `Host ${bad}`);
    }
    if (isConnect && (this.chunked || this.contentLength > 0)) return this.reject('TG_HTTP_CONNECT_BODY', 'CONNECT request with a body');
    const t = this.parsedTarget!;
    let authority = host;
    let mismatch = false;
    if (t.authority !== undefined) {
      // RFC 9112 §3.2.2: the target's authority wins over Host; we report disagreement.
      authority = t.authority;
      mismatch = host !== undefined && !sameAuthority(t.authority, host, defaultPortOf(t.scheme));
    }
    const chunked = this.chunked;
    const cl = this.contentLength;
    const bodyFraming: BodyFraming = chunked ? 'chunked' : cl >= 0 ? 'length' : 'none';
    const upgrade = v11 && this.connUpgrade && this.upgradeValue !== undefined && !isConnect;
    const rawText = this.rawText;
    this.rawText = null;
    const head = new ParsedRequestHead(
      method,
      this.target,
      t.form,
      t.scheme,
      authority,
      t.path,
      host,
      mismatch,
      v11 ? '1.1' : '1.0',
      rawText === null ? this.headers : null,
      rawText === null ? undefined : { text: rawText, pos: this.rawPos },
      cl,
      chunked,
      bodyFraming,
      v11 ? !this.connClose : this.connKeepAlive && !this.connClose,
      this.connectionTokens,
      upgrade,
      upgrade ? this.upgradeValue : undefined,
      v11 && this.expect100,
    );
    this.startBody(bodyFraming, cl);
    this.handler.onHead(head);
    if (this.state === BODY_LENGTH && this.remaining === 0) this.completeMessage();
    return true;
  }

  private finishResponseHead(): boolean {
    const status = this.statusCode;
    const v11 = this.minor === 1;
    let bodyFraming: BodyFraming;
    if (status < 200) {
      // Interim responses have no body; the final response to the same request follows.
      bodyFraming = 'none';
      this.upgradeAfter = status === 101;
    } else {
      const method = this.pendingMethod;
      this.pendingMethod = undefined;
      if (method === 'CONNECT' && status < 300) {
        bodyFraming = 'none';
        this.upgradeAfter = true; // the connection is now a tunnel
      } else if (method === 'HEAD' || status === 204 || status === 304) {
        bodyFraming = 'none';
      } else {
        bodyFraming = this.chunked ? 'chunked' : this.contentLength >= 0 ? 'length' : 'eof';
      }
    }
    const upgrade = status === 101;
    const rawText = this.rawText;
    this.rawText = null;
    const head = new ParsedResponseHead(
      status,
      this.reason,
      v11 ? '1.1' : '1.0',
      rawText === null ? this.headers : null,
      rawText === null ? undefined : { text: rawText, pos: this.rawPos },
      this.contentLength,
      this.chunked,
      bodyFraming,
      !this.upgradeAfter && bodyFraming !== 'eof' && (v11 ? !this.connClose : this.connKeepAlive && !this.connClose),
      this.connectionTokens,
      upgrade,
      upgrade ? this.upgradeValue : undefined,
    );
    this.startBody(bodyFraming, this.contentLength);
    this.handler.onHead(head);
    if (this.state === BODY_LENGTH && this.remaining === 0) this.completeMessage();
    return true;
  }

  /** Sets the body state before onHead runs, so callbacks observe a consistent parser. */
  private startBody(framing: BodyFraming, cl: number): void {
    switch (framing) {
      case 'chunked':
        this.state = CHUNK_LINE;
        break;
      case 'eof':
        this.state = BODY_EOF;
        break;
      case 'length':
        this.state = BODY_LENGTH;
        this.remaining = cl;
        break;
      default: // 'none': complete right after onHead
        this.state = BODY_LENGTH;
        this.remaining = 0;
    }
  }

  private completeMessage(): void {
    this.state = this.upgradeAfter ? UPGRADED : START_LINE;
    this.handler.onMessageComplete();
  }

  // ---------------------------------------------------------------- chunked body

  /** `chunk-size *( BWS ";" BWS ext-name [ BWS "=" BWS ext-value ] ) CRLF` (RFC 9112 §7.1.1). */
  private parseChunkLine(b: Buffer, p: number, end: number): number {
    let i = p;
    let size = 0;
    while (i < end) {
      const d = HEX[b[i]!]!;
      if (d < 0) break;
      size = size * 16 + d;
      i++;
    }
    if (i - p > 16 || size > MAX_SAFE) return this.fail('TG_HTTP_BAD_CHUNK', 'chunk size too large');
    if (i >= end) return INCOMPLETE;
    if (i === p) return this.failOrIncomplete(b, i, end, 'TG_HTTP_BAD_CHUNK', 'chunk size is not hexadecimal');
    const extStart = i;
    let c: number;
    for (;;) {
      let j = i;
      while (j < end && ((c = b[j]!) === SP || c === HT)) j++;
      if (j >= end) return INCOMPLETE;
      if (b[j] !== SEMI) {
        if (j !== i) return this.failOrIncomplete(b, j, end, 'TG_HTTP_BAD_CHUNK', 'whitespace after chunk size');
        break;
      }
      j++;
      while (j < end && ((c = b[j]!) === SP || c === HT)) j++;
      const nameStart = j;
      while (j < end && TOKEN[b[j]!] === 1) j++;
      if (j >= end) return INCOMPLETE;
      if (j === nameStart) return this.failOrIncomplete(b, j, end, 'TG_HTTP_BAD_CHUNK', 'empty chunk extension name');
      i = j;
      while (j < end && ((c = b[j]!) === SP || c === HT)) j++;
      if (j >= end) return INCOMPLETE;
      if (b[j] !== EQUALS) continue; // next round: another ";" or the line end (bare BWS is refused)
      j++;
      while (j < end && ((c = b[j]!) === SP || c === HT)) j++;
      if (j >= end) return INCOMPLETE;
      if (b[j] === DQUOTE) {
        j = scanQuoted(b, j + 1, end);
        if (j === INCOMPLETE) return INCOMPLETE;
        if (j < 0) return this.failOrIncomplete(b, -j - 3, end, 'TG_HTTP_BAD_CHUNK', 'malformed quoted chunk extension value');
      } else {
        const valueStart = j;
        while (j < end && TOKEN[b[j]!] === 1) j++;
        if (j >= end) return INCOMPLETE;
        if (j === valueStart) return this.failOrIncomplete(b, j, end, 'TG_HTTP_BAD_CHUNK', 'empty chunk extension value');
      }
      i = j;
    }
    const next = this.lineEnd(b, i, end, 'TG_HTTP_BAD_CHUNK', 'chunk line');
    if (next < 0) return next;
    if (i > extStart) {
      this.chunkExtBytes += i - extStart;
      if (this.chunkExtBytes > this.maxChunkExtBytes) return this.fail('TG_HTTP_CHUNK_EXT_TOO_LONG', `chunk extensions above ${this.maxChunkExtBytes} bytes in one message`);
    }
    if (size > 0) {
      this.state = CHUNK_DATA;
      this.remaining = size;
    } else {
      this.state = TRAILERS;
      this.sectionBytes = 0;
      this.fieldCount = 0;
      this.trailers = [];
    }
    return next;
  }

  private finishTrailers(): void {
    const trailers = this.trailers;
    if (trailers.length > 0 && this.handler.onTrailers !== undefined) this.handler.onTrailers(trailers);
    if (this.passChunked) {
      // Complete once the section's last bytes are handed on (execute: completeRaw).
      this.state = this.upgradeAfter ? UPGRADED : START_LINE;
      this.rawDone = true;
      return;
    }
    this.completeMessage();
  }

  // ---------------------------------------------------------------- failures

  /** Fails with the byte-specific code (bare CR/LF, NUL) when b[i] is one, else with `code`. */
  private failOrIncomplete(b: Buffer, i: number, end: number, code: HttpErrorCode, detail: string): number {
    const c = b[i]!;
    if (c === CR || c === LF || c === 0) {
      const r = this.lineEnd(b, i, end, code, detail);
      return r < 0 ? r : this.fail(code, detail); // a CRLF here ends the line too early
    }
    return this.fail(code, detail);
  }

  private failTruncated(detail: string): void {
    this.state = FAILED_STATE;
    this.handler.onError(new HttpParseError('TG_HTTP_TRUNCATED', this.kind, detail));
  }

  private failAt(pos: number, code: HttpErrorCode, detail: string): number {
    this.fail(code, detail);
    return pos;
  }

  private reject(code: HttpErrorCode, detail: string): false {
    this.fail(code, detail);
    return false;
  }

  /** Enters the failed state and reports. Returns FAILED so line parsers can `return this.fail(...)`. */
  private fail(code: HttpErrorCode, detail: string): number {
    this.state = FAILED_STATE;
    this.partialLen = 0;
    this.handler.onError(new HttpParseError(code, this.kind, detail));
    return FAILED;
  }
}

/**
 * Scans a quoted-string body starting after the opening DQUOTE. Returns the index after the
 * closing DQUOTE, INCOMPLETE, or -(index + 3) of the offending byte.
 */
function scanQuoted(b: Buffer, j: number, end: number): number {
  while (j < end) {
    const c = b[j]!;
    if (c === DQUOTE) return j + 1;
    if (c === BACKSLASH) {
      if (j + 1 >= end) return INCOMPLETE;
      const q = b[j + 1]!;
      if (q !== HT && (q < 0x20 || q === 0x7f)) return -(j + 1) - 3;
      j += 2;
      continue;
    }
    if (QDTEXT[c] !== 1) return -j - 3;
    j++;
  }
  return INCOMPLETE;
}

/**
 * RFC 9112 §6.1/§6.3 for a Transfer-Encoding value. 'chunked' is the only accepted result. A list
 * whose final coding is chunked but that has others (`gzip, chunked`) is 'unsupported' (501: we do
 * not decode them). Everything else — empty elements (`,chunked`), chunked not last, chunked twice,
 * junk — is a description of the fault (400: the body length cannot be determined).
 */
export function classifyTransferEncoding(value: string): 'chunked' | 'unsupported' | string {
  if (value.length === 7 && value.toLowerCase() === 'chunked') return 'chunked';
  const parts = value.split(',');
  let chunkedCount = 0;
  for (let k = 0; k < parts.length; k++) {
    const part = parts[k]!.replace(/^[ \t]+|[ \t]+$/g, '');
    if (part === '') return 'Transfer-Encoding has an empty list element';
    const semi = part.indexOf(';');
    const coding = (semi < 0 ? part : part.slice(0, semi).replace(/[ \t]+$/, '')).toLowerCase();
    if (!isToken(coding)) return 'Transfer-Encoding has a malformed coding';
    if (coding === 'chunked') {
      if (semi >= 0) return 'chunked takes no parameters';
      if (++chunkedCount > 1) return 'chunked applied more than once';
      if (k !== parts.length - 1) return 'chunked is not the final transfer coding';
    }
  }
  return chunkedCount === 0 ? 'chunked is not the final transfer coding' : 'unsupported';
}

function isToken(s: string): boolean {
  if (s.length === 0) return false;
  for (let i = 0; i < s.length; i++) if (TOKEN[s.charCodeAt(i)] !== 1) return false;
  return true;
}

function isOws(c: number): boolean {
  return c === SP || c === HT;
}

/** Content-Length, Transfer-Encoding and Host may not travel as trailers (RFC 9110 §6.5.1). */
function isFramingName(b: Buffer, p: number, len: number): boolean {
  return (len === 4 && equalsLower(b, p, L_HOST)) ||
    (len === 14 && equalsLower(b, p, L_CONTENT_LENGTH)) ||
    (len === 17 && equalsLower(b, p, L_TRANSFER_ENCODING));
}

/** The common methods as constant strings: saves an allocation and makes === a pointer compare. */
function internMethod(b: Buffer, s: number, e: number): string {
  const n = e - s;
  const c = b[s];
  if (n === 3 && c === 0x47 && b[s + 1] === 0x45 && b[s + 2] === 0x54) return 'GET';
  if (n === 4 && c === 0x50 && b[s + 1] === 0x4f && b[s + 2] === 0x53 && b[s + 3] === 0x54) return 'POST';
  if (n === 7 && c === 0x43 && latin1(b, s, e) === 'CONNECT') return 'CONNECT';
  return latin1(b, s, e);
}

/** A parsed request head: `headers` is made from the raw field lines when first read (see RawFields). */
class ParsedRequestHead implements RequestHead {
  readonly kind = 'request';

  constructor(
    readonly method: string,
    readonly target: string,
    readonly targetForm: TargetForm,
    readonly scheme: string | undefined,
    readonly authority: string | undefined,
    readonly path: string,
    readonly host: string | undefined,
    readonly authorityMismatch: boolean,
    readonly version: HttpVersion,
    private fields: string[] | null,
    public raw: RawFields | undefined,
    readonly contentLength: number,
    readonly chunked: boolean,
    readonly bodyFraming: BodyFraming,
    readonly keepAlive: boolean,
    readonly connectionTokens: string[],
    readonly upgrade: boolean,
    readonly upgradeProtocol: string | undefined,
    readonly expectContinue: boolean,
  ) {}

  get headers(): string[] {
    return (this.fields ??= fieldsOf(this.raw!));
  }
}

/** A parsed response head: `headers` is made from the raw field lines when first read (see RawFields). */
class ParsedResponseHead implements ResponseHead {
  readonly kind = 'response';

  constructor(
    readonly statusCode: number,
    readonly reason: string,
    readonly version: HttpVersion,
    private fields: string[] | null,
    readonly raw: RawFields | undefined,
    readonly contentLength: number,
    readonly chunked: boolean,
    readonly bodyFraming: BodyFraming,
    readonly keepAlive: boolean,
    readonly connectionTokens: string[],
    readonly upgrade: boolean,
    readonly upgradeProtocol: string | undefined,
  ) {}

  get headers(): string[] {
    return (this.fields ??= fieldsOf(this.raw!));
  }
}
