/**
 * Registry service + port (+ subset, + DestinationRule policy) -> one Cluster and its endpoints.
 * Clusters are requested by name while routes are generated; ClusterSet builds each at most once.
 */
import { parseDurationMs } from '../../config/schema/dsl.js';
import type { ClientTls, TrafficPolicy } from '../../config/types.js';
import type { DestinationRuleModel, Model } from '../../model/build.js';
import type { RegistryPort, RegistryService } from '../../model/registry.js';
import { labelsMatch } from '../../model/selectors.js';
import { usableAddresses, type SourcePool } from '../../model/source-pools.js';
import { clusterName } from '../names.js';
import type { Cluster, Endpoint, EndpointSet, UpstreamTls } from '../types.js';
import { connectionPoolOf, consistentHashOf, outlierDetectionOf, upstreamHttp2 } from './traffic-policy.js';
import { originOf } from './origin.js';
import { effectivePeerAuthn, modeAtPort } from './peer-authn.js';
import { runsSidecar } from '../../model/workloads.js';

const HTTP_PROTOCOLS = new Set(['HTTP', 'HTTP2', 'GRPC']);

export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000; // Istio's default

export class ClusterSet {
  readonly clusters = new Map<string, Cluster>();
  readonly endpoints = new Map<string, EndpointSet>();

  /** Floating addresses the clusters built so far may bind (address -> pool), for snapshot.managedAddresses. */
  readonly floating = new Map<string, SourcePool>();

  constructor(private readonly model: Model, private readonly viewerNs: string, private readonly nodeName?: string) {}

  /**
   * The cluster name for a route destination. The port is the destination's, else the service's
   * only port, else the listener's (Istio's rule). The cluster is created only when the registry
   * declares host:port; otherwise the name is returned anyway so the route points at a missing
   * cluster, which the data plane answers with 503 NC, as Envoy does.
   */
  forDestination(host: string, destPort: number | undefined, subset: string | undefined, listenerPort: number): string {
    const services = this.model.registry.lookup(host, this.viewerNs);
    let port = destPort;
    if (port === undefined) {
      const onlyPorts = services[0]?.ports;
      port = onlyPorts && onlyPorts.length === 1 ? onlyPorts[0]?.number ?? listenerPort : listenerPort;
    }
    const name = clusterName(port, subset, host);
    if (this.clusters.has(name)) return name;
    const found = this.model.registry.lookupPort(host, port, this.viewerNs);
    if (found) this.add(name, host, found.service, found.port, subset);
    return name;
  }

  add(name: string, host: string, service: RegistryService, port: RegistryPort, subset: string | undefined): void {
    const dr = findDestinationRule(this.model, service.host, this.viewerNs);
    const subsetDef = subset ? dr?.spec.subsets?.find((s) => s.name === subset) : undefined;
    if (subset && !subsetDef) return; // unknown subset: no cluster, the route answers 503 NC
    const policy = mergePolicy(dr?.spec.trafficPolicy, subsetDef?.trafficPolicy, port.number);
    const resolution = service.resolution;
    const type = resolution === 'NONE' ? 'ORIGINAL_DST' : resolution === 'DNS' ? 'STRICT_DNS' : resolution === 'DNS_ROUND_ROBIN' ? 'LOGICAL_DNS' : 'STATIC';
    const targetPort = port.targetPort ?? port.number;
    let endpoints: Endpoint[] = service.endpoints.map((e) => ({
      address: e.address,
      port: e.ports[port.name] ?? targetPort,
      weight: e.weight,
      ...(Object.keys(e.labels).length > 0 ? { labels: e.labels } : {}),
    }));
    // DNS services with no endpoints resolve the service host itself.
    if ((type === 'STRICT_DNS' || type === 'LOGICAL_DNS') && endpoints.length === 0 && !host.startsWith('*')) {
      endpoints = [{ address: host, port: targetPort, weight: 1 }];
    }
    if (subsetDef?.labels) endpoints = endpoints.filter((e) => labelsMatch(subsetDef.labels, e.labels ?? {}));
    const tls = upstreamTls(policy.tls, dr) ?? (policy.tls === undefined ? this.autoMtls(service, port) : undefined);
    const connectTimeout = policy.connectionPool?.tcp?.connectTimeout;
    const pool = service.sourceAddress ? undefined : this.model.sourcePools.find((p) => p.resource === service.resource);
    const sourceAddressPool = pool ? usableAddresses(pool, this.nodeName) : undefined;
    if (pool?.mode === 'floating') for (const a of sourceAddressPool ?? []) this.floating.set(a, pool);
    const cluster: Cluster = {
      name,
      type,
      serviceHost: host,
      port: port.number,
      protocol: port.protocol,
      ...(upstreamHttp2(port.protocol, policy.connectionPool) ? { http2: true as const } : {}),
      connectTimeoutMs: (connectTimeout ? parseDurationMs(connectTimeout) : undefined) ?? DEFAULT_CONNECT_TIMEOUT_MS,
      lbPolicy: lbPolicyOf(policy.loadBalancer?.simple),
      ...optional('consistentHash', consistentHashOf(policy.loadBalancer?.consistentHash)),
      ...optional('connectionPool', connectionPoolOf(policy.connectionPool)),
      ...optional('outlierDetection', outlierDetectionOf(policy.outlierDetection)),
      ...(tls ? { tls } : {}),
      ...(service.sourceAddress ? { sourceAddress: service.sourceAddress } : {}),
      ...(sourceAddressPool ? { sourceAddressPool } : {}),
      explicitAddresses: type === 'STATIC',
      ...(service.addresses.length > 0 ? { allowedAddresses: service.addresses } : {}),
      ...(service.allowPrivateAddresses ? { allowPrivateAddresses: service.allowPrivateAddresses } : {}),
      ...(service.location === 'MESH_EXTERNAL' ? { meshExternal: true as const } : {}),
      origin: originOf(service.resource),
      description: `${service.resource.ref.kind} ${service.resource.name}.${service.namespace} host ${service.host} port ${port.number}/${port.protocol}${subset ? ` subset ${subset}` : ''}`,
    };
    this.clusters.set(name, cluster);
    this.endpoints.set(name, { clusterName: name, endpoints });
  }

  /**
   * Istio's auto mTLS, decided per service: mTLS when the service selects workloads in the config,
   * all of them run a sidecar, and the port's effective PeerAuthentication is not DISABLE for any
   * (a caller then sends plaintext, as to nginx:80 under portLevelMtls DISABLE). HTTP ports only: the
   * TCP proxy does not originate TLS.
   */
  private autoMtls(service: RegistryService, port: RegistryPort): UpstreamTls | undefined {
    const selector = service.kubernetes?.selector;
    if (selector === undefined || Object.keys(selector).length === 0 || !HTTP_PROTOCOLS.has(port.protocol)) return undefined;
    const workloads = this.model.workloads.filter((w) => w.namespace === service.namespace && labelsMatch(selector, w.labels));
    if (workloads.length === 0) return undefined;
    const nsLabels = (ns: string) => this.model.resources.find((r) => r.kind === 'Namespace' && r.name === ns)?.labels;
    const target = typeof port.targetPort === 'number' ? port.targetPort : port.number;
    const mesh = workloads.every((w) => runsSidecar(w, nsLabels(w.namespace)) && modeAtPort(effectivePeerAuthn(this.model, w.namespace, w.labels), target) !== 'DISABLE');
    return mesh ? { mode: 'ISTIO_MUTUAL', auto: true } : undefined;
  }

  addRaw(cluster: Cluster, endpoints: readonly Endpoint[]): void {
    this.clusters.set(cluster.name, cluster);
    this.endpoints.set(cluster.name, { clusterName: cluster.name, endpoints });
  }
}

/** Istio picks the DestinationRule in the caller's namespace, then the service's namespace, then the root namespace. */
export function findDestinationRule(model: Model, host: string, viewerNs: string): DestinationRuleModel | undefined {
  const candidates = model.destinationRules.filter((d) => d.host === host);
  return candidates.find((d) => d.resource.namespace === viewerNs) ?? candidates.find((d) => d.host.includes(`.${d.resource.namespace}.`)) ?? candidates[0];
}

function mergePolicy(base: TrafficPolicy | undefined, subset: TrafficPolicy | undefined, port: number): TrafficPolicy {
  const portLevel = (p: TrafficPolicy | undefined) => p?.portLevelSettings?.find((s) => s.port?.number === port);
  return { ...base, ...portLevel(base), ...subset, ...portLevel(subset) };
}

function optional<K extends string, V>(k: K, v: V | undefined): { [P in K]?: V } {
  return (v === undefined ? {} : { [k]: v }) as { [P in K]?: V };
}

function lbPolicyOf(simple: string | undefined): Cluster['lbPolicy'] {
  switch (simple) {
    case 'LEAST_REQUEST':
    case 'LEAST_CONN':
      return 'LEAST_REQUEST';
    case 'RANDOM':
      return 'RANDOM';
    case 'PASSTHROUGH':
      return 'PASSTHROUGH';
    default:
      return 'ROUND_ROBIN';
  }
}

function upstreamTls(tls: ClientTls | undefined, dr: DestinationRuleModel | undefined): UpstreamTls | undefined {
  if (!tls || tls.mode === undefined || tls.mode === 'DISABLE') return undefined;
  const mode = tls.mode === 'SIMPLE' || tls.mode === 'ISTIO_MUTUAL' ? tls.mode : 'MUTUAL';
  // ISTIO_MUTUAL: the proxy's workload certificate; certificate fields of the rule do not apply (as in Istio).
  if (mode === 'ISTIO_MUTUAL') return { mode, ...(tls.sni ? { sni: tls.sni } : {}), ...(tls.subjectAltNames ? { subjectAltNames: tls.subjectAltNames } : {}) };
  const credentialName = tls.credentialName && dr ? (tls.credentialName.includes('/') ? tls.credentialName : `${dr.resource.namespace}/${tls.credentialName}`) : undefined;
  return {
    mode,
    ...(tls.sni ? { sni: tls.sni } : {}),
    ...(tls.caCertificates ? { caCertificates: tls.caCertificates } : {}),
    ...(tls.clientCertificate ? { clientCertificate: tls.clientCertificate } : {}),
    ...(tls.privateKey ? { privateKey: tls.privateKey } : {}),
    ...(credentialName ? { credentialName } : {}),
    ...(tls.subjectAltNames ? { subjectAltNames: tls.subjectAltNames } : {}),
    ...(tls.insecureSkipVerify ? { insecureSkipVerify: true } : {}),
  };
}

export { originOf };
