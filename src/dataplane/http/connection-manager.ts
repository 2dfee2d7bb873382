/**
 * The downstream HTTP/1.1 connection manager: one HttpSession per accepted connection on an `http`
 * filter chain. It owns the socket and the request parser, and runs one ActiveStream at a time:
 *
 *   IDLE --first byte--> HEAD --onHead--> ACTIVE --stream done--> IDLE (keep-alive) | LINGER (close)
 *
 * - Pipelining: the parser is paused in onHead (until the upstream is ready for the body) and in
 *   onMessageComplete (until the response is written); unconsumed bytes wait in `pending` and the
 *   socket is paused. The next request is parsed only after the previous response was written.
 * - Backpressure: a full upstream socket pauses reads here (pauseReads/resumeReads); a full
 *   downstream socket pauses the upstream socket (UpstreamRequest.readDone / onDownstreamDrain).
 *   Per direction at most one read (up to 128 KiB from an upstream) beyond the socket's
 *   high-water mark is buffered.
 * - Timeouts (sweeper deadlines, no timer per request): header timeout from the first byte of a
 *   request (from the accept for the first request) -> 408 and close (silent close when nothing
 *   was sent); idle keep-alive timeout -> close; stream idle in the ActiveStream, route / per-try in its UpstreamRequest.
 * - Parse errors: the error's status (errorResponse), Connection: close, access-log line with the
 *   TG_HTTP_* code, nothing forwarded; after a head was forwarded the upstream connection is
 *   destroyed.
 * - Closing: responses with Connection: close end the socket and keep reading (discarding) for
 *   `lingerMs`, so the client receives the response instead of a reset.
 * - Reads: 'data' events until the first bytes show HTTP/1.x (not an HTTP/2 preface); then a
 *   plain-TCP socket reads through net's `onread` into reused buffers (tcp/user-buffer.ts:
 *   readIntoBuffers): no Readable stream, 'data' event or 64 KiB ArrayBuffer per read. A read is
 *   copied out of the shared buffer (small reads) or handed on in a buffer given up at once (bulk
 *   reads), so the parser, `pending` and queued upstream writes may keep what they are given. TLS
 *   and explicit-proxy connections stay on 'data' events.
 * - Writes: through the socket's handle while nothing waits in its Writable (socket-write.ts); a
 *   write the kernel did not take at once is backpressure until the writer calls back (onDrain).
 */
import type { MtlsLabels } from '../observe/istio-metrics.js';
import { mtlsLabelsOf } from '../mesh/peer-identity.js';
import { xfccPolicyFor, type XfccPolicy } from './xfcc.js';
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { ExplicitProxy, HttpConnectionManager } from '../../snapshot/types.js';
import type { CompiledSnapshot } from '../route/compile.js';
import { addrPort, copyConnection, type DownstreamConnection, type PeerCertificateFacts } from '../context.js';
import { continueExplicitConnect } from '../tcp/explicit-proxy.js';
import { resetSocket, Tunnel } from '../tcp/pipe.js';
import { ReadBuffers, readIntoBuffers } from '../tcp/user-buffer.js';
import { connectionRecord } from './access.js';
import { isoTime } from '../observe/access-log.js';
import { ActiveStream } from './active-stream.js';
import type { HttpParseError } from './errors.js';
import { applyHeaderHygiene, isEdge, type HeaderHygieneResult } from './header-hygiene.js';
import type { FilterSharedState } from './filter-chain.js';
import type { RequestHead } from './head.js';
import { HttpParser, type HttpParserHandler } from './parser.js';
import { ExplicitProxyRouter } from '../route/explicit-proxy-route.js';
import type { RouterContext } from '../route/http-route.js';
import type { AuthzConnection } from '../authz/apply.js';
import { RouteBinding } from './route-binding.js';
import { H2Session, h2Preface } from './h2-session.js';
import { UpstreamAffinity } from './upstream-pool.js';
import { errorResponse, simpleResponse } from './serialize.js';
import { SocketWriter } from './socket-write.js';
import type { DownstreamConn, DownstreamStream, EngineContext, EngineSession } from './stream-api.js';

const IDLE = 0;
const HEAD = 1;
const ACTIVE = 2;
const LINGER = 3;
const TUNNEL = 4;
/** Explicit proxy: a CONNECT was parsed; the connection goes to the CONNECT code after this feed. */
const HANDOFF = 5;
const CLOSED = 6;

function noop(): void {}

export class HttpSession implements HttpParserHandler<RequestHead>, EngineSession, DownstreamConn {
  readonly socket: Socket;
  private readonly writer: SocketWriter;
  readonly parser: HttpParser<'request'>;
  private readonly binding: RouteBinding;
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
  /** The client sent FIN: finish the request in flight, then close. */
  clientEnded = false;
  readonly upstreamAffinity = new UpstreamAffinity();
  lastActivity: number;

  private stream: DownstreamStream | null = null;
  private state = HEAD;
  private pending: Buffer | null = null;
  private inFeed = false;
  private socketPaused = false;
  private backpressure = false;
  private deadline: number;
  private headBytes = 0;
  private reqStarted = false;
  private reqStartMs = 0;
  private reqStartPerf = 0;
  private draining = false;
  /**
   * The drain closed this connection while it was idle; a request that crosses our FIN is read
   * (lingering close) and logged as refused, once, instead of vanishing.
   */
  private drainClosed = false;
  private drainRefusalLogged = false;
  private connectHead: RequestHead | undefined = undefined;
  /** Bytes read before the codec is known (HTTP/2 preface or HTTP/1.x); null once decided. */
  private sniff: Buffer | null;
  /** Callers come from outside the mesh (gateway, router): client-sent x-envoy-* are removed. */
  private readonly edge: boolean;
  private readonly hygiene: HeaderHygieneResult = { underscore: 0, envoy: 0, rejected: undefined };
  /** Reads through onread (see the module comment); null while on 'data' events. */
  private reads: ReadBuffers | null = null;
  /** The switch to onread reads may still be tried (HTTP/1.x, not tried and refused). */
  private mayReadIntoBuffers: boolean;

  /**
   * `proxy`: an explicit-proxy connection (HttpEngine.handleExplicitProxy): requests are decided by
   * the ExplicitProxyRouter, `filter` is a stand-in (no route table, access log on).
   */
  constructor(
    readonly engine: EngineContext,
    private readonly filterShared: FilterSharedState,
    readonly conn: DownstreamConnection,
    readonly filter: HttpConnectionManager,
    readonly proxy?: ExplicitProxy,
  ) {
    const socket = conn.socket;
    this.socket = socket;
    this.writer = new SocketWriter(socket, this.onDrain);
    const opts = engine.opts;
    this.parser = new HttpParser('request', this, { maxHeaderBytes: opts.maxHeaderBytes, maxHeaders: opts.maxHeaders });
    this.remoteAddress = conn.remoteAddress;
    this.remoteText = addrPort(conn.remoteAddress, conn.remotePort);
    this.localText = addrPort(conn.localAddress, conn.localPort);
    this.sni = conn.sni ?? null;
    this.tls = conn.tls || conn.chain.tls !== undefined;
    this.peerCertificate = conn.peerCertificate;
    // An mTLS peer's namespace is proven by its certificate; otherwise the caller's address is looked up.
    this.sourceNamespace = conn.peer?.namespace ?? engine.services.clusters.callerNamespace(conn.remoteAddress);
    this.mtlsLabels = mtlsLabelsOf(conn);
    this.peerNamespace = conn.peer?.namespace;
    this.xfcc = xfccPolicyFor(conn, this.mtlsLabels);
    this.sniff = proxy === undefined ? Buffer.alloc(0) : null;
    this.mayReadIntoBuffers = proxy === undefined && !this.tls;
    this.edge = isEdge(conn);
    this.binding = new RouteBinding(conn, filter, filterShared, engine.services, opts, this.tls, this.sourceNamespace, proxy);
    const now = engine.sweeper.now;
    this.lastActivity = now;
    // Header timeout for the first request runs from the accept (a silent client is closed).
    this.deadline = Math.max(now, Date.now()) + opts.headerTimeoutMs;
    socket.on('data', this.onData);
    socket.on('end', this.onEnd);
    socket.on('error', this.onError_);
    socket.on('close', this.onClose);
    socket.on('drain', this.onDrain);
    engine.register(this);
    if (engine.draining) this.draining = true;
    socket.resume();
  }

  get router(): RouterContext {
    return this.binding.router;
  }

  get authz(): AuthzConnection {
    return this.binding.authz;
  }

  get originalDestination(): { readonly ip: string; readonly port: number } | undefined {
    return this.conn.originalDestination;
  }

  get inboundCapture(): boolean {
    return this.conn.listener.listener.inboundCapture === true;
  }

  get accessLog(): boolean {
    return this.filter.accessLog;
  }

  random(): number {
    return this.router.random();
  }

  /** The snapshot the current request was routed on (its clusters and endpoints). */
  get snapshot(): CompiledSnapshot {
    return this.router.snapshot;
  }

  // ================================================================ socket events

  private readonly onData = (chunk: Buffer): void => {
    this.onChunk(chunk);
    if (this.mayReadIntoBuffers && this.sniff === null && this.state < LINGER) this.switchToBuffers();
  };

  /** From here on reads arrive in onRead (see the module comment); tried after each 'data' event until it can be done. */
  private switchToBuffers(): void {
    const s = this.socket;
    if (s.readableLength > 0) return; // bytes still queued in the stream: try after they were delivered
    this.mayReadIntoBuffers = false;
    const reads = new ReadBuffers();
    if (readIntoBuffers(s, { buffer: reads.nextBuffer, callback: this.onRead })) this.reads = reads;
  }

  private readonly onRead = (n: number, buf: Uint8Array): boolean => {
    const reads = this.reads!;
    const chunk = reads.take(n, buf);
    // After an upgrade the tunnel reads this socket through 'data' events (its reads still land here).
    if (this.state === TUNNEL) this.socket.emit('data', chunk);
    else this.onChunk(chunk);
    // A view of the own buffer may now be kept (pending, a queued write): the next read gets another.
    if (reads.lastOwn) reads.dropOwn();
    return true;
  };

  private onChunk(chunk: Buffer): void {
    if (this.state >= LINGER) {
      if (this.drainClosed && this.state === LINGER && !this.drainRefusalLogged) this.readRefusedRequest(chunk);
      return; // closing: discard
    }
    this.lastActivity = this.engine.sweeper.now;
    if (this.sniff !== null) {
      // The first bytes of the connection: an HTTP/2 preface (prior knowledge) goes to the HTTP/2 codec.
      const buf: Buffer = this.sniff.length === 0 ? chunk : Buffer.concat([this.sniff, chunk]);
      const p = h2Preface(buf);
      if (p === 'more') {
        this.sniff = buf; // a silent partial preface is closed quietly at the header timeout
        return;
      }
      this.sniff = null;
      if (p === 'h2') {
        this.handOffH2(buf);
        return;
      }
      chunk = buf;
    }
    if (this.state === IDLE) {
      this.state = HEAD;
      this.deadline = this.lastActivity + this.engine.opts.headerTimeoutMs;
      this.headBytes = 0;
    }
    if (!this.reqStarted) this.markRequestStart();
    if (this.state === HEAD) this.headBytes += chunk.length;
    if (this.pending !== null) {
      // Data that was already in flight when the socket was paused: keep it in order.
      this.pending = Buffer.concat([this.pending, chunk]);
      this.pauseSocket();
      return;
    }
    this.feed(chunk);
  }

  private readonly onEnd = (): void => {
    this.clientEnded = true;
    this.maybeEnd();
  };

  /**
   * After the client's FIN: once every byte it sent has been parsed, a cut head or body is reported
   * (TG_HTTP_TRUNCATED -> 400) and an idle connection is closed. A FIN while a complete request
   * waits for its response is a client abort (as nginx's 499 and Envoy's downstream disconnect):
   * the upstream request is abandoned (its connection destroyed) and logged DC.
   */
  private maybeEnd(): void {
    if (!this.clientEnded || this.state >= LINGER || this.pending !== null || this.inFeed) return;
    const ex = this.stream;
    if (ex === null) {
      if (!this.parser.idle) this.parser.finish(); // a cut head: onError answers 400
      if (this.state < LINGER) this.closeGracefully();
    } else if (ex.finished) {
      return;
    } else if (!ex.requestComplete) {
      this.parser.finish(); // the body was cut
    } else {
      this.stream = null;
      this.state = CLOSED;
      ex.onDownstreamClosed('downstream half-closed the connection before the response');
      this.socket.destroy();
    }
  }

  private readonly onError_ = (): void => {
    // 'close' follows; the stream is told there.
  };

  private readonly onClose = (): void => {
    const prev = this.state;
    // Part of a head crossed the drain's FIN and the client closed before the rest.
    if (this.drainClosed && this.reqStarted && !this.drainRefusalLogged) this.logDrainRefusal(undefined);
    this.state = CLOSED;
    this.engine.unregister(this);
    const ex = this.stream;
    this.stream = null;
    if (ex !== null && prev !== TUNNEL) ex.onDownstreamClosed(this.socket.readableEnded ? 'downstream closed the connection' : 'downstream connection reset');
  };

  private readonly onDrain = (): void => {
    this.stream?.onDownstreamDrain();
  };

  // ================================================================ parsing

  private markRequestStart(): void {
    this.reqStarted = true;
    this.reqStartMs = Date.now();
    this.reqStartPerf = performance.now();
  }

  private feed(buf: Buffer): void {
    this.inFeed = true;
    let b: Buffer | null = buf;
    const parser = this.parser;
    for (let guard = 0; guard < 100_000; guard++) {
      const n = parser.execute(b);
      if (n >= b.length) {
        b = null;
        break;
      }
      if (parser.failed || this.state >= LINGER) {
        b = this.state === HANDOFF ? b.subarray(n) : null;
        break;
      }
      b = b.subarray(n);
      if (parser.isPaused && this.stream === null) {
        // The previous request finished synchronously: parse the next pipelined request.
        parser.resume();
        if (!this.reqStarted) this.markRequestStart();
        this.state = HEAD;
        this.deadline = this.engine.sweeper.now + this.engine.opts.headerTimeoutMs;
        this.headBytes = b.length;
        continue;
      }
      break;
    }
    this.inFeed = false;
    if (this.state >= LINGER) {
      if (this.state === HANDOFF) this.handOffConnect(b);
      return;
    }
    if (this.stream === null) {
      if (parser.isPaused) parser.resume();
      if (this.state === IDLE && !parser.idle) {
        // A pipelined request started in this read: the header timeout applies to it.
        this.state = HEAD;
        this.deadline = this.engine.sweeper.now + this.engine.opts.headerTimeoutMs;
        if (this.headBytes === 0) this.headBytes = 1;
      }
    }
    if (b !== null && b.length > 0) {
      this.pending = b;
      this.pauseSocket();
    } else {
      if (!this.backpressure) this.resumeSocket();
      if (this.clientEnded) this.maybeEnd();
    }
  }

  onHead(head: RequestHead): void {
    this.parser.pause();
    if (this.state === LINGER) {
      this.logDrainRefusal(head);
      return;
    }
    if (this.proxy !== undefined && head.method === 'CONNECT') {
      this.state = HANDOFF; // the feed loop ends and calls handOffConnect
      this.connectHead = head;
      return;
    }
    if (!this.reqStarted) this.markRequestStart();
    const refused = applyHeaderHygiene(head, this.edge, this.engine, this.hygiene);
    if (refused !== undefined) {
      this.onError(refused);
      return;
    }
    this.state = ACTIVE;
    const ex = new ActiveStream(this, head, this.reqStartMs, this.reqStartPerf);
    this.stream = ex;
    this.binding.decide(ex.decision, head);
    ex.start(this.binding.planOf);
  }

  onBody(chunk: Buffer): void {
    this.stream?.onRequestBody(chunk);
  }

  onTrailers(trailers: string[]): void {
    this.stream?.onRequestTrailers(trailers);
  }

  onMessageComplete(): void {
    this.parser.pause(); // one request at a time: the next waits until this response is written
    this.stream?.onRequestComplete();
  }

  onError(err: HttpParseError): void {
    const ex = this.stream;
    if (ex !== null && !ex.finished) {
      ex.onDownstreamProtocolError(err);
      return;
    }
    // The head itself is malformed: answer, log, close. Nothing was sent upstream.
    if (this.state >= LINGER) {
      if (this.drainClosed) this.logDrainRefusal(undefined);
      return;
    }
    const buf = errorResponse(err);
    this.write(buf);
    const r = connectionRecord(this.reqStarted ? this.reqStartMs : Date.now(), this.remoteText, this.localText, this.conn.sni, this.filter.routeConfigName);
    r.response_code = err.status;
    r.response_flags = 'DPE';
    r.tollgate_reason = err.code;
    r.response_code_details = err.message;
    r.bytes_sent = buf.length;
    r.duration = this.reqStarted ? Math.floor(performance.now() - this.reqStartPerf) : 0;
    this.logConnectionLevel(r, err.status, 'DPE', err.code);
    this.closeGracefully();
  }

  private logConnectionLevel(r: ReturnType<typeof connectionRecord>, status: number, flags: string, reason: string): void {
    const services = this.engine.services;
    if (this.filter.accessLog) services.accessLog.log(r);
    services.metrics.denied(reason);
    this.engine.metrics.record('unknown', undefined, this.sourceNamespace, status, flags, r.duration, 0, r.bytes_sent);
  }

  // ================================================================ called by the ActiveStream

  write(data: string | Buffer): boolean {
    return this.writer.write(data);
  }

  writev(parts: readonly (string | Buffer)[]): boolean {
    return this.writer.writev(parts);
  }

  writeQueued(): boolean {
    return this.writer.queued;
  }

  /** The upstream is ready for the request body: resume parsing it. */
  resumeRequestBody(): void {
    const ex = this.stream;
    if (ex === null || ex.requestComplete || this.state >= LINGER) return;
    this.parser.resume();
    if (this.inFeed) return; // the feed loop in progress continues parsing
    const p = this.pending;
    this.pending = null;
    if (p !== null) this.feed(p);
    else if (!this.backpressure) this.resumeSocket();
  }

  /** Upstream socket full: stop reading the request body. */
  pauseReads(): void {
    this.backpressure = true;
    this.pauseSocket();
  }

  resumeReads(): void {
    if (!this.backpressure) return;
    this.backpressure = false;
    if (this.pending === null && this.state < LINGER) this.resumeSocket();
  }

  streamDone(ex: DownstreamStream): void {
    if (this.stream !== ex) return;
    this.stream = null;
    this.reqStarted = false;
    if (this.state >= LINGER) return;
    if (ex.closeAfter || this.draining || (this.clientEnded && this.pending === null && !this.inFeed)) {
      this.closeGracefully();
      return;
    }
    this.state = IDLE;
    this.deadline = this.engine.sweeper.now + this.engine.opts.idleTimeoutMs;
    this.backpressure = false;
    if (this.inFeed) return; // the feed loop resumes the parser on the pipelined bytes
    this.parser.resume();
    const p = this.pending;
    this.pending = null;
    if (p !== null) {
      this.markRequestStart();
      this.state = HEAD;
      this.deadline = this.engine.sweeper.now + this.engine.opts.headerTimeoutMs;
      this.headBytes = p.length;
      this.feed(p);
    } else {
      this.resumeSocket();
      this.maybeEnd();
    }
  }

  /** A failure after the response head went out: reset the connection (the body must look cut). */
  abort(): void {
    const ex = this.stream;
    this.stream = null;
    this.state = CLOSED;
    if (ex !== null && !ex.finished) ex.onDownstreamClosed('aborted');
    resetSocket(this.socket);
  }

  /** The socket leaves this HTTP session (upgrade tunnel, CONNECT hand-off): no more HTTP events. */
  private detachSocket(): void {
    const s = this.socket;
    this.engine.unregister(this);
    s.removeListener('data', this.onData);
    s.removeListener('end', this.onEnd);
    s.removeListener('drain', this.onDrain);
    s.removeListener('close', this.onClose);
    s.removeListener('error', this.onError_);
    s.on('error', noop);
  }

  /** After a 101: the connection becomes a raw tunnel to `up`. */
  startTunnel(up: Socket, rest: Buffer, ex: DownstreamStream): void {
    const s = this.socket;
    this.state = TUNNEL;
    this.stream = ex;
    this.detachSocket();
    up.on('error', noop);
    if (rest.length > 0) s.write(rest);
    const p = this.pending;
    this.pending = null;
    if (p !== null && p.length > 0) up.write(p);
    this.socketPaused = false;
    new Tunnel(s, up, { idleTimeoutMs: this.engine.opts.upgradeIdleTimeoutMs, onEnd: (r) => ex.onTunnelEnd(r) });
  }

  /** The connection speaks HTTP/2 (prior knowledge): the HTTP/2 connection manager takes the socket. */
  private handOffH2(first: Buffer): void {
    const s = this.socket;
    this.state = CLOSED;
    this.detachSocket();
    s.pause();
    s.unshift(first);
    new H2Session(this.engine, this.filterShared, this.conn, this.filter, this.tls, this.sourceNamespace);
  }

  /**
   * Explicit proxy: a CONNECT after absolute-form requests on this connection goes to the CONNECT
   * code (same registry / ACL decision, SNI check, tunnel). Bytes after its head before the answer
   * are early data there (400 connect_early_data).
   */
  private handOffConnect(rest: Buffer | null): void {
    const head = this.connectHead!;
    this.connectHead = undefined;
    const s = this.socket;
    this.detachSocket();
    s.pause();
    const early = (rest !== null && rest.length > 0) || this.pending !== null;
    this.pending = null;
    continueExplicitConnect(copyConnection(this.conn, { snapshot: this.router.snapshot }), (this.router as ExplicitProxyRouter).proxy, head, early);
  }

  // ================================================================ closing, drain, timeouts

  /** End our side after the last response; read and discard until the client closes (lingering close). */
  closeGracefully(): void {
    if (this.state >= LINGER) return;
    this.state = LINGER;
    this.pending = null;
    this.deadline = this.engine.sweeper.now + this.engine.opts.lingerMs;
    const s = this.socket;
    if (!s.destroyed) {
      s.end();
      this.resumeSocket();
    }
  }

  drain(): void {
    this.draining = true;
    if (this.state === IDLE || (this.state === HEAD && this.headBytes === 0)) {
      this.drainClosed = true;
      this.closeGracefully();
    }
  }

  /**
   * Bytes after the drain closed this idle connection: a client that sent a request before our FIN
   * reached it. Nothing is answered (our side is closed; the client sees a close before any byte of
   * a response and may retry elsewhere), but the request is parsed far enough to log what it was.
   */
  private readRefusedRequest(chunk: Buffer): void {
    if (!this.reqStarted) this.markRequestStart();
    this.headBytes += chunk.length;
    if (this.parser.isPaused || this.parser.failed) return;
    this.parser.execute(chunk); // onHead / onError log it
  }

  private logDrainRefusal(head: RequestHead | undefined): void {
    this.drainRefusalLogged = true;
    const r = connectionRecord(this.reqStarted ? this.reqStartMs : Date.now(), this.remoteText, this.localText, this.conn.sni, this.filter.routeConfigName);
    if (head !== undefined) {
      r.method = head.method;
      r.authority = head.authority ?? null;
      r.path = head.path;
      r.protocol = `HTTP/${head.version}`;
    }
    r.response_flags = 'OM';
    r.tollgate_reason = 'drain_closed_connection';
    r.response_code_details = `the proxy is draining and had closed this idle keep-alive connection before the request arrived (${this.headBytes} bytes received, nothing answered)`;
    r.bytes_received = this.headBytes;
    r.duration = Math.floor(performance.now() - this.reqStartPerf);
    this.logConnectionLevel(r, 0, 'OM', 'drain_closed_connection');
  }

  sweep(now: number): void {
    switch (this.state) {
      case IDLE:
        if (now >= this.deadline) this.closeGracefully();
        return;
      case HEAD:
        if (now >= this.deadline) this.headerTimeout();
        return;
      case ACTIVE:
        this.stream?.checkTimeouts(now);
        return;
      case LINGER:
        if (now >= this.deadline) this.socket.destroy();
        return;
      default:
        return;
    }
  }

  private headerTimeout(): void {
    if (this.headBytes === 0) {
      // Never said anything: close quietly (as nginx does), nothing to log.
      this.closeGracefully();
      return;
    }
    const buf = simpleResponse(408, 'Request Timeout (request_header_timeout)\n');
    this.write(buf);
    const r = connectionRecord(this.reqStartMs, this.remoteText, this.localText, this.conn.sni, this.filter.routeConfigName);
    r.response_code = 408;
    r.response_flags = 'DT';
    r.tollgate_reason = 'request_header_timeout';
    r.response_code_details = `no complete request head within ${this.engine.opts.headerTimeoutMs} ms (${this.headBytes} bytes received)`;
    r.bytes_sent = buf.length;
    r.duration = Math.floor(performance.now() - this.reqStartPerf);
    r.start_time = isoTime(this.reqStartMs);
    this.logConnectionLevel(r, 408, 'DT', 'request_header_timeout');
    this.closeGracefully();
  }

  private pauseSocket(): void {
    if (!this.socketPaused) {
      this.socketPaused = true;
      this.socket.pause();
    }
  }

  private resumeSocket(): void {
    if (this.socketPaused) {
      this.socketPaused = false;
      this.socket.resume();
    }
  }
}
