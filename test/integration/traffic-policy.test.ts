/**
 * Upstream policy and traffic shifting on real sockets: node:http upstreams on distinct
 * loopback addresses, each answering its own name so the test counts who served what.
 *  - 99/1 weighted split over 2,000 requests (tolerance stated below) + header canary (IPHONE)
 *  - fault abort 50% visible in istio_requests_total by response_code
 *  - outlier detection: a broken endpoint is ejected while traffic continues; the ejection
 *    survives a config reload; every endpoint ejected -> 503 UH
 *  - connectionPool: maxConnections 1 + http1MaxPendingRequests 1 -> excess answered 503 UO
 *  - consistentHash on a header: one user, one endpoint
 *  - ROUND_ROBIN: requests of one keep-alive connection stay on its upstream connection
 *    (upstream affinity), new connections go round the endpoints
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Agent } from 'node:http';
import { writeFileSync } from 'node:fs';
import { httpEngine } from '../../src/dataplane/http/engine.js';
import { hostRequest, startHttpUpstream, type HttpUpstream } from '../helpers/http.js';
import { egressGateway, externalEntry as se, httpEndpoint, virtualService } from '../helpers/istio-yaml.js';
import { loopbackAddress } from '../helpers/net.js';
import { EGRESS_GATEWAY_ARGS, startGateWithConfig, type TestGate } from '../helpers/tollgate.js';

interface Peer {
  readonly name: string;
  readonly up: HttpUpstream;
  status: number;
}

async function peer(name: string): Promise<Peer> {
  const p: Peer = { name, status: 200, up: undefined as unknown as HttpUpstream };
  const up = await startHttpUpstream(loopbackAddress(), 0, (_req, res, _b, seen) => {
    const m = /\/slow\/(\d+)/.exec(seen.url);
    const send = (): void => {
      if (res.destroyed) return;
      res.writeHead(p.status, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(name) });
      res.end(name);
    };
    if (m) setTimeout(send, Number(m[1]));
    else send();
  });
  Object.assign(p, { up });
  return p;
}

const ep = (p: Peer, labels: string): string => httpEndpoint(p.up.host, p.up.port, labels);

function config(p: Record<string, Peer>, extraHeader = 'one'): string {
  const hosts = ['split', 'fault', 'outlier', 'dead', 'limited', 'sticky', 'rr'];
  return (
    se('split', [ep(p['v1']!, 'version: v1'), ep(p['v2']!, 'version: v2')]) +
    se('fault', [ep(p['v1']!, 'version: v1')]) +
    se('outlier', [ep(p['good']!, 'x: a'), ep(p['broken']!, 'x: b')]) +
    se('dead', [ep(p['broken']!, 'x: b')]) +
    se('limited', [ep(p['v1']!, 'x: a')]) +
    se('sticky', [ep(p['v1']!, 'x: a'), ep(p['v2']!, 'x: b'), ep(p['good']!, 'x: c')]) +
    se('rr', [ep(p['v1']!, 'x: a'), ep(p['v2']!, 'x: b')]) +
    egressGateway(hosts.map((h) => `${h}.test`)) +
    `${virtualService('split', 'egress', ['split.test'], ['egress'], `http:
- match: [{headers: {user-agent: {regex: ".*IPHONE.*"}}}]
  route: [{destination: {host: split.test, subset: v2}}]
- route:
  - {destination: {host: split.test, subset: v1}, weight: 99}
  - {destination: {host: split.test, subset: v2}, weight: 1}`)}---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: split, namespace: egress}
spec:
  host: split.test
  subsets: [{name: v1, labels: {version: v1}}, {name: v2, labels: {version: v2}}]
---
${virtualService('others', 'egress', ['fault.test', 'outlier.test', 'dead.test', 'limited.test', 'sticky.test', 'rr.test'], ['egress'], `http:
- match: [{authority: {exact: fault.test}}]
  fault: {abort: {httpStatus: 503, percentage: {value: 50}}}
  route: [{destination: {host: fault.test}}]
- match: [{authority: {exact: outlier.test}}]
  headers: {request: {set: {x-config: ${extraHeader}}}}
  retries: {attempts: 0}
  route: [{destination: {host: outlier.test}}]
- match: [{authority: {exact: dead.test}}]
  retries: {attempts: 0}
  route: [{destination: {host: dead.test}}]
- match: [{authority: {exact: limited.test}}]
  route: [{destination: {host: limited.test}}]
- match: [{authority: {exact: sticky.test}}]
  route: [{destination: {host: sticky.test}}]
- match: [{authority: {exact: rr.test}}]
  route: [{destination: {host: rr.test}}]`)}---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: outlier, namespace: egress}
spec:
  host: outlier.test
  trafficPolicy:
    outlierDetection: {consecutive5xxErrors: 3, interval: 1s, baseEjectionTime: 30s, maxEjectionPercent: 50}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: dead, namespace: egress}
spec:
  host: dead.test
  trafficPolicy:
    outlierDetection: {consecutive5xxErrors: 2, baseEjectionTime: 30s}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: limited, namespace: egress}
spec:
  host: limited.test
  trafficPolicy:
    connectionPool:
      tcp: {maxConnections: 1}
      http: {http1MaxPendingRequests: 1, maxRequestsPerConnection: 1}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: sticky, namespace: egress}
spec:
  host: sticky.test
  trafficPolicy:
    loadBalancer: {consistentHash: {httpHeaderName: x-user}}
`
  );
}

describe('traffic policy through tollgate run', { concurrency: false }, () => {
  const peers: Record<string, Peer> = {};
  let gate: TestGate;
  let cfg: { path: string; cleanup(): void };
  const agent = new Agent({ keepAlive: true, maxSockets: 16 });

  const get = (host: string, path = '/', headers: Record<string, string> = {}): Promise<{ status: number; body: string }> => hostRequest(gate.port(80), host, { path, headers, agent });

  async function many(n: number, host: string, concurrency = 16, path = '/'): Promise<Map<string, number>> {
    const counts = new Map<string, number>();
    let next = 0;
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < n) {
          next++;
          const r = await get(host, path);
          const k = r.status === 200 ? r.body : String(r.status);
          counts.set(k, (counts.get(k) ?? 0) + 1);
        }
      }),
    );
    return counts;
  }

  before(async () => {
    for (const n of ['v1', 'v2', 'good', 'broken']) peers[n] = await peer(n);
    peers['broken']!.status = 500;
    ({ gate, cfg } = await startGateWithConfig(config(peers), EGRESS_GATEWAY_ARGS, { httpHandler: httpEngine({}) }));
  });

  after(async () => {
    agent.destroy();
    await gate?.stop();
    for (const p of Object.values(peers)) await p.up.close();
    cfg?.cleanup();
  });

  it('99/1 split over 2,000 requests: v2 gets 1% (accepted 5..40, i.e. about ±3.4 sigma of Binomial(2000, 0.01))', async () => {
    const c = await many(2000, 'split.test');
    const v1 = c.get('v1') ?? 0;
    const v2 = c.get('v2') ?? 0;
    assert.equal(v1 + v2, 2000, JSON.stringify([...c]));
    assert.ok(v2 >= 5 && v2 <= 40, `v2 served ${v2} of 2000`);
  });

  it('the canary by header: user-agent IPHONE always goes to v2', async () => {
    for (let i = 0; i < 20; i++) assert.equal((await get('split.test', '/', { 'user-agent': 'Mozilla/5.0 (IPHONE)' })).body, 'v2');
  });

  it('fault abort 50% shows in istio_requests_total by response_code (400 requests, each side 150..250)', async () => {
    const label = 'destination_service="fault.test"';
    const c = await many(400, 'fault.test');
    const aborted = c.get('503') ?? 0;
    assert.equal(aborted + (c.get('v1') ?? 0), 400);
    assert.ok(aborted >= 150 && aborted <= 250, `aborted ${aborted}`);
    assert.equal(gate.metric('istio_requests_total', `${label}`), 400);
    const m503 = gate.metric('istio_requests_total', 'response_code="503"');
    const m200 = gate.metric('istio_requests_total', 'response_code="200"');
    assert.ok(m503 >= aborted, `metric 503=${m503}`);
    assert.ok(m200 >= 400 - aborted);
    // Only this route aborts, so every FI-flagged sample is ours.
    assert.equal(gate.metric('istio_requests_total', 'response_flags="FI"'), aborted);
  });

  it('outlier detection: the broken endpoint is ejected after 3 consecutive 5xx and traffic continues', async () => {
    const first = await many(40, 'outlier.test', 1);
    assert.equal(first.get('500'), 3, JSON.stringify([...first]));
    assert.equal(first.get('good'), 37);
    const describe = gate.tg.services.clusters.describe().find((c) => c.name === 'outbound|80||outlier.test');
    assert.ok(describe?.outliers?.some((o) => o.ejected && o.host.startsWith(peers['broken']!.up.host)), JSON.stringify(describe));
  });

  it('the ejection survives a config reload (state lives outside the snapshot)', async () => {
    const before = gate.tg.snapshot.version;
    writeFileSync(cfg.path, config(peers, 'two'));
    await gate.tg.reload();
    assert.notEqual(gate.tg.snapshot.version, before);
    const c = await many(20, 'outlier.test', 1);
    assert.equal(c.get('good'), 20, JSON.stringify([...c]));
  });

  it('every endpoint ejected -> 503 UH no_healthy_upstream', async () => {
    assert.equal((await get('dead.test')).status, 500);
    assert.equal((await get('dead.test')).status, 500);
    gate.logs.length = 0;
    const r = await get('dead.test');
    assert.equal(r.status, 503);
    const rec = await gate.waitForLog((x) => x.authority === 'dead.test');
    assert.equal(rec.response_flags, 'UH');
    assert.equal(rec.tollgate_reason, 'no_healthy_upstream');
  });

  it('connectionPool maxConnections 1 + http1MaxPendingRequests 1: of 4 concurrent slow requests 2 pass, 2 get 503 UO', async () => {
    gate.logs.length = 0;
    const rs = await Promise.all([0, 1, 2, 3].map(() => get('limited.test', '/slow/300')));
    const ok = rs.filter((r) => r.status === 200).length;
    const over = rs.filter((r) => r.status === 503).length;
    assert.deepEqual([ok, over], [2, 2], JSON.stringify(rs));
    const uo = gate.logs.filter((x) => x.authority === 'limited.test' && x.response_flags === 'UO');
    assert.equal(uo.length, 2);
    assert.equal(uo[0]!.tollgate_reason, 'upstream_overflow');
    // Afterwards the slots are free again.
    assert.equal((await get('limited.test')).status, 200);
  });

  it('ROUND_ROBIN over two endpoints: one keep-alive connection keeps its upstream connection (affinity); new connections alternate', async () => {
    const one = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const seen: string[] = [];
      for (let i = 0; i < 8; i++) seen.push((await hostRequest(gate.port(80), 'rr.test', { agent: one })).body);
      assert.equal(new Set(seen).size, 1, `one downstream connection, endpoints ${seen.join(' ')}`);
    } finally {
      one.destroy();
    }
    const fresh: string[] = [];
    for (let i = 0; i < 8; i++) fresh.push((await hostRequest(gate.port(80), 'rr.test', { headers: { connection: 'close' } })).body);
    assert.deepEqual(new Set(fresh), new Set(['v1', 'v2']), `a new connection each: ${fresh.join(' ')}`);
  });

  it('consistentHash on x-user: each user sticks to one endpoint, and users spread over all three', async () => {
    const used = new Set<string>();
    for (let u = 0; u < 30; u++) {
      const seen = new Set<string>();
      for (let i = 0; i < 4; i++) seen.add((await get('sticky.test', '/', { 'x-user': `user-${u}` })).body);
      assert.equal(seen.size, 1, `user-${u} went to ${[...seen].join(', ')}`);
      used.add([...seen][0]!);
    }
    assert.equal(used.size, 3);
  });
});
