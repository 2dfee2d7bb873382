/**
 * What every generated workload shares: labels, the image, the restricted security context (uid
 * 1337, no privilege escalation, read-only root, every capability dropped), the pod identity from
 * the downward API, and a writable /tmp on an emptyDir.
 */
import { isIP } from 'node:net';
import { ROOT_CERT_CONFIGMAP, ROOT_CERT_CONFIGMAP_KEY } from '../controlplane/kubernetes/kinds.js';
import { DNS_LABEL, isInt, oneOf, QUANTITY, type ValueSpecs, type Values } from './values.js';

export type K8sObject = Record<string, unknown>;

/** The uid the image runs as (Istio's proxy uid, so `tollgate init` capture rules exempt it). */
export const PROXY_UID = 1337;
export const HEALTH_PORT = 15021;
export const CONTROL_PLANE_PORT = 15010;

export const COMMON_VALUES: ValueSpecs = {
  image: { default: 'tollgate:0.1.0', help: 'container image built from the Dockerfile', check: (v) => (v.trim() ? undefined : 'must not be empty') },
  imagePullPolicy: { default: 'IfNotPresent', help: 'Always, IfNotPresent or Never', check: oneOf('Always', 'IfNotPresent', 'Never') },
};

export const RESOURCE_VALUES: ValueSpecs = {
  cpuRequest: { default: '100m', help: 'CPU request per replica', check: QUANTITY },
  memoryRequest: { default: '128Mi', help: 'memory request per replica', check: QUANTITY },
  memoryLimit: { default: '512Mi', help: 'memory limit per replica', check: QUANTITY },
};

export const CONTROL_PLANE_ADDRESS_VALUES: ValueSpecs = {
  controlPlaneNamespace: { default: '', help: 'namespace of the control plane (default: --namespace)', check: (v) => (v === '' ? undefined : DNS_LABEL(v)) },
};

export const isIpAddress = (v: string): string | undefined => (v === '' || isIP(v) !== 0 ? undefined : 'must be an IP address');
export const replicasSpec = (dflt: number): ValueSpecs => ({ replicas: { default: String(dflt), help: 'replicas (the minimum when autoscaled)', check: isInt(1, 100) } });

export function labels(name: string, component: string): Record<string, string> {
  return { app: name, 'app.kubernetes.io/name': name, 'app.kubernetes.io/component': component, 'app.kubernetes.io/part-of': 'tollgate', 'app.kubernetes.io/managed-by': 'tollgate-manifest' };
}

/** The pod's labels as `--labels k=v,...`: the proxy matches Gateway selectors and router Deployments by them. */
export function labelFlag(l: Record<string, string>): string {
  return Object.entries(l).map(([k, v]) => `${k}=${v}`).join(',');
}

export function meta(name: string, namespace: string | undefined, objectLabels: Record<string, string>): K8sObject {
  return { name, ...(namespace !== undefined ? { namespace } : {}), labels: objectLabels };
}

/**
 * The control plane serves a certificate its own CA issues; proxies verify it with the CA's roots,
 * which the control plane publishes in every namespace as ConfigMap `istio-ca-root-cert` (key
 * `root-cert.pem`, Istio's name and mount path). During a root rotation it holds the old and the
 * new root; the kubelet refreshes the mount and the proxy re-reads it at every reconnect.
 */
export const ROOT_CERT_DIR = '/var/run/secrets/istio';
export const SERVICE_ACCOUNT_TOKEN = '/var/run/secrets/kubernetes.io/serviceaccount/token';
export const CONTROL_PLANE_CA_MOUNT: K8sObject = { name: 'istiod-ca-cert', mountPath: ROOT_CERT_DIR, readOnly: true };
export const CONTROL_PLANE_CA_VOLUME: K8sObject = { name: 'istiod-ca-cert', configMap: { name: ROOT_CERT_CONFIGMAP, items: [{ key: ROOT_CERT_CONFIGMAP_KEY, path: ROOT_CERT_CONFIGMAP_KEY }] } };
export const CONTROL_PLANE_CA_FILE = `${ROOT_CERT_DIR}/${ROOT_CERT_CONFIGMAP_KEY}`;

/** `tollgate run` flags that reach the control plane: address, CA, token. */
export function controlPlaneFlags(v: Values, namespace: string): string[] {
  return ['--control-plane', controlPlaneAddress(v, namespace), '--control-plane-ca', CONTROL_PLANE_CA_FILE, '--bootstrap-token-file', SERVICE_ACCOUNT_TOKEN];
}

export function controlPlaneAddress(v: Values, namespace: string): string {
  return `tollgate-control-plane.${v.get('controlPlaneNamespace') || namespace}.svc:${CONTROL_PLANE_PORT}`;
}

/** Container security context: nothing but the listed capabilities, no escalation, read-only root. */
export function containerSecurity(add: readonly string[] = []): K8sObject {
  return {
    allowPrivilegeEscalation: false,
    readOnlyRootFilesystem: true,
    runAsNonRoot: true,
    runAsUser: PROXY_UID,
    runAsGroup: PROXY_UID,
    capabilities: { drop: ['ALL'], ...(add.length ? { add: [...add] } : {}) },
  };
}

/**
 * Pod security context. A non-root process gets no use of an added capability under most runtimes,
 * so a port below 1024 is opened by the kernel setting Istio's gateways use as well (a namespaced,
 * "safe" sysctl); NET_BIND_SERVICE is added too for runtimes that do grant it.
 */
export function podSecurity(lowPorts: boolean): K8sObject {
  return {
    runAsNonRoot: true,
    runAsUser: PROXY_UID,
    runAsGroup: PROXY_UID,
    fsGroup: PROXY_UID,
    seccompProfile: { type: 'RuntimeDefault' },
    ...(lowPorts ? { sysctls: [{ name: 'net.ipv4.ip_unprivileged_port_start', value: '0' }] } : {}),
  };
}

export const POD_ENV: readonly K8sObject[] = [
  { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
  { name: 'POD_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
  { name: 'NODE_NAME', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } },
  { name: 'INSTANCE_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
];

export function resources(v: Values): K8sObject {
  return { requests: { cpu: v.get('cpuRequest'), memory: v.get('memoryRequest') }, limits: { memory: v.get('memoryLimit') } };
}

/** Node's own temp files go to an emptyDir, so the root filesystem can stay read-only. */
export const TMP_VOLUME: K8sObject = { name: 'tmp', emptyDir: { medium: 'Memory', sizeLimit: '16Mi' } };
export const TMP_MOUNT: K8sObject = { name: 'tmp', mountPath: '/tmp' };

export function serviceAccount(name: string, namespace: string, l: Record<string, string>): K8sObject {
  return { apiVersion: 'v1', kind: 'ServiceAccount', metadata: meta(name, namespace, l), automountServiceAccountToken: true };
}

export function pdb(name: string, namespace: string, l: Record<string, string>, selector: Record<string, string>): K8sObject {
  return { apiVersion: 'policy/v1', kind: 'PodDisruptionBudget', metadata: meta(name, namespace, l), spec: { minAvailable: 1, selector: { matchLabels: selector } } };
}

export function hpa(name: string, namespace: string, l: Record<string, string>, min: number, max: number): K8sObject {
  return {
    apiVersion: 'autoscaling/v2', kind: 'HorizontalPodAutoscaler', metadata: meta(name, namespace, l),
    spec: {
      scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name },
      minReplicas: min, maxReplicas: Math.max(min, max),
      metrics: [{ type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 80 } } }],
    },
  };
}

/** Spread replicas over nodes when the scheduler can. */
export function spreadOverNodes(selector: Record<string, string>): K8sObject {
  return { podAntiAffinity: { preferredDuringSchedulingIgnoredDuringExecution: [{ weight: 100, podAffinityTerm: { topologyKey: 'kubernetes.io/hostname', labelSelector: { matchLabels: selector } } }] } };
}
