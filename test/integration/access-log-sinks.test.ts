/**
 * The access log cannot hurt serving: a reader that exits (EPIPE), a reader that stops reading,
 * a disk that fills (ENOSPC on a small tmpfs) cost log lines, counted in
 * tollgate_access_log_dropped_total{reason}, never a crash, a stall or unbounded memory.
 * SIGUSR1 reopens --access-log-file after logrotate moved it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, renameSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIN, tempConfig } from '../helpers/tollgate.js';
import { freeTcpPort } from '../helpers/dns.js';
import { docs, gateway, virtualService } from '../helpers/istio-yaml.js';
import { loopbackAddress, waitFor } from '../helpers/net.js';
import { requireRoot, requireTools, run } from '../helpers/tools.js';

const CONFIG = docs(gateway('gw', 'q', 'q', '80/HTTP/q.test'), virtualService('q', 'q', ['q.test'], ['gw'], 'http: [{directResponse: {status: 204}}]'));

/** The children listen on an address of this process's own: ports picked free cannot be taken by a concurrent test run. */
const HOST = loopbackAddress();

interface Gate {
  readonly child: ChildProcess;
  readonly admin: number;
  readonly port: number;
  stderr(): string;
}

async function startChild(t: { after(fn: () => void): void }, extra: readonly string[]): Promise<Gate> {
  const cfg = tempConfig(CONFIG);
  const admin = await freeTcpPort();
  const port = await freeTcpPort();
  const child = spawn(process.execPath, [BIN, 'run', '-f', cfg.path, '--admin', `${HOST}:${admin}`, '--port-map', `80=${port}`, '--listen-address-override', HOST, ...extra], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  t.after(() => {
    if (child.exitCode === null && child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
    cfg.cleanup();
  });
  await until(async () => (await fetch(`http://${HOST}:${admin}/ready`).catch(() => undefined))?.status === 200 || child.exitCode !== null, 30_000, 'tollgate ready');
  assert.equal(child.exitCode, null, `tollgate exited: ${err}`);
  return { child, admin, port, stderr: () => err };
}

/** `count` requests, `concurrency` at a time on keep-alive connections; resolves with the status codes seen. */
async function load(port: number, count: number, concurrency = 16): Promise<Map<number, number>> {
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
  const statuses = new Map<number, number>();
  let next = 0;
  const one = (): Promise<void> =>
    new Promise((resolve) => {
      const req = request({ host: HOST, port, path: `/n/${next}`, headers: { host: 'q.test' }, agent }, (res) => {
        res.resume();
        res.on('end', () => {
          statuses.set(res.statusCode ?? 0, (statuses.get(res.statusCode ?? 0) ?? 0) + 1);
          resolve();
        });
      });
      req.on('error', () => {
        statuses.set(-1, (statuses.get(-1) ?? 0) + 1);
        resolve();
      });
      req.end();
    });
  const lanes = Array.from({ length: concurrency }, async () => {
    while (next < count) {
      next++;
      await one();
    }
  });
  await Promise.all(lanes);
  agent.destroy();
  return statuses;
}

async function until(fn: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await fn())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function dropped(admin: number, reason: string): Promise<number> {
  const text = await (await fetch(`http://${HOST}:${admin}/stats/prometheus`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`tollgate_access_log_dropped_total{reason="${reason}"}`));
  return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0;
}

function rssKb(pid: number): number {
  const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1] ?? 0);
}

test('stdout and stderr readers gone (EPIPE): serving goes on, lost lines are counted', async (t) => {
  const g = await startChild(t, ['--log-level', 'info']);
  assert.deepEqual([...(await load(g.port, 5))], [[204, 5]]);
  g.child.stdout!.destroy();
  g.child.stderr!.destroy();
  const statuses = await load(g.port, 300);
  assert.deepEqual([...statuses], [[204, 300]], 'every request answered');
  // A diagnostic line to the closed stderr must not crash either.
  g.child.kill('SIGHUP');
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(g.child.exitCode, null, 'still running');
  assert.deepEqual([...(await load(g.port, 20))], [[204, 20]]);
  assert.ok((await dropped(g.admin, 'sink_closed')) > 0, 'lines to a closed stdout are counted as sink_closed');
});

test('a paused stdout reader: memory stays bounded, lines beyond the buffer are dropped, serving does not wait', async (t) => {
  const g = await startChild(t, ['--log-level', 'error', '--access-log-buffer', '65536']);
  g.child.stdout!.pause();
  const before = rssKb(g.child.pid!);
  const statuses = await load(g.port, 4000, 32);
  assert.deepEqual([...statuses], [[204, 4000]], 'every request answered while nobody reads the log');
  const lost = await dropped(g.admin, 'buffer_full');
  // ~4000 lines of ~450 bytes do not fit in the pipe (64 KiB) plus a 64 KiB buffer.
  assert.ok(lost > 1000, `dropped ${lost} lines as buffer_full`);
  const grown = rssKb(g.child.pid!) - before;
  assert.ok(grown < 150_000, `RSS grew ${grown} KiB`);
  // The reader comes back: what was kept arrives, and new lines are written again.
  let seen = '';
  g.child.stdout!.on('data', (d: Buffer) => (seen += d.toString()));
  g.child.stdout!.resume();
  await load(g.port, 1);
  await waitFor(() => seen.includes('/n/0"') || seen.split('\n').length > 10, 5000, 'log lines after resume');
});

test('disk full (ENOSPC on a small tmpfs): requests are answered, lines counted as write_error, logging resumes when space is back', async (t) => {
  if (!requireRoot(t, 'mounts a 256 KiB tmpfs') || !requireTools(t, 'mount', 'umount')) return;
  const dir = mkdtempSync(join(tmpdir(), 'tg-enospc-'));
  const m = await run('mount', ['-t', 'tmpfs', '-o', 'size=256k', 'tollgate-test', dir]);
  assert.equal(m.status, 0, `mount tmpfs: ${m.stderr}`);
  t.after(async () => {
    await run('umount', ['-l', dir]);
    rmSync(dir, { recursive: true, force: true });
  });
  const logFile = join(dir, 'access.log');
  const g = await startChild(t, ['--log-level', 'error', '--access-log-file', logFile]);
  // Fill the filesystem.
  const filler = join(dir, 'filler');
  try {
    writeFileSync(filler, Buffer.alloc(1024 * 1024));
  } catch {
    // ENOSPC: the filler takes what was left.
  }
  const statuses = await load(g.port, 500);
  assert.deepEqual([...statuses], [[204, 500]], 'every request answered on a full disk');
  await until(async () => (await dropped(g.admin, 'write_error')) > 0, 5000, 'write_error counted');
  assert.equal(g.child.exitCode, null, 'still running');
  unlinkSync(filler);
  const sizeBefore = readFileSync(logFile).length;
  await load(g.port, 50);
  await waitFor(() => readFileSync(logFile).length > sizeBefore, 5000, 'log lines written again once space is free');
});

test('SIGUSR1 reopens --access-log-file (logrotate: rename, signal)', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tg-rotate-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const logFile = join(dir, 'access.log');
  const g = await startChild(t, ['--log-level', 'info', '--access-log-file', logFile]);
  await load(g.port, 3);
  await waitFor(() => existsSync(logFile) && readFileSync(logFile, 'utf8').split('\n').length > 3, 5000, 'first lines');
  renameSync(logFile, logFile + '.1');
  g.child.kill('SIGUSR1');
  await waitFor(() => g.stderr().includes('access log reopened'), 5000, 'reopen logged');
  await load(g.port, 2);
  await waitFor(() => existsSync(logFile) && readFileSync(logFile, 'utf8').trim().split('\n').length === 2, 5000, 'the new file gets the new lines');
  assert.equal(readFileSync(logFile + '.1', 'utf8').trim().split('\n').length, 3, 'the rotated file keeps the old ones');
});
