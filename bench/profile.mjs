#!/usr/bin/env node
// CPU profile of Tollgate under load: starts the bench upstream and Tollgate under
// `node --cpu-prof` (pinned like bench/run.mjs), warms it up, loads it with wrk (or the CONNECT
// client), stops it with SIGTERM so Node writes the .cpuprofile, then prints the top self-time
// functions measured inside the load window only (samples outside it are dropped).
//
//   node bench/profile.mjs [--face http|tcp|tls|iperf|connect] [--seconds 10] [--warm 5] [--path /1k]
//                          [--top 20] [--out DIR] [--node-http | --node-floor | --pipe-relay]
//                          [--new-connections] [--rate N] [--main dist/src/cli/bin.js]
//
// --face tcp is HTTP keep-alive through a TCP listener (--new-connections: one request per
// connection); --face tls is HTTPS through a TLS passthrough listener (SNI localhost, to the
// upstream's TLS port; --path /64k for bulk, --new-connections for a handshake per request);
// --face iperf is one iperf3 stream through it.
// --rate N (http face): the measured load is the paced client at N requests per second (one
// request at a time, evenly spaced, as in the latency scenario) instead of wrk: at a low rate each
// request is a wake-up of its own, and what a wake-up costs shows beside the request's own work.
// --node-http / --node-floor profile that reference peer instead (works without Tollgate);
// --pipe-relay profiles the bare socket.pipe() relay on the L4 faces (tcp, tls, iperf).
// --main runs another entry point than the bundle `npm run build` makes: tsc's dist/src/cli/bin.js
// names each function's own module in the tables (the bundle names its chunks).
// The .cpuprofile is kept (path printed); open it in Chrome DevTools > Performance for a flame chart.
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { connectLoad, iperf3, pacedConstant, wrk } from './lib/load.mjs';
import { BENCH_HOST, startIperfServer, startUpstream, TLS_SNI, verifyHttp } from './lib/peers.mjs';
import { benchIstioYaml, CONNECT_HOST, launchTollgate, REPO } from './lib/tollgate.mjs';
import { cleanupAll, cleanupAllSync, freePorts, pinningPlan, sleep, startProcess, stopProcess, tail, waitForPort } from './lib/util.mjs';

const { values: o } = parseArgs({
  options: {
    face: { type: 'string', default: 'http' },
    seconds: { type: 'string', default: '10' },
    warm: { type: 'string', default: '5' },
    path: { type: 'string', default: '/1k' },
    top: { type: 'string', default: '20' },
    out: { type: 'string' },
    'node-http': { type: 'boolean' },
    'node-floor': { type: 'boolean' },
    'pipe-relay': { type: 'boolean' },
    'new-connections': { type: 'boolean' },
    rate: { type: 'string' },
    main: { type: 'string' },
    'no-pin': { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  },
});
if (o.help) {
  const lines = readFileSync(fileURLToPath(import.meta.url), 'utf8').split('\n').slice(1);
  process.stdout.write(lines.slice(0, lines.findIndex((l) => !l.startsWith('//'))).map((l) => l.replace(/^\/\/ ?/, '')).join('\n') + '\n');
  process.exit(0);
}
const seconds = Number(o.seconds);
const warm = Number(o.warm);
const topN = Number(o.top);
const rate = o.rate === undefined ? undefined : Number(o.rate);
if (rate !== undefined && (o.face !== 'http' || !(rate > 0))) throw new Error('--rate: a positive number of requests per second, http face only');
if (!['http', 'tcp', 'tls', 'iperf', 'connect'].includes(o.face)) throw new Error(`--face ${o.face}: http, tcp, tls, iperf or connect`);
const refPeer = o['node-http'] ? 'node-http' : o['node-floor'] ? 'node-floor' : o['pipe-relay'] ? 'pipe-relay' : undefined;
const l4Face = o.face === 'tcp' || o.face === 'tls' || o.face === 'iperf';
if (refPeer === 'pipe-relay' ? !l4Face : refPeer !== undefined && o.face !== 'http') throw new Error(`--${refPeer} profiles ${refPeer === 'pipe-relay' ? 'the tcp, tls and iperf faces' : 'HTTP'} only`);

const dir = mkdtempSync(join(os.tmpdir(), 'tollgate-profile-'));
const outDir = o.out ?? join(REPO, 'bench', 'results', 'profiles');
mkdirSync(outDir, { recursive: true });
const cleanup = () => {
  cleanupAllSync();
  rmSync(dir, { recursive: true, force: true });
};
process.on('exit', cleanup);
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(130));
setTimeout(() => {
  process.stderr.write('profile: timed out\n');
  process.exit(1);
}, (seconds + warm + 60) * 1000).unref();

const pin = pinningPlan(o['no-pin']);
const log = (m) => process.stderr.write(`profile: ${m}\n`);
const [upstream, httpPort, adminPort, tcpPort, iperfPort, iperfServer, connectPort, upstreamTls, tlsPort] = await freePorts(9);
await startUpstream(dir, upstream, pin.load, upstreamTls);
if (o.face === 'iperf') await startIperfServer(dir, { port: iperfServer, cpu: pin.load });
const profDir = join(dir, 'prof');
mkdirSync(profDir);
const nodeArgs = ['--cpu-prof', `--cpu-prof-dir=${profDir}`, '--cpu-prof-interval=200'];

let proc;
let port = httpPort;
if (refPeer === 'pipe-relay') {
  // The same listener roles as Tollgate's bench config: the port for the face relays to its target.
  const target = o.face === 'iperf' ? iperfServer : o.face === 'tls' ? upstreamTls : upstream;
  port = o.face === 'iperf' ? iperfPort : o.face === 'tls' ? tlsPort : tcpPort;
  const script = fileURLToPath(new URL('./lib/pipe-relay.mjs', import.meta.url));
  proc = startProcess(refPeer, process.execPath, [...nodeArgs, script, `${port}:${target}`], { cpu: pin.proxy, stderrFile: join(dir, `${refPeer}.stderr`) });
  const r = await waitForPort(port, { rec: proc });
  if (!r.ok) throw new Error(`${refPeer}: ${r.reason} ${tail(join(dir, `${refPeer}.stderr`))}`);
} else if (refPeer) {
  const script = fileURLToPath(new URL(refPeer === 'node-http' ? './lib/node-proxy.mjs' : './lib/node-floor.mjs', import.meta.url));
  proc = startProcess(refPeer, process.execPath, [...nodeArgs, script, String(httpPort), String(upstream), BENCH_HOST], { cpu: pin.proxy, stderrFile: join(dir, `${refPeer}.stderr`) });
  const r = await waitForPort(httpPort, { rec: proc });
  if (!r.ok) throw new Error(`${refPeer}: ${r.reason} ${tail(join(dir, `${refPeer}.stderr`))}`);
} else {
  const l = await launchTollgate({
    dir,
    name: 'tollgate',
    configYaml: benchIstioYaml({ httpPort, upstreamPort: upstream, tcp: { iperfPort, iperfTarget: iperfServer, httpPort: tcpPort, tlsPort, tlsTarget: upstreamTls }, connect: true }),
    httpPort,
    adminPort,
    connect: { port: connectPort, targetPort: upstream },
    cpu: pin.proxy,
    accessLog: false,
    nodeArgs,
    verify: false,
    ...(o.main ? { main: resolve(o.main) } : {}),
  });
  if (!l.ok) {
    log(`tollgate: not runnable (${l.reason})`);
    process.exit(2);
  }
  proc = l.rec;
  log(`tollgate: ${l.command}`);
  if (o.face === 'tcp') port = tcpPort;
  if (o.face === 'iperf') port = iperfPort;
  if (o.face === 'tls') port = tlsPort;
  if (o.face === 'connect') {
    if (!l.connectPort) {
      log('tollgate: no CONNECT listener (--explicit-proxy)');
      process.exit(2);
    }
    port = l.connectPort;
  }
}
if (o.face !== 'connect' && o.face !== 'iperf' && o.face !== 'tls') {
  const v = await verifyHttp(port, o.path);
  if (!v.ok) {
    log(`${o.face} face: GET ${o.path} Host ${BENCH_HOST}: ${v.reason}`);
    process.exit(2);
  }
}

const load = (secs) =>
  o.face === 'iperf'
    ? iperf3({ port, seconds: secs, cpu: pin.load })
    : o.face === 'connect'
    ? connectLoad({ proxyPort: port, targetHost: CONNECT_HOST, targetPort: upstream, path: o.path, host: BENCH_HOST, conns: 32, seconds: secs, cpu: pin.load })
    : o.face === 'tls'
    ? wrk({ port, path: o.path, headers: o['new-connections'] ? ['Connection: close'] : [], conns: o['new-connections'] ? 32 : 8, seconds: secs, cpu: pin.load, tlsHost: TLS_SNI })
    : wrk({ port, path: o.path, headers: [`Host: ${BENCH_HOST}`, ...(o['new-connections'] ? ['Connection: close'] : [])], conns: 32, seconds: secs, cpu: pin.load });

if (warm > 0) {
  log(`warm-up ${warm}s`);
  await load(warm);
}
log(`load ${seconds}s (${o.face}, ${o.path}${rate ? `, ${rate} req/s paced` : ''})`);
const w0 = performance.now();
const res = rate ? await pacedConstant({ port, path: o.path, host: BENCH_HOST, rps: rate, conns: 10, seconds, warmup: 0, cpu: pin.load }) : await load(seconds);
const w1 = performance.now();
log(`load: ${res.achievedRps ? `${Math.round(res.achievedRps)} req/s` : ''}${res.rps ? `${Math.round(res.rps)} req/s` : ''}${res.gbps ? `${res.gbps.toFixed(2)} Gbit/s` : ''} ${res.error ?? ''}`);
await sleep(100);
const exitAt = await new Promise((resolve) => {
  const t0 = performance.now();
  proc.child.once('exit', () => resolve(performance.now()));
  try {
    process.kill(proc.child.pid, 'SIGTERM');
  } catch {
    resolve(t0);
  }
  setTimeout(() => resolve(undefined), 8000);
});
if (exitAt === undefined) {
  await stopProcess(proc, 0);
  log('the process did not exit within 8 s of SIGTERM, so Node wrote no profile');
  process.exit(1);
}
await cleanupAll();
const files = existsSync(profDir) ? readdirSync(profDir).filter((f) => f.endsWith('.cpuprofile')) : [];
if (files.length === 0) {
  log('no .cpuprofile written (the process must exit normally on SIGTERM for --cpu-prof to write it)');
  process.exit(1);
}
const stamp = new Date().toISOString().replace(/:/g, '-').replace(/\.\d+Z$/, 'Z');
const src = join(profDir, files[0]);
const kept = join(outDir, `${stamp}-${refPeer ?? `tollgate-${o.face}`}.cpuprofile`);
const profile = JSON.parse(readFileSync(src, 'utf8'));
copyFileSync(src, kept);

// ---------------------------------------------------------------- analysis

// Sample times: startTime + cumulative timeDeltas (µs). The load window is located from the end:
// the profile ends when the process exits, which we observed at `exitAt` on our clock.
const { nodes, samples, timeDeltas, startTime, endTime } = profile;
const winEnd = endTime - (exitAt - w1) * 1000;
const winStart = endTime - (exitAt - w0) * 1000;
const byId = new Map(nodes.map((n) => [n.id, n]));
const self = new Map();
let t = startTime;
let inWindow = 0;
for (let i = 0; i < samples.length; i++) {
  const dt = timeDeltas[i] ?? 0;
  t += dt;
  if (t < winStart || t > winEnd) continue;
  inWindow += dt;
  self.set(samples[i], (self.get(samples[i]) ?? 0) + dt);
}
const fnKey = (n) => {
  const cf = n.callFrame;
  const url = cf.url ? cf.url.replace(`file://${REPO}/`, '').replace(/^file:\/\//, '') : '';
  return `${cf.functionName || '(anonymous)'}\t${url ? `${url}:${cf.lineNumber + 1}` : ''}`;
};
const byFn = new Map();
const byFile = new Map();
for (const [id, us] of self) {
  const n = byId.get(id);
  if (!n) continue;
  const k = fnKey(n);
  byFn.set(k, (byFn.get(k) ?? 0) + us);
  const cf = n.callFrame;
  const file = cf.url ? (cf.url.includes('/dist/src/') ? cf.url.replace(/.*\/dist\//, 'dist/') : cf.url.startsWith('node:') ? cf.url : cf.url.replace(/^file:\/\//, '')) : cf.functionName.startsWith('(') ? cf.functionName : '(native)';
  byFile.set(file, (byFile.get(file) ?? 0) + us);
}
const total = inWindow || 1;
const pct = (us) => `${((us / total) * 100).toFixed(1).padStart(5)}%`;
const ms = (us) => `${(us / 1000).toFixed(1).padStart(8)} ms`;
const lines = [];
lines.push(`\nCPU profile of ${refPeer ? `${refPeer} (reference)` : `tollgate (${o.face})`} during ${seconds}s of load: ${(total / 1000).toFixed(0)} ms sampled in the window${res.rps ? `, ${Math.round(res.rps)} req/s` : ''}`);
lines.push(`profile: ${kept.replace(`${REPO}/`, '')}\n`);
lines.push(`top ${topN} functions by self time`);
lines.push(`${'self'.padStart(11)} ${'share'.padStart(6)}  function  (file:line)`);
for (const [k, us] of [...byFn].sort((a, b) => b[1] - a[1]).slice(0, topN)) {
  const [fn, where] = k.split('\t');
  lines.push(`${ms(us)} ${pct(us)}  ${fn}${where ? `  (${where})` : ''}`);
}
lines.push(`\nself time by file`);
for (const [f, us] of [...byFile].sort((a, b) => b[1] - a[1]).slice(0, 12)) lines.push(`${ms(us)} ${pct(us)}  ${f}`);

// Busy time by kind, per request: what a comparison with the node-floor needs (the floor pays the
// socket syscalls and Node's stream machinery too; what Tollgate adds is mostly its own code).
const KINDS = [
  ['socket writes (syscalls)', (f, url) => !url && /^write(Buffer|Latin1String|Utf8String|v)|^writev/.test(f)],
  ['garbage collector', (f) => f === '(garbage collector)'],
  ['V8 / native other', (f, url) => !url && f !== '(idle)'],
  ['Node streams, net, events, buffers', (f, url) => url.startsWith('node:')],
  ['Tollgate (dist/src, dist/bundle)', (f, url) => url.includes('/dist/src/') || url.includes('/dist/bundle/')],
  ['other JS', (f, url) => url !== ''],
];
const byKind = new Map(KINDS.map(([k]) => [k, 0]));
for (const [id, us] of self) {
  const n = byId.get(id);
  if (!n || n.callFrame.functionName === '(idle)') continue;
  const kind = KINDS.find(([, test]) => test(n.callFrame.functionName, n.callFrame.url));
  if (kind) byKind.set(kind[0], byKind.get(kind[0]) + us);
}
const reqs = res.served ?? res.requests ?? 0;
const busy = [...byKind.values()].reduce((a, b) => a + b, 0);
lines.push(`\nbusy time by kind${reqs ? ', µs per request (sampled wall time while on CPU: inflated by a shared machine, compare shares)' : ''}`);
for (const [k, us] of byKind) lines.push(`${ms(us)} ${pct(us)}  ${reqs ? `${(us / reqs).toFixed(1).padStart(7)} µs/req  ` : ''}${k}`);
lines.push(`${ms(busy)} ${pct(busy)}  ${reqs ? `${(busy / reqs).toFixed(1).padStart(7)} µs/req  ` : ''}busy in total`);
process.stdout.write(`${lines.join('\n')}\n`);
