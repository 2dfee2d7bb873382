/**
 * One request/response through the proxy: routed -> (local reply | upstream connection from the
 * pool -> request head + streamed body -> response head + streamed body) -> access log + metrics.
 *
 * Lifecycle (docs/life-of-a-request.md, "HTTP"):
 *   start()            router decision is in `decision`; local replies wait for the end of a
 *                      bodyless request (or answer at once and close when a body would follow)
 *   acquire()          ClusterManager.chooseSync (or choose() when DNS must be asked) -> pool.take
 *                      or pool.dial; failures -> retry (connect-failure) or 503/403 with the flag
 *   send()             request head written once; 100 Continue sent now (routed + upstream
 *                      contacted); the downstream parser is resumed so the body streams
 *   onUpstream*()      response head re-serialized (hop-by-hop removed, framing ours), body
 *                      streamed; output of one upstream read is written in one socket write
 *   finish()           access log, metrics, session.exchangeDone() (keep-alive or close)
 * Failures after the response head went out abort the downstream connection (RST): a client never
 * sees a clean, shorter body.
 */
import { performance } from 'node:perf_hooks';
import type { Socket } from 'node:net';
import { jsonString, type AccessLogRecord } from '../observe/access-log.js';
import type { UpstreamRequest, UpstreamTarget, ChooseResult } from '../upstream/cluster-manager.js';
import { statusForFailure, type UpstreamFailure } from '../upstream/failure.js';
import { ADMIT_GO, ADMIT_OVERFLOW } from '../upstream/circuit-breaker.js'; // traffic policy (issue 5)
import { hashKeyOf } from '../upstream/hash-lb.js'; // traffic policy (issue 5)
import type { PipeResult } from '../tcp/pipe.js';
import { isoTime } from './access.js';
import type { HttpParseError } from './errors.js';
import type { RequestHead, ResponseHead } from './head.js';
import { buildRequestHead, buildResponseHead, compileHeaderOps, type CompiledHeaderOps, type RequestHeadFacts } from './headers.js';
import { defaultBody, localReplyBytes } from './local-reply.js';
import { MIRROR_DEFAULT_TIMEOUT_MS, Mirror } from './mirror.js';
import { compileRetry, isIdempotent, type CompiledRetry } from './retry.js';
import { Decision, type ForwardAction } from '../route/http-route.js';
import { WOULD_DENY_REASON } from '../route/select.js';
import { CHUNK_END, LAST_CHUNK, chunkHeader, lastChunk, type Framing } from './serialize.js';
import type { DialResult, UpstreamConn, UpstreamFailureKind, UpstreamUser } from './upstream-pool.js';
import type { HttpSession } from './connection-manager.js';

/** Buffer#latin1Write skips write()'s argument juggling (heads are latin1 by construction). */
interface Latin1WritableBuffer extends Buffer {
  latin1Write(s: string, offset: number): number;
}

const CONTINUE_100 = 'HTTP/1.1 100 Continue\r\n\r\n';
/** Output of one upstream read up to this size is copied into one buffer (one write syscall). */
const COALESCE_LIMIT = 64 * 1024;

/** Exchange phases (plain constants: see parser.ts on enums under verbatimModuleSyntax). */
const Phase = { Routing: 0, Connecting: 1, Sent: 2, Responding: 3, Tunnel: 4, Done: 5 } as const;
type Phase = (typeof Phase)[keyof typeof Phase];

/** Per-route compiled policy (retry, header mutations): one WeakMap lookup per request. */
interface CompiledAction {
  readonly retry: CompiledRetry;
  readonly requestOps: CompiledHeaderOps | null;
  readonly responseOps: CompiledHeaderOps | null;
}
const actions = new WeakMap<ForwardAction, CompiledAction>();
function compiledAction(a: ForwardAction): CompiledAction {
  let c = actions.get(a);
  if (c === undefined) {
    c = { retry: compileRetry(a.retries), requestOps: compileHeaderOps(a.requestHeaders), responseOps: compileHeaderOps(a.responseHeaders) };
    actions.set(a, c);
  }
  return c;
}


export class Exchange implements UpstreamUser, RequestHeadFacts {
  readonly decision = new Decision();
  // RequestHeadFacts (filled while the upstream head is built)
  xffIn: string | null = null;
  requestId: string | null = null;
  userAgent: string | null = null;

  phase: Phase = Phase.Routing;
  requestComplete = false;
  responseStarted = false;
  finished = false;
  /** Answer with Connection: close and close the connection after this exchange. */
  closeAfter = false;

  // timing / deadlines (sweeper clock)
  routeDeadline = 0;
  tryDeadline = 0;
  lastActivity: number;
  private sentAt = 0;
  private upstreamServiceTime: number | null = null;

  // upstream
  private conn: UpstreamConn | null = null;
  private upstreamHeadText = '';
  private upFraming: Framing = 'none';
  private retry: CompiledRetry | undefined = undefined;
  private tries = 0;
  private staleRetried = false;
  private exclude: string[] | undefined = undefined;
  private replay: Buffer[] | null = null;
  private replayBytes = 0;
  private replayable = true;
  private bodyBytesSent = 0;
  private requestTrailers: string[] | null = null;
  private sent100 = false;
  private upPaused = false;
  private upKeepAlive = false;
  private responseTrailers: string[] | null = null;
  private downChunked = false;
  private respOps: CompiledHeaderOps | null = null;
  private awaitingReply = false;
  /** VirtualService mirror: the copy of this request (mirror.ts), when this request was chosen. */
  private mirror: Mirror | null = null;

  // output batch of the current upstream read
  private out: (string | Buffer)[] = [];
  private outBytes = 0;

  // access log facts
  bytesReceived = 0;
  bytesSent = 0;
  responseCode = 0;
  flags = '-';
  reason: string | undefined = undefined;
  detail: string | undefined = undefined;
  private transportFailure: string | undefined = undefined;
  upstreamHost: string | null = null;
  upstreamCluster: string | null = null;
  upstreamLocal: string | null = null;

  constructor(
    readonly session: HttpSession,
    readonly head: RequestHead,
    readonly startMs: number,
    readonly startPerf: number,
  ) {
    this.lastActivity = session.engine.sweeper.now;
  }

  // ================================================================ start

  /** The router has filled `decision`. Called from the session's onHead (parser paused). */
  start(): void {
    const d = this.decision;
    if (d.pending !== undefined) {
      // Explicit proxy ACL mode: the decision waits for DNS (parser paused; the end of a bodyless
      // request may arrive meanwhile: onRequestComplete only records it).
      const p = d.pending;
      d.pending = undefined;
      void p.then(() => {
        if (!this.finished) this.start();
      });
      return;
    }
    if (d.kind === 'reply') {
      this.upstreamCluster = d.clusterName ?? null;
      if (this.head.bodyFraming === 'none' || this.head.contentLength === 0) {
        // The parser delivers the end of this message right after onHead: answer then, keep-alive.
        if (this.requestComplete) this.reply(d.status, d.flag, d.reason, d.detail, d.body, d.replyHeaders);
        else this.awaitingReply = true;
      } else {
        // Do not read a body we will not forward: answer now and close.
        this.closeAfter = true;
        this.reply(d.status, d.flag, d.reason, d.detail, d.body, d.replyHeaders);
      }
      return;
    }
    const action = d.action!;
    const head = this.head;
    this.upstreamCluster = d.clusterName ?? null;
    if (d.proxy?.wouldDeny === true) this.reason = WOULD_DENY_REASON; // replaced if the request then fails (ssrf_denied, ...)
    const ca = compiledAction(action);
    this.retry = ca.retry;
    this.respOps = ca.responseOps;
    const engine = this.session.engine;
    const opts = engine.opts;
    const bodyless = head.bodyFraming === 'none' || head.contentLength === 0;
    this.replay = bodyless ? null : [];
    this.upFraming = head.bodyFraming === 'chunked' ? 'chunked' : head.bodyFraming === 'length' ? head.contentLength : 'none';
    const stripExpect = head.expectContinue;
    this.upstreamHeadText = buildRequestHead(
      {
        method: head.method,
        target: d.target,
        host: d.upstreamHost,
        headers: head.headers,
        connectionTokens: head.connectionTokens,
        framing: this.upFraming,
        upgrade: head.upgrade,
        stripExpect,
        xffAppend: opts.xForwardedFor ? this.session.remoteAddress : null,
        proto: this.session.tls ? 'https' : 'http',
        addRequestId: opts.requestId,
        ops: ca.requestOps,
      },
      this,
    );
    const mp = action.mirror;
    if (mp !== undefined && !head.upgrade && mp.percent > 0 && (mp.percent >= 100 || this.session.router.random() * 100 < mp.percent)) {
      this.mirror = new Mirror(this.session, head, this.upstreamHeadText, d.upstreamHost, this.upFraming === 'chunked', mp.cluster, d.routeName, action.timeoutMs !== undefined && action.timeoutMs > 0 ? action.timeoutMs : MIRROR_DEFAULT_TIMEOUT_MS);
    }
    if (action.timeoutMs !== undefined && action.timeoutMs > 0 && bodyless) this.routeDeadline = engine.sweeper.now + action.timeoutMs;
    if (d.delayMs > 0) {
      this.flags = 'DI';
      setTimeout(() => this.acquire(), d.delayMs).unref();
      return;
    }
    this.acquire();
  }

  // ================================================================ upstream acquisition

  private acquire(): void {
    if (this.finished) return;
    // [traffic policy, issue 5] connectionPool limits (upstream/circuit-breaker.ts): wait for a slot, or 503 UO.
    const dc = this.decision.cluster;
    if (this.tries === 0 && dc !== undefined && dc.connectionPool !== undefined) {
      const a = this.session.engine.services.clusters.breakers.admit(this, dc, () => this.acquire());
      if (a !== ADMIT_GO) {
        if (a === ADMIT_OVERFLOW) this.reply(503, 'UO', 'upstream_overflow', `cluster ${dc.name}: ${dc.connectionPool.maxConnections ?? '-'} request(s) in flight and ${dc.connectionPool.maxPendingRequests ?? '-'} waiting (connectionPool limits)`);
        return;
      }
    }
    this.phase = Phase.Connecting;
    this.tries++;
    const d = this.decision;
    const s = this.session;
    const px = d.proxy; // explicit proxy only
    const req: UpstreamRequest = {
      cluster: px === undefined ? d.clusterName! : px.cluster,
      snapshot: s.snapshot,
      requestedHost: px === undefined ? d.host : px.requestedHost,
      requestedPort: d.requestedPort,
      originalDestination: s.conn.originalDestination,
      downstreamIp: s.remoteAddress,
      filterSourceAddress: px?.filterSourceAddress,
      allowAddresses: px?.allowAddresses,
      exclude: this.exclude,
      // [traffic policy, issue 5] consistentHash key (upstream/hash-lb.ts); undefined when the cluster has none.
      hashKey: dc !== undefined && dc.consistentHash !== undefined ? hashKeyOf(dc.consistentHash, { headers: this.head.headers, path: this.head.path, sourceIp: s.remoteAddress }) : undefined,
    };
    const clusters = s.engine.services.clusters;
    const r = clusters.chooseSync(req);
    if (r !== undefined) {
      this.onChosen(r);
      return;
    }
    clusters.choose(req).then(
      (res) => this.onChosen(res),
      (err: unknown) => this.onChosen({ ok: false, failure: { flag: 'UF', reason: 'internal_error', detail: String(err), retryable: false } }),
    );
  }

  private onChosen(r: ChooseResult): void {
    if (this.finished) return;
    if (!r.ok) {
      this.connectFailed(r.failure);
      return;
    }
    const t: UpstreamTarget = r.target;
    const pool = this.session.engine.pool;
    const key = pool.keyOf(t);
    const c = pool.take(key);
    if (c !== undefined) {
      this.send(c);
      return;
    }
    pool.dial(t, key, undefined).then(
      (dr) => this.onDialed(dr),
      (err: unknown) => this.onDialed({ ok: false, failure: { flag: 'UF', reason: 'internal_error', detail: String(err), retryable: false } }),
    );
  }

  private onDialed(d: DialResult): void {
    if (!d.ok) {
      if (!this.finished) this.connectFailed(d.failure);
      return;
    }
    if (this.finished) {
      d.conn.release(true); // fresh and unused: keep it for the next request
      return;
    }
    this.send(d.conn);
  }

  private connectFailed(f: UpstreamFailure): void {
    if (f.flag === 'UF') this.session.engine.services.clusters.reportOutcome(this.decision.cluster, f.upstreamHost, 0); // [issue 5] outlier detection
    if (f.upstreamHost !== undefined) this.upstreamHost = f.upstreamHost;
    if (f.upstreamLocalAddress !== undefined) this.upstreamLocal = f.upstreamLocalAddress;
    if (f.cluster !== undefined) this.upstreamCluster = f.cluster;
    const rp = this.retry!;
    if (f.retryable && rp.connectFailure && this.tries < rp.maxTries && this.canReplay() && this.retryAllowed()) {
      if (f.upstreamHost !== undefined) (this.exclude ??= []).push(f.upstreamHost);
      this.acquire();
      return;
    }
    this.transportFailure = f.flag === 'UF' ? f.detail : undefined;
    const flags = this.tries > 1 ? `${f.flag},URX` : f.flag;
    this.reply(statusForFailure(f), flags, f.reason, f.detail);
  }

  /**
   * [issue 5] DestinationRule connectionPool.http.maxRetries: a retry slot of the cluster
   * (upstream/circuit-breaker.ts). Asked last, when everything else says "retry". No slot: the
   * failure goes to the client as it is, counted in tollgate_http_retry_overflow_total.
   */
  private retryAllowed(): boolean {
    const dc = this.decision.cluster;
    if (dc === undefined || dc.connectionPool?.maxRetries === undefined) return true;
    const engine = this.session.engine;
    if (engine.services.clusters.breakers.retry(this, dc)) return true;
    engine.metrics.retryOverflow.labels(dc.name).value++;
    return false;
  }

  /** Whether the request can be sent again: nothing of the body consumed yet, or all of it kept. */
  private canReplay(): boolean {
    if (this.bodyBytesSent === 0 && this.bytesReceived === 0) return true;
    return this.replayable && this.requestComplete;
  }

  private send(c: UpstreamConn): void {
    this.conn = c;
    this.phase = Phase.Sent;
    c.attach(this, this.head.method);
    this.upstreamHost = c.upstreamHost;
    this.upstreamLocal = c.localAddress;
    this.upstreamCluster = c.target.cluster.name;
    this.reusedConn = c.served > 0;
    const engine = this.session.engine;
    this.sentAt = performance.now();
    const rp = this.retry!;
    if (rp.perTryTimeoutMs > 0) this.tryDeadline = engine.sweeper.now + rp.perTryTimeoutMs;
    const s = c.socket;
    const replay = this.replay;
    if (replay === null) {
      // No body: the head is the whole request.
      s.write(this.upstreamHeadText, 'latin1');
      return;
    }
    s.cork();
    s.write(this.upstreamHeadText, 'latin1');
    this.bodyBytesSent = 0;
    if (replay.length > 0) for (const b of replay) this.writeBody(s, b);
    if (this.requestComplete) this.writeRequestEnd(s);
    else {
      if (this.head.expectContinue && !this.sent100) {
        this.sent100 = true;
        this.session.write(CONTINUE_100);
      }
      this.session.resumeRequestBody();
    }
    s.uncork();
  }

  // ================================================================ request body (from the session's parser)

  onRequestBody(chunk: Buffer): void {
    this.bytesReceived += chunk.length;
    if (this.mirror !== null) this.mirror.onBody(chunk);
    this.lastActivity = this.session.engine.sweeper.now;
    if (this.replay !== null && this.replayable) {
      if (this.replayBytes + chunk.length <= this.session.engine.opts.maxReplayBodyBytes) {
        this.replay.push(chunk);
        this.replayBytes += chunk.length;
      } else {
        this.replayable = false;
        this.replay.length = 0;
      }
    }
    const c = this.conn;
    if (c === null) return; // not connected yet is impossible (parser paused); answered locally / failed: discarded
    if (!this.writeBody(c.socket, chunk)) this.session.pauseReads();
  }

  private writeBody(s: Socket, chunk: Buffer): boolean {
    this.bodyBytesSent += chunk.length;
    if (this.upFraming !== 'chunked') return s.write(chunk);
    s.write(chunkHeader(chunk.length), 'latin1');
    s.write(chunk);
    return s.write(CHUNK_END, 'latin1');
  }

  private writeRequestEnd(s: Socket): void {
    if (this.upFraming === 'chunked') s.write(this.requestTrailers !== null ? lastChunk(this.requestTrailers) : LAST_CHUNK, 'latin1');
  }

  onRequestTrailers(t: string[]): void {
    this.requestTrailers = t;
  }

  onRequestComplete(): void {
    this.requestComplete = true;
    if (this.awaitingReply) {
      this.awaitingReply = false;
      const d = this.decision;
      this.reply(d.status, d.flag, d.reason, d.detail, d.body, d.replyHeaders);
      return;
    }
    if (!this.finished) {
      const action = this.decision.action;
      if (action !== undefined && action.timeoutMs !== undefined && action.timeoutMs > 0 && this.routeDeadline === 0) {
        this.routeDeadline = this.session.engine.sweeper.now + action.timeoutMs;
      }
      const c = this.conn;
      if (c !== null) this.writeRequestEnd(c.socket);
    }
    // The copy goes out after the main request's last byte (fire-and-forget, mirror.ts).
    if (this.mirror !== null) this.mirror.dispatch();
  }

  /** The downstream request could not be parsed after its head (bad chunk, truncated body...). */
  onDownstreamProtocolError(err: HttpParseError): void {
    if (this.finished) return;
    this.dropConn();
    if (!this.responseStarted) {
      this.closeAfter = true;
      this.reply(err.status, 'DPE', err.code, err.message);
    } else {
      this.abort('DPE', err.code, err.message);
    }
  }

  /** The downstream connection closed or reset before the exchange finished. */
  onDownstreamClosed(detail: string): void {
    if (this.finished) return;
    this.dropConn();
    this.flags = 'DC';
    this.reason = 'downstream_closed';
    this.detail = detail;
    this.finished = true;
    this.phase = Phase.Done;
    this.log();
  }

  onDownstreamDrain(): void {
    if (this.upPaused && this.conn !== null) {
      this.upPaused = false;
      this.conn.socket.resume();
    }
  }

  // ================================================================ response (UpstreamUser)

  onUpstreamHead(h: ResponseHead): void {
    if (this.finished) return;
    this.lastActivity = this.session.engine.sweeper.now;
    const status = h.statusCode;
    const head = this.head;
    if (status === 101) {
      if (!head.upgrade) {
        this.upstreamFailed('protocol', 'upstream switched protocols for a request that did not ask to upgrade', undefined);
        return;
      }
      this.phase = Phase.Tunnel;
      this.responseCode = 101;
      this.responseStarted = true;
      this.upstreamServiceTime = performance.now() - this.sentAt;
      this.push(buildResponseHead({ status, reason: h.reason, headers: h.headers, connectionTokens: h.connectionTokens, framing: 'none', connection: 'upgrade', upgrade: true, ops: this.respOps }));
      return;
    }
    this.session.engine.services.clusters.reportOutcome(this.conn?.target.cluster, this.upstreamHost, status); // [issue 5] outlier detection
    const rp = this.retry!;
    if (rp.statusRetried(status) && this.tries < rp.maxTries && this.canReplay() && this.retryAllowed()) {
      // Discard this response (and its connection) and try again, preferring another endpoint.
      const c = this.conn;
      this.conn = null;
      if (c !== null) {
        if (this.upstreamHost !== null) (this.exclude ??= []).push(this.upstreamHost);
        c.destroy();
      }
      this.tryDeadline = 0;
      this.flags = '-';
      this.acquire();
      return;
    }
    this.phase = Phase.Responding;
    this.tryDeadline = 0;
    this.responseCode = status;
    this.upKeepAlive = h.keepAlive;
    this.upstreamServiceTime = performance.now() - this.sentAt;
    if (this.tries > 1 && rp.statusRetried(status)) this.flags = 'URX';
    let framing: Framing;
    if (head.method === 'HEAD' || status === 304) framing = h.contentLength >= 0 ? h.contentLength : 'none';
    else if (status === 204) framing = 'none';
    else if (h.bodyFraming === 'length') framing = h.contentLength;
    else if (h.bodyFraming === 'none') framing = 0;
    else if (head.version === '1.1') {
      framing = 'chunked';
      this.downChunked = true;
    } else {
      framing = 'none'; // HTTP/1.0 client: the body ends when we close
      this.closeAfter = true;
    }
    if (!this.requestComplete) this.closeAfter = true; // answered before the body ended: cannot resync
    const s = this.session;
    const close = this.closeAfter || !head.keepAlive || s.engine.draining || s.clientEnded;
    if (close) this.closeAfter = true;
    this.push(
      buildResponseHead({
        status,
        reason: h.reason,
        headers: h.headers,
        connectionTokens: h.connectionTokens,
        framing,
        connection: close ? 'close' : head.version === '1.0' ? 'keep-alive' : undefined,
        upgrade: false,
        ops: this.respOps,
      }),
    );
    this.responseStarted = true;
  }

  onUpstreamBody(b: Buffer): void {
    if (this.phase !== Phase.Responding || b.length === 0) return;
    this.bytesSent += b.length;
    if (this.downChunked) {
      this.push(chunkHeader(b.length));
      this.push(b);
      this.push(CHUNK_END);
    } else {
      this.push(b);
    }
  }

  onUpstreamTrailers(t: string[]): void {
    this.responseTrailers = t;
  }

  onUpstreamReadDone(): void {
    this.lastActivity = this.session.engine.sweeper.now;
    if (this.out.length > 0 && !this.flush() && this.conn !== null && !this.upPaused) {
      this.upPaused = true;
      this.conn.socket.pause();
    }
  }

  onUpstreamComplete(): void {
    if (this.phase !== Phase.Responding) return;
    if (this.downChunked) this.push(this.responseTrailers !== null ? lastChunk(this.responseTrailers) : LAST_CHUNK);
    const c = this.conn;
    this.conn = null;
    if (c !== null) {
      if (this.upPaused) {
        this.upPaused = false;
        c.socket.resume();
      }
      c.release(this.upKeepAlive && this.requestComplete && !c.dead);
    }
    this.finish();
  }

  onUpstreamUpgrade(rest: Buffer): void {
    const c = this.conn;
    this.conn = null;
    if (c === null || this.finished) return;
    this.flush();
    this.session.startTunnel(c.socket, rest, this);
  }

  /** Tunnel (after 101) ended: one access-log line for the whole upgraded connection. */
  onTunnelEnd(r: PipeResult): void {
    this.bytesReceived = r.bytesFromDownstream;
    this.bytesSent = r.bytesFromUpstream;
    if (r.outcome === 'upstream_reset') {
      this.flags = 'UC';
      this.reason = 'upstream_reset';
    } else if (r.outcome === 'downstream_reset') {
      this.flags = 'DC';
      this.reason = 'downstream_reset';
    } else if (r.outcome === 'idle_timeout') {
      this.reason = 'idle_timeout';
    }
    if (r.detail !== undefined) this.detail = r.detail;
    this.finished = true;
    this.phase = Phase.Done;
    this.log();
  }

  onUpstreamFailure(kind: UpstreamFailureKind, detail: string, err: HttpParseError | undefined): void {
    this.conn = null;
    if (this.finished) return;
    this.upstreamFailed(kind, detail, err);
  }

  onUpstreamDrain(): void {
    this.session.resumeReads();
  }

  private upstreamFailed(kind: UpstreamFailureKind, detail: string, err: HttpParseError | undefined): void {
    // [issue 5] outlier detection (a reused keep-alive connection closed under us is not the endpoint's fault)
    if (!this.responseStarted && (kind === 'protocol' || !this.reusedConn)) this.session.engine.services.clusters.reportOutcome(this.decision.cluster, this.upstreamHost, kind === 'protocol' ? 502 : 0);
    this.dropConn();
    if (!this.responseStarted) {
      const rp = this.retry!;
      const reused = this.reusedConn;
      // A pooled connection the server had already closed: the request was never processed.
      if (kind !== 'protocol' && reused && !this.staleRetried && this.canReplay() && (isIdempotent(this.head.method) || rp.refusedStream)) {
        this.staleRetried = true;
        this.tries--; // not counted against the route's attempts
        this.acquire();
        return;
      }
      if (kind !== 'protocol' && rp.reset && this.tries < rp.maxTries && this.canReplay() && this.retryAllowed()) {
        if (this.upstreamHost !== null) (this.exclude ??= []).push(this.upstreamHost);
        this.acquire();
        return;
      }
      if (!this.requestComplete) this.closeAfter = true;
      if (kind === 'protocol') this.reply(502, 'UPE', 'upstream_protocol_error', err ? `${err.code}: ${detail}` : detail);
      else this.reply(503, this.tries > 1 ? 'UC,URX' : 'UC', 'upstream_reset_before_response', detail);
      return;
    }
    if (kind === 'protocol') this.abort('UPE', 'upstream_protocol_error', err ? `${err.code}: ${detail}` : detail);
    else this.abort('UC', 'upstream_reset_mid_response', detail);
  }

  private reusedConn = false;

  // ================================================================ timeouts (session sweep)

  /** Called by the session's sweep while this exchange is active. */
  checkTimeouts(now: number): void {
    if (this.finished || this.phase === Phase.Tunnel) return;
    if (this.tryDeadline !== 0 && now >= this.tryDeadline && !this.responseStarted) {
      this.tryDeadline = 0;
      const rp = this.retry!;
      this.dropConn();
      if (this.tries < rp.maxTries && this.canReplay() && this.retryAllowed()) {
        if (this.upstreamHost !== null) (this.exclude ??= []).push(this.upstreamHost);
        this.acquire();
        return;
      }
      this.timeout('UT', 'upstream_per_try_timeout', `no response within the per-try timeout of ${rp.perTryTimeoutMs} ms`);
      return;
    }
    if (this.routeDeadline !== 0 && now >= this.routeDeadline) {
      this.timeout('UT', 'upstream_request_timeout', `no complete response within the route timeout of ${this.decision.action?.timeoutMs ?? 0} ms`);
      return;
    }
    const idle = this.session.engine.opts.streamIdleTimeoutMs;
    if (now - this.lastActivity >= idle && now - this.session.lastActivity >= idle) {
      this.timeout('SI', 'stream_idle_timeout', `no bytes in either direction for ${idle} ms`);
    }
  }

  private timeout(flag: string, reason: string, detail: string): void {
    this.dropConn();
    if (this.responseStarted) {
      this.abort(flag, reason, detail);
      return;
    }
    if (!this.requestComplete) this.closeAfter = true;
    this.reply(flag === 'SI' && !this.requestComplete ? 408 : 504, flag, reason, detail);
  }

  // ================================================================ endings

  /** Destroys the upstream connection in use, if any (never reused after a failure). */
  private dropConn(): void {
    const c = this.conn;
    this.conn = null;
    if (c !== null) c.destroy();
  }

  /** A response generated by the proxy. */
  private reply(status: number, flags: string, reason: string | undefined, detail: string | undefined, body?: string, headers?: string[]): void {
    if (this.finished) return;
    this.dropConn();
    this.responseCode = status;
    if (flags !== '-' || this.flags === '-') this.flags = flags;
    this.reason = reason;
    this.detail = detail;
    const s = this.session;
    const head = this.head;
    if (!this.requestComplete) this.closeAfter = true;
    const close = this.closeAfter || !head.keepAlive || s.engine.draining || s.clientEnded;
    if (close) this.closeAfter = true;
    const text = body ?? defaultBody(status, reason);
    const buf = localReplyBytes({ status, body: text, reason, headers }, close, head.method === 'HEAD', head.version === '1.0' && !close);
    this.bytesSent = head.method === 'HEAD' ? 0 : Buffer.byteLength(text);
    this.responseStarted = true;
    this.out.length = 0;
    this.outBytes = 0;
    s.write(buf);
    this.finish();
  }

  /** Fails after the response head went out: reset the downstream (never a clean short body). */
  private abort(flags: string, reason: string, detail: string): void {
    if (this.finished) return;
    this.dropConn();
    this.flags = flags;
    this.reason = reason;
    this.detail = detail;
    this.out.length = 0;
    this.outBytes = 0;
    this.closeAfter = true;
    this.finished = true;
    this.phase = Phase.Done;
    this.log();
    this.session.abort();
  }

  private finish(): void {
    if (this.finished) return;
    this.finished = true;
    this.phase = Phase.Done;
    if (this.out.length > 0) this.flush();
    this.log();
    this.session.exchangeDone(this);
  }

  // ================================================================ output batching

  private push(x: string | Buffer): void {
    this.out.push(x);
    this.outBytes += x.length;
  }

  /** Writes the queued output in one write; returns the socket's write() result. */
  private flush(): boolean {
    const out = this.out;
    const n = out.length;
    if (n === 0) return true;
    let ok: boolean;
    const s = this.session;
    if (n === 1) {
      ok = s.write(out[0]!);
    } else if (this.outBytes <= COALESCE_LIMIT) {
      const buf = Buffer.allocUnsafe(this.outBytes);
      let off = 0;
      for (let i = 0; i < n; i++) {
        const x = out[i]!;
        if (typeof x === 'string') off += (buf as Latin1WritableBuffer).latin1Write(x, off);
        else {
          x.copy(buf, off);
          off += x.length;
        }
      }
      ok = s.write(buf);
    } else {
      ok = s.writev(out);
    }
    out.length = 0;
    this.outBytes = 0;
    return ok;
  }

  // ================================================================ observability

  private log(): void {
    const s = this.session;
    const engine = s.engine;
    if (this.decision.cluster?.connectionPool !== undefined) engine.services.clusters.breakers.done(this); // [issue 5] frees the connectionPool slot
    if (this.mirror !== null && !this.requestComplete) this.mirror.abandon(); // body never completed: no copy
    const d = this.decision;
    const durationMs = performance.now() - this.startPerf;
    if (s.filter.accessLog) {
      const al = engine.services.accessLog;
      if (al.needsRecords) al.log(this.record(durationMs));
      else al.logJsonLine(this.jsonLine(durationMs));
    }
    if (this.reason === WOULD_DENY_REASON) engine.services.metrics.wouldDenyPassed(d.host, d.requestedPort, 'HTTP', s.sourceNamespace);
    else if (this.reason !== undefined) engine.services.metrics.denied(this.reason);
    const cluster = d.cluster;
    engine.metrics.record(d.proxy !== undefined ? d.proxy.destinationService : (cluster?.serviceHost ?? (d.host !== '' ? d.host : 'unknown')), cluster?.origin?.namespace, s.sourceNamespace, this.responseCode, this.flags, durationMs, this.bytesReceived, this.bytesSent, s.conn.listener.listener.inboundCapture === true);
  }

  private record(durationMs: number): AccessLogRecord {
    const s = this.session;
    const head = this.head;
    const r: AccessLogRecord = {
      start_time: isoTime(this.startMs),
      method: head.method,
      authority: head.authority ?? null,
      path: head.path,
      protocol: head.version === '1.1' ? 'HTTP/1.1' : 'HTTP/1.0',
      response_code: this.responseCode,
      response_flags: this.flags,
      bytes_received: this.bytesReceived,
      bytes_sent: this.bytesSent,
      duration: Math.floor(durationMs),
      upstream_host: this.upstreamHost,
      upstream_cluster: this.upstreamCluster,
      upstream_local_address: this.upstreamLocal,
      downstream_remote_address: s.remoteText,
      downstream_local_address: s.localText,
      requested_server_name: s.sni,
      route_name: this.decision.routeName,
    };
    if (this.reason !== undefined) r.tollgate_reason = this.reason;
    r.user_agent = this.userAgent;
    r.x_forwarded_for = this.xffIn;
    r.request_id = this.requestId;
    r.upstream_service_time = this.upstreamServiceTime === null ? null : Math.floor(this.upstreamServiceTime);
    if (this.detail !== undefined) r.response_code_details = this.detail;
    if (this.transportFailure !== undefined) r.upstream_transport_failure_reason = this.transportFailure;
    return r;
  }

  /**
   * The same line formatJson(this.record()) gives, built directly (no record object). Values the
   * parser or this engine already restricted to safe characters (method token, validated authority,
   * addresses, flags, reasons) are not re-checked for JSON escaping.
   */
  private jsonLine(durationMs: number): string {
    const s = this.session;
    const head = this.head;
    const ust = this.upstreamServiceTime;
    let line =
      `{"start_time":"${isoTime(this.startMs)}","method":"${head.method}","authority":${head.authority === undefined ? 'null' : `"${head.authority}"`},"path":${jsonString(head.path)},` +
      `"protocol":"${head.version === '1.1' ? 'HTTP/1.1' : 'HTTP/1.0'}","response_code":${this.responseCode},"response_flags":"${this.flags}",` +
      `"bytes_received":${this.bytesReceived},"bytes_sent":${this.bytesSent},"duration":${Math.floor(durationMs)},` +
      `"upstream_host":${this.upstreamHost === null ? 'null' : `"${this.upstreamHost}"`},"upstream_cluster":${jsonString(this.upstreamCluster)},` +
      `"upstream_local_address":${this.upstreamLocal === null ? 'null' : `"${this.upstreamLocal}"`},"downstream_remote_address":"${s.remoteText}",` +
      `"downstream_local_address":"${s.localText}","requested_server_name":${s.sni === null ? 'null' : `"${s.sni}"`},"route_name":${jsonString(this.decision.routeName)}`;
    if (this.reason !== undefined) line += `,"tollgate_reason":${jsonString(this.reason)}`;
    line +=
      `,"user_agent":${jsonString(this.userAgent)},"x_forwarded_for":${jsonString(this.xffIn)},"request_id":${jsonString(this.requestId)},` +
      `"upstream_service_time":${ust === null ? 'null' : Math.floor(ust)}`;
    if (this.detail !== undefined) line += `,"response_code_details":${jsonString(this.detail)}`;
    if (this.transportFailure !== undefined) line += `,"upstream_transport_failure_reason":${jsonString(this.transportFailure)}`;
    return line + '}\n';
  }
}
