/**
 * The egress-router profile in the shape of OpenShift's egress router (redirect mode): one replica,
 * pinned, the pod annotated for a macvlan interface, and a container named `egress-router` carrying
 * EGRESS_SOURCE, EGRESS_GATEWAY, EGRESS_DESTINATION and EGRESS_ROUTER_MODE. Where OpenShift ran a
 * privileged init container, `tollgate run --role router` keeps the kernel rules itself (address,
 * default route, nftables DNAT/SNAT) for as long as it runs, so it needs NET_ADMIN (addresses,
 * routes, nftables) and NET_RAW (the gratuitous ARP) — as root, because a non-root process does not
 * get added capabilities — and nothing else: no privilege, no escalation, read-only root.
 * IPv4 forwarding is asked for with the pod's `net.ipv4.ip_forward` sysctl (the kubelet must allow
 * it: --allowed-unsafe-sysctls), since /proc/sys is read-only in an unprivileged container.
 */
import {
  COMMON_VALUES, CONTROL_PLANE_ADDRESS_VALUES, controlPlaneFlags, HEALTH_PORT, isIpAddress, labelFlag, labels, meta, POD_ENV, podSecurity,
  RESOURCE_VALUES, resources, serviceAccount, TMP_MOUNT, TMP_VOLUME, type K8sObject, CONTROL_PLANE_CA_MOUNT, CONTROL_PLANE_CA_VOLUME } from './common.js';
import type { ValueSpecs, Values } from './values.js';

export const EGRESS_ROUTER_VALUES: ValueSpecs = {
  ...COMMON_VALUES,
  ...CONTROL_PLANE_ADDRESS_VALUES,
  ...RESOURCE_VALUES,
  name: { default: 'egress-router', help: 'Deployment/Service name (pod label app=NAME)' },
  source: { default: '192.0.2.99', help: 'EGRESS_SOURCE: the reserved source IP', check: (v) => (v ? isIpAddress(v) : 'must be set') },
  gateway: { default: '192.0.2.1', help: 'EGRESS_GATEWAY: the next hop on the macvlan network', check: (v) => (v ? isIpAddress(v) : 'must be set') },
  destination: { default: '80 tcp 203.0.113.25;443 tcp 203.0.113.25', help: 'EGRESS_DESTINATION lines, separated by ";" (PORT PROTO IP [PORT], or a fallback IP)' },
  mode: { default: 'init', help: 'EGRESS_ROUTER_MODE (init = redirect)' },
  node: { default: '', help: 'the node that holds the source address (nodeName); empty = any' },
  interface: { default: 'macvlan0', help: 'interface that gets EGRESS_SOURCE (OpenShift names the macvlan it adds macvlan0)' },
};

export function egressRouter(namespace: string, v: Values): K8sObject[] {
  const name = v.get('name');
  const l = labels(name, 'egress-router');
  const selector = { app: name };
  const destination = v.get('destination').split(';').map((s) => s.trim()).filter(Boolean);
  const localPorts = destination.map((line) => /^(\d+)\s/.exec(line)?.[1]).filter((p): p is string => p !== undefined).map(Number);
  const env = [
    { name: 'EGRESS_SOURCE', value: v.get('source') },
    { name: 'EGRESS_GATEWAY', value: v.get('gateway') },
    { name: 'EGRESS_DESTINATION', value: destination.join('\n') + '\n' },
    { name: 'EGRESS_ROUTER_MODE', value: v.get('mode') },
  ];
  return [
    serviceAccount(name, namespace, l),
    {
      apiVersion: 'apps/v1', kind: 'Deployment', metadata: meta(name, namespace, l),
      spec: {
        replicas: 1,
        strategy: { type: 'Recreate' },
        selector: { matchLabels: selector },
        template: {
          metadata: { labels: l, annotations: { 'pod.network.openshift.io/assign-macvlan': 'true' } },
          spec: {
            serviceAccountName: name,
            securityContext: { ...podSecurity(false), runAsNonRoot: false, runAsUser: 0, runAsGroup: 0, sysctls: [{ name: 'net.ipv4.ip_forward', value: '1' }] },
            ...(v.get('node') ? { nodeName: v.get('node') } : {}),
            containers: [{
              name: 'egress-router',
              image: v.get('image'),
              imagePullPolicy: v.get('imagePullPolicy'),
              args: ['run', '--role', 'router', ...controlPlaneFlags(v, namespace), '--namespace', '$(POD_NAMESPACE)', '--name', '$(POD_NAME)', '--labels', labelFlag(l), '--router-interface', v.get('interface'), '--status-ports', 'on'],
              env: [...POD_ENV, ...env],
              ports: [...new Set(localPorts)].map((p) => ({ name: `tcp-${p}`, containerPort: p, protocol: 'TCP' })).concat([{ name: 'status-port', containerPort: HEALTH_PORT, protocol: 'TCP' }]),
              readinessProbe: { httpGet: { path: '/healthz/ready', port: HEALTH_PORT }, periodSeconds: 2, failureThreshold: 3 },
              resources: resources(v),
              securityContext: { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, runAsNonRoot: false, runAsUser: 0, runAsGroup: 0, capabilities: { drop: ['ALL'], add: ['NET_ADMIN', 'NET_RAW'] } },
              volumeMounts: [TMP_MOUNT, CONTROL_PLANE_CA_MOUNT],
            }],
            volumes: [TMP_VOLUME, CONTROL_PLANE_CA_VOLUME],
          },
        },
      },
    },
    {
      apiVersion: 'v1', kind: 'Service', metadata: meta(name, namespace, l),
      spec: { type: 'ClusterIP', selector, ports: [...new Set(localPorts)].map((p) => ({ name: `tcp-${p}`, port: p, targetPort: p, protocol: 'TCP' })) },
    },
  ];
}
