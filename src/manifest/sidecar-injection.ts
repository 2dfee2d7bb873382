/**
 * The sidecar-injection profile: a MutatingWebhookConfiguration that sends Pod creations in
 * namespaces labelled `istio-injection=enabled` or `tollgate-injection=enabled` to the control
 * plane's webhook (POST /inject), which adds what `tollgate inject` adds. Pods labelled
 * `sidecar.istio.io/inject: "false"` are never sent; the same annotation is honoured by the webhook.
 */
import { CONTROL_PLANE_ADDRESS_VALUES, labels, meta, type K8sObject } from './common.js';
import { NAME } from './control-plane.js';
import { oneOf, type ValueSpecs, type Values } from './values.js';

export const SIDECAR_INJECTION_VALUES: ValueSpecs = {
  ...CONTROL_PLANE_ADDRESS_VALUES,
  webhookCaBundle: { default: '', help: 'base64 PEM of the CA that signed the control plane\'s webhook certificate (caBundle)', check: (v) => (/^[A-Za-z0-9+/=]*$/.test(v) ? undefined : 'must be base64') },
  failurePolicy: { default: 'Ignore', help: 'Ignore (pods start without a sidecar when the control plane is down) or Fail', check: oneOf('Ignore', 'Fail') },
};

export function sidecarInjection(namespace: string, v: Values): K8sObject[] {
  const l = labels('tollgate-sidecar-injector', 'sidecar-injection');
  const clientConfig = { service: { name: NAME, namespace: v.get('controlPlaneNamespace') || namespace, path: '/inject', port: 443 }, ...(v.get('webhookCaBundle') ? { caBundle: v.get('webhookCaBundle') } : {}) };
  // A namespaceSelector cannot say "either label": one webhook per label.
  const hook = (name: string, label: string): K8sObject => ({
    name,
    clientConfig,
    rules: [{ apiGroups: [''], apiVersions: ['v1'], resources: ['pods'], operations: ['CREATE'], scope: 'Namespaced' }],
    namespaceSelector: { matchLabels: { [label]: 'enabled' } },
    objectSelector: { matchExpressions: [{ key: 'sidecar.istio.io/inject', operator: 'NotIn', values: ['false'] }] },
    failurePolicy: v.get('failurePolicy'),
    sideEffects: 'None',
    admissionReviewVersions: ['v1'],
    timeoutSeconds: 10,
    reinvocationPolicy: 'Never',
  });
  return [{
    apiVersion: 'admissionregistration.k8s.io/v1', kind: 'MutatingWebhookConfiguration', metadata: meta('tollgate-sidecar-injector', undefined, l),
    webhooks: [hook('istio-injection.inject.tollgate.io', 'istio-injection'), hook('tollgate-injection.inject.tollgate.io', 'tollgate-injection')],
  }];
}
