/**
 * An egress gateway for an external host built one object at a time: each step adds one object, and analyze (plus trace) must name
 * the object that is still missing; at step 8 none of those messages remain.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { analyzeModel } from '../../src/analyze/analyze.js';
import { parseTraceUrl, trace } from '../../src/trace/trace.js';
import { identity, loadYaml, snapshotOf } from '../helpers/pipeline.js';

// Present at every step: the gateway's Deployment and Service, and the DestinationRule with the subset.
const BASE = `
apiVersion: apps/v1
kind: Deployment
metadata: {name: egress-gw, namespace: mesh-egress}
spec:
  selector: {matchLabels: {istio: egressgateway}}
  template:
    metadata: {labels: {istio: egressgateway}}
    spec: {containers: [{name: proxy, image: tollgate}]}
---
apiVersion: v1
kind: Service
metadata: {name: egress-gw, namespace: mesh-egress}
spec:
  selector: {istio: egressgateway}
  ports: [{name: http, port: 80}, {name: https, port: 443}]
---
apiVersion: v1
kind: Endpoints
metadata: {name: egress-gw, namespace: mesh-egress}
subsets:
- addresses: [{ip: 127.0.0.50}]
  ports: [{name: http, port: 8080}, {name: https, port: 8443}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: egress-gw, namespace: mesh-egress}
spec:
  host: egress-gw.mesh-egress.svc.cluster.local
  subsets: [{name: outbound}]
`;
const MESH_VS_HTTP = `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: news-via-egress, namespace: mesh-egress}
spec:
  hosts: [news.example.com]
  gateways: [mesh]
  http:
  - route:
    - destination: {host: egress-gw.mesh-egress.svc.cluster.local, subset: outbound}
`;
const MESH_VS_TLS = `${MESH_VS_HTTP}
  tls:
  - match: [{port: 443, sniHosts: [news.example.com]}]
    route:
    - destination: {host: egress-gw.mesh-egress.svc.cluster.local, subset: outbound, port: {number: 443}}
`;
const GATEWAY_80 = `
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: egress-gw, namespace: mesh-egress}
spec:
  selector: {istio: egressgateway}
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: [news.example.com]
`;
const GATEWAY_443 = `${GATEWAY_80}
  - port: {number: 443, name: https, protocol: HTTPS}
    hosts: [news.example.com]
    tls: {mode: PASSTHROUGH}
`;
const EGRESS_VS_HTTP = `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: news-out, namespace: mesh-egress}
spec:
  hosts: [news.example.com]
  gateways: [egress-gw]
  http:
  - route:
    - destination: {host: news.example.com}
`;
const EGRESS_VS_TLS = `${EGRESS_VS_HTTP}
  tls:
  - match: [{port: 443, sniHosts: [news.example.com]}]
    route:
    - destination: {host: news.example.com}
`;
const SE_80 = `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: news, namespace: mesh-egress}
spec:
  hosts: [news.example.com]
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: DNS
`;
const SE_443 = `${SE_80.replace('ports: [{number: 80, name: http, protocol: HTTP}]', 'ports: [{number: 80, name: http, protocol: HTTP}, {number: 443, name: tls, protocol: TLS}]')}`;

const docs = (...parts: string[]) => parts.map((p) => p.trim()).join('\n---\n');
const STEPS: Record<number, string> = {
  1: docs(BASE),
  2: docs(BASE, MESH_VS_HTTP),
  3: docs(BASE, MESH_VS_HTTP, GATEWAY_80),
  4: docs(BASE, MESH_VS_HTTP, GATEWAY_80, EGRESS_VS_HTTP),
  5: docs(BASE, MESH_VS_HTTP, GATEWAY_80, EGRESS_VS_HTTP, SE_80),
  6: docs(BASE, MESH_VS_TLS, GATEWAY_80, EGRESS_VS_HTTP, SE_80),
  7: docs(BASE, MESH_VS_TLS, GATEWAY_80, EGRESS_VS_HTTP, SE_443),
  8: docs(BASE, MESH_VS_TLS, GATEWAY_443, EGRESS_VS_TLS, SE_443),
};
const STORY_CODES = ['TG_GATEWAY_WORKLOAD_UNUSED', 'TG_GATEWAY_NO_SERVER', 'TG_GATEWAY_HOST_NOT_ROUTED', 'TG_DEST_NOT_IN_REGISTRY', 'TG_HTTPS_BYPASSES_GATEWAY', 'TG_MESH_ROUTE_NOT_IN_REGISTRY', 'TG_SUBSET_NO_DESTINATIONRULE', 'TG_SUBSET_NOT_FOUND'];

function analyzeStep(n: number) {
  const c = loadYaml(STEPS[n] ?? '', `step${n}.yaml`);
  assert.deepEqual(c.diagnostics.filter((d) => d.severity === 'error'), [], `step ${n} fixture must be valid config`);
  return { c, diags: analyzeModel(c.model) };
}
function messagesFor(n: number, code: string): string[] {
  return analyzeStep(n).diags.filter((d) => d.code === code).map((d) => `${d.message} | fix: ${d.hint}`);
}
const sidecar = identity('sidecar', 'apps', { app: 'reader' });
const gateway = identity('gateway', 'mesh-egress', { istio: 'egressgateway' });
function traceStep(n: number, id: typeof sidecar, url: string) {
  const c = loadYaml(STEPS[n] ?? '', `step${n}.yaml`);
  return trace(c.model, snapshotOf(c, id), parseTraceUrl(url));
}

test('step 1: gateway installed, nothing else -> the gateway is unused; the sidecar blocks the request (REGISTRY_ONLY)', () => {
  const m = messagesFor(1, 'TG_GATEWAY_WORKLOAD_UNUSED');
  assert.equal(m.length, 1);
  assert.match(m[0] ?? '', /no Gateway selects it.*fix: add a Gateway with selector \{istio: egressgateway\}/);
  const t = traceStep(1, sidecar, 'http://news.example.com/');
  assert.equal(t.flag, 'BLOCKED');
  assert.match(t.hint ?? '', /ServiceEntry with hosts \[news\.example\.com\]/);
  assert.match(t.hint ?? '', /ALLOW_ANY/, 'trace explains the difference from Istio');
});

test('step 2: + mesh VirtualService -> no Gateway server on port 80 (Istio answers 503)', () => {
  const m = messagesFor(2, 'TG_GATEWAY_NO_SERVER');
  assert.equal(m.length, 1);
  assert.match(m[0] ?? '', /port 80.*503.*fix: add a Gateway with selector \{istio: egressgateway\} and a server on port 80/);
  const t = traceStep(2, gateway, 'http://news.example.com/');
  assert.equal(t.flag, 'NL');
  assert.match(t.hint ?? '', /no Gateway selects/);
  assert.equal(traceStep(2, sidecar, 'http://news.example.com/').ok, true, 'the sidecar sends it to the gateway');
});

test('step 3: + Gateway on 80 -> no VirtualService bound for the host (Istio answers 404)', () => {
  const m = messagesFor(3, 'TG_GATEWAY_HOST_NOT_ROUTED');
  assert.equal(m.length, 1);
  assert.match(m[0] ?? '', /404.*fix: add a VirtualService with hosts \[news\.example\.com\], gateways \[egress-gw\]/);
  assert.deepEqual(messagesFor(3, 'TG_GATEWAY_NO_SERVER'), []);
  const t = traceStep(3, gateway, 'http://news.example.com/');
  assert.equal(t.flag, 'NR');
  assert.equal(t.status, 404);
});

test('step 4: + egress VirtualService -> destination not in the registry (Istio answers 503)', () => {
  const m = messagesFor(4, 'TG_DEST_NOT_IN_REGISTRY');
  assert.equal(m.length, 1);
  assert.match(m[0] ?? '', /news\.example\.com is not in the registry.*fix: add a ServiceEntry with hosts \[news\.example\.com\] and port 80\/HTTP/);
  const t = traceStep(4, gateway, 'http://news.example.com/');
  assert.equal(t.flag, 'NC');
  assert.equal(t.status, 503);
  assert.match(t.hint ?? '', /add a ServiceEntry/);
});

test('step 5: + ServiceEntry port 80 -> HTTP routed; HTTPS bypasses the gateway', () => {
  assert.equal(traceStep(5, gateway, 'http://news.example.com/').ok, true);
  const m = messagesFor(5, 'TG_HTTPS_BYPASSES_GATEWAY');
  assert.equal(m.length, 1);
  assert.match(m[0] ?? '', /HTTPS \(443\) to news\.example\.com is not.*fix: add port 443\/TLS/);
});

test('step 6: + mesh tls route -> port 443 is not in the registry, the route never applies', () => {
  const m = messagesFor(6, 'TG_MESH_ROUTE_NOT_IN_REGISTRY');
  assert.equal(m.length, 1);
  assert.match(m[0] ?? '', /news\.example\.com:443.*fix: add port 443 with protocol TLS to a ServiceEntry/);
  assert.deepEqual(messagesFor(6, 'TG_HTTPS_BYPASSES_GATEWAY'), []);
  assert.equal(traceStep(6, sidecar, 'tls://news.example.com:443').flag, 'BLOCKED');
});

test('step 7: + ServiceEntry port 443 -> the gateway has no 443 server (Istio resets the connection)', () => {
  const m = messagesFor(7, 'TG_GATEWAY_NO_SERVER');
  assert.equal(m.length, 1);
  assert.match(m[0] ?? '', /port 443.*connection reset.*fix: add a Gateway .* server on port 443 \(HTTPS with tls\.mode PASSTHROUGH\)/);
  assert.equal(traceStep(7, sidecar, 'tls://news.example.com:443').ok, true, 'the sidecar now sends 443 to the gateway');
  assert.equal(traceStep(7, gateway, 'tls://news.example.com:443').flag, 'NL');
});

test('step 8: + Gateway 443 PASSTHROUGH and egress tls route -> nothing missing; HTTPS goes through the gateway', () => {
  const { diags } = analyzeStep(8);
  assert.deepEqual(diags.filter((d) => STORY_CODES.includes(d.code)).map((d) => d.code), []);
  assert.deepEqual(diags.filter((d) => d.severity !== 'info'), []);
  const t = traceStep(8, gateway, 'tls://news.example.com:443');
  assert.equal(t.ok, true, t.hint);
  assert.deepEqual(t.steps.filter((s) => s.step === 'cluster').map((s) => s.value), ['outbound|443||news.example.com']);
});

test('without the DestinationRule the subset is reported missing', () => {
  const c = loadYaml(STEPS[8]?.replace(/subsets: \[\{name: outbound\}\]/, 'subsets: [{name: other}]') ?? '');
  const diags = analyzeModel(c.model).filter((d) => d.code === 'TG_SUBSET_NOT_FOUND');
  assert.equal(diags.length, 2, 'the http and the tls destination');
  assert.match(diags[0]?.message ?? '', /subset "outbound" is not defined by DestinationRule egress-gw\.mesh-egress \(it defines: other\)/);
});
