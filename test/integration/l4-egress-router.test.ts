/**
 * The OpenShift egress router Deployment (fixture: OpenShift's redirect-mode example with loopback addresses)
 * forwards per its EGRESS_DESTINATION rules with EGRESS_SOURCE bound on every upstream connection;
 * the fallback line takes other Service ports, and without it they are refused. Plus tunnel faults
 * (refused, reset, half-close both ways, idle timeout), the connection limit, byte accounting, and
 * the fixed source on 100% of connections (fail closed when missing).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { closeServer, listen, loopbackBlock, startEchoServer, tcpExchange, waitFor, type EchoServer } from '../helpers/net.js';
import { FIXTURES, startGate, tempConfig, type TestGate } from '../helpers/tollgate.js';
import { isCI, isRoot } from '../helpers/tools.js';

const FIXTURE = join(FIXTURES, 'dataplane', 'egress-router-loopback.yaml');
const FALLBACK = join(FIXTURES, 'dataplane', 'egress-router-fallback.yaml');
// The fixtures' 127.198.51.x and 127.203.0.x addresses, moved into this process's own loopback
// block so that concurrent test runs never bind the same address and port.
const NET = loopbackBlock();
const SOURCE = `${NET}.198.99`;
const DEST_25 = `${NET}.203.25`;
const DEST_26 = `${NET}.203.26`;
const DEST_27 = `${NET}.203.27`;
/** A fixture with its addresses in this process's block, as a temporary config file. */
function ownConfig(fixture: string, edit: (yaml: string) => string = (y) => y): { path: string; cleanup(): void } {
  const yaml = readFileSync(fixture, 'utf8').replaceAll('127.198.51.', `${NET}.198.`).replaceAll('127.203.0.', `${NET}.203.`);
  return tempConfig(edit(yaml));
}
const ROUTER_ARGS = ['--role', 'router', '--namespace', 'default', '--labels', 'app=egress-route-1', '--port-map', '80=0,443=0,8080=0,8443=0,9000=0'];
const skip = isRoot ? false : 'binds ports 80/443 on loopback addresses (needs root)';
if (!isRoot && isCI) throw new Error('l4-egress-router needs root; CI=true');

function connectTo(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port, allowHalfOpen: true });
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

function readUntil(s: Socket, pred: (text: string) => boolean, timeoutMs = 3000): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    const onData = (d: Buffer): void => {
      text += d.toString('latin1');
      if (pred(text)) {
        s.removeListener('data', onData);
        clearTimeout(t);
        resolve(text);
      }
    };
    const t = setTimeout(() => {
      s.removeListener('data', onData);
      reject(new Error(`timeout; got ${JSON.stringify(text)}`));
    }, timeoutMs);
    s.on('data', onData);
  });
}

describe('OpenShift egress router (redirect mode) on loopback', { skip, concurrency: false }, () => {
  let echo80: EchoServer;
  let resetServer: Server;
  let finFirst: Server;
  const finFirstReceived: string[] = [];
  let gate: TestGate;
  let cfg: { path: string; cleanup(): void } | undefined;

  before(async () => {
    echo80 = await startEchoServer(DEST_25, 80);
    // DEST_25:443 greets, then resets the connection when it receives "RESET".
    resetServer = createServer((s) => {
      s.on('error', () => {});
      s.write('hello\n');
      s.on('data', (d) => {
        if (d.toString().includes('RESET')) s.resetAndDestroy();
      });
    });
    await listen(resetServer, DEST_25, 443);
    // DEST_26:80 (rule 8080) sends "ready" and FIN at once, then keeps reading.
    finFirst = createServer({ allowHalfOpen: true }, (s) => {
      s.on('error', () => {});
      let got = '';
      s.on('data', (d) => (got += d.toString()));
      s.on('end', () => {
        finFirstReceived.push(got);
        s.end();
      });
      s.end('ready\n');
    });
    await listen(finFirst, DEST_26, 80);
    // DEST_26:443 (rule 8443): nothing listens -> connection refused.
    cfg = ownConfig(FIXTURE);
    gate = await startGate(['-f', cfg.path, ...ROUTER_ARGS, '--tcp-idle-timeout', '600', '--max-connections', '4']);
  });

  after(async () => {
    await gate?.stop();
    await echo80?.close();
    if (resetServer) await closeServer(resetServer);
    if (finFirst) await closeServer(finFirst);
    cfg?.cleanup();
  });

  it('listens on the ports of its rules and Service; forwards by the rule "80 tcp <destination>" from EGRESS_SOURCE', async () => {
    const names = gate.tg.runtime.listeners().map((l) => l.port).sort((a, b) => a - b);
    assert.deepEqual(names, [80, 443, 8080, 8443, 9000]);
    const r = await tcpExchange('127.0.0.1', gate.port(80), 'ping\n', { endAfterSend: true });
    assert.equal(r.data, `peer=${SOURCE}\nping\nbye\n`);
    const rec = await gate.waitForLog((x) => x.upstream_cluster === `outbound|80||${DEST_25}` && x.bytes_sent > 0);
    assert.equal(rec.upstream_host, `${DEST_25}:80`);
    assert.ok(rec.upstream_local_address?.startsWith(`${SOURCE}:`));
    assert.match(rec.route_name ?? '', /^EGRESS_DESTINATION line \d+: 80 tcp \S+ 80$/);
    assert.equal(rec.route_name?.split(' ').at(-2), DEST_25);
    assert.equal(rec.bytes_received, 5);
    assert.equal(rec.bytes_sent, `peer=${SOURCE}\nping\nbye\n`.length);
  });

  it('E8: the fixed source address is bound on 100% of 40 connections (sequential and parallel)', async () => {
    const before = echo80.peers.length;
    for (let i = 0; i < 20; i++) {
      const r = await tcpExchange('127.0.0.1', gate.port(80), 'x', { endAfterSend: true });
      assert.ok(r.data.startsWith(`peer=${SOURCE}\n`), r.data);
    }
    const par = await Promise.all(Array.from({ length: 4 }, () => tcpExchange('127.0.0.1', gate.port(80), 'y', { endAfterSend: true })));
    for (const r of par) assert.ok(r.data.startsWith(`peer=${SOURCE}\n`), r.data);
    const seen = echo80.peers.slice(before).map((p) => p.slice(0, p.lastIndexOf(':')));
    assert.ok(seen.length >= 24);
    assert.deepEqual([...new Set(seen)], [SOURCE]);
  });

  it('refuses a Service port without rule when there is no fallback line (router_no_rule)', async () => {
    const r = await tcpExchange('127.0.0.1', gate.port(9000), 'x');
    assert.equal(r.data, '');
    const rec = await gate.waitForLog((x) => x.tollgate_reason === 'router_no_rule');
    assert.equal(rec.response_flags, 'NR');
  });

  it('B: upstream refuses -> downstream reset, logged UF upstream_connect_refused', async () => {
    const r = await tcpExchange('127.0.0.1', gate.port(8443), 'x');
    assert.equal(r.data, '');
    const rec = await gate.waitForLog((x) => x.upstream_cluster === `outbound|443||${DEST_26}` && x.tollgate_reason === 'upstream_connect_refused');
    assert.equal(rec.response_flags, 'UF');
    assert.equal(rec.upstream_host, `${DEST_26}:443`);
  });

  it('B: upstream reset mid-stream -> downstream gets a reset (not a clean FIN), logged UC upstream_reset', async () => {
    const s = await connectTo(gate.port(443));
    await readUntil(s, (t) => t.includes('hello\n'));
    const outcome = new Promise<string>((resolve) => {
      s.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
      s.on('end', () => resolve('end'));
    });
    s.write('RESET');
    assert.equal(await outcome, 'ECONNRESET');
    s.destroy();
    const rec = await gate.waitForLog((x) => x.upstream_cluster === `outbound|443||${DEST_25}` && x.tollgate_reason === 'upstream_reset');
    assert.equal(rec.response_flags, 'UC');
  });

  it('B: half-close downstream -> upstream: client FIN reaches the upstream, its answer still comes back', async () => {
    const s = await connectTo(gate.port(80));
    await readUntil(s, (t) => t.includes('\n'));
    const rest = readUntil(s, (t) => t.includes('bye\n'));
    s.end('last words\n');
    assert.equal(await rest, 'last words\nbye\n');
    await new Promise<void>((r) => (s.readableEnded ? r() : s.once('end', () => r())));
    s.destroy();
  });

  it('B: half-close upstream -> downstream: upstream FIN reaches the client, which can still send', async () => {
    const s = await connectTo(gate.port(8080));
    let text = '';
    s.on('data', (d) => (text += d.toString()));
    await new Promise<void>((r) => s.once('end', () => r()));
    assert.equal(text, 'ready\n');
    const n = finFirstReceived.length;
    s.end('after-fin\n');
    await waitFor(() => finFirstReceived.length > n);
    assert.equal(finFirstReceived[n], 'after-fin\n');
    await gate.waitForLog((x) => x.upstream_cluster === `outbound|80||${DEST_26}` && x.bytes_received === 10);
  });

  it('B: client abort mid-tunnel -> the upstream connection is closed too (no leak), logged DC downstream_reset', async () => {
    const s = await connectTo(gate.port(80));
    await readUntil(s, (t) => t.includes('\n'));
    await waitFor(() => echo80.sockets.size === 1, 2000, 'upstream connection open');
    s.resetAndDestroy();
    await waitFor(() => echo80.sockets.size === 0, 2000, 'upstream side closed');
    await waitFor(() => gate.tg.runtime.openConnections() === 0, 2000, 'downstream side closed');
    const rec = await gate.waitForLog((x) => x.tollgate_reason === 'downstream_reset');
    assert.equal(rec.response_flags, 'DC');
  });

  it('B: idle timeout closes both sides and logs idle_timeout', async () => {
    const s = await connectTo(gate.port(80));
    await readUntil(s, (t) => t.includes('\n'));
    const t0 = Date.now();
    await new Promise<void>((r) => {
      s.once('end', () => r());
      s.once('close', () => r());
    });
    const took = Date.now() - t0;
    // Idle timeout 600 ms; the upper bound is only against never closing (timers slip on a loaded machine).
    assert.ok(took >= 500 && took < 15_000, `closed after ${took} ms`);
    await gate.waitForLog((x) => x.tollgate_reason === 'idle_timeout');
    await waitFor(() => echo80.sockets.size === 0, 2000, 'upstream side closed too');
  });

  it('per-listener connection limit: the 5th concurrent connection is closed at once (OM)', async () => {
    const held = await Promise.all(Array.from({ length: 4 }, () => connectTo(gate.port(80))));
    await Promise.all(held.map((s) => readUntil(s, (t) => t.includes('\n'))));
    const r = await tcpExchange('127.0.0.1', gate.port(80), undefined, { timeoutMs: 2000 });
    assert.equal(r.data, '');
    assert.notEqual(r.closedBy, 'timeout');
    const rec = await gate.waitForLog((x) => x.tollgate_reason === 'listener_connection_limit');
    assert.equal(rec.response_flags, 'OM');
    for (const s of held) s.destroy();
    await waitFor(() => gate.tg.runtime.openConnections() === 0, 3000, 'held connections to close');
  });

  it('bytes up/down: 2 MiB echoed with backpressure, counted in the access log and istio_tcp_* metrics', async () => {
    const payload = Buffer.alloc(2 * 1024 * 1024, 0x61);
    const sentBefore = gate.metric('istio_tcp_sent_bytes_total', `destination_service="${DEST_25}"`);
    const recvBefore = gate.metric('istio_tcp_received_bytes_total', `destination_service="${DEST_25}"`);
    const r = await tcpExchange('127.0.0.1', gate.port(80), payload, { endAfterSend: true, timeoutMs: 10_000 });
    const expected = `peer=${SOURCE}\n`.length + payload.length + 4;
    assert.equal(r.data.length, expected);
    const rec = await gate.waitForLog((x) => x.bytes_received === payload.length);
    assert.equal(rec.bytes_sent, expected);
    assert.equal(gate.metric('istio_tcp_received_bytes_total', `destination_service="${DEST_25}"`) - recvBefore, payload.length);
    assert.equal(gate.metric('istio_tcp_sent_bytes_total', `destination_service="${DEST_25}"`) - sentBefore, expected);
    assert.ok(gate.metric('istio_tcp_connections_opened_total') >= 1);
  });
});

describe('egress router fallback and fail-closed source', { skip, concurrency: false }, () => {
  it('the fallback line takes the other Service ports, from EGRESS_SOURCE', async () => {
    const fb = await startEchoServer(DEST_27, 9000);
    const cfg = ownConfig(FALLBACK);
    const gate = await startGate(['-f', cfg.path, ...ROUTER_ARGS]);
    try {
      const r = await tcpExchange('127.0.0.1', gate.port(9000), 'fb', { endAfterSend: true });
      assert.equal(r.data, `peer=${SOURCE}\nfbbye\n`);
      const rec = await gate.waitForLog((x) => x.upstream_cluster === `outbound|9000||${DEST_27}`);
      assert.match(rec.route_name ?? '', /fallback/);
    } finally {
      await gate.stop();
      await fb.close();
      cfg.cleanup();
    }
  });

  it('E8: EGRESS_SOURCE not assigned on this host -> fail closed, never the default source', async () => {
    const echo = await startEchoServer(DEST_25, 80);
    const cfg = ownConfig(FIXTURE, (yaml) => yaml.replace(`value: ${SOURCE}`, 'value: 192.0.2.10'));
    const gate = await startGate(['-f', cfg.path, ...ROUTER_ARGS]);
    try {
      for (let i = 0; i < 5; i++) {
        const r = await tcpExchange('127.0.0.1', gate.port(80), 'x');
        assert.equal(r.data, '');
      }
      const rec = await gate.waitForLog((x) => x.tollgate_reason === 'source_address_unavailable');
      assert.equal(rec.response_flags, 'UF');
      assert.equal(rec.upstream_local_address, '192.0.2.10');
      assert.equal(echo.peers.length, 0, 'nothing reached the destination');
    } finally {
      await gate.stop();
      await echo.close();
      cfg.cleanup();
    }
  });
});
