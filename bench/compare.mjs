#!/usr/bin/env node
// Same-run comparison of Tollgate builds: the HTTP/1.1 throughput row for several git commits,
// measured side by side (alternating rounds) with nginx and the node-floor as references, so a
// change in the hot path is judged against the same machine state, not against an old table.
// With --l4: the L4 cases instead (TCP/TLS passthrough new connections/s, iperf3), with the
// pipe() relay and HAProxy as references (bench/lib/compare-l4.mjs).
//
//   node bench/compare.mjs [--ref REF ...] [--size 1k,64k] [--seconds 3] [--rounds 5] [--warm 5]
//                          [--log-on] [--l4 [--cases LIST] [--rate N]]
//                          [--no-pin] [--no-write] [--keep]
//
// REF is a commit, branch or tag, built with `tsc` in a temporary git worktree (node_modules
// linked from this checkout); `.` is this checkout as built in dist/ (run `npm run build` first).
// Default: `--ref . --ref 60b9e27` (this build against the commit before the HTTP engine v2).
// Writes bench/results/<stamp>-compare.json and prints a Markdown table.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { wrk } from './lib/load.mjs';
import { BENCH_HOST, startNginxProxy, startNodeFloor, startUpstream, verifyHttp } from './lib/peers.mjs';
import { compareL4, L4_CASE_IDS } from './lib/compare-l4.mjs';
import { cell, fmtRatio, ratio, table } from './lib/report.mjs';
import { summarize } from './lib/scenarios.mjs';
import { benchIstioYaml, entryPoint, launchTollgate, MAIN, REPO } from './lib/tollgate.mjs';
import { cleanupAll, cleanupAllSync, cpuSeconds, freePorts, pinningPlan, processTree } from './lib/util.mjs';

const USAGE = `usage: node bench/compare.mjs [--ref REF ...] [--size 1k,64k] [--seconds 3] [--rounds 5] [--warm 5]
                              [--log-on] [--l4 [--cases LIST]] [--no-pin] [--no-write] [--keep]
  --ref REF      repeatable: a commit/branch/tag built in a temporary worktree, or "." for this
                 checkout's dist/ (default: . and 60b9e27)
  --size LIST    bodies to fetch, from 1k and 64k (default 1k)
  --seconds N    wrk duration per round (default 3)
  --rounds N     alternating rounds (default 5); the table shows the median
  --warm N       seconds of warm-up per Node target (default 5)
  --log-on       also run each build with its access log on (appended to a file): the cost of the log
  --l4           compare the L4 cases instead of HTTP/1.1: TCP and TLS passthrough through each
                 build, the pipe() relay and HAProxy (CPU per connection or per GB)
  --cases LIST   with --l4: from tcp-conn, tls-conn, tcp-iperf3, tls-64k (as in bench/run.mjs) and
                 tcp-paced, tls-paced (new connections at --rate per second: the same work for every
                 target, so CPU per connection compares on a loaded machine); default
                 tcp-conn,tls-conn,tcp-iperf3
  --rate N       connections per second of the paced cases (default 300)
  --no-pin       do not pin with taskset
  --no-write     do not write bench/results/<stamp>-compare.json (-compare-l4.json with --l4)
  --keep         keep the temp dir (worktrees, configs, logs)
`;
const { values: opt } = parseArgs({
  options: {
    ref: { type: 'string', multiple: true },
    size: { type: 'string', default: '1k' },
    seconds: { type: 'string', default: '3' },
    rounds: { type: 'string', default: '5' },
    warm: { type: 'string', default: '5' },
    'log-on': { type: 'boolean' },
    l4: { type: 'boolean' },
    cases: { type: 'string', default: 'tcp-conn,tls-conn,tcp-iperf3' },
    rate: { type: 'string', default: '300' },
    'no-pin': { type: 'boolean' },
    'no-write': { type: 'boolean' },
    keep: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  },
});
if (opt.help) {
  process.stdout.write(USAGE);
  process.exit(0);
}
const refs = opt.ref ?? ['.', '60b9e27'];
const sizes = opt.size.split(',').map((s) => s.trim());
for (const s of sizes) if (s !== '1k' && s !== '64k') fail(`--size ${s}: 1k or 64k`);
const seconds = Math.max(1, Number(opt.seconds));
const rounds = Math.max(1, Number(opt.rounds));
const warm = Math.max(0, Number(opt.warm));
const l4Cases = opt.cases.split(',').map((s) => s.trim());
for (const c of l4Cases) if (!L4_CASE_IDS.includes(c)) fail(`--cases ${c}: one of ${L4_CASE_IDS.join(', ')}`);

function fail(msg) {
  process.stderr.write(`compare: ${msg}\n${USAGE}`);
  process.exit(2);
}

const dir = mkdtempSync(join(os.tmpdir(), 'tollgate-compare-'));
const worktrees = [];
function cleanupSync() {
  cleanupAllSync();
  for (const w of worktrees.splice(0)) {
    try {
      execFileSync('git', ['-C', REPO, 'worktree', 'remove', '--force', w], { stdio: 'ignore' });
    } catch {
      /* already gone */
    }
  }
  if (!opt.keep) rmSync(dir, { recursive: true, force: true });
}
process.on('exit', cleanupSync);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, () => process.exit(130));
// Builds take a while on a loaded machine; the measuring part is bounded by the rounds.
setTimeout(() => {
  process.stderr.write('compare: over the time limit; stopping\n');
  process.exit(1);
}, (refs.length * 300 + (rounds * (refs.length + 2) * (opt.l4 ? l4Cases.length : sizes.length) * (seconds + 5)) + 120) * 1000).unref();
const started = Date.now();
const log = (m) => process.stderr.write(`[${((Date.now() - started) / 1000).toFixed(1).padStart(5)}s] ${m}\n`);

/** The entry point of REF's build: this checkout's dist, or a fresh worktree built as `npm run build` builds it. */
function buildRef(ref) {
  if (ref === '.') return { ref, commit: git(['rev-parse', '--short', 'HEAD']), main: MAIN };
  const commit = git(['rev-parse', '--short', `${ref}^{commit}`]);
  const wt = join(dir, `wt-${commit}`);
  log(`${ref}: worktree ${commit}, building`);
  git(['worktree', 'add', '--detach', wt, commit]);
  worktrees.push(wt);
  // The commit's own dependencies are the current ones or a subset of them (npm ci of every commit
  // would cost minutes); a build that fails says so.
  symlinkSync(join(REPO, 'node_modules'), join(wt, 'node_modules'));
  execFileSync(process.execPath, [join(REPO, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json'], { cwd: wt, stdio: ['ignore', 'ignore', 'inherit'] });
  if (existsSync(join(wt, 'scripts/bundle.mjs'))) execFileSync(process.execPath, [join(wt, 'scripts/bundle.mjs')], { cwd: wt, stdio: ['ignore', 'ignore', 'inherit'] });
  const main = entryPoint(wt);
  return { ref, commit, main };
}

function git(args) {
  return execFileSync('git', ['-C', REPO, ...args], { encoding: 'utf8' }).trim();
}

const builds = refs.map(buildRef);
const pin = pinningPlan(opt['no-pin']);
if (opt.l4) {
  const { md, results, summary } = await compareL4({ builds, dir, pin, caseIds: l4Cases, seconds, rounds, warm, rate: Math.max(1, Number(opt.rate)), log });
  await finish('compare-l4', `\`node bench/compare.mjs ${process.argv.slice(2).join(' ')}\`: ${md}`, { results, summary });
}
const ports = await freePorts(3 + refs.length * 4);
const [upPort, ngxPort, floorPort] = ports;
await startUpstream(dir, upPort, pin.load);
const targets = [
  { name: 'nginx', ...(await startNginxProxy(dir, { port: ngxPort, upstreamPort: upPort, accessLog: false, cpu: pin.proxy })) },
  { name: 'node-floor', node: true, ...(await startNodeFloor(dir, { port: floorPort, upstreamPort: upPort, cpu: pin.proxy })) },
];
for (const [i, b] of builds.entries()) {
  const name = `tollgate@${b.ref === '.' ? `${b.commit} (this build)` : b.commit}`;
  const httpPort = ports[3 + 2 * i];
  const tg = await launchTollgate({ main: b.main, dir, name: `tollgate-${i}`, configYaml: benchIstioYaml({ httpPort, upstreamPort: upPort }), httpPort, adminPort: ports[4 + 2 * i], cpu: pin.proxy, accessLog: false });
  if (!tg.ok) throw new Error(`${name}: ${tg.reason}`);
  targets.push({ ...tg, name, node: true, tollgate: true });
  if (opt['log-on']) {
    const logPort = ports[3 + 2 * refs.length + 2 * i];
    const tl = await launchTollgate({ main: b.main, dir, name: `tollgate-${i}-log`, configYaml: benchIstioYaml({ httpPort: logPort, upstreamPort: upPort }), httpPort: logPort, adminPort: ports[4 + 2 * refs.length + 2 * i], cpu: pin.proxy, accessLog: join(dir, `tollgate-${i}.access.log`) });
    if (!tl.ok) throw new Error(`${name} log on: ${tl.reason}`);
    targets.push({ ...tl, name: `${name} log on`, node: true, tollgate: true, logOf: name });
  }
}
for (const t of targets) {
  const v = await verifyHttp(t.port, '/1k');
  if (!v.ok) throw new Error(`${t.name}: GET /1k Host ${BENCH_HOST}: ${v.reason}`);
}
log(`targets: ${targets.map((t) => t.name).join(', ')}; pinning: ${pin.applied ? pin.reason : `not applied (${pin.reason})`}`);
for (const t of targets.filter((x) => x.node && warm > 0)) {
  log(`warm-up ${t.name} ${warm}s`);
  for (const s of sizes) await wrk({ port: t.port, path: `/${s}`, headers: [`Host: ${BENCH_HOST}`], seconds: warm, cpu: pin.load });
}

const results = [];
for (let r = 0; r < rounds; r++) {
  for (const size of sizes) {
    for (const t of targets) {
      const pids = processTree(t.pid);
      const cpu0 = cpuSeconds(pids);
      const res = await wrk({ port: t.port, path: `/${size}`, headers: [`Host: ${BENCH_HOST}`], conns: 32, seconds, cpu: pin.load });
      if (res.requests) res.cpuUsPerReq = ((cpuSeconds(pids) - cpu0) * 1e6) / res.requests;
      results.push({ round: r, size, target: t.name, ...res });
    }
  }
  log(`round ${r + 1}/${rounds} done`);
}

const rows = [];
const summary = {};
for (const size of sizes) {
  const of = (n, m) => summarize(results.filter((x) => x.size === size && x.target === n), m);
  summary[size] = Object.fromEntries(targets.map((t) => [t.name, { rps: of(t.name, 'rps'), cpuUsPerReq: of(t.name, 'cpuUsPerReq') }]));
  const s = summary[size];
  for (const t of targets) {
    rows.push([
      size,
      t.name,
      cell(s[t.name].rps),
      cell(s[t.name].cpuUsPerReq, (v) => v.toFixed(1)),
      fmtRatio(ratio(s[t.name].rps.median, s.nginx.rps.median)),
      fmtRatio(ratio(s[t.name].cpuUsPerReq.median, s['node-floor'].cpuUsPerReq.median)),
      t.logOf ? fmtRatio(ratio(s[t.name].cpuUsPerReq.median, s[t.logOf].cpuUsPerReq.median)) : '',
    ]);
  }
}
const md = `\`node bench/compare.mjs ${process.argv.slice(2).join(' ')}\`: \`wrk -t1 -c32 -d${seconds}s\`, Host-routed keep-alive GETs, access log off${opt['log-on'] ? ' (on, to a file, in the "log on" rows)' : ''}, median of ${rounds} alternating rounds.

${table(['size', 'target', 'requests/s', 'CPU µs/request', 'rps / nginx', 'CPU / node-floor', 'CPU log on / off'], rows)}`;
await finish('compare', md, { results, summary });

/** Prints the table with the load average, writes bench/results/<stamp>-<scenario>.json (unless --no-write) and exits. */
async function finish(scenario, md, data) {
  const load = os.loadavg().map((x) => x.toFixed(2)).join(' ');
  process.stdout.write(`\n${md}\n\nPinning ${pin.applied ? pin.reason : `not applied (${pin.reason})`}; load average at the end ${load}.\n`);
  if (!opt['no-write']) {
    const stamp = new Date().toISOString().replace(/:/g, '-').replace(/\.\d+Z$/, 'Z');
    const out = join(REPO, 'bench', 'results');
    mkdirSync(out, { recursive: true });
    writeFileSync(join(out, `${stamp}-${scenario}.json`), `${JSON.stringify({ scenario, stamp, argv: process.argv.slice(2), builds, pinning: pin, loadavgAtEnd: load, seconds, rounds, ...data }, null, 1)}\n`);
    log(`results: bench/results/${stamp}-${scenario}.json`);
  }
  await cleanupAll();
  process.exit(0);
}
