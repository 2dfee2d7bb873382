/**
 * Schemas for the Kubernetes and OpenShift kinds Tollgate reads. Big upstream objects (PodSpec,
 * DeploymentSpec) are validated on the fields Tollgate uses; the rest of their well-known fields are
 * accepted as they are (open objects), so real manifests pass without noise.
 */
import { arr, bool, cidr, int, intOrString, ip, map, obj, oneOf, openObj, port, str, stringMap, any, type Schema } from './dsl.js';

export const labelSelector = obj({
  matchLabels: stringMap,
  matchExpressions: arr(obj({ key: str(), operator: oneOf('In', 'NotIn', 'Exists', 'DoesNotExist'), values: arr(str()) }, ['key', 'operator'])),
});

const envVar = obj({ name: str(), value: str(), valueFrom: openObj({}) }, ['name']);
const container = openObj(
  {
    name: str(),
    image: str(),
    env: arr(envVar),
    ports: arr(openObj({ containerPort: port, name: str(), protocol: oneOf('TCP', 'UDP', 'SCTP'), hostPort: port })),
    command: arr(str()),
    args: arr(str()),
  },
  ['name'],
);

export const podSpec = openObj({
  containers: arr(container),
  initContainers: arr(container),
  hostAliases: arr(obj({ ip, hostnames: arr(str()) }, ['ip'])),
  nodeName: str(),
  nodeSelector: stringMap,
  hostNetwork: bool,
  restartPolicy: oneOf('Always', 'OnFailure', 'Never'),
  terminationGracePeriodSeconds: int(0),
});

const podStatus = openObj({ podIP: ip, podIPs: arr(obj({ ip })), hostIP: ip, phase: str() });
const podTemplate = obj({ metadata: openObj({ labels: stringMap, annotations: stringMap }), spec: podSpec });

export const deploymentSpec = openObj(
  {
    replicas: int(0),
    selector: labelSelector,
    template: podTemplate,
  },
  ['selector', 'template'],
);

const servicePort = obj(
  {
    name: str(),
    port,
    targetPort: intOrString,
    protocol: oneOf('TCP', 'UDP', 'SCTP'),
    nodePort: int(1, 65535),
    appProtocol: str(),
  },
  ['port'],
);

export const serviceSpec = obj({
  type: oneOf('ClusterIP', 'NodePort', 'LoadBalancer', 'ExternalName'),
  ports: arr(servicePort),
  selector: stringMap,
  clusterIP: str(),
  clusterIPs: arr(str()),
  externalIPs: arr(ip),
  externalName: str(),
  externalTrafficPolicy: oneOf('Cluster', 'Local'),
  internalTrafficPolicy: oneOf('Cluster', 'Local'),
  sessionAffinity: oneOf('None', 'ClientIP'),
  sessionAffinityConfig: openObj({}),
  loadBalancerIP: str(),
  loadBalancerSourceRanges: arr(str()),
  loadBalancerClass: str(),
  allocateLoadBalancerNodePorts: bool,
  healthCheckNodePort: int(1, 65535),
  ipFamilies: arr(oneOf('IPv4', 'IPv6')),
  ipFamilyPolicy: oneOf('SingleStack', 'PreferDualStack', 'RequireDualStack'),
  publishNotReadyAddresses: bool,
  trafficDistribution: str(),
});

const endpointAddress = openObj({ ip, hostname: str(), nodeName: str(), targetRef: openObj({}) }, ['ip']);
export const endpointsSubsets = arr(
  obj({
    addresses: arr(endpointAddress),
    notReadyAddresses: arr(endpointAddress),
    ports: arr(obj({ name: str(), port, protocol: oneOf('TCP', 'UDP', 'SCTP'), appProtocol: str() }, ['port'])),
  }),
);

export const endpointSliceBody = {
  addressType: oneOf('IPv4', 'IPv6', 'FQDN'),
  endpoints: arr(
    openObj(
      {
        addresses: arr(str(), 1),
        conditions: obj({ ready: bool, serving: bool, terminating: bool }),
        hostname: str(),
        nodeName: str(),
        zone: str(),
        targetRef: openObj({}),
      },
      ['addresses'],
    ),
  ),
  ports: arr(obj({ name: str(), port, protocol: oneOf('TCP', 'UDP', 'SCTP'), appProtocol: str() })),
};

export const networkPolicySpec = obj({
  podSelector: labelSelector,
  policyTypes: arr(oneOf('Ingress', 'Egress')),
  ingress: arr(openObj({})),
  egress: arr(openObj({})),
});

export const egressIpSpec = obj(
  {
    egressIPs: arr(ip, 1),
    namespaceSelector: labelSelector,
    podSelector: labelSelector,
  },
  ['egressIPs', 'namespaceSelector'],
);

/**
 * OpenShift SDN (network.openshift.io/v1) keeps its fields at the top level, not under spec.
 * HostSubnet.egressIPs: the addresses that node may host; NetNamespace.egressIPs: a namespace's
 * source addresses, in order (`oc patch hostsubnet|netnamespace ... -p '{"egressIPs": [...]}'`).
 */
const hostSubnetBody = { host: str(), hostIP: ip, subnet: cidr, egressIPs: arr(ip), egressCIDRs: arr(cidr) };
const netNamespaceBody = { netname: str(), netid: int(0), egressIPs: arr(ip) };

/** Kinds whose payload is not under `spec` list their top-level fields here. */
export const K8S_SCHEMAS: Readonly<Record<string, { spec?: Schema; top?: Readonly<Record<string, Schema>> }>> = {
  Service: { spec: serviceSpec, top: { status: any } },
  Endpoints: { top: { subsets: endpointsSubsets } },
  EndpointSlice: { top: endpointSliceBody },
  Pod: { spec: podSpec, top: { status: podStatus } },
  Deployment: { spec: deploymentSpec, top: { status: any } },
  Namespace: { spec: openObj({}), top: { status: any } },
  Secret: { top: { data: map(str()), stringData: map(str()), type: str(), immutable: bool } },
  ConfigMap: { top: { data: map(str()), binaryData: map(str()), immutable: bool } },
  NetworkPolicy: { spec: networkPolicySpec },
  EgressIP: { spec: egressIpSpec, top: { status: any } },
  HostSubnet: { top: hostSubnetBody },
  NetNamespace: { top: netNamespaceBody },
};
