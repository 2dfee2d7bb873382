/**
 * The kinds Tollgate knows: which apiVersions each accepts, which one is assumed when a document
 * omits apiVersion (ServiceEntries copied from walkthroughs sometimes do), and whether Tollgate acts on it or only recognises it.
 */
export type KindName =
  | 'ServiceEntry' | 'Gateway' | 'VirtualService' | 'DestinationRule' | 'Sidecar' | 'WorkloadEntry'
  | 'PeerAuthentication' | 'AuthorizationPolicy'
  | 'Service' | 'Endpoints' | 'EndpointSlice' | 'Pod' | 'Deployment' | 'Namespace' | 'Secret' | 'ConfigMap' | 'NetworkPolicy'
  | 'EgressIP' | 'HostSubnet' | 'NetNamespace'
  | 'GatewayAPIGateway' | 'HTTPRoute' | 'TLSRoute' | 'TCPRoute'
  | 'EnvoyBootstrap' | 'MeshConfig';

export interface KindInfo {
  /** Kind as written in YAML (Gateway API's Gateway shares the name with Istio's; the group tells them apart). */
  readonly yamlKind: string;
  readonly apiVersions: readonly string[];
  readonly defaultApiVersion: string;
  readonly namespaced: boolean;
  /** 'active': compiled into snapshots; 'recognised': validated and reported, not yet acted on. */
  readonly support: 'active' | 'recognised';
}

const ISTIO_NET = ['networking.istio.io/v1', 'networking.istio.io/v1beta1', 'networking.istio.io/v1alpha3'];
const ISTIO_SEC = ['security.istio.io/v1', 'security.istio.io/v1beta1'];
const GW_API = ['gateway.networking.k8s.io/v1', 'gateway.networking.k8s.io/v1beta1', 'gateway.networking.k8s.io/v1alpha2'];

const k = (yamlKind: string, apiVersions: string[], support: 'active' | 'recognised' = 'active', namespaced = true): KindInfo => ({
  yamlKind,
  apiVersions,
  defaultApiVersion: apiVersions[0] ?? 'v1',
  namespaced,
  support,
});

export const KINDS: Readonly<Record<KindName, KindInfo>> = {
  ServiceEntry: k('ServiceEntry', ISTIO_NET),
  Gateway: k('Gateway', ISTIO_NET),
  VirtualService: k('VirtualService', ISTIO_NET),
  DestinationRule: k('DestinationRule', ISTIO_NET),
  Sidecar: k('Sidecar', ISTIO_NET),
  WorkloadEntry: k('WorkloadEntry', ISTIO_NET),
  PeerAuthentication: k('PeerAuthentication', ISTIO_SEC, 'recognised'),
  AuthorizationPolicy: k('AuthorizationPolicy', ISTIO_SEC, 'recognised'),
  Service: k('Service', ['v1']),
  Endpoints: k('Endpoints', ['v1']),
  EndpointSlice: k('EndpointSlice', ['discovery.k8s.io/v1']),
  Pod: k('Pod', ['v1']),
  Deployment: k('Deployment', ['apps/v1']),
  Namespace: k('Namespace', ['v1'], 'active', false),
  Secret: k('Secret', ['v1']),
  ConfigMap: k('ConfigMap', ['v1']),
  NetworkPolicy: k('NetworkPolicy', ['networking.k8s.io/v1'], 'recognised'),
  EgressIP: k('EgressIP', ['k8s.ovn.org/v1'], 'active', false),
  HostSubnet: k('HostSubnet', ['network.openshift.io/v1'], 'active', false),
  NetNamespace: k('NetNamespace', ['network.openshift.io/v1'], 'active', false),
  GatewayAPIGateway: k('Gateway', GW_API, 'recognised'),
  HTTPRoute: k('HTTPRoute', GW_API, 'recognised'),
  TLSRoute: k('TLSRoute', GW_API.slice(2), 'recognised'),
  TCPRoute: k('TCPRoute', GW_API.slice(2), 'recognised'),
  EnvoyBootstrap: k('EnvoyBootstrap', ['envoy.config.bootstrap.v3'], 'active', false),
  // Istio's install-time mesh config: a bare MeshConfig document, or the `mesh` key of the `istio` ConfigMap.
  MeshConfig: k('MeshConfig', ['meshconfig.istio.io/v1alpha1'], 'active', false),
};

/** Finds the kind for a (kind, apiVersion) pair; with no apiVersion, the first kind of that name wins. */
export function lookupKind(yamlKind: string, apiVersion: string | undefined): { kind: KindName; info: KindInfo } | undefined {
  let byName: { kind: KindName; info: KindInfo } | undefined;
  for (const [name, info] of Object.entries(KINDS) as [KindName, KindInfo][]) {
    if (info.yamlKind !== yamlKind) continue;
    if (apiVersion === undefined) return { kind: name, info };
    if (info.apiVersions.includes(apiVersion)) return { kind: name, info };
    byName ??= { kind: name, info };
  }
  return byName && apiVersion !== undefined ? undefined : byName;
}

/** All apiVersions under which a kind name is known (for "did you mean" messages). */
export function knownVersionsOf(yamlKind: string): string[] {
  return Object.values(KINDS).filter((i) => i.yamlKind === yamlKind).flatMap((i) => i.apiVersions);
}
