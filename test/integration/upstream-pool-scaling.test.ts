/**
 * The upstream pool keeps as many idle connections as the traffic to an upstream needs: 512
 * concurrent keep-alive clients through one upstream reuse their upstream connections instead of
 * closing and re-dialing them (a fixed idle cap of 128 per upstream churned tens of thousands of
 * connections and filled the ephemeral port range with TIME_WAIT), and a DestinationRule's
 * connectionPool.tcp.maxConnections still bounds what is kept.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Agent } from 'node:http';
import { hostRequest, startHttpUpstream, type HttpUpstream } from '../helpers/http.js';
import { egressGateway, externalEntry, httpEndpoint, virtualService } from '../helpers/istio-yaml.js';
import { loopbackAddress } from '../helpers/net.js';
import { EGRESS_GATEWAY_ARGS, startGateWithConfig, type TestGate } from '../helpers/tollgate.js';

const CLIENTS = 512;
const ROUNDS = 6;

/** `clients` keep-alive loops of `rounds` requests each; resolves with every status. */
async function closedLoop(port: number, host: string, clients: number, rounds: number): Promise<number[]> {
  const agent = new Agent({ keepAlive: true, maxSockets: clients, maxFreeSockets: clients });
  const statuses: number[] = [];
  try {
    await Promise.all(
      Array.from({ length: clients }, async (_, i) => {
        for (let r = 0; r < rounds; r++) {
          const res = await hostRequest(port, host, { agent, path: `/c${i}/r${r}`, timeoutMs: 60_000 }).catch(() => ({ status: 0 }));
          statuses.push(res.status);
        }
      }),
    );
  } finally {
    agent.destroy();
  }
  return statuses;
}

describe('upstream pool sized by concurrency', { concurrency: false }, () => {
  let wide: HttpUpstream;
  let capped: HttpUpstream;
  let gate: TestGate;
  let cfg: { cleanup(): void };

  before(async () => {
    // Responses are held and released together (all the requests of a round, or what arrived
    // within 300 ms): the proxy gets a burst of responses, and releases that many upstream
    // connections, before the clients' next requests arrive — as a loaded proxy sees them in batches.
    const burst = (): import('../helpers/http.js').Handler => {
      let held: import('node:http').ServerResponse[] = [];
      let timer: NodeJS.Timeout | undefined;
      const flush = (): void => {
        if (timer) clearTimeout(timer);
        timer = undefined;
        const all = held;
        held = [];
        for (const res of all) if (!res.destroyed) res.writeHead(200, { 'content-length': '2' }).end('ok');
      };
      return (_req, res) => {
        held.push(res);
        if (held.length >= CLIENTS) flush();
        else if (timer === undefined) timer = setTimeout(flush, 300);
      };
    };
    wide = await startHttpUpstream(loopbackAddress(), 0, burst());
    capped = await startHttpUpstream(loopbackAddress(), 0, burst());
    ({ gate, cfg } = await startGateWithConfig(
      externalEntry('wide', [httpEndpoint(wide.host, wide.port)]) +
        externalEntry('capped', [httpEndpoint(capped.host, capped.port)]) +
        egressGateway(['wide.test', 'capped.test']) +
        virtualService('wide', 'egress', ['wide.test'], ['egress'], 'http:\n- route: [{destination: {host: wide.test}}]') +
        '---\n' +
        virtualService('capped', 'egress', ['capped.test'], ['egress'], 'http:\n- route: [{destination: {host: capped.test}}]') +
        `---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: capped, namespace: egress}
spec:
  host: capped.test
  trafficPolicy:
    connectionPool: {tcp: {maxConnections: 16}, http: {http1MaxPendingRequests: 10000}}
`,
      EGRESS_GATEWAY_ARGS,
    ));
  });

  after(async () => {
    await gate?.stop();
    await wide?.close();
    await capped?.close();
    cfg?.cleanup();
  });

  it(`${CLIENTS} concurrent keep-alive clients through one upstream: every request served, upstream connections bounded by the concurrency`, async () => {
    const statuses = await closedLoop(gate.port(80), 'wide.test', CLIENTS, ROUNDS);
    assert.equal(statuses.length, CLIENTS * ROUNDS);
    assert.deepEqual(statuses.filter((s) => s !== 200), [], 'no request failed');
    assert.equal(wide.requests.length, CLIENTS * ROUNDS);
    // At most one connection per concurrent request, plus slack for the ramp; the old fixed cap of
    // 128 idle per upstream re-dialed most connections every round (~2,000 here).
    assert.ok(wide.connections <= CLIENTS + 64, `upstream accepted ${wide.connections} connections for ${CLIENTS} concurrent clients`);
    assert.ok(gate.metric('tollgate_http_upstream_connections_reused_total') >= CLIENTS * (ROUNDS - 2), 'connections were reused');
  });

  it('connectionPool.tcp.maxConnections bounds the connections to the upstream, and they are reused', async () => {
    const statuses = await closedLoop(gate.port(80), 'capped.test', 64, 4);
    assert.deepEqual(statuses.filter((s) => s !== 200), [], 'queued requests are served, none fail');
    assert.ok(capped.connections <= 16, `upstream accepted ${capped.connections} connections (maxConnections 16)`);
    const r = await hostRequest(gate.port(80), 'capped.test');
    assert.equal(r.status, 200);
    assert.ok(capped.connections <= 16, 'a later request reuses a pooled connection');
  });
});
