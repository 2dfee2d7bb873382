/**
 * The mirrored copy of a request (VirtualService `mirror` / `mirrorPercentage`, Envoy's
 * request_mirror_policies): another upstream request, fire-and-forget. filters/mirror.ts decides
 * which requests get one and feeds it.
 *
 *  - chosen per request (`percent`, same random source as weights/faults); not for upgrade
 *    (WebSocket) requests;
 *  - the copy is the upstream head the main request got (same x-request-id, X-Forwarded-*, route
 *    header mutations, framing) with `Host` suffixed `-shadow` before any port, as Envoy does
 *    (`api.example:8080` -> `api.example-shadow:8080`);
 *  - a body is kept (references to the parser's slices, no copy) up to MIRROR_MAX_BODY_BYTES and
 *    sent once the request is complete; a larger body is not mirrored (`tollgate_http_mirror_skipped_total{reason="body_too_large"}`);
 *    a request that never completes is not mirrored (`abandoned`);
 *  - it never touches the main request: it is dispatched after the main request went upstream,
 *    uses its own pooled connection (ClusterManager pick: SSRF guard, source address, LB, outlier
 *    state), its response is read and discarded, failures end only the copy. At most
 *    MIRROR_MAX_IN_FLIGHT copies per engine at a time (beyond: `overflow`); a copy gets the route
 *    timeout (else MIRROR_DEFAULT_TIMEOUT_MS), checked by the sweeper (no timer per copy);
 *  - not counted in istio_requests_total (it is not a request of the client) but in
 *    `tollgate_http_mirror_requests_total{cluster,response_code,response_flags}`, and logged with
 *    its own access-log line: route_name `<route>#mirror`, authority = the shadow Host.
 * Circuit-breaker slots (connectionPool) are not taken by copies.
 */
import { performance } from 'node:perf_hooks';
import { isoTime, type AccessLogRecord } from '../../observe/access-log.js';
import type { UpstreamRequest } from '../../upstream/cluster-manager.js';
import type { UpstreamFailure } from '../../upstream/failure.js';
import type { HttpParseError } from '../errors.js';
import type { RequestHead, ResponseHead } from '../head.js';
import type { DownstreamConn } from '../stream-api.js';
import type { Sweepable } from '../../sweeper.js';
import type { UpstreamChannel, UpstreamFailureKind } from '../upstream-pool.js';
import { UpstreamAttempt, type AttemptOwner } from './upstream-attempt.js';

/** Bodies larger than this are not mirrored. */
export const MIRROR_MAX_BODY_BYTES = 64 * 1024;
/** Copies in flight per engine; beyond, a copy is skipped (`overflow`). */
export const MIRROR_MAX_IN_FLIGHT = 1024;
/** Deadline of a copy when its route has no timeout. */
export const MIRROR_DEFAULT_TIMEOUT_MS = 15_000;

/** Mirror bookkeeping shared by an engine's copies. */
export class MirrorState {
  inFlight = 0;
}

/** `host[:port]` -> `host-shadow[:port]` (Envoy's shadow Host). */
export function shadowHost(authority: string): string {
  const close = authority.lastIndexOf(']');
  const colon = authority.lastIndexOf(':');
  if (colon > close && authority.indexOf(':') === colon) return `${authority.slice(0, colon)}-shadow${authority.slice(colon)}`;
  if (close > 0 && colon > close) return `${authority.slice(0, colon)}-shadow${authority.slice(colon)}`;
  return `${authority}-shadow`;
}

/** The main upstream head with its `Host` line replaced (buildRequestHead writes Host first). */
function withHost(headText: string, host: string): string {
  const i = headText.indexOf('\r\nHost: ');
  if (i < 0) return headText;
  const j = headText.indexOf('\r\n', i + 8);
  return headText.slice(0, i + 8) + host + headText.slice(j);
}

const S_COLLECTING = 0;
const S_CONNECTING = 1;
const S_SENT = 2;
const S_DONE = 3;

/** Connects and reads the response through an UpstreamAttempt, as the main request does. */
export class Mirror implements AttemptOwner, Sweepable {
  private state = S_COLLECTING;
  private bodyChunks: Buffer[] | null;
  private bodyBytes = 0;
  private readonly headText: string;
  private readonly host: string;
  private attempt: UpstreamAttempt | null = null;
  private deadline = 0;
  private startMs = 0;
  private startPerf = 0;
  private sentAt = 0;
  private responseCode = 0;
  private responseBytes = 0;
  private keepAlive = false;
  private flags = '-';
  private reason: string | undefined = undefined;
  private detail: string | undefined = undefined;
  private upstreamHost: string | null = null;
  private upstreamLocal: string | null = null;

  constructor(
    private readonly session: DownstreamConn,
    private readonly st: MirrorState,
    private readonly request: RequestHead,
    upstreamHeadText: string,
    upstreamHost: string,
    private readonly chunked: boolean,
    private readonly cluster: string,
    private readonly routeName: string | null,
    private readonly timeoutMs: number,
  ) {
    this.host = shadowHost(upstreamHost);
    this.headText = withHost(upstreamHeadText, this.host);
    this.bodyChunks = request.bodyFraming === 'none' || request.contentLength === 0 ? null : [];
  }

  /** A slice of the request body (the main request has it too). */
  onBody(chunk: Buffer): void {
    const b = this.bodyChunks;
    if (this.state !== S_COLLECTING || b === null) return;
    if (this.bodyBytes + chunk.length > MIRROR_MAX_BODY_BYTES) {
      this.skip('body_too_large');
      return;
    }
    b.push(chunk);
    this.bodyBytes += chunk.length;
  }

  /** The request is complete: send the copy. Never throws. */
  dispatch(): void {
    if (this.state !== S_COLLECTING) return;
    const engine = this.session.engine;
    const st = this.st;
    if (st.inFlight >= MIRROR_MAX_IN_FLIGHT) {
      this.skip('overflow');
      return;
    }
    st.inFlight++;
    this.state = S_CONNECTING;
    this.startMs = Date.now();
    this.startPerf = performance.now();
    this.deadline = engine.sweeper.now + this.timeoutMs;
    engine.sweeper.add(this);
    try {
      const s = this.session;
      const req: UpstreamRequest = { cluster: this.cluster, snapshot: s.snapshot, requestedHost: this.host, downstreamIp: s.remoteAddress, peerNamespace: s.peerNamespace };
      this.attempt = new UpstreamAttempt(this, engine, this.request.method);
      this.attempt.start(req);
    } catch (e) {
      this.end(503, 'UF', 'internal_error', String(e));
    }
  }

  /** The main request ended before its body did: nothing to mirror. */
  abandon(): void {
    if (this.state === S_COLLECTING) this.skip('abandoned');
  }

  private skip(reason: string): void {
    this.state = S_DONE;
    this.bodyChunks = null;
    this.session.engine.metrics.mirrorSkipped.labels(reason).value++;
  }

  // ------------------------------------------------------------ AttemptOwner: the response is discarded

  connectFailed(_a: UpstreamAttempt, f: UpstreamFailure): void {
    if (this.state === S_CONNECTING) this.connectionFailed(f);
  }

  connected(_a: UpstreamAttempt, c: UpstreamChannel): void {
    this.send(c);
  }

  private connectionFailed(f: UpstreamFailure): void {
    if (f.upstreamHost !== undefined) this.upstreamHost = f.upstreamHost;
    this.end(f.flag === 'BLOCKED' ? 403 : 503, f.flag, f.reason, f.detail);
  }

  private send(c: UpstreamChannel): void {
    this.state = S_SENT;
    this.upstreamHost = c.upstreamHost;
    this.upstreamLocal = c.localAddress;
    this.sentAt = performance.now();
    const body = this.bodyChunks;
    this.bodyChunks = null;
    if (body === null) {
      c.sendHead(this.headText, 'none', false);
      return;
    }
    c.cork();
    c.sendHead(this.headText, this.chunked ? 'chunked' : this.bodyBytes, false);
    for (const b of body) if (b.length > 0) c.sendBody(b);
    c.sendEnd(null);
    c.uncork();
  }

  head(a: UpstreamAttempt, h: ResponseHead): void {
    this.responseCode = h.statusCode;
    this.keepAlive = h.keepAlive;
    this.session.engine.services.clusters.reportOutcome(a.conn?.target.cluster, this.upstreamHost, h.statusCode);
  }
  body(b: Buffer): void {
    this.responseBytes += b.length;
  }
  chunkedBody(_bytes: Buffer, dataBytes: number): void {
    this.responseBytes += dataBytes; // not asked for (the mirror never passes a body on); counted as body() would
  }
  trailers(): void {}
  readDone(): void {}
  drain(): void {}
  bodyQueued(): boolean {
    return false; // the mirror's response body is discarded
  }
  complete(a: UpstreamAttempt): void {
    a.release(this.keepAlive);
    this.end(this.responseCode, '-', undefined, undefined);
  }
  upgrade(a: UpstreamAttempt): void {
    a.cancel();
    this.end(502, 'UPE', 'upstream_protocol_error', 'the mirror upstream switched protocols');
  }
  failed(_a: UpstreamAttempt, kind: UpstreamFailureKind, detail: string, err: HttpParseError | undefined): void {
    if (kind === 'protocol') this.end(502, 'UPE', 'upstream_protocol_error', err ? `${err.code}: ${detail}` : detail);
    else this.end(503, 'UC', 'upstream_reset_before_response', detail);
  }

  sweep(now: number): void {
    if (this.state !== S_DONE && now >= this.deadline) {
      this.attempt?.cancel();
      this.end(504, 'UT', 'upstream_request_timeout', `the mirror cluster gave no complete response within ${this.timeoutMs} ms`);
    }
  }

  // ------------------------------------------------------------ end: log + metrics

  private end(code: number, flags: string, reason: string | undefined, detail: string | undefined): void {
    if (this.state === S_DONE) return;
    this.state = S_DONE;
    this.bodyChunks = null;
    const engine = this.session.engine;
    this.st.inFlight--;
    engine.sweeper.delete(this);
    this.responseCode = code;
    this.flags = flags;
    this.reason = reason;
    this.detail = detail;
    engine.metrics.mirrorRequests.labels(this.cluster, String(code), flags).value++;
    if (this.session.accessLog) engine.services.accessLog.log(this.record());
  }

  private record(): AccessLogRecord {
    const s = this.session;
    const head = this.request;
    const r: AccessLogRecord = {
      start_time: isoTime(this.startMs),
      method: head.method,
      authority: this.host,
      path: head.path,
      protocol: head.version === '1.1' ? 'HTTP/1.1' : 'HTTP/1.0',
      response_code: this.responseCode,
      response_flags: this.flags,
      bytes_received: this.bodyBytes,
      bytes_sent: this.responseBytes,
      duration: Math.floor(performance.now() - this.startPerf),
      upstream_host: this.upstreamHost,
      upstream_cluster: this.cluster,
      upstream_local_address: this.upstreamLocal,
      downstream_remote_address: s.remoteText,
      downstream_local_address: s.localText,
      requested_server_name: s.sni,
      route_name: `${this.routeName ?? '-'}#mirror`,
    };
    if (this.reason !== undefined) r.tollgate_reason = this.reason;
    r.upstream_service_time = this.sentAt === 0 || this.flags !== '-' ? null : Math.floor(performance.now() - this.sentAt);
    if (this.detail !== undefined) r.response_code_details = this.detail;
    return r;
  }
}
