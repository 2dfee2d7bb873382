/**
 * Turns raw documents into validated, typed resources. This is the trust boundary: what leaves
 * here has a known kind, a name and namespace, a spec that passed its schema, and a file:line.
 */
import type { Diagnostic, ResourceRef, SourcePos } from './diagnostics.js';
import { type KindName, lookupKind, knownVersionsOf, KINDS } from './kinds.js';
import type { RawDocument } from './load.js';
import { any, obj, openObj, str, stringMap, validate, type Finding, type Schema } from './schema/dsl.js';
import { ISTIO_SCHEMAS } from './schema/istio.js';
import { K8S_SCHEMAS } from './schema/kubernetes.js';
import { envoyBootstrap } from './schema/envoy.js';
import { GATEWAY_API_SCHEMAS } from './schema/gateway-api.js';
import type { StringMap } from './types.js';
import { nearest } from './suggest.js';

export interface Resource<S = unknown> {
  readonly kind: KindName;
  readonly apiVersion: string;
  readonly name: string;
  readonly namespace: string;
  readonly labels: StringMap;
  readonly annotations: StringMap;
  readonly spec: S;
  /** The whole object, for kinds whose payload is not under `spec` (Endpoints, Secret, Pod status). */
  readonly body: Readonly<Record<string, unknown>>;
  readonly ref: ResourceRef;
  readonly doc: RawDocument;
}

const metadataSchema: Schema = openObj({ name: str(), namespace: str(), labels: stringMap, annotations: stringMap, generateName: str() }, ['name']);
const DEFAULT_NAMESPACE = 'default';

export function decodeResources(docs: readonly RawDocument[]): { resources: Resource[]; diagnostics: Diagnostic[] } {
  const resources: Resource[] = [];
  const diagnostics: Diagnostic[] = [];
  const seen = new Map<string, Resource>();
  // A document without apiVersion most likely meant the version its neighbours in the file use.
  const versionsInFile = new Map<string, string>();
  for (const doc of docs) {
    for (const { value } of flattenLists(doc.value)) {
      if (isRecord(value) && typeof value['kind'] === 'string' && typeof value['apiVersion'] === 'string') {
        versionsInFile.set(`${doc.file}\u0000${value['kind']}`, value['apiVersion']);
      }
    }
  }
  for (const doc of docs) {
    for (const { value, path } of flattenLists(doc.value)) {
      const r = decodeCached(doc, value, path, diagnostics, versionsInFile);
      if (!r) continue;
      const key = `${r.kind}/${r.namespace}/${r.name}`;
      const prev = seen.get(key);
      if (prev && r.kind !== 'EnvoyBootstrap') {
        diagnostics.push({
          severity: 'error',
          code: 'TG_CONFIG_DUPLICATE',
          message: `${r.ref.kind} ${r.name}.${r.namespace} is defined twice; the first definition is at ${prev.ref.pos.file}:${prev.ref.pos.line}`,
          resource: r.ref,
          hint: 'remove one of the two definitions or rename one',
        });
        continue;
      }
      seen.set(key, r);
      resources.push(r);
    }
  }
  return { resources, diagnostics };
}

/**
 * Decoding is a pure function of the document (and, for a missing apiVersion, of its neighbours in
 * the same file, which are unchanged when the document object is reused from a ParseCache), so its
 * result is kept per document object: a reload re-validates only documents of changed files.
 */
const decoded = new WeakMap<object, { resource: Resource | undefined; diagnostics: Diagnostic[] }>();

function decodeCached(doc: RawDocument, value: unknown, path: (string | number)[], out: Diagnostic[], versionsInFile: ReadonlyMap<string, string>): Resource | undefined {
  const cacheKey = value !== null && typeof value === 'object' ? value : undefined;
  const hit = cacheKey ? decoded.get(cacheKey) : undefined;
  if (hit) {
    out.push(...hit.diagnostics);
    return hit.resource;
  }
  const local: Diagnostic[] = [];
  const resource = decodeOne(doc, value, path, local, versionsInFile);
  if (cacheKey) decoded.set(cacheKey, { resource, diagnostics: local });
  out.push(...local);
  return resource;
}

/** `kind: List` (kubectl get -o yaml) holds its objects under `items`. */
function flattenLists(value: unknown): { value: unknown; path: (string | number)[] }[] {
  if (isRecord(value) && typeof value['kind'] === 'string' && value['kind'].endsWith('List') && Array.isArray(value['items'])) {
    return value['items'].map((item, i) => ({ value: item, path: ['items', i] }));
  }
  return [{ value, path: [] }];
}

const HELM_VALUE_KEYS = new Set(['defaults', 'replicaCount', 'image', 'imagePullSecrets', 'service', 'resources', 'autoscaling', 'global', 'podAnnotations', 'nodeSelector']);
function looksLikeHelmValues(value: Record<string, unknown>): boolean {
  const keys = Object.keys(value);
  return keys.length > 0 && keys.every((k) => HELM_VALUE_KEYS.has(k));
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function decodeOne(doc: RawDocument, value: unknown, base: (string | number)[], out: Diagnostic[], versionsInFile: ReadonlyMap<string, string>): Resource | undefined {
  const pos = { file: doc.file, line: base.length === 0 ? doc.line : doc.lineOf(base) };
  if (!isRecord(value)) {
    out.push({ severity: 'error', code: 'TG_CONFIG_NOT_OBJECT', message: `document is ${Array.isArray(value) ? 'a list' : typeof value}, not a Kubernetes object`, pos });
    return undefined;
  }
  const kindField = value['kind'];
  const apiVersionField = value['apiVersion'];
  if (kindField === undefined) {
    if ('static_resources' in value || 'admin' in value) return decodeEnvoy(doc, value, base, out);
    if (looksLikeMeshConfig(value)) return meshConfigResource(doc, value, value, base);
    if (looksLikeHelmValues(value)) {
      out.push({
        severity: 'info',
        code: 'TG_CONFIG_HELM_VALUES',
        message: 'Helm chart values, not a Kubernetes object: Tollgate reads what the chart renders (the gateway Deployment\'s pod labels and its Service), so this file is ignored',
        pos,
        hint: 'render the chart (helm template) and pass the rendered Deployment and Service, or write them by hand',
      });
      return undefined;
    }
    out.push({
      severity: 'warning',
      code: 'TG_CONFIG_NO_KIND',
      message: `document has no "kind" (top-level keys: ${Object.keys(value).slice(0, 5).join(', ')}); it is not a Kubernetes object and is ignored`,
      pos,
      hint: 'if this is Helm values or another tool\'s input, keep it out of the paths given to tollgate',
    });
    return undefined;
  }
  if (typeof kindField !== 'string') {
    out.push({ severity: 'error', code: 'TG_CONFIG_INVALID', message: 'kind must be a string', pos: { file: doc.file, line: doc.lineOf([...base, 'kind']) } });
    return undefined;
  }
  const meta = isRecord(value['metadata']) ? value['metadata'] : {};
  const name = typeof meta['name'] === 'string' ? meta['name'] : '';
  const apiVersion = typeof apiVersionField === 'string' ? apiVersionField : undefined;
  const found = lookupKind(kindField, apiVersion);
  if (!found) {
    const versions = knownVersionsOf(kindField);
    out.push(
      versions.length > 0
        ? { severity: 'error', code: 'TG_CONFIG_UNKNOWN_VERSION', message: `${kindField} ${name}: apiVersion "${apiVersion}" is not supported; known: ${versions.join(', ')}`, pos: { file: doc.file, line: doc.lineOf([...base, 'apiVersion']) }, hint: `use apiVersion: ${versions[0]}` }
        : unknownKind(kindField, apiVersion, name, pos),
    );
    return undefined;
  }
  const { kind, info } = found;
  const assumedVersion = versionsInFile.get(`${doc.file}\u0000${kindField}`) ?? info.defaultApiVersion;
  const namespace = info.namespaced ? (typeof meta['namespace'] === 'string' ? meta['namespace'] : DEFAULT_NAMESPACE) : '';
  const ref: ResourceRef = { kind: info.yamlKind, name, namespace, pos };
  if (apiVersion === undefined) {
    out.push({
      severity: 'warning',
      code: 'TG_CONFIG_ASSUMED_VERSION',
      message: `no apiVersion; assumed ${assumedVersion}${assumedVersion === info.defaultApiVersion ? '' : ' (as the other ' + kindField + ' documents in this file)'}`,
      resource: ref,
      hint: `add "apiVersion: ${assumedVersion}" (kubectl would reject this document)`,
    });
  } else if (apiVersionField !== undefined && typeof apiVersionField !== 'string') {
    out.push({ severity: 'error', code: 'TG_CONFIG_INVALID', message: 'apiVersion must be a string', resource: ref });
    return undefined;
  }

  const findings = validate(value, topSchema(kind), base);
  let failed = false;
  for (const f of findings) {
    failed ||= f.severity === 'error';
    out.push(toDiagnostic(f, doc, ref, base.length));
  }
  if (failed) return undefined;

  return {
    kind,
    apiVersion: apiVersion ?? assumedVersion,
    name,
    namespace,
    labels: (meta['labels'] as StringMap | undefined) ?? {},
    annotations: (meta['annotations'] as StringMap | undefined) ?? {},
    spec: value['spec'] ?? {},
    body: value,
    ref,
    doc,
  };
}

function toDiagnostic(f: Finding, doc: RawDocument, ref: ResourceRef, baseLen: number): Diagnostic {
  // Paths inside a `kind: List` start with items[i]; the message should read from the object itself.
  const message = baseLen > 0 ? f.message.replace(/^items\[\d+\]\.?/, '') : f.message;
  return { severity: f.severity, code: f.code, message, resource: ref, pos: { file: doc.file, line: doc.lineOf(f.path) } };
}

// Istio accepts these with no spec at all (an AuthorizationPolicy with no spec denies nothing, a Sidecar with none is the default).
const SPEC_MAY_BE_EMPTY: ReadonlySet<KindName> = new Set(['Sidecar', 'AuthorizationPolicy', 'PeerAuthentication']);

const topCache = new Map<KindName, Schema>();
function topSchema(kind: KindName): Schema {
  const cached = topCache.get(kind);
  if (cached) return cached;
  const common = { apiVersion: str(), kind: str(), metadata: metadataSchema, status: any };
  let schema: Schema;
  const istio = ISTIO_SCHEMAS[kind];
  const k8s = K8S_SCHEMAS[kind];
  const gwapi = GATEWAY_API_SCHEMAS[kind];
  if (istio) schema = obj({ ...common, spec: istio }, SPEC_MAY_BE_EMPTY.has(kind) ? ['metadata'] : ['metadata', 'spec']);
  else if (k8s) schema = obj({ ...common, ...(k8s.spec ? { spec: k8s.spec } : {}), ...k8s.top }, ['metadata']);
  else if (gwapi) schema = obj({ ...common, spec: gwapi }, ['metadata', 'spec']);
  else schema = obj({ ...common, spec: any }, ['metadata']);
  topCache.set(kind, schema);
  return schema;
}

function decodeEnvoy(doc: RawDocument, value: Record<string, unknown>, base: (string | number)[], out: Diagnostic[]): Resource | undefined {
  const name = doc.file.replace(/^.*\//, '');
  const ref: ResourceRef = { kind: 'EnvoyBootstrap', name, namespace: '', pos: { file: doc.file, line: doc.line } };
  let failed = false;
  for (const f of validate(value, envoyBootstrap, base)) {
    failed ||= f.severity === 'error';
    out.push(toDiagnostic(f, doc, ref, base.length));
  }
  if (failed) return undefined;
  return { kind: 'EnvoyBootstrap', apiVersion: KINDS.EnvoyBootstrap.defaultApiVersion, name, namespace: '', labels: {}, annotations: {}, spec: value, body: value, ref, doc };
}

/**
 * Kinds that are common in the same manifests (Istio's, Kubernetes', Gateway API's) but that
 * Tollgate does not read: named as such, so they are not mistaken for typos.
 */
const KNOWN_NOT_READ = new Set([
  'ServiceAccount', 'ConfigMap', 'Role', 'RoleBinding', 'ClusterRole', 'ClusterRoleBinding', 'StatefulSet', 'DaemonSet',
  'ReplicaSet', 'Job', 'CronJob', 'Ingress', 'IngressClass', 'HorizontalPodAutoscaler', 'PodDisruptionBudget', 'Node',
  'PersistentVolumeClaim', 'PersistentVolume', 'StorageClass', 'LimitRange', 'ResourceQuota', 'PriorityClass',
  'CustomResourceDefinition', 'MutatingWebhookConfiguration', 'ValidatingWebhookConfiguration', 'APIService',
  'EnvoyFilter', 'WorkloadGroup', 'ProxyConfig', 'RequestAuthentication', 'Telemetry', 'WasmPlugin', 'TrafficExtension',
  'IstioOperator', 'MeshConfig', 'MeshNetworks', 'GRPCRoute', 'UDPRoute', 'ReferenceGrant', 'GatewayClass', 'BackendTLSPolicy',
  'QuotaSpec', 'QuotaSpecBinding', 'HTTPAPISpec', 'HTTPAPISpecBinding', 'NetNamespace', 'HostSubnet', 'EgressFirewall', 'EgressNetworkPolicy',
  'Kustomization',
]);

function unknownKind(kindField: string, apiVersion: string | undefined, name: string, pos: SourcePos): Diagnostic {
  const what = `${apiVersion ?? '(no apiVersion)'} ${kindField} ${name}`;
  if (KNOWN_NOT_READ.has(kindField)) {
    return { severity: 'info', code: 'TG_CONFIG_KIND_NOT_READ', message: `${what}: Tollgate does not read ${kindField} objects; it is ignored`, pos, hint: 'see docs/config.md for the kinds Tollgate reads' };
  }
  const near = nearest(kindField, [...new Set(Object.values(KINDS).map((k) => k.yamlKind)), ...KNOWN_NOT_READ]);
  if (near !== undefined) {
    return { severity: 'error', code: 'TG_CONFIG_KIND_TYPO', message: `${what}: kind "${kindField}" is not a known kind; did you mean "${near}"? The object is ignored`, pos, hint: `write kind: ${near}` };
  }
  return { severity: 'warning', code: 'TG_CONFIG_UNKNOWN_KIND', message: `${what} is not a kind Tollgate knows; it is ignored`, pos, hint: 'see docs/config.md for the kinds Tollgate reads' };
}

// Top-level fields of Istio's MeshConfig (the `mesh` key of the istio ConfigMap, or a mesh config file).
const MESH_CONFIG_KEYS = new Set([
  'defaultConfig', 'outboundTrafficPolicy', 'trustDomain', 'trustDomainAliases', 'enableAutoMtls', 'meshMTLS', 'rootNamespace',
  'extensionProviders', 'defaultProviders', 'accessLogFile', 'accessLogEncoding', 'accessLogFormat', 'pathNormalization',
  'enableTracing', 'ingressClass', 'ingressService', 'ingressControllerMode', 'defaultServiceExportTo', 'defaultVirtualServiceExportTo',
  'defaultDestinationRuleExportTo', 'localityLbSetting', 'dnsRefreshRate', 'h2UpgradePolicy', 'inboundClusterStatName', 'outboundClusterStatName',
  'discoverySelectors', 'serviceSettings', 'caCertificates', 'connectTimeout', 'protocolDetectionTimeout', 'enablePrometheusMerge', 'tcpKeepalive',
]);

function looksLikeMeshConfig(value: Record<string, unknown>): boolean {
  const keys = Object.keys(value);
  return keys.length > 0 && keys.every((k) => MESH_CONFIG_KEYS.has(k));
}

function meshConfigResource(doc: RawDocument, spec: Record<string, unknown>, body: Record<string, unknown>, base: (string | number)[]): Resource {
  const pos = { file: doc.file, line: base.length === 0 ? doc.line : doc.lineOf(base) };
  return { kind: 'MeshConfig', apiVersion: 'meshconfig.istio.io/v1alpha1', name: 'mesh', namespace: '', labels: {}, annotations: {}, spec, body, ref: { kind: 'MeshConfig', name: 'mesh', namespace: '', pos }, doc };
}
