/**
 * The narrow interfaces between the parts of one HTTP request — types only, no runtime code — so
 * each part depends on these and not on another part's class (no import cycle, and a filter sees
 * only what a filter may use). Envoy's StreamDecoderFilterCallbacks / router interfaces play the
 * same role.
 *
 *   HttpEngine      (engine.ts)                   implements EngineContext     what outlives a connection
 *   HttpSession     (connection-manager.ts)       implements DownstreamConn    the client connection
 *   ActiveStream    (active-stream.ts)            implements StreamCallbacks   one request, as filters see it
 *                                                            RouterStream      ... as the router's upstream request sees it
 *                                                            DownstreamStream  ... as the connection sees it
 *   UpstreamRequest (router/upstream-request.ts)  implements UpstreamHandle    the router's side of one request
 */
import type { AuthzConnection } from '../authz/apply.js';
import type { XfccPolicy } from './xfcc.js';
import type { MtlsLabels } from '../observe/istio-metrics.js';
import type { Socket } from 'node:net';
import type { DataPlaneServices, PeerCertificateFacts } from '../context.js';
import type { CompiledSnapshot } from '../route/compile.js';
import type { PipeResult } from '../tcp/pipe.js';
import type { HttpParseError } from './errors.js';
import type { RequestHead, ResponseHead } from './head.js';
import type { CompiledHeaderOps } from './headers.js';
import type { HttpMetrics } from './http-metrics.js';
import type { ResolvedHttpOptions } from './options.js';
import type { Decision } from '../route/http-route.js';
import type { StreamInfo } from './stream-info.js';
import type { Sweepable, Sweeper } from '../sweeper.js';
import type { UpstreamAffinity, UpstreamPool } from './upstream-pool.js';

/** A session as the engine tracks it (sweeps, drain). */
export interface EngineSession extends Sweepable {
  drain(): void;
}

/** What outlives a connection: options, the one timer, the upstream pool, metrics, services. */
export interface EngineContext {
  readonly opts: ResolvedHttpOptions;
  readonly sweeper: Sweeper;
  readonly pool: UpstreamPool;
  readonly metrics: HttpMetrics;
  readonly services: DataPlaneServices;
  readonly draining: boolean;
  register(s: EngineSession): void;
  unregister(s: EngineSession): void;
}

/** The client connection, as a request on it sees it. */
export interface DownstreamConn {
  readonly engine: EngineContext;
  /** The snapshot the current request was routed on (its clusters and endpoints). */
  readonly snapshot: CompiledSnapshot;
  readonly remoteAddress: string;
  readonly remoteText: string;
  readonly localText: string;
  readonly sni: string | null;
  readonly tls: boolean;
  /** The client certificate a terminating Gateway server verified (MUTUAL/OPTIONAL_MUTUAL). */
  readonly peerCertificate: PeerCertificateFacts | undefined;
  readonly sourceNamespace: string | undefined;
  /** What AuthorizationPolicy sees of the connection (addresses, port, SNI, mTLS peer). */
  readonly authz: AuthzConnection;
  /** What requests of this connection do with x-forwarded-client-cert (xfcc.ts). */
  readonly xfcc: XfccPolicy;
  /** The namespace a mesh mTLS caller's certificate proved (selects its EgressIP); undefined otherwise. */
  readonly peerNamespace: string | undefined;
  /** The address the client dialed before redirection (sidecar capture), when known. */
  readonly originalDestination: { readonly ip: string; readonly port: number } | undefined;
  /** The listener captures inbound traffic (metrics are reported as the destination workload). */
  readonly inboundCapture: boolean;
  /** Mesh mTLS facts for Istio's labels (connection_security_policy, principals); undefined on plaintext. */
  readonly mtlsLabels: MtlsLabels | undefined;
  readonly accessLog: boolean;
  /** The client sent FIN: finish the request in flight, then close. */
  readonly clientEnded: boolean;
  readonly lastActivity: number;
  /** The random source of routing decisions (weights, fault and mirror percentages). */
  random(): number;
  /** false: bytes are still queued (not all taken by the kernel): onDownstreamDrain follows. */
  write(data: string | Buffer): boolean;
  writev(parts: readonly (string | Buffer)[]): boolean;
  /** HTTP/1.1: the upstream connection this connection's next request may take again (UpstreamAffinity). */
  readonly upstreamAffinity: UpstreamAffinity | undefined;
  /** Bytes written may still be referenced: queued, not yet taken by the kernel (or by the HTTP/2 session). */
  writeQueued(): boolean;
  /** The upstream is ready for the request body: resume parsing it. */
  resumeRequestBody(): void;
  pauseReads(): void;
  resumeReads(): void;
  /** The response was written completely (keep-alive or close). */
  streamDone(s: DownstreamStream): void;
  /** A failure after the response head went out: reset the connection. */
  abort(): void;
  /** After a 101: the connection becomes a raw tunnel to `up`. */
  startTunnel(up: Socket, rest: Buffer, s: DownstreamStream): void;
}

/** A request, as its connection drives it (parser events, socket events, sweeps). */
export interface DownstreamStream {
  readonly requestComplete: boolean;
  readonly finished: boolean;
  readonly closeAfter: boolean;
  onRequestBody(chunk: Buffer): void;
  onRequestTrailers(t: string[]): void;
  onRequestComplete(): void;
  onDownstreamProtocolError(err: HttpParseError): void;
  onDownstreamClosed(detail: string): void;
  onDownstreamDrain(): void;
  onTunnelEnd(r: PipeResult): void;
  checkTimeouts(now: number): void;
}

/** One request, as an HTTP filter sees it (dataplane/http/filter.ts). */
export interface StreamCallbacks {
  readonly head: RequestHead;
  /** What routing decided (route, cluster, upstream Host); filters may read it, the router acts on it. */
  readonly decision: Decision;
  readonly info: StreamInfo;
  readonly downstream: DownstreamConn;
  readonly requestComplete: boolean;
  /** Header mutations the router applies to the upstream request / the downstream response head. */
  requestOps: CompiledHeaderOps | null;
  responseOps: CompiledHeaderOps | null;
  /**
   * Answers the request from the proxy (the filter then returns STOP). A bodyless request is
   * answered once it is complete (keep-alive); one whose body would follow is answered at once and
   * the connection closed.
   */
  sendLocalReply(status: number, flags: string, reason: string | undefined, detail: string | undefined, headers?: string[], body?: string): void;
  /** Resumes the request-headers phase after the filter that returned STOP (e.g. after a delay). */
  continueDecoding(): void;
  /** Adds a field to the response sent downstream (upstream response or local reply). */
  addResponseHeader(name: string, value: string): void;
  /** Per-request state of the filter at `slot` (its position in the chain). */
  getState(slot: number): unknown;
  setState(slot: number, value: unknown): void;
  /** Router filter only: the stream as its upstream request drives it, and where that request is handed back. */
  routerView(): RouterStream;
  setUpstream(u: UpstreamHandle): void;
}

/** The router's side of one request, as the stream drives it. */
export interface UpstreamHandle {
  onRequestBody(chunk: Buffer): void;
  onRequestEnd(): void;
  onDownstreamDrain(): void;
  /** Checks the route and per-try deadlines; true when one fired (the stream then skips its own). */
  checkTimeouts(now: number): boolean;
  /** Drops the upstream connection in use (the request ended or failed). */
  cancel(): void;
  /**
   * From onResponseHead: the response's chunked body may be forwarded as received
   * (onResponseChunked) instead of decoded and chunked again. False when it cannot.
   */
  passChunkedBody(): boolean;
  /** The stream ended: release what the request holds (circuit-breaker slots). */
  onStreamEnd(): void;
}

/** The upstream request sent by the router, for filters that act on it (mirror). */
export interface UpstreamRequestHead {
  /** The serialized head as written upstream. */
  readonly text: string;
  /** The Host it carries. */
  readonly host: string;
  readonly chunked: boolean;
  /** The route's timeout (0: none). */
  readonly timeoutMs: number;
}

/** One request, as the router's upstream request reports to it. */
export interface RouterStream {
  readonly head: RequestHead;
  readonly decision: Decision;
  readonly info: StreamInfo;
  readonly downstream: DownstreamConn;
  readonly requestComplete: boolean;
  readonly responseStarted: boolean;
  readonly finished: boolean;
  readonly requestOps: CompiledHeaderOps | null;
  readonly requestTrailers: string[] | null;
  lastActivity: number;
  /** Answers from the proxy now (an upstream failure); closes the connection when the request body is not complete. */
  reply(status: number, flags: string, reason: string | undefined, detail: string | undefined): void;
  /** The upstream request head was built (the "upstream selected" phase; see UpstreamRequestHead). */
  onUpstreamRequest(text: string, host: string, chunked: boolean, timeoutMs: number): void;
  /** Sends `100 Continue` once, when the client asked for it. */
  sendContinue(): void;
  onResponseHead(h: ResponseHead): void;
  onResponseBody(b: Buffer): void;
  /** The chunked response body as received, after the stream asked for it (UpstreamHandle.passChunkedBody). */
  onResponseChunked(bytes: Buffer, dataBytes: number): void;
  onResponseTrailers(t: string[]): void;
  /** A read of the response was processed; false when the downstream socket is full (pause upstream). */
  onResponseReadDone(): boolean;
  onResponseComplete(): void;
  onUpgrade(up: Socket, rest: Buffer): void;
  /** A failure after the response head went out: reset the downstream. */
  abortResponse(flags: string, reason: string, detail: string): void;
  /** A deadline fired (route, per-try): 504 before the response, reset after it started. */
  timeout(flags: string, reason: string, detail: string): void;
}
