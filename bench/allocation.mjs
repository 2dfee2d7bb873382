#!/usr/bin/env node
// Bytes allocated per request: Tollgate (access log off) under `wrk -t1 -c32` against the bench
// upstream; after a warm-up, V8's sampling heap profiler (4 KiB interval, objects collected by
// the young and the old generation included) runs over one wrk window, and the sampled bytes are
// divided by the requests wrk counted. Prints the total and the allocation sites that take the
// most (function, file:line). Allocation does not depend on the machine's load, but the load
// generator runs beside it: take the bench lock (`flock /work/bench.lock`) on a shared machine.
//
//   node bench/allocation.mjs [--seconds 4] [--warm 4] [--path /1k] [--top 15] [--json]
import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { wrk } from './lib/load.mjs';
import { BENCH_HOST, startUpstream, verifyHttp } from './lib/peers.mjs';
import { benchIstioYaml, launchTollgate, REPO } from './lib/tollgate.mjs';
import { cleanupAllSync, freePorts, pinningPlan, sleep, stopProcess } from './lib/util.mjs';

const { values: o } = parseArgs({
  options: {
    seconds: { type: 'string', default: '4' },
    warm: { type: 'string', default: '4' },
    path: { type: 'string', default: '/1k' },
    top: { type: 'string', default: '15' },
    json: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  },
});
if (o.help) {
  process.stdout.write(readFileSync(fileURLToPath(import.meta.url), 'utf8').split('\n').slice(1, 9).map((l) => l.replace(/^\/\/ ?/, '')).join('\n') + '\n');
  process.exit(0);
}
const seconds = Number(o.seconds);
const warm = Number(o.warm);
const dir = mkdtempSync(join(os.tmpdir(), 'tollgate-alloc-'));
process.on('exit', () => {
  cleanupAllSync();
  rmSync(dir, { recursive: true, force: true });
});
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(130));
setTimeout(() => {
  process.stderr.write('allocation: timed out\n');
  process.exit(1);
}, (seconds + warm + 60) * 1000).unref();

const pin = pinningPlan(false);
const [upstream, httpPort, adminPort] = await freePorts(3);
await startUpstream(dir, upstream, pin.load);
const profile = join(dir, 'alloc.heapprofile');
const sampler = fileURLToPath(new URL('./lib/alloc-sampler.mjs', import.meta.url));
const tg = await launchTollgate({
  dir,
  configYaml: benchIstioYaml({ httpPort, upstreamPort: upstream }),
  httpPort,
  adminPort,
  cpu: pin.proxy,
  accessLog: false,
  nodeArgs: ['--import', sampler],
  env: { TOLLGATE_ALLOC_OUT: profile },
});
if (!tg.ok) throw new Error(`tollgate: ${tg.reason}`);
const v = await verifyHttp(httpPort, o.path);
if (!v.ok) throw new Error(`GET ${o.path}: ${v.reason}`);
const load = (secs) => wrk({ port: httpPort, path: o.path, headers: [`Host: ${BENCH_HOST}`], conns: 32, seconds: secs, cpu: pin.load });
await load(warm);
process.kill(tg.pid, 'SIGUSR2');
await sleep(200);
const r = await load(seconds);
if (r.error) throw new Error(`wrk: ${r.error}`);
process.kill(tg.pid, 'SIGUSR2');
for (let i = 0; i < 100 && !existsSync(profile); i++) await sleep(100);
await stopProcess(tg.rec);
const p = JSON.parse(readFileSync(profile, 'utf8'));
if (p.error) throw new Error(p.error);

// Self bytes by allocation site (function and position), over the whole sampled tree.
const sites = new Map();
let total = 0;
const walk = (n) => {
  const f = n.callFrame;
  const key = `${f.functionName || '(anonymous)'} ${f.url.replace(`file://${REPO}/`, '').replace(/^node:/, '')}:${f.lineNumber + 1}`;
  if (n.selfSize > 0) sites.set(key, (sites.get(key) ?? 0) + n.selfSize);
  total += n.selfSize;
  for (const c of n.children) walk(c);
};
walk(p.head);
const perReq = (b) => Math.round(b / r.requests);
const top = [...sites].sort((a, b) => b[1] - a[1]).slice(0, Number(o.top)).map(([site, b]) => ({ site, bytesPerRequest: perReq(b) }));
const result = { path: o.path, requests: r.requests, seconds, bytesPerRequest: perReq(total), loadAverage: os.loadavg().map((x) => x.toFixed(2)).join(' '), top };
if (o.json) process.stdout.write(JSON.stringify(result, null, 2) + '\n');
else {
  process.stdout.write(`${o.path}: ${result.bytesPerRequest} B allocated per request (${r.requests} requests in ${seconds} s; load average ${result.loadAverage})\n`);
  for (const t of top) process.stdout.write(`  ${String(t.bytesPerRequest).padStart(6)} B  ${t.site}\n`);
}
process.exit(0);
