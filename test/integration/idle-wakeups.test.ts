/**
 * An idle `tollgate run` sleeps: no timer of its own wakes the event loop many times a second once
 * its connections are gone (a sidecar per pod multiplies every idle wake-up), and the event-loop
 * lag metric is still reported.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { BIN, tempConfig } from '../helpers/tollgate.js';
import { hostRequest } from '../helpers/http.js';
import { freeTcpPort } from '../helpers/dns.js';
import { docs, gateway, virtualService } from '../helpers/istio-yaml.js';

/** Times the main thread gave up the CPU (each wait in epoll that a timer or an event ended). */
function mainThreadWaits(pid: number): number {
  const status = readFileSync(`/proc/${pid}/task/${pid}/status`, 'utf8');
  return Number(/voluntary_ctxt_switches:\s*(\d+)/.exec(status)?.[1]);
}

test('idle run: the main thread wakes a few times a second at most; event-loop lag is still exported', async (t) => {
  const cfg = tempConfig(docs(gateway('gw', 'q', 'q', '80/HTTP/q.test'), virtualService('q', 'q', ['q.test'], ['gw'], 'http: [{directResponse: {status: 204}}]')));
  const admin = await freeTcpPort();
  const port = await freeTcpPort();
  const child = spawn(process.execPath, [BIN, 'run', '-f', cfg.path, '--no-access-log', '--admin', `127.0.0.1:${admin}`, '--port-map', `80=${port}`, '--listen-address-override', '127.0.0.1', '--log-level', 'error'], { stdio: ['ignore', 'ignore', 'inherit'] });
  t.after(() => {
    child.kill('SIGKILL');
    cfg.cleanup();
  });
  let ready = false;
  for (let i = 0; i < 100 && !ready; i++) {
    ready = (await fetch(`http://127.0.0.1:${admin}/ready`).catch(() => undefined))?.status === 200;
    if (!ready) await new Promise((r) => setTimeout(r, 100));
  }
  assert.ok(ready, 'ready within 10 s');
  // Traffic first (the HTTP engine's timers are armed by connections), each request on its own connection.
  for (let i = 0; i < 5; i++) assert.equal((await hostRequest(port, 'q.test', { agent: false })).status, 204);
  const metrics = await (await fetch(`http://127.0.0.1:${admin}/stats/prometheus`, { headers: { connection: 'close' } })).text();
  assert.match(metrics, /^tollgate_event_loop_lag_milliseconds(\{\})? \d+(\.\d+)?$/m);
  // Closed connections leave the sweeper; then only the once-a-second lag probe should run.
  await new Promise((r) => setTimeout(r, 1500));
  const pid = child.pid!;
  const before = mainThreadWaits(pid);
  const windowMs = 3000;
  await new Promise((r) => setTimeout(r, windowMs));
  const wakeups = mainThreadWaits(pid) - before;
  // A 20 ms timer would give about 150 here, the 50 ms sweeper about 60; the lag probe gives 3.
  assert.ok(wakeups < 30, `${wakeups} wake-ups of the main thread in ${windowMs} ms idle`);
});
