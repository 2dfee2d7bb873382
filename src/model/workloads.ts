/** Workloads known from the config: Pods (with IPs when status.podIP is set) and Deployment templates. */
import type { Resource } from '../config/decode.js';
import type { DeploymentSpec, PodSpec, PodStatus, StringMap } from '../config/types.js';

export interface Workload {
  readonly kind: 'Pod' | 'Deployment';
  readonly name: string;
  readonly namespace: string;
  readonly labels: StringMap;
  readonly ip?: string;
  readonly namedPorts: Readonly<Record<string, number>>;
  readonly resource: Resource;
}

function namedPorts(spec: PodSpec | undefined): Record<string, number> {
  const out: Record<string, number> = {};
  for (const c of spec?.containers ?? []) for (const p of c.ports ?? []) if (p.name && p.containerPort) out[p.name] = p.containerPort;
  return out;
}

export function workloadFromPod(pod: Resource<PodSpec>): Workload {
  const status = (pod.body['status'] ?? {}) as PodStatus;
  const ip = status.podIP ?? status.podIPs?.[0]?.ip;
  return { kind: 'Pod', name: pod.name, namespace: pod.namespace, labels: pod.labels, ...(ip ? { ip } : {}), namedPorts: namedPorts(pod.spec), resource: pod };
}

export function workloadFromDeployment(dep: Resource<DeploymentSpec>): Workload {
  return {
    kind: 'Deployment',
    name: dep.name,
    namespace: dep.namespace,
    labels: dep.spec.template.metadata?.labels ?? {},
    namedPorts: namedPorts(dep.spec.template.spec),
    resource: dep,
  };
}

const INJECTION_LABELS = ['istio-injection', 'tollgate-injection'] as const;

/**
 * Whether a workload runs a mesh sidecar: its pod spec already has the `istio-proxy` container
 * (injected), or its namespace is labelled for injection and the pod does not opt out with
 * `sidecar.istio.io/inject: "false"`.
 */
export function runsSidecar(w: Workload, namespaceLabels: StringMap | undefined): boolean {
  const template = w.kind === 'Pod' ? { metadata: { labels: w.labels, annotations: w.resource.annotations }, spec: w.resource.spec as PodSpec | undefined } : (w.resource.spec as DeploymentSpec).template;
  if ((template.spec?.containers ?? []).some((c) => c.name === 'istio-proxy')) return true;
  const flag = template.metadata?.annotations?.['sidecar.istio.io/inject'] ?? template.metadata?.labels?.['sidecar.istio.io/inject'];
  if (flag === 'false') return false;
  return flag === 'true' || INJECTION_LABELS.some((l) => namespaceLabels?.[l] === 'enabled');
}
