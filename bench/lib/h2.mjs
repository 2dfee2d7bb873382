// HTTP/2 over TLS: h2load through Tollgate (a Gateway HTTPS server whose certificate comes from a
// credentialName Secret, ALPN h2) and through nginx (`listen ... ssl http2`), both proxying to the
// same upstream over HTTP/1.1 keep-alive, one worker/process each on the proxy core. The scenario
// starts and stops its own two proxies; rounds alternate them. Besides requests/s it reports the
// proxy's CPU time per request (utime+stime from /proc), which stays meaningful on a loaded machine.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BENCH_HOST, startNginxH2Proxy } from './peers.mjs';
import { fmt, fmtRatio, ratio, table, truncate } from './report.mjs';
import { launchTollgate, NAMESPACE } from './tollgate.mjs';
import { cpuSeconds, freePorts, median, processTree, runCommand, spread, stopProcess } from './util.mjs';

/** The bench upstream behind a Gateway HTTPS server on `port` (bound to 127.0.0.1), certificate from Secret bench-h2-cred. */
function h2IstioYaml({ port, upstreamPort, certPem, keyPem }) {
  const b64 = (s) => Buffer.from(s).toString('base64');
  return `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: up, namespace: ${NAMESPACE}}
spec:
  hosts: [${BENCH_HOST}]
  location: MESH_EXTERNAL
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: STATIC
  endpoints: [{address: 127.0.0.1, ports: {http: ${upstreamPort}}}]
---
apiVersion: v1
kind: Secret
metadata: {name: bench-h2-cred, namespace: ${NAMESPACE}}
type: kubernetes.io/tls
data: {tls.crt: ${b64(certPem)}, tls.key: ${b64(keyPem)}}
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: bench-h2, namespace: ${NAMESPACE}}
spec:
  selector: {app: bench}
  servers:
  - port: {number: ${port}, name: https, protocol: HTTPS}
    bind: 127.0.0.1
    hosts: [${BENCH_HOST}]
    tls: {mode: SIMPLE, credentialName: bench-h2-cred}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: up, namespace: ${NAMESPACE}}
spec:
  hosts: [${BENCH_HOST}]
  gateways: [bench-h2]
  http: [{route: [{destination: {host: ${BENCH_HOST}, port: {number: 80}}}]}]
`;
}

/** h2load over TLS (ALPN h2): `conns` connections x `streams` concurrent streams, for `seconds` or `requests`. */
async function h2loadTls({ port, path, conns, streams, seconds, requests, cpu }) {
  const bound = requests !== undefined ? [`-n${requests}`] : [`-D${Math.max(1, Math.round(seconds))}`];
  const args = ['-t1', `-c${conns}`, `-m${streams}`, ...bound, `--connect-to=127.0.0.1:${port}`, `https://${BENCH_HOST}${path}`];
  const r = await runCommand('h2load', args, { cpu, timeoutMs: ((seconds ?? 10) + 15) * 1000 });
  const out = r.stdout;
  const fin = /finished in ([\d.]+)(m?s), ([\d.]+) req\/s/.exec(out);
  const req = /requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/.exec(out);
  const res = { rps: fin ? Number(fin[3]) : undefined, succeeded: req ? Number(req[4]) : undefined, failed: req ? Number(req[5]) + Number(req[6]) + Number(req[7]) : undefined, protocol: /Application protocol: (\S+)/.exec(out)?.[1] };
  if (r.code !== 0 || res.rps === undefined || res.succeeded === undefined) res.error = `h2load exited ${r.code}${r.timedOut ? ' (timeout)' : ''}: ${(r.stderr || r.stdout).trim().split('\n').slice(-2).join(' | ')}`;
  else if (res.protocol !== 'h2') res.error = `negotiated ${res.protocol ?? 'nothing'}, not h2`;
  else if (res.failed > 0) res.error = `${res.failed} of ${res.succeeded + res.failed} requests failed`;
  return res;
}

/** One measured run with the proxy's CPU time per request (its whole process tree). */
async function measure(t, c, seconds, cpu) {
  const pids = processTree(t.pid);
  const cpu0 = cpuSeconds(pids);
  const r = await h2loadTls({ port: t.port, path: c.path, conns: c.conns, streams: c.streams, seconds, cpu });
  const used = cpuSeconds(pids) - cpu0;
  if (!r.error && r.succeeded > 0) r.cpuUsPerRequest = (used / r.succeeded) * 1e6;
  return r;
}

async function startTargets(ctx) {
  const { dir } = ctx;
  const cert = join(dir, 'h2-cert.pem');
  const key = join(dir, 'h2-key.pem');
  const made = await runCommand('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', `/CN=${BENCH_HOST}`, '-addext', `subjectAltName=DNS:${BENCH_HOST}`]);
  if (made.code !== 0) throw new Error(`openssl req: ${made.stderr.trim()}`);
  const [ngxPort, tgPort, tgAdmin] = await freePorts(3);
  const targets = [];
  try {
    const n = await startNginxH2Proxy(dir, { port: ngxPort, upstreamPort: ctx.ports.upstream, cert, key, cpu: ctx.pin.proxy });
    targets.push({ name: 'nginx', ok: true, kind: 'peer', pid: n.pid, port: ngxPort, rec: n.rec });
  } catch (err) {
    targets.push({ name: 'nginx', ok: false, reason: err.message });
  }
  if (ctx.targets.tollgate?.ok || ctx.targets.tollgate?.pid) {
    const yaml = h2IstioYaml({ port: tgPort, upstreamPort: ctx.ports.upstream, certPem: readFileSync(cert, 'utf8'), keyPem: readFileSync(key, 'utf8') });
    const tg = await launchTollgate({ dir, name: 'tollgate-h2', configYaml: yaml, httpPort: tgPort, adminPort: tgAdmin, cpu: ctx.pin.proxy, accessLog: false, verify: false });
    targets.push(tg.ok ? { name: 'tollgate', ok: true, kind: 'tollgate', pid: tg.pid, port: tgPort, rec: tg.rec, command: tg.command } : { name: 'tollgate', ok: false, reason: tg.reason });
  } else targets.push({ name: 'tollgate', ok: false, reason: `not runnable (${ctx.targets.tollgate?.reason ?? 'skipped'})` });
  // Both must answer over h2 before they are measured.
  for (const t of targets.filter((x) => x.ok)) {
    const v = await h2loadTls({ port: t.port, path: '/1k', conns: 1, streams: 1, requests: 10, cpu: ctx.pin.load });
    if (v.error) Object.assign(t, { ok: false, reason: `verify: ${v.error}` });
  }
  return targets;
}

export async function http2(ctx) {
  const { cfg } = ctx;
  const targets = await startTargets(ctx);
  const live = targets.filter((t) => t.ok);
  for (const t of targets) if (!t.ok) ctx.problem('http2', t, t.reason);
  const cases = [
    { id: '1k, 4 conns x 50 streams', path: '/1k', conns: 4, streams: 50 },
    { id: '1k, 32 conns x 1 stream', path: '/1k', conns: 32, streams: 1 },
  ];
  const rounds = [];
  try {
    for (const t of live) {
      const secs = t.kind === 'tollgate' ? cfg.nodeWarmSec : cfg.warmSec;
      if (secs > 0) await h2loadTls({ port: t.port, path: '/1k', conns: 4, streams: 50, seconds: secs, cpu: ctx.pin.load });
    }
    for (const c of cases) {
      for (let r = 0; r < cfg.rounds; r++) {
        for (const t of live) {
          const res = await measure(t, c, cfg.thrSec, ctx.pin.load);
          rounds.push({ case: c.id, target: t.name, round: r, ...res });
          if (res.error) ctx.problem('http2', t, `${c.id} round ${r}: ${res.error}`);
        }
      }
    }
  } finally {
    for (const t of targets) if (t.rec) await stopProcess(t.rec);
  }
  const stat = (caseId, name, metric) => {
    const values = rounds.filter((r) => r.case === caseId && r.target === name && !r.error && typeof r[metric] === 'number').map((r) => r[metric]);
    return { median: median(values), spread: spread(values), n: values.length };
  };
  const summary = {};
  const rows = [];
  for (const c of cases) {
    const s = {};
    for (const t of targets) s[t.name] = t.ok ? { rps: stat(c.id, t.name, 'rps'), cpuUsPerRequest: stat(c.id, t.name, 'cpuUsPerRequest') } : { status: truncate(t.reason, 60) };
    const rpsRatio = ratio(s.tollgate?.rps?.median, s.nginx?.rps?.median);
    const cpuRatio = ratio(s.tollgate?.cpuUsPerRequest?.median, s.nginx?.cpuUsPerRequest?.median);
    summary[c.id] = { ...s, ratios: { rps: rpsRatio, cpuPerRequest: cpuRatio } };
    const rpsCell = (n) => (s[n]?.status ? s[n].status : fmt(s[n]?.rps?.median));
    const cpuCell = (n) => (s[n]?.status ? '—' : fmt(s[n]?.cpuUsPerRequest?.median, 1));
    rows.push([c.id, rpsCell('nginx'), rpsCell('tollgate'), fmtRatio(rpsRatio), cpuCell('nginx'), cpuCell('tollgate'), fmtRatio(cpuRatio)]);
  }
  const markdown = `### 3b. HTTP/2 over TLS (ALPN h2) through a Gateway HTTPS server (higher req/s, lower CPU is better)

\`h2load -t1 -c<conns> -m<streams> -D${cfg.thrSec} --connect-to=127.0.0.1:<port> https://${BENCH_HOST}/1k\`; TLS 1.3, certificate from a credentialName Secret (Tollgate) / \`ssl_certificate\` (nginx 1 worker, \`listen ssl http2\`); both speak HTTP/1.1 keep-alive to the same upstream; access logs off. Median of ${cfg.rounds} alternating rounds. CPU = the proxy's user+system time per request (lower is better; meaningful on a loaded machine, unlike req/s).

${table(['case', 'nginx req/s', 'tollgate req/s', 'tg/nginx req/s', 'nginx CPU µs/req', 'tollgate CPU µs/req', 'tg/nginx CPU'], rows)}`;
  return { json: { cases, targets: targets.map(({ rec: _rec, ...t }) => t), rounds, summary }, markdown, checks: [] };
}
