// `bench/compare.mjs --l4`: the L4 cases of the bench (TCP and TLS passthrough new connections/s,
// iperf3, TLS 64 KiB) for several Tollgate builds in the same run, alternating with the pipe()
// relay and HAProxy, so a change on the tunnel path is judged against its parent on the same
// machine state. Rate and the proxy's CPU per connection (or per GB) from /proc/<pid>/stat.
import { iperf3, pacedConnections } from './load.mjs';
import { BENCH_HOST, startHaproxy, startIperfServer, startPipeRelay, startUpstream, TLS_SNI, verifyHttp } from './peers.mjs';
import { cell, fmtRatio, ratio, table } from './report.mjs';
import { l4Cases, measureL4, summarize } from './scenarios.mjs';
import { benchIstioYaml, launchTollgate } from './tollgate.mjs';
import { freePorts } from './util.mjs';

export const L4_CASE_IDS = ['tcp-conn', 'tls-conn', 'tcp-iperf3', 'tls-64k', 'tcp-paced', 'tls-paced'];

/**
 * New connections at a fixed rate (paced-connections.mjs) instead of wrk's closed loop: every
 * target handles the same connections per second, so CPU per connection does not move with the
 * rate each one happens to reach on a loaded machine.
 */
function pacedCases(rate) {
  const paced = (t, cfg, tlsHost) => pacedConnections({ port: t.port, path: '/1k', host: BENCH_HOST, rate, seconds: cfg.connSec, cpu: t.cpuLoad, tlsHost }).then((r) => ({ ...r, rps: r.achievedRate, requests: r.connections }));
  return [
    { id: 'tcp-paced', label: `TCP new connections at ${rate}/s`, port: 'httpTcpPort', per: 'conn', run: (t, cfg) => paced(t, cfg) },
    { id: 'tls-paced', label: `TLS passthrough new connections at ${rate}/s`, port: 'tlsPort', per: 'conn', run: (t, cfg) => paced(t, cfg, TLS_SNI) },
  ];
}

/**
 * Starts the peers and one Tollgate per build, measures `caseIds` in `rounds` alternating rounds
 * and returns the Markdown table and the raw results.
 */
export async function compareL4({ builds, dir, pin, caseIds, seconds, rounds, warm, rate, log }) {
  const cfg = { l4Sec: seconds, connSec: seconds };
  const cases = [...l4Cases(cfg), ...pacedCases(rate).map((c) => ({ ...c, run: (t) => c.run(t, cfg) }))].filter((c) => caseIds.includes(c.id));
  const needIperf = caseIds.includes('tcp-iperf3');
  const [upstream, upstreamTls, iperf, hap, hapIperf, hapHttp, hapTls, pipeIperf, pipeHttp, pipeTls, ...tgPorts] = await freePorts(10 + builds.length * 5);
  await startUpstream(dir, upstream, pin.load, upstreamTls);
  if (needIperf) await startIperfServer(dir, { port: iperf, cpu: pin.load });
  const targets = [];
  const h = await startHaproxy(dir, { port: hap, upstreamPort: upstream, accessLog: false, cpu: pin.proxy, tcp: { iperfPort: hapIperf, iperfTarget: iperf, httpPort: hapHttp, tlsPort: hapTls, tlsTarget: upstreamTls } });
  targets.push({ name: 'haproxy', kind: 'peer', pid: h.pid, iperfPort: hapIperf, httpTcpPort: hapHttp, tlsPort: hapTls });
  const p = await startPipeRelay(dir, { pairs: [[pipeIperf, iperf], [pipeHttp, upstream], [pipeTls, upstreamTls]], cpu: pin.proxy });
  targets.push({ name: 'pipe-relay', kind: 'node', pid: p.pid, iperfPort: pipeIperf, httpTcpPort: pipeHttp, tlsPort: pipeTls });
  for (const [i, b] of builds.entries()) {
    const [httpPort, adminPort, iperfPort, tcpPort, tlsPort] = tgPorts.slice(5 * i, 5 * i + 5);
    const name = `tollgate@${b.ref === '.' ? `${b.commit} (this build)` : b.commit}`;
    const configYaml = benchIstioYaml({ httpPort, upstreamPort: upstream, tcp: { iperfPort, iperfTarget: iperf, httpPort: tcpPort, tlsPort, tlsTarget: upstreamTls } });
    const tg = await launchTollgate({ main: b.main, dir, name: `tollgate-${i}`, configYaml, httpPort, adminPort, cpu: pin.proxy, accessLog: false, verify: false });
    if (!tg.ok) throw new Error(`${name}: ${tg.reason}`);
    targets.push({ name, kind: 'tollgate', pid: tg.pid, iperfPort, httpTcpPort: tcpPort, tlsPort });
  }
  for (const t of targets) {
    const v = await verifyHttp(t.httpTcpPort, '/1k');
    if (!v.ok) throw new Error(`${t.name}: GET /1k through the TCP listener: ${v.reason}`);
  }
  if (warm > 0) {
    const warmCase = l4Cases({ l4Sec: warm, connSec: warm }).filter((c) => c.id === 'tcp-conn' || c.id === 'tls-conn');
    for (const t of targets.filter((x) => x.kind !== 'peer')) {
      log(`warm-up ${t.name} ${warm}s per case`);
      for (const c of warmCase) await c.run({ ...t, port: t[c.port], cpuLoad: pin.load });
      if (needIperf) await iperf3({ port: t.iperfPort, seconds: 1, cpu: pin.load });
    }
  }
  const results = [];
  for (let r = 0; r < rounds; r++) {
    for (const c of cases) {
      for (const t of targets) {
        const res = await measureL4(c, { ...t, port: t[c.port], cpuLoad: pin.load }, cfg);
        results.push({ round: r, case: c.id, target: t.name, ...res });
      }
    }
    log(`round ${r + 1}/${rounds} done`);
  }
  const rows = [];
  const summary = {};
  for (const c of cases) {
    const rateKey = c.per === 'GB' ? 'gbps' : 'cps';
    const cpuKey = c.per === 'GB' ? 'cpuSecPerGB' : 'cpuUsPerConn';
    const of = (n, m) => summarize(results.filter((x) => x.case === c.id && x.target === n), m);
    const s = (summary[c.id] = Object.fromEntries(targets.map((t) => [t.name, { rate: of(t.name, rateKey), cpu: of(t.name, cpuKey) }])));
    const f = c.per === 'GB' ? (v) => v.toFixed(2) : (v) => v.toFixed(0);
    for (const t of targets) {
      rows.push([
        c.label,
        t.name,
        cell(s[t.name].rate, f),
        cell(s[t.name].cpu, f),
        fmtRatio(ratio(s[t.name].rate.median, s['pipe-relay'].rate.median)),
        fmtRatio(ratio(s['pipe-relay'].cpu.median, s[t.name].cpu.median)),
        fmtRatio(ratio(s[t.name].rate.median, s.haproxy.rate.median)),
      ]);
    }
  }
  const md = `L4 cases as in \`bench/run.mjs --scenario l4\` (${seconds}s each), median of ${rounds} alternating rounds; CPU = the proxy's utime+stime per connection (µs) or per GB (s); "CPU vs pipe()" = the relay's CPU / the target's (higher = cheaper).

${table(['case', 'target', 'rate', 'CPU per conn (µs) / GB (s)', 'rate vs pipe()', 'CPU vs pipe()', 'rate vs HAProxy'], rows)}`;
  return { md, results, summary };
}
