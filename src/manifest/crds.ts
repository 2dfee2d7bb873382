/**
 * The crds profile: a CustomResourceDefinition for every kind Tollgate reads that a cluster may
 * lack — Istio networking and security, OVN-Kubernetes EgressIP, OpenShift SDN HostSubnet and
 * NetNamespace — with the groups, versions, scopes and names those projects use, so their objects
 * (and published examples) apply unchanged. Schemas keep unknown fields: Tollgate validates the contents
 * itself (and so does the validating webhook). Apply with `kubectl create`, which refuses CRDs that
 * already exist instead of replacing Istio's or OpenShift's own definitions.
 */
import { labels, type K8sObject } from './common.js';

interface CrdSpec {
  readonly group: string;
  readonly kind: string;
  readonly plural: string;
  readonly shortNames?: readonly string[];
  readonly scope: 'Namespaced' | 'Cluster';
  /** Served versions, the storage one first (as the owning project stores them). */
  readonly versions: readonly string[];
  /** Fields outside `spec` (OpenShift SDN objects keep theirs at the top level). */
  readonly topLevel?: boolean;
}

const NET = ['v1alpha3', 'v1beta1', 'v1'];
const SEC = ['v1beta1', 'v1'];

export const CRDS: readonly CrdSpec[] = [
  { group: 'networking.istio.io', kind: 'ServiceEntry', plural: 'serviceentries', shortNames: ['se'], scope: 'Namespaced', versions: NET },
  { group: 'networking.istio.io', kind: 'Gateway', plural: 'gateways', shortNames: ['gw'], scope: 'Namespaced', versions: NET },
  { group: 'networking.istio.io', kind: 'VirtualService', plural: 'virtualservices', shortNames: ['vs'], scope: 'Namespaced', versions: NET },
  { group: 'networking.istio.io', kind: 'DestinationRule', plural: 'destinationrules', shortNames: ['dr'], scope: 'Namespaced', versions: NET },
  { group: 'networking.istio.io', kind: 'Sidecar', plural: 'sidecars', scope: 'Namespaced', versions: NET },
  { group: 'networking.istio.io', kind: 'WorkloadEntry', plural: 'workloadentries', shortNames: ['we'], scope: 'Namespaced', versions: NET },
  { group: 'security.istio.io', kind: 'PeerAuthentication', plural: 'peerauthentications', shortNames: ['pa'], scope: 'Namespaced', versions: SEC },
  { group: 'security.istio.io', kind: 'AuthorizationPolicy', plural: 'authorizationpolicies', shortNames: ['ap'], scope: 'Namespaced', versions: SEC },
  { group: 'k8s.ovn.org', kind: 'EgressIP', plural: 'egressips', shortNames: ['eip'], scope: 'Cluster', versions: ['v1'] },
  { group: 'network.openshift.io', kind: 'HostSubnet', plural: 'hostsubnets', scope: 'Cluster', versions: ['v1'], topLevel: true },
  { group: 'network.openshift.io', kind: 'NetNamespace', plural: 'netnamespaces', shortNames: ['netns'], scope: 'Cluster', versions: ['v1'], topLevel: true },
];

export function crds(): K8sObject[] {
  return CRDS.map((c) => ({
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${c.plural}.${c.group}`, labels: labels('tollgate-crds', 'crds'), annotations: { 'helm.sh/resource-policy': 'keep' } },
    spec: {
      group: c.group,
      scope: c.scope,
      names: { kind: c.kind, listKind: `${c.kind}List`, plural: c.plural, singular: c.kind.toLowerCase(), ...(c.shortNames ? { shortNames: [...c.shortNames] } : {}) },
      versions: c.versions.map((name, i) => ({
        name,
        served: true,
        storage: i === 0,
        schema: {
          openAPIV3Schema: c.topLevel
            ? { type: 'object', 'x-kubernetes-preserve-unknown-fields': true }
            : { type: 'object', properties: { spec: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true }, status: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } } },
        },
        ...(c.topLevel ? {} : { subresources: { status: {} } }),
      })),
    },
  }));
}
