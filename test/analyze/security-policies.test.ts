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

test('request principals, CUSTOM, targetRef and badly written principals are errors; principals and namespaces (from mTLS) are not', () => {
  const yaml =
    ap('p', 'shop', 'rules: [{from: [{source: {principals: ["cluster.local/ns/a/sa/x"]}}]}]') +
    ap('n', 'shop', 'action: DENY\nrules: [{from: [{source: {notNamespaces: [a]}}]}]') +
    ap('j', 'shop', 'rules: [{from: [{source: {requestPrincipals: ["*"]}}]}]') +
    ap('w', 'shop', 'action: DENY\nrules: [{when: [{key: source.namespace, values: [c]}, {key: source.principal, values: ["*"]}]}]') +
    ap('c', 'shop', 'action: CUSTOM\nprovider: {name: ext}\nrules: [{}]') +
    ap('t', 'shop', 'targetRefs: [{kind: Gateway, group: gateway.networking.k8s.io, name: gw}]\nrules: [{}]') +
    ap('f', 'shop', 'rules: [{from: [{source: {principals: ["spiffe://cluster.local/ns/a/sa/x", "sleep", "cluster.local/ns/a/sa/*", "*"]}}]}]');
  assert.deepEqual(codes(yaml).sort(), [
    ['TG_AUTHZ_CUSTOM', 'error'],
    ['TG_AUTHZ_PRINCIPAL_FORMAT', 'error'],
    ['TG_AUTHZ_PRINCIPAL_FORMAT', 'error'],
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

test('PeerAuthentication: STRICT on a workload without a sidecar is an error, DISABLE under STRICT a warning, a port-level DISABLE for an ingress-facing nginx information', () => {
  const pa = (spec: string, name = 'pa', ns = 'default'): string => `apiVersion: security.istio.io/v1beta1\nkind: PeerAuthentication\nmetadata: {name: ${name}, namespace: ${ns}}\nspec:\n${spec.replace(/^/gm, '  ')}\n---\n`;
  const pod = (name: string, labels: string, containers: string): string => `apiVersion: v1\nkind: Pod\nmetadata: {name: ${name}, namespace: default, labels: {${labels}}}\nspec: {containers: [${containers}]}\n---\n`;
  const injected = pod('nginx', 'app: nginx-app', '{name: nginx}, {name: istio-proxy}');
  const bare = pod('legacy', 'app: legacy', '{name: legacy}');
  assert.deepEqual(codes(injected + pa('mtls: {mode: STRICT}')), []);
  assert.deepEqual(codes(injected + bare + pa('mtls: {mode: STRICT}')), [['TG_PEERAUTHN_NO_SIDECAR', 'error']]);
  const enabledNs = 'apiVersion: v1\nkind: Namespace\nmetadata: {name: default, labels: {istio-injection: enabled}}\n---\n';
  assert.deepEqual(codes(enabledNs + bare + pa('mtls: {mode: STRICT}')), [], 'the namespace label injects the sidecar');
  assert.deepEqual(codes(injected + pa('selector: {matchLabels: {app: nginx-app}}\nportLevelMtls:\n  80: {mode: DISABLE}')), [['TG_PEERAUTHN_PLAINTEXT', 'info']]);
  assert.deepEqual(codes(injected + pa('mtls: {mode: STRICT}', 'ns') + pa('selector: {matchLabels: {app: nginx-app}}\nportLevelMtls:\n  80: {mode: DISABLE}')), [['TG_PEERAUTHN_DISABLE_OVERRIDES_STRICT', 'warning']]);
  assert.deepEqual(codes(injected + pa('selector: {matchLabels: {app: ngnix}}\nmtls: {mode: PERMISSIVE}')), [['TG_PEERAUTHN_SELECTS_NOTHING', 'warning']]);
  const dr = 'apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: gw, namespace: istio-system}\nspec:\n  host: egressgateway.istio-system.svc.cluster.local\n  subsets: [{name: cnn, trafficPolicy: {tls: {mode: ISTIO_MUTUAL}}}]\n';
  assert.deepEqual(codes(dr), [], 'ISTIO_MUTUAL is originated for HTTP routes');
  const tcpRoute = 'apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: db, namespace: istio-system}\nspec:\n  hosts: [db.example]\n  tcp: [{route: [{destination: {host: egressgateway.istio-system.svc.cluster.local}}]}]\n---\n';
  assert.deepEqual(codes(tcpRoute + dr), [], 'ISTIO_MUTUAL is originated for tcp/tls routes too');
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

