/**
 * The last connectionPool fields on real sockets:
 *  - http.maxRetries: retries in flight per cluster are capped; a request that finds no retry slot
 *    gets its failure as it was (no retry), counted in tollgate_http_retry_overflow_total
 *  - http.idleTimeout: idle pooled upstream connections of that cluster close after it (the engine
 *    default, 15 s, still applies to other clusters)
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Agent } from 'node:http';
import { httpEngine } from '../../src/dataplane/http/engine.js';
import { TICK_MS } from '../../src/dataplane/sweeper.js';
import { hostRequest, startHttpUpstream, type HttpUpstream } from '../helpers/http.js';
import { egressGateway, externalEntry, httpEndpoint, virtualService } from '../helpers/istio-yaml.js';
import { loopbackAddress, waitFor } from '../helpers/net.js';
import { EGRESS_GATEWAY_ARGS, startGateWithConfig, type TestGate } from '../helpers/tollgate.js';

const se = (name: string, up: HttpUpstream): string => externalEntry(name, [httpEndpoint(up.host, up.port)]);

describe('connectionPool maxRetries and idleTimeout through tollgate run', { concurrency: false }, () => {
  let failing: HttpUpstream;
  let idle: HttpUpstream;
  let plain: HttpUpstream;
  /** When the idle upstream last answered: the gateway's idle timer starts after that. */
  let idleAnswered = 0;
  let gate: TestGate;
  let cfg: { path: string; cleanup(): void };

  const get = async (host: string, agent: Agent | false = false): Promise<number> => (await hostRequest(gate.port(80), host, { agent })).status;

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
    idle = await startHttpUpstream(h, 0, (req, res) => {
      ok(req, res);
      idleAnswered = Date.now();
    });
    plain = await startHttpUpstream(h, 0, ok);
    ({ gate, cfg } = await startGateWithConfig(
      se('failing', failing) +
        se('idle', idle) +
        se('plain', plain) +
        egressGateway(['failing.test', 'idle.test', 'plain.test']) +
        `${virtualService('all', 'egress', ['failing.test', 'idle.test', 'plain.test'], ['egress'], `http:
- match: [{authority: {exact: failing.test}}]
  retries: {attempts: 2, retryOn: 5xx}
  route: [{destination: {host: failing.test}}]
- match: [{authority: {exact: idle.test}}]
  route: [{destination: {host: idle.test}}]
- match: [{authority: {exact: plain.test}}]
  route: [{destination: {host: plain.test}}]`)}---
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
      EGRESS_GATEWAY_ARGS,
      { httpHandler: httpEngine({}) },
    ));
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
    assert.equal(await get('plain.test'), 200);
    assert.equal(await get('idle.test'), 200);
    assert.equal(idle.connections, 1);
    // A loaded machine delays the close, so the upper bound is generous. The pool stamps idleness
    // with the sweeper's coarse clock (a tick old, more when the event loop runs late), so the lower
    // bound leaves two ticks: it still tells a 300 ms idle timeout from a connection closed at once.
    await waitFor(() => idle.closedConnections === 1, 10_000, 'idle connection closed by the gateway');
    const idleFor = Date.now() - idleAnswered;
    assert.ok(idleFor >= 300 - 2 * TICK_MS, `closed ${idleFor} ms after the upstream answered: not idle for the 300 ms idleTimeout`);
    assert.equal(plain.closedConnections, 0, 'the engine default (15 s) applies elsewhere');
    assert.equal(await get('idle.test'), 200);
    assert.equal(idle.connections, 2, 'a new connection after the idle close');
  });
});
