/**
 * The egress-gateway and ingress-gateway profiles: `tollgate run --role gateway` fed by the control
 * plane, probed on Istio's health port (15021 /healthz/ready), behind a Service. The egress
 * gateway's Service is ClusterIP (a LoadBalancer egress gateway is an open relay; `analyze` says
 * so); the ingress gateway's is a LoadBalancer with `externalTrafficPolicy: Local` by default, so
 * the client address survives (as for Kubernetes' source-IP Services).
 *
 * A gateway that owns a fixed source address keeps the OpenShift egress layout: one replica pinned to the
 * node that holds the address, no autoscaler and no disruption budget (a second replica could not
 * use the address). With `sourceAddressPool=true` (the source-address pool layout) replicas each
 * take their node's share of the pool and are scaled like any other gateway.
 */
import {
  COMMON_VALUES, CONTROL_PLANE_ADDRESS_VALUES, containerSecurity, controlPlaneFlags, HEALTH_PORT, hpa, isIpAddress, labelFlag, labels, meta, pdb,
  POD_ENV, podSecurity, replicasSpec, RESOURCE_VALUES, resources, serviceAccount, spreadOverNodes, TMP_MOUNT, TMP_VOLUME, type K8sObject, CONTROL_PLANE_CA_MOUNT, CONTROL_PLANE_CA_VOLUME } from './common.js';
import { isBool, isInt, oneOf, type ValueSpecs, type Values } from './values.js';

export type GatewayKind = 'egress' | 'ingress';

interface PortMapping {
  readonly name: string;
  readonly service: number;
  readonly container: number;
}

const PORTS = (v: string): string | undefined =>
  v.split(',').every((p) => /^\d{1,5}:\d{1,5}$/.test(p) && p.split(':').every((n) => Number(n) >= 1 && Number(n) <= 65535)) ? undefined : 'must be SERVICE:CONTAINER port pairs, e.g. 80:8080,443:8443';

export function gatewayValues(kind: GatewayKind): ValueSpecs {
  return {
    ...COMMON_VALUES,
    ...CONTROL_PLANE_ADDRESS_VALUES,
    ...replicasSpec(2),
    ...RESOURCE_VALUES,
    name: { default: `tollgate-${kind}gateway`, help: 'Deployment/Service name' },
    selector: { default: `istio=${kind}gateway`, help: 'pod label key=value the Istio Gateway objects select', check: (v) => (/^[\w./-]+=[\w.-]+$/.test(v) ? undefined : 'must be key=value') },
    ports: { default: '80:8080,443:8443', help: 'Service port:container port pairs; a container port below 1024 adds NET_BIND_SERVICE', check: PORTS },
    serviceType: { default: kind === 'egress' ? 'ClusterIP' : 'LoadBalancer', help: 'ClusterIP, NodePort or LoadBalancer', check: oneOf('ClusterIP', 'NodePort', 'LoadBalancer') },
    externalTrafficPolicy: { default: kind === 'ingress' ? 'Local' : 'Cluster', help: 'Local keeps the client address (NodePort/LoadBalancer only)', check: oneOf('Local', 'Cluster') },
    maxReplicas: { default: '5', help: 'HorizontalPodAutoscaler maximum (gateways without a fixed source address)', check: isInt(1, 100) },
    sourceAddress: { default: '', help: 'fixed source IP this gateway owns: 1 replica pinned to `node`, no autoscaler', check: isIpAddress },
    node: { default: '', help: 'with sourceAddress: the node that holds the address' },
    sourceAddressPool: { default: 'false', help: 'true: replicas take their node\'s share of a source address pool (HA layout)', check: isBool },
    ...(kind === 'egress' ? {
      egressNamespaces: { default: '', help: 'comma-separated namespaces whose pods may leave the cluster only through this gateway (NetworkPolicy set)' },
    } : {}),
  };
}

function parsePorts(v: Values): PortMapping[] {
  return v.list('ports').map((p) => {
    const [service, container] = p.split(':').map(Number) as [number, number];
    const name = service === 443 ? 'https' : service === 80 ? 'http2' : `tcp-${service}`;
    return { name, service, container };
  });
}

export function gateway(kind: GatewayKind, namespace: string, v: Values): K8sObject[] {
  const name = v.get('name');
  const [selKey, selValue] = v.get('selector').split('=') as [string, string];
  const l = { ...labels(name, `${kind}-gateway`), [selKey]: selValue };
  const selector = { app: name, [selKey]: selValue };
  const ports = parsePorts(v);
  const lowPorts = ports.some((p) => p.container < 1024);
  const pinned = v.get('sourceAddress') !== '';
  if (pinned && v.get('node') === '') throw new Error('--set sourceAddress needs --set node=NODE (the node that holds the address)');
  if (pinned && v.bool('sourceAddressPool')) throw new Error('--set sourceAddress and sourceAddressPool=true exclude each other');
  const scaled = !pinned;
  const args = [
    'run', '--role', 'gateway',
    ...controlPlaneFlags(v, namespace),
    '--namespace', '$(POD_NAMESPACE)', '--name', '$(POD_NAME)', '--node', '$(NODE_NAME)',
    '--labels', labelFlag(l),
    '--port-map', ports.map((p) => `${p.service}=${p.container}`).join(','),
    '--status-ports', 'on',
    ...(pinned ? ['--source-address', v.get('sourceAddress')] : []),
  ];
  const serviceType = v.get('serviceType');
  const objects: K8sObject[] = [
    serviceAccount(name, namespace, l),
    {
      apiVersion: 'apps/v1', kind: 'Deployment', metadata: meta(name, namespace, l),
      spec: {
        replicas: pinned ? 1 : v.int('replicas'),
        selector: { matchLabels: selector },
        // A pinned gateway must let go of its address before the new pod takes it.
        ...(pinned ? { strategy: { type: 'Recreate' } } : {}),
        template: {
          metadata: { labels: l, annotations: { 'prometheus.io/scrape': 'true', 'prometheus.io/port': '15090', 'prometheus.io/path': '/stats/prometheus' } },
          spec: {
            serviceAccountName: name,
            securityContext: podSecurity(lowPorts),
            ...(pinned ? { nodeSelector: { 'kubernetes.io/hostname': v.get('node') } } : { affinity: spreadOverNodes(selector) }),
            terminationGracePeriodSeconds: 45,
            containers: [{
              name: 'gateway',
              image: v.get('image'),
              imagePullPolicy: v.get('imagePullPolicy'),
              args,
              env: [...POD_ENV],
              ports: [
                ...ports.map((p) => ({ name: p.name, containerPort: p.container, protocol: 'TCP' })),
                { name: 'status-port', containerPort: HEALTH_PORT, protocol: 'TCP' },
                { name: 'http-envoy-prom', containerPort: 15090, protocol: 'TCP' },
              ],
              readinessProbe: { httpGet: { path: '/healthz/ready', port: HEALTH_PORT }, periodSeconds: 2, failureThreshold: 3, timeoutSeconds: 2 },
              livenessProbe: { tcpSocket: { port: HEALTH_PORT }, initialDelaySeconds: 10, periodSeconds: 10, failureThreshold: 6 },
              resources: resources(v),
              securityContext: containerSecurity(lowPorts ? ['NET_BIND_SERVICE'] : []),
              volumeMounts: [TMP_MOUNT, CONTROL_PLANE_CA_MOUNT],
            }],
            volumes: [TMP_VOLUME, CONTROL_PLANE_CA_VOLUME],
          },
        },
      },
    },
    {
      apiVersion: 'v1', kind: 'Service', metadata: meta(name, namespace, l),
      spec: {
        type: serviceType,
        selector,
        ports: [
          ...ports.map((p) => ({ name: p.name, port: p.service, targetPort: p.container, protocol: 'TCP' })),
          ...(kind === 'ingress' ? [{ name: 'status-port', port: HEALTH_PORT, targetPort: HEALTH_PORT, protocol: 'TCP' }] : []),
        ],
        ...(serviceType !== 'ClusterIP' ? { externalTrafficPolicy: v.get('externalTrafficPolicy') } : {}),
      },
    },
  ];
  if (scaled) objects.push(pdb(name, namespace, l, selector));
  if (scaled && !v.bool('sourceAddressPool')) objects.push(hpa(name, namespace, l, v.int('replicas'), v.int('maxReplicas')));
  if (kind === 'egress') objects.push(...egressNetworkPolicies(name, namespace, selector, ports, v.list('egressNamespaces')));
  return objects;
}

/**
 * The NetworkPolicy set that makes the egress gateway the only way out: in each listed namespace
 * pods may reach cluster DNS, any pod in the cluster, and nothing outside it; the gateway itself
 * accepts proxy traffic only from those namespaces (and probes on the health port from anywhere).
 */
export function egressNetworkPolicies(name: string, namespace: string, selector: Record<string, string>, ports: readonly PortMapping[], namespaces: readonly string[]): K8sObject[] {
  const l = labels(name, 'egress-network-policy');
  const out: K8sObject[] = namespaces.map((ns) => ({
    apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: meta(`${name}-only-way-out`, ns, l),
    spec: {
      podSelector: {},
      policyTypes: ['Egress'],
      egress: [
        { to: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'kube-system' } }, podSelector: { matchLabels: { 'k8s-app': 'kube-dns' } } }], ports: [{ protocol: 'UDP', port: 53 }, { protocol: 'TCP', port: 53 }] },
        // Pods (any namespace) only: no ipBlock, so addresses outside the cluster are unreachable except through the gateway's pods.
        { to: [{ namespaceSelector: {} }] },
      ],
    },
  }));
  if (namespaces.length > 0) {
    out.push({
      apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: meta(`${name}-clients`, namespace, l),
      spec: {
        podSelector: { matchLabels: selector },
        policyTypes: ['Ingress'],
        ingress: [
          { from: namespaces.map((ns) => ({ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': ns } } })), ports: ports.map((p) => ({ protocol: 'TCP', port: p.container })) },
          { ports: [{ protocol: 'TCP', port: HEALTH_PORT }, { protocol: 'TCP', port: 15090 }] },
        ],
      },
    });
  }
  return out;
}
