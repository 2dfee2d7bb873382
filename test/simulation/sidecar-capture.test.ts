/**
 * Simulation of a sidecar's captured traffic: the original destination picks the listener (as
 * Envoy's use_original_dst), Services are reachable by short name, FQDN and ClusterIP (TLS by
 * ClusterIP too), Sidecar egress.hosts narrows the registry, and the inbound listener matches the
 * workload's Service ports by destination port.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseTraceUrl, trace, type TraceResult } from '../../src/trace/trace.js';
import { CompiledSnapshot } from '../../src/dataplane/route/compile.js';
import { dispatchOriginalDst, virtualOutboundListener } from '../../src/dataplane/route/original-dst.js';
import { selectFilterChain } from '../../src/dataplane/route/select.js';
import { identity, loadYaml, snapshotOf } from '../helpers/pipeline.js';

const YAML = `apiVersion: v1
kind: Service
metadata: {name: reviews, namespace: shop}
spec:
  clusterIP: 203.0.113.20
  selector: {app: reviews}
  ports:
  - {name: http, port: 80, targetPort: 9080}
  - {name: tls-api, port: 8443, targetPort: 9443}
  - {name: tcp-db, port: 5432}
---
apiVersion: v1
kind: Pod
metadata: {name: reviews-1, namespace: shop, labels: {app: reviews}}
spec: {containers: [{name: app}]}
status: {podIP: 192.0.2.20}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: cnn, namespace: shop}
spec:
  hosts: [edition.cnn.com]
  resolution: DNS
  ports: [{number: 80, name: http, protocol: HTTP}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: other, namespace: elsewhere}
spec:
  hosts: [api.other.example]
  resolution: DNS
  ports: [{number: 80, name: http, protocol: HTTP}]
`;

const SCOPED = `${YAML}---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default, namespace: shop}
spec:
  egress:
  - hosts: ["./*"]
`;

const c = loadYaml(YAML);
const web = identity('sidecar', 'shop', { app: 'web' });
const reviews = identity('sidecar', 'shop', { app: 'reviews' });
const step = (r: TraceResult, name: string): string | undefined => r.steps.find((s) => s.step === name)?.value;
const traceAt = (id = web, url: string, dst?: { ip: string; port: number }, yaml = c): TraceResult => trace(yaml.model, snapshotOf(yaml, id), { ...parseTraceUrl(url), ...(dst ? { originalDst: dst } : {}) });

test('the original destination picks the listener: exact address first, then the port; none -> the virtual listener', () => {
  const compiled = new CompiledSnapshot(snapshotOf(c, web));
  const virtual = virtualOutboundListener(compiled)!;
  assert.equal(dispatchOriginalDst(compiled, virtual, { ip: '203.0.113.20', port: 80 }).listener.listener.name, '0.0.0.0_80');
  assert.equal(dispatchOriginalDst(compiled, virtual, { ip: '198.51.100.7', port: 5432 }).listener.listener.name, '0.0.0.0_5432');
  const none = dispatchOriginalDst(compiled, virtual, { ip: '198.51.100.7', port: 6379 });
  assert.equal(none.handedOff, false);
  assert.equal(none.listener, virtual);
  // never handed to the inbound listener or to itself, whatever port was dialed
  assert.equal(dispatchOriginalDst(compiled, virtual, { ip: '192.0.2.20', port: 15006 }).listener, virtual);
  assert.equal(dispatchOriginalDst(compiled, virtual, { ip: '192.0.2.20', port: 15001 }).listener, virtual);
});

test('outbound listeners are not bound (only 15001 and 15006 are)', () => {
  const s = snapshotOf(c, web);
  const bound = s.listeners.filter((l) => l.bindToPort !== false).map((l) => l.port).sort();
  assert.deepEqual(bound, [15001, 15006]);
});

test('a Service by short name (own namespace), name.ns, FQDN and ClusterIP', () => {
  for (const host of ['reviews', 'reviews.shop', 'reviews.shop.svc.cluster.local', '203.0.113.20']) {
    const r = traceAt(web, `http://${host}/`, { ip: '203.0.113.20', port: 80 });
    assert.equal(r.ok, true, `${host}: ${r.reason}`);
    assert.equal(step(r, 'cluster'), 'outbound|80||reviews.shop.svc.cluster.local', host);
    assert.equal(step(r, 'endpoints'), '192.0.2.20:9080');
  }
  const other = identity('sidecar', 'elsewhere', { app: 'x' });
  assert.equal(traceAt(other, 'http://reviews/', { ip: '203.0.113.20', port: 80 }).ok, false, 'the bare name only resolves in the Service namespace');
});

test('TLS to a Service port by ClusterIP when the SNI is absent or a short name; TCP by address', () => {
  const short = traceAt(web, 'tls://reviews:8443', { ip: '203.0.113.20', port: 8443 });
  assert.equal(short.ok, true, short.reason);
  assert.equal(step(short, 'cluster'), 'outbound|8443||reviews.shop.svc.cluster.local');
  const compiled = new CompiledSnapshot(snapshotOf(c, web));
  const l = dispatchOriginalDst(compiled, virtualOutboundListener(compiled)!, { ip: '203.0.113.20', port: 8443 }).listener;
  assert.equal(selectFilterChain(l, { tls: true, destinationIp: '203.0.113.20' }).chain?.name, 'reviews.shop.svc.cluster.local:8443:address');
  const elsewhere = selectFilterChain(l, { tls: true, destinationIp: '198.51.100.9' }).chain;
  assert.equal(elsewhere?.filter.type, 'deny', 'no SNI and not the ClusterIP: the outbound policy');
  const db = traceAt(web, 'tcp://203.0.113.20:5432');
  assert.equal(step(db, 'cluster'), 'outbound|5432||reviews.shop.svc.cluster.local');
});

test('REGISTRY_ONLY: an unregistered host on a known port is blocked, an unknown port hits the BlackHole chain', () => {
  const http = traceAt(web, 'http://unregistered.example/', { ip: '198.51.100.11', port: 80 });
  assert.equal(http.flag, 'BLOCKED');
  const tcp = traceAt(web, 'tcp://198.51.100.11:6379');
  assert.equal(tcp.ok, false);
  assert.equal(step(tcp, 'listener'), 'virtualOutbound');
  assert.match(tcp.reason ?? '', /^registry_only/);
});

test('Sidecar egress.hosts "./*" keeps the own namespace and drops the rest of the registry', () => {
  const scoped = loadYaml(SCOPED);
  assert.equal(traceAt(web, 'http://edition.cnn.com/', { ip: '198.51.100.10', port: 80 }, scoped).ok, true);
  assert.equal(traceAt(web, 'http://api.other.example/', { ip: '198.51.100.10', port: 80 }, scoped).flag, 'BLOCKED');
  assert.equal(traceAt(web, 'http://api.other.example/', { ip: '198.51.100.10', port: 80 }).ok, true, 'without the Sidecar it is visible');
});

test('inbound: one chain per Service port of this workload, by destination port, to the app from 127.0.0.6', () => {
  const s = snapshotOf(c, reviews);
  const inbound = s.listeners.find((l) => l.name === 'virtualInbound')!;
  assert.equal(inbound.port, 15006);
  assert.deepEqual(inbound.filterChains.map((ch) => [ch.match.destinationPort, ch.filter.type]), [[9080, 'http'], [9443, 'tcp'], [5432, 'tcp']]);
  const cluster = s.clusters.find((x) => x.name === 'inbound|9080||')!;
  assert.equal(cluster.type, 'ORIGINAL_DST');
  assert.equal(cluster.sourceAddress, '127.0.0.6');
  assert.equal(inbound.defaultFilterChain?.name, 'InboundPassthroughCluster');
  const compiled = new CompiledSnapshot(s);
  const l = compiled.listeners.get('virtualInbound')!;
  assert.equal(selectFilterChain(l, { tls: false, destinationIp: '192.0.2.20', destinationPort: 9443 }).chain?.name, 'inbound|9443||');
  assert.equal(selectFilterChain(l, { tls: false, destinationIp: '192.0.2.20', destinationPort: 8080 }).chain?.name, 'InboundPassthroughCluster');
  // a workload no Service selects still passes inbound traffic through
  assert.deepEqual(snapshotOf(c, web).listeners.find((x) => x.name === 'virtualInbound')?.filterChains, []);
});
