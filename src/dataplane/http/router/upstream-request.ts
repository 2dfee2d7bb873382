/**
 * The router's side of one request: the upstream request head (built once), the attempts (a retry
 * is another attempt, preferring another endpoint), the retry state and the route / per-try
 * deadlines. Response events go to the stream (RouterStream), which owns the downstream side.
 *
 *   start()        circuit-breaker admission (connectionPool), then an attempt
 *   connected()    head written once per attempt, kept body replayed; 100 Continue sent now
 *                  (routed and upstream contacted); the downstream parser resumes so the body streams
 *                  — the head only after the body bytes already received were parsed (sendHeld)
 *   head()         5xx/503... retried per the route policy, else handed to the stream
 *   failures       connect failure / reset / per-try timeout: retried when the policy and the body
 *                  allow, else 503/502/504 with the flag; after the response head went out the
 *                  downstream is reset (a client never sees a clean, shorter body)
 */
import { performance } from 'node:perf_hooks';
import type { UpstreamRequest as UpstreamPick } from '../../upstream/cluster-manager.js';
import type { UpstreamFailure } from '../../upstream/failure.js';
import { ADMIT_GO, ADMIT_OVERFLOW } from '../../upstream/circuit-breaker.js';
import { hashKeyOf } from '../../upstream/hash-lb.js';
import { WOULD_DENY_REASON } from '../../route/select.js';
import type { HttpParseError } from '../errors.js';
import { rawFind, rawValue, type RequestHead, type ResponseHead } from '../head.js';
import { buildRequestHead } from '../headers.js';
import { isIdempotent, type CompiledRetry } from '../retry.js';
import { grpcTimeoutMs } from '../../../shared/grpc-status.js';
import { fieldValue } from '../grpc.js';
import type { Framing } from '../serialize.js';
import type { RouterStream, UpstreamHandle } from '../stream-api.js';
import { UpstreamConn, type UpstreamChannel, type UpstreamFailureKind } from '../upstream-pool.js';
import { RetryState } from './retry-state.js';
import { UpstreamAttempt, type AttemptOwner } from './upstream-attempt.js';

const TE_TRAILERS = /(?:^|,)\s*trailers\s*(?:;|,|$)/i;

/** A `TE` field lists `trailers` (raw field lines are read in place). */
function acceptsTrailers(head: RequestHead): boolean {
  const raw = head.raw;
  if (raw !== undefined) {
    for (let i = rawFind(raw, 'te'); i >= 0; i = rawFind(raw, 'te', i + 5)) if (TE_TRAILERS.test(rawValue(raw, i))) return true;
    return false;
  }
  const headers = head.headers;
  for (let i = 0; i + 1 < headers.length; i += 2) {
    const n = headers[i]!;
    if (n.length === 2 && (n === 'te' || n.toLowerCase() === 'te') && TE_TRAILERS.test(headers[i + 1]!)) return true;
  }
  return false;
}

function sendHeld(r: UpstreamRequest): void {
  r.sendHeld();
}

function statusForFailure(f: UpstreamFailure): number {
  return f.flag === 'BLOCKED' ? 403 : 503;
}

export class UpstreamRequest implements UpstreamHandle, AttemptOwner {
  private attempt: UpstreamAttempt | null = null;
  /** Body parsed between connected() and sendHeld(): what was kept before, and what came since. */
  private held: { readonly before: Buffer[]; readonly chunks: Buffer[] } | null = null;
  private readonly retry: RetryState;
  private readonly headText: string;
  private readonly framing: Framing;
  private readonly timeoutMs: number;
  /** The client accepts trailers (`TE: trailers`): forwarded to HTTP/2 upstreams, where gRPC needs it. */
  private readonly teTrailers: boolean;
  private tryDeadline = 0;
  private routeDeadline = 0;
  private sentAt = 0;
  /** The response head was accepted (not retried): its body flows to the stream. */
  private responding = false;
  private keepAlive = false;

  constructor(
    private readonly s: RouterStream,
    policy: CompiledRetry,
  ) {
    const head = s.head;
    const d = s.decision;
    const conn = s.downstream;
    const engine = conn.engine;
    const opts = engine.opts;
    const bodyless = head.bodyFraming === 'none' || head.contentLength === 0;
    this.retry = new RetryState(policy, bodyless, opts.maxReplayBodyBytes);
    this.teTrailers = acceptsTrailers(head);
    this.framing = head.bodyFraming === 'chunked' ? 'chunked' : head.bodyFraming === 'length' ? head.contentLength : 'none';
    this.headText = buildRequestHead(
      {
        method: head.method,
        target: d.target,
        host: d.upstreamHost,
        headers: head.raw ?? head.headers,
        connectionTokens: head.connectionTokens,
        framing: this.framing,
        upgrade: head.upgrade,
        stripExpect: head.expectContinue,
        xffAppend: opts.xForwardedFor ? conn.remoteAddress : null,
        stripXff: d.cluster?.meshExternal === true,
        proto: conn.tls ? 'https' : 'http',
        addRequestId: opts.requestId,
        ops: s.requestOps,
        xfcc: conn.xfcc,
      },
      s.info,
    );
    if (d.proxy?.wouldDeny === true) s.info.reason = WOULD_DENY_REASON; // replaced if the request then fails (ssrf_denied, ...)
    if (d.logReason !== undefined) {
      s.info.reason = d.logReason; // a dry-run AuthorizationPolicy that would deny this request
      s.info.detail = d.logDetail;
    }
    const t = d.action?.timeoutMs;
    this.timeoutMs = t !== undefined && t > 0 ? t : 0;
    if (s.info.grpc) {
      // The client's deadline (grpc-timeout), capped by the route's timeout (Envoy's max_grpc_timeout as Istio sets it).
      const g = fieldValue(head.headers, 'grpc-timeout');
      const gms = g === null ? undefined : grpcTimeoutMs(g);
      if (gms !== undefined && gms > 0 && (this.timeoutMs === 0 || gms < this.timeoutMs)) this.timeoutMs = gms;
    }
    if (this.timeoutMs > 0 && bodyless) this.routeDeadline = engine.sweeper.now + this.timeoutMs;
    s.onUpstreamRequest(this.headText, d.upstreamHost, this.framing === 'chunked', this.timeoutMs);
  }

  start(): void {
    this.acquire();
  }

  // ================================================================ attempts

  private acquire(): void {
    const s = this.s;
    if (s.finished) return;
    const d = s.decision;
    const dc = d.cluster;
    const engine = s.downstream.engine;
    // DestinationRule connectionPool limits (upstream/circuit-breaker.ts): wait for a slot, or 503 UO.
    if (this.retry.tries === 0 && dc !== undefined && dc.connectionPool !== undefined) {
      const a = engine.services.clusters.breakers.admit(this, dc, () => this.acquire());
      if (a !== ADMIT_GO) {
        if (a === ADMIT_OVERFLOW) s.reply(503, 'UO', 'upstream_overflow', `cluster ${dc.name}: ${dc.connectionPool.maxConnections ?? '-'} request(s) in flight and ${dc.connectionPool.maxPendingRequests ?? '-'} waiting (connectionPool limits)`);
        return;
      }
    }
    this.retry.tries++;
    const conn = s.downstream;
    const px = d.proxy; // explicit proxy only
    const kept = this.retry.tries === 1 && px === undefined ? conn.upstreamAffinity?.take(engine.pool, d.clusterName!, conn.snapshot) : undefined;
    if (kept !== undefined) {
      const a = new UpstreamAttempt(this, engine, s.head.method);
      this.attempt = a;
      a.startOn(kept);
      return;
    }
    const pick: UpstreamPick = {
      cluster: px === undefined ? d.clusterName! : px.cluster,
      snapshot: conn.snapshot,
      requestedHost: px === undefined ? d.host : px.requestedHost,
      requestedPort: d.requestedPort,
      originalDestination: conn.originalDestination,
      downstreamIp: conn.remoteAddress,
      peerNamespace: conn.peerNamespace,
      filterSourceAddress: px?.filterSourceAddress,
      allowAddresses: px?.allowAddresses,
      exclude: this.retry.exclude,
      hashKey: dc !== undefined && dc.consistentHash !== undefined ? hashKeyOf(dc.consistentHash, { headers: s.head.headers, path: s.head.path, sourceIp: conn.remoteAddress }) : undefined,
    };
    const a = new UpstreamAttempt(this, engine, s.head.method);
    this.attempt = a;
    a.start(pick);
  }

  /** Whether another attempt may start now (policy, body, cluster retry budget). */
  private mayRetry(): boolean {
    const r = this.retry;
    return r.triesLeft && r.canReplay(this.s.info.bytesReceived, this.s.requestComplete) && this.retryAllowed();
  }

  /**
   * DestinationRule connectionPool.http.maxRetries: a retry slot of the cluster
   * (upstream/circuit-breaker.ts). Asked last, when everything else says "retry". No slot: the
   * failure goes to the client as it is, counted in tollgate_http_retry_overflow_total.
   */
  private retryAllowed(): boolean {
    const dc = this.s.decision.cluster;
    if (dc === undefined || dc.connectionPool?.maxRetries === undefined) return true;
    const engine = this.s.downstream.engine;
    if (engine.services.clusters.breakers.retry(this, dc)) return true;
    engine.metrics.retryOverflow.labels(dc.name).value++;
    return false;
  }

  connectFailed(_a: UpstreamAttempt, f: UpstreamFailure): void {
    const s = this.s;
    if (s.finished) return;
    const info = s.info;
    if (f.flag === 'UF') s.downstream.engine.services.clusters.reportOutcome(s.decision.cluster, f.upstreamHost, 0); // outlier detection
    if (f.upstreamHost !== undefined) info.upstreamHost = f.upstreamHost;
    if (f.upstreamLocalAddress !== undefined) info.upstreamLocal = f.upstreamLocalAddress;
    if (f.cluster !== undefined) info.upstreamCluster = f.cluster;
    if (f.retryable && this.retry.policy.connectFailure && this.mayRetry()) {
      this.retry.avoid(f.upstreamHost);
      this.acquire();
      return;
    }
    info.transportFailure = f.flag === 'UF' ? f.detail : undefined;
    s.reply(statusForFailure(f), this.retry.tries > 1 ? `${f.flag},URX` : f.flag, f.reason, f.detail);
  }

  connected(_a: UpstreamAttempt, c: UpstreamChannel): void {
    const s = this.s;
    const info = s.info;
    info.upstreamHost = c.upstreamHost;
    info.upstreamLocal = c.localAddress;
    info.upstreamCluster = c.target.cluster.name;
    info.upstreamMtls = c.mtls;
    this.sentAt = performance.now();
    const perTry = this.retry.policy.perTryTimeoutMs;
    if (perTry > 0) this.tryDeadline = s.downstream.engine.sweeper.now + perTry;
    const replay = this.retry.replay;
    if (replay === null) {
      // No body: the head is the whole request.
      c.sendHead(this.headText, this.framing, this.teTrailers);
      return;
    }
    if (s.requestComplete) {
      this.sendWithBody(c, replay);
      return;
    }
    // The body bytes that arrived with the head are parsed first — synchronously, here or in the
    // feed loop this call runs in — and held; the head goes out on the next tick, after them. A
    // malformed body (400) cancels this attempt meanwhile: the upstream never sees a byte of it.
    this.held = { before: replay.slice(), chunks: [] };
    s.sendContinue();
    s.downstream.resumeRequestBody();
    process.nextTick(sendHeld, this);
  }

  /** The head and the body held since connected() (see there), unless the request ended meanwhile. */
  sendHeld(): void {
    const held = this.held;
    this.held = null;
    const c = this.attempt?.conn;
    if (held === null || c === null || c === undefined || this.s.finished) return;
    this.sendWithBody(c, held.before.concat(held.chunks));
  }

  /** Head, body chunks and (when the request is complete) its end, in one batch of writes. */
  private sendWithBody(c: UpstreamChannel, body: readonly Buffer[]): void {
    c.cork();
    c.sendHead(this.headText, this.framing, this.teTrailers);
    if (this.attempt?.conn !== c) {
      c.uncork(); // refused at once (an HTTP/2 connection that went away): another attempt has it
      return;
    }
    this.retry.bodyBytesSent = 0;
    let ok = true;
    for (const b of body) ok = this.writeBody(c, b);
    if (this.s.requestComplete) c.sendEnd(this.s.requestTrailers);
    c.uncork();
    if (!ok) this.s.downstream.pauseReads();
  }

  // ================================================================ request body (from the stream)

  onRequestBody(chunk: Buffer): void {
    this.retry.keep(chunk);
    if (this.held !== null) {
      this.held.chunks.push(chunk);
      return;
    }
    const c = this.attempt?.conn;
    if (c === null || c === undefined) return; // answered locally / failed: discarded
    if (!this.writeBody(c, chunk)) this.s.downstream.pauseReads();
  }

  onRequestEnd(): void {
    if (this.timeoutMs > 0 && this.routeDeadline === 0) this.routeDeadline = this.s.downstream.engine.sweeper.now + this.timeoutMs;
    if (this.held !== null) return; // sendHeld() ends it
    const c = this.attempt?.conn;
    if (c !== null && c !== undefined) c.sendEnd(this.s.requestTrailers);
  }

  private writeBody(c: UpstreamChannel, chunk: Buffer): boolean {
    this.retry.bodyBytesSent += chunk.length;
    return c.sendBody(chunk);
  }

  onDownstreamDrain(): void {
    this.attempt?.resume();
  }

  // ================================================================ response (from the attempt)

  head(a: UpstreamAttempt, h: ResponseHead): void {
    const s = this.s;
    if (s.finished) return;
    const engine = s.downstream.engine;
    s.lastActivity = engine.sweeper.now;
    const status = h.statusCode;
    const info = s.info;
    if (status === 101) {
      if (!s.head.upgrade) {
        this.failed(a, 'protocol', 'upstream switched protocols for a request that did not ask to upgrade', undefined);
        return;
      }
      this.tryDeadline = 0;
      info.upstreamServiceTime = performance.now() - this.sentAt;
      s.onResponseHead(h);
      return;
    }
    engine.services.clusters.reportOutcome(a.conn?.target.cluster, info.upstreamHost, status); // outlier detection
    const rp = this.retry.policy;
    if ((rp.statusRetried(status) || this.grpcRetried(h)) && this.mayRetry()) {
      // Discard this response (and its connection) and try again, preferring another endpoint.
      a.cancel();
      this.attempt = null;
      this.retry.avoid(info.upstreamHost);
      this.tryDeadline = 0;
      info.flags = '-';
      this.acquire();
      return;
    }
    this.responding = true;
    this.tryDeadline = 0;
    this.keepAlive = h.keepAlive;
    info.upstreamServiceTime = performance.now() - this.sentAt;
    if (this.retry.tries > 1 && (rp.statusRetried(status) || this.grpcRetried(h))) info.flags = 'URX';
    s.onResponseHead(h);
  }

  /** A gRPC call failed with a status the route retries (it is in the head: trailers-only). */
  private grpcRetried(h: ResponseHead): boolean {
    const codes = this.retry.policy.grpcRetried;
    if (codes === null || !this.s.info.grpc) return false;
    const st = fieldValue(h.headers, 'grpc-status');
    return st !== null && codes.has(Number(st));
  }

  body(b: Buffer): void {
    if (this.responding && b.length > 0) this.s.onResponseBody(b);
  }

  chunkedBody(bytes: Buffer, dataBytes: number): void {
    if (this.responding) this.s.onResponseChunked(bytes, dataBytes);
  }

  trailers(t: string[]): void {
    this.s.onResponseTrailers(t);
  }

  /** The response body (chunked, from an HTTP/1.1 upstream) may go downstream as received. */
  passChunkedBody(): boolean {
    const c = this.attempt?.conn;
    return c !== null && c !== undefined && c.passChunkedBody();
  }

  readDone(a: UpstreamAttempt): void {
    const s = this.s;
    s.lastActivity = s.downstream.engine.sweeper.now;
    if (!s.onResponseReadDone()) a.pause();
  }

  complete(a: UpstreamAttempt): void {
    if (!this.responding) return;
    this.attempt = null;
    const c = a.conn;
    a.release(this.keepAlive && this.s.requestComplete);
    const s = this.s;
    if (c !== null && s.downstream.upstreamAffinity !== undefined && this.retry.tries === 1) s.downstream.upstreamAffinity.remember(c, s.downstream.snapshot);
    s.onResponseComplete();
  }

  upgrade(a: UpstreamAttempt, rest: Buffer): void {
    const c = a.conn;
    a.conn = null;
    this.attempt = null;
    if (!(c instanceof UpstreamConn) || this.s.finished) return; // only HTTP/1.1 switches protocols
    this.s.onUpgrade(c.socket, rest);
  }

  drain(): void {
    this.s.downstream.resumeReads();
  }

  bodyQueued(): boolean {
    return this.responding && this.s.downstream.writeQueued();
  }

  failed(a: UpstreamAttempt, kind: UpstreamFailureKind, detail: string, err: HttpParseError | undefined): void {
    const s = this.s;
    if (s.finished) return;
    const info = s.info;
    const reused = a.reused;
    // Outlier detection (a reused keep-alive connection closed under us is not the endpoint's fault).
    if (!s.responseStarted && (kind === 'protocol' || !reused)) s.downstream.engine.services.clusters.reportOutcome(s.decision.cluster, info.upstreamHost, kind === 'protocol' ? 502 : 0);
    this.cancel();
    const protocolDetail = err ? `${err.code}: ${detail}` : detail;
    if (!s.responseStarted) {
      const r = this.retry;
      // Refused by an HTTP/2 upstream (GOAWAY, REFUSED_STREAM): never processed, send it again.
      if (kind === 'refused' && !r.staleRetried && r.canReplay(info.bytesReceived, s.requestComplete)) {
        r.staleRetried = true;
        r.tries--;
        this.acquire();
        return;
      }
      // A pooled connection the server had already closed: the request was never processed.
      if (kind !== 'protocol' && reused && !r.staleRetried && r.canReplay(info.bytesReceived, s.requestComplete) && (isIdempotent(s.head.method) || r.policy.refusedStream)) {
        r.staleRetried = true;
        r.tries--; // not counted against the route's attempts
        this.acquire();
        return;
      }
      if (kind !== 'protocol' && r.policy.reset && this.mayRetry()) {
        r.avoid(info.upstreamHost);
        this.acquire();
        return;
      }
      if (kind === 'protocol') s.reply(502, 'UPE', 'upstream_protocol_error', protocolDetail);
      else s.reply(503, r.tries > 1 ? 'UC,URX' : 'UC', 'upstream_reset_before_response', detail);
      return;
    }
    if (kind === 'protocol') s.abortResponse('UPE', 'upstream_protocol_error', protocolDetail);
    else s.abortResponse('UC', 'upstream_reset_mid_response', detail);
  }

  // ================================================================ deadlines, end

  checkTimeouts(now: number): boolean {
    const s = this.s;
    if (this.tryDeadline !== 0 && now >= this.tryDeadline && !s.responseStarted) {
      this.tryDeadline = 0;
      this.cancel();
      if (this.mayRetry()) {
        this.retry.avoid(s.info.upstreamHost);
        this.acquire();
        return true;
      }
      s.timeout('UT', 'upstream_per_try_timeout', `no response within the per-try timeout of ${this.retry.policy.perTryTimeoutMs} ms`);
      return true;
    }
    if (this.routeDeadline !== 0 && now >= this.routeDeadline) {
      s.timeout('UT', 'upstream_request_timeout', `no complete response within the route timeout of ${this.timeoutMs} ms`);
      return true;
    }
    return false;
  }

  cancel(): void {
    const a = this.attempt;
    this.attempt = null;
    if (a !== null) a.cancel();
  }

  onStreamEnd(): void {
    if (this.s.decision.cluster?.connectionPool !== undefined) this.s.downstream.engine.services.clusters.breakers.done(this); // frees the connectionPool slot
  }
}
