/**
 * The `tcp` network filter: TCP forwarding and TLS passthrough (the ClientHello bytes read by the
 * inspector come as conn.initialBytes and go upstream first). One access-log line and the
 * istio_tcp_* metrics per connection.
 *
 * Per connection this is on the new-connections/s path, so it does only what a tunnel needs: the
 * upstream is opened without a promise (ClusterManager.connectThen), and the access-log record,
 * with the upstream's local address (a getsockname system call), is built only when something
 * receives access-log lines.
 */
import type { Socket } from 'node:net';
import type { Cluster, TcpProxy } from '../../snapshot/types.js';
import type { CompiledListener } from '../route/compile.js';
import { addrPort, elapsedMs, plainIp, type DownstreamConnection } from '../context.js';
import { emptyRecord, hostPort, setPeerFields, type AccessLogRecord } from '../observe/access-log.js';
import { destinationServiceLabel, type IstioLabels } from '../observe/istio-metrics.js';
import { mtlsLabelsOf, upstreamMtlsLabelsOf } from '../mesh/peer-identity.js';
import type { MtlsLabels } from '../observe/istio-metrics.js';
import { originatesTls, originateTls, sniFor } from '../http/upstream-tls.js';
import { pickWeighted } from '../route/select.js';
import type { UpstreamFailure } from '../upstream/failure.js';
import type { DialResult } from '../upstream/cluster-manager.js';
import { resetSocket, Tunnel, upstreamReader, type PipeResult } from './pipe.js';
import { authzConnectionOf, connectionRequest, verdictLog } from '../authz/apply.js';
import { evaluateAuthz, RBAC_DENIED_REASON } from '../authz/evaluate.js';

/** Called once per connection; never throws. */
export function handleTcpProxy(conn: DownstreamConnection, filter: TcpProxy, onTunnel?: (t: Tunnel) => void): void {
  const picked = pickWeighted(filter.clusters, Math.random());
  const services = conn.services;
  // Nothing receives access-log lines (--no-access-log, no subscriber): no record is built.
  const record = services.accessLog.wanted ? baseRecord(conn, filter) : undefined;
  const clusterName = picked?.name;
  if (record !== undefined) record.upstream_cluster = clusterName ?? null;
  const cluster = clusterName !== undefined ? conn.snapshot.clusters.get(clusterName) : undefined;
  // The client's address (a getpeername system call) only when EgressIP rules select callers by it.
  const byAddress = services.clusters.callersByAddress;
  const sourceNamespace = conn.peer?.namespace ?? (byAddress ? services.clusters.callerNamespace(conn.remoteAddress) : undefined);
  const mtls = mtlsLabelsOf(conn);
  let labels = sourceNamespace === undefined && mtls === undefined ? plainLabels(conn, clusterName, cluster) : labelsOf(conn, clusterName, cluster, sourceNamespace, mtls);
  const policies = conn.snapshot.snapshot.policy.authorization;
  if (policies !== undefined) {
    const verdict = evaluateAuthz(policies, connectionRequest(authzConnectionOf(conn)));
    services.metrics.authorized(verdict);
    const log = verdictLog(verdict);
    if (log !== undefined && record !== undefined) {
      record.tollgate_reason = log.reason;
      record.response_code_details = log.detail;
    }
    if (!verdict.allowed) {
      // Envoy's network RBAC filter: the connection is closed before anything is dialed.
      if (record !== undefined) {
        record.duration = elapsedMs(conn.startHr);
        services.accessLog.log(record);
      }
      services.metrics.denied(RBAC_DENIED_REASON);
      services.metrics.tcpClosed(labels, 0, 0);
      conn.socket.destroy();
      return;
    }
  }
  if (clusterName === undefined) {
    finishFailure(conn, record, labels, { flag: 'NC', reason: 'cluster_not_found', detail: 'tcp filter has no cluster', retryable: false });
    return;
  }
  const down = conn.socket;
  // If the client goes away while we connect, note it; the tunnel will find the socket destroyed.
  down.on('error', noop);
  // Start reading the client while the upstream connects, as a plain relay does: its first bytes
  // (usually there with the accept) are then in hand when the connect completes, instead of
  // being asked for in another event-loop turn. Not flowing: the bytes wait in the socket's
  // buffer (at most its high-water mark) for the tunnel.
  down.read(0);
  // The upstream reads into the tunnel's buffers from its first byte (pipe.ts), unless the
  // cluster may originate TLS (mesh mTLS wraps the socket, and TLS reads on 'data').
  const reader = cluster?.tls === undefined ? upstreamReader() : undefined;
  services.clusters.connectThen(
    { cluster: clusterName, snapshot: conn.snapshot, requestedHost: conn.sni, requestedPort: conn.listenerPort, originalDestination: conn.originalDestination, downstreamIp: byAddress ? conn.remoteAddress : undefined, peerNamespace: conn.peer?.namespace },
    (dialed: DialResult) => withMeshTls(dialed, services, (r: Dialed) => {
      down.removeListener('error', noop);
      if (!r.ok) {
        finishFailure(conn, record, labels, r.failure);
        return;
      }
      const up = r.socket;
      if (r.upstreamMtls !== undefined && labels.mtls === undefined) labels = { ...labels, mtls: r.upstreamMtls };
      if (record !== undefined) {
        record.upstream_host = addrPort(r.target.ip, r.target.port);
        record.upstream_local_address = hostPort(plainIp(up.localAddress), up.localPort);
        if (r.upstreamMtls !== undefined) record.upstream_peer_uri_san = r.upstreamMtls.destinationPrincipal;
      }
      if (down.destroyed) {
        up.destroy();
        if (record !== undefined) {
          record.response_flags = 'DC';
          record.tollgate_reason = 'downstream_closed_before_upstream_connected';
          record.duration = elapsedMs(conn.startHr);
          services.accessLog.log(record);
        }
        return;
      }
      services.metrics.tcpOpened(labels);
      const t = new Tunnel(down, up, {
        idleTimeoutMs: services.limits.tcpIdleTimeoutMs ?? filter.idleTimeoutMs,
        onEnd: (res) => finishTunnel(conn, record, labels, res),
        ...(reader !== undefined ? { upstreamReader: reader } : {}),
        initial: conn.initialBytes,
      });
      onTunnel?.(t);
    }),
    reader?.onread,
  );
}

function noop(): void {}

function labelsOf(conn: DownstreamConnection, clusterName: string | undefined, cluster: Cluster | undefined, sourceNamespace: string | undefined, mtls: MtlsLabels | undefined): IstioLabels {
  return {
    destinationService: cluster !== undefined ? destinationServiceLabel(cluster, true) : (clusterName ?? 'unknown'),
    ...(cluster?.origin?.namespace ? { destinationNamespace: cluster.origin.namespace } : {}),
    ...(sourceNamespace !== undefined ? { sourceNamespace } : {}),
    mtls,
    requestProtocol: 'tcp',
    responseFlags: '-',
    ...(conn.listener.listener.inboundCapture ? { reporter: 'destination' as const } : {}),
  };
}

/**
 * A connection without a caller namespace or mTLS peer: its labels depend only on the listener and
 * the cluster, so one object per pair serves every such connection (and the metrics find its
 * series without building a key). Kept per compiled listener: a new snapshot starts afresh.
 */
const PLAIN_LABELS = new WeakMap<CompiledListener, Map<string | undefined, IstioLabels>>();

function plainLabels(conn: DownstreamConnection, clusterName: string | undefined, cluster: Cluster | undefined): IstioLabels {
  let byCluster = PLAIN_LABELS.get(conn.listener);
  if (byCluster === undefined) PLAIN_LABELS.set(conn.listener, (byCluster = new Map()));
  let l = byCluster.get(clusterName);
  if (l === undefined) byCluster.set(clusterName, (l = labelsOf(conn, clusterName, cluster, undefined, undefined)));
  return l;
}

type Dialed = (DialResult & { readonly ok: true; readonly upstreamMtls?: MtlsLabels | undefined }) | { readonly ok: false; readonly failure: UpstreamFailure };

/**
 * ISTIO_MUTUAL on a tcp/tls route (a sidecar sending TLS-passthrough traffic to the egress gateway
 * over mTLS, Istio's "egress gateway for HTTPS traffic"): the connected socket is wrapped in mesh
 * mTLS — the workload certificate, Istio's ALPN, the DestinationRule's sni, the server's SPIFFE ID
 * checked — and the client's bytes (its own ClientHello included) travel inside it. Any other
 * connection goes on at once, without a promise.
 */
function withMeshTls(r: DialResult, services: DownstreamConnection['services'], done: (r: Dialed) => void): void {
  const cluster = r.ok ? r.target.cluster : undefined;
  if (!r.ok || cluster === undefined || cluster.tls?.mode !== 'ISTIO_MUTUAL' || !originatesTls(cluster, services.clusters.tls)) {
    done(r);
    return;
  }
  const up = r.socket;
  originateTls(up, cluster, r.target, sniFor(cluster, r.target), cluster.connectTimeoutMs, addrPort(r.target.ip, r.target.port), hostPort(plainIp(up.localAddress), up.localPort) ?? undefined, services.clusters.tls, 'none').then(
    (t) => done(t.ok ? { ...r, socket: t.socket, upstreamMtls: upstreamMtlsLabelsOf(t.socket) } : t),
    (err: unknown) => done({ ok: false, failure: { flag: 'UF', reason: 'internal_error', detail: String(err), retryable: false } }),
  );
}

export function baseRecord(conn: DownstreamConnection, filter: { routeName?: string; statPrefix: string }): AccessLogRecord {
  const r = emptyRecord(conn.startTime, addrPort(conn.remoteAddress, conn.remotePort), addrPort(conn.localAddress, conn.localPort));
  r.requested_server_name = conn.sni ?? null;
  r.route_name = filter.routeName ?? filter.statPrefix ?? null;
  if (conn.peerCertificate !== undefined) setPeerFields(r, conn.peerCertificate);
  return r;
}

function finishFailure(conn: DownstreamConnection, record: AccessLogRecord | undefined, labels: IstioLabels, f: UpstreamFailure): void {
  const s = conn.services;
  if (record !== undefined) {
    record.response_flags = f.flag;
    record.tollgate_reason = f.reason;
    record.connection_termination_details = f.detail;
    if (f.upstreamHost !== undefined) record.upstream_host = f.upstreamHost;
    if (f.upstreamLocalAddress !== undefined) record.upstream_local_address = f.upstreamLocalAddress;
    record.duration = elapsedMs(conn.startHr);
    s.accessLog.log(record);
  }
  s.metrics.denied(f.reason);
  s.metrics.tcpClosed({ ...labels, responseFlags: f.flag }, 0, 0);
  s.logger.debug('tcp upstream failure', { reason: f.reason, detail: f.detail });
  // Reset, not FIN: the client must not mistake a refused upstream for an empty response.
  resetSocket(conn.socket as Socket);
}

/** Envoy's response flags for how a tunnel ended ('-' for a clean close, an idle timeout or a drain). */
function tunnelFlags(outcome: PipeResult['outcome']): string {
  return outcome === 'upstream_reset' ? 'UC' : outcome === 'downstream_reset' ? 'DC' : '-';
}

function tunnelReason(outcome: PipeResult['outcome']): string | undefined {
  switch (outcome) {
    case 'upstream_reset':
    case 'downstream_reset':
    case 'idle_timeout':
      return outcome;
    case 'aborted':
      return 'drained';
    default:
      return undefined;
  }
}

function finishTunnel(conn: DownstreamConnection, record: AccessLogRecord | undefined, labels: IstioLabels, res: PipeResult): void {
  const s = conn.services;
  const flags = tunnelFlags(res.outcome);
  if (record !== undefined) {
    record.bytes_received = res.bytesFromDownstream;
    record.bytes_sent = res.bytesFromUpstream;
    record.duration = elapsedMs(conn.startHr);
    if (flags !== '-') record.response_flags = flags;
    const reason = tunnelReason(res.outcome);
    if (reason !== undefined) record.tollgate_reason = reason;
    if (res.detail !== undefined) record.connection_termination_details = res.detail;
    s.accessLog.log(record);
  }
  s.metrics.tcpClosed(flags === labels.responseFlags ? labels : { ...labels, responseFlags: flags }, res.bytesFromUpstream, res.bytesFromDownstream);
}
