/**
 * `run --workers 2`: two processes share the listeners; the primary's admin merges their metrics
 * and is ready only when both are; SIGTERM stops everything.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { Agent, request } from 'node:http';
import { httpGet } from '../helpers/http.js';
import { BIN, tempConfig } from '../helpers/tollgate.js';
import { freeTcpPort } from '../helpers/dns.js';
import { docs, gateway, virtualService } from '../helpers/istio-yaml.js';

const CONFIG = docs(gateway('gw', 'w', 'w', '80/HTTP/w.test'), virtualService('w', 'w', ['w.test'], ['gw'], 'http: [{directResponse: {status: 200, body: {string: "ok"}}}]'));

/** GET over a worker's private admin socket: status 0 when nothing answers. */
function socketGet(socketPath: string, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve) => {
    const req = request({ socketPath, path, timeout: 3000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', () => resolve({ status: 0, body: '' }));
    req.end();
  });
}

const sum = (text: string, name: string): number =>
  text.split('\n').filter((l) => l.startsWith(name + '{')).reduce((a, l) => a + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);

test('--workers 2: shared listeners, merged metrics, readiness of all, clean SIGTERM', async (t) => {
  const cfg = tempConfig(CONFIG);
  const admin = await freeTcpPort();
  const port = await freeTcpPort();
  const child = spawn(process.execPath, [BIN, 'run', '-f', cfg.path, '--workers', '2', '--admin', `127.0.0.1:${admin}`, '--port-map', `80=${port}`, '--listen-address-override', '127.0.0.1', '--log-level', 'error', '--drain-timeout', '500'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  t.after(() => {
    child.kill('SIGKILL');
    cfg.cleanup();
  });
  // Three Node processes start here; on a loaded machine that takes well over 10 s.
  const deadline = Date.now() + 40_000;
  let ready = { status: 0, body: '' };
  while (Date.now() < deadline && ready.status !== 200) {
    ready = await httpGet(admin, '/ready');
    if (ready.status !== 200) await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal(ready.status, 200, `primary admin /ready: ${ready.body} ${stderr}`);
  const workers = JSON.parse((await httpGet(admin, '/workers')).body) as { admin: string }[];
  assert.equal(workers.length, 2);

  const fresh = new Agent({ keepAlive: false });
  for (let i = 0; i < 20; i++) assert.equal((await httpGet(port, '/', 'w.test', fresh)).status, 200);
  await new Promise((r) => setTimeout(r, 200));
  const merged = (await httpGet(admin, '/stats/prometheus')).body;
  assert.equal(sum(merged, 'istio_requests_total'), 20, 'the primary sums the workers');
  const perWorker = await Promise.all(workers.map((w) => socketGet(w.admin, '/stats/prometheus')));
  const counts = perWorker.map((r) => sum(r.body, 'istio_requests_total'));
  assert.equal(counts.reduce((a, b) => a + b, 0), 20);
  assert.ok(counts.every((c) => c > 0), `both workers served requests: ${counts.join(', ')}`);

  child.kill('SIGTERM');
  const code = await Promise.race([exited, new Promise<string>((r) => setTimeout(() => r('timeout'), 5000))]);
  assert.equal(code, 0, stderr);
  const after = await Promise.all(workers.map((w) => socketGet(w.admin, '/ready')));
  assert.ok(after.every((r) => r.status === 0), 'worker admins are gone: the workers exited');
});
