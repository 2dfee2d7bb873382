/**
 * Pure: validated resources -> an indexed, immutable Model. Nothing here knows about proxies;
 * snapshot/ asks the Model questions on behalf of one proxy identity.
 */
import type { Diagnostic } from '../config/diagnostics.js';
import type { Resource } from '../config/decode.js';
import type {
  DeploymentSpec, DestinationRuleSpec, EgressIpSpec, GatewayServer, GatewaySpec, PodSpec, ServiceEntrySpec,
  ServiceSpec, SidecarSpec, StringMap, VirtualServiceSpec, WorkloadEntrySpec,
} from '../config/types.js';
import { parseEgressRouter, type EgressRouter } from './egress-router.js';
import { meshSettingsOf, type MeshSettings } from './mesh-config.js';
import { Registry, servicesFromKubernetes, servicesFromServiceEntry, type RegistryService } from './registry.js';
import { resolveGatewayRef, resolveHost } from './selectors.js';
import { buildSourcePools, hostSubnetsOf, netNamespacesOf, type HostSubnetModel, type NetNamespaceModel, type SourcePool } from './source-pools.js';
import { workloadFromDeployment, workloadFromPod, type Workload } from './workloads.js';

export interface ServerHost {
  /** `*` (any namespace), or a namespace name; Istio's `ns/host` form. `.` is resolved to the Gateway's own. */
  readonly namespace: string;
  readonly host: string;
}

export interface ServerModel {
  readonly index: number;
  readonly server: GatewayServer;
  readonly hosts: readonly ServerHost[];
  readonly protocol: string;
}

export interface GatewayModel {
  readonly key: string; // namespace/name
  readonly resource: Resource<GatewaySpec>;
  readonly selector: StringMap;
  readonly servers: readonly ServerModel[];
}

export interface VirtualServiceModel {
  readonly key: string;
  readonly resource: Resource<VirtualServiceSpec>;
  /** Hosts resolved to FQDNs (short names expanded in the VirtualService's namespace). */
  readonly hosts: readonly string[];
  /** `mesh` and/or `namespace/name` Gateway keys; `mesh` when none are listed. */
  readonly gateways: readonly string[];
  readonly spec: VirtualServiceSpec;
}

export interface DestinationRuleModel {
  readonly key: string;
  readonly resource: Resource<DestinationRuleSpec>;
  readonly host: string;
  readonly spec: DestinationRuleSpec;
}

export interface EnvoyBootstrapModel {
  readonly resources: readonly Resource[];
  readonly listeners: readonly { readonly value: Record<string, unknown>; readonly resource: Resource; readonly index: number }[];
  readonly clusters: readonly { readonly value: Record<string, unknown>; readonly resource: Resource; readonly index: number }[];
  readonly admin?: { readonly address: string; readonly port: number; readonly resource: Resource };
}

export interface Model {
  readonly resources: readonly Resource[];
  readonly diagnostics: readonly Diagnostic[];
  readonly namespaces: ReadonlyMap<string, StringMap>;
  readonly registry: Registry;
  readonly workloads: readonly Workload[];
  readonly gateways: readonly GatewayModel[];
  readonly virtualServices: readonly VirtualServiceModel[];
  readonly destinationRules: readonly DestinationRuleModel[];
  readonly sidecars: readonly Resource<SidecarSpec>[];
  readonly egressRouters: readonly EgressRouter[];
  readonly egressIps: readonly Resource<EgressIpSpec>[];
  readonly hostSubnets: readonly HostSubnetModel[];
  readonly netNamespaces: readonly NetNamespaceModel[];
  /** Source address pools (ServiceEntry annotation, EgressIP, NetNamespace) with their node placement. */
  readonly sourcePools: readonly SourcePool[];
  readonly secrets: readonly Resource[];
  readonly kubernetesServices: readonly Resource<ServiceSpec>[];
  readonly envoy?: EnvoyBootstrapModel;
  /** Istio mesh config (ConfigMap istio in istio-system), the fields Tollgate acts on. */
  readonly mesh: MeshSettings;
}

function ofKind<S>(resources: readonly Resource[], kind: Resource['kind']): Resource<S>[] {
  return resources.filter((r) => r.kind === kind) as Resource<S>[];
}

export function buildModel(resources: readonly Resource[]): Model {
  const diagnostics: Diagnostic[] = [];

  const namespaces = new Map<string, StringMap>();
  for (const r of resources) if (r.namespace && !namespaces.has(r.namespace)) namespaces.set(r.namespace, {});
  for (const ns of ofKind(resources, 'Namespace')) namespaces.set(ns.name, ns.labels);

  const deployments = ofKind<DeploymentSpec>(resources, 'Deployment');
  const workloads: Workload[] = [
    ...ofKind<PodSpec>(resources, 'Pod').map(workloadFromPod),
    ...deployments.map(workloadFromDeployment),
  ];

  const services: RegistryService[] = [];
  for (const se of ofKind<ServiceEntrySpec>(resources, 'ServiceEntry')) services.push(...servicesFromServiceEntry(se));
  const kubernetesServices = ofKind<ServiceSpec>(resources, 'Service');
  const endpointsByService = collectEndpoints(resources);
  for (const svc of kubernetesServices) services.push(servicesFromKubernetes(svc, endpointsByService, workloads));
  // WorkloadEntries join ServiceEntries that select them (workloadSelector), as in Istio.
  const workloadEntries = ofKind<WorkloadEntrySpec>(resources, 'WorkloadEntry');
  for (let i = 0; i < services.length; i++) {
    const s = services[i];
    if (!s || s.resource.kind !== 'ServiceEntry') continue;
    const sel = (s.resource.spec as ServiceEntrySpec).workloadSelector?.labels;
    if (!sel) continue;
    const extra = workloadEntries
      .filter((we) => we.namespace === s.namespace && Object.entries(sel).every(([k, v]) => (we.spec.labels ?? we.labels)[k] === v))
      .map((we) => ({ address: we.spec.address ?? '', ports: we.spec.ports ?? {}, labels: we.spec.labels ?? we.labels, weight: we.spec.weight ?? 1 }));
    if (extra.length > 0) services[i] = { ...s, endpoints: [...s.endpoints, ...extra] };
  }

  const gateways: GatewayModel[] = ofKind<GatewaySpec>(resources, 'Gateway').map((g) => ({
    key: `${g.namespace}/${g.name}`,
    resource: g,
    selector: g.spec.selector ?? {},
    servers: g.spec.servers.map((server, index) => ({
      index,
      server,
      protocol: server.port.protocol.toUpperCase(),
      hosts: server.hosts.map((h) => parseServerHost(h, g.namespace)),
    })),
  }));

  const virtualServices: VirtualServiceModel[] = ofKind<VirtualServiceSpec>(resources, 'VirtualService').map((vs) => ({
    key: `${vs.namespace}/${vs.name}`,
    resource: vs,
    hosts: (vs.spec.hosts ?? []).map((h) => resolveHost(h, vs.namespace)),
    gateways: (vs.spec.gateways && vs.spec.gateways.length > 0 ? vs.spec.gateways : ['mesh']).map((g) => resolveGatewayRef(g, vs.namespace)),
    spec: vs.spec,
  }));

  const destinationRules: DestinationRuleModel[] = ofKind<DestinationRuleSpec>(resources, 'DestinationRule').map((dr) => ({
    key: `${dr.namespace}/${dr.name}`,
    resource: dr,
    host: resolveHost(dr.spec.host, dr.namespace),
    spec: dr.spec,
  }));

  const egressRouters: EgressRouter[] = [];
  for (const d of deployments) {
    const router = parseEgressRouter(d, diagnostics);
    if (router) egressRouters.push(router);
  }

  const egressIps = ofKind<EgressIpSpec>(resources, 'EgressIP');
  const hostSubnets = hostSubnetsOf(resources);
  const netNamespaces = netNamespacesOf(resources);
  const sourcePools = buildSourcePools(ofKind(resources, 'ServiceEntry'), egressIps, netNamespaces, hostSubnets, diagnostics);

  const envoy = buildEnvoy(resources);
  return {
    resources,
    diagnostics,
    namespaces,
    registry: new Registry(services),
    workloads,
    gateways,
    virtualServices,
    destinationRules,
    sidecars: ofKind<SidecarSpec>(resources, 'Sidecar'),
    egressRouters,
    egressIps,
    hostSubnets,
    netNamespaces,
    sourcePools,
    secrets: ofKind(resources, 'Secret'),
    kubernetesServices,
    ...(envoy ? { envoy } : {}),
    mesh: meshSettingsOf(resources, diagnostics),
  };
}

function parseServerHost(h: string, gatewayNs: string): ServerHost {
  const slash = h.indexOf('/');
  if (slash < 0) return { namespace: '*', host: h.toLowerCase() };
  const ns = h.slice(0, slash);
  return { namespace: ns === '.' ? gatewayNs : ns, host: h.slice(slash + 1).toLowerCase() };
}

type EndpointSets = Map<string, { source: string; sets: { addresses: { ip: string; labels: StringMap }[]; ports: Record<string, number> }[] }>;

/** Endpoints objects (same name as the Service) and EndpointSlices (label kubernetes.io/service-name). */
function collectEndpoints(resources: readonly Resource[]): EndpointSets {
  const out: EndpointSets = new Map();
  const add = (key: string, source: string, set: { addresses: { ip: string; labels: StringMap }[]; ports: Record<string, number> }): void => {
    const e = out.get(key) ?? { source, sets: [] };
    e.sets.push(set);
    out.set(key, e);
  };
  for (const ep of resources.filter((r) => r.kind === 'Endpoints')) {
    const subsets = (ep.body['subsets'] ?? []) as { addresses?: { ip: string }[]; ports?: { name?: string; port: number }[] }[];
    for (const s of subsets) {
      const ports: Record<string, number> = {};
      for (const p of s.ports ?? []) ports[p.name ?? ''] = p.port;
      add(`${ep.namespace}/${ep.name}`, 'Endpoints', { addresses: (s.addresses ?? []).map((a) => ({ ip: a.ip, labels: {} })), ports });
    }
  }
  for (const sl of resources.filter((r) => r.kind === 'EndpointSlice')) {
    const svc = sl.labels['kubernetes.io/service-name'];
    if (!svc) continue;
    const eps = (sl.body['endpoints'] ?? []) as { addresses: string[]; conditions?: { ready?: boolean } }[];
    const ports: Record<string, number> = {};
    for (const p of (sl.body['ports'] ?? []) as { name?: string; port?: number }[]) if (p.port !== undefined) ports[p.name ?? ''] = p.port;
    const addresses = eps.filter((e) => e.conditions?.ready !== false).flatMap((e) => e.addresses.map((ip) => ({ ip, labels: {} })));
    add(`${sl.namespace}/${svc}`, 'EndpointSlice', { addresses, ports });
  }
  return out;
}

function buildEnvoy(resources: readonly Resource[]): EnvoyBootstrapModel | undefined {
  const boots = resources.filter((r) => r.kind === 'EnvoyBootstrap');
  if (boots.length === 0) return undefined;
  const listeners: EnvoyBootstrapModel['listeners'][number][] = [];
  const clusters: EnvoyBootstrapModel['clusters'][number][] = [];
  let admin: EnvoyBootstrapModel['admin'];
  for (const b of boots) {
    const body = b.body as { static_resources?: { listeners?: Record<string, unknown>[]; clusters?: Record<string, unknown>[] }; admin?: { address?: { socket_address?: { address?: string; port_value?: number } } } };
    (body.static_resources?.listeners ?? []).forEach((value, index) => listeners.push({ value, resource: b, index }));
    (body.static_resources?.clusters ?? []).forEach((value, index) => clusters.push({ value, resource: b, index }));
    // Later files override earlier ones, like Envoy's --config-yaml override of a bootstrap file.
    const sa = body.admin?.address?.socket_address;
    if (sa?.address !== undefined && sa.port_value !== undefined) admin = { address: sa.address, port: sa.port_value, resource: b };
  }
  return { resources: boots, listeners, clusters, ...(admin ? { admin } : {}) };
}

/** Workload label sets a Gateway selector could match (used by analyze: "selector matches no workload"). */
export function workloadsMatching(model: Model, selector: StringMap, namespace?: string): Workload[] {
  return model.workloads.filter((w) => (namespace === undefined || w.namespace === namespace) && Object.entries(selector).every(([k, v]) => w.labels[k] === v));
}
