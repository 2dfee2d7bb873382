/**
 * The Kubernetes resources the control plane lists and watches, and where each lives on the API
 * server. One table: adding a kind is one line here (and its schema in src/config/).
 */

/** Which generated client lists the kind: built-in kinds through their typed API, CRDs through CustomObjectsApi. */
export type ListApi = 'core' | 'apps' | 'discovery' | 'apiextensions' | 'custom';

export interface WatchedKind {
  /** Kind as the API server and the YAML spell it. */
  readonly kind: string;
  /** API group; '' for the core group (`/api/v1`). */
  readonly group: string;
  /** Versions to try, preferred first: a 404 on one moves to the next (older Istio serves only v1beta1). */
  readonly versions: readonly string[];
  readonly plural: string;
  readonly namespaced: boolean;
  readonly api: ListApi;
  /**
   * What of `.status` reaches the config: controllers write it and it changes often, so only what
   * the model reads is kept ('drop': none, 'keep': all, or these fields). Fewer fields, fewer rebuilds.
   */
  readonly status: 'drop' | 'keep' | readonly string[];
  /** Watched only while this other kind is not served (Endpoints when there are no EndpointSlices). */
  readonly fallbackFor?: string;
  /**
   * Watched for the source's own bookkeeping, not turned into config: the CRDs, whose events say
   * at once when a kind starts or stops being served.
   */
  readonly bookkeeping?: true;
}

const ISTIO_NET = ['v1', 'v1beta1', 'v1alpha3'];
const ISTIO_SEC = ['v1', 'v1beta1'];
const GW_API = ['v1', 'v1beta1'];

const istio = (kind: string, plural: string): WatchedKind => ({ kind, group: 'networking.istio.io', versions: ISTIO_NET, plural, namespaced: true, api: 'custom', status: 'drop' });

/** CustomResourceDefinitions: the name of each is `<plural>.<group>` of the kind it defines. */
export const CRD_KIND: WatchedKind = { kind: 'CustomResourceDefinition', group: 'apiextensions.k8s.io', versions: ['v1'], plural: 'customresourcedefinitions', namespaced: false, api: 'apiextensions', status: 'drop', bookkeeping: true };

export const WATCHED_KINDS: readonly WatchedKind[] = [
  istio('ServiceEntry', 'serviceentries'),
  istio('Gateway', 'gateways'),
  istio('VirtualService', 'virtualservices'),
  istio('DestinationRule', 'destinationrules'),
  istio('Sidecar', 'sidecars'),
  istio('WorkloadEntry', 'workloadentries'),
  { kind: 'PeerAuthentication', group: 'security.istio.io', versions: ISTIO_SEC, plural: 'peerauthentications', namespaced: true, api: 'custom', status: 'drop' },
  { kind: 'AuthorizationPolicy', group: 'security.istio.io', versions: ISTIO_SEC, plural: 'authorizationpolicies', namespaced: true, api: 'custom', status: 'drop' },
  { kind: 'Service', group: '', versions: ['v1'], plural: 'services', namespaced: true, api: 'core', status: ['loadBalancer'] },
  { kind: 'Pod', group: '', versions: ['v1'], plural: 'pods', namespaced: true, api: 'core', status: ['phase', 'podIP', 'podIPs', 'hostIP'] },
  { kind: 'Namespace', group: '', versions: ['v1'], plural: 'namespaces', namespaced: false, api: 'core', status: ['phase'] },
  { kind: 'Secret', group: '', versions: ['v1'], plural: 'secrets', namespaced: true, api: 'core', status: 'drop' },
  { kind: 'EndpointSlice', group: 'discovery.k8s.io', versions: ['v1'], plural: 'endpointslices', namespaced: true, api: 'discovery', status: 'drop' },
  { kind: 'Endpoints', group: '', versions: ['v1'], plural: 'endpoints', namespaced: true, api: 'core', status: 'drop', fallbackFor: 'EndpointSlice' },
  { kind: 'Deployment', group: 'apps', versions: ['v1'], plural: 'deployments', namespaced: true, api: 'apps', status: 'drop' },
  { kind: 'EgressIP', group: 'k8s.ovn.org', versions: ['v1'], plural: 'egressips', namespaced: false, api: 'custom', status: 'keep' },
  { kind: 'HostSubnet', group: 'network.openshift.io', versions: ['v1'], plural: 'hostsubnets', namespaced: false, api: 'custom', status: 'drop' },
  { kind: 'NetNamespace', group: 'network.openshift.io', versions: ['v1'], plural: 'netnamespaces', namespaced: false, api: 'custom', status: 'drop' },
  { kind: 'Gateway', group: 'gateway.networking.k8s.io', versions: GW_API, plural: 'gateways', namespaced: true, api: 'custom', status: 'drop' },
  { kind: 'HTTPRoute', group: 'gateway.networking.k8s.io', versions: GW_API, plural: 'httproutes', namespaced: true, api: 'custom', status: 'drop' },
  CRD_KIND,
];

/** `virtualservices.networking.istio.io`, `services`: kubectl's resource.group spelling, unique per kind. */
export function resourceName(k: WatchedKind): string {
  return k.group ? `${k.plural}.${k.group}` : k.plural;
}

export function apiVersionOf(k: WatchedKind, version: string): string {
  return k.group ? `${k.group}/${version}` : version;
}

/** The collection path the watch opens: `/apis/G/V/[namespaces/NS/]PLURAL` or `/api/V/...`. */
export function collectionPath(k: WatchedKind, version: string, namespace: string | undefined): string {
  const base = k.group ? `/apis/${k.group}/${version}` : `/api/${version}`;
  const ns = k.namespaced && namespace !== undefined ? `/namespaces/${encodeURIComponent(namespace)}` : '';
  return `${base}${ns}/${k.plural}`;
}

/**
 * The CA's Secrets (Istio's names: plugged-in `cacerts`, self-signed `istio-ca-secret`). They hold
 * the CA's private key: read by the CA alone, never part of the config, whatever their namespace.
 */
export const CA_SECRET_NAMES: ReadonlySet<string> = new Set(['cacerts', 'istio-ca-secret']);

/** The ConfigMap the control plane publishes the CA's roots in, in every namespace (istiod's name and key). */
export const ROOT_CERT_CONFIGMAP = 'istio-ca-root-cert';
export const ROOT_CERT_CONFIGMAP_KEY = 'root-cert.pem';
