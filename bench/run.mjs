#!/usr/bin/env node
// Tollgate benchmark harness (method: docs/benchmarks.md).
//
//   node bench/run.mjs [--quick | --smoke] [--scenario NAME ...] [options]
//
// Starts its own upstream and peers on loopback from generated configs in a temp dir, runs the
// same load against each target in alternation (median of rounds), and writes
// bench/results/<stamp>-<scenario>.json plus a Markdown table (printed, and into BENCHMARKS.md).
// Every child process is tracked by PID and ended on exit, on signals and on errors.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { wrk } from './lib/load.mjs';
import { BENCH_HOST, peerVersions, startHaproxy, startIperfServer, startNginxProxy, startNodeBaseline, startNodeFloor, startPipeRelay, startSquid, startUpstream, verifyHttp } from './lib/peers.mjs';
import { table, truncate, writeBenchmarksMd, writeBenchmarksSubsections } from './lib/report.mjs';
import * as S from './lib/scenarios.mjs';
import { benchIstioYaml, CONNECT_HOST, launchTollgate, REPO, tollgateCanDisableAccessLog, tollgateRunHelp } from './lib/tollgate.mjs';
import { cleanupAll, cleanupAllSync, commandOutput, freePorts, pinningPlan, processTree, rssBytes } from './lib/util.mjs';

const SCENARIOS = ['throughput', 'latency', 'http2', 'l4', 'connect', 'scale', 'workers'];
const ALIASES = { cpu: 'latency', memory: 'latency', http: 'throughput', h2: 'http2', tcp: 'l4' };

// Durations in seconds. Budgets: full < 10 min, quick < 2.5 min, smoke < 60 s (with Tollgate running).
// Full: a fresh Tollgate's CPU per request settles after 2-3 s of 1 KiB load and 2 s of 64 KiB (1 s
// slices: 130, 51, 42, then 28-45 µs at 1 KiB; 96, 75, 72, 71 at 64 KiB); Node targets still get
// 10 s (8 + 2), all targets warmed at once. 2 s wrk runs measure 40-80k requests each; 6 s at
// 1,000 req/s is 6,000 requests per round (60 above the p99).
const MODES = {
  full: { rounds: 3, thrSec: 2, warmSec: 3, nodeWarmSec: 10, latSec: 6, latWarmSec: 1, rate: 1000, l4Sec: 2, connSec: 2, connectSec: 2, sizes: ['1k', '64k'], logOnSizes: ['1k', '64k'], connectSizes: ['1k', '64k'], nodeBaseline: true, scaleNs: [1, 100, 1000, 10000], compileReps: 3, rssNs: [1, 1000, 10000], settleMs: 1000, budgetSec: 600 },
  quick: { rounds: 3, thrSec: 1, warmSec: 0, nodeWarmSec: 3, latSec: 2, latWarmSec: 1, rate: 1000, l4Sec: 1, connSec: 1, connectSec: 1, sizes: ['1k', '64k'], logOnSizes: ['1k'], connectSizes: ['1k'], nodeBaseline: false, scaleNs: [1, 1000, 10000], compileReps: 1, rssNs: [1, 1000], settleMs: 1000, skip: ['workers'], budgetSec: 150 },
  smoke: { rounds: 1, thrSec: 1, warmSec: 0, nodeWarmSec: 0, latSec: 1, latWarmSec: 1, rate: 1000, l4Sec: 1, connSec: 1, connectSec: 1, sizes: ['1k', '64k'], logOnSizes: ['1k'], connectSizes: ['1k'], nodeBaseline: true, scaleNs: [1, 100], compileReps: 1, rssNs: [1, 100], settleMs: 200, budgetSec: 60 },
};

const USAGE = `usage: node bench/run.mjs [--quick | --smoke] [--scenario NAME ...] [options]
  --quick             shorter runs (< 2.5 min): 3 rounds of 1-2 s; no workers scenario
  --smoke             plumbing only (< 60 s): 1 round of 1 s, no timing assertions;
                      writes nothing unless --write
  --scenario NAME     repeatable or comma-separated: ${SCENARIOS.join(', ')} (cpu = latency)
  --rounds N          override rounds
  --no-pin            do not pin with taskset
  --skip-tollgate     measure the peers only
  --require-tollgate  exit 1 when Tollgate is not runnable
  --no-write          do not write bench/results/*.json or BENCHMARKS.md
  --write             write results even in --smoke / --scenario runs
  --keep              keep the temp dir (configs, peer logs) for inspection
`;

const { values: opt } = parseArgs({
  options: {
    quick: { type: 'boolean' },
    smoke: { type: 'boolean' },
    scenario: { type: 'string', multiple: true },
    rounds: { type: 'string' },
    'no-pin': { type: 'boolean' },
    'skip-tollgate': { type: 'boolean' },
    'require-tollgate': { type: 'boolean' },
    'no-write': { type: 'boolean' },
    write: { type: 'boolean' },
    keep: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  },
});
if (opt.help) {
  process.stdout.write(USAGE);
  process.exit(0);
}
const mode = opt.smoke ? 'smoke' : opt.quick ? 'quick' : 'full';
const cfg = { ...MODES[mode] };
if (opt.rounds) cfg.rounds = Math.max(1, Number(opt.rounds));
const selected = (opt.scenario ?? []).flatMap((s) => s.split(',')).map((s) => ALIASES[s.trim()] ?? s.trim()).filter(Boolean);
for (const s of selected) if (!SCENARIOS.includes(s)) fail(`unknown scenario ${s}; one of ${SCENARIOS.join(', ')}`);
// Quick leaves out what it cannot fit in its budget (workers) unless asked for by name.
const run = (s) => (selected.length === 0 ? !(cfg.skip ?? []).includes(s) : selected.includes(s));
const partial = selected.length > 0;
const writeResults = !opt['no-write'] && (opt.write || mode !== 'smoke');
const writeMd = !opt['no-write'] && (opt.write || (mode !== 'smoke' && !partial));
const command = `${process.env.npm_lifecycle_event ? `npm run ${process.env.npm_lifecycle_event} # = ` : ''}node bench/run.mjs ${process.argv.slice(2).join(' ')}`.trim();

function fail(msg) {
  process.stderr.write(`bench: ${msg}\n${USAGE}`);
  process.exit(2);
}

// ------------------------------------------------------------------ cleanup and budget

const dir = mkdtempSync(join(os.tmpdir(), 'tollgate-bench-'));
let cleaned = false;
function cleanupSync() {
  if (cleaned) return;
  cleaned = true;
  cleanupAllSync();
  if (!opt.keep) rmSync(dir, { recursive: true, force: true });
}
process.on('exit', cleanupSync);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    process.stderr.write(`\nbench: ${sig}, stopping peers\n`);
    cleanupSync();
    process.exit(130);
  });
}
process.on('uncaughtException', (err) => {
  process.stderr.write(`bench: ${err.stack ?? err}\n`);
  cleanupSync();
  process.exit(1);
});
process.on('unhandledRejection', (err) => {
  process.stderr.write(`bench: ${err?.stack ?? err}\n`);
  cleanupSync();
  process.exit(1);
});
const started = Date.now();
// Hard stop at 1.5x the budget: a hung peer or load generator must not hold the machine.
setTimeout(() => {
  process.stderr.write(`bench: over 1.5x the ${mode} budget (${cfg.budgetSec}s); stopping\n`);
  cleanupSync();
  process.exit(1);
}, cfg.budgetSec * 1500).unref();

const log = (msg) => process.stderr.write(`[${((Date.now() - started) / 1000).toFixed(1).padStart(5)}s] ${msg}\n`);

// ------------------------------------------------------------------ machine

function machineInfo() {
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  const git = commandOutput('git', ['-C', REPO, 'rev-parse', '--short', 'HEAD']);
  const dirty = commandOutput('git', ['-C', REPO, 'status', '--porcelain', '--', 'src']).length > 0;
  return {
    nproc: Number(commandOutput('nproc', [])) || os.availableParallelism(),
    model: /model name\s*:\s*(.*)/.exec(cpuinfo)?.[1]?.trim(),
    kernel: os.release(),
    memTotalMB: Math.round(os.totalmem() / 1048576),
    node: process.version,
    ...peerVersions(),
    tollgateCommit: `${git}${dirty ? ' (src/ modified)' : ''}`,
    loadavgAtStart: os.loadavg().map((x) => x.toFixed(2)).join(' '),
  };
}

// ------------------------------------------------------------------ main

const problems = [];
const ctx = {
  mode,
  cfg,
  dir,
  pin: pinningPlan(opt['no-pin']),
  machine: machineInfo(),
  targets: {},
  idleRss: {},
  peakRss: {},
  ports: {},
  connectTarget: undefined,
  problem(scenario, target, msg) {
    if (target.kind === 'tollgate') return; // Tollgate may be incomplete; its errors are in the tables.
    problems.push(`${scenario}/${target.name}: ${msg}`);
  },
};
log(`mode ${mode}; scenarios ${SCENARIOS.filter(run).join(', ')}; pinning: ${ctx.pin.applied ? ctx.pin.reason : `not applied (${ctx.pin.reason})`}; temp dir ${dir}`);

const P = ctx.pin;
const need = {
  http: run('throughput') || run('latency'), // these share the warmed-up peers; http2, scale and workers start their own Tollgates
  tcp: run('l4'),
  squid: run('connect'),
  tollgate: !opt['skip-tollgate'],
};
const [upstream, iperf, ngx, ngxLog, hap, hapLog, hapTcpIperf, hapTcpHttp, squidPort, nodePort, tgHttp, tgAdmin, tgLogHttp, tgLogAdmin, tgTcpIperf, tgTcpHttp, tgConnect, floorPort] = await freePorts(18);
// L4: the upstream's TLS port and each L4 peer's TLS passthrough listener; the pipe() relay's three listeners.
const [upstreamTls, hapTls, tgTls, pipeIperf, pipeHttp, pipeTls] = await freePorts(6, [upstream, iperf, ngx, ngxLog, hap, hapLog, hapTcpIperf, hapTcpHttp, squidPort, nodePort, tgHttp, tgAdmin, tgLogHttp, tgLogAdmin, tgTcpIperf, tgTcpHttp, tgConnect, floorPort]);
ctx.ports = { upstream, iperf };
ctx.connectTarget = { host: CONNECT_HOST, port: upstream };

async function peer(name, kind, fn, extra = {}) {
  try {
    const p = await fn();
    ctx.targets[name] = { name, kind, ok: true, pid: p.pid, port: p.port, rec: p.rec, ...extra };
  } catch (err) {
    ctx.targets[name] = { name, kind, ok: false, reason: err.message };
    problems.push(`start ${name}: ${err.message}`);
    log(`${name}: FAILED ${err.message}`);
  }
}

// The upstream and the iperf3 server live on the load core; proxies on the proxy core.
await peer('direct', 'direct', () => startUpstream(dir, upstream, P.load, need.tcp ? upstreamTls : undefined), { iperfPort: iperf, httpTcpPort: upstream, ...(need.tcp ? { tlsPort: upstreamTls } : {}) });
if (need.tcp) await peer('iperf3-server', 'upstream', () => startIperfServer(dir, { port: iperf, cpu: P.load }));
await peer('nginx', 'peer', () => startNginxProxy(dir, { port: ngx, upstreamPort: upstream, accessLog: false, cpu: P.proxy }));
await peer('haproxy', 'peer', () => startHaproxy(dir, { port: hap, upstreamPort: upstream, accessLog: false, cpu: P.proxy, tcp: need.tcp ? { iperfPort: hapTcpIperf, iperfTarget: iperf, httpPort: hapTcpHttp, tlsPort: hapTls, tlsTarget: upstreamTls } : undefined }));
if (run('throughput')) {
  await peer('nginx-log', 'peer', () => startNginxProxy(dir, { port: ngxLog, upstreamPort: upstream, accessLog: true, cpu: P.proxy }));
  await peer('haproxy-log', 'peer', () => startHaproxy(dir, { port: hapLog, upstreamPort: upstream, accessLog: true, cpu: P.proxy }));
  if (cfg.nodeBaseline) await peer('node-http', 'node', () => startNodeBaseline(dir, { port: nodePort, upstreamPort: upstream, cpu: P.proxy }));
}
if (need.http) await peer('node-floor', 'node', () => startNodeFloor(dir, { port: floorPort, upstreamPort: upstream, cpu: P.proxy }));
if (need.tcp && ctx.targets.haproxy.ok) ctx.targets['haproxy-tcp'] = { ...ctx.targets.haproxy, name: 'haproxy-tcp', iperfPort: hapTcpIperf, httpTcpPort: hapTcpHttp, tlsPort: hapTls };
if (need.tcp) await peer('pipe-relay', 'node', () => startPipeRelay(dir, { pairs: [[pipeIperf, iperf], [pipeHttp, upstream], [pipeTls, upstreamTls]], cpu: P.proxy }), { iperfPort: pipeIperf, httpTcpPort: pipeHttp, tlsPort: pipeTls });
if (need.squid) await peer('squid', 'peer', () => startSquid(dir, { port: squidPort, cpu: P.proxy }));

// Tollgate: the main instance (HTTP + TCP listeners + CONNECT), and one with the access log on.
let tollgateStatus;
if (need.tollgate) {
  const help = tollgateRunHelp();
  const canOff = tollgateCanDisableAccessLog();
  const tg = await launchTollgate({
    dir,
    name: 'tollgate',
    configYaml: benchIstioYaml({ httpPort: tgHttp, upstreamPort: upstream, tcp: need.tcp ? { iperfPort: tgTcpIperf, iperfTarget: iperf, httpPort: tgTcpHttp, tlsPort: tgTls, tlsTarget: upstreamTls } : undefined, connect: true }),
    httpPort: tgHttp,
    adminPort: tgAdmin,
    connect: { port: tgConnect, targetPort: upstream },
    cpu: P.proxy,
    accessLog: false,
    verify: false, // each face (HTTP, TCP, CONNECT) is checked where it is measured
  });
  if (tg.ok) {
    // Without a flag to turn it off, Tollgate logs every request (to stdout = /dev/null): the main
    // instance then is the "log on" one, and the throughput "log off" row has no Tollgate figure.
    ctx.targets.tollgate = { ...tg, kind: 'tollgate', ok: true, logAlwaysOn: !canOff };
    ctx.tollgateAccessLog = canOff ? 'off, except the "log on" throughput rows (to a file)' : 'on in every scenario (no flag to turn it off; stdout = /dev/null)';
    if (need.tcp) ctx.targets['tollgate-tcp'] = { ...ctx.targets.tollgate, name: 'tollgate-tcp', iperfPort: tgTcpIperf, httpTcpPort: tgTcpHttp, tlsPort: tgTls };
    if (tg.connectPort) ctx.targets['tollgate-connect'] = { ...ctx.targets.tollgate, name: 'tollgate-connect' };
    tollgateStatus = `starts (\`${tg.command}\`)`;
    if (run('throughput')) {
      if (!canOff) ctx.targets['tollgate-log'] = { ...ctx.targets.tollgate, name: 'tollgate-log' };
      else {
        const tl = await launchTollgate({ dir, name: 'tollgate-log', configYaml: benchIstioYaml({ httpPort: tgLogHttp, upstreamPort: upstream }), httpPort: tgLogHttp, adminPort: tgLogAdmin, cpu: P.proxy, accessLog: join(dir, 'tollgate-log.access.log'), verify: false });
        ctx.targets['tollgate-log'] = tl.ok ? { ...tl, kind: 'tollgate', ok: true } : { name: 'tollgate-log', kind: 'tollgate', ok: false, reason: tl.reason };
        if (!tl.ok) log(`tollgate (access log on): not runnable (${tl.reason})`);
      }
    }
  } else {
    tollgateStatus = `not runnable (${tg.reason})`;
    for (const n of ['tollgate', 'tollgate-log', 'tollgate-tcp', 'tollgate-connect']) ctx.targets[n] = { name: n, kind: 'tollgate', ok: false, reason: tg.reason };
  }
  if (help.ok) ctx.machine.tollgateRunHelp = help.text.split('\n').filter((l) => l.trim().startsWith('-')).map((l) => l.trim());
} else {
  tollgateStatus = 'skipped (--skip-tollgate)';
  for (const n of ['tollgate', 'tollgate-log', 'tollgate-tcp', 'tollgate-connect']) ctx.targets[n] = { name: n, kind: 'tollgate', ok: false, reason: 'skipped' };
}
log(`tollgate: ${tollgateStatus}`);

// RSS before any traffic.
for (const t of Object.values(ctx.targets)) if (t.ok && t.pid && t.kind !== 'direct' && !t.name.endsWith('-tcp') && !t.name.endsWith('-connect')) ctx.idleRss[t.name] = rssBytes(processTree(t.pid));

// Every HTTP target must answer GET /1k and /64k with Host routing before it is measured.
const httpNames = ['direct', 'nginx', 'haproxy', 'nginx-log', 'haproxy-log', 'node-http', 'node-floor', 'tollgate', 'tollgate-log'];
const sameProcess = (n) => n === 'tollgate-log' && ctx.targets[n]?.pid === ctx.targets.tollgate?.pid;
for (const n of httpNames) {
  const t = ctx.targets[n];
  if (!t?.ok || sameProcess(n)) continue;
  for (const path of ['/1k', '/64k']) {
    const v = await verifyHttp(t.port, path);
    if (!v.ok) {
      t.ok = false;
      t.reason = `GET ${path} Host ${BENCH_HOST}: ${v.reason}`;
      t.short = `HTTP ${truncate(v.reason, 40)}`;
      if (t.kind !== 'tollgate') problems.push(`verify ${n}: ${t.reason}`);
      log(`${n}: ${t.reason}`);
      break;
    }
  }
}

// Warm-up: every HTTP target, 1 KiB then 64 KiB; Node targets longer (JIT). All targets at once:
// warming up is about running the code paths, not about timing, and one at a time it took a minute.
if (need.http && cfg.warmSec + cfg.nodeWarmSec > 0) {
  const plan = [];
  for (const n of httpNames) {
    const t = ctx.targets[n];
    if (!t?.ok || n === 'direct' || sameProcess(n)) continue;
    const secs = t.kind === 'tollgate' || t.kind === 'node' ? cfg.nodeWarmSec : cfg.warmSec;
    // 64 KiB gets a fifth of the time (at least 1 s): its path settles within 2 s after 1 KiB's.
    const bulkSecs = Math.max(1, Math.round(secs / 5));
    if (secs > 0) plan.push({ n, t, smallSecs: Math.max(1, secs - bulkSecs), bulkSecs });
  }
  log(`warm-up, all at once: ${plan.map((w) => `${w.n} ${w.smallSecs}+${w.bulkSecs}s`).join(', ')}`);
  await Promise.all(
    plan.map(async ({ t, smallSecs, bulkSecs }) => {
      await wrk({ port: t.port, path: '/1k', headers: [`Host: ${BENCH_HOST}`], seconds: smallSecs, cpu: P.load });
      await wrk({ port: t.port, path: '/64k', headers: [`Host: ${BENCH_HOST}`], seconds: bulkSecs, cpu: P.load });
    }),
  );
}

const stamp = new Date().toISOString().replace(/:/g, '-').replace(/\.\d+Z$/, 'Z');
const resultsDir = join(REPO, 'bench', 'results');
const outputs = [];
const checks = [];
for (const name of SCENARIOS) {
  if (!run(name)) continue;
  log(`scenario ${name}`);
  const scenarioStart = Date.now();
  let r;
  try {
    r = await S[name](ctx);
  } catch (err) {
    problems.push(`${name}: ${err.stack ?? err.message}`);
    r = { json: { error: String(err.message) }, markdown: `### ${name}\n\nerror: ${err.message}`, checks: [] };
  }
  const seconds = (Date.now() - scenarioStart) / 1000;
  log(`scenario ${name}: ${seconds.toFixed(0)} s`);
  outputs.push({ name, seconds, ...r });
  checks.push(...(r.checks ?? []));
  if (writeResults) {
    mkdirSync(resultsDir, { recursive: true });
    const file = join(resultsDir, `${stamp}-${name}.json`);
    writeFileSync(file, `${JSON.stringify({ scenario: name, mode, stamp, command, seconds, pinning: ctx.pin, machine: ctx.machine, params: cfg, tollgate: tollgateStatus, ...r.json }, null, 1)}\n`);
  }
}
ctx.machine.loadavgAtEnd = os.loadavg().map((x) => x.toFixed(2)).join(' ');
const elapsed = (Date.now() - started) / 1000;
// Where the budget went: setup (peers, Tollgates, verification, warm-up) and each scenario.
const setupSec = elapsed - outputs.reduce((a, o) => a + o.seconds, 0);
const durations = [`setup and warm-up ${setupSec.toFixed(0)}`, ...outputs.map((o) => `${o.name} ${o.seconds.toFixed(0)}`)].join(', ');

// ------------------------------------------------------------------ report

const m = ctx.machine;
const header = `## Latest run: ${mode}${partial ? ` (${selected.join(', ')})` : ''}, ${stamp}

Command: \`${command}\` (${elapsed.toFixed(0)} s: ${durations})${mode === 'smoke' ? ' — smoke: durations too short for the numbers to mean anything' : ''}

${table(
  ['machine', ''],
  [
    ['CPU', `${m.nproc} × ${m.model}`],
    ['kernel / node', `${m.kernel} / ${m.node}`],
    ['peers', `${m.nginx}; ${m.haproxy.replace(' - https://haproxy.org/', '')}; ${m.squid}; ${m.wrk.replace(' Copyright (C) 2012 Will Glozer', '')}; ${m.h2load}; ${m.iperf3}`],
    ['pinning', ctx.pin.applied ? `applied: ${ctx.pin.reason}` : `not applied: ${ctx.pin.reason}`],
    ['load average', `${m.loadavgAtStart} at start, ${m.loadavgAtEnd} at end (the machine may be shared)`],
    ['tollgate', `${m.tollgateCommit}: ${truncate(tollgateStatus, 400)}`],
    ...(ctx.tollgateAccessLog ? [['tollgate access log', ctx.tollgateAccessLog]] : []),
  ],
)}`;
const checkRows = checks.map((c) => [c.name, c.target, c.status === 'n/a' ? 'n/a (no Tollgate figure)' : c.status, c.detail ?? '—']);
const md = [header, ...outputs.map((o) => o.markdown), checkRows.length ? `### Targets\n\n${table(['target', 'goal', 'status', 'measured'], checkRows)}` : '', problems.length ? `### Problems\n\n${problems.map((p) => `- ${truncate(p, 300)}`).join('\n')}` : '']
  .filter(Boolean)
  .join('\n\n');
process.stdout.write(`\n${md}\n`);
if (writeResults) log(`results: bench/results/${stamp}-*.json`);
if (writeMd && partial) {
  // Only this run's scenarios, each with the run it came from; the rest of the block stays.
  const from = `Run: \`${command}\` (${elapsed.toFixed(0)} s), ${stamp}; load average ${m.loadavgAtStart} at start, ${m.loadavgAtEnd} at end; pinning ${ctx.pin.applied ? 'applied' : 'not applied'}.`;
  writeBenchmarksSubsections(join(REPO, 'BENCHMARKS.md'), outputs.map((o) => `${o.markdown}\n\n${from}`));
  log(`BENCHMARKS.md: ${outputs.map((o) => o.name).join(', ')} updated`);
} else if (writeMd) {
  writeBenchmarksMd(join(REPO, 'BENCHMARKS.md'), md);
  log('BENCHMARKS.md updated');
}

await cleanupAll();
cleanupSync();
if (elapsed > cfg.budgetSec) log(`warning: ${elapsed.toFixed(0)} s is over the ${mode} budget of ${cfg.budgetSec} s`);
let code = 0;
if (problems.length) {
  log(`${problems.length} problem(s) with the peers or the harness (see "Problems")`);
  code = 1;
}
if (opt['require-tollgate'] && !ctx.targets.tollgate?.ok) {
  log(`tollgate: ${tollgateStatus} (--require-tollgate)`);
  code = 1;
}
process.exit(code);
