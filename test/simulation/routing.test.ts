/**
 * Simulation tests: config + one synthetic request -> which listener, chain, route and cluster
 * matched, through the same matchers the data plane uses (dataplane/route via trace).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseTraceUrl, trace, type TraceResult } from '../../src/trace/trace.js';
import { pickWeighted } from '../../src/dataplane/route/select.js';
import { identity, loadFixtures, loadYaml, snapshotOf, type Compiled } from '../helpers/pipeline.js';
import type { ProxyIdentity } from '../../src/snapshot/types.js';

function run(c: Compiled, id: ProxyIdentity, url: string, opts: { headers?: Record<string, string>; sni?: string; sourceIp?: string } = {}): TraceResult {
  const req = { ...parseTraceUrl(url, 'GET', opts.headers ?? {}, opts.sni), ...(opts.sourceIp ? { sourceIp: opts.sourceIp } : {}) };
  return trace(c.model, snapshotOf(c, id), req);
}
const step = (r: TraceResult, name: string): string[] => r.steps.filter((s) => s.step === name).map((s) => s.value);

const egress = loadFixtures('egress-gateway.yaml', 'egress-ip.yaml');
const gw = identity('gateway', 'egress', { istio: 'egressgateway' });

test('gateway routes HTTP by Host to the registry cluster of that host', () => {
  const r = run(egress, gw, 'http://api.partner.example/v1/orders');
  assert.equal(r.ok, true, r.hint);
  assert.deepEqual(step(r, 'listener'), ['0.0.0.0_80']);
  assert.deepEqual(step(r, 'virtual host'), ['api.partner.example:80']);
  assert.deepEqual(step(r, 'route'), ['egress/partners-out:0']);
  assert.deepEqual(step(r, 'cluster'), ['outbound|80||api.partner.example']);
  const files = run(egress, gw, 'http://FILES.partner.example./');
  assert.deepEqual(step(files, 'cluster'), ['outbound|80||files.partner.example'], 'host is matched case-insensitively, trailing dot ignored');
});

test('gateway passes TLS through by SNI and refuses an SNI it does not route', () => {
  const ok = run(egress, gw, 'tls://files.partner.example:443');
  assert.equal(ok.ok, true);
  assert.deepEqual(step(ok, 'cluster'), ['outbound|443||files.partner.example']);
  const denied = run(egress, gw, 'tls://evil.example:443');
  assert.equal(denied.ok, false);
  assert.equal(denied.flag, 'NR');
  assert.match(denied.reason ?? '', /sni_not_routed/);
  const fronted = run(egress, gw, 'tls://api.partner.example:443', { sni: 'evil.example' });
  assert.equal(fronted.flag, 'NR', 'the SNI decides, not the URL host');
});

test('a refused TLS connection on a PASSTHROUGH port: the hint adds a tls route; plaintext is tls_not_tls, as the listener logs it', () => {
  const denied = run(egress, gw, 'tls://evil.example:443');
  assert.match(denied.hint ?? '', /add a tls route with match port 443 and sniHosts \[evil\.example\].*PASSTHROUGH server hosts/);
  const plain = run(egress, gw, 'tcp://files.partner.example:443');
  assert.equal(plain.reason?.split(':')[0], 'tls_not_tls', 'the TLS inspector sees plaintext before any chain is chosen');
  assert.match(plain.hint ?? '', /takes only TLS.*tls:\/\/files\.partner\.example:443/);
});

const MESH_GATEWAY = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: partner, namespace: istio-system}
spec:
  hosts: [partner.test]
  ports: [{number: 443, name: tls, protocol: TLS}]
  resolution: STATIC
  endpoints: [{address: 192.0.2.1}]
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: egress, namespace: istio-system}
spec:
  selector: {istio: egressgateway}
  servers:
  - port: {number: 15443, name: tls-mesh, protocol: TLS}
    hosts: [partner.test]
    tls: {mode: ISTIO_MUTUAL}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: partner-tls, namespace: istio-system}
spec:
  hosts: [partner.test]
  gateways: [egress]
  tcp: [{match: [{port: 15443}], route: [{destination: {host: partner.test, port: {number: 443}}}]}]
`;

test('an ISTIO_MUTUAL TLS server: the hints ask for Istio mTLS from the caller and a tcp route, never a PASSTHROUGH tls route', () => {
  const mesh = loadYaml(MESH_GATEWAY);
  const egressGw = identity('gateway', 'istio-system', { istio: 'egressgateway' });
  const routed = run(mesh, egressGw, 'tls://partner.test:15443');
  assert.equal(routed.ok, true, routed.hint);
  const plain = run(mesh, egressGw, 'tcp://partner.test:15443');
  assert.equal(plain.flag, 'NR');
  assert.equal(plain.reason?.split(':')[0], 'tls_not_tls');
  assert.match(plain.hint ?? '', /mesh \(ISTIO_MUTUAL\) server of Gateway egress/);
  assert.match(plain.hint ?? '', /DestinationRule for the gateway with trafficPolicy\.tls\.mode ISTIO_MUTUAL, or a sidecar/);
  assert.match(plain.hint ?? '', /tls:\/\/partner\.test:15443 --source-principal/);
  const other = run(mesh, egressGw, 'tls://other.test:15443');
  assert.equal(other.reason?.split(':')[0], 'sni_not_routed');
  assert.match(other.hint ?? '', /list other\.test in its hosts \(Gateway egress\) and add a tcp route with match port 15443/);
  for (const r of [plain, other]) {
    assert.doesNotMatch(r.hint ?? '', /PASSTHROUGH|sniHosts/, 'a tls route applies only to a PASSTHROUGH server, not to a mesh one');
  }
});

test('gateway answers NR 404 for a host it does not route, and NL for a port it does not serve', () => {
  const r = run(egress, gw, 'http://unknown.example/');
  assert.equal(r.flag, 'NR');
  assert.equal(r.status, 404);
  assert.match(r.hint ?? '', /VirtualService with hosts \[unknown\.example\]/);
  assert.match(r.hint ?? '', /not in the registry either/);
  const nl = run(egress, gw, 'tcp://192.0.2.1:9000');
  assert.equal(nl.flag, 'NL');
});

test('caller namespace EgressIP gives the source address; other callers use the OS default', () => {
  const risk = run(egress, gw, 'http://api.partner.example/', { sourceIp: '127.0.0.21' });
  assert.match(step(risk, 'source address')[0] ?? '', /^127\.0\.0\.31 \(caller namespace risk: EgressIP risk-egress\)/);
  const web = run(egress, gw, 'http://api.partner.example/', { sourceIp: '127.0.0.22' });
  assert.match(step(web, 'source address')[0] ?? '', /^OS default/);
});

const ingress = loadFixtures('ingress-gateway.yaml');
const ig = identity('gateway', 'istio-system', { istio: 'ingressgateway' });

test('ingress: a header canary wins over the weighted split, which lists both subsets with weights', () => {
  const canary = run(ingress, ig, 'http://shop.example.org/', { headers: { 'User-Agent': 'Mozilla IPHONE 15' } });
  assert.deepEqual(step(canary, 'route'), ['default/shop:canary']);
  assert.deepEqual(step(canary, 'cluster'), ['outbound|80|v2|shop.default.svc.cluster.local']);
  assert.deepEqual(step(canary, 'endpoints'), ['127.0.0.12:8080'], 'subset v2 has only the v2 pod, on its named targetPort');
  const split = run(ingress, ig, 'http://shop.example.org/');
  assert.deepEqual(step(split, 'route'), ['default/shop:split']);
  assert.deepEqual(step(split, 'cluster'), ['outbound|80|v1|shop.default.svc.cluster.local (weight 99, 99%)', 'outbound|80|v2|shop.default.svc.cluster.local (weight 1, 1%)']);
});

test('weighted pick follows the weights (deterministic random inputs)', () => {
  const clusters = [{ name: 'v1', weight: 99 }, { name: 'v2', weight: 1 }];
  let v2 = 0;
  const n = 10_000;
  for (let i = 0; i < n; i++) if (pickWeighted(clusters, i / n)?.name === 'v2') v2++;
  assert.equal(v2, 100);
  assert.equal(pickWeighted([{ name: 'a', weight: 0 }, { name: 'b', weight: 5 }], 0)?.name, 'b', 'zero weight is never picked');
});

const registry = loadFixtures('serviceentries.yaml');
const sc = identity('sidecar', 'payments', { app: 'teller' });

test('sidecar: wildcard ServiceEntry hosts route any subdomain (resolution NONE -> original destination)', () => {
  const r = run(registry, sc, 'http://ocsp.eu.certs.example/check');
  assert.equal(r.ok, true, r.hint);
  assert.deepEqual(step(r, 'virtual host'), ['*.certs.example:80']);
  assert.deepEqual(step(r, 'cluster'), ['outbound|80||*.certs.example']);
  assert.deepEqual(step(r, 'endpoints'), ['ocsp.eu.certs.example:80']);
  const bare = run(registry, sc, 'tls://certs.example:443');
  assert.deepEqual(step(bare, 'cluster'), ['outbound|443||certs.example'], 'the apex is its own host, not matched by *.certs.example');
});

test('sidecar: TCP by destination address, and REGISTRY_ONLY blocks everything else with a hint', () => {
  const db = run(registry, sc, 'tcp://192.0.2.40:5432');
  assert.equal(db.ok, true, db.hint);
  assert.deepEqual(step(db, 'cluster'), ['outbound|5432||192.0.2.40']);
  const other = run(registry, sc, 'tcp://192.0.2.41:5432');
  assert.equal(other.flag, 'BLOCKED');
  const web = run(registry, sc, 'http://example.com/');
  assert.equal(web.flag, 'BLOCKED');
  assert.equal(web.status, 502);
  assert.match(web.hint ?? '', /add a ServiceEntry with hosts \[example\.com\] and port 80\/HTTP/);
  assert.match(web.hint ?? '', /ALLOW_ANY/);
});

test('per-destination source address comes from the ServiceEntry annotation', () => {
  const r = run(registry, sc, 'tcp://192.0.2.50:8443');
  assert.equal(r.ok, true, r.hint);
  assert.match(step(r, 'source address')[0] ?? '', /^127\.0\.0\.42 \(destination: ServiceEntry clearing-house\)/);
});

const router = loadFixtures('egress-router.yaml');
const rt = identity('router', 'billing', { app: 'billing-egress' });

test('egress router: per-port rules with port rewrite, the fallback for other Service ports, EGRESS_SOURCE bound', () => {
  const r8080 = run(router, rt, 'tcp://10.0.0.5:8080');
  assert.deepEqual(step(r8080, 'endpoints'), ['203.0.113.26:80']);
  assert.match(step(r8080, 'source address')[0] ?? '', /^198\.51\.100\.7 /);
  assert.match(step(r8080, 'route')[0] ?? '', /EGRESS_DESTINATION line 29: 8080 tcp 203\.0\.113\.26 80/);
  const r443 = run(router, rt, 'tcp://10.0.0.5:443');
  assert.deepEqual(step(r443, 'endpoints'), ['203.0.113.25:443'], 'a tab and trailing whitespace in the rule are accepted');
  const ldap = run(router, rt, 'tcp://10.0.0.5:389');
  assert.deepEqual(step(ldap, 'endpoints'), ['203.0.113.27:389'], 'unlisted Service port goes to the fallback IP, same port');
  const none = run(router, rt, 'tcp://10.0.0.5:22');
  assert.equal(none.flag, 'NL');
});

test('envoy bootstrap: host rewrite and a LOGICAL_DNS cluster with TLS SNI', () => {
  const c = loadFixtures('envoy-bootstrap.yaml');
  const r = run(c, identity('gateway', 'default'), 'http://anything.local:10080/docs');
  assert.equal(r.ok, true, r.hint);
  assert.deepEqual(step(r, 'host rewrite'), ['docs.example.net']);
  assert.deepEqual(step(r, 'cluster'), ['docs']);
  assert.match(r.steps.find((s) => s.step === 'cluster')?.detail ?? '', /LOGICAL_DNS, TLS SIMPLE sni docs\.example\.net/);
});

test('a Gateway annotation turns on the explicit proxy for the gateways it selects', async () => {
  const { loadYaml } = await import('../helpers/pipeline.js');
  const { analyzeModel } = await import('../../src/analyze/analyze.js');
  const yaml = (v: string) => `apiVersion: networking.istio.io/v1
kind: Gateway
metadata:
  name: egress
  namespace: out
  annotations: {tollgate.io/explicit-proxy: "${v}", tollgate.io/explicit-proxy-connect-ports: "443,8443"}
spec:
  selector: {app: egress}
  servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: [api.partner.example]}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: partner, namespace: out}
spec: {hosts: [api.partner.example], ports: [{number: 443, name: tls, protocol: TLS}], resolution: DNS}
`;
  const c = loadYaml(yaml('3128'));
  const snap = snapshotOf(c, identity('gateway', 'out', { app: 'egress' }));
  const l = snap.listeners.find((x) => x.name === 'explicit_proxy_3128');
  assert.equal(l?.address, '0.0.0.0');
  assert.deepEqual(l?.filterChains[0]?.filter, { type: 'explicit_proxy', statPrefix: 'explicit_proxy', connectPorts: [443, 8443] });
  assert.ok(snap.clusters.some((x) => x.name === 'outbound|443||api.partner.example'), 'registry clusters are in the snapshot for the CONNECT check');
  const other = snapshotOf(c, identity('gateway', 'out', { app: 'other' }));
  assert.equal(other.listeners.length, 0, 'only the gateways the Gateway selects');
  const bad = analyzeModel(loadYaml(yaml('lots')).model).find((d) => d.code === 'TG_EXPLICIT_PROXY_ANNOTATION');
  assert.match(bad?.message ?? '', /"lots" is not PORT or ADDRESS:PORT/);
});
