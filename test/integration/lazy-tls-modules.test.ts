/**
 * A plain-HTTP gateway does not load node:tls, node:https or node:crypto at start, nor node:tls or
 * node:https to serve a plain request: each module stays in memory for the life of the process once
 * loaded. The gateway's own modules are read through a preload that writes
 * `process.moduleLoadList` to a file on SIGUSR2.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIN, tempConfig } from '../helpers/tollgate.js';
import { hostRequest } from '../helpers/http.js';
import { freeTcpPort } from '../helpers/dns.js';
import { docs, gateway, virtualService } from '../helpers/istio-yaml.js';

const REPORTER = `
const { writeFileSync } = require('node:fs');
process.on('SIGUSR2', () => writeFileSync(process.env.MODULE_LIST_OUT, JSON.stringify(process.moduleLoadList)));
`;

async function loadedBuiltins(pid: number, out: string): Promise<string[]> {
  rmSync(out, { force: true });
  process.kill(pid, 'SIGUSR2');
  for (let i = 0; i < 50 && !existsSync(out); i++) await new Promise((r) => setTimeout(r, 100));
  const list = JSON.parse(readFileSync(out, 'utf8')) as string[];
  return list.filter((m) => m.startsWith('NativeModule ')).map((m) => m.slice('NativeModule '.length));
}

test('plain-HTTP run: node:tls, node:https and node:crypto are not loaded at start; a plain request loads no TLS', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tg-lazy-tls-'));
  const reporter = join(dir, 'report-modules.cjs');
  const out = join(dir, 'modules.json');
  writeFileSync(reporter, REPORTER);
  const cfg = tempConfig(docs(gateway('gw', 'q', 'q', '80/HTTP/q.test'), virtualService('q', 'q', ['q.test'], ['gw'], 'http: [{directResponse: {status: 204}}]')));
  const admin = await freeTcpPort();
  const port = await freeTcpPort();
  const child = spawn(process.execPath, ['--require', reporter, BIN, 'run', '-f', cfg.path, '--no-access-log', '--admin', `127.0.0.1:${admin}`, '--port-map', `80=${port}`, '--listen-address-override', '127.0.0.1', '--log-level', 'error'], {
    stdio: ['ignore', 'ignore', 'inherit'],
    env: { ...process.env, MODULE_LIST_OUT: out },
  });
  t.after(() => {
    child.kill('SIGKILL');
    cfg.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });
  let ready = false;
  for (let i = 0; i < 100 && !ready; i++) {
    ready = (await fetch(`http://127.0.0.1:${admin}/ready`).catch(() => undefined))?.status === 200;
    if (!ready) await new Promise((r) => setTimeout(r, 100));
  }
  assert.ok(ready, 'ready within 10 s');

  const atStart = await loadedBuiltins(child.pid!, out);
  assert.ok(atStart.includes('net') && atStart.includes('http'), 'the report lists the modules the gateway loaded');
  for (const name of ['tls', '_tls_wrap', 'https', 'crypto']) assert.ok(!atStart.includes(name), `node:${name} loaded at start`);

  assert.equal((await hostRequest(port, 'q.test', { agent: false })).status, 204);
  const afterRequest = await loadedBuiltins(child.pid!, out);
  for (const name of ['tls', '_tls_wrap', 'https']) assert.ok(!afterRequest.includes(name), `node:${name} loaded by a plain-HTTP request`);
});
