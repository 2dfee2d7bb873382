/** `run --no-access-log`: no access-log lines on stdout, while metrics still count every request. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { BIN, tempConfig } from '../helpers/tollgate.js';
import { httpGet } from '../helpers/http.js';
import { freeTcpPort } from '../helpers/dns.js';
import { docs, gateway, virtualService } from '../helpers/istio-yaml.js';

test('--no-access-log silences the access log but not the metrics', async (t) => {
  const cfg = tempConfig(docs(gateway('gw', 'q', 'q', '80/HTTP/q.test'), virtualService('q', 'q', ['q.test'], ['gw'], 'http: [{directResponse: {status: 204}}]')));
  const admin = await freeTcpPort();
  const port = await freeTcpPort();
  const child = spawn(process.execPath, [BIN, 'run', '-f', cfg.path, '--no-access-log', '--admin', `127.0.0.1:${admin}`, '--port-map', `80=${port}`, '--listen-address-override', '127.0.0.1', '--log-level', 'error'], { stdio: ['ignore', 'pipe', 'inherit'] });
  let stdout = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  t.after(() => {
    child.kill('SIGKILL');
    cfg.cleanup();
  });
  for (let i = 0; i < 100; i++) {
    const r = await fetch(`http://127.0.0.1:${admin}/ready`).catch(() => undefined);
    if (r?.status === 200) break;
    await new Promise((r2) => setTimeout(r2, 100));
  }
  for (let i = 0; i < 5; i++) {
    assert.equal((await httpGet(port, '/', 'q.test')).status, 204);
  }
  const metrics = await (await fetch(`http://127.0.0.1:${admin}/stats/prometheus`)).text();
  const total = metrics.split('\n').filter((l) => l.startsWith('istio_requests_total{')).reduce((a, l) => a + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
  assert.equal(total, 5);
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(stdout, '', 'nothing on stdout');
});
