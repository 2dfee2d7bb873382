/**
 * Issue 5, the last connectionPool fields on real sockets:
 *  - http.maxRetries: retries in flight per cluster are capped; a request that finds no retry slot
 *    gets its failure as it was (no retry), counted in tollgate_http_retry_overflow_total
 *  - http.idleTimeout: idle pooled upstream connections of that cluster close after it (the engine
 *    default, 15 s, still applies to other clusters)
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Agent, request } from 'node:http';
import { httpEngine } from '../../src/dataplane/http/engine.js';
import { startHttpUpstream, type HttpUpstream } from '../helpers/http.js';
import { loopbackAddress } from '../helpers/net.js';
import { startGate, tempConfig, type TestGate } from '../helpers/tollgate.js';

function se(name: string, up: HttpUpstream): string {
  return `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ${name}, namespace: egress}
spec:
  hosts: [${name}.test]
  ports: [{number: 80, name: http, protocol: HTTP}]
  location: MESH_EXTERNAL
  resolution: STATIC
  endpoints: [{address: ${up.host}, ports: {http: ${up.port}}}]
---
`;
}

describe('connectionPool maxRetries and idleTimeout through tollgate run', { concurrency: false }, () => {
  let failing: HttpUpstream;
  let idle: HttpUpstream;
  let plain: HttpUpstream;
  let gate: TestGate;
  let cfg: { path: string; cleanup(): void };

  function get(host: string, agent: Agent | false = false): Promise<number> {
    return new Promise((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: gate.port(80), path: '/', agent, headers: { host } }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      req.setTimeout(5000, () => req.destroy(new Error('timeout')));
      req.on('error', reject);
      req.end();
    });
  }

  before(async () => {
    const h = loopbackAddress();
    failing = await startHttpUpstream(h, 0, (_req, res) => {
      setTimeout(() => {
        if (!res.destroyed) res.writeHead(503, { 'content-length': '0' }).end();
      }, 250);
    });
    const ok = (_req: unknown, res: import('node:http').ServerResponse): void => {
      res.writeHead(200, { 'content-length': '2' }).end('ok');
    };
    idle = await startHttpUpstream(h, 0, ok);
    plain = await startHttpUpstream(h, 0, ok);
    cfg = tempConfig(
      se('failing', failing) +
        se('idle', idle) +
        se('plain', plain) +
        `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: egress, namespace: egress}
spec:
  selector: {istio: egressgateway}
  servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: [failing.test, idle.test, plain.test]}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: all, namespace: egress}
spec:
  hosts: [failing.test, idle.test, plain.test]
  gateways: [egress]
  http:
  - match: [{authority: {exact: failing.test}}]
    retries: {attempts: 2, retryOn: 5xx}
    route: [{destination: {host: failing.test}}]
  - match: [{authority: {exact: idle.test}}]
    route: [{destination: {host: idle.test}}]
  - match: [{authority: {exact: plain.test}}]
    route: [{destination: {host: plain.test}}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: failing, namespace: egress}
spec:
  host: failing.test
  trafficPolicy:
    connectionPool: {http: {maxRetries: 1}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: idle, namespace: egress}
spec:
  host: idle.test
  trafficPolicy:
    connectionPool: {http: {idleTimeout: 300ms}}
`,
    );
    gate = await startGate(['-f', cfg.path, '--role', 'gateway', '-n', 'egress', '-l', 'istio=egressgateway', '--port-map', '80=0'], { httpHandler: httpEngine({}) });
  });

  after(async () => {
    await gate?.stop();
    for (const u of [failing, idle, plain]) await u?.close();
    cfg?.cleanup();
  });

  it('maxRetries 1: of 3 concurrent failing requests one retries (3 tries), two get their 503 without retry', async () => {
    gate.logs.length = 0;
    const rs = await Promise.all([0, 1, 2].map(() => get('failing.test')));
    assert.deepEqual(rs, [503, 503, 503]);
    assert.equal(failing.requests.length, 3 + 2, 'one request with 2 retries, two without');
    assert.equal(gate.metric('tollgate_http_retry_overflow_total', 'cluster="outbound|80||failing.test"'), 2);
    const recs = gate.logs.filter((r) => r.authority === 'failing.test');
    assert.equal(recs.length, 3);
    assert.equal(recs.filter((r) => r.response_flags === 'URX').length, 1, JSON.stringify(recs.map((r) => r.response_flags)));
    // The slot is free again: a lone request retries.
    failing.requests.length = 0;
    assert.equal(await get('failing.test'), 503);
    assert.equal(failing.requests.length, 3);
    assert.deepEqual(gate.tg.services.clusters.describe().find((c) => c.name === 'outbound|80||failing.test')?.requests, { active: 0, pending: 0, retries: 0 });
  });

  it('idleTimeout 300ms: the idle upstream connection closes; another cluster keeps its connection', async () => {
    assert.equal(await get('idle.test'), 200);
    assert.equal(await get('plain.test'), 200);
    assert.equal(idle.connections, 1);
    assert.equal(idle.closedConnections, 0);
    await new Promise((r) => setTimeout(r, 700));
    assert.equal(idle.closedConnections, 1, 'closed by the gateway after 300 ms idle');
    assert.equal(plain.closedConnections, 0, 'the engine default (15 s) applies elsewhere');
    assert.equal(await get('idle.test'), 200);
    assert.equal(idle.connections, 2, 'a new connection after the idle close');
  });
});
