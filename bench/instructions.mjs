#!/usr/bin/env node
// Instructions per request: Tollgate under valgrind's callgrind, a fixed number of Host-routed
// keep-alive GETs after a warm-up; the counters are zeroed after the warm-up and dumped after the
// last response, so only the measured requests count (all threads: the event loop, libuv's
// thread pool, V8's helpers). Unlike CPU time, an instruction count does not depend on what else
// the machine runs. Read the event loop's column: V8's background threads (TurboFan compiling)
// vary by thousands of instructions per request between runs, with when tier-up happens.
//
//   node bench/instructions.mjs [--modes off,on] [--requests 3000] [--warm 8000] [--conns 8]
//                               [--size 1k|64k] [--format json|text] [--keep]
//
// Modes: "off" = --no-access-log; "on" = the access log appended to a file (as the "log on" rows
// of npm run bench); "stdout" = the access log on stdout, which is /dev/null here.
// --keep keeps the callgrind dumps (paths printed): `callgrind_annotate <file>` lists the functions
// (V8's builtins and Node's C++ by name; JIT-compiled JavaScript appears as unnamed addresses).
// Under valgrind Node runs about 50x slower: the defaults take 3-8 minutes per mode on a loaded
// 2-core machine (fewer warm-up requests leave TurboFan compiling inside the measured window).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { BENCH_HOST, startUpstream } from './lib/peers.mjs';
import { benchIstioYaml, launchTollgate } from './lib/tollgate.mjs';
import { cleanupAll, cleanupAllSync, freePorts, processTree, sleep, stopProcess } from './lib/util.mjs';

const { values: o } = parseArgs({
  options: {
    modes: { type: 'string', default: 'off,on' },
    requests: { type: 'string', default: '3000' },
    warm: { type: 'string', default: '8000' },
    conns: { type: 'string', default: '8' },
    size: { type: 'string', default: '1k' },
    format: { type: 'string' },
    keep: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  },
});
if (o.help) {
  process.stdout.write(readFileSync(fileURLToPath(import.meta.url), 'utf8').split('\n').slice(1, 17).map((l) => l.replace(/^\/\/ ?/, '')).join('\n') + '\n');
  process.exit(0);
}
const MODES = ['off', 'on', 'stdout'];
const modes = o.modes.split(',').map((m) => m.trim());
for (const m of modes) if (!MODES.includes(m)) fail(`--modes: ${m} is not one of ${MODES.join(', ')}`);
if (o.size !== '1k' && o.size !== '64k') fail(`--size ${o.size}: 1k or 64k`);
if (o.format !== undefined && o.format !== 'json' && o.format !== 'text') fail(`--format ${o.format}: json or text`);
const requests = Math.max(1, Number(o.requests));
const warm = Math.max(0, Number(o.warm));
const conns = Math.max(1, Math.min(256, Number(o.conns)));
if (spawnSync('valgrind', ['--version']).status !== 0) fail('valgrind not found (apt-get install valgrind)');

function fail(msg) {
  process.stderr.write(`instructions: ${msg}\n`);
  process.exit(2);
}

const dir = mkdtempSync(join(os.tmpdir(), 'tollgate-instr-'));
process.on('exit', () => {
  cleanupAllSync();
  if (!o.keep) rmSync(dir, { recursive: true, force: true });
});
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, () => process.exit(130));
// Bounded: valgrind start-up plus the requests at valgrind's pace on a loaded machine, with a margin.
setTimeout(() => {
  process.stderr.write('instructions: over the time limit; stopping\n');
  process.exit(1);
}, modes.length * (300 + ((requests + warm) / 20) * (o.size === '64k' ? 3 : 1)) * 1000).unref();
const started = Date.now();
const log = (m) => process.stderr.write(`[${((Date.now() - started) / 1000).toFixed(1).padStart(5)}s] ${m}\n`);

const REQUEST = Buffer.from(`GET /${o.size} HTTP/1.1\r\nHost: ${BENCH_HOST}\r\n\r\n`, 'latin1');

/** One keep-alive connection sending GETs one at a time until `shared.left` runs out. */
function clientLoop(port, shared) {
  return new Promise((resolve, reject) => {
    const s = net.connect({ port, host: '127.0.0.1', noDelay: true });
    let buf = Buffer.alloc(0);
    let need = -1;
    const next = () => {
      if (shared.left <= 0) {
        s.end();
        resolve();
        return;
      }
      shared.left--;
      s.write(REQUEST);
    };
    s.on('connect', next);
    s.on('error', reject);
    s.on('close', () => (shared.left > 0 ? reject(new Error('connection closed early')) : resolve()));
    s.on('data', (chunk) => {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      for (;;) {
        if (need < 0) {
          const end = buf.indexOf('\r\n\r\n');
          if (end < 0) return;
          const head = buf.toString('latin1', 0, end);
          if (!head.startsWith('HTTP/1.1 200')) return reject(new Error(`response: ${head.split('\r\n')[0]}`));
          const len = /\r\ncontent-length: *(\d+)/i.exec(head);
          if (!len) return reject(new Error('response without content-length'));
          need = end + 4 + Number(len[1]);
        }
        if (buf.length < need) return;
        buf = buf.subarray(need);
        need = -1;
        shared.done++;
        next();
      }
    });
  });
}

async function load(port, n) {
  const shared = { left: n, done: 0 };
  await Promise.all(Array.from({ length: Math.min(conns, n) }, () => clientLoop(port, shared)));
  return shared.done;
}

/** The pid callgrind_control answers to: valgrind's own process (the launcher script execs it). */
function callgrindPid(rootPid) {
  for (const pid of processTree(rootPid)) {
    try {
      if (readFileSync(`/proc/${pid}/cmdline`, 'latin1').includes('valgrind')) return pid;
    } catch {
      /* gone */
    }
  }
  return rootPid;
}

function callgrindControl(pid, flag) {
  const r = spawnSync('callgrind_control', [flag, String(pid)], { encoding: 'utf8', timeout: 60_000 });
  if (r.status !== 0) throw new Error(`callgrind_control ${flag} ${pid}: ${(r.stderr || r.stdout).trim()}`);
}

/** The instructions of the dump callgrind_control -d wrote (the file `<out>.<n>`). */
async function dumpedInstructions(out) {
  const base = out.split('/').pop();
  for (let i = 0; i < 600; i++) {
    const parts = readdirSync(dir).filter((f) => f.startsWith(`${base}.`));
    for (const f of parts) {
      const m = /^summary: (\d+)/m.exec(readFileSync(join(dir, f), 'utf8'));
      if (m) return { ir: Number(m[1]), file: join(dir, f) };
    }
    await sleep(100);
  }
  throw new Error('no callgrind dump appeared');
}

/**
 * Instructions by thread kind, from callgrind_annotate's inclusive counts: the event loop (main),
 * V8's background threads (TurboFan compiling, GC helpers: the part that depends on when
 * tier-up happens, so it varies between runs), libuv's thread pool (file writes).
 */
function byThread(file) {
  const r = spawnSync('callgrind_annotate', ['--inclusive=yes', '--threshold=100', file], { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024, timeout: 120_000 });
  const count = (re) => {
    const line = r.stdout.split('\n').find((l) => re.test(l));
    return line ? Number(line.trim().split(' ')[0].replaceAll(',', '')) : 0;
  };
  return { main: count(/:node::Start\(/), v8: count(/PlatformWorkerThread/), pool: count(/threadpool\.c:worker /) };
}

const [upPort, ...ports] = await freePorts(1 + 2 * modes.length);
await startUpstream(dir, upPort);
const rows = [];
for (const [i, mode] of modes.entries()) {
  const httpPort = ports[2 * i];
  const out = join(dir, `callgrind-${mode}.out`);
  const logFile = join(dir, `access-${mode}.log`);
  log(`${mode}: starting Tollgate under callgrind`);
  const tg = await launchTollgate({
    dir,
    name: `tollgate-${mode}`,
    configYaml: benchIstioYaml({ httpPort, upstreamPort: upPort }),
    httpPort,
    adminPort: ports[2 * i + 1],
    accessLog: mode === 'off' ? false : mode === 'on' ? logFile : true,
    ...(o.format ? { accessLogFormat: o.format } : {}),
    launcher: ['valgrind', '--tool=callgrind', `--callgrind-out-file=${out}`],
    readyTimeoutMs: 180_000,
    // The first requests under valgrind take seconds (nothing compiled yet): the warm-up checks the responses.
    verify: false,
  });
  if (!tg.ok) throw new Error(`${mode}: ${tg.reason}`);
  const pid = callgrindPid(tg.pid);
  log(`${mode}: warm-up, ${warm} requests`);
  await load(httpPort, warm);
  // Lines of the warm-up still waiting for their flush timer are written before the zeroing.
  await sleep(500);
  callgrindControl(pid, '-z');
  log(`${mode}: ${requests} requests`);
  const done = await load(httpPort, requests);
  // The last lines' flush (timer and write) belongs to the measured requests.
  await sleep(500);
  callgrindControl(pid, '-d');
  const { ir, file } = await dumpedInstructions(out);
  await stopProcess(tg.rec, 30_000);
  const logBytes = existsSync(logFile) ? statSync(logFile).size : 0;
  rows.push({ mode, requests: done, ir, perRequest: ir / done, threads: byThread(file), logBytes, file });
  log(`${mode}: ${(ir / done).toFixed(0)} instructions per request`);
}
await cleanupAll();

const base = rows.find((r) => r.mode === 'off');
const load1 = os.loadavg()[0].toFixed(2);
process.stdout.write(`\n\`node bench/instructions.mjs ${process.argv.slice(2).join(' ')}\`: ${requests} GETs /${o.size} over ${conns} keep-alive connections after ${warm} of warm-up; access log format ${o.format ?? 'json'}; load average ${load1} (instruction counts do not depend on it)\n\n`);
process.stdout.write('| mode | requests | instructions per request | vs off | event loop | vs off | V8 background | thread pool | access-log bytes |\n|---|---|---|---|---|---|---|---|---|\n');
const per = (n, r) => Math.round(n / r.requests).toLocaleString('en-US');
const vs = (a, b) => (b ? `${(a / b).toFixed(3)}x` : '');
for (const r of rows) {
  const t = r.threads;
  process.stdout.write(`| ${r.mode} | ${r.requests} | ${per(r.ir, r)} | ${vs(r.perRequest, base?.perRequest)} | ${per(t.main, r)} | ${vs(t.main / r.requests, base && base.threads.main / base.requests)} | ${per(t.v8, r)} | ${per(t.pool, r)} | ${r.logBytes} |\n`);
}
if (o.keep) for (const r of rows) process.stdout.write(`${r.mode}: ${r.file}\n`);
