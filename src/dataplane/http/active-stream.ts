/**
 * One request on a downstream connection (Envoy's ActiveStream): runs the listener's HTTP filter
 * chain over it, writes the response downstream, and fills the request's StreamInfo, which the
 * access log, the metrics and the filters' log phase read at the end.
 *
 *   start()               routing has filled `decision`; the route's FilterPlan runs its
 *                         request-headers phase; the router (last) answers locally or hands the
 *                         stream an UpstreamRequest (router/upstream-request.ts)
 *   request body          filters' request-body phase, then the upstream request
 *   onResponseHead()      response-headers phase; head re-serialized (hop-by-hop removed,
 *                         framing ours); body streamed, the output of one upstream read written in
 *                         one socket write; a chunked body between HTTP/1.1 peers that no filter
 *                         reads goes on as the upstream framed it (validated by its parser)
 *   finish()              log phase, access log, metrics, connection told (keep-alive or close)
 * Failures after the response head went out abort the downstream connection (RST): a client never
 * sees a clean, shorter body.
 */
import { performance } from 'node:perf_hooks';
import type { Socket } from 'node:net';
import { WOULD_DENY_REASON } from '../route/select.js';
import { RBAC_DRY_RUN_REASON } from '../authz/evaluate.js';
import type { PipeResult } from '../tcp/pipe.js';
import type { HttpParseError } from './errors.js';
import { STOP, type ResponseHeaders } from './filter.js';
import type { FilterPlan } from './filter-chain.js';
import type { RequestHead, ResponseHead } from './head.js';
import { buildResponseHead, type CompiledHeaderOps } from './headers.js';
import { GRPC_STATUS_CODES, grpcStatusOfHttp } from '../../shared/grpc-status.js';
import { grpcReplyFields } from './grpc.js';
import { defaultBody, localReplyBytes } from './local-reply.js';
import { Decision } from '../route/http-route.js';
import { CHUNK_END, LAST_CHUNK, chunkHeader, lastChunk, type Framing } from './serialize.js';
import type { DownstreamConn, DownstreamStream, RouterStream, StreamCallbacks, UpstreamHandle, UpstreamRequestHead } from './stream-api.js';
import { StreamInfo } from './stream-info.js';
import { destinationServiceLabel } from '../observe/istio-metrics.js';
import type { CompiledSnapshot } from '../route/compile.js';
import type { Cluster } from '../../snapshot/types.js';

/** Buffer#latin1Write skips write()'s argument juggling (heads are latin1 by construction). */
interface Latin1WritableBuffer extends Buffer {
  latin1Write(s: string, offset: number): number;
}

const CONTINUE_100 = 'HTTP/1.1 100 Continue\r\n\r\n';
/**
 * Output of one upstream read up to this size is copied into one buffer (one write syscall); larger
 * output goes out with one writev, uncopied. 4 KiB keeps the copy in Node's shared buffer pool:
 * above it every read would allocate (and the GC collect) a fresh ArrayBuffer as large as the read.
 */
const COALESCE_LIMIT = 4 * 1024;
const EMPTY = Buffer.alloc(0);

export class ActiveStream implements StreamCallbacks, RouterStream, DownstreamStream {
  readonly decision = new Decision();
  readonly info: StreamInfo;
  requestComplete = false;
  responseStarted = false;
  finished = false;
  /** Answer with Connection: close and close the connection after this request. */
  closeAfter = false;
  lastActivity: number;
  requestOps: CompiledHeaderOps | null = null;
  responseOps: CompiledHeaderOps | null = null;
  requestTrailers: string[] | null = null;

  private plan: FilterPlan | null = null;
  private state: unknown[] | null = null;
  private decodeIndex = 0;
  private upstream: UpstreamHandle | null = null;
  /** A local reply waits for the end of a bodyless request (keep-alive). */
  private awaitingReply = false;
  private tunnel = false;
  private sent100 = false;
  private downChunked = false;
  /** The chunked body is forwarded as the upstream framed it (onResponseChunked), not re-chunked. */
  private chunksAsReceived = false;
  private responseTrailers: string[] | null = null;
  /** Fields response filters added (addResponseHeader). */
  private extraHeaders: string[] | null = null;

  // output batch of the current upstream read
  private out: (string | Buffer)[] = [];
  private outBytes = 0;

  constructor(
    readonly downstream: DownstreamConn,
    readonly head: RequestHead,
    startMs: number,
    startPerf: number,
  ) {
    this.info = new StreamInfo(head, startMs, startPerf);
    this.lastActivity = downstream.engine.sweeper.now;
  }

  // ================================================================ request headers

  /** Routing has filled `decision`; `plan` is the chain of its route. Called from the connection's onHead (parser paused). */
  start(planOf: (d: Decision) => FilterPlan): void {
    const d = this.decision;
    if (d.pending !== undefined) {
      // Explicit proxy ACL mode: the decision waits for DNS (parser paused; the end of a bodyless
      // request may arrive meanwhile: onRequestComplete only records it).
      const p = d.pending;
      d.pending = undefined;
      void p.then(() => {
        if (!this.finished) this.start(planOf);
      });
      return;
    }
    this.info.upstreamCluster = d.clusterName ?? null;
    this.plan = planOf(d);
    this.decodeHeaders(0);
  }

  private decodeHeaders(from: number): void {
    const list = this.plan!.requestHeaders;
    for (let i = from; i < list.length; i++) {
      const b = list[i]!;
      if (b.filter.onRequestHeaders!(this, b.route) === STOP) {
        this.decodeIndex = i + 1;
        return;
      }
    }
  }

  continueDecoding(): void {
    if (!this.finished && this.plan !== null) this.decodeHeaders(this.decodeIndex);
  }

  sendLocalReply(status: number, flags: string, reason: string | undefined, detail: string | undefined, headers?: string[], body?: string): void {
    const d = this.decision;
    d.reply(status, flags, reason, detail, body);
    d.replyHeaders = headers;
    const head = this.head;
    if (head.bodyFraming === 'none' || head.contentLength === 0) {
      // The parser delivers the end of this message right after onHead: answer then, keep-alive.
      if (this.requestComplete) this.replyDecision();
      else this.awaitingReply = true;
    } else {
      // Do not read a body we will not forward: answer now and close.
      this.closeAfter = true;
      this.replyDecision();
    }
  }

  private replyDecision(): void {
    const d = this.decision;
    this.reply(d.status, d.flag, d.reason, d.detail, d.body, d.replyHeaders);
  }

  addResponseHeader(name: string, value: string): void {
    (this.extraHeaders ??= []).push(name, value);
  }

  getState(slot: number): unknown {
    return this.state === null ? undefined : this.state[slot];
  }

  setState(slot: number, value: unknown): void {
    (this.state ??= new Array<unknown>(this.plan!.slots))[slot] = value;
  }

  routerView(): RouterStream {
    return this;
  }

  setUpstream(u: UpstreamHandle): void {
    this.upstream = u;
  }

  random(): number {
    return this.downstream.random();
  }

  // ================================================================ request body (from the connection's parser)

  onRequestBody(chunk: Buffer): void {
    this.info.bytesReceived += chunk.length;
    this.lastActivity = this.downstream.engine.sweeper.now;
    const u = this.upstream;
    if (u !== null) u.onRequestBody(chunk);
    const list = this.plan?.requestBody;
    if (list !== undefined) for (let i = 0; i < list.length; i++) list[i]!.filter.onRequestBody!(this, chunk, false, list[i]!.route);
  }

  onRequestTrailers(t: string[]): void {
    this.requestTrailers = t;
  }

  onRequestComplete(): void {
    this.requestComplete = true;
    if (this.awaitingReply) {
      this.awaitingReply = false;
      this.replyDecision();
      return;
    }
    if (!this.finished && this.upstream !== null) this.upstream.onRequestEnd();
    const list = this.plan?.requestBody;
    if (list !== undefined) for (let i = 0; i < list.length; i++) list[i]!.filter.onRequestBody!(this, EMPTY, true, list[i]!.route);
  }

  /** The downstream request could not be parsed after its head (bad chunk, truncated body...). */
  onDownstreamProtocolError(err: HttpParseError): void {
    if (this.finished) return;
    this.dropUpstream();
    if (!this.responseStarted) {
      this.closeAfter = true;
      this.reply(err.status, 'DPE', err.code, err.message);
    } else {
      this.abortResponse('DPE', err.code, err.message);
    }
  }

  /** The downstream connection closed or reset before the request finished. */
  onDownstreamClosed(detail: string): void {
    if (this.finished) return;
    this.dropUpstream();
    const info = this.info;
    info.flags = 'DC';
    info.reason = 'downstream_closed';
    info.detail = detail;
    this.finished = true;
    this.log();
  }

  onDownstreamDrain(): void {
    this.upstream?.onDownstreamDrain();
  }

  // ================================================================ RouterStream (the router's upstream request)

  onUpstreamRequest(text: string, host: string, chunked: boolean, timeoutMs: number): void {
    const list = this.plan!.upstreamRequest;
    if (list.length === 0) return; // no filter looks: nothing to build
    const up: UpstreamRequestHead = { text, host, chunked, timeoutMs };
    for (let i = 0; i < list.length; i++) list[i]!.filter.onUpstreamRequest!(this, up, list[i]!.route);
  }

  sendContinue(): void {
    if (this.head.expectContinue && !this.sent100) {
      this.sent100 = true;
      this.downstream.write(CONTINUE_100);
    }
  }

  onResponseHead(h: ResponseHead): void {
    const status = h.statusCode;
    const head = this.head;
    const info = this.info;
    info.responseCode = status;
    if (info.grpc) info.grpcFrom(h.headers);
    this.runResponseHeaders(status, h, false);
    const ops = this.responseOpsWithExtras();
    if (status === 101) {
      this.tunnel = true;
      this.responseStarted = true;
      this.push(buildResponseHead({ status, reason: h.reason, headers: h.raw ?? h.headers, connectionTokens: h.connectionTokens, framing: 'none', connection: 'upgrade', upgrade: true, ops }));
      return;
    }
    let framing: Framing;
    if (head.method === 'HEAD' || status === 304) framing = h.contentLength >= 0 ? h.contentLength : 'none';
    else if (status === 204) framing = 'none';
    else if (h.bodyFraming === 'length') framing = h.contentLength;
    else if (h.bodyFraming === 'none') framing = 0;
    else if (head.version === '1.1') {
      framing = 'chunked';
      this.downChunked = true;
      // Both sides HTTP/1.1 and no filter reads the body: the chunks go out as they came in (the
      // upstream's parser still validates every chunk line, CRLF and trailer before it is handed on).
      if (h.bodyFraming === 'chunked' && this.plan!.responseBody.length === 0 && this.upstream !== null) this.chunksAsReceived = this.upstream.passChunkedBody();
    } else {
      framing = 'none'; // HTTP/1.0 client: the body ends when we close
      this.closeAfter = true;
    }
    if (!this.requestComplete) this.closeAfter = true; // answered before the body ended: cannot resync
    const conn = this.downstream;
    const close = this.closeAfter || !head.keepAlive || conn.engine.draining || conn.clientEnded;
    if (close) this.closeAfter = true;
    this.push(
      buildResponseHead({
        status,
        reason: h.reason,
        headers: h.raw ?? h.headers,
        connectionTokens: h.connectionTokens,
        framing,
        connection: close ? 'close' : head.version === '1.0' ? 'keep-alive' : undefined,
        upgrade: false,
        ops,
      }),
    );
    this.responseStarted = true;
  }

  /** `fields`: where the headers are (read only when some filter runs: a parsed head makes them then). */
  private runResponseHeaders(status: number, fields: { readonly headers: readonly string[] }, local: boolean): void {
    const list = this.plan?.responseHeaders;
    if (list === undefined || list.length === 0) return;
    const rh = new ResponseHeadersView(status, fields, local);
    for (let i = 0; i < list.length; i++) list[i]!.filter.onResponseHeaders!(this, rh, list[i]!.route);
  }

  private responseOpsWithExtras(): CompiledHeaderOps | null {
    const extra = this.extraHeaders;
    if (extra === null) return this.responseOps;
    let text = '';
    for (let i = 0; i + 1 < extra.length; i += 2) text += `${extra[i]!}: ${extra[i + 1]!}\r\n`;
    const ops = this.responseOps;
    return { remove: ops?.remove ?? new Set(), append: (ops?.append ?? '') + text };
  }

  onResponseBody(b: Buffer): void {
    if (this.finished) return;
    this.info.bytesSent += b.length;
    const list = this.plan!.responseBody;
    for (let i = 0; i < list.length; i++) list[i]!.filter.onResponseBody!(this, b, list[i]!.route);
    if (this.downChunked) {
      this.push(chunkHeader(b.length));
      this.push(b);
      this.push(CHUNK_END);
    } else {
      this.push(b);
    }
  }

  onResponseChunked(bytes: Buffer, dataBytes: number): void {
    if (this.finished) return;
    this.info.bytesSent += dataBytes;
    this.push(bytes);
  }

  onResponseTrailers(t: string[]): void {
    this.responseTrailers = t;
    if (this.info.grpc) this.info.grpcFrom(t);
  }

  onResponseReadDone(): boolean {
    return this.out.length === 0 || this.flush();
  }

  onResponseComplete(): void {
    if (this.downChunked && !this.chunksAsReceived) this.push(this.responseTrailers !== null ? lastChunk(this.responseTrailers) : LAST_CHUNK);
    this.finish();
  }

  onUpgrade(up: Socket, rest: Buffer): void {
    this.flush();
    this.downstream.startTunnel(up, rest, this);
  }

  /** Tunnel (after 101) ended: one access-log line for the whole upgraded connection. */
  onTunnelEnd(r: PipeResult): void {
    const info = this.info;
    info.bytesReceived = r.bytesFromDownstream;
    info.bytesSent = r.bytesFromUpstream;
    if (r.outcome === 'upstream_reset') {
      info.flags = 'UC';
      info.reason = 'upstream_reset';
    } else if (r.outcome === 'downstream_reset') {
      info.flags = 'DC';
      info.reason = 'downstream_reset';
    } else if (r.outcome === 'idle_timeout') {
      info.reason = 'idle_timeout';
    }
    if (r.detail !== undefined) info.detail = r.detail;
    this.finished = true;
    this.log();
  }

  // ================================================================ timeouts (connection sweep)

  checkTimeouts(now: number): void {
    if (this.finished || this.tunnel) return;
    if (this.upstream !== null && this.upstream.checkTimeouts(now)) return;
    const idle = this.downstream.engine.opts.streamIdleTimeoutMs;
    if (now - this.lastActivity >= idle && now - this.downstream.lastActivity >= idle) {
      this.timeout('SI', 'stream_idle_timeout', `no bytes in either direction for ${idle} ms`);
    }
  }

  timeout(flag: string, reason: string, detail: string): void {
    this.dropUpstream();
    if (this.responseStarted) {
      this.abortResponse(flag, reason, detail);
      return;
    }
    if (!this.requestComplete) this.closeAfter = true;
    this.reply(flag === 'SI' && !this.requestComplete ? 408 : 504, flag, reason, detail);
  }

  // ================================================================ endings

  private dropUpstream(): void {
    this.upstream?.cancel();
  }

  /** A response generated by the proxy, now. */
  reply(status: number, flags: string, reason: string | undefined, detail: string | undefined, body?: string, headers?: string[]): void {
    if (this.finished) return;
    this.dropUpstream();
    const info = this.info;
    info.responseCode = status;
    info.fail(flags, reason, detail);
    const conn = this.downstream;
    const head = this.head;
    // Not complete: the body cannot be resynchronised. CONNECT: every answer here refuses the
    // tunnel, and the client may already be sending tunnel bytes, never to be read as a request.
    if (!this.requestComplete || head.method === 'CONNECT') this.closeAfter = true;
    const close = this.closeAfter || !head.keepAlive || conn.engine.draining || conn.clientEnded;
    if (close) this.closeAfter = true;
    this.runResponseHeaders(status, { headers: headers ?? [] }, true);
    let fields = headers;
    if (this.extraHeaders !== null) fields = fields === undefined ? this.extraHeaders : [...fields, ...this.extraHeaders];
    let text = body ?? defaultBody(status, reason);
    let buf: Buffer;
    if (info.grpc) {
      // A gRPC client reads the outcome from grpc-status: HTTP 200, trailers-only (grpc.ts).
      const code = this.decision.grpcStatus ?? (flags === 'UT' ? GRPC_STATUS_CODES.DEADLINE_EXCEEDED : grpcStatusOfHttp(status));
      const grpcFields = grpcReplyFields(code, text.trimEnd());
      buf = localReplyBytes({ status: 200, body: '', reason, headers: fields === undefined ? grpcFields : [...fields, ...grpcFields], bare: true }, close, false, head.version === '1.0' && !close);
      info.responseCode = 200;
      info.grpcStatus = String(code);
      info.grpcMessage = text.trimEnd();
      text = '';
    } else {
      buf = localReplyBytes({ status, body: text, reason, headers: fields }, close, head.method === 'HEAD', head.version === '1.0' && !close);
    }
    info.bytesSent = head.method === 'HEAD' ? 0 : Buffer.byteLength(text);
    this.responseStarted = true;
    this.out.length = 0;
    this.outBytes = 0;
    conn.write(buf);
    this.finish();
  }

  /** Fails after the response head went out: reset the downstream (never a clean short body). */
  abortResponse(flags: string, reason: string, detail: string): void {
    if (this.finished) return;
    this.dropUpstream();
    const info = this.info;
    info.flags = flags;
    info.reason = reason;
    info.detail = detail;
    this.out.length = 0;
    this.outBytes = 0;
    this.closeAfter = true;
    this.finished = true;
    this.log();
    this.downstream.abort();
  }

  private finish(): void {
    if (this.finished) return;
    this.finished = true;
    if (this.out.length > 0) this.flush();
    this.log();
    this.downstream.streamDone(this);
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
    const conn = this.downstream;
    if (n === 1) {
      ok = conn.write(out[0]!);
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
      ok = conn.write(buf);
    } else {
      ok = conn.writev(out);
    }
    out.length = 0;
    this.outBytes = 0;
    return ok;
  }

  // ================================================================ observability

  private log(): void {
    const conn = this.downstream;
    const engine = conn.engine;
    const d = this.decision;
    const info = this.info;
    info.routeName = d.routeName;
    this.upstream?.onStreamEnd();
    const list = this.plan?.log;
    if (list !== undefined) for (let i = 0; i < list.length; i++) list[i]!.filter.onLog!(this, list[i]!.route);
    const durationMs = performance.now() - info.startPerf;
    const al = engine.services.accessLog;
    if (conn.accessLog && al.wanted) {
      if (al.needsRecords) al.log(info.record(conn, durationMs));
      else al.logJsonLine(info.jsonLine(conn, durationMs));
    }
    if (info.reason === WOULD_DENY_REASON) engine.services.metrics.wouldDenyPassed(d.host, d.requestedPort, 'HTTP', conn.sourceNamespace);
    else if (info.reason !== undefined && info.reason !== RBAC_DRY_RUN_REASON) engine.services.metrics.denied(info.reason);
    const cluster = d.cluster ?? routeCluster(d, conn.snapshot);
    engine.metrics.record(destinationServiceLabel(cluster, d.host !== ''), cluster?.origin?.namespace, conn.sourceNamespace, info.responseCode, info.flags, durationMs, info.bytesReceived, info.bytesSent, conn.inboundCapture, conn.mtlsLabels ?? info.upstreamMtls, info.grpc ? (info.grpcStatus ?? '') : undefined);
  }
}

/**
 * The cluster a request counts under when the router never picked one: a route that forwards but
 * answered first (fault abort) counts under its first destination, as Envoy's stats do (the
 * route's cluster is known before the filters run).
 */
function routeCluster(d: Decision, snap: CompiledSnapshot): Cluster | undefined {
  const a = d.route?.action;
  if (a === undefined || a.type !== 'forward') return undefined;
  const first = a.clusters.find((c) => c.weight > 0) ?? a.clusters[0];
  return first === undefined ? undefined : snap.clusters.get(first.name);
}

/** ResponseHeaders for the filters: the fields are read from the head only if a filter asks. */
class ResponseHeadersView implements ResponseHeaders {
  constructor(
    readonly status: number,
    private readonly fields: { readonly headers: readonly string[] },
    readonly local: boolean,
  ) {}

  get headers(): readonly string[] {
    return this.fields.headers;
  }
}
