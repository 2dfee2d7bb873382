#!/usr/bin/env node
// Soak: Tollgate under steady HTTP load for minutes while its config is reloaded every few
// seconds; reports whether memory and open files stay flat (RSS and fd slopes).
//
//   npm run soak                      # 10 minutes, reload every 5 s, 200 req/s
//   node bench/soak.mjs --minutes 2 --reload-every 5 --rate 200 [--no-write]
//
// Peers: the bench upstream (nginx, /1k) and Tollgate from dist/ on loopback. Load: an open-loop
// client in this process at --rate req/s, 90% on 16 keep-alive connections and 10% on a new
// connection each. Reload: the config alternates between two versions (one ServiceEntry and its
// route added / removed), written in place and applied with SIGHUP. Every 5 s: RSS and open fds of
// the Tollgate process, its CPU seconds, and the request outcomes. The slopes are least-squares
// fits over the samples after the warm-up (the first minute, or the first fifth of a short run).
// Writes bench/results/<stamp>-soak.json and the soak section of BENCHMARKS.md unless --no-write.
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { BENCH_HOST, startUpstream } from './lib/peers.mjs';
import { fmt, table, writeMarkedSection } from './lib/report.mjs';
import { benchIstioYaml, launchTollgate, REPO } from './lib/tollgate.mjs';
import { cleanupAll, cleanupAllSync, cpuSeconds, freePorts, rssBytes, sleep, stopProcess } from './lib/util.mjs';

const USAGE = `usage: node bench/soak.mjs [--minutes N] [--reload-every S] [--rate R] [--no-write]
  --minutes N        how long to run (default 10)
  --reload-every S   config reload period in seconds (default 5)
  --rate R           requests per second (default 200)
  --no-write         print only; do not write bench/results or BENCHMARKS.md
  --report FILE      no run: render the BENCHMARKS.md section again from a saved
                     bench/results/*-soak.json (after a change to this report)
`;

const { values: opt } = parseArgs({
  options: {
    minutes: { type: 'string', default: '10' },
    'reload-every': { type: 'string', default: '5' },
    rate: { type: 'string', default: '200' },
    'no-write': { type: 'boolean' },
    report: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  },
});
if (opt.help) {
  process.stdout.write(USAGE);
  process.exit(0);
}
const minutes = Number(opt.minutes);
const reloadSec = Number(opt['reload-every']);
const rate = Number(opt.rate);
if (!(minutes > 0 && minutes <= 24 * 60) || !(reloadSec >= 1) || !(rate > 0 && rate <= 20_000)) {
  process.stderr.write(`soak: bad arguments\n${USAGE}`);
  process.exit(2);
}
const SAMPLE_MS = 5000;
const TICK_MS = 50;
const MAX_IN_FLIGHT = 2000;

process.on('exit', cleanupAllSync);
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(130));

let upstreamPort;
let httpPort;
let adminPort;

/** Open-loop client: `rate` req/s in ticks; counts outcomes; never more than MAX_IN_FLIGHT pending. */
function startLoad() {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
  const stats = { sent: 0, ok: 0, non200: 0, errors: 0, skipped: 0, inFlight: 0, errorKinds: {} };
  let carry = 0;
  let n = 0;
  const one = () => {
    if (stats.inFlight >= MAX_IN_FLIGHT) {
      stats.skipped++;
      return;
    }
    stats.sent++;
    stats.inFlight++;
    const fresh = n++ % 10 === 9;
    const req = http.request({ host: '127.0.0.1', port: httpPort, path: '/1k', headers: { host: BENCH_HOST }, agent: fresh ? false : agent, timeout: 10_000 }, (res) => {
      res.resume();
      res.on('end', () => {
        stats.inFlight--;
        if (res.statusCode === 200) stats.ok++;
        else stats.non200++;
      });
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (e) => {
      stats.inFlight--;
      stats.errors++;
      const k = e.code ?? e.message;
      stats.errorKinds[k] = (stats.errorKinds[k] ?? 0) + 1;
    });
    req.end();
  };
  const timer = setInterval(() => {
    carry += (rate * TICK_MS) / 1000;
    while (carry >= 1) {
      carry--;
      one();
    }
  }, TICK_MS);
  return {
    stats,
    async stop() {
      clearInterval(timer);
      for (let i = 0; i < 200 && stats.inFlight > 0; i++) await sleep(50);
      agent.destroy();
    },
  };
}

/** Least-squares slope of y over x. */
function slope(points) {
  const n = points.length;
  if (n < 2) return NaN;
  const mx = points.reduce((a, p) => a + p.x, 0) / n;
  const my = points.reduce((a, p) => a + p.y, 0) / n;
  let num = 0;
  let den = 0;
  for (const p of points) {
    num += (p.x - mx) * (p.y - my);
    den += (p.x - mx) ** 2;
  }
  return den === 0 ? 0 : num / den;
}

const fdCount = (pid) => {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return NaN;
  }
};

let result;
if (opt.report) {
  result = JSON.parse(readFileSync(opt.report, 'utf8'));
} else {
  result = await runSoak();
}

async function runSoak() {
const dir = mkdtempSync(join(os.tmpdir(), 'tollgate-soak-'));
[upstreamPort, httpPort, adminPort] = await freePorts(3);
const started = new Date();
const loadStart = os.loadavg();
let tg;
let upstream;
let load;
let result;
try {
  upstream = await startUpstream(dir, upstreamPort);
  const configs = [benchIstioYaml({ httpPort, upstreamPort }), benchIstioYaml({ httpPort, upstreamPort, scale: 1 })];
  tg = await launchTollgate({ dir, configYaml: configs[0], httpPort, adminPort });
  if (!tg.ok) throw new Error(`tollgate did not start: ${tg.reason}`);
  const pid = tg.pid;
  process.stdout.write(`soak: ${minutes} min, reload every ${reloadSec} s, ${rate} req/s; tollgate pid ${pid}\n`);
  load = startLoad();
  const t0 = Date.now();
  const end = t0 + minutes * 60_000;
  const samples = [];
  let reloads = 0;
  let nextReload = t0 + reloadSec * 1000;
  let nextSample = t0;
  while (Date.now() < end && !tg.rec.exited) {
    const now = Date.now();
    if (now >= nextReload) {
      reloads++;
      writeFileSync(tg.configFile, configs[reloads % 2]);
      process.kill(pid, 'SIGHUP');
      nextReload += reloadSec * 1000;
    }
    if (now >= nextSample) {
      const s = { t: (now - t0) / 1000, rss: rssBytes([pid]), fds: fdCount(pid), cpu: cpuSeconds([pid]), ok: load.stats.ok, failed: load.stats.non200 + load.stats.errors };
      samples.push(s);
      if (samples.length % 12 === 1) process.stdout.write(`  t=${s.t.toFixed(0)}s rss=${(s.rss / 1048576).toFixed(1)} MB fds=${s.fds} ok=${s.ok} failed=${s.failed}\n`);
      nextSample += SAMPLE_MS;
    }
    await sleep(Math.max(10, Math.min(nextReload, nextSample, end) - Date.now()));
  }
  await load.stop();
  if (tg.rec.exited) throw new Error(`tollgate exited during the soak (code ${tg.rec.exitCode}, signal ${tg.rec.signal})`);
  const stderr = readFileSync(join(dir, 'tollgate.stderr'), 'utf8');
  const applied = (stderr.match(/SIGHUP: config reloaded/g) ?? []).length;
  const reloadFailures = (stderr.match(/SIGHUP: reload failed/g) ?? []).length;
  const warmupSec = minutes >= 3 ? 60 : (minutes * 60) / 5;
  const steady = samples.filter((s) => s.t >= warmupSec);
  const rssSlope = slope(steady.map((s) => ({ x: s.t, y: s.rss })));
  const fdSlope = slope(steady.map((s) => ({ x: s.t, y: s.fds })));
  const last = samples[samples.length - 1];
  const first = steady[0] ?? samples[0];
  result = {
    started: started.toISOString(),
    command: `${process.env.npm_lifecycle_event === 'soak' ? 'npm run soak # = ' : ''}node bench/soak.mjs ${process.argv.slice(2).join(' ')}`.trim(),
    machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, kernel: os.release(), node: process.version, loadavgStart: loadStart, loadavgEnd: os.loadavg() },
    tollgate: tg.command,
    minutes,
    reloadEverySec: reloadSec,
    rate,
    reloadsSent: reloads,
    reloadsApplied: applied,
    reloadFailures,
    requests: { ...load.stats, inFlight: undefined },
    warmupSec,
    rssSlopeBytesPerSec: rssSlope,
    fdSlopePerHour: fdSlope * 3600,
    rssMB: { start: samples[0].rss / 1048576, afterWarmup: first.rss / 1048576, end: last.rss / 1048576, max: Math.max(...samples.map((s) => s.rss)) / 1048576 },
    fds: { start: samples[0].fds, afterWarmup: first.fds, end: last.fds, max: Math.max(...samples.map((s) => s.fds)) },
    cpuSecondsPer1kRequests: ((last.cpu - samples[0].cpu) / Math.max(1, last.ok)) * 1000,
    samples,
  };
} finally {
  await load?.stop();
  if (tg?.ok) await stopProcess(tg.rec);
  if (upstream) await stopProcess(upstream.rec);
  await cleanupAll();
  rmSync(dir, { recursive: true, force: true });
}
return result;
}

const r = result;
const samplesEvery = (samples, sec) => samples.filter((x, i) => i === 0 || Math.floor(x.t / sec) !== Math.floor(samples[i - 1].t / sec));
const verdict = (ok) => (ok ? 'flat' : 'GROWING');
const section = `## Soak: ${r.minutes} min under load with a reload every ${r.reloadEverySec} s (${r.started.slice(0, 16)}Z)

Command: \`${r.command}\`. ${r.rate} req/s of 1 KiB GETs through Tollgate to nginx on
loopback (90% on 16 keep-alive connections, 10% on a new connection each); the config alternates
between two versions every ${r.reloadEverySec} s (SIGHUP). Slopes are least-squares fits over the samples after a
${r.warmupSec} s warm-up. Machine: ${r.machine.cpus} × ${r.machine.model}, kernel ${r.machine.kernel}, node ${r.machine.node};
load average ${r.machine.loadavgStart.map((x) => x.toFixed(1)).join(' ')} at start, ${r.machine.loadavgEnd.map((x) => x.toFixed(1)).join(' ')} at end (a shared machine:
other jobs ran at the same time, so CPU figures are loose; the slopes are what this measures).

${table(
  ['', 'value', 'target'],
  [
    ['RSS slope', `${fmt(r.rssSlopeBytesPerSec, 0)} B/s (${verdict(r.rssSlopeBytesPerSec < 200)})`, '< 200 B/s'],
    ['fd slope', `${fmt(r.fdSlopePerHour, 1)} per hour (${verdict(r.fdSlopePerHour < 60)})`, 'flat'],
    ['RSS MB: start / after warm-up / end / max', `${fmt(r.rssMB.start, 1)} / ${fmt(r.rssMB.afterWarmup, 1)} / ${fmt(r.rssMB.end, 1)} / ${fmt(r.rssMB.max, 1)}`, ''],
    ['RSS MB, every 30 s', samplesEvery(r.samples, 30).map((x) => (x.rss / 1048576).toFixed(0)).join(' '), ''],
    ['open fds: start / after warm-up / end / max', `${r.fds.start} / ${r.fds.afterWarmup} / ${r.fds.end} / ${r.fds.max}`, ''],
    ['requests: ok / non-200 / errors / skipped', `${fmt(r.requests.ok)} / ${fmt(r.requests.non200)} / ${fmt(r.requests.errors)} / ${fmt(r.requests.skipped)}`, 'no failures'],
    ['reloads: sent / applied / failed', `${r.reloadsSent} / ${r.reloadsApplied} / ${r.reloadFailures}`, 'all applied'],
    ['CPU seconds per 1,000 requests', fmt(r.cpuSecondsPer1kRequests, 3), ''],
  ],
)}
`;
process.stdout.write(`\n${section}\n`);
if (Object.keys(r.requests.errorKinds).length > 0) process.stdout.write(`errors: ${JSON.stringify(r.requests.errorKinds)}\n`);
if (!opt['no-write']) {
  const stamp = r.started.replace(/[:.]/g, '-').slice(0, 19) + 'Z';
  const resultsDir = join(REPO, 'bench', 'results');
  if (existsSync(resultsDir)) writeFileSync(join(resultsDir, `${stamp}-soak.json`), JSON.stringify(r, null, 2) + '\n');
  writeMarkedSection(join(REPO, 'BENCHMARKS.md'), 'soak', 'bench/soak.mjs', section);
  process.stdout.write(`written: bench/results/${stamp}-soak.json, BENCHMARKS.md (soak section)\n`);
}
