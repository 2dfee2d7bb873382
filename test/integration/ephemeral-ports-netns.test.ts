/**
 * Local ports of upstream connections, in a network namespace whose ephemeral port range
 * (net.ipv4.ip_local_port_range, per namespace) holds only two ports:
 *  - without a source address, a third concurrent connection to one upstream finds no port:
 *    connect() fails EADDRNOTAVAIL and the request is answered 503 UF `ephemeral_ports_exhausted`
 *    (not `source_address_unavailable`: the address is fine, the ports are used up);
 *  - with a source address, sockets are bound with IP_BIND_ADDRESS_NO_PORT, so the port is picked
 *    per destination at connect(): two upstreams get two connections each from the same address
 *    (a plain bind(address, 0) reserves a port per socket, and the third and fourth failed).
 * Everything (proxy, upstreams, clients) runs inside the namespace; nothing is routed out of it.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { waitFor } from '../helpers/net.js';
import { spawnGate, tempConfig } from '../helpers/tollgate.js';
import { haveTool, isCI, isRoot, run } from '../helpers/tools.js';

const ready = isRoot && haveTool('ip');
const skip = ready ? false : 'needs root and iproute2 (ip netns)';
if (!ready && isCI) throw new Error(`ephemeral-ports-netns: ${skip}; CI=true`);

const SOURCE = '192.0.2.10';
const UPSTREAMS = ['192.0.2.20', '192.0.2.21'];
const GATE_PORT = 8080;

function sh(ns: string, ...args: string[]): void {
  const r = spawnSync('ip', ['netns', 'exec', ns, ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${args.join(' ')} in ${ns}: ${r.stderr}`);
}

/** A namespace with loopback up, the test addresses on lo and a two-port ephemeral range. */
function makeNamespace(name: string): () => void {
  spawnSync('ip', ['netns', 'del', name], { stdio: 'ignore' });
  const r = spawnSync('ip', ['netns', 'add', name], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`ip netns add ${name}: ${r.stderr}`);
  sh(name, 'ip', 'link', 'set', 'lo', 'up');
  for (const a of [SOURCE, ...UPSTREAMS]) sh(name, 'ip', 'addr', 'add', `${a}/32`, 'dev', 'lo');
  sh(name, 'sh', '-c', 'echo "40000 40001" > /proc/sys/net/ipv4/ip_local_port_range');
  return () => void spawnSync('ip', ['netns', 'del', name], { stdio: 'ignore' });
}

/** Upstreams on port 80 of each address; every response waits 1.5 s, so connections stay busy together. */
const UPSTREAM_SERVER = `
const http = require('node:http');
for (const host of ${JSON.stringify(UPSTREAMS)}) {
  http.createServer({ keepAliveTimeout: 30000 }, (req, res) => {
    console.log('PEER ' + req.socket.remoteAddress + ':' + req.socket.remotePort + ' ' + host);
    setTimeout(() => res.end('ok'), 1500);
  }).listen(80, host, () => console.log('LISTEN ' + host));
}`;

/**
 * Concurrent requests to the gate, one connection each, from fixed local ports outside the tiny
 * ephemeral range (the clients must not take the ports the test is about). Prints the statuses.
 */
const CLIENTS = (hosts: readonly string[]): string => `
const net = require('node:net');
const hosts = ${JSON.stringify(hosts)};
const out = [];
let left = hosts.length;
hosts.forEach((h, i) => {
  const s = net.connect({ host: '127.0.0.1', port: ${GATE_PORT}, localAddress: '127.0.0.1', localPort: 50000 + i });
  let text = '';
  const done = (v) => { out[i] = v; s.destroy(); if (--left === 0) { console.log(JSON.stringify(out)); process.exit(0); } };
  s.setTimeout(8000, () => done('timeout'));
  s.on('connect', () => s.write('GET / HTTP/1.1\\r\\nHost: ' + h + '\\r\\nConnection: close\\r\\n\\r\\n'));
  s.on('data', (d) => (text += d));
  s.on('end', () => done(Number((/^HTTP\\/1\\.1 (\\d{3})/.exec(text) || [])[1] || 0)));
  s.on('error', (e) => done('error ' + e.code));
});`;

function config(): string {
  return UPSTREAMS.map(
    (ip, i) => `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: up${i}, namespace: egress}
spec: {hosts: [up${i}.test], ports: [{number: 80, name: http, protocol: HTTP}], location: MESH_EXTERNAL, resolution: STATIC, endpoints: [{address: ${ip}}]}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: up${i}, namespace: egress}
spec:
  hosts: [up${i}.test]
  gateways: [egress]
  http: [{route: [{destination: {host: up${i}.test}}]}]
---
`,
  ).join('') + `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: egress, namespace: egress}
spec:
  selector: {istio: egressgateway}
  servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: [up0.test, up1.test]}]
`;
}

async function inNamespace<T>(suffix: string, withSource: boolean, fn: (ns: string, gate: ReturnType<typeof spawnGate>, peers: string[]) => Promise<T>): Promise<T> {
  const ns = `tgport${suffix}-${process.pid % 100000}`;
  const cleanup = makeNamespace(ns);
  const cfg = tempConfig(config());
  const peers: string[] = [];
  let upstream: ChildProcess | undefined;
  const args = ['-f', cfg.path, '--role', 'gateway', '-n', 'egress', '-l', 'istio=egressgateway', '--port-map', `80=${GATE_PORT}`, '--listen-address-override', '127.0.0.1', '--admin', 'off', '--allow-cidr', '192.0.2.0/24'];
  if (withSource) args.push('--source-address', SOURCE);
  const gate = spawnGate(args, ['ip', 'netns', 'exec', ns]);
  try {
    upstream = spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', UPSTREAM_SERVER], { stdio: ['ignore', 'pipe', 'inherit'] });
    upstream.stdout!.on('data', (d: Buffer) => peers.push(...d.toString().split('\n').filter(Boolean)));
    await waitFor(() => peers.filter((l) => l.startsWith('LISTEN')).length === UPSTREAMS.length, 10_000, 'upstreams listening');
    await gate.waitForStderr('tollgate running');
    return await fn(ns, gate, peers);
  } finally {
    gate.kill('SIGKILL');
    if (upstream?.pid !== undefined) upstream.kill('SIGKILL');
    await gate.exit();
    cfg.cleanup();
    cleanup();
  }
}

async function clients(ns: string, hosts: readonly string[]): Promise<(number | string)[]> {
  const r = await run('ip', ['netns', 'exec', ns, process.execPath, '-e', CLIENTS(hosts)], { timeoutMs: 20_000 });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout.trim()) as (number | string)[];
}

describe('upstream local ports in a namespace with a two-port ephemeral range', { skip, concurrency: false }, () => {
  it('no source address: the third concurrent connection to one upstream is 503 ephemeral_ports_exhausted, not source_address_unavailable', async () => {
    await inNamespace('a', false, async (ns, gate) => {
      const statuses = await clients(ns, ['up0.test', 'up0.test', 'up0.test', 'up0.test']);
      assert.equal(statuses.filter((s) => s === 200).length, 2, `two ports, two connections: ${JSON.stringify(statuses)}`);
      assert.equal(statuses.filter((s) => s === 503).length, 2, JSON.stringify(statuses));
      await waitFor(() => gate.records().length >= 4, 5000, 'four access-log lines');
      const failed = gate.records().filter((r) => r.response_code === 503);
      assert.equal(failed.length, 2);
      for (const r of failed) {
        assert.equal(r.tollgate_reason, 'ephemeral_ports_exhausted', JSON.stringify(r));
        assert.match(r.response_flags, /^UF/);
      }
    });
  });

  it('source address: IP_BIND_ADDRESS_NO_PORT lets two upstreams have two connections each from the one address', async () => {
    await inNamespace('b', true, async (ns, gate, peers) => {
      const statuses = await clients(ns, ['up0.test', 'up0.test', 'up1.test', 'up1.test']);
      assert.deepEqual(statuses, [200, 200, 200, 200], `records: ${JSON.stringify(gate.records().map((r) => [r.response_code, r.tollgate_reason]))}`);
      const seen = peers.filter((l) => l.startsWith('PEER '));
      assert.equal(seen.length, 4);
      assert.ok(seen.every((l) => l.startsWith(`PEER ${SOURCE}:`)), `every connection left from ${SOURCE}: ${seen.join('; ')}`);
    });
  });
});
