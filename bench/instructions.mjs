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
//                               [--face http|tcp|tls] [--pipe-relay] [--main PATH]
//
// Modes: "off" = --no-access-log; "on" = the access log appended to a file (as the "log on" rows
// of npm run bench); "stdout" = the access log on stdout, which is /dev/null here.
// --face tcp: one GET per connection (`Connection: close`) through a TCP listener, so the count is
// per new connection (accept, upstream connect, relay, close); --face tls: the same through the TLS
// passthrough listener (SNI localhost; the handshake runs in this script and the upstream, the
// proxy reads the ClientHello and relays). --pipe-relay counts bench/lib/pipe-relay.mjs on that
// face instead (no modes); --main runs another build's entry script (dist/bundle/bin.js, or tsc's
// dist/src/cli/bin.js).
// --keep keeps the callgrind dumps (paths printed): `callgrind_annotate <file>` lists the functions
// (V8's builtins and Node's C++ by name; JIT-compiled JavaScript appears as unnamed addresses,
// which the /tmp/perf-<pid>.map that `NODE_OPTIONS=--perf-basic-prof` makes Node write names).
// Under valgrind Node runs about 50x slower: the defaults take 3-8 minutes per mode on a loaded
// 2-core machine (fewer warm-up requests leave TurboFan compiling inside the measured window).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { BENCH_HOST, startPipeRelay, startUpstream, TLS_SNI } from './lib/peers.mjs';
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
    face: { type: 'string', default: 'http' },
    'pipe-relay': { type: 'boolean' },
    main: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  },
});
if (o.help) {
  process.stdout.write(readFileSync(fileURLToPath(import.meta.url), 'utf8').split('\n').slice(1, 25).map((l) => l.replace(/^\/\/ ?/, '')).join('\n') + '\n');
  process.exit(0);
}
const MODES = ['off', 'on', 'stdout'];
if (!['http', 'tcp', 'tls'].includes(o.face)) fail(`--face ${o.face}: http, tcp or tls`);
const l4 = o.face !== 'http';
if (o['pipe-relay'] && !l4) fail('--pipe-relay counts the tcp and tls faces only');
const modes = o['pipe-relay'] ? ['pipe-relay'] : o.modes.split(',').map((m) => m.trim());
if (!o['pipe-relay']) for (const m of modes) if (!MODES.includes(m)) fail(`--modes: ${m} is not one of ${MODES.join(', ')}`);
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
const CLOSE_REQUEST = Buffer.from(`GET /${o.size} HTTP/1.1\r\nHost: ${BENCH_HOST}\r\nConnection: close\r\n\r\n`, 'latin1');

/** One GET on a new connection (TLS to SNI localhost with `tlsHost`), read until the server closes. */
function oneConnection(port, tlsHost) {
  return new Promise((resolve, reject) => {
    const s = tlsHost ? tls.connect({ port, host: '127.0.0.1', servername: tlsHost, rejectUnauthorized: false }) : net.connect({ port, host: '127.0.0.1', noDelay: true });
    const chunks = [];
    s.on(tlsHost ? 'secureConnect' : 'connect', () => s.write(CLOSE_REQUEST));
    s.on('data', (c) => chunks.push(c));
    s.on('error', reject);
    s.on('close', () => {
      const head = Buffer.concat(chunks).toString('latin1', 0, 12);
      if (head === 'HTTP/1.1 200') resolve();
      else reject(new Error(`response: ${JSON.stringify(head)}`));
    });
  });
}

/** Connections one after another on each of `conns` loops until `shared.left` runs out. */
async function connectionLoop(port, shared) {
  while (shared.left > 0) {
    shared.left--;
    await oneConnection(port, o.face === 'tls' ? TLS_SNI : undefined);
    shared.done++;
  }
}

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
  await Promise.all(Array.from({ length: Math.min(conns, n) }, () => (l4 ? connectionLoop(port, shared) : clientLoop(port, shared))));
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

const [upPort, upTlsPort, ...ports] = await freePorts(2 + 4 * modes.length);
await startUpstream(dir, upPort, undefined, l4 ? upTlsPort : undefined);
const rows = [];
for (const [i, mode] of modes.entries()) {
  const [httpPort, adminPort, tcpPort, tlsPort] = ports.slice(4 * i, 4 * i + 4);
  const loadPort = o.face === 'tcp' ? tcpPort : o.face === 'tls' ? tlsPort : httpPort;
  const out = join(dir, `callgrind-${mode}.out`);
  const logFile = join(dir, `access-${mode}.log`);
  const launcher = ['valgrind', '--tool=callgrind', `--callgrind-out-file=${out}`];
  log(`${mode}: starting ${mode === 'pipe-relay' ? 'the pipe() relay' : 'Tollgate'} under callgrind`);
  let started;
  if (mode === 'pipe-relay') {
    started = await startPipeRelay(dir, { pairs: [[tcpPort, upPort], [tlsPort, upTlsPort]], launcher, readyTimeoutMs: 180_000 });
  } else {
    // The TCP listeners' iperf route points at a port nothing listens on: it is never used here.
    const tcp = l4 ? { iperfPort: ports.at(-1) + 1, iperfTarget: upPort, httpPort: tcpPort, tlsPort, tlsTarget: upTlsPort } : undefined;
    started = await launchTollgate({
      ...(o.main ? { main: o.main } : {}),
      dir,
      name: `tollgate-${mode}`,
      configYaml: benchIstioYaml({ httpPort, upstreamPort: upPort, ...(tcp ? { tcp } : {}) }),
      httpPort: loadPort,
      adminPort,
      accessLog: mode === 'off' ? false : mode === 'on' ? logFile : true,
      ...(o.format ? { accessLogFormat: o.format } : {}),
      launcher,
      readyTimeoutMs: 180_000,
      // The first requests under valgrind take seconds (nothing compiled yet): the warm-up checks the responses.
      verify: false,
    });
    if (!started.ok) throw new Error(`${mode}: ${started.reason}`);
  }
  const tg = started;
  const pid = callgrindPid(tg.pid);
  log(`${mode}: warm-up, ${warm} ${l4 ? 'connections' : 'requests'}`);
  await load(loadPort, warm);
  // Lines of the warm-up still waiting for their flush timer are written before the zeroing.
  await sleep(500);
  callgrindControl(pid, '-z');
  log(`${mode}: ${requests} ${l4 ? 'connections' : 'requests'}`);
  const done = await load(loadPort, requests);
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

const base = rows.find((r) => r.mode === 'off') ?? rows[0];
const load1 = os.loadavg()[0].toFixed(2);
const what = l4 ? `${requests} new ${o.face.toUpperCase()} connections (one GET /${o.size} each, ${conns} at a time) after ${warm} of warm-up` : `${requests} GETs /${o.size} over ${conns} keep-alive connections after ${warm} of warm-up`;
process.stdout.write(`\n\`node bench/instructions.mjs ${process.argv.slice(2).join(' ')}\`: ${what}; access log format ${o.format ?? 'json'}; load average ${load1} (instruction counts do not depend on it)\n\n`);
const unit = l4 ? 'connection' : 'request';
process.stdout.write(`| mode | ${unit}s | instructions per ${unit} | vs ${base?.mode} | event loop | vs ${base?.mode} | V8 background | thread pool | access-log bytes |\n|---|---|---|---|---|---|---|---|---|\n`);
const per = (n, r) => Math.round(n / r.requests).toLocaleString('en-US');
const vs = (a, b) => (b ? `${(a / b).toFixed(3)}x` : '');
for (const r of rows) {
  const t = r.threads;
  process.stdout.write(`| ${r.mode} | ${r.requests} | ${per(r.ir, r)} | ${vs(r.perRequest, base?.perRequest)} | ${per(t.main, r)} | ${vs(t.main / r.requests, base && base.threads.main / base.requests)} | ${per(t.v8, r)} | ${per(t.pool, r)} | ${r.logBytes} |\n`);
}
if (o.keep) for (const r of rows) process.stdout.write(`${r.mode}: ${r.file}\n`);
