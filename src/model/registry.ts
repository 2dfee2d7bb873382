/**
 * The service registry: every host a proxy may send to. ServiceEntries contribute one service per
 * host (as istiod does); Kubernetes Services contribute `name.namespace.svc.cluster.local` with
 * endpoints from Endpoints, EndpointSlices, or the Pods in the config that match the selector.
 */
import type { Resource } from '../config/decode.js';
import type { ServiceEntrySpec, ServiceSpec, ServiceSpecPort, StringMap } from '../config/types.js';
import { ALLOW_PRIVATE_ANNOTATION, parseAllowPrivate } from './allow-private.js';
import { HostIndex } from './host-index.js';
import { CLUSTER_DOMAIN, labelsMatch, resolveHost, visibleTo } from './selectors.js';
import type { Workload } from './workloads.js';

export const SOURCE_ADDRESS_ANNOTATION = 'tollgate.io/source-address';

export interface RegistryPort {
  readonly number: number;
  readonly protocol: string; // upper case: HTTP, HTTPS, TLS, TCP, GRPC, HTTP2, MONGO
  readonly name: string;
  readonly targetPort?: number;
}

export interface RegistryEndpoint {
  readonly address: string;
  /** Port name -> endpoint port; missing names use the service port (or its targetPort). */
  readonly ports: Readonly<Record<string, number>>;
  readonly labels: StringMap;
  readonly weight: number;
}

export type Resolution = 'NONE' | 'STATIC' | 'DNS' | 'DNS_ROUND_ROBIN';

export interface RegistryService {
  readonly host: string;
  readonly namespace: string;
  readonly resource: Resource;
  readonly ports: readonly RegistryPort[];
  readonly addresses: readonly string[];
  readonly resolution: Resolution;
  readonly location: 'MESH_EXTERNAL' | 'MESH_INTERNAL';
  readonly endpoints: readonly RegistryEndpoint[];
  readonly exportTo?: readonly string[];
  /** `tollgate.io/source-address` on the ServiceEntry: fixed source IP for this destination. */
  readonly sourceAddress?: string;
  /** `tollgate.io/allow-private-addresses` (valid entries only): private ranges its DNS answers may fall in. */
  readonly allowPrivateAddresses?: readonly string[];
  readonly kubernetes?: {
    readonly type: string;
    readonly selector?: StringMap;
    readonly externalTrafficPolicy?: string;
    /** Workloads (Pods, Deployments) whose labels the selector matches. */
    readonly selectedWorkloads: readonly string[];
    /** Where the endpoints came from: 'Endpoints', 'EndpointSlice', 'Pods' or 'none'. */
    readonly endpointSource: string;
  };
}

export class Registry {
  readonly services: readonly RegistryService[];
  private readonly index: HostIndex<RegistryService>;

  constructor(services: RegistryService[]) {
    this.services = services;
    this.index = new HostIndex();
    for (const s of services) this.index.add(s.host, s);
  }

  /** Services for a concrete host (exact first, then the most specific wildcard), visible from `viewerNs`. */
  lookup(host: string, viewerNs?: string): RegistryService[] {
    const all = this.index.lookupAll(host);
    return viewerNs === undefined ? all : all.filter((s) => visibleTo(s.exportTo, s.namespace, viewerNs));
  }

  /** The service and port for host:port, or undefined when the registry does not declare it. */
  lookupPort(host: string, port: number, viewerNs?: string): { service: RegistryService; port: RegistryPort } | undefined {
    for (const service of this.lookup(host, viewerNs)) {
      const p = service.ports.find((x) => x.number === port);
      if (p) return { service, port: p };
    }
    return undefined;
  }

  /** Services declared under exactly this host string (wildcards compared literally). */
  exact(host: string): RegistryService[] {
    return this.services.filter((s) => s.host === host);
  }
}

export function servicesFromServiceEntry(se: Resource<ServiceEntrySpec>): RegistryService[] {
  const spec = se.spec;
  const resolution = spec.resolution ?? 'NONE';
  const ports: RegistryPort[] = (spec.ports ?? []).map((p) => ({
    number: p.number,
    protocol: (p.protocol || 'TCP').toUpperCase(),
    name: p.name ?? `port-${p.number}`,
    ...(p.targetPort === undefined ? {} : { targetPort: p.targetPort }),
  }));
  const endpoints: RegistryEndpoint[] = (spec.endpoints ?? [])
    .filter((e) => e.address !== undefined)
    .map((e) => ({ address: e.address ?? '', ports: e.ports ?? {}, labels: e.labels ?? {}, weight: e.weight ?? 1 }));
  const sourceAddress = se.annotations[SOURCE_ADDRESS_ANNOTATION];
  const allowPrivate = parseAllowPrivate(se.annotations[ALLOW_PRIVATE_ANNOTATION]).cidrs;
  return spec.hosts.map((h) => ({
    host: resolveHost(h, se.namespace),
    namespace: se.namespace,
    resource: se,
    ports,
    addresses: spec.addresses ?? [],
    resolution,
    location: spec.location ?? 'MESH_EXTERNAL',
    endpoints,
    ...(spec.exportTo ? { exportTo: spec.exportTo } : {}),
    ...(sourceAddress ? { sourceAddress } : {}),
    ...(allowPrivate.length > 0 ? { allowPrivateAddresses: allowPrivate } : {}),
  }));
}

interface EndpointsLike {
  readonly addresses: readonly { readonly ip: string; readonly labels: StringMap }[];
  readonly ports: Readonly<Record<string, number>>;
}

export function servicesFromKubernetes(
  svc: Resource<ServiceSpec>,
  endpointsByService: ReadonlyMap<string, { source: string; sets: EndpointsLike[] }>,
  workloads: readonly Workload[],
): RegistryService {
  const spec = svc.spec;
  const ports: RegistryPort[] = (spec.ports ?? []).map((p) => ({
    number: p.port,
    protocol: protocolOfServicePort(p),
    name: p.name ?? `port-${p.port}`,
    ...(typeof p.targetPort === 'number' ? { targetPort: p.targetPort } : {}),
  }));
  const key = `${svc.namespace}/${svc.name}`;
  const selected = spec.selector ? workloads.filter((w) => w.namespace === svc.namespace && Object.keys(spec.selector ?? {}).length > 0 && labelsMatch(spec.selector, w.labels)) : [];
  let endpointSource = 'none';
  const endpoints: RegistryEndpoint[] = [];
  const explicit = endpointsByService.get(key);
  if (explicit) {
    endpointSource = explicit.source;
    for (const set of explicit.sets) {
      for (const a of set.addresses) {
        const byName: Record<string, number> = {};
        for (const p of spec.ports ?? []) {
          const name = p.name ?? `port-${p.port}`;
          const n = set.ports[name] ?? (Object.keys(set.ports).length === 1 ? Object.values(set.ports)[0] : undefined);
          if (n !== undefined) byName[name] = n;
        }
        endpoints.push({ address: a.ip, ports: byName, labels: a.labels, weight: 1 });
      }
    }
  } else {
    for (const w of selected) {
      if (!w.ip) continue;
      endpointSource = 'Pods';
      const byName: Record<string, number> = {};
      for (const p of spec.ports ?? []) {
        const t = p.targetPort ?? p.port;
        const n = typeof t === 'number' ? t : w.namedPorts[t];
        if (n !== undefined) byName[p.name ?? `port-${p.port}`] = n;
      }
      endpoints.push({ address: w.ip, ports: byName, labels: w.labels, weight: 1 });
    }
  }
  const isExternalName = spec.type === 'ExternalName' && spec.externalName !== undefined;
  return {
    host: `${svc.name}.${svc.namespace}.${CLUSTER_DOMAIN}`,
    namespace: svc.namespace,
    resource: svc,
    ports,
    addresses: spec.clusterIP && spec.clusterIP !== 'None' ? [spec.clusterIP] : [],
    resolution: isExternalName ? 'DNS' : 'STATIC',
    location: 'MESH_INTERNAL',
    endpoints: isExternalName ? [{ address: spec.externalName ?? '', ports: {}, labels: {}, weight: 1 }] : endpoints,
    kubernetes: {
      type: spec.type ?? 'ClusterIP',
      ...(spec.selector ? { selector: spec.selector } : {}),
      ...(spec.externalTrafficPolicy ? { externalTrafficPolicy: spec.externalTrafficPolicy } : {}),
      selectedWorkloads: selected.map((w) => `${w.kind}/${w.name}`),
      endpointSource,
    },
  };
}

/** Istio's protocol selection for Service ports: appProtocol, then the port name prefix (`http-`, `tls-`...), else TCP. */
export function protocolOfServicePort(p: ServiceSpecPort): string {
  const fromName = (s: string): string | undefined => {
    const prefix = s.toLowerCase().split('-')[0] ?? '';
    const known: Record<string, string> = { http: 'HTTP', http2: 'HTTP2', https: 'HTTPS', grpc: 'GRPC', 'grpc-web': 'GRPC', tls: 'TLS', tcp: 'TCP', mongo: 'MONGO', h2c: 'HTTP2' };
    return known[prefix];
  };
  if (p.appProtocol) return fromName(p.appProtocol) ?? 'TCP';
  if (p.name) return fromName(p.name) ?? 'TCP';
  return 'TCP';
}
