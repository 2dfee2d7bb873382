/** Secure by default: what AuthorizationPolicy / PeerAuthentication / ISTIO_MUTUAL ask that Tollgate cannot enforce is an error. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { analyzeModel } from '../../src/analyze/analyze.js';
import { buildSnapshot } from '../../src/snapshot/build.js';
import { identity, loadYaml } from '../helpers/pipeline.js';

const ap = (name: string, ns: string, spec: string, annotations = ''): string =>
  `apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: ${name}, namespace: ${ns}${annotations}}\nspec:\n${spec.replace(/^/gm, '  ')}\n---\n`;

function codes(yaml: string): [string, string][] {
  const c = loadYaml(yaml);
  return [...c.diagnostics, ...analyzeModel(c.model)].filter((d) => d.code.startsWith('TG_AUTHZ') || d.code.startsWith('TG_PEERAUTHN') || d.code === 'TG_DR_ISTIO_MUTUAL' || d.code === 'TG_KIND_NOT_ENFORCED').map((d) => [d.code, d.severity]);
}

test('principals, namespaces, request principals, source.principal/namespace, CUSTOM and targetRef are errors', () => {
  const yaml =
    ap('p', 'shop', 'rules: [{from: [{source: {principals: ["cluster.local/ns/a/sa/x"]}}]}]') +
    ap('n', 'shop', 'action: DENY\nrules: [{from: [{source: {notNamespaces: [a]}}]}]') +
    ap('j', 'shop', 'rules: [{from: [{source: {requestPrincipals: ["*"]}}]}]') +
    ap('w', 'shop', 'action: DENY\nrules: [{when: [{key: source.namespace, values: [c]}, {key: source.principal, values: ["*"]}]}]') +
    ap('c', 'shop', 'action: CUSTOM\nprovider: {name: ext}\nrules: [{}]') +
    ap('t', 'shop', 'targetRefs: [{kind: Gateway, group: gateway.networking.k8s.io, name: gw}]\nrules: [{}]');
  assert.deepEqual(codes(yaml).sort(), [
    ['TG_AUTHZ_CUSTOM', 'error'],
    ['TG_AUTHZ_NAMESPACES', 'error'],
    ['TG_AUTHZ_NAMESPACES', 'error'],
    ['TG_AUTHZ_PRINCIPALS', 'error'],
    ['TG_AUTHZ_PRINCIPALS', 'error'],
    ['TG_AUTHZ_REQUEST_PRINCIPALS', 'error'],
    ['TG_AUTHZ_TARGET_REF', 'error'],
  ]);
});

test('what is enforced is no error; allow-nothing and selects-nothing are warnings; bad values are errors', () => {
  const pod = 'apiVersion: v1\nkind: Pod\nmetadata: {name: web, namespace: shop, labels: {app: web}}\nspec: {containers: [{name: c}]}\n---\n';
  assert.deepEqual(codes(pod + ap('ok', 'shop', 'selector: {matchLabels: {app: web}}\nrules: [{from: [{source: {ipBlocks: [192.0.2.0/24]}}], to: [{operation: {methods: [GET], paths: ["/api/*"], ports: ["8080"]}}], when: [{key: "request.headers[x-team]", values: [pay]}]}]')), []);
  assert.deepEqual(codes(pod + ap('none', 'shop', '')), [['TG_AUTHZ_ALLOW_NOTHING', 'warning']]);
  assert.deepEqual(codes(pod + ap('typo', 'shop', 'selector: {matchLabels: {app: wbe}}\nrules: [{}]')), [['TG_AUTHZ_SELECTS_NOTHING', 'warning']]);
  assert.deepEqual(codes(ap('bad', 'shop', 'rules: [{from: [{source: {ipBlocks: [10.0.0.300/8]}}], to: [{operation: {ports: [http]}}], when: [{key: "request.auth.claims[iss]", values: [x]}, {key: foo.bar, values: [x]}]}]')).sort(), [
    ['TG_AUTHZ_BAD_VALUE', 'error'],
    ['TG_AUTHZ_BAD_VALUE', 'error'],
    ['TG_AUTHZ_CONDITION_KEY', 'error'],
    ['TG_AUTHZ_REQUEST_PRINCIPALS', 'error'],
  ]);
  assert.deepEqual(codes(ap('d', 'shop', 'action: DENY\nrules: [{to: [{operation: {paths: [/admin]}}]}]')), [['TG_AUTHZ_HTTP_FIELDS_ON_TCP', 'info']]);
});

test('PeerAuthentication STRICT and DestinationRule ISTIO_MUTUAL are errors; a port-level DISABLE (as written for an ingress-facing nginx) is not', () => {
  const pa = (spec: string): string => `apiVersion: security.istio.io/v1beta1\nkind: PeerAuthentication\nmetadata: {name: pa, namespace: default}\nspec:\n${spec.replace(/^/gm, '  ')}\n---\n`;
  assert.deepEqual(codes(pa('mtls: {mode: STRICT}')), [['TG_PEERAUTHN_STRICT', 'error']]);
  assert.deepEqual(codes(pa('selector: {matchLabels: {app: nginx-app}}\nportLevelMtls:\n  80: {mode: DISABLE}')), [['TG_PEERAUTHN_PLAINTEXT', 'info']]);
  assert.deepEqual(codes(pa('mtls: {mode: PERMISSIVE}\nportLevelMtls:\n  8443: {mode: STRICT}')), [['TG_PEERAUTHN_STRICT', 'error']]);
  const dr = 'apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: gw, namespace: istio-system}\nspec:\n  host: egressgateway.istio-system.svc.cluster.local\n  subsets: [{name: cnn, trafficPolicy: {tls: {mode: ISTIO_MUTUAL}}}]\n';
  assert.deepEqual(codes(dr), [['TG_DR_ISTIO_MUTUAL', 'error']]);
});

test('the snapshot carries the policies that select the proxy: root namespace mesh-wide, own namespace, selector', () => {
  const yaml =
    ap('mesh', 'istio-system', 'action: DENY\nrules: [{to: [{operation: {paths: ["/debug*"]}}]}]') +
    ap('gw-only', 'istio-system', 'selector: {matchLabels: {istio: egressgateway}}\nrules: [{}]') +
    ap('ns', 'egress', 'action: AUDIT\nrules: [{}]') +
    ap('other-ns', 'shop', 'rules: [{}]') +
    ap('other-app', 'egress', 'selector: {matchLabels: {app: x}}\nrules: [{}]', ', annotations: {istio.io/dry-run: "true"}');
  const c = loadYaml(yaml);
  const gw = buildSnapshot(c.model, identity('gateway', 'egress', { istio: 'egressgateway' }));
  assert.deepEqual(gw.policy.authorization?.map((p) => `${p.namespace}/${p.name}:${p.action}`), ['egress/ns:AUDIT', 'istio-system/gw-only:ALLOW', 'istio-system/mesh:DENY']);
  const app = buildSnapshot(c.model, identity('sidecar', 'egress', { app: 'x' }));
  assert.deepEqual(app.policy.authorization?.map((p) => `${p.name}:${String(p.dryRun)}`), ['ns:false', 'other-app:true', 'mesh:false']);
  const none = buildSnapshot(loadYaml(ap('other-ns', 'shop', 'rules: [{}]')).model, identity('gateway', 'egress', {}));
  assert.equal(none.policy.authorization, undefined, 'no policy: the snapshot is unchanged');
});

