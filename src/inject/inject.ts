/**
 * Sidecar injection, as `istioctl kube-inject` does it: a workload's pod template gets the capture
 * rules (an init container running `tollgate init`, or the CNI annotation) and the sidecar
 * container (`tollgate run --role sidecar`, uid 1337, identity from the downward API, readiness on
 * 15021, metrics on 15090). Pure: plain objects in, plain objects out.
 *
 * Honoured pod-template annotations: sidecar.istio.io/inject ("false" skips; the label of the same
 * name too), traffic.sidecar.istio.io/includeOutboundIPRanges, excludeOutboundIPRanges,
 * includeInboundPorts, excludeInboundPorts, excludeOutboundPorts, sidecar.istio.io/interceptionMode.
 */
import { DEFAULT_CAPTURE } from '../capture/rules.js';
import { CONTROL_PLANE_CA_FILE, CONTROL_PLANE_CA_MOUNT, CONTROL_PLANE_CA_VOLUME, SERVICE_ACCOUNT_TOKEN } from '../manifest/common.js';

export interface InjectOptions {
  readonly image: string;
  /** The control plane the sidecar takes its snapshot from (HOST:PORT). */
  readonly controlPlane: string;
  /** true: the CNI plugin writes the rules (no init container, no NET_ADMIN in the pod). */
  readonly cni: boolean;
}

type Obj = Record<string, unknown>;

const WORKLOADS = new Set(['Deployment', 'StatefulSet', 'DaemonSet', 'ReplicaSet', 'Job', 'ReplicationController']);
const STATUS_PORTS = [15090, 15021, 15020];
const INBOUND_EXCLUDED_ALWAYS = STATUS_PORTS;

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const obj = (parent: Obj, key: string): Obj => {
  const v = parent[key];
  if (isObj(v)) return v;
  const created: Obj = {};
  parent[key] = created;
  return created;
};
const strings = (v: unknown): Record<string, string> => (isObj(v) ? Object.fromEntries(Object.entries(v).filter((e): e is [string, string] => typeof e[1] === 'string')) : {});

export type InjectResult = { readonly injected: true; readonly doc: Obj } | { readonly injected: false; readonly doc: unknown; readonly why: string };

/** The pod template (metadata + spec) of a Pod or a workload; undefined for other kinds. */
function podTemplate(doc: Obj): Obj | undefined {
  if (doc['kind'] === 'Pod') return doc;
  if (!WORKLOADS.has(String(doc['kind']))) return undefined;
  const spec = doc['spec'];
  return isObj(spec) && isObj(spec['template']) ? spec['template'] : undefined;
}

/** The `tollgate init` arguments for a pod, from its annotations (istio-iptables flags). */
export function initArgs(annotations: Readonly<Record<string, string>>): string[] {
  const a = (k: string): string | undefined => annotations[`traffic.sidecar.istio.io/${k}`];
  const mode = annotations['sidecar.istio.io/interceptionMode'] === 'TPROXY' ? 'TPROXY' : 'REDIRECT';
  const excludeInbound = [...INBOUND_EXCLUDED_ALWAYS.map(String), ...(a('excludeInboundPorts') ?? '').split(',').map((s) => s.trim()).filter(Boolean)];
  return [
    'init',
    '-p', String(DEFAULT_CAPTURE.proxyPort),
    '-z', String(DEFAULT_CAPTURE.inboundPort),
    '-u', String(DEFAULT_CAPTURE.proxyUid),
    '-m', mode,
    '-i', a('includeOutboundIPRanges') ?? '*',
    '-x', a('excludeOutboundIPRanges') ?? '',
    '-b', a('includeInboundPorts') ?? '*',
    '-d', [...new Set(excludeInbound)].join(','),
    ...(a('excludeOutboundPorts') ? ['-o', a('excludeOutboundPorts')!] : []),
  ];
}

function fieldEnv(name: string, fieldPath: string): Obj {
  return { name, valueFrom: { fieldRef: { fieldPath } } };
}

function sidecarContainer(o: InjectOptions, mode: string): Obj {
  return {
    name: 'istio-proxy',
    image: o.image,
    // The stream is TLS (CA from the control plane's ConfigMap) and the pod authenticates with its service-account token.
    args: ['run', '--role', 'sidecar', '--control-plane', o.controlPlane, '--control-plane-ca', CONTROL_PLANE_CA_FILE, '--bootstrap-token-file', SERVICE_ACCOUNT_TOKEN, '--interception-mode', mode, '--admin', '127.0.0.1:15000'],
    env: [fieldEnv('POD_NAME', 'metadata.name'), fieldEnv('POD_NAMESPACE', 'metadata.namespace'), fieldEnv('INSTANCE_IP', 'status.podIP'), fieldEnv('SERVICE_ACCOUNT', 'spec.serviceAccountName'), fieldEnv('NODE_NAME', 'spec.nodeName')],
    ports: [{ containerPort: 15090, name: 'http-envoy-prom', protocol: 'TCP' }],
    readinessProbe: { httpGet: { path: '/healthz/ready', port: 15021 }, initialDelaySeconds: 1, periodSeconds: 2, failureThreshold: 30 },
    securityContext: {
      runAsUser: DEFAULT_CAPTURE.proxyUid,
      runAsGroup: DEFAULT_CAPTURE.proxyGid,
      runAsNonRoot: true,
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      // TPROXY needs IP_TRANSPARENT on the proxy's listeners.
      capabilities: mode === 'TPROXY' ? { add: ['NET_ADMIN'], drop: ['ALL'] } : { drop: ['ALL'] },
    },
    volumeMounts: [{ name: 'istio-podinfo', mountPath: '/etc/istio/pod' }, CONTROL_PLANE_CA_MOUNT],
  };
}

function initContainer(o: InjectOptions, annotations: Readonly<Record<string, string>>): Obj {
  return {
    name: 'istio-init',
    image: o.image,
    args: initArgs(annotations),
    securityContext: { runAsUser: 0, runAsNonRoot: false, allowPrivilegeEscalation: false, capabilities: { add: ['NET_ADMIN', 'NET_RAW'], drop: ['ALL'] } },
  };
}

export function injectDocument(doc: unknown, o: InjectOptions): InjectResult {
  if (!isObj(doc)) return { injected: false, doc, why: 'not an object' };
  const kind = String(doc['kind'] ?? '');
  const template = podTemplate(doc);
  if (!template) return { injected: false, doc, why: `${kind || 'document'}: no pod template` };
  const meta = obj(template, 'metadata');
  const annotations = strings(meta['annotations']);
  const labels = strings(meta['labels']);
  const name = isObj(doc['metadata']) ? String(doc['metadata']['name'] ?? '') : '';
  const flag = annotations['sidecar.istio.io/inject'] ?? labels['sidecar.istio.io/inject'];
  if (flag === 'false') return { injected: false, doc, why: `${kind} ${name}: sidecar.istio.io/inject is "false"` };
  if (isObj(doc['spec']) && isObj(template['spec']) && template['spec']['hostNetwork'] === true) return { injected: false, doc, why: `${kind} ${name}: hostNetwork pods are not injected (the rules would capture the node's traffic)` };
  const out = structuredClone(doc);
  const t = podTemplate(out)!;
  const spec = obj(t, 'spec');
  const containers = Array.isArray(spec['containers']) ? (spec['containers'] as unknown[]) : [];
  if (containers.some((c) => isObj(c) && c['name'] === 'istio-proxy')) return { injected: false, doc, why: `${kind} ${name}: already has an istio-proxy container` };
  const mode = annotations['sidecar.istio.io/interceptionMode'] === 'TPROXY' ? 'TPROXY' : 'REDIRECT';
  spec['containers'] = [...containers, sidecarContainer(o, mode)];
  if (!o.cni) spec['initContainers'] = [...(Array.isArray(spec['initContainers']) ? (spec['initContainers'] as unknown[]) : []), initContainer(o, annotations)];
  spec['volumes'] = [...(Array.isArray(spec['volumes']) ? (spec['volumes'] as unknown[]) : []), { name: 'istio-podinfo', downwardAPI: { items: [{ path: 'labels', fieldRef: { fieldPath: 'metadata.labels' } }, { path: 'annotations', fieldRef: { fieldPath: 'metadata.annotations' } }] } }, CONTROL_PLANE_CA_VOLUME];
  const tm = obj(t, 'metadata');
  const ann = obj(tm, 'annotations');
  ann['sidecar.istio.io/status'] = JSON.stringify({ initContainers: o.cni ? [] : ['istio-init'], containers: ['istio-proxy'], volumes: ['istio-podinfo', 'istiod-ca-cert'] });
  if (o.cni) ann['k8s.v1.cni.cncf.io/networks'] = 'istio-cni';
  ann['prometheus.io/scrape'] ??= 'true';
  ann['prometheus.io/port'] ??= '15020';
  ann['prometheus.io/path'] ??= '/stats/prometheus';
  return { injected: true, doc: out };
}
