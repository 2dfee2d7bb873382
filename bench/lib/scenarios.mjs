// The bench scenarios. Each takes the run context (peers already started, targets
// verified and warmed) and returns { json, markdown, checks }. Every measured loop alternates the
// targets inside each round (A B C A B C ...), and the summary is the median over rounds.
import { fileURLToPath } from 'node:url';
import { connectLoad, iperf3, pacedConstant, wrk } from './load.mjs';
import { BENCH_HOST, startNodeBaseline, TLS_SNI, verifyHttp } from './peers.mjs';
import { cell, fmt, fmtMB, fmtMs, fmtRatio, ratio, table, truncate } from './report.mjs';
import { benchIstioYaml, launchTollgate, tollgateSupports } from './tollgate.mjs';
import { cpuSeconds, freePorts, median, pinProcess, processTree, rssBytes, rssSampler, runCommand, sleep, spread, stopProcess } from './util.mjs';

const HOST_HDR = `Host: ${BENCH_HOST}`;

/** Median/spread/errors of one metric over rounds. */
export function summarize(results, metric) {
  const values = results.filter((r) => !r.error).map((r) => r[metric]).filter((v) => typeof v === 'number');
  return { median: median(values), spread: spread(values), n: values.length, values, errors: results.filter((r) => r.error).map((r) => r.error) };
}

/** Targets of a scenario that can be measured; the rest become status cells ("not runnable ..."). */
function usable(ctx, names) {
  return names.map((n) => ctx.targets[n]).filter((t) => t && t.ok);
}

function statusCell(ctx, name) {
  const t = ctx.targets[name];
  if (!t) return { status: 'not started' };
  if (!t.ok) return { status: t.short ?? (t.kind === 'tollgate' ? 'not runnable' : `failed: ${truncate(t.reason, 50)}`) };
  return undefined;
}

/** Runs `measure(target, round)` for every round x target, alternating; records peer errors. */
async function alternate(ctx, scenario, caseId, targets, rounds, measure) {
  const out = [];
  for (let r = 0; r < rounds; r++) {
    for (const t of targets) {
      const res = await measure(t, r);
      out.push({ case: caseId, target: t.name, round: r, ...res });
      if (res.error) ctx.problem(scenario, t, `${caseId} round ${r}: ${res.error}`);
    }
  }
  return out;
}

function byTarget(rounds, caseId, metric, ctx, names) {
  const s = {};
  for (const n of names) {
    const st = statusCell(ctx, n);
    s[n] = st ?? summarize(rounds.filter((r) => r.case === caseId && r.target === n), metric);
  }
  return s;
}

function check(name, target, value, ok, detail) {
  return { name, target, value, status: value === undefined ? 'n/a' : ok ? 'met' : 'not met', detail };
}

// ------------------------------------------------------------------ 1. HTTP throughput

export async function throughput(ctx) {
  const { cfg } = ctx;
  const cases = [];
  for (const size of cfg.sizes) {
    cases.push({ id: `${size} log off`, size, names: ['direct', 'nginx', 'haproxy', ...(cfg.nodeBaseline ? ['node-http'] : []), 'node-floor', 'tollgate'], tg: 'tollgate' });
    if (cfg.logOnSizes.includes(size)) cases.push({ id: `${size} log on`, size, names: ['nginx-log', 'haproxy-log', 'tollgate-log'], tg: 'tollgate-log' });
  }
  const rounds = [];
  const summary = {};
  const cpuSummary = {};
  const tgLogAlwaysOn = ctx.targets.tollgate?.ok && ctx.targets.tollgate.logAlwaysOn;
  for (const c of cases) {
    const measured = c.names.filter((n) => !(n === 'tollgate' && tgLogAlwaysOn));
    const res = await alternate(ctx, 'throughput', c.id, usable(ctx, measured), cfg.rounds, async (t) => {
      const sampler = t.pid ? rssSampler(t.pid) : undefined;
      // The proxy's own CPU time over the run (direct: none, the upstream is not the proxy).
      const pids = t.pid && t.kind !== 'direct' ? processTree(t.pid) : [];
      const cpu0 = cpuSeconds(pids);
      const r = await wrk({ port: t.port, path: `/${c.size}`, headers: [HOST_HDR], conns: 32, seconds: cfg.thrSec, cpu: ctx.pin.load });
      if (pids.length > 0 && r.requests) r.cpuUsPerReq = ((cpuSeconds(pids) - cpu0) * 1e6) / r.requests;
      if (sampler) {
        r.rssMaxBytes = sampler.stop();
        // Keyed by PID: tollgate-log may be the same process as tollgate.
        ctx.peakRss[t.pid] = Math.max(ctx.peakRss[t.pid] ?? 0, r.rssMaxBytes);
      }
      return r;
    });
    rounds.push(...res);
    summary[c.id] = byTarget(rounds, c.id, 'rps', ctx, c.names);
    cpuSummary[c.id] = byTarget(rounds, c.id, 'cpuUsPerReq', ctx, c.names);
    if (c.tg === 'tollgate' && tgLogAlwaysOn) summary[c.id].tollgate = { status: 'n/a: log always on (see log on row)' };
  }
  // Ratios: Tollgate against every peer in the same case, and against direct of the same size.
  const ratios = {};
  const rows = [];
  for (const c of cases) {
    const s = summary[c.id];
    const direct = summary[`${c.size} log off`]?.direct;
    const tg = s[c.tg]?.median;
    const peerNames = c.names.filter((n) => n !== c.tg && n !== 'direct');
    ratios[c.id] = Object.fromEntries([...peerNames.map((n) => [n, ratio(tg, s[n]?.median)]), ['direct', ratio(tg, direct?.median)]]);
    const col = (base) => s[c.names.find((n) => n === base || n === `${base}-log`)];
    rows.push([
      c.id,
      c.id.endsWith('log on') ? '(log off row)' : cell(direct),
      cell(col('nginx')),
      cell(col('haproxy')),
      ...(cfg.nodeBaseline ? [c.id.endsWith('log on') ? '—' : cell(col('node-http'))] : []),
      c.id.endsWith('log on') ? '—' : cell(col('node-floor')),
      cell(col('tollgate')),
      fmtRatio(ratios[c.id][c.names.find((n) => n.startsWith('nginx'))]),
      fmtRatio(ratios[c.id][c.names.find((n) => n.startsWith('haproxy'))]),
      ...(cfg.nodeBaseline ? [fmtRatio(ratios[c.id]['node-http'])] : []),
      fmtRatio(ratios[c.id]['node-floor']),
      fmtRatio(ratios[c.id].direct),
    ]);
  }
  const headers = ['case', 'direct', 'nginx', 'haproxy', ...(cfg.nodeBaseline ? ['node-http'] : []), 'node-floor', 'tollgate', 'tg/nginx', 'tg/haproxy', ...(cfg.nodeBaseline ? ['tg/node-http'] : []), 'tg/node-floor', 'tg/direct'];
  const cpu = cpuPerRequest(cases, cpuSummary, cfg);
  // The target is log off on both sides; when Tollgate cannot turn its log off, compare log on on both sides.
  const off = ratios['1k log off'] ?? {};
  const on = ratios['1k log on'] ?? {};
  const useOn = off.nginx === undefined && off.haproxy === undefined && (on['nginx-log'] !== undefined || on['haproxy-log'] !== undefined);
  const rn = useOn ? on['nginx-log'] : off.nginx;
  const rh = useOn ? on['haproxy-log'] : off.haproxy;
  const note = useOn ? ' (access log on, both sides)' : '';
  const r64 = ratios['64k log off']?.nginx;
  const checks = [
    check('Host-routed HTTP, 64 KiB, vs nginx (requests/s)', '>= 0.8x', r64, r64 >= 0.8, fmtRatio(r64)),
    check('Host-routed HTTP, 1 KiB, vs nginx (1 worker)', '>= 1.0x', rn, rn >= 1.0, `${fmtRatio(rn)}${note}`),
    check('Host-routed HTTP, 1 KiB, vs HAProxy (1 thread)', '>= 1.0x', rh, rh >= 1.0, `${fmtRatio(rh)}${note}`),
  ];
  const markdown = `### 1. HTTP/1.1 Host-routed throughput (requests/s, higher is better)

\`wrk -t1 -c32 -d${cfg.thrSec}s -H '${HOST_HDR}'\`, keep-alive, no pipelining; median of ${cfg.rounds} alternating rounds (±: half the min–max range). Access log "on" appends to a file in the run's directory.

${table(headers, rows)}

${cpu.markdown}`;
  checks.push(...cpu.checks);
  return { json: { cases, rounds, summary, ratios, cpuUsPerRequest: cpuSummary, cpuRatios: cpu.ratios }, markdown, checks };
}

/**
 * CPU µs per request of every HTTP proxy in the throughput runs: robust to a shared machine (a
 * busy neighbour lowers requests/s, not the CPU each request costs). Ratios against the node-floor
 * (what Node itself charges) and nginx; the access-log cost is log on / log off of the same proxy.
 */
function cpuPerRequest(cases, cpuSummary, cfg) {
  const peers = ['nginx', 'haproxy', ...(cfg.nodeBaseline ? ['node-http'] : []), 'node-floor', 'tollgate'];
  const us = (v) => v.toFixed(1);
  const ratios = {};
  const rows = [];
  for (const c of cases) {
    const s = cpuSummary[c.id];
    const logOn = c.id.endsWith('log on');
    const of = (n) => s[logOn ? `${n}-log` : n] ?? s[n];
    const tg = of('tollgate')?.median;
    const off = cpuSummary[`${c.size} log off`]?.tollgate?.median;
    ratios[c.id] = { 'node-floor': ratio(tg, cpuSummary[`${c.size} log off`]?.['node-floor']?.median), nginx: ratio(tg, of('nginx')?.median), logOnCost: logOn ? ratio(tg, off) : undefined };
    rows.push([c.id, ...peers.map((n) => (logOn && (n === 'node-floor' || n === 'node-http') ? '—' : cell(of(n), us))), fmtRatio(ratios[c.id]['node-floor']), fmtRatio(ratios[c.id].nginx), logOn ? fmtRatio(ratios[c.id].logOnCost) : '—']);
  }
  const floor1k = ratios['1k log off']?.['node-floor'];
  const nginx64k = ratios['64k log off']?.nginx;
  const logCost = ratios['1k log on']?.logOnCost;
  const checks = [
    check('HTTP 1 KiB: CPU per request vs node-floor', '<= 1.2x', floor1k, floor1k <= 1.2, fmtRatio(floor1k)),
    check('HTTP 64 KiB: CPU per request vs nginx (<= 1.25x = >= 0.8x per core)', '<= 1.25x', nginx64k, nginx64k <= 1.25, fmtRatio(nginx64k)),
    check('Access log on (to a file): CPU per request vs log off, 1 KiB', '<= 1.10x', logCost, logCost <= 1.1, fmtRatio(logCost)),
  ];
  const markdown = `CPU µs per request (lower is better): utime+stime of the proxy's process tree (/proc/<pid>/stat) over each wrk run above, divided by the requests it served; median of the same rounds. This is the main metric on a shared machine: a busy neighbour lowers requests/s, not the CPU each request costs. "log on / off" = Tollgate with its access log on, per request, against the log off row.

${table(['case', ...peers, 'tg/node-floor', 'tg/nginx', 'log on / off'], rows)}`;
  return { markdown, checks, ratios };
}

// ------------------------------------------------------------------ 2 + 3. latency at 1000 req/s, CPU, RSS

export async function latency(ctx) {
  const { cfg } = ctx;
  // node-floor: what a Node process that only forwards bytes adds at this rate (its event loop, the
  // extra hop), measured the same way; the floor under Tollgate's added latency.
  const names = ['direct', 'nginx', 'haproxy', 'node-floor', 'tollgate'];
  const targets = usable(ctx, names);
  const idleWarm = {};
  // RSS of every started proxy, whether or not its HTTP face answers (Tollgate may be half-built).
  for (const n of names) {
    const t = ctx.targets[n];
    if (t?.pid && t.kind !== 'direct' && t.rec && !t.rec.exited) idleWarm[n] = rssBytes(processTree(t.pid));
  }
  // The bare-Node references (started for the throughput runs), RSS only: what Node itself holds.
  const nodeRefs = ['node-http'].filter((n) => ctx.targets[n]?.pid && !ctx.targets[n].rec?.exited);
  for (const n of nodeRefs) idleWarm[n] = rssBytes(processTree(ctx.targets[n].pid));
  const rounds = await alternate(ctx, 'latency', '1k@1000rps', targets, cfg.rounds, async (t, r) => {
    const pids = t.pid ? processTree(t.pid) : [];
    const upPids = processTree(ctx.targets.direct.pid);
    const cpu0 = cpuSeconds(pids);
    const up0 = cpuSeconds(upPids);
    const sampler = t.pid ? rssSampler(t.pid) : undefined;
    const res = await pacedConstant({ port: t.port, path: '/1k', host: BENCH_HOST, rps: cfg.rate, conns: 10, seconds: cfg.latSec, warmup: cfg.latWarmSec, cpu: ctx.pin.load });
    // The CPU is read around the whole client run (its warm-up second included): divided by every
    // request served in it, not by the measured ones only (which would count 7 s of CPU as 6 s of requests).
    const served = res.served ?? res.requests;
    if (t.pid) {
      res.cpuSeconds = cpuSeconds(pids) - cpu0;
      // CPU-seconds per 1000 requests == vCPU per 1000 req/s.
      res.vcpuPer1k = served ? (res.cpuSeconds * 1000) / served : undefined;
      res.rssLoadBytes = sampler.stop();
    }
    res.upstreamVcpuPer1k = served ? ((cpuSeconds(upPids) - up0) * 1000) / served : undefined;
    if (!res.error && res.achievedRps < cfg.rate * 0.9) res.error = `rate not held: ${res.achievedRps.toFixed(0)} req/s of ${cfg.rate}`;
    return res;
  });
  const s = {};
  for (const m of ['p50Ms', 'p90Ms', 'p99Ms', 'p999Ms', 'achievedRps', 'vcpuPer1k', 'rssLoadBytes', 'samples']) s[m] = byTarget(rounds, '1k@1000rps', m, ctx, names);
  const added = {};
  for (const n of names) {
    added[n] = {};
    for (const p of ['p50Ms', 'p90Ms', 'p99Ms', 'p999Ms']) {
      const a = s[p][n]?.median;
      const d = s[p].direct?.median;
      added[n][p] = typeof a === 'number' && typeof d === 'number' ? a - d : undefined;
    }
  }
  const latRows = names.map((n) => [
    n,
    cell(s.p50Ms[n], fmtMs),
    cell(s.p90Ms[n], fmtMs),
    cell(s.p99Ms[n], fmtMs),
    cell(s.p999Ms[n], fmtMs),
    n === 'direct' ? '—' : fmtMs(added[n].p50Ms),
    n === 'direct' ? '—' : fmtMs(added[n].p99Ms),
    n === 'direct' ? '—' : fmtMs(added[n].p999Ms),
    // A ratio against a peer that adds (almost) nothing over direct is noise, not information.
    n === 'tollgate' || n === 'direct' ? '' : added[n].p99Ms > 0.02 ? fmtRatio(ratio(added.tollgate.p99Ms, added[n].p99Ms)) : 'peer ≈ direct',
  ]);
  const rssIdle = (n) => ctx.idleRss[n];
  const resRows = names
    .filter((n) => n !== 'direct')
    .map((n) => [
      n,
      cell(s.vcpuPer1k[n], (v) => v.toFixed(3)),
      fmtMB(rssIdle(n)),
      fmtMB(idleWarm[n]),
      cell(s.rssLoadBytes[n], fmtMB),
      fmtMB(ctx.peakRss[ctx.targets[n]?.pid]),
      n === 'tollgate' ? '' : fmtRatio(ratio(s.vcpuPer1k.tollgate?.median, s.vcpuPer1k[n]?.median)),
      n === 'tollgate' ? '' : fmtRatio(ratio(idleWarm.tollgate, idleWarm[n])),
    ]);
  for (const n of nodeRefs) resRows.push([n, '—', fmtMB(rssIdle(n)), fmtMB(idleWarm[n]), '—', fmtMB(ctx.peakRss[ctx.targets[n].pid]), '', fmtRatio(ratio(idleWarm.tollgate, idleWarm[n]))]);
  const tgAddedP99 = added.tollgate.p99Ms;
  const tgCpu = s.vcpuPer1k.tollgate?.median;
  const checks = [
    check('Added latency p99 at 1,000 req/s over direct', '<= 0.250 ms', tgAddedP99, tgAddedP99 <= 0.25, tgAddedP99 === undefined ? undefined : `${fmtMs(tgAddedP99)} ms`),
    check('CPU per 1,000 req/s', '<= 0.10 vCPU', tgCpu, tgCpu <= 0.1, tgCpu === undefined ? undefined : `${tgCpu.toFixed(3)} vCPU`),
    check('RSS idle at start (1 process)', '<= 50 MB', ctx.idleRss.tollgate, ctx.idleRss.tollgate <= 50 * 1048576, ctx.idleRss.tollgate === undefined ? undefined : `${fmtMB(ctx.idleRss.tollgate)} MB`),
    check('RSS idle after the throughput runs (1 process)', '<= 70 MB', idleWarm.tollgate, idleWarm.tollgate <= 70 * 1048576, idleWarm.tollgate === undefined ? undefined : `${fmtMB(idleWarm.tollgate)} MB`),
  ];
  const markdown = `### 2. Added latency at a constant ${fmt(cfg.rate)} req/s (ms, lower is better)

\`bench/lib/paced-client.mjs\`: one 1 KiB GET every ${fmtMs(1000 / cfg.rate)} ms, evenly spaced, over 10 keep-alive connections (each request on an idle one); ${cfg.latWarmSec} s of warm-up, then ${cfg.latSec} s measured (${fmt(cfg.rate * cfg.latSec)} requests per round); latency from writing the request to the last byte of the response. Median of ${cfg.rounds} alternating rounds (±: half the min–max range over rounds); "added" = proxy minus direct. On a shared machine the tail (p99, p99.9) is mostly the scheduler: read it beside the direct row and the load average.

${table(['target', 'p50', 'p90', 'p99', 'p99.9', 'added p50', 'added p99', 'added p99.9', 'tg added p99 / peer added p99'], latRows)}

### 3. CPU per 1,000 req/s and memory (lower is better)

vCPU per 1,000 req/s = proxy CPU-seconds (utime+stime of the process tree, /proc/<pid>/stat) per 1,000 requests during the constant-rate window above. RSS (MB) from /proc/<pid>/status: at start (before any traffic), idle after warm-up, during the 1,000 req/s window, and peak during the throughput runs. node-floor (the bare-Node forwarder) is measured in the same window: what any Node process spends per request at this rate, where a wake-up per request costs more than under saturation; node-http shows the RSS a Node process holds doing the same job.

${table(['target', 'vCPU per 1k req/s', 'RSS start', 'RSS idle (warm)', 'RSS @1k req/s', 'RSS peak (wrk)', 'tg/peer CPU', 'tg/peer RSS idle'], resRows)}`;
  const peakRss = Object.fromEntries([...names, ...nodeRefs].map((n) => [n, ctx.peakRss[ctx.targets[n]?.pid]]));
  return { json: { rounds, summary: s, added, idleRssAtStart: ctx.idleRss, idleRssWarm: idleWarm, peakRssDuringThroughput: peakRss }, markdown, checks };
}

// ------------------------------------------------------------------ 4. L4

const L4_NAMES = ['direct', 'haproxy-tcp', 'pipe-relay', 'tollgate-tcp'];

/**
 * The four L4 cases. Each names the target's port it uses and the load; `per` says how CPU is
 * normalised: seconds per GB moved (throughput) or microseconds per connection (connections/s).
 */
export function l4Cases(cfg) {
  const https = { tlsHost: TLS_SNI };
  return [
    { id: 'tcp-iperf3', label: 'TCP iperf3 Gbit/s (1 stream)', port: 'iperfPort', per: 'GB', run: (t) => iperf3({ port: t.port, seconds: cfg.l4Sec, cpu: t.cpuLoad }) },
    { id: 'tcp-conn', label: 'TCP new connections/s (1 request each)', port: 'httpTcpPort', per: 'conn', run: (t) => wrk({ port: t.port, path: '/1k', headers: [HOST_HDR, 'Connection: close'], conns: 32, seconds: cfg.connSec, cpu: t.cpuLoad }) },
    { id: 'tls-64k', label: 'TLS passthrough Gbit/s (wrk, 64 KiB bodies, 8 conns)', port: 'tlsPort', per: 'GB', run: (t) => wrk({ port: t.port, path: '/64k', conns: 8, seconds: cfg.l4Sec, cpu: t.cpuLoad, ...https }) },
    { id: 'tls-conn', label: 'TLS passthrough new connections/s (handshake + 1 request)', port: 'tlsPort', per: 'conn', run: (t) => wrk({ port: t.port, path: '/1k', headers: ['Connection: close'], conns: 32, seconds: cfg.connSec, cpu: t.cpuLoad, ...https }) },
  ];
}

/**
 * One round of an L4 case on one target (`t.port` is the case's port; `t.kind` 'direct' has no
 * proxy CPU): the rate, and the proxy's CPU (utime+stime of its process tree) per GB or per connection.
 */
export async function measureL4(c, t, cfg) {
  const pids = t.kind === 'direct' ? [] : processTree(t.pid);
  const cpu0 = cpuSeconds(pids);
  const r = await c.run(t);
  const cpu = cpuSeconds(pids) - cpu0;
  if (c.id !== 'tcp-iperf3') {
    r.gbps = r.bytesPerSec !== undefined ? (r.bytesPerSec * 8) / 1e9 : undefined;
    r.bytes = r.bytesPerSec !== undefined ? r.bytesPerSec * cfg.l4Sec : undefined;
    r.cps = r.rps;
  }
  if (pids.length > 0) {
    r.cpuSeconds = cpu;
    if (c.per === 'GB' && r.bytes) r.cpuSecPerGB = cpu / (r.bytes / 1e9);
    if (c.per === 'conn' && r.requests) r.cpuUsPerConn = (cpu * 1e6) / r.requests;
  }
  if (c.id === 'tcp-iperf3') await sleep(150); // let the iperf3 server re-arm
  return r;
}

/**
 * The Node targets' L4 paths are not run by the HTTP warm-up: new connections through them first,
 * both targets at once, so the rounds do not pay for the JIT. Measured cold, a 2 s window of
 * Tollgate's new connections counted a third of its CPU in V8's compiler threads.
 */
async function warmL4(ctx) {
  const secs = Math.max(1, Math.round(ctx.cfg.nodeWarmSec / 2));
  const targets = ['pipe-relay', 'tollgate-tcp'].map((n) => ctx.targets[n]).filter((t) => t?.ok);
  for (const c of l4Cases({ l4Sec: secs, connSec: secs }).filter((x) => x.per === 'conn')) {
    await Promise.all(targets.filter((t) => t[c.port] !== undefined).map((t) => c.run({ ...t, port: t[c.port], cpuLoad: ctx.pin.load })));
  }
}

export async function l4(ctx) {
  const { cfg } = ctx;
  const rounds = [];
  const summary = {};
  if (cfg.nodeWarmSec > 0) await warmL4(ctx);
  for (const c of l4Cases(cfg)) {
    const targets = L4_NAMES.map((n) => ctx.targets[n]).filter((t) => t?.ok && t[c.port] !== undefined).map((t) => ({ ...t, port: t[c.port], cpuLoad: ctx.pin.load }));
    const res = await alternate(ctx, 'l4', c.id, targets, cfg.rounds, (t) => measureL4(c, t, cfg));
    rounds.push(...res);
    const metric = c.per === 'GB' ? 'gbps' : 'cps';
    summary[c.id] = { rate: byTarget(rounds, c.id, metric, ctx, L4_NAMES), cpu: byTarget(rounds, c.id, c.per === 'GB' ? 'cpuSecPerGB' : 'cpuUsPerConn', ctx, L4_NAMES) };
  }
  const rows = [];
  const checks = [];
  for (const c of l4Cases(cfg)) {
    const { rate, cpu } = summary[c.id];
    const tg = rate['tollgate-tcp']?.median;
    const toPipe = ratio(tg, rate['pipe-relay']?.median);
    const toHap = ratio(tg, rate['haproxy-tcp']?.median);
    const f = c.per === 'GB' ? (v) => v.toFixed(2) : (v) => fmt(v);
    const cf = c.per === 'GB' ? (v) => v.toFixed(2) : (v) => v.toFixed(0);
    rows.push([c.label, cell(rate.direct, f), cell(rate['haproxy-tcp'], f), cell(rate['pipe-relay'], f), cell(rate['tollgate-tcp'], f), fmtRatio(toPipe), fmtRatio(toHap)]);
    rows.push([`  CPU ${c.per === 'GB' ? 's per GB' : 'µs per connection'} (proxy)`, '', cell(cpu['haproxy-tcp'], cf), cell(cpu['pipe-relay'], cf), cell(cpu['tollgate-tcp'], cf), fmtRatio(ratio(cpu['pipe-relay']?.median, cpu['tollgate-tcp']?.median)), fmtRatio(ratio(cpu['haproxy-tcp']?.median, cpu['tollgate-tcp']?.median))]);
    checks.push(check(`L4 ${c.label} vs the pipe() relay`, '>= 1.0x', toPipe, toPipe >= 1.0, `${fmtRatio(toPipe)} (HAProxy: ${fmtRatio(toHap)})`));
  }
  const markdown = `### 4. L4 TCP forwarding and TLS passthrough (higher is better)

\`iperf3 -c 127.0.0.1 -t ${cfg.l4Sec}\` through each TCP listener (direct = straight to the iperf3 server); TCP new connections/s = \`wrk -c32 -d${cfg.connSec}s -H 'Connection: close'\` through a TCP listener to the HTTP upstream; TLS passthrough = \`wrk https://${TLS_SNI}:<port>\` (SNI ${TLS_SNI}) through a listener that routes by SNI without decrypting, to the upstream's TLS port (HAProxy: \`req.ssl_sni\`; the pipe() relay does not look at the bytes). pipe-relay = \`bench/lib/pipe-relay.mjs\`, a bare Node \`socket.pipe()\` relay. CPU = utime+stime of the proxy (/proc/<pid>/stat) over the window, per GB moved or per connection; the CPU ratios are peer CPU / Tollgate CPU (higher = Tollgate cheaper). Median of ${cfg.rounds} alternating rounds.

${table(['case', 'direct', 'haproxy (tcp)', 'pipe-relay', 'tollgate', 'tg/pipe-relay', 'tg/haproxy'], rows)}`;
  return { json: { rounds, summary }, markdown, checks };
}

// ------------------------------------------------------------------ 5. CONNECT

export async function connect(ctx) {
  const { cfg } = ctx;
  // Tollgate's CONNECT face is its own target (tollgate-connect): it is measured even when the HTTP face is not ready.
  const names = ['direct', 'squid', 'tollgate-connect'];
  const targets = usable(ctx, names).map((t) => ({ ...t, proxyPort: t.name === 'direct' ? undefined : t.name === 'tollgate-connect' ? t.connectPort : t.port }));
  const noConnect = ctx.targets.tollgate?.ok !== undefined && ctx.targets['tollgate-connect'] === undefined && ctx.targets.tollgate?.pid;
  const rounds = [];
  const summary = {};
  const rows = [];
  // Cases: keep-alive requests/s (1 KiB), MB/s (64 KiB), and new tunnels/s (CONNECT + one GET + close).
  const cases = [
    ...cfg.connectSizes.map((size) => ({ id: `CONNECT ${size}`, size, metric: size === '1k' ? 'rps' : 'mbytesPerSec', label: size === '1k' ? 'requests/s in tunnels, 1 KiB' : 'MB/s in tunnels, 64 KiB bodies' })),
    { id: 'CONNECT new tunnels', size: '1k', metric: 'tunnelsPerSec', label: 'new tunnels/s (1 request each)', newTunnels: true },
  ];
  for (const c of cases) {
    const res = await alternate(ctx, 'connect', c.id, targets, cfg.rounds, (t) =>
      connectLoad({ proxyPort: t.proxyPort, targetHost: ctx.connectTarget.host, targetPort: ctx.connectTarget.port, path: `/${c.size}`, host: BENCH_HOST, conns: 32, seconds: cfg.connectSec, cpu: ctx.pin.load, newTunnels: c.newTunnels }),
    );
    rounds.push(...res);
    summary[c.id] = byTarget(rounds, c.id, c.metric, ctx, names);
    summary[c.id].tollgate = noConnect ? { status: 'n/a: no --explicit-proxy in run --help' } : summary[c.id]['tollgate-connect'];
    delete summary[c.id]['tollgate-connect'];
    const s = summary[c.id];
    rows.push([c.label, cell(s.direct), cell(s.squid), cell(s.tollgate), fmtRatio(ratio(s.tollgate?.median, s.squid?.median)), fmtRatio(ratio(s.tollgate?.median, s.direct?.median))]);
  }
  const r = ratio(summary['CONNECT 1k']?.tollgate?.median, summary['CONNECT 1k']?.squid?.median);
  const rt = ratio(summary['CONNECT new tunnels']?.tollgate?.median, summary['CONNECT new tunnels']?.squid?.median);
  // When both proxies come within 10% of the direct path, the client is the bottleneck, not them.
  const clientBound = (id) => {
    const x = summary[id] ?? {};
    const d = x.direct?.median;
    return d > 0 && x.squid?.median >= 0.9 * d && x.tollgate?.median >= 0.9 * d;
  };
  const markdown = `### 5. CONNECT tunnels (higher is better)

\`bench/lib/connect-client.mjs\`: 32 tunnels (\`CONNECT ${ctx.connectTarget.host}:${ctx.connectTarget.port}\`), keep-alive GETs inside each tunnel, one in flight per tunnel, ${cfg.connectSec}s; "new tunnels/s": 32 loops of CONNECT, one GET, close. Direct = the same client without a proxy (plain connections). The client is one Node process on the load core: when "direct" is not far above the proxies, the client is the limit. Median of ${cfg.rounds} alternating rounds.

${table(['metric', 'direct', 'squid', 'tollgate', 'tg/squid', 'tg/direct'], rows)}`;
  return { json: { rounds, summary }, markdown, checks: [
      clientBound('CONNECT 1k') ? { name: 'CONNECT requests/s vs Squid', target: '>= 1.0x', value: r, status: 'inconclusive', detail: `${fmtRatio(r)} (both within 10% of direct: the client is the limit)` } : check('CONNECT requests/s vs Squid', '>= 1.0x', r, r >= 1.0, fmtRatio(r)),
      clientBound('CONNECT new tunnels') ? { name: 'CONNECT new tunnels/s vs Squid', target: '>= 1.0x', value: rt, status: 'inconclusive', detail: `${fmtRatio(rt)} (client-bound)` } : check('CONNECT new tunnels/s vs Squid', '>= 1.0x', rt, rt >= 1.0, fmtRatio(rt)),
    ] };
}

// ------------------------------------------------------------------ 6. scale

// HTTP/2 over TLS (its own nginx and Tollgate): h2.mjs.
export { http2 } from './h2.mjs';

const COMPILE_BENCH = fileURLToPath(new URL('./compile-bench.mjs', import.meta.url));

export async function scale(ctx) {
  const { cfg } = ctx;
  const compile = [];
  for (const n of cfg.scaleNs) {
    const r = await runCommand(process.execPath, ['--expose-gc', '--max-old-space-size=4096', COMPILE_BENCH, String(n), String(n >= 10000 ? Math.min(cfg.compileReps, 2) : cfg.compileReps)], { cpu: ctx.pin.proxy, timeoutMs: 120_000 });
    try {
      compile.push(JSON.parse(r.stdout.trim().split('\n').pop()));
    } catch {
      compile.push({ serviceEntries: n, error: `compile-bench exited ${r.code}: ${(r.stderr || r.stdout).trim().slice(0, 200)}` });
    }
  }
  const live = [];
  const tg = ctx.targets.tollgate;
  // Started is enough for memory and start-up time; the HTTP load runs only when the HTTP face answers.
  const started = tg && (tg.ok || tg.pid);
  if (started) {
    for (const n of cfg.rssNs) {
      const [httpPort, adminPort] = await freePorts(2);
      const host = n > 1 ? `svc-${n - 2}.scale.bench.test` : BENCH_HOST;
      const t0 = Date.now();
      const l = await launchTollgate({ dir: ctx.dir, name: `tollgate-scale-${n}`, configYaml: benchIstioYaml({ httpPort, upstreamPort: ctx.ports.upstream, scale: n - 1 }), httpPort, adminPort, cpu: ctx.pin.proxy, verify: false, readyTimeoutMs: 90_000 });
      if (!l.ok) {
        live.push({ serviceEntries: n, error: l.reason });
        continue;
      }
      const row = { serviceEntries: n, readyMs: Date.now() - t0 };
      await sleep(cfg.settleMs);
      row.rssIdleBytes = rssBytes(processTree(l.pid));
      const v = await verifyHttp(httpPort, '/1k', host);
      if (v.ok) {
        const sampler = rssSampler(l.pid);
        const w = await wrk({ port: httpPort, path: '/1k', headers: [`Host: ${host}`], conns: 32, seconds: cfg.thrSec, cpu: ctx.pin.load });
        Object.assign(row, { rssLoadBytes: sampler.stop(), rps: w.rps, host, ...(w.error ? { httpError: w.error } : {}) });
      } else row.httpError = `HTTP ${v.reason}`;
      live.push(row);
      await stopProcess(l.rec);
    }
  }
  // The bare-Node floor: node-http (node-proxy.mjs) started fresh and idle, what Node itself holds.
  let floorIdleBytes;
  if (started) {
    const [floorPort] = await freePorts(1);
    try {
      const floor = await startNodeBaseline(ctx.dir, { port: floorPort, upstreamPort: ctx.ports.upstream, cpu: ctx.pin.proxy });
      await sleep(cfg.settleMs);
      floorIdleBytes = rssBytes(processTree(floor.pid));
      await stopProcess(floor.rec);
    } catch {
      floorIdleBytes = undefined;
    }
  }
  const first = live.find((x) => x.serviceEntries === 1 && !x.error);
  const last = [...live].reverse().find((x) => x.serviceEntries > 1 && !x.error);
  // KB of idle RSS per extra ServiceEntry, from N=1 to each N (the target is read at the largest N).
  const perEntryKB = (x) => (first && x && !x.error && x.serviceEntries > 1 ? (x.rssIdleBytes - first.rssIdleBytes) / (x.serviceEntries - 1) / 1024 : undefined);
  const slopeKB = perEntryKB(last);
  const c1 = compile.find((x) => x.serviceEntries === 1 && !x.error);
  const cN = [...compile].reverse().find((x) => x.serviceEntries > 1 && !x.error);
  const heapSlopeKB = c1 && cN ? (cN.retainedHeapBytes - c1.retainedHeapBytes) / (cN.serviceEntries - 1) / 1024 : undefined;
  const compileRows = compile.map((c) =>
    c.error
      ? [fmt(c.serviceEntries), `error: ${truncate(c.error, 60)}`, '', '', '', '', '', '', '', '']
      : [fmt(c.serviceEntries), fmt(c.parseMs, 1), fmt(c.decodeMs, 1), fmt(c.modelMs, 1), fmt(c.snapshotMs, 1), fmt(c.totalMs, 1), fmt(c.snapshotBytes / 1024, 0), c.runtimeCompileMs === undefined ? '—' : fmt(c.runtimeCompileMs, 1), c.hostLookupNs === undefined ? '—' : fmt(c.hostLookupNs, 0), fmtMB(c.retainedHeapBytes)],
  );
  const liveRows = started
    ? live.map((x) => (x.error ? [fmt(x.serviceEntries), `error: ${truncate(x.error, 60)}`, '', '', '', '', ''] : [fmt(x.serviceEntries), fmt(x.readyMs), fmtMB(x.rssIdleBytes), x.serviceEntries > 1 ? fmt(perEntryKB(x), 2) : '—', fmtMB(x.rssLoadBytes), x.httpError ? truncate(x.httpError, 50) : fmt(x.rps), fmtRatio(ratio(x.rps, first?.rps))]))
    : [['—', `tollgate: not runnable (${truncate(tg?.reason ?? 'not started', 80)})`, '', '', '', '', '']];
  if (started) liveRows.push(['bare Node (node-http, idle)', '—', fmtMB(floorIdleBytes), '—', '—', '—', '—']);
  const checks = [check('Memory per extra ServiceEntry (live RSS slope)', '<= 2 KB', slopeKB, slopeKB <= 2, slopeKB === undefined ? undefined : `${slopeKB.toFixed(2)} KB`)];
  const markdown = `### 6. Scale: registry size

Control plane, in-process (\`bench/lib/compile-bench.mjs\`, one fresh process per size, median of reps): each of N ServiceEntries has a VirtualService host on the bench Gateway. Times in ms; snapshot = JSON size; host lookup = one \`selectVirtualHost\` on the compiled route table; heap = retained after GC (snapshot + compiled form).

${table(['ServiceEntries', 'parse', 'decode', 'model', 'snapshot', 'total', 'snapshot KiB', 'runtime compile', 'host lookup ns', 'heap MB'], compileRows)}

Heap slope: ${heapSlopeKB === undefined ? '—' : `${heapSlopeKB.toFixed(2)} KB per extra ServiceEntry`} (in-process).

Live Tollgate at N ServiceEntries (start to ready, RSS idle and under \`wrk\` to the last host, requests/s against N=1). KB per entry = (RSS idle at N - RSS idle at N=1) / (N - 1). The last row is a bare node:http proxy started the same way: the floor any Node process starts from.

${table(['ServiceEntries', 'ready ms', 'RSS idle MB', 'KB per extra entry', 'RSS load MB', 'req/s (last host)', 'vs N=1'], liveRows)}

RSS slope: ${slopeKB === undefined ? '—' : `${slopeKB.toFixed(2)} KB per extra ServiceEntry`}; Tollgate at N=1 holds ${first && floorIdleBytes ? `${fmtMB(first.rssIdleBytes - floorIdleBytes)} MB above bare Node` : '—'}.`;
  return { json: { compile, live, floorIdleBytes, rssSlopeKBPerEntry: slopeKB, rssKBPerEntry: Object.fromEntries(live.filter((x) => x.serviceEntries > 1).map((x) => [x.serviceEntries, perEntryKB(x)])), heapSlopeKBPerEntry: heapSlopeKB }, markdown, checks };
}

// ------------------------------------------------------------------ 7. workers

/**
 * Where each process of a Tollgate with `workers` workers runs. Pinned (the default): one worker
 * alone on the proxy core; with more, worker i on the i-th allowed CPU after the load core when
 * there are enough (each worker has a core of its own and the load has one), else spread over all
 * allowed CPUs, the load core included. The primary is left where the scheduler puts it.
 */
function workerCores(pin, workers) {
  if (!pin.applied) return { cores: [], own: false };
  if (workers === 1) return { cores: [pin.proxy], own: true };
  const rest = pin.allowed.filter((c) => c !== pin.load);
  if (rest.length >= workers) return { cores: rest.slice(0, workers), own: true };
  return { cores: Array.from({ length: workers }, (_, i) => pin.allowed[i % pin.allowed.length]), own: false };
}

/**
 * Workers: one process, then two sharing the listeners two ways: each worker accepting on the
 * shared socket (Tollgate's default, cluster SCHED_NONE) and Node's round-robin, where the primary
 * accepts every connection and passes it on (NODE_CLUSTER_SCHED_POLICY=rr). Keep-alive requests/s
 * and new connections/s (one request each), with CPU per request of the whole process tree and of
 * the primary alone.
 *
 * Scaling is judged on CPU per request: N workers reach N x one worker's requests/s exactly when
 * each has a core and spends what one worker spends per request, so "efficiency" (one worker's
 * CPU per request / N workers') x N is the N-core throughput in units of one worker's. Requests/s
 * themselves show it only when the workers and the load each have cores of their own; on a small
 * machine the second worker shares a core with wrk and the upstream, and the table says so.
 */
export async function workers(ctx) {
  const { cfg } = ctx;
  const tg = ctx.targets.tollgate;
  let reason;
  if (!tg?.ok) reason = `tollgate: not runnable (${tg?.reason ?? 'not started'})`;
  else if (!tollgateSupports('--workers')) reason = 'skipped: no --workers flag in `tollgate run --help`';
  if (reason) return { json: { skipped: reason }, markdown: `### 7. Workers: 1 vs 2 processes\n\n${reason}`, checks: [] };
  const variants = [
    { name: 'workers=1', workers: 1 },
    { name: 'workers=2', workers: 2 },
    { name: 'workers=2 rr', workers: 2, env: { NODE_CLUSTER_SCHED_POLICY: 'rr' } },
  ];
  const insts = [];
  const json = {};
  const cases = [
    { id: 'keep-alive', headers: [HOST_HDR] },
    { id: 'new connections', headers: [HOST_HDR, 'Connection: close'] },
  ];
  const placement = workerCores(ctx.pin, 2);
  let rows = [];
  const checks = [];
  try {
    for (const v of variants) {
      const [httpPort, adminPort] = await freePorts(2);
      const l = await launchTollgate({ dir: ctx.dir, name: `tollgate-${v.name.replace(/[ =]/g, '-')}`, configYaml: benchIstioYaml({ httpPort, upstreamPort: ctx.ports.upstream }), httpPort, adminPort, cpu: undefined, workers: v.workers, ...(v.env ? { env: v.env } : {}) });
      if (!l.ok) {
        json[v.name] = { error: l.reason };
        continue;
      }
      await sleep(500);
      const tree = processTree(l.pid);
      // The workers are the primary's children (one worker: the process itself); pin each to its
      // core, with all its threads (taskset -a).
      const { cores } = workerCores(ctx.pin, v.workers);
      const workerPids = tree.length === 1 ? tree : tree.filter((p) => p !== l.pid);
      const pinned = cores.length > 0 && workerPids.every((p, i) => pinProcess(p, cores[i % cores.length]));
      insts.push({ ...l, name: v.name, ok: true, workers: v.workers, procs: tree.length, pinned: pinned ? cores : undefined });
    }
    // Warmed up together (the JIT needs the requests, not a quiet machine).
    await Promise.all(insts.map((t) => wrk({ port: t.port, path: '/1k', headers: [HOST_HDR], seconds: cfg.nodeWarmSec, cpu: ctx.pin.load })));
    const rounds = [];
    for (const c of cases) {
      rounds.push(
        ...(await alternate(ctx, 'workers', c.id, insts, cfg.rounds, async (t) => {
          const pids = processTree(t.pid);
          const cpu0 = cpuSeconds(pids);
          const primary0 = cpuSeconds([t.pid]);
          const r = await wrk({ port: t.port, path: '/1k', headers: c.headers, seconds: cfg.thrSec, cpu: ctx.pin.load });
          if (r.requests) {
            r.cpuUsPerRequest = ((cpuSeconds(pids) - cpu0) * 1e6) / r.requests;
            r.primaryCpuUsPerRequest = t.procs > 1 ? ((cpuSeconds([t.pid]) - primary0) * 1e6) / r.requests : undefined;
          }
          r.rss = rssBytes(pids);
          return r;
        })),
      );
    }
    json.rounds = rounds;
    json.placement = Object.fromEntries(insts.map((t) => [t.name, t.pinned ?? 'unpinned']));
    const s = (caseId, metric) => Object.fromEntries(insts.map((t) => [t.name, summarize(rounds.filter((r) => r.case === caseId && r.target === t.name), metric)]));
    rows = [];
    for (const c of cases) {
      const rps = s(c.id, 'rps');
      const cpu = s(c.id, 'cpuUsPerRequest');
      const primary = s(c.id, 'primaryCpuUsPerRequest');
      json[c.id] = { rps, cpuUsPerRequest: cpu, primaryCpuUsPerRequest: primary };
      const one = cpu['workers=1']?.median;
      const oneRps = rps['workers=1']?.median;
      const eff = (v) => ratio(one, cpu[v.name]?.median);
      rows.push([`${c.id}: req/s`, ...variants.map((v) => cell(rps[v.name]))]);
      rows.push([`${c.id}: req/s vs N x one worker`, ...variants.map((v) => fmtRatio(ratio(rps[v.name]?.median, oneRps === undefined ? undefined : oneRps * v.workers)))]);
      rows.push([`${c.id}: CPU µs per request (all processes)`, ...variants.map((v) => cell(cpu[v.name], (x) => x.toFixed(1)))]);
      rows.push([`${c.id}: of which the primary`, ...variants.map((v) => (v.workers > 1 ? cell(primary[v.name], (x) => x.toFixed(1)) : '—'))]);
      // Scaling efficiency per core: what one worker spends per request over what N workers spend.
      rows.push([`${c.id}: CPU efficiency vs 1 worker`, ...variants.map((v) => fmtRatio(eff(v)))]);
      rows.push([`${c.id}: N-core throughput, in one worker's (N x efficiency)`, ...variants.map((v) => { const e = eff(v); return e === undefined ? '—' : `${(v.workers * e).toFixed(2)}x`; })]);
      const e2 = eff(variants[1]);
      checks.push(check(`Workers (shared socket), ${c.id}: 2 workers vs 2 x one worker (CPU per request)`, '>= 0.85', e2, e2 >= 0.85, e2 === undefined ? undefined : `${e2.toFixed(2)} N x: two workers with a core each would reach ${(2 * e2).toFixed(2)}x one worker's requests/s (round-robin: ${fmtRatio(eff(variants[2]))} efficiency)`));
    }
    rows.push(['processes', ...variants.map((v) => String(insts.find((t) => t.name === v.name)?.procs ?? json[v.name]?.error ?? '—'))]);
    rows.push(['workers pinned to CPUs', ...variants.map((v) => { const t = insts.find((x) => x.name === v.name); return t?.pinned ? t.pinned.join(', ') : 'no'; })]);
  } finally {
    for (const t of insts) await stopProcess(t.rec);
  }
  const where = !ctx.pin.applied
    ? `unpinned (${ctx.pin.reason})`
    : `each worker pinned to a CPU of its own (\`taskset -a -p\`), wrk and the upstream on CPU ${ctx.pin.load}${placement.own ? '' : ` — this machine has ${ctx.pin.allowed.length} CPUs, so one of the two workers shares the load's CPU and requests/s cannot show 2 x here: the CPU rows can`}`;
  const markdown = `### 7. Workers: 1 vs 2 processes

Tollgate only, ${where}; \`wrk -c32 -d${cfg.thrSec}s\` keep-alive and with \`Connection: close\` (one request per connection), median of ${cfg.rounds} rounds. workers=2 = each worker accepts on the shared listening socket (the default); rr = Node's round-robin, the primary accepts every connection and hands it to a worker (\`NODE_CLUSTER_SCHED_POLICY=rr\`). CPU = utime+stime per request of the primary and its workers (/proc/<pid>/stat); efficiency = one worker's CPU per request / this variant's (1.00x = the second worker costs nothing extra per request); N x efficiency = the requests/s N workers reach, in units of one worker's, when each has a core.

${table(['metric', ...variants.map((v) => v.name)], rows)}`;
  return { json, markdown, checks };
}
