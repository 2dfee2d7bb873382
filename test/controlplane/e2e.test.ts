/**
 * End to end on loopback: a control plane watching a directory and two real gateway
 * proxies (the whole data plane, in-process) under concurrent HTTP load. Editing a VirtualService
 * moves traffic within 2 s with no failed request; a broken file changes nothing and is shown with
 * its file:line; a snapshot one proxy cannot apply is NACKed while it keeps serving; killing the
 * control plane does not stop traffic; a proxy with no control plane stays not ready.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, request, Agent, type Server } from 'node:http';
import { createServer as createTcpServer } from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileConfigSource } from '../../src/controlplane/config-source.js';
import { ControlPlane } from '../../src/controlplane/server.js';
import { parseRunArgs, startFromControlPlane, type ControlPlaneProxy } from '../../src/cli/run.js';
import { main } from '../../src/cli/main.js';
import { closeServer, listen, waitFor } from '../helpers/net.js';
import { docs, gateway, staticEntry, virtualService } from '../helpers/istio-yaml.js';
import { makeControlPlaneAuth, type ControlPlaneAuth } from '../helpers/control-plane-auth.js';

function upstream(body: string): Server {
  return createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
}

const config = (target: string, p1: number, p2: number, extraServer?: string) =>
  docs(
    staticEntry('backends', 'edge', 'v1.backend.test', 80, 'HTTP', p1),
    staticEntry('backends-v2', 'edge', 'v2.backend.test', 80, 'HTTP', p2),
    gateway('edge', 'edge', 'edge', '80/HTTP/shop.test', ...(extraServer ? [extraServer] : [])),
    virtualService('shop', 'edge', ['shop.test'], ['edge'], `http: [{route: [{destination: {host: ${target}}}]}]`),
  );

const QUIET = { silentAccessLog: true, logOut: { write: () => true } };

function proxyArgs(auth: ControlPlaneAuth, cpPort: number, name: string, portMap: string): string[] {
  return ['--control-plane', `127.0.0.1:${cpPort}`, ...auth.runArgs('edge'), '--role', 'gateway', '--namespace', 'edge', '--labels', 'app=edge', '--name', name, '--admin', 'off', '--listen-address-override', '127.0.0.1', '--port-map', portMap, '--log-level', 'error'];
}

const phase = { now: 'start' };

/** Phases in which a request must be answered by v2 only (the edit to v2 was seen by both proxies). */
const V2_PHASES = new Set(['broken', 'nack', 'cp-killed', 'cp-gone']);

/**
 * Keep-alive GETs against each port until stopped; every non-200, error or answer from the wrong
 * backend for the phase the request started in is a failure. Counts answers per starting phase.
 */
function load(ports: () => number[]) {
  const agent = new Agent({ keepAlive: true, maxSockets: 4 });
  const stats = { ok: 0, failed: 0, bodies: new Map<number, string>(), okByPhase: new Map<string, number>(), errors: [] as string[] };
  let running = true;
  const one = (port: number) =>
    new Promise<void>((resolve) => {
      const started = phase.now;
      const req = request({ host: '127.0.0.1', port, path: '/', headers: { host: 'shop.test' }, agent, timeout: 2000 }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => {
          const rightBackend = V2_PHASES.has(started) ? body === 'v2' : body === 'v1' || body === 'v2';
          if (res.statusCode === 200 && rightBackend) {
            stats.ok++;
            stats.okByPhase.set(started, (stats.okByPhase.get(started) ?? 0) + 1);
            stats.bodies.set(port, body);
          } else {
            stats.failed++;
            stats.errors.push(`${res.statusCode} ${res.headers['x-tollgate-reason'] ?? ''} port ${port} phase ${phase.now}: ${body.slice(0, 200)}`);
          }
          resolve();
        });
      });
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', (e) => {
        stats.failed++;
        stats.errors.push(e.message);
        resolve();
      });
      req.end();
    });
  const loops = [0, 1, 2, 3].map(async (i) => {
    const deadline = Date.now() + 60_000; // bounded, whatever happens to the test
    while (running && Date.now() < deadline) {
      const ps = ports();
      await one(ps[i % ps.length] ?? 0);
    }
  });
  return { stats, stop: async () => ((running = false), await Promise.all(loops), agent.destroy()) };
}

test('control plane + two proxies: edit, broken file, NACK, control plane killed, cold start', async (t) => {
  const v1 = upstream('v1');
  const v2 = upstream('v2');
  const p1 = await listen(v1, '127.0.0.1');
  const p2 = await listen(v2, '127.0.0.1');
  const busy = createTcpServer();
  const busyPort = await listen(busy as unknown as Server, '127.0.0.1');
  const dir = mkdtempSync(join(tmpdir(), 'tg-cp-e2e-'));
  const file = join(dir, 'edge.yaml');
  writeFileSync(file, config('v1.backend.test', p1, p2));
  const source = new FileConfigSource({ paths: [dir], debounceMs: 50 });
  assert.equal(source.reload().kind, 'accepted');
  const auth = await makeControlPlaneAuth(['edge']);
  let cp = new ControlPlane({ source, ...auth.server });
  const { port: cpPort } = await cp.listen('127.0.0.1', 0);
  source.watch();
  const proxies: ControlPlaneProxy[] = [];
  t.after(async () => {
    for (const p of proxies) await p.stop(100);
    source.close();
    await cp.close();
    await closeServer(v1);
    await closeServer(v2);
    await closeServer(busy as unknown as Server);
    rmSync(dir, { recursive: true, force: true });
    auth.cleanup();
  });

  // F4: no control plane reachable -> nothing bound, not ready.
  const closed = createTcpServer();
  const closedPort = await listen(closed as unknown as Server, '127.0.0.1');
  await closeServer(closed as unknown as Server);
  const orphan = await startFromControlPlane(parseRunArgs(proxyArgs(auth, closedPort, 'orphan', '80=0')), QUIET);
  proxies.push(orphan);
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(orphan.runtime.ready, false);
  assert.equal(orphan.runtime.listeners().length, 0);
  assert.equal(orphan.snapshot, undefined);

  // gw-2 maps snapshot port 90 onto a port that is taken, so a config with a port-90 server cannot apply there.
  const gw1 = await startFromControlPlane(parseRunArgs(proxyArgs(auth, cpPort, 'gw-1', '80=0,90=0')), QUIET);
  const gw2 = await startFromControlPlane(parseRunArgs(proxyArgs(auth, cpPort, 'gw-2', `80=0,90=${busyPort}`)), QUIET);
  proxies.push(gw1, gw2);
  await waitFor(() => gw1.runtime.ready && gw2.runtime.ready, 5000, 'both proxies ready');
  const ports = () => [gw1.runtime.boundPortOf(80) ?? 0, gw2.runtime.boundPortOf(80) ?? 0];
  const traffic = load(ports);
  await waitFor(() => ports().every((p) => traffic.stats.bodies.get(p) === 'v1'), 3000, 'v1 through both proxies');

  // Edit: traffic moves to v2 within 2 s, nothing fails.
  phase.now = 'edit';
  const edited = Date.now();
  writeFileSync(file, config('v2.backend.test', p1, p2));
  await waitFor(() => ports().every((p) => traffic.stats.bodies.get(p) === 'v2'), 2000, 'v2 through both proxies within 2 s');
  const movedMs = Date.now() - edited;

  phase.now = 'broken';
  // Broken file: rejected with file:line, routing unchanged, proxy-status says so.
  writeFileSync(file, config('v2.backend.test', p1, p2).replace('resolution: STATIC', 'resolution: SOMETIMES'));
  await waitFor(() => cp.configView().rejected, 2000, 'rejection');
  const out: string[] = [];
  await main(['proxy-status', '--control-plane', `127.0.0.1:${cpPort}`, ...auth.viewArgs], { out: (l) => out.push(l), err: (l) => out.push(l) });
  assert.ok(out.some((l) => /^gw-1\s+gateway\s+edge\s+[0-9a-f]{16}\s+SYNCED/.test(l)), out.join('\n'));
  assert.ok(out.some((l) => /edge\.yaml:4\): spec\.resolution "SOMETIMES" is not one of/.test(l)), out.join('\n'));
  await new Promise((r) => setTimeout(r, 300));
  assert.ok(ports().every((p) => traffic.stats.bodies.get(p) === 'v2'));

  // A snapshot gw-2 cannot apply (port taken): NACKed, gw-2 keeps serving; gw-1 takes it.
  phase.now = 'nack';
  writeFileSync(file, config('v2.backend.test', p1, p2, '90/HTTP/shop.test'));
  await waitFor(() => cp.proxies().find((p) => p.node.name === 'gw-2')?.state === 'NACKED', 3000, 'gw-2 NACKED');
  await waitFor(() => gw1.runtime.boundPortOf(90) !== undefined, 3000, 'gw-1 binds port 90');
  assert.match(cp.proxies().find((p) => p.node.name === 'gw-2')?.lastError ?? '', /TG_LISTENER_BIND|EADDRINUSE|address already in use/i);

  // Control plane killed under load: traffic goes on.
  phase.now = 'cp-killed';
  await cp.close();
  await waitFor(() => !gw1.client.connected && !gw2.client.connected, 3000, 'proxies notice');
  phase.now = 'cp-gone';
  // A count of answers, with a bound only against a hang: not a throughput test.
  await waitFor(() => (traffic.stats.okByPhase.get('cp-gone') ?? 0) >= 10, 30_000, 'requests started without the control plane are answered');
  cp = new ControlPlane({ source, ...auth.server });
  await cp.listen('127.0.0.1', cpPort);
  await waitFor(() => cp.proxies().length === 2, 12_000, 'proxies reconnect');

  await traffic.stop();
  t.diagnostic(`moved to v2 in ${movedMs} ms; ${traffic.stats.ok} requests ok, ${traffic.stats.failed} failed`);
  // Every request got the right answer (200 from the backend its phase routes to), and requests
  // started while the control plane was gone were among them.
  assert.deepEqual(traffic.stats.errors, [], 'no request failed');
  assert.equal(traffic.stats.failed, 0);
  assert.ok((traffic.stats.okByPhase.get('cp-gone') ?? 0) >= 10, JSON.stringify([...traffic.stats.okByPhase]));
});
