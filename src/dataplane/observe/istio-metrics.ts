/**
 * The metric families the data plane exports: Istio's standard metrics (same names and label
 * names, so existing dashboards work) and tollgate_* for what Istio has no name for.
 *
 * Label values for one (destination, flags, ...) combination are resolved into children once per
 * connection/request; callers on hot paths should keep the IstioChildren they get from `tcpChildren`.
 */
import { BLACKHOLE_CLUSTER, PASSTHROUGH_CLUSTER } from '../../snapshot/names.js';
import type { Cluster, ProxyIdentity } from '../../snapshot/types.js';
import type { Counter, CounterChild, Gauge, Histogram, MetricsRegistry } from './metrics.js';
import { WouldDenyTable, type ObservedProtocol } from './would-deny.js';
import type { AuthzMatch, AuthzVerdict } from '../authz/evaluate.js';

/** Istio's standard label names (a subset that Tollgate can fill in; the rest stay "unknown"). */
export const ISTIO_LABELS = [
  'reporter',
  'source_workload',
  'source_workload_namespace',
  'source_app',
  'destination_workload',
  'destination_workload_namespace',
  'destination_service',
  'destination_service_name',
  'destination_service_namespace',
  'request_protocol',
  'response_code',
  'response_flags',
  'connection_security_policy',
  'source_principal',
  'destination_principal',
  'grpc_response_status',
] as const;

/** The mTLS facts of a connection, as Istio labels them (`spiffe://...` IDs). One object per connection. */
export interface MtlsLabels {
  readonly sourcePrincipal: string;
  readonly destinationPrincipal: string;
  /**
   * `mutual_tls` where mesh mTLS was terminated (the downstream); `unknown` for a request that only
   * its upstream connection carried over mTLS, as Istio's source reporter cannot know the server's policy.
   */
  readonly connectionSecurityPolicy: 'mutual_tls' | 'unknown';
}

interface TcpSeries {
  readonly opened: CounterChild;
  readonly closed: CounterChild;
  readonly sent: CounterChild;
  readonly received: CounterChild;
}

export interface IstioLabels {
  /** destinationServiceLabel(): a name from config, never one the client chose. */
  readonly destinationService: string;
  /** Namespace of the registry entry (from the cluster's origin), when known. */
  readonly destinationNamespace?: string;
  /** Caller namespace (EgressIP callerNamespaces), when known. */
  readonly sourceNamespace?: string;
  readonly requestProtocol: 'tcp' | 'http' | 'https' | 'grpc';
  /** 'destination' for a sidecar's inbound traffic (Istio's reporter label); 'source' otherwise. */
  readonly reporter?: 'source' | 'destination';
  readonly responseCode?: number;
  readonly responseFlags: string;
  /** Set when the downstream connection is mesh mTLS: connection_security_policy="mutual_tls" and the principals. */
  readonly mtls?: MtlsLabels | undefined;
  /** gRPC requests: the response's grpc-status ('' when none came); empty for everything else. */
  readonly grpcResponseStatus?: string;
}

/**
 * The destination_service label of a request or connection. Only names from config become label
 * values: a host the client chose (Host, SNI, CONNECT target) never does, or 50 random Host
 * headers would make 50 series. As Istio reports them:
 * - a registry cluster: its service host (a ServiceEntry host or pattern, a Service name);
 * - an ad-hoc passthrough to whatever the client named (ALLOW_ANY, report-only, an egress
 *   router's http-proxy ACL): `PassthroughCluster`;
 * - no destination at all (no route, refused before a cluster was chosen): `BlackHoleCluster`,
 *   or `unknown` when the request did not even name a valid host.
 * The access log keeps the real authority of every request; report-only evidence goes to the
 * bounded tollgate_would_deny_total table (would-deny.ts).
 */
export function destinationServiceLabel(cluster: Cluster | undefined, namedHost: boolean): string {
  if (cluster === undefined) return namedHost ? BLACKHOLE_CLUSTER : 'unknown';
  // Ad-hoc clusters to a client-named destination: no config origin, addresses not from config
  // (a sidecar's inbound clusters are ORIGINAL_DST too, but to the pod itself, under the Service name).
  if (cluster.type === 'ORIGINAL_DST' && cluster.origin === undefined && !cluster.explicitAddresses) return PASSTHROUGH_CLUSTER;
  return cluster.serviceHost;
}

const DURATION_BUCKETS = [0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000];
const SIZE_BUCKETS = [1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000, 1000000000];

export class DataPlaneMetrics {
  readonly registry: MetricsRegistry;
  readonly requestsTotal: Counter;
  readonly requestDuration: Histogram;
  readonly requestBytes: Histogram;
  readonly responseBytes: Histogram;
  readonly tcpOpenedTotal: Counter;
  readonly tcpClosedTotal: Counter;
  readonly tcpSentBytes: Counter;
  readonly tcpReceivedBytes: Counter;
  readonly deniedTotal: Counter;
  readonly rbacTotal: Counter;
  readonly dnsQueries: Counter;
  readonly upstreamConnectFailures: Counter;
  readonly activeConnections: Gauge;
  readonly upstreamActive: Gauge;
  readonly snapshotApplied: Counter;
  readonly eventLoopLag: Gauge;
  readonly sourceAddressUnavailable: Gauge;
  /** Report-only mode: what enforcement would have refused (bounded; would-deny.ts). */
  readonly wouldDeny: WouldDenyTable;
  readonly accessLogDropped: Counter;
  readonly dnsStaleAnswers: Counter;
  private readonly workload: string;
  private readonly workloadNs: string;
  private readonly app: string;
  private readonly tcpCache = new Map<string, TcpSeries>();
  private lastTcpLabels: IstioLabels | undefined;
  private lastTcpSeries: TcpSeries | undefined;

  constructor(registry: MetricsRegistry, proxy: ProxyIdentity) {
    this.registry = registry;
    this.workload = proxy.name || proxy.labels['app'] || proxy.labels['istio'] || 'tollgate';
    this.workloadNs = proxy.namespace || 'unknown';
    this.app = proxy.labels['app'] ?? proxy.labels['istio'] ?? 'tollgate';
    const L = ISTIO_LABELS;
    this.requestsTotal = registry.counter('istio_requests_total', 'Requests processed (Istio standard metric).', L);
    this.requestDuration = registry.histogram('istio_request_duration_milliseconds', 'Request duration in milliseconds.', L, DURATION_BUCKETS);
    this.requestBytes = registry.histogram('istio_request_bytes', 'Request body sizes in bytes.', L, SIZE_BUCKETS);
    this.responseBytes = registry.histogram('istio_response_bytes', 'Response body sizes in bytes.', L, SIZE_BUCKETS);
    this.tcpOpenedTotal = registry.counter('istio_tcp_connections_opened_total', 'TCP connections opened.', L);
    this.tcpClosedTotal = registry.counter('istio_tcp_connections_closed_total', 'TCP connections closed.', L);
    this.tcpSentBytes = registry.counter('istio_tcp_sent_bytes_total', 'Bytes sent to the downstream during TCP connections.', L);
    this.tcpReceivedBytes = registry.counter('istio_tcp_received_bytes_total', 'Bytes received from the downstream during TCP connections.', L);
    this.deniedTotal = registry.counter('tollgate_denied_total', 'Connections and requests refused, by stable reason (docs/errors.md).', ['reason']);
    this.rbacTotal = registry.counter('tollgate_rbac_total', 'AuthorizationPolicy outcomes by policy (namespace/name, "none" when no ALLOW policy matched) and result (denied, dry_run_denied, audited).', ['policy', 'result']);
    this.dnsQueries = registry.counter('tollgate_dns_queries_total', 'DNS queries sent (cache misses), by result.', ['result']);
    this.upstreamConnectFailures = registry.counter('tollgate_upstream_connect_failures_total', 'Upstream connection attempts that failed, by cluster and reason.', ['cluster', 'reason']);
    this.activeConnections = registry.gauge('tollgate_downstream_connections_active', 'Open downstream connections per listener.', ['listener']);
    this.upstreamActive = registry.gauge('tollgate_upstream_connections_active', 'Open upstream connections per cluster.', ['cluster']);
    this.snapshotApplied = registry.counter('tollgate_snapshot_applied_total', 'Snapshots applied (result=ok|rejected).', ['result']);
    this.wouldDeny = new WouldDenyTable(registry.counter('tollgate_would_deny_total', 'Report-only mode: requests and connections passed that enforcement would refuse (destination not in the registry).', ['destination_host', 'source_namespace', 'protocol']));
    this.sourceAddressUnavailable = registry.gauge('tollgate_source_address_unavailable', 'Source addresses the applied snapshot may bind that are not assigned on this host (1); connections that need one fail closed.', ['address']);
    this.dnsStaleAnswers = registry.counter('tollgate_dns_stale_answers_total', 'DNS answers served after their TTL because the resolver failed (bounded by --dns-max-stale).', []);
    this.accessLogDropped = registry.counter('tollgate_access_log_dropped_total', 'Access-log lines not written (buffer_full: the sink is slower than the traffic; write_error: e.g. disk full; sink_closed: the reader is gone).', ['reason']);
    this.eventLoopLag = registry.gauge('tollgate_event_loop_lag_milliseconds', 'Event loop delay (p99 over the last interval).', []);
  }

  /** Label values in ISTIO_LABELS order. */
  labelValues(l: IstioLabels): string[] {
    const svc = l.destinationService;
    const dot = svc.indexOf('.');
    return [
      l.reporter ?? 'source',
      this.workload,
      l.sourceNamespace ?? this.workloadNs,
      this.app,
      'unknown',
      l.destinationNamespace ?? 'unknown',
      svc,
      dot > 0 ? svc.slice(0, dot) : svc,
      l.destinationNamespace ?? 'unknown',
      l.requestProtocol,
      l.responseCode !== undefined ? String(l.responseCode) : '0',
      l.responseFlags,
      l.mtls?.connectionSecurityPolicy ?? 'none',
      l.mtls?.sourcePrincipal ?? 'unknown',
      l.mtls?.destinationPrincipal ?? 'unknown',
      l.grpcResponseStatus ?? '',
    ];
  }

  recordRequest(l: IstioLabels, durationMs: number, requestBytes: number, responseBytes: number): void {
    const v = this.labelValues(l);
    this.requestsTotal.labels(...v).inc();
    this.requestDuration.labels(...v).observe(durationMs);
    this.requestBytes.labels(...v).observe(requestBytes);
    this.responseBytes.labels(...v).observe(responseBytes);
  }

  tcpOpened(l: IstioLabels): void {
    this.tcpSeries(l).opened.inc();
  }

  tcpClosed(l: IstioLabels, sentBytes: number, receivedBytes: number): void {
    const c = this.tcpSeries(l);
    c.closed.inc();
    c.sent.inc(sentBytes);
    c.received.inc(receivedBytes);
  }

  /**
   * The four istio_tcp_* children of one label combination, resolved once: labelValues() builds 16
   * values and each family joins them into a map key, per connection opened and again per close.
   */
  private tcpSeries(l: IstioLabels): TcpSeries {
    // A caller that keeps its labels object (the TCP proxy, per listener and cluster) opens and
    // closes many connections with the same one: no key to build then.
    if (l === this.lastTcpLabels) return this.lastTcpSeries!;
    const m = l.mtls;
    const key = `${l.destinationService}\u0000${l.destinationNamespace ?? ''}\u0000${l.sourceNamespace ?? ''}\u0000${l.reporter ?? ''}\u0000${l.requestProtocol}\u0000${l.responseCode ?? ''}\u0000${l.responseFlags}\u0000${m === undefined ? '' : `${m.sourcePrincipal}\u0000${m.destinationPrincipal}`}\u0000${l.grpcResponseStatus ?? ''}`;
    let c = this.tcpCache.get(key);
    if (c === undefined) {
      const v = this.labelValues(l);
      c = { opened: this.tcpOpenedTotal.labels(...v), closed: this.tcpClosedTotal.labels(...v), sent: this.tcpSentBytes.labels(...v), received: this.tcpReceivedBytes.labels(...v) };
      // Past the series limit: not cached, so each sample is still counted as refused and the cache
      // stays as bounded as the registry.
      if (!this.tcpOpenedTotal.isDetached(c.opened) && !this.tcpClosedTotal.isDetached(c.closed)) this.tcpCache.set(key, c);
    }
    if (this.tcpCache.get(key) === c) {
      this.lastTcpLabels = l;
      this.lastTcpSeries = c;
    }
    return c;
  }

  /** A report-only pass: counted and kept as evidence for suggest; `sourceNamespace` defaults to the proxy's. */
  wouldDenyPassed(host: string, port: number, protocol: ObservedProtocol, sourceNamespace: string | undefined): void {
    this.wouldDeny.record(host, port, protocol, sourceNamespace ?? this.workloadNs);
  }

  /** AuthorizationPolicy outcome of one request or connection (policy names come from config, so the series are bounded). */
  authorized(v: AuthzVerdict): void {
    const name = (m: AuthzMatch | undefined): string => (m === undefined ? 'none' : `${m.policy.namespace}/${m.policy.name}`);
    if (!v.allowed) this.rbacTotal.labels(name(v.deniedBy), 'denied').inc();
    if (v.dryRunDenied !== undefined) this.rbacTotal.labels(name(v.dryRunDenied.match), 'dry_run_denied').inc();
    for (const a of v.audited) this.rbacTotal.labels(name(a), 'audited').inc();
  }

  denied(reason: string): void {
    this.deniedTotal.labels(reason).inc();
  }
}
