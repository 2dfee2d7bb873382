/**
 * The rest of VirtualService on real sockets (node:http peers on loopback):
 *  - local rate limit per route (annotation tollgate.io/local-rate-limit): a burst over the limit
 *    gets 429 RL with x-ratelimit-* / retry-after, the bucket refills, other routes are unaffected,
 *    istio_requests_total{response_code="429",response_flags="RL"}; the bucket survives a reload
 *  - mirror / mirrorPercentage: the shadow receives the copy (Host `<host>-shadow`, same body), the
 *    main response is unaffected when the mirror upstream is slow or refuses connections, 50% of
 *    400 requests mirrored within 150..250, bodies over 64 KiB are not mirrored
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Agent, type ServerResponse } from 'node:http';
import { createServer } from 'node:net';
import { writeFileSync } from 'node:fs';
import { httpEngine } from '../../src/dataplane/http/engine.js';
import { header, hostRequest, replyText, startHttpUpstream, type HostResponse, type HttpUpstream } from '../helpers/http.js';
import { egressGateway, externalEntry, httpEndpoint, virtualService } from '../helpers/istio-yaml.js';
import { loopbackAddress } from '../helpers/net.js';
import { EGRESS_GATEWAY_ARGS, startGateWithConfig, type TestGate } from '../helpers/tollgate.js';

async function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on('error', reject);
    s.listen(0, host, () => {
      const a = s.address();
      const p = typeof a === 'object' && a !== null ? a.port : 0;
      s.close(() => resolve(p));
    });
  });
}

const se = (name: string, host: string, port: number): string => externalEntry(name, [httpEndpoint(host, port)]);

interface Peers {
  main: HttpUpstream;
  shadow: HttpUpstream;
  slow: HttpUpstream;
  deadHost: string;
  deadPort: number;
}

function config(p: Peers, limit = '5/s burst=5', version = 'one'): string {
  const hosts = ['limited', 'free', 'mirrored', 'slowmirror', 'deadmirror', 'half'];
  return (
    se('main', p.main.host, p.main.port) +
    se('shadow', p.shadow.host, p.shadow.port) +
    se('slowshadow', p.slow.host, p.slow.port) +
    se('deadshadow', p.deadHost, p.deadPort) +
    egressGateway(hosts.map((h) => `${h}.test`)) +
    `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: limited
  namespace: egress
  annotations: {tollgate.io/local-rate-limit: "${limit}"}
spec:
  hosts: [limited.test]
  gateways: [egress]
  http:
  - match: [{uri: {prefix: /a}}]
    route: [{destination: {host: main.test}}]
  - route: [{destination: {host: main.test}}]
---
${virtualService('others', 'egress', ['free.test', 'mirrored.test', 'slowmirror.test', 'deadmirror.test', 'half.test'], ['egress'], `http:
- match: [{authority: {exact: free.test}}]
  headers: {request: {set: {x-config: ${version}}}}
  route: [{destination: {host: main.test}}]
- match: [{authority: {exact: mirrored.test}}]
  route: [{destination: {host: main.test}}]
  mirror: {host: shadow.test}
- match: [{authority: {exact: slowmirror.test}}]
  route: [{destination: {host: main.test}}]
  mirror: {host: slowshadow.test}
- match: [{authority: {exact: deadmirror.test}}]
  route: [{destination: {host: main.test}}]
  mirror: {host: deadshadow.test}
- match: [{authority: {exact: half.test}}]
  route: [{destination: {host: main.test}}]
  mirror: {host: shadow.test}
  mirrorPercentage: {value: 50}`)}`
  );
}

describe('local rate limit and mirroring through tollgate run', { concurrency: false }, () => {
  let peers: Peers;
  let gate: TestGate;
  let cfg: { path: string; cleanup(): void };
  const agent = new Agent({ keepAlive: true, maxSockets: 8 });
  // The engine's buckets read this manual clock: the rate-limit tests move time themselves, so no
  // token comes back while a slow machine is still sending a burst.
  let clockMs = 1_000_000;
  // The slow mirror upstream answers only when the test lets it (releaseSlow).
  const slowHeld: ServerResponse[] = [];
  const releaseSlow = (): void => {
    for (const res of slowHeld.splice(0)) if (!res.destroyed) replyText('slow')(undefined, res);
  };

  const send = (host: string, path = '/', method = 'GET', body?: Buffer): Promise<HostResponse> =>
    hostRequest(gate.port(80), host, { path, method, agent, ...(body !== undefined ? { body } : {}) });

  const shadowSeen = (path: string): number => peers.shadow.requests.filter((r) => r.url === path).length;

  async function waitUntil(pred: () => boolean, ms = 3000): Promise<void> {
    const end = Date.now() + ms;
    while (!pred()) {
      if (Date.now() > end) throw new Error('timed out waiting');
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  before(async () => {
    const h = loopbackAddress();
    const reply = replyText;
    const main = await startHttpUpstream(h, 0, reply('main'));
    const shadow = await startHttpUpstream(h, 0, reply('shadow'));
    const slow = await startHttpUpstream(h, 0, (_req, res) => void slowHeld.push(res));
    peers = { main, shadow, slow, deadHost: h, deadPort: await freePort(h) };
    ({ gate, cfg } = await startGateWithConfig(config(peers), EGRESS_GATEWAY_ARGS, { httpHandler: httpEngine({ clock: () => clockMs }) }));
  });

  after(async () => {
    agent.destroy();
    releaseSlow();
    await gate?.stop();
    for (const u of [peers?.main, peers?.shadow, peers?.slow]) await u?.close();
    cfg?.cleanup();
  });

  it('rate limit: a burst over 5/s burst=5 gets 429 RL with x-ratelimit-* and retry-after; other routes are unaffected', async () => {
    gate.logs.length = 0;
    // Opens the keep-alive connections first (free.test has no limit).
    await Promise.all(Array.from({ length: 8 }, () => send('free.test')));
    const rs = await Promise.all(Array.from({ length: 8 }, () => send('limited.test', '/a')));
    assert.deepEqual(
      rs.map((r) => r.status).sort(),
      [200, 200, 200, 200, 200, 429, 429, 429],
    );
    const denied = rs.find((r) => r.status === 429)!;
    assert.equal(denied.headers['x-ratelimit-limit'], '5');
    assert.equal(denied.headers['x-ratelimit-remaining'], '0');
    assert.equal(denied.headers['x-ratelimit-reset'], '1');
    assert.equal(denied.headers['retry-after'], '1');
    assert.equal(denied.headers['x-tollgate-reason'], 'rate_limited');
    const rec = await gate.waitForLog((x) => x.authority === 'limited.test' && x.response_code === 429);
    assert.equal(rec.response_flags, 'RL');
    assert.equal(rec.tollgate_reason, 'rate_limited');
    assert.equal(rec.route_name, 'egress/limited:0');
    // The other route of the same VirtualService has its own bucket; other VirtualServices none.
    assert.equal((await send('limited.test', '/b')).status, 200);
    for (let i = 0; i < 20; i++) assert.equal((await send('free.test')).status, 200);
    const lines = gate.tg.metrics.render().split('\n').filter((l) => l.startsWith('istio_requests_total{') && l.includes('response_code="429"') && l.includes('response_flags="RL"'));
    assert.equal(lines.reduce((n, l) => n + Number(l.slice(l.lastIndexOf(' ') + 1)), 0), 3, lines.join('\n'));
  });

  it('rate limit: the bucket refills (5 per second: one token every 200 ms), up to the burst only', async () => {
    const statuses = async (n: number): Promise<number[]> => {
      const rs: number[] = [];
      for (let i = 0; i < n; i++) rs.push((await send('limited.test', '/a')).status);
      return rs;
    };
    // The clock has not moved since the burst: the bucket is still empty.
    assert.deepEqual(await statuses(2), [429, 429]);
    clockMs += 450; // 2.25 tokens back
    assert.deepEqual(await statuses(3), [200, 200, 429]);
    clockMs += 150; // 0.25 + 0.75 = 1 token
    assert.deepEqual(await statuses(2), [200, 429]);
    clockMs += 60_000; // a long pause refills to the burst of 5, not 300
    assert.deepEqual(await statuses(7), [200, 200, 200, 200, 200, 429, 429]);
  });

  it('rate limit: the bucket survives a reload that keeps the limit, and restarts full when the limit changes', async () => {
    writeFileSync(cfg.path, config(peers, '1/m burst=3'));
    await gate.tg.reload();
    const rs = [];
    for (let i = 0; i < 4; i++) rs.push((await send('limited.test', '/a')).status);
    assert.deepEqual(rs, [200, 200, 200, 429], 'a changed limit starts with a full bucket');
    const v = gate.tg.snapshot.version;
    writeFileSync(cfg.path, config(peers, '1/m burst=3', 'two'));
    await gate.tg.reload();
    assert.notEqual(gate.tg.snapshot.version, v);
    const r = await send('limited.test', '/a');
    assert.equal(r.status, 429, 'same limit: the bucket is still empty after the reload');
    assert.equal(r.headers['x-ratelimit-limit'], '3');
    assert.ok(Number(r.headers['retry-after']) > 1 && Number(r.headers['retry-after']) <= 60, String(r.headers['retry-after']));
  });

  it('mirror: the shadow gets a copy with Host <host>-shadow and the same body; its own log line; counted', async () => {
    gate.logs.length = 0;
    const mainBefore = gate.metric('istio_requests_total', 'destination_service="main.test"');
    const r = await send('mirrored.test', '/m1');
    assert.equal(r.body, 'main');
    const body = Buffer.from('hello mirror');
    assert.equal((await send('mirrored.test', '/m2', 'POST', body)).body, 'main');
    await waitUntil(() => shadowSeen('/m1') === 1 && shadowSeen('/m2') === 1);
    const m1 = peers.shadow.requests.find((x) => x.url === '/m1')!;
    assert.equal(header(m1, 'host'), 'mirrored.test-shadow');
    const m2 = peers.shadow.requests.find((x) => x.url === '/m2')!;
    assert.equal(m2.method, 'POST');
    assert.equal(m2.body, 'hello mirror');
    const mainM1 = peers.main.requests.find((x) => x.url === '/m1')!;
    assert.equal(header(m1, 'x-request-id'), header(mainM1, 'x-request-id'), 'the copy carries the same request id');
    const rec = await gate.waitForLog((x) => x.route_name === 'egress/others:1#mirror' && x.path === '/m1');
    assert.equal(rec.authority, 'mirrored.test-shadow');
    assert.equal(rec.response_code, 200);
    assert.equal(rec.upstream_cluster, 'outbound|80||shadow.test');
    assert.ok(gate.metric('tollgate_http_mirror_requests_total', 'cluster="outbound|80||shadow.test"') >= 2);
    // The copy is not a client request: istio_requests_total counts the two main requests only.
    assert.equal(gate.metric('istio_requests_total', 'destination_service="main.test"'), mainBefore + 2);
  });

  it('mirror: bodies over 64 KiB go to the main upstream only', async () => {
    const big = Buffer.alloc(100 * 1024, 'x');
    assert.equal((await send('mirrored.test', '/big', 'POST', big)).body, 'main');
    assert.equal(peers.main.requests.find((x) => x.url === '/big')?.body.length, big.length);
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(shadowSeen('/big'), 0);
    assert.equal(gate.metric('tollgate_http_mirror_skipped_total', 'reason="body_too_large"'), 1);
  });

  it('mirror: a mirror upstream that has not answered does not hold the main request', async () => {
    // The mirror upstream answers nothing until released below: every main answer that comes back
    // came back while its copy was still unanswered. Were the main request waiting on its mirror,
    // no answer would come and the bound (against a hang only) would fail the test.
    for (let i = 0; i < 5; i++) {
      const r = await Promise.race([
        send('slowmirror.test', `/s${i}`),
        new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`main request /s${i} waited on its unanswered mirror`)), 20_000).unref()),
      ]);
      assert.equal(r.body, 'main');
    }
    await waitUntil(() => peers.slow.requests.filter((x) => x.url.startsWith('/s')).length === 5, 10_000);
    assert.equal(slowHeld.length, 5, 'all five copies still unanswered when the main answers came');
    releaseSlow();
  });

  it('mirror: a mirror upstream refusing connections does not fail the main request; the copy is logged UF', async () => {
    gate.logs.length = 0;
    for (let i = 0; i < 5; i++) {
      const r = await send('deadmirror.test', `/d${i}`);
      assert.equal(r.status, 200);
      assert.equal(r.body, 'main');
    }
    const rec = await gate.waitForLog((x) => x.route_name?.endsWith('#mirror') === true && x.path === '/d0');
    assert.equal(rec.response_code, 503);
    assert.equal(rec.response_flags, 'UF');
  });

  it('mirrorPercentage 50: of 400 requests 150..250 are mirrored', async () => {
    let next = 0;
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (next < 400) {
          next++;
          assert.equal((await send('half.test', '/half')).status, 200);
        }
      }),
    );
    await new Promise((r) => setTimeout(r, 200));
    const n = shadowSeen('/half');
    assert.ok(n >= 150 && n <= 250, `mirrored ${n} of 400`);
    assert.equal(peers.main.requests.filter((x) => x.url === '/half').length, 400);
  });
});
