#!/usr/bin/env node
// Control-plane cost: a real `tollgate control-plane` child process watching a directory
// with N ServiceEntries, and P proxies (ControlPlaneClient, in this process, with appliers that only
// record the time) connected to it. Measures: push latency (file change -> snapshot applied in
// every proxy) p50/p99, full sync of a new sidecar (all N services), the control plane's RSS, and
// a reconnect storm (control plane restarted: time until every proxy is back).
// Usage: node bench/controlplane.mjs [--entries 10000] [--proxies 100] [--pushes 20]   (after npm run build)
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { ControlPlaneClient } from '../dist/src/controlplane/client.js';

const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const ENTRIES = arg('entries', 10000);
const PROXIES = arg('proxies', 100);
const PUSHES = arg('pushes', 20);
const BIN = new URL('../dist/src/cli/bin.js', import.meta.url).pathname;

const freePort = () => new Promise((r) => { const s = createServer().listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => r(p)); }); });
const pct = (xs, p) => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]; };
const rssMb = (pid) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;
const until = async (what, cond, ms = 60_000) => { const end = Date.now() + ms; while (!cond()) { if (Date.now() > end) throw new Error(`timeout: ${what}`); await new Promise((r) => setTimeout(r, 5)); } };

const dir = mkdtempSync(join(tmpdir(), 'tg-cpbench-'));
const entries = [];
for (let i = 0; i < ENTRIES; i++) entries.push(`apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: se-${i}, namespace: mesh}\nspec: {hosts: [h${i}.example.com], ports: [{number: 80, name: http, protocol: HTTP}, {number: 443, name: tls, protocol: TLS}], resolution: DNS}`);
writeFileSync(join(dir, 'entries.yaml'), entries.join('\n---\n'));
const edge = (n) => `apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: edge, namespace: mesh}\nspec: {selector: {app: edge}, servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: ["*"]}]}\n---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: edge, namespace: mesh}\nspec: {hosts: [h1.example.com], gateways: [edge], http: [{match: [{uri: {prefix: "/v${n}"}}], route: [{destination: {host: h1.example.com}}]}]}\n`;
writeFileSync(join(dir, 'edge.yaml'), edge(0));

// The stream is TLS with a bootstrap token per proxy: a self-signed loopback certificate (openssl CLI).
const pki = mkdtempSync(join(tmpdir(), 'tg-cpbench-pki-'));
execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', join(pki, 'key.pem'), '-out', join(pki, 'cert.pem'), '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-days', '1'], { stdio: 'ignore' });
const token = randomBytes(24).toString('hex');
writeFileSync(join(pki, 'tokens'), `${token} mesh tollgate-proxy\n`);
const auth = { ca: readFileSync(join(pki, 'cert.pem')), token: () => token };
const tlsArgs = ['--tls-cert', join(pki, 'cert.pem'), '--tls-key', join(pki, 'key.pem'), '--bootstrap-tokens', join(pki, 'tokens')];

const port = await freePort();
let cp;
const startCp = async () => {
  cp = spawn(process.execPath, [BIN, 'control-plane', '-f', dir, '--listen', `127.0.0.1:${port}`, '--debounce', '20', ...tlsArgs], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  cp.stderr.on('data', (d) => (err += d));
  const t0 = Date.now();
  await until('control plane listening', () => /serving/.test(err), 120_000);
  return Date.now() - t0;
};
const result = { entries: ENTRIES, proxies: PROXIES };
try {
  result.controlPlaneStartMs = await startCp();
  const applied = new Map(); // client -> { version, at }
  const clients = [];
  for (let i = 0; i < PROXIES; i++) {
    const c = new ControlPlaneClient({ host: '127.0.0.1', port, node: { role: 'gateway', namespace: 'mesh', name: `gw-${i}`, labels: { app: 'edge' } }, applier: { apply: async (s) => applied.set(c, { version: s.version, at: performance.now() }) }, ...auth, initialBackoffMs: 100, maxBackoffMs: 2000 });
    clients.push(c);
  }
  let t = performance.now();
  clients.forEach((c) => c.start());
  await until('all proxies synced', () => applied.size === PROXIES);
  result.initialSyncAllMs = Math.round(performance.now() - t);

  const latencies = [];
  for (let n = 1; n <= PUSHES; n++) {
    const before = new Map([...applied].map(([c, v]) => [c, v.version]));
    t = performance.now();
    writeFileSync(join(dir, 'edge.yaml'), edge(n));
    await until(`push ${n}`, () => clients.every((c) => applied.get(c).version !== before.get(c)));
    for (const c of clients) latencies.push(applied.get(c).at - t);
    await new Promise((r) => setTimeout(r, 50));
  }
  result.pushLatencyMs = { p50: +pct(latencies, 50).toFixed(1), p99: +pct(latencies, 99).toFixed(1), note: 'file write -> applied in the proxy; includes the 20 ms debounce; unchanged files come from the parse cache' };
  result.controlPlaneRssMb = Math.round(rssMb(cp.pid));

  let sidecarApplied = 0;
  let sidecarBytes = 0;
  t = performance.now();
  const sidecar = new ControlPlaneClient({ host: '127.0.0.1', port, node: { role: 'sidecar', namespace: 'mesh', name: 'sc', labels: { app: 'web' } }, applier: { apply: async (s) => { sidecarApplied = performance.now(); sidecarBytes = JSON.stringify(s).length; } }, ...auth });
  sidecar.start();
  await until('sidecar synced', () => sidecarApplied > 0, 120_000);
  result.newSidecarFullSyncMs = Math.round(sidecarApplied - t);
  result.sidecarSnapshotMb = +(sidecarBytes / 1e6).toFixed(1);
  sidecar.stop();
  result.controlPlaneRssAfterSidecarMb = Math.round(rssMb(cp.pid));

  cp.kill('SIGKILL');
  await until('clients notice', () => clients.every((c) => !c.connected));
  t = performance.now();
  result.reconnectStorm = { restartMs: await startCp() };
  await until('all reconnected', () => clients.every((c) => c.connected), 120_000);
  result.reconnectStorm.allReconnectedMs = Math.round(performance.now() - t);
  clients.forEach((c) => c.stop());
} finally {
  cp?.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
  rmSync(pki, { recursive: true, force: true });
}
console.log(JSON.stringify(result, null, 2));
process.exit(0);
