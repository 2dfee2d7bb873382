/**
 * Per-request Istio metrics for the HTTP engine, with the label children resolved once per label
 * combination (DataPlaneMetrics.recordRequest builds 13 label values and 4 map keys per call; at
 * tens of thousands of requests per second that shows in a profile). The common case — the same
 * destination, code and flags as the previous request — is four field increments.
 * Also the tollgate_http_* families for the upstream pool.
 */
import type { DataPlaneMetrics, MtlsLabels } from '../observe/istio-metrics.js';
import type { Counter, CounterChild, HistogramChild } from '../observe/metrics.js';
import type { PoolMetrics } from './upstream-pool.js';

interface Children {
  readonly total: CounterChild;
  readonly duration: HistogramChild;
  readonly requestBytes: HistogramChild;
  readonly responseBytes: HistogramChild;
}

export class HttpMetrics {
  readonly pool: PoolMetrics;
  /** Mirrored copies (mirror.ts), by mirror cluster and outcome; not in istio_requests_total. */
  readonly mirrorRequests: Counter;
  readonly mirrorSkipped: Counter;
  /** Retries not made because the cluster's connectionPool.http.maxRetries were in flight. */
  readonly retryOverflow: Counter;
  private readonly droppedUnderscore: CounterChild;
  private readonly droppedEnvoy: CounterChild;
  private readonly cache = new Map<string, Children>();
  // one-entry memo
  private lastService = '';
  private lastDestNs: string | undefined = undefined;
  private lastSrcNs: string | undefined = undefined;
  private lastCode = -1;
  private lastFlags = '';
  private lastInbound = false;
  private lastMtls: MtlsLabels | undefined;
  private lastGrpc: string | undefined = undefined;
  private last: Children | undefined = undefined;

  constructor(private readonly dp: DataPlaneMetrics) {
    const r = dp.registry;
    this.pool = {
      created: r.counter('tollgate_http_upstream_connections_created_total', 'Upstream HTTP connections opened by the pool, by cluster.', ['cluster']),
      reused: r.counter('tollgate_http_upstream_connections_reused_total', 'Requests sent on a pooled (kept-alive) upstream connection, by cluster.', ['cluster']),
      idle: r.gauge('tollgate_http_upstream_connections_idle', 'Idle upstream HTTP connections in the pool.', []),
    };
    this.mirrorRequests = r.counter('tollgate_http_mirror_requests_total', 'Mirrored request copies (VirtualService mirror), by mirror cluster, response code and flags.', ['cluster', 'response_code', 'response_flags']);
    this.retryOverflow = r.counter('tollgate_http_retry_overflow_total', 'Retries not attempted because the cluster already had connectionPool.http.maxRetries retries in flight, by cluster.', ['cluster']);
    const dropped = r.counter('tollgate_http_request_headers_dropped_total', 'Client request header fields removed before routing: underscore (a name with "_", --headers-with-underscores drop), x_envoy (x-envoy-* sent to a gateway or router).', ['reason']);
    this.droppedUnderscore = dropped.labels('underscore');
    this.droppedEnvoy = dropped.labels('x_envoy');
    this.mirrorSkipped = r.counter('tollgate_http_mirror_skipped_total', 'Requests chosen for mirroring whose copy was not sent: body_too_large, overflow, abandoned.', ['reason']);
  }

  headersDropped(h: { readonly underscore: number; readonly envoy: number }): void {
    this.droppedUnderscore.value += h.underscore;
    this.droppedEnvoy.value += h.envoy;
  }

  /**
   * `service`: destinationServiceLabel() (never a client-chosen host). `inbound`: a sidecar's
   * inbound request, reported as Istio's reporter="destination". `grpcStatus`: set for gRPC
   * requests (request_protocol="grpc", grpc_response_status).
   */
  record(service: string, destNs: string | undefined, srcNs: string | undefined, code: number, flags: string, durationMs: number, requestBytes: number, responseBytes: number, inbound = false, mtls?: MtlsLabels, grpcStatus?: string): void {
    let c = this.last;
    if (c === undefined || inbound !== this.lastInbound || code !== this.lastCode || service !== this.lastService || flags !== this.lastFlags || srcNs !== this.lastSrcNs || destNs !== this.lastDestNs || mtls !== this.lastMtls || grpcStatus !== this.lastGrpc) {
      c = this.children(service, destNs, srcNs, code, flags, inbound, mtls, grpcStatus);
      this.lastMtls = mtls;
      this.lastGrpc = grpcStatus;
      this.last = c;
      this.lastInbound = inbound;
      this.lastService = service;
      this.lastDestNs = destNs;
      this.lastSrcNs = srcNs;
      this.lastCode = code;
      this.lastFlags = flags;
    }
    c.total.value++;
    c.duration.observe(durationMs);
    c.requestBytes.observe(requestBytes);
    c.responseBytes.observe(responseBytes);
  }

  private children(service: string, destNs: string | undefined, srcNs: string | undefined, code: number, flags: string, inbound: boolean, mtls: MtlsLabels | undefined, grpcStatus: string | undefined): Children {
    const key = `${service}\u0000${destNs ?? ''}\u0000${srcNs ?? ''}\u0000${code}\u0000${flags}\u0000${inbound ? 'd' : 's'}\u0000${mtls === undefined ? '' : `${mtls.sourcePrincipal}\u0000${mtls.destinationPrincipal}\u0000${mtls.connectionSecurityPolicy}`}\u0000${grpcStatus ?? '-'}`;
    let c = this.cache.get(key);
    if (c === undefined) {
      const v = this.dp.labelValues({
        destinationService: service,
        ...(destNs !== undefined ? { destinationNamespace: destNs } : {}),
        ...(srcNs !== undefined ? { sourceNamespace: srcNs } : {}),
        requestProtocol: grpcStatus !== undefined ? 'grpc' : 'http',
        ...(grpcStatus !== undefined ? { grpcResponseStatus: grpcStatus } : {}),
        ...(inbound ? { reporter: 'destination' as const } : {}),
        responseCode: code,
        responseFlags: flags,
        mtls,
      });
      c = {
        total: this.dp.requestsTotal.labels(...v),
        duration: this.dp.requestDuration.labels(...v),
        requestBytes: this.dp.requestBytes.labels(...v),
        responseBytes: this.dp.responseBytes.labels(...v),
      };
      // Past the series limit: not cached, so every such sample is counted as refused and the
      // cache stays as bounded as the registry.
      if (!this.dp.requestsTotal.isDetached(c.total)) this.cache.set(key, c);
    }
    return c;
  }
}
