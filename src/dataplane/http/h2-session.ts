/**
 * The downstream HTTP/2 connection manager (cleartext prior knowledge, h2c): Node's `node:http2`
 * (nghttp2) is the codec; every stream is one request through the same route decision, filter
 * chain, router, access log and metrics as HTTP/1.1 (ActiveStream), logged `protocol: HTTP/2`.
 *
 * The HTTP/1.1 connection manager hands a connection over when its first bytes are the HTTP/2
 * preface (`PRI * HTTP/2.0`), on any HTTP listener — as Envoy's AUTO codec does for ports declared
 * HTTP, HTTP2 or GRPC.
 *
 * Translation, per stream:
 * - request: the h2 header block is written as an HTTP/1.1 head and read by the strict HTTP/1.1
 *   parser, so the head the route decision and filters see, and every check on it (header names
 *   and values, Host), is the HTTP/1.1 one. Before that, nghttp2 resets a stream that carries a
 *   connection-specific field (`connection`, `transfer-encoding`, `keep-alive`, `upgrade`, a `te`
 *   other than `trailers`) or a pseudo-header with a byte RFC 9113 forbids, and drops (never
 *   hands us) a field whose name or value has one (CR, LF, NUL, upper case, space): no such byte
 *   reaches the HTTP/1.1 text. A `host` that disagrees with `:authority` is refused (400). A body
 *   without `content-length` is forwarded chunked.
 * - response: the ActiveStream writes HTTP/1.1; an HTTP/1.1 response parser turns it back into
 *   `:status` + fields (hop-by-hop fields dropped), DATA frames and trailers.
 * Backpressure: a full h2 stream pauses the upstream (write() returns false, 'drain' resumes); a
 * full upstream pauses the h2 stream (flow control then stops the client).
 */
import type { MtlsLabels } from '../observe/istio-metrics.js';
import { mtlsLabelsOf } from '../mesh/peer-identity.js';
import { xfccPolicyFor, type XfccPolicy } from './xfcc.js';
import type * as http2 from 'node:http2';
import { H2_FLAG_END_STREAM, H2_INTERNAL_ERROR, H2_NO_ERROR, http2Module } from './http2-module.js';
import { performance } from 'node:perf_hooks';
import type { Socket } from 'node:net';
import type { HttpConnectionManager } from '../../snapshot/types.js';
import { addrPort, type DownstreamConnection, type PeerCertificateFacts } from '../context.js';
import type { CompiledSnapshot } from '../route/compile.js';
import type { AuthzConnection } from '../authz/apply.js';
import { connectionRecord } from './access.js';
import { ActiveStream } from './active-stream.js';
import type { HttpParseError } from './errors.js';
import type { FilterSharedState } from './filter-chain.js';
import type { RequestHead, ResponseHead } from './head.js';
import { applyHeaderHygiene, isEdge } from './header-hygiene.js';
import { HttpParser, type HttpParserHandler } from './parser.js';
import { RouteBinding } from './route-binding.js';
import type { DownstreamConn, DownstreamStream, EngineContext, EngineSession } from './stream-api.js';

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

/** 'h2': the buffer starts with the HTTP/2 preface; 'more': it is a strict prefix of it; 'h1' otherwise. */
export function h2Preface(buf: Buffer): 'h2' | 'h1' | 'more' {
  const n = Math.min(buf.length, PREFACE.length);
  if (buf.compare(PREFACE, 0, n, 0, n) !== 0) return 'h1';
  return n === PREFACE.length ? 'h2' : 'more';
}

/** Fields that mean something only on one HTTP/1.1 connection: never sent on an h2 stream. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te']);
const MAX_CONCURRENT_STREAMS = 256;
const H2_NOT_FORWARDABLE = 'h2_request_not_forwardable';

let dispatcher: http2.Http2Server | undefined;
/** Never listens: only turns accepted sockets into sessions with our settings. */
function h2Dispatcher(): http2.Http2Server {
  dispatcher ??= http2Module().createServer({ settings: { maxConcurrentStreams: MAX_CONCURRENT_STREAMS, enablePush: false }, maxSessionMemory: 64 });
  return dispatcher;
}

export class H2Session implements EngineSession {
  readonly binding: RouteBinding;
  readonly remoteText: string;
  readonly localText: string;
  readonly remoteAddress: string;
  /** Per connection, as on HTTP/1.1: every stream of the session shares the peer's identity. */
  readonly mtlsLabels: MtlsLabels | undefined;
  readonly xfcc: XfccPolicy;
  lastActivity: number;
  private readonly session: http2.ServerHttp2Session;
  private readonly streams = new Set<H2Stream>();
  private idleSince: number;
  private closed = false;

  constructor(
    readonly engine: EngineContext,
    filterShared: FilterSharedState,
    readonly conn: DownstreamConnection,
    readonly filter: HttpConnectionManager,
    readonly tls: boolean,
    readonly sourceNamespace: string | undefined,
  ) {
    this.binding = new RouteBinding(conn, filter, filterShared, engine.services, engine.opts, tls, sourceNamespace);
    this.remoteAddress = conn.remoteAddress;
    this.remoteText = addrPort(conn.remoteAddress, conn.remotePort);
    this.localText = addrPort(conn.localAddress, conn.localPort);
    this.mtlsLabels = mtlsLabelsOf(conn);
    this.xfcc = xfccPolicyFor(conn, this.mtlsLabels);
    this.lastActivity = engine.sweeper.now;
    this.idleSince = this.lastActivity;
    const server = h2Dispatcher();
    let created: http2.ServerHttp2Session | undefined;
    const onSession = (s: http2.ServerHttp2Session): void => {
      created = s;
    };
    server.once('session', onSession);
    server.emit('connection', conn.socket);
    server.removeListener('session', onSession);
    if (created === undefined) throw new Error('http2 session was not created');
    this.session = created;
    created.on('stream', this.onStream);
    created.on('error', () => {});
    created.on('close', this.onClose);
    engine.register(this);
    if (engine.draining) this.drain();
  }

  private readonly onStream = (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, flags: number): void => {
    this.lastActivity = this.engine.sweeper.now;
    const s = new H2Stream(this, stream);
    this.streams.add(s);
    s.start(headers, (flags & H2_FLAG_END_STREAM) !== 0);
  };

  private readonly onClose = (): void => {
    this.closed = true;
    this.engine.unregister(this);
    for (const s of this.streams) s.onClosed('downstream connection closed');
    this.streams.clear();
  };

  streamEnded(s: H2Stream): void {
    this.streams.delete(s);
    if (this.streams.size === 0) this.idleSince = this.engine.sweeper.now;
  }

  drain(): void {
    if (!this.closed) this.session.close(); // GOAWAY: streams in flight finish
  }

  sweep(now: number): void {
    if (this.streams.size === 0) {
      if (now - Math.max(this.idleSince, this.lastActivity) >= this.engine.opts.idleTimeoutMs) this.session.close();
      return;
    }
    for (const s of this.streams) s.checkTimeouts(now);
  }
}

/** One h2 stream: the DownstreamConn its ActiveStream writes HTTP/1.1 to. */
class H2Stream implements DownstreamConn, HttpParserHandler<ResponseHead> {
  readonly engine: EngineContext;
  readonly remoteAddress: string;
  readonly remoteText: string;
  readonly localText: string;
  readonly sni: string | null;
  readonly tls: boolean;
  readonly peerCertificate: PeerCertificateFacts | undefined;
  readonly sourceNamespace: string | undefined;
  readonly peerNamespace: string | undefined;
  readonly xfcc: XfccPolicy;
  readonly mtlsLabels: MtlsLabels | undefined;
  readonly clientEnded = false;
  private active: DownstreamStream | null = null;
  private reqHead: RequestHead | undefined;
  private reqError: HttpParseError | undefined;
  private readonly resParser: HttpParser<'response'>;
  private responded = false;
  private trailers: string[] | null = null;
  private writable = true;
  private bodyAllowed = false;
  private done = false;
  /** The response head went out with END_STREAM: nothing more on this stream. */
  private headOnly = false;

  constructor(
    private readonly session: H2Session,
    private readonly h2: http2.ServerHttp2Stream,
  ) {
    this.engine = session.engine;
    this.remoteAddress = session.remoteAddress;
    this.remoteText = session.remoteText;
    this.localText = session.localText;
    this.sni = session.conn.sni ?? null;
    this.tls = session.tls;
    this.peerCertificate = session.conn.peerCertificate;
    this.sourceNamespace = session.sourceNamespace;
    this.mtlsLabels = session.mtlsLabels;
    this.peerNamespace = session.conn.peer?.namespace;
    this.xfcc = session.xfcc;
    this.resParser = new HttpParser('response', this, { maxHeaderBytes: 1 << 20, maxHeaders: 1000 });
    h2.on('error', () => {});
    h2.on('drain', this.onDrain);
    h2.on('close', () => this.onClosed('stream reset by the client'));
  }

  get lastActivity(): number {
    return this.session.lastActivity;
  }

  get snapshot(): CompiledSnapshot {
    return this.session.binding.router.snapshot;
  }

  get authz(): AuthzConnection {
    return this.session.binding.authz;
  }

  get originalDestination(): { readonly ip: string; readonly port: number } | undefined {
    return this.session.conn.originalDestination;
  }

  get inboundCapture(): boolean {
    return this.session.conn.listener.listener.inboundCapture === true;
  }

  get accessLog(): boolean {
    return this.session.filter.accessLog;
  }

  random(): number {
    return this.session.binding.router.random();
  }

  start(headers: http2.IncomingHttpHeaders, endStream: boolean): void {
    const startMs = Date.now();
    const startPerf = performance.now();
    const text = requestHeadText(headers, endStream);
    if (typeof text === 'number') {
      this.refuse(text, startMs, startPerf, H2_NOT_FORWARDABLE, 'h2 request head cannot be forwarded (CONNECT, missing pseudo-header, or host disagrees with :authority)');
      return;
    }
    const parser = new HttpParser('request', { onHead: (h) => void (this.reqHead = h), onBody: () => {}, onMessageComplete: () => {}, onError: (e) => void (this.reqError = e) }, { maxHeaderBytes: this.engine.opts.maxHeaderBytes, maxHeaders: this.engine.opts.maxHeaders });
    parser.execute(Buffer.from(text, 'latin1'));
    const head = this.reqHead;
    if (head === undefined || this.reqError !== undefined) {
      const e = this.reqError;
      this.refuse(e?.status ?? 400, startMs, startPerf, e?.code ?? 'TG_HTTP_TRUNCATED', e?.message ?? 'incomplete request head');
      return;
    }
    const refused = applyHeaderHygiene(head, isEdge(this.session.conn), this.engine, { underscore: 0, envoy: 0, rejected: undefined });
    if (refused !== undefined) {
      this.refuse(refused.status, startMs, startPerf, refused.code, refused.message);
      return;
    }
    this.h2.pause();
    const ex = new ActiveStream(this, head, startMs, startPerf);
    ex.info.protocol = 'HTTP/2';
    this.active = ex;
    const b = this.session.binding;
    b.decide(ex.decision, head);
    ex.start(b.planOf);
    if (endStream) {
      ex.onRequestComplete();
      return;
    }
    this.h2.on('data', (chunk: Buffer) => {
      this.session.lastActivity = this.engine.sweeper.now;
      this.active?.onRequestBody(chunk);
    });
    this.h2.on('end', () => this.active?.onRequestComplete());
  }

  /** The head cannot become an HTTP/1.1 request: answered here, logged like an HTTP/1.1 parse error. */
  private refuse(status: number, startMs: number, startPerf: number, code: string, detail: string): void {
    this.done = true;
    const body = `${status} (${code})\n`;
    if (!this.h2.destroyed) this.h2.respond({ ':status': status, 'content-type': 'text/plain' }, { endStream: false });
    this.h2.end(body);
    const r = connectionRecord(startMs, this.remoteText, this.localText, this.session.conn.sni, this.session.filter.routeConfigName);
    r.protocol = 'HTTP/2';
    r.response_code = status;
    r.response_flags = 'DPE';
    r.tollgate_reason = code;
    r.response_code_details = detail;
    r.bytes_sent = body.length;
    r.duration = Math.floor(performance.now() - startPerf);
    const services = this.engine.services;
    if (this.session.filter.accessLog) services.accessLog.log(r);
    services.metrics.denied(code);
    this.engine.metrics.record('unknown', undefined, this.sourceNamespace, status, 'DPE', r.duration, 0, r.bytes_sent);
    this.session.streamEnded(this);
  }

  checkTimeouts(now: number): void {
    this.active?.checkTimeouts(now);
  }

  onClosed(detail: string): void {
    const ex = this.active;
    this.active = null;
    if (ex !== null && !ex.finished) ex.onDownstreamClosed(detail);
    if (!this.done) {
      this.done = true;
      this.session.streamEnded(this);
    }
  }

  private readonly onDrain = (): void => {
    this.writable = true;
    this.active?.onDownstreamDrain();
  };

  // ================================================================ DownstreamConn: the ActiveStream writes HTTP/1.1

  write(data: string | Buffer): boolean {
    if (this.h2.destroyed) return true;
    if (this.reqHead !== undefined && !this.responded) this.resParser.expectResponseTo(this.reqHead.method);
    this.resParser.execute(typeof data === 'string' ? Buffer.from(data, 'latin1') : data);
    return this.writable;
  }

  writev(parts: readonly (string | Buffer)[]): boolean {
    let ok = true;
    for (const p of parts) ok = this.write(p);
    return ok;
  }

  /** Streams of one HTTP/2 connection are independent requests: each takes the usual path. */
  readonly upstreamAffinity = undefined;

  /** The HTTP/2 session writes from the buffers it was given, later: always assume so. */
  writeQueued(): boolean {
    return true;
  }

  resumeRequestBody(): void {
    this.bodyAllowed = true;
    this.h2.resume();
  }

  pauseReads(): void {
    this.h2.pause();
  }

  resumeReads(): void {
    if (this.bodyAllowed) this.h2.resume();
  }

  streamDone(s: DownstreamStream): void {
    if (this.active !== s) return;
    this.active = null;
    // The response ended before the request body: stop the upload (RST_STREAM NO_ERROR after our END_STREAM).
    if (!s.requestComplete && !this.h2.destroyed) this.h2.close(H2_NO_ERROR);
  }

  abort(): void {
    const ex = this.active;
    this.active = null;
    if (ex !== null && !ex.finished) ex.onDownstreamClosed('aborted');
    if (!this.h2.destroyed) this.h2.close(H2_INTERNAL_ERROR);
  }

  startTunnel(up: Socket, _rest: Buffer, _s: DownstreamStream): void {
    // Upgrade is not forwarded from h2 (no Upgrade field reaches the head): never reached.
    up.destroy();
    this.abort();
  }

  // ================================================================ response parser (HTTP/1.1 from the ActiveStream -> h2 frames)

  onHead(h: ResponseHead): void {
    if (h.statusCode < 200) return; // 100 Continue: h2 clients do not wait for it
    const out: http2.OutgoingHttpHeaders = { ':status': h.statusCode };
    const named = h.connectionTokens;
    const f = h.headers;
    for (let i = 0; i + 1 < f.length; i += 2) {
      const name = f[i]!.toLowerCase();
      if (HOP_BY_HOP.has(name) || named.includes(name)) continue;
      const prev = out[name];
      out[name] = prev === undefined ? f[i + 1]! : Array.isArray(prev) ? [...prev, f[i + 1]!] : [String(prev), f[i + 1]!];
    }
    if (this.h2.destroyed) return;
    this.responded = true;
    if (h.bodyFraming === 'none' || (h.bodyFraming === 'length' && h.contentLength === 0) || this.reqHead?.method === 'HEAD') {
      // No body and no trailers: END_STREAM on the head (a gRPC trailers-only reply must end here).
      this.h2.respond(out, { endStream: true });
      this.headOnly = true;
      return;
    }
    this.h2.respond(out, { waitForTrailers: true });
    this.h2.once('wantTrailers', () => {
      const t = this.trailers;
      const o: http2.OutgoingHttpHeaders = {};
      if (t !== null) for (let i = 0; i + 1 < t.length; i += 2) o[t[i]!.toLowerCase()] = t[i + 1]!;
      this.h2.sendTrailers(o);
    });
  }

  onBody(chunk: Buffer): void {
    if (!this.h2.destroyed && !this.headOnly && !this.h2.write(chunk)) this.writable = false;
  }

  onTrailers(t: string[]): void {
    this.trailers = t;
  }

  onMessageComplete(): void {
    if (!this.h2.destroyed && !this.headOnly) this.h2.end();
    if (!this.done) {
      this.done = true;
      this.session.streamEnded(this);
    }
  }

  onError(_err: HttpParseError): void {
    this.abort();
  }
}

/**
 * The h2 request as an HTTP/1.1 head, or the status to refuse it with. Pseudo-headers become the
 * request line and Host; a body without content-length is declared chunked (the upstream framing).
 */
function requestHeadText(h: http2.IncomingHttpHeaders, endStream: boolean): string | number {
  const method = h[':method'];
  const path = h[':path'];
  const authority = h[':authority'];
  const host = h['host'];
  if (method === undefined || method === 'CONNECT' || path === undefined) return method === 'CONNECT' ? 501 : 400;
  if (authority !== undefined && host !== undefined && authority !== host) return 400;
  const hostValue = authority ?? host;
  if (hostValue === undefined) return 400;
  let text = `${method} ${path} HTTP/1.1\r\nhost: ${hostValue}\r\n`;
  let hasLength = false;
  for (const name of Object.keys(h)) {
    if (name.startsWith(':') || name === 'host' || name === 'expect') continue;
    if (name === 'content-length') hasLength = true;
    const v = h[name];
    if (v === undefined) continue;
    if (Array.isArray(v)) for (const x of v) text += `${name}: ${x}\r\n`;
    else text += `${name}: ${v}\r\n`;
  }
  if (!endStream && !hasLength) text += 'transfer-encoding: chunked\r\n';
  return text + '\r\n';
}

