#!/usr/bin/env node
/**
 * The egress router's datapaths compared with iperf3 (one stream), in network namespaces:
 * client (192.0.2.2) -> router namespace (192.0.2.1 | 198.51.100.99) -> destination 203.0.113.25,
 * where iperf3 -s runs. In the router namespace, one at a time:
 *   - routed:    plain IP forwarding, no NAT (the ceiling of this topology; the client dials 203.0.113.25)
 *   - kernel:    `tollgate run --role router` in kernel (init) mode: nftables DNAT + SNAT
 *   - haproxy:   HAProxy 1 thread, mode tcp, `source 198.51.100.99`
 *   - userspace: `tollgate run --role router` with tollgate.io/router-datapath: userspace
 * Alternating rounds (routed, kernel, haproxy, userspace) x N, median per datapath.
 *
 *   npm run build && node bench/router-kernel.mjs [--rounds 3] [--seconds 3] [--json bench/results/router-kernel.json]
 *
 * Needs root, iproute2, nftables, haproxy, iperf3. Nothing leaves the namespaces it creates.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '3' }, seconds: { type: 'string', default: '3' }, json: { type: 'string' } } });
const rounds = Math.min(10, Math.max(1, Number(values.rounds)));
const seconds = Math.min(30, Math.max(1, Number(values.seconds)));
const BIN = new URL('../dist/src/cli/bin.js', import.meta.url).pathname;
const id = process.pid % 100000;
const NS = { client: `tgbc-${id}`, router: `tgbr-${id}`, dest: `tgbd-${id}` };
const DEV = `tgbo${id}`; // router side towards the destination
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function sh(cmd, args, { ok = false } = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.status !== 0 && !ok) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr}`);
  return r;
}
const ip = (...a) => sh('ip', a);
const cleanup = () => Object.values(NS).forEach((n) => sh('ip', ['netns', 'del', n], { ok: true }));

function routerYaml(datapath) {
  return `apiVersion: apps/v1
kind: Deployment
metadata:
  name: bench-router
  namespace: default
  annotations: {tollgate.io/router-datapath: ${datapath}}
spec:
  selector: {matchLabels: {app: bench-router}}
  template:
    metadata: {labels: {app: bench-router}}
    spec:
      initContainers:
      - name: egress-router
        env:
        - {name: EGRESS_SOURCE, value: 198.51.100.99/24}
        - {name: EGRESS_GATEWAY, value: 198.51.100.1}
        - {name: EGRESS_DESTINATION, value: "5201 tcp 203.0.113.25"}
        - {name: EGRESS_ROUTER_MODE, value: init}
      containers: [{name: wait}]
---
apiVersion: v1
kind: Service
metadata: {name: bench-router, namespace: default}
spec:
  selector: {app: bench-router}
  ports: [{name: iperf, port: 5201}]
`;
}

function startIn(ns, cmd, args) {
  const child = spawn('ip', ['netns', 'exec', ns, cmd, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr.on('data', (d) => (err += d));
  return { child, err: () => err };
}
async function stop(p) {
  if (p.child.exitCode !== null || p.child.signalCode !== null) return;
  p.child.kill('SIGTERM');
  await Promise.race([new Promise((r) => p.child.once('exit', r)), sleep(3000)]);
  if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
}
async function untilPort(ns, host, port) {
  for (let i = 0; i < 100; i++) {
    if (sh('ip', ['netns', 'exec', ns, 'bash', '-c', `exec 3<>/dev/tcp/${host}/${port}`], { ok: true }).status === 0) return;
    await sleep(100);
  }
  throw new Error(`${host}:${port} in ${ns} never answered`);
}
function iperf(target) {
  const r = sh('ip', ['netns', 'exec', NS.client, 'iperf3', '-c', target, '-p', '5201', '-t', String(seconds), '-J'], { ok: true });
  const j = JSON.parse(r.stdout || '{}');
  if (j.error) throw new Error(`iperf3: ${j.error}`);
  return j.end.sum_received.bits_per_second / 1e9;
}

const dir = mkdtempSync(join(tmpdir(), 'tg-bench-router-'));
const results = { routed: [], kernel: [], haproxy: [], userspace: [] };
cleanup();
let iperfServer;
try {
  for (const n of Object.values(NS)) ip('netns', 'add', n);
  ip('link', 'add', `tgbc${id}`, 'netns', NS.client, 'type', 'veth', 'peer', 'name', `tgbi${id}`, 'netns', NS.router);
  ip('link', 'add', DEV, 'netns', NS.router, 'type', 'veth', 'peer', 'name', `tgbd${id}`, 'netns', NS.dest);
  for (const n of Object.values(NS)) ip('-n', n, 'link', 'set', 'lo', 'up');
  ip('-n', NS.client, 'addr', 'add', '192.0.2.2/24', 'dev', `tgbc${id}`);
  ip('-n', NS.client, 'link', 'set', `tgbc${id}`, 'up');
  ip('-n', NS.client, 'route', 'add', '203.0.113.0/24', 'via', '192.0.2.1');
  ip('-n', NS.router, 'addr', 'add', '192.0.2.1/24', 'dev', `tgbi${id}`);
  ip('-n', NS.router, 'link', 'set', `tgbi${id}`, 'up');
  ip('-n', NS.router, 'link', 'set', DEV, 'up');
  ip('-n', NS.dest, 'addr', 'add', '198.51.100.1/24', 'dev', `tgbd${id}`);
  ip('-n', NS.dest, 'link', 'set', `tgbd${id}`, 'up');
  ip('-n', NS.dest, 'addr', 'add', '203.0.113.25/32', 'dev', 'lo');
  ip('-n', NS.dest, 'route', 'add', '192.0.2.0/24', 'via', '198.51.100.99'); // only the routed baseline needs it
  iperfServer = startIn(NS.dest, 'iperf3', ['-s', '-B', '203.0.113.25', '-p', '5201']);
  await untilPort(NS.dest, '203.0.113.25', 5201);
  writeFileSync(join(dir, 'kernel.yaml'), routerYaml('kernel'));
  writeFileSync(join(dir, 'userspace.yaml'), routerYaml('userspace'));
  writeFileSync(join(dir, 'haproxy.cfg'), `global\n  nbthread 1\ndefaults\n  mode tcp\n  timeout connect 5s\n  timeout client 120s\n  timeout server 120s\nfrontend f\n  bind 192.0.2.1:5201\n  default_backend b\nbackend b\n  source 198.51.100.99\n  server s 203.0.113.25:5201\n`);
  const tollgate = (file) => startIn(NS.router, process.execPath, [BIN, 'run', '-f', join(dir, file), '--role', 'router', '--namespace', 'default', '--labels', 'app=bench-router', '--router-interface', DEV, '--admin', '127.0.0.1:15000', '--no-access-log', '--drain-timeout', '100']);
  const withSource = async (fn) => {
    // What the kernel mode sets up itself: the source address and the route to the destinations.
    ip('-n', NS.router, 'addr', 'add', '198.51.100.99/24', 'dev', DEV);
    ip('-n', NS.router, 'route', 'add', '203.0.113.0/24', 'via', '198.51.100.1');
    try { return await fn(); } finally { sh('ip', ['-n', NS.router, 'addr', 'del', '198.51.100.99/24', 'dev', DEV], { ok: true }); }
  };
  const modes = {
    routed: () => withSource(async () => {
      sh('ip', ['netns', 'exec', NS.router, 'sh', '-c', 'echo 1 > /proc/sys/net/ipv4/ip_forward']);
      try { return iperf('203.0.113.25'); } finally { sh('ip', ['netns', 'exec', NS.router, 'sh', '-c', 'echo 0 > /proc/sys/net/ipv4/ip_forward']); }
    }),
    kernel: async () => {
      const p = tollgate('kernel.yaml');
      try {
        for (let i = 0; i < 100 && sh('ip', ['netns', 'exec', NS.router, 'nft', 'list', 'table', 'ip', 'tollgate_router'], { ok: true }).status !== 0; i++) await sleep(100);
        await sleep(300);
        return iperf('192.0.2.1');
      } finally { await stop(p); }
    },
    haproxy: () => withSource(async () => {
      const p = startIn(NS.router, '/usr/sbin/haproxy', ['-f', join(dir, 'haproxy.cfg'), '-db']);
      try { await untilPort(NS.client, '192.0.2.1', 5201); await sleep(200); return iperf('192.0.2.1'); } finally { await stop(p); }
    }),
    userspace: () => withSource(async () => {
      const p = tollgate('userspace.yaml');
      try { await untilPort(NS.client, '192.0.2.1', 5201); await sleep(200); return iperf('192.0.2.1'); } finally { await stop(p); }
    }),
  };
  for (let r = 0; r < rounds; r++) {
    for (const [name, run] of Object.entries(modes)) {
      // untilPort's probe connections reach iperf3 -s, which then logs a failed test; give it a moment.
      await sleep(300);
      const gbps = await run();
      results[name].push(gbps);
      console.log(`round ${r + 1} ${name}: ${gbps.toFixed(2)} Gbit/s`);
    }
  }
} finally {
  if (iperfServer) await stop(iperfServer);
  cleanup();
  rmSync(dir, { recursive: true, force: true });
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const med = Object.fromEntries(Object.entries(results).map(([k, v]) => [k, median(v)]));
const out = { rounds, seconds, gbps: results, medianGbps: med, ratioToHaproxy: { kernel: med.kernel / med.haproxy, userspace: med.userspace / med.haproxy } };
console.log(`median Gbit/s: routed ${med.routed.toFixed(2)}, kernel ${med.kernel.toFixed(2)}, haproxy ${med.haproxy.toFixed(2)}, userspace ${med.userspace.toFixed(2)}; kernel/haproxy ${out.ratioToHaproxy.kernel.toFixed(2)}x, userspace/haproxy ${out.ratioToHaproxy.userspace.toFixed(2)}x`);
if (values.json) writeFileSync(values.json, JSON.stringify(out, null, 2) + '\n');
