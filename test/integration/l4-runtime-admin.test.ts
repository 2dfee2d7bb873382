/**
 * Runtime and admin: /ready only after every listener is bound, the admin views, reloads (warm ->
 * swap -> drain: a long-lived tunnel survives an unrelated reload, a removed listener stops
 * accepting), SIGTERM (readiness fails, listeners close, in-flight connections finish, exit 0),
 * the bundled default config, and a bind failure rejecting a snapshot.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { connect, createServer, type Socket } from 'node:net';
import { freeTcpPort } from '../helpers/dns.js';
import { closeServer, listen, loopbackAddress, makeCerts, startEchoServer, tcpExchange, waitFor, type EchoServer } from '../helpers/net.js';
import { requireTools, run } from '../helpers/tools.js';
import { spawnGate, startGate, tempConfig, type TestGate } from '../helpers/tollgate.js';
import { parseRunArgs } from '../../src/cli/run.js';

function tcpGatewayYaml(ports: readonly { port: number; upstream: string; upstreamPort: number }[]): string {
  const docs: string[] = [];
  for (const p of ports) {
    docs.push(`
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: svc-${p.port}, namespace: istio-system }
spec:
  hosts: [svc-${p.port}.example]
  addresses: [${p.upstream}/32]
  ports: [{ number: ${p.upstreamPort}, name: tcp, protocol: TCP }]
  resolution: STATIC
  endpoints: [{ address: ${p.upstream} }]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: vs-${p.port}, namespace: istio-system }
spec:
  hosts: [svc-${p.port}.example]
  gateways: [gw]
  tcp:
  - match: [{ port: ${p.port} }]
    route: [{ destination: { host: svc-${p.port}.example, port: { number: ${p.upstreamPort} } } }]`);
  }
  docs.push(`
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: gw, namespace: istio-system }
spec:
  selector: { istio: egressgateway }
  servers:
${ports.map((p) => `  - port: { number: ${p.port}, name: tcp-${p.port}, protocol: TCP }\n    hosts: [svc-${p.port}.example]`).join('\n')}`);
  return docs.join('\n---');
}

async function open(port: number): Promise<{ s: Socket; text: () => string }> {
  const s = connect({ host: '127.0.0.1', port });
  let t = '';
  s.on('data', (d) => (t += d.toString()));
  s.on('error', () => {});
  await new Promise((r) => s.once('connect', r));
  return { s, text: () => t };
}

describe('runtime: reload and admin', { concurrency: false }, () => {
  let echo: EchoServer;
  let gate: TestGate;
  let cfg: { path: string; cleanup(): void };
  let adminPort: number;
  let up: string;

  before(async () => {
    up = loopbackAddress();
    echo = await startEchoServer(up, 0);
    cfg = tempConfig(tcpGatewayYaml([{ port: 31000, upstream: up, upstreamPort: echo.port }, { port: 31001, upstream: up, upstreamPort: echo.port }]));
    adminPort = await freeTcpPort();
    gate = await startGate(['-f', cfg.path, '--port-map', '31000=0,31001=0,31002=0', '--admin', `127.0.0.1:${adminPort}`]);
  });

  after(async () => {
    await gate?.stop();
    await echo?.close();
    cfg?.cleanup();
  });

  const admin = async (path: string, method = 'GET'): Promise<{ status: number; body: string }> => {
    const r = await fetch(`http://127.0.0.1:${adminPort}${path}`, { method });
    return { status: r.status, body: await r.text() };
  };

  it('admin: /ready, /healthz, /listeners, /clusters, /config_dump, /stats/prometheus, /logging', async () => {
    assert.deepEqual(await admin('/ready'), { status: 200, body: 'LIVE\n' });
    assert.equal((await admin('/healthz')).status, 200);
    const r = await tcpExchange('127.0.0.1', gate.port(31000), 'abc', { endAfterSend: true });
    assert.match(r.data, /^peer=/);
    const listeners = JSON.parse((await admin('/listeners')).body) as { port: number; boundPort: number }[];
    assert.deepEqual(listeners.map((l) => l.port).sort(), [31000, 31001]);
    const clusters = JSON.parse((await admin('/clusters')).body) as { clusters: { name: string; endpoints: { address: string }[] }[] };
    assert.ok(clusters.clusters.some((c) => c.name === `outbound|${echo.port}||svc-31000.example` && c.endpoints[0]?.address === up));
    const dump = JSON.parse((await admin('/config_dump')).body) as { snapshot: { version: string } };
    assert.equal(dump.snapshot.version, gate.tg.snapshot.version);
    const prom = (await admin('/stats/prometheus')).body;
    assert.match(prom, /^istio_tcp_connections_opened_total\{reporter="source",.*destination_service="svc-31000.example".*\} \d+$/m);
    assert.match(prom, /^# TYPE istio_tcp_sent_bytes_total counter$/m);
    assert.match(prom, /^tollgate_downstream_connections_active\{listener="0.0.0.0_31000"\} 0$/m);
    // A GET never changes the level (POST only).
    assert.equal((await admin('/logging?level=debug')).status, 405);
    assert.equal(gate.tg.services.logger.level, 'error');
    assert.equal((await admin('/logging?level=debug', 'POST')).body, 'level: debug\n');
    assert.equal(gate.tg.services.logger.level, 'debug');
    assert.equal((await admin('/logging?level=bogus', 'POST')).status, 400);
    await admin('/logging?level=error', 'POST');
  });

  it('reload: a tunnel open on a kept listener survives; a removed listener stops accepting; an added one binds', async () => {
    const t = await open(gate.port(31000));
    await waitFor(() => t.text().startsWith('peer='));
    const removedPort = gate.port(31001);
    const { writeFileSync } = await import('node:fs');
    writeFileSync(cfg.path, tcpGatewayYaml([{ port: 31000, upstream: up, upstreamPort: echo.port }, { port: 31002, upstream: up, upstreamPort: echo.port }]));
    const before = gate.tg.snapshot.version;
    await gate.tg.reload();
    assert.notEqual(gate.tg.snapshot.version, before);
    t.s.write('still-here');
    await waitFor(() => t.text().includes('still-here'), 2000, 'echo through the old tunnel');
    const removed = await tcpExchange('127.0.0.1', removedPort, 'x', { timeoutMs: 2000 });
    assert.equal(removed.error, 'ECONNREFUSED');
    const added = await tcpExchange('127.0.0.1', gate.port(31002), 'y', { endAfterSend: true });
    assert.match(added.data, /^peer=.*\nybye\n$/);
    t.s.destroy();
  });

  it('a snapshot whose listener cannot bind is rejected; the running one stays', async () => {
    const blocker = createServer();
    const busy = await listen(blocker, '127.0.0.1');
    const version = gate.tg.snapshot.version;
    const other = await startGate(['-f', cfg.path, '--port-map', `31000=${busy},31002=0`]).catch((e: Error) => e);
    assert.ok(other instanceof Error && /TG_LISTENER_BIND|cannot bind/.test(other.message), String(other));
    assert.equal(gate.tg.snapshot.version, version);
    await closeServer(blocker);
  });
});

describe('the bundled default config (no -f)', () => {
  it('parses to examples/default and runs an egress gateway that denies unknown SNIs', async () => {
    const opts = parseRunArgs([]);
    assert.ok(opts.usingDefaultConfig);
    assert.match(opts.files[0] ?? '', /examples[/\\]default$/);
    assert.equal(opts.tlsHelloTimeoutMs, 15_000, 'the silent-client timeout defaults to 15 s');
    const gate = await startGate(['--port-map', '8080=0,8443=0']);
    try {
      const names = gate.tg.runtime.listeners().map((l) => l.name).sort();
      assert.deepEqual(names, ['127.0.0.1_8080', '127.0.0.1_8443']);
      const r = await tcpExchange('127.0.0.1', gate.port(8443), 'not tls at all\r\n\r\n');
      assert.equal(r.data, '');
      await gate.waitForLog((x) => x.tollgate_reason === 'tls_not_tls');
    } finally {
      await gate.stop();
    }
  });
});

describe('SIGTERM drain (child process)', () => {
  it('readiness fails, new connections are refused, the in-flight tunnel finishes, exit 0', async () => {
    const up = loopbackAddress();
    const echo = await startEchoServer(up, 0);
    const cfg = tempConfig(tcpGatewayYaml([{ port: 32000, upstream: up, upstreamPort: echo.port }]));
    const port = await freeTcpPort();
    const adminPort = await freeTcpPort();
    const gate = spawnGate(['-f', cfg.path, '--port-map', `32000=${port}`, '--listen-address-override', '127.0.0.1', '--admin', `127.0.0.1:${adminPort}`, '--drain-timeout', '5000']);
    try {
      await gate.waitForStderr('tollgate running');
      assert.equal((await fetch(`http://127.0.0.1:${adminPort}/ready`)).status, 200);
      const t = await open(port);
      await waitFor(() => t.text().startsWith('peer='));
      const t0 = Date.now();
      gate.kill('SIGTERM');
      await gate.waitForStderr('SIGTERM: draining');
      const ready = await fetch(`http://127.0.0.1:${adminPort}/ready`).then((r) => r.status).catch(() => 0);
      assert.ok(ready === 503 || ready === 0, `ready during drain: ${ready}`);
      const refused = await tcpExchange('127.0.0.1', port, 'x', { timeoutMs: 1000 });
      assert.equal(refused.error, 'ECONNREFUSED');
      t.s.write('in-flight');
      await waitFor(() => t.text().includes('in-flight'), 2000, 'in-flight echo');
      t.s.end();
      assert.equal(await gate.exit(), 0);
      assert.ok(Date.now() - t0 < 4000, 'exited once the last connection finished, before the drain timeout');
      const recs = gate.records();
      assert.ok(recs.some((r) => r.bytes_received === 'in-flight'.length), JSON.stringify(recs));
    } finally {
      gate.kill('SIGKILL');
      await echo.close();
      cfg.cleanup();
    }
  });
});

describe('TLS termination on http chains (Gateway tls.mode SIMPLE)', () => {
  it('the listener terminates TLS with the configured certificate and hands the HTTP engine a TLS socket', async (t) => {
    if (!requireTools(t, 'openssl', 'curl')) return;
    const certs = makeCerts(['www.example.test']);
    const cfg = tempConfig(`
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: gw, namespace: istio-system }
spec:
  selector: { istio: ingressgateway }
  servers:
  - port: { number: 443, name: https, protocol: HTTPS }
    hosts: [www.example.test]
    tls: { mode: SIMPLE, serverCertificate: ${certs.cert}, privateKey: ${certs.key} }
`);
    const gate = await startGate(['-f', cfg.path, '--port-map', '443=0']);
    try {
      const p = gate.port(443);
      const r = await run('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code} %{ssl_verify_result}', '--cacert', certs.cert, '--resolve', `www.example.test:${p}:127.0.0.1`, `https://www.example.test:${p}/`]);
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /^\d{3} 0$/, 'a verified handshake and an HTTP answer');
      const rec = await gate.waitForLog((x) => x.requested_server_name === 'www.example.test');
      assert.ok(rec.response_code >= 200);
    } finally {
      await gate.stop();
      cfg.cleanup();
      certs.cleanup();
    }
  });
});
