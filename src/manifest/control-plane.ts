/**
 * The control-plane profile: `tollgate control-plane --kubernetes` as a 2-replica Deployment spread
 * over nodes, its Service, a PodDisruptionBudget, and RBAC with exactly what the Kubernetes source
 * reads: get/list/watch on the watched kinds (one table with the source, so they cannot drift), and
 * Secrets only in the namespaces whose gateways terminate TLS, its CA's Secrets, the Leases of
 * floating source addresses in its own namespace, and the istio-ca-root-cert ConfigMaps it
 * publishes (its serving certificate comes from its own CA). With the validating webhook (on by
 * default) the control plane also serves AdmissionReviews on 15017 behind the Service's port 443,
 * with its certificate from a Secret the operator creates (the pod starts without it and the
 * webhook waits for it; `failurePolicy: Ignore` until `--set webhookFailurePolicy=Fail`).
 */
import { WATCHED_KINDS } from '../controlplane/kubernetes/kinds.js';
import {
  COMMON_VALUES, CONTROL_PLANE_PORT, containerSecurity, labels, meta, pdb, POD_ENV, podSecurity, replicasSpec, RESOURCE_VALUES,
  resources, serviceAccount, spreadOverNodes, TMP_MOUNT, TMP_VOLUME, type K8sObject,
} from './common.js';
import { DNS_LABEL, isBool, oneOf, type ValueSpecs, type Values } from './values.js';

export const WEBHOOK_PORT = 15017;
const WEBHOOK_CERT_DIR = '/etc/tollgate/webhook';

export const NAME = 'tollgate-control-plane';

export const CONTROL_PLANE_VALUES: ValueSpecs = {
  ...COMMON_VALUES,
  ...replicasSpec(2),
  ...RESOURCE_VALUES,
  secretNamespaces: {
    default: '',
    help: 'comma-separated namespaces whose Secrets gateways use (credentialName); default: --namespace. Secrets elsewhere are never read',
    check: (v) => v.split(',').filter(Boolean).map((n) => DNS_LABEL(n)).find(Boolean),
  },
  webhook: { default: 'true', help: 'serve the validating admission webhook and register it (ValidatingWebhookConfiguration)', check: isBool },
  webhookSecret: { default: 'tollgate-webhook-tls', help: 'kubernetes.io/tls Secret with the webhook certificate (for tollgate-control-plane.<ns>.svc)', check: DNS_LABEL },
  webhookCaBundle: { default: '', help: 'base64 PEM of the CA that signed the webhook certificate (caBundle)', check: (v) => (/^[A-Za-z0-9+/=]*$/.test(v) ? undefined : 'must be base64') },
  webhookFailurePolicy: { default: 'Ignore', help: 'Ignore (a control plane that is down blocks nothing) or Fail (nothing unchecked gets in)', check: oneOf('Ignore', 'Fail') },
};

function validatingWebhook(namespace: string, v: Values, l: Record<string, string>): K8sObject {
  const clientConfig = { service: { name: NAME, namespace, path: '/validate', port: 443 }, ...(v.get('webhookCaBundle') ? { caBundle: v.get('webhookCaBundle') } : {}) };
  const hook = (name: string, rules: K8sObject[], failurePolicy: string): K8sObject => ({
    name, clientConfig, rules, failurePolicy, sideEffects: 'None', admissionReviewVersions: ['v1'], timeoutSeconds: 10, matchPolicy: 'Equivalent',
  });
  const rule = (apiGroups: string[], resources: string[]): K8sObject => ({ apiGroups, apiVersions: ['*'], resources, operations: ['CREATE', 'UPDATE'], scope: '*' });
  return {
    apiVersion: 'admissionregistration.k8s.io/v1', kind: 'ValidatingWebhookConfiguration', metadata: meta(NAME, undefined, l),
    webhooks: [
      hook('istio.validation.tollgate.io', [rule(['networking.istio.io', 'security.istio.io'], ['*'])], v.get('webhookFailurePolicy')),
      hook('egressip.validation.tollgate.io', [rule(['k8s.ovn.org'], ['egressips'])], v.get('webhookFailurePolicy')),
      // Every Deployment passes through here, but only egress routers are checked: never block the rest on an outage.
      hook('egress-router.validation.tollgate.io', [rule(['apps'], ['deployments'])], 'Ignore'),
    ],
  };
}

/** Proxies authenticate with their service-account token, which the control plane checks by TokenReview. */
const TOKEN_REVIEW_RULE: K8sObject = { apiGroups: ['authentication.k8s.io'], resources: ['tokenreviews'], verbs: ['create'] };

/**
 * The CA's Secrets by name, read and watched (a watch by name is allowed by resourceNames); `create`
 * cannot be limited to a name: Kubernetes does not know it before the object exists.
 */
const CA_SECRET_RULES: K8sObject[] = [
  { apiGroups: [''], resources: ['secrets'], resourceNames: ['cacerts', 'istio-ca-secret'], verbs: ['get', 'list', 'watch'] },
  { apiGroups: [''], resources: ['secrets'], verbs: ['create'] },
];

/** The CA's roots, published as ConfigMap istio-ca-root-cert in every namespace and kept up to date. */
const ROOT_CERT_CONFIGMAP_RULE: K8sObject = { apiGroups: [''], resources: ['configmaps'], verbs: ['get', 'list', 'watch', 'create', 'update'] };

/** RBAC rules: the watched kinds grouped by API group, read-only; Secrets are granted per namespace instead. */
export function readRules(): K8sObject[] {
  const byGroup = new Map<string, string[]>();
  for (const k of WATCHED_KINDS) {
    if (k.kind === 'Secret' && k.group === '') continue;
    byGroup.set(k.group, [...new Set([...(byGroup.get(k.group) ?? []), k.plural])].sort());
  }
  return [...byGroup].sort(([a], [b]) => (a < b ? -1 : 1)).map(([group, resources]) => ({ apiGroups: [group], resources, verbs: ['get', 'list', 'watch'] }));
}

export function controlPlane(namespace: string, v: Values): K8sObject[] {
  const l = labels(NAME, 'control-plane');
  const selector = { app: NAME };
  const secretNamespaces = v.list('secretNamespaces').length ? v.list('secretNamespaces') : [namespace];
  const webhook = v.bool('webhook');
  const args = [
    'control-plane', '--kubernetes', '--listen', `0.0.0.0:${CONTROL_PLANE_PORT}`, '--tls-san', `${NAME}.${namespace}.svc`, ...secretNamespaces.flatMap((n) => ['--secrets-namespace', n]),
    ...(webhook ? ['--webhook-listen', `0.0.0.0:${WEBHOOK_PORT}`, '--webhook-tls-cert', `${WEBHOOK_CERT_DIR}/tls.crt`, '--webhook-tls-key', `${WEBHOOK_CERT_DIR}/tls.key`] : []),
    // Injection is served whenever the webhook is; the sidecar-injection profile decides which pods are sent.
    ...(webhook ? ['--inject-image', v.get('image'), '--inject-control-plane', `${NAME}.${namespace}.svc:${CONTROL_PLANE_PORT}`] : []),
  ];
  return [
    serviceAccount(NAME, namespace, l),
    { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', metadata: meta(NAME, undefined, l), rules: [...readRules(), TOKEN_REVIEW_RULE, ROOT_CERT_CONFIGMAP_RULE] },
    { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRoleBinding', metadata: meta(NAME, undefined, l), roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: NAME }, subjects: [{ kind: 'ServiceAccount', name: NAME, namespace }] },
    // Floating source addresses: one coordination.k8s.io Lease per address, in the control plane's namespace.
    { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', metadata: meta(`${NAME}-leases`, namespace, l), rules: [{ apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['get', 'list', 'create', 'update'] }] },
    { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding', metadata: meta(`${NAME}-leases`, namespace, l), roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: `${NAME}-leases` }, subjects: [{ kind: 'ServiceAccount', name: NAME, namespace }] },
    // The CA: reads the plugged-in `cacerts` or its own `istio-ca-secret`, and creates the latter on first start.
    { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', metadata: meta(`${NAME}-ca`, namespace, l), rules: CA_SECRET_RULES },
    { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding', metadata: meta(`${NAME}-ca`, namespace, l), roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: `${NAME}-ca` }, subjects: [{ kind: 'ServiceAccount', name: NAME, namespace }] },
    ...secretNamespaces.flatMap((ns) => [
      { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', metadata: meta(`${NAME}-secrets`, ns, l), rules: [{ apiGroups: [''], resources: ['secrets'], verbs: ['get', 'list', 'watch'] }] },
      { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding', metadata: meta(`${NAME}-secrets`, ns, l), roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: `${NAME}-secrets` }, subjects: [{ kind: 'ServiceAccount', name: NAME, namespace }] },
    ]),
    {
      apiVersion: 'apps/v1', kind: 'Deployment', metadata: meta(NAME, namespace, l),
      spec: {
        replicas: v.int('replicas'),
        selector: { matchLabels: selector },
        template: {
          metadata: { labels: l },
          spec: {
            serviceAccountName: NAME,
            securityContext: podSecurity(false),
            affinity: spreadOverNodes(selector),
            terminationGracePeriodSeconds: 30,
            containers: [{
              name: 'control-plane',
              image: v.get('image'),
              imagePullPolicy: v.get('imagePullPolicy'),
              args,
              env: [...POD_ENV],
              ports: [{ name: 'grpc-tollgate', containerPort: CONTROL_PLANE_PORT, protocol: 'TCP' }, ...(webhook ? [{ name: 'https-webhook', containerPort: WEBHOOK_PORT, protocol: 'TCP' }] : [])],
              // /ready is 503 until the first full sync: not ready, but alive.
              readinessProbe: { httpGet: { path: '/ready', port: CONTROL_PLANE_PORT, scheme: 'HTTPS' }, periodSeconds: 5, failureThreshold: 3 },
              livenessProbe: { tcpSocket: { port: CONTROL_PLANE_PORT }, initialDelaySeconds: 10, periodSeconds: 15, failureThreshold: 4 },
              resources: resources(v),
              securityContext: containerSecurity(),
              volumeMounts: [TMP_MOUNT, ...(webhook ? [{ name: 'webhook-tls', mountPath: WEBHOOK_CERT_DIR, readOnly: true }] : [])],
            }],
            // optional: the control plane runs without the Secret and its webhook starts once the kubelet projects it.
            volumes: [TMP_VOLUME, ...(webhook ? [{ name: 'webhook-tls', secret: { secretName: v.get('webhookSecret'), optional: true } }] : [])],
          },
        },
      },
    },
    {
      apiVersion: 'v1', kind: 'Service', metadata: meta(NAME, namespace, l),
      spec: {
        type: 'ClusterIP', selector,
        ports: [
          { name: 'grpc-tollgate', port: CONTROL_PLANE_PORT, targetPort: CONTROL_PLANE_PORT, protocol: 'TCP' },
          ...(webhook ? [{ name: 'https-webhook', port: 443, targetPort: WEBHOOK_PORT, protocol: 'TCP' }] : []),
        ],
      },
    },
    pdb(NAME, namespace, l, selector),
    ...(webhook ? [validatingWebhook(namespace, v, l)] : []),
  ];
}
