/**
 * Metric cardinality a client cannot grow: hosts the client chooses (Host, absolute-form target,
 * CONNECT target) never become label values — a request with no destination is counted under
 * BlackHoleCluster, a report-only passthrough under PassthroughCluster, as Istio reports them —
 * while the access log keeps every real authority. Behind that, --max-metric-series caps each
 * metric and counts what it refused.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { freeTcpPort } from '../helpers/dns.js';
import { rawClient } from '../helpers/http.js';
import { egressGateway, virtualService } from '../helpers/istio-yaml.js';
import { EDGE_GATEWAY_ARGS, startGate, tempConfig, withGateConfig, type TestGate } from '../helpers/tollgate.js';

/** The istio_* series (one line per label combination) of a metric. */
function series(gate: TestGate, name: string): string[] {
  return gate.tg.metrics.render().split('\n').filter((l) => l.startsWith(`${name}{`));
}

async function send(port: number, text: string): Promise<number> {
  const c = await rawClient('127.0.0.1', port);
  c.send(text);
  const [r] = await c.responses(1, 5000);
  c.destroy();
  return r!.status;
}

const random = (): string => `r${randomBytes(6).toString('hex')}.example`;

const DIRECT = [201, 202, 203, 204, 205];
const directRoutes = `http:\n${DIRECT.map((s) => `- match: [{uri: {exact: /s${s}}}]\n  directResponse: {status: ${s}}`).join('\n')}`;
const gatewayConfig = egressGateway(['direct.test'], 'edge', 'gw') + virtualService('direct', 'edge', ['direct.test'], ['gw'], directRoutes);

describe('metric cardinality', { concurrency: false }, () => {
  it('50 random Host headers on a gateway: one BlackHoleCluster series, 50 authorities in the access log', async () => {
    await withGateConfig(gatewayConfig, EDGE_GATEWAY_ARGS, async (gate) => {
      const port = gate.port(80);
      const hosts = Array.from({ length: 50 }, random);
      for (const h of hosts) assert.equal(await send(port, `GET / HTTP/1.1\r\nHost: ${h}\r\n\r\n`), 404);
      const lines = series(gate, 'istio_requests_total');
      assert.equal(lines.length, 1, lines.join('\n'));
      assert.match(lines[0]!, /destination_service="BlackHoleCluster",destination_service_name="BlackHoleCluster",.*response_code="404",response_flags="NR".* 50$/);
      for (const h of hosts) assert.ok(gate.logs.some((r) => r.authority === h), `access log has ${h}`);
    });
  });

  it('report-only explicit proxy: random absolute-form targets are PassthroughCluster, never a label of their own', async () => {
    const dir = tempConfig('# nothing registered\n');
    const proxyPort = await freeTcpPort();
    const gate = await startGate(['-f', dir.path, '-n', 'egress', '--explicit-proxy', `127.0.0.1:${proxyPort}`, '--report-only']);
    try {
      // Loopback literals: passed as ALLOW_ANY would, then refused by the SSRF guard (no --allow-cidr).
      const targets = Array.from({ length: 20 }, (_, i) => `127.77.${i}.${1 + i}`);
      for (const t of targets) assert.equal(await send(proxyPort, `GET http://${t}:9/ HTTP/1.1\r\nHost: ${t}:9\r\n\r\n`), 403);
      const lines = series(gate, 'istio_requests_total');
      assert.ok(lines.length >= 1 && lines.every((l) => l.includes('destination_service="PassthroughCluster"')), lines.join('\n'));
      const all = gate.tg.metrics.render().split('\n').filter((l) => l.startsWith('istio_'));
      assert.ok(!all.some((l) => l.includes('127.77.')), 'no client-chosen target in an istio_* label');
      assert.equal(gate.logs.filter((r) => r.authority?.startsWith('127.77.')).length, 20);
    } finally {
      await gate.stop();
      dir.cleanup();
    }
  });

  it('--max-metric-series 3: the fourth and fifth label combinations are refused and counted; the first three keep counting', async () => {
    await withGateConfig(gatewayConfig, [...EDGE_GATEWAY_ARGS, '--max-metric-series', '3'], async (gate) => {
      const port = gate.port(80);
      for (const s of DIRECT) assert.equal(await send(port, `GET /s${s} HTTP/1.1\r\nHost: direct.test\r\n\r\n`), s);
      assert.equal(await send(port, `GET /s201 HTTP/1.1\r\nHost: direct.test\r\n\r\n`), 201);
      const lines = series(gate, 'istio_requests_total');
      assert.equal(lines.length, 3, lines.join('\n'));
      assert.ok(lines.some((l) => l.includes('response_code="201"') && l.endsWith(' 2')), lines.join('\n'));
      assert.equal(gate.metric('tollgate_metric_series_refused_total', 'metric="istio_requests_total"'), 2);
      assert.equal(gate.logs.filter((r) => r.authority === 'direct.test').length, 6, 'the access log is not limited');
    });
  });
});
