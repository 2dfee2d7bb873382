#!/usr/bin/env node
// Proxy CPU per request for the four client/upstream protocol pairs (HTTP/1.1 or HTTP/2 on each
// side), 1 KiB responses, through one `tollgate run` gateway: CPU time of the Tollgate process
// (/proc utime+stime) divided by the requests h2load completed. CPU time, not requests/s, so the
// numbers mean something on a loaded machine. Usage (after npm run build):
//   node bench/http2-upstream.mjs [--requests 20000] [--rounds 3]
import * as http from 'node:http';
import * as http2 from 'node:http2';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { launchTollgate, NAMESPACE } from './lib/tollgate.mjs';
import { cpuSeconds, freePorts, median, processTree, runCommand, stopProcess } from './lib/util.mjs';

const { values } = parseArgs({ options: { requests: { type: 'string', default: '20000' }, rounds: { type: 'string', default: '3' } } });
const REQUESTS = Number(values.requests);
const ROUNDS = Number(values.rounds);
const BODY = Buffer.alloc(1024, 0x78);

function entry(name, host, protocol, port) {
  return `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ${name}, namespace: ${NAMESPACE}}
spec:
  hosts: [${host}]
  location: MESH_EXTERNAL
  ports: [{number: 80, name: ${protocol.toLowerCase()}, protocol: ${protocol}, targetPort: ${port}}]
  resolution: STATIC
  endpoints: [{address: 127.0.0.1}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ${name}, namespace: ${NAMESPACE}}
spec:
  hosts: [${host}]
  gateways: [gw]
  http: [{route: [{destination: {host: ${host}, port: {number: 80}}}]}]
---
`;
}

const [gwPort, h1Port, h2Port] = await freePorts(3);
const h1 = http.createServer((_req, res) => res.end(BODY)).listen(h1Port, '127.0.0.1');
const h2 = http2.createServer((_req, res) => res.end(BODY)).listen(h2Port, '127.0.0.1');
const yaml =
  entry('h1', 'h1.bench.test', 'HTTP', h1Port) +
  entry('h2', 'h2.bench.test', 'HTTP2', h2Port) +
  `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: ${NAMESPACE}}
spec:
  selector: {app: bench}
  servers: [{port: {number: ${gwPort}, name: http, protocol: HTTP}, bind: 127.0.0.1, hosts: ['*']}]
`;
const dir = mkdtempSync(join(tmpdir(), 'tg-h2up-'));
const tg = await launchTollgate({ dir, configYaml: yaml, httpPort: gwPort, accessLog: false, verify: false });
if (!tg.ok) throw new Error(tg.reason);

const SCENARIOS = [
  { name: 'HTTP/1.1 -> HTTP/1.1', client: ['--h1', '-c', '16'], host: 'h1.bench.test' },
  { name: 'HTTP/1.1 -> HTTP/2', client: ['--h1', '-c', '16'], host: 'h2.bench.test' },
  { name: 'HTTP/2 -> HTTP/1.1', client: ['-c', '4', '-m', '16'], host: 'h1.bench.test' },
  { name: 'HTTP/2 -> HTTP/2', client: ['-c', '4', '-m', '16'], host: 'h2.bench.test' },
];
const samples = new Map(SCENARIOS.map((s) => [s.name, []]));
try {
  for (let round = 0; round <= ROUNDS; round++) {
    for (const s of SCENARIOS) {
      const n = round === 0 ? Math.min(REQUESTS, 5000) : REQUESTS; // round 0 warms up and is not counted
      const before = cpuSeconds(processTree(tg.pid));
      const r = await runCommand('h2load', ['-n', String(n), ...s.client, '-H', `:authority: ${s.host}`, `http://127.0.0.1:${gwPort}/1k`], { timeoutMs: 300_000 });
      const cpu = cpuSeconds(processTree(tg.pid)) - before;
      const m = /requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded, (\d+) failed, (\d+) errored/.exec(r.stdout);
      if (!m || Number(m[1]) !== n) throw new Error(`${s.name}: h2load ${r.stdout.split('\n').find((l) => l.startsWith('requests:')) ?? r.stderr}`);
      if (round > 0) samples.get(s.name).push((cpu * 1e6) / n);
    }
  }
} finally {
  await stopProcess(tg.rec);
  h1.close();
  h2.close();
  rmSync(dir, { recursive: true, force: true });
}
console.log(`proxy CPU per request (µs, median of ${ROUNDS} x ${REQUESTS} requests; load average ${(await import('node:os')).loadavg()[0].toFixed(1)})`);
for (const [name, xs] of samples) console.log(`${name.padEnd(22)} ${median(xs).toFixed(1).padStart(7)}   [${xs.map((x) => x.toFixed(1)).join(', ')}]`);
