/**
 * Open-file limits: the soft limit is raised to the hard one at start, --max-connections is capped
 * to what the descriptors allow (with a warning), and connections over the process-wide budget are
 * refused at once, so the admin API keeps answering /ready while the listeners are full.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import { readFileSync } from 'node:fs';
import { BIN, tempConfig } from '../helpers/tollgate.js';
import { freeTcpPort } from '../helpers/dns.js';
import { docs, gateway, virtualService } from '../helpers/istio-yaml.js';
import { waitFor } from '../helpers/net.js';
import { requireTools } from '../helpers/tools.js';

async function get(port: number, path: string): Promise<number> {
  const r = await fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(5000) }).catch(() => undefined);
  return r?.status ?? 0;
}

test('fd limits: soft raised to hard, --max-connections capped, admin answers while the listeners are full', { timeout: 60_000 }, async (t) => {
  if (!requireTools(t, 'prlimit')) return;
  const cfg = tempConfig(docs(gateway('gw', 'q', 'q', '80/HTTP/q.test'), virtualService('q', 'q', ['q.test'], ['gw'], 'http: [{directResponse: {status: 204}}]')));
  const admin = await freeTcpPort();
  const port = await freeTcpPort();
  // Started with soft 300, hard 600: the proxy raises itself to 600, so it may hold (600-128)/2 = 236 connections.
  const child = spawn('prlimit', ['--nofile=300:600', '--', process.execPath, BIN, 'run', '-f', cfg.path, '--admin', `127.0.0.1:${admin}`, '--port-map', `80=${port}`, '--listen-address-override', '127.0.0.1', '--log-level', 'error', '--no-access-log'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const sockets: Socket[] = [];
  t.after(() => {
    for (const s of sockets) s.destroy();
    if (child.exitCode === null && child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
    cfg.cleanup();
  });
  const deadline = Date.now() + 20_000;
  while ((await get(admin, '/ready')) !== 200) {
    assert.ok(Date.now() < deadline && child.exitCode === null, `not ready: ${stderr}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const limits = readFileSync(`/proc/${child.pid}/limits`, 'utf8');
  assert.match(limits, /^Max open files\s+600\s+600/m, 'soft limit raised to the hard limit');
  assert.match(stderr, /--max-connections 16384 does not fit the open-file limit 600 .*capped to 236/);

  // 320 idle connections: more than the budget, more than the descriptors the proxy has.
  let closedByProxy = 0;
  for (let i = 0; i < 320; i++) {
    const s = connect(port, '127.0.0.1');
    s.on('error', () => undefined);
    s.on('close', () => closedByProxy++);
    sockets.push(s);
  }
  await waitFor(() => closedByProxy >= 320 - 236, 10_000, 'connections over the budget refused');
  assert.equal(await get(admin, '/ready'), 200, '/ready answers with every budgeted connection taken');
  const metrics = await (await fetch(`http://127.0.0.1:${admin}/stats/prometheus`)).text();
  // One listener: its own limit (capped to the budget) is what refuses here.
  const refused = [...metrics.matchAll(/^tollgate_denied_total\{reason="(?:listener|process)_connection_limit"\} (\d+)/gm)].reduce((a, m) => a + Number(m[1]), 0);
  assert.ok(refused >= 320 - 236, `refused ${refused}`);
  assert.equal(child.exitCode, null);
});
