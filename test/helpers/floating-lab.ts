/**
 * A small L2 lab for floating source addresses, entirely inside network namespaces created here:
 * a hub namespace holding a bridge, and one namespace per role (control plane, two gateway
 * replicas, destination, client) each attached to the bridge by a veth, on TEST-NET-2
 * (198.51.100.0/24). The floating address 198.51.100.50 is the gateways' shared source address and
 * also where the client connects (whoever holds it answers), like a keepalived VIP.
 *
 * The destination records every connection as `<ms since epoch> <peer>`; the client opens a new
 * CONNECT tunnel through 198.51.100.50:3128 every `intervalMs` and records `<ms> ok <peer>` or
 * `<ms> fail <reason>` (8 s timeout: a SYN sent during a hand-over is retransmitted at +1 s and +3 s, and still counts). Used by the floating-address test and by bench/failover.mjs.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIN, spawnGate, type ChildGate } from './tollgate.js';
import { waitFor } from './net.js';
import { makeControlPlaneAuth, type ControlPlaneAuth } from './control-plane-auth.js';

export const VIP = '198.51.100.50';
export const DEST = '198.51.100.1';
export const CP = '198.51.100.2';
export const CLIENT = '198.51.100.3';
export const REPLICA_IPS = ['198.51.100.11', '198.51.100.12'] as const;
const CP_PORT = 15010;

/**
 * 'pool': a ServiceEntry's floating pool. 'netnamespace': OpenShift SDN objects as the egress-IP
 * `oc patch` commands leave them — the namespace "herasoo" (where the client Pod runs) leaves from
 * the address, and both nodes' HostSubnets list it, so it fails over between them.
 */
export type LabSource = 'pool' | 'netnamespace';

export function labConfig(source: LabSource): string {
  const annotations = source === 'pool' ? `
  annotations:
    tollgate.io/source-address-pool: "${VIP}"
    tollgate.io/source-address-mode: floating` : '';
  const sdn = source === 'pool' ? '' : `
---
apiVersion: network.openshift.io/v1
kind: HostSubnet
metadata: { name: node-a }
host: node-a
egressIPs: ["${VIP}"]
---
apiVersion: network.openshift.io/v1
kind: HostSubnet
metadata: { name: node-b }
host: node-b
egressIPs: ["${VIP}"]
---
apiVersion: network.openshift.io/v1
kind: NetNamespace
metadata: { name: herasoo }
netname: herasoo
egressIPs: ["${VIP}"]
---
apiVersion: v1
kind: Pod
metadata: { name: client, namespace: herasoo }
spec: { containers: [{ name: c }] }
status: { podIP: ${CLIENT} }`;
  return `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: partner
  namespace: egress${annotations}
spec:
  hosts: [partner.example]
  ports: [{ number: 9000, name: tcp, protocol: TCP }]
  resolution: STATIC
  endpoints: [{ address: ${DEST} }]
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata:
  name: egressgateway
  namespace: egress
  annotations:
    tollgate.io/explicit-proxy: "3128"
    tollgate.io/explicit-proxy-connect-ports: "9000"
spec:
  selector: { istio: egressgateway }
  servers:
  - port: { number: 80, name: http, protocol: HTTP }
    hosts: [partner.example]
${sdn}`;
}

const DEST_SERVER = `
const t0 = Date.now();
require('node:net').createServer((s) => {
  console.log(Date.now() + ' ' + s.remoteAddress);
  s.on('error', () => {});
  s.end('peer=' + s.remoteAddress + '\\n');
}).listen(9000, '${DEST}', () => console.log('LISTEN'));`;

const CLIENT_LOOP = (intervalMs: number): string => `
const net = require('node:net');
function once() {
  const t = Date.now();
  const s = net.connect({ host: '${VIP}', port: 3128, timeout: 8000 });
  let text = '';
  let done = false;
  const end = (what) => { if (done) return; done = true; s.destroy(); console.log(t + ' ' + what); };
  s.on('connect', () => s.write('CONNECT partner.example:9000 HTTP/1.1\\r\\nHost: partner.example:9000\\r\\n\\r\\n'));
  s.on('data', (d) => { text += d; const m = /peer=(\\S+)/.exec(text); if (m) end('ok ' + m[1]); else if (/^HTTP\\/1\\.1 [45]/.test(text)) end('fail ' + text.split('\\r\\n')[0].replace(/ /g, '_')); });
  s.on('timeout', () => end('fail timeout'));
  s.on('error', (e) => end('fail ' + e.code));
  s.on('close', () => end('fail closed'));
}
setInterval(once, ${intervalMs});`;

export interface Lab {
  readonly ns: { hub: string; cp: string; r: [string, string]; dest: string; client: string };
  /** veth (inside each replica namespace) that connects it to the bridge. */
  readonly replicaDev: [string, string];
  readonly destLog: string[];
  readonly clientLog: string[];
  readonly replicas: (ChildGate | undefined)[];
  /** The control plane's TLS CA and the replicas' token (namespace egress). */
  readonly auth: ControlPlaneAuth;
  startReplica(i: 0 | 1, extraArgs?: readonly string[]): Promise<ChildGate>;
  startClient(intervalMs: number): void;
  stopClient(): void;
  /** Which replica namespaces have the VIP on an interface right now. */
  holders(): number[];
  close(): Promise<void>;
}

function ip(...args: string[]): void {
  const r = spawnSync('ip', args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`ip ${args.join(' ')}: ${r.stderr}`);
}

export async function startLab(leaseMs: number, source: LabSource = 'pool'): Promise<Lab> {
  const id = process.pid % 100000;
  const ns = { hub: `tgfh-${id}`, cp: `tgfc-${id}`, r: [`tgf1-${id}`, `tgf2-${id}`] as [string, string], dest: `tgfd-${id}`, client: `tgfk-${id}` };
  const all = [ns.hub, ns.cp, ...ns.r, ns.dest, ns.client];
  const cleanup = (): void => {
    for (const n of all) spawnSync('ip', ['netns', 'del', n], { stdio: 'ignore' });
  };
  cleanup();
  for (const n of all) ip('netns', 'add', n);
  ip('-n', ns.hub, 'link', 'add', 'br0', 'type', 'bridge');
  ip('-n', ns.hub, 'link', 'set', 'br0', 'up');
  const attach = (n: string, dev: string, addr: string, k: number): void => {
    ip('link', 'add', dev, 'netns', n, 'type', 'veth', 'peer', 'name', `p${k}-${id}`, 'netns', ns.hub);
    ip('-n', ns.hub, 'link', 'set', `p${k}-${id}`, 'master', 'br0');
    ip('-n', ns.hub, 'link', 'set', `p${k}-${id}`, 'up');
    ip('-n', n, 'addr', 'add', `${addr}/24`, 'dev', dev);
    ip('-n', n, 'link', 'set', dev, 'up');
    ip('-n', n, 'link', 'set', 'lo', 'up');
  };
  const replicaDev: [string, string] = [`r1-${id}`, `r2-${id}`];
  attach(ns.cp, `c-${id}`, CP, 1);
  attach(ns.r[0], replicaDev[0], REPLICA_IPS[0], 2);
  attach(ns.r[1], replicaDev[1], REPLICA_IPS[1], 3);
  attach(ns.dest, `d-${id}`, DEST, 4);
  attach(ns.client, `k-${id}`, CLIENT, 5);

  const dir = mkdtempSync(join(tmpdir(), 'tg-float-'));
  writeFileSync(join(dir, 'config.yaml'), labConfig(source));
  const procs: ChildProcess[] = [];
  const destLog: string[] = [];
  const clientLog: string[] = [];
  const lines = (p: ChildProcess, into: string[]): void => {
    let buf = '';
    p.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        into.push(buf.slice(0, i));
        buf = buf.slice(i + 1);
      }
    });
  };
  const dest = spawn('ip', ['netns', 'exec', ns.dest, process.execPath, '-e', DEST_SERVER], { stdio: ['ignore', 'pipe', 'inherit'] });
  procs.push(dest);
  lines(dest, destLog);
  await waitFor(() => destLog.includes('LISTEN'), 5000, 'destination');
  const auth = await makeControlPlaneAuth(['egress'], CP);
  const cp = spawn('ip', ['netns', 'exec', ns.cp, process.execPath, BIN, 'control-plane', '-f', dir, '--listen', `${CP}:${CP_PORT}`, ...auth.serverArgs], { stdio: ['ignore', 'pipe', 'pipe'] });
  procs.push(cp);
  const cpErr: string[] = [];
  cp.stderr!.on('data', (d: Buffer) => cpErr.push(d.toString()));
  cp.stdout!.on('data', (d: Buffer) => cpErr.push(d.toString()));
  await waitFor(() => /listening|serving/i.test(cpErr.join('')) || cp.exitCode !== null, 10_000, 'control plane');
  if (cp.exitCode !== null) throw new Error(`control plane exited: ${cpErr.join('')}`);

  let client: ChildProcess | undefined;
  const replicas: (ChildGate | undefined)[] = [undefined, undefined];
  const lab: Lab = {
    ns,
    replicaDev,
    destLog,
    clientLog,
    replicas,
    auth,
    async startReplica(i, extraArgs = []) {
      const g = spawnGate(['--control-plane', `${CP}:${CP_PORT}`, ...auth.runArgs('egress'), '--role', 'gateway', '-n', 'egress', '-l', 'istio=egressgateway', '--admin', '127.0.0.1:15000', '--source-lease', String(leaseMs), '--node', i === 0 ? 'node-a' : 'node-b', '--drain-timeout', '100', '--no-access-log', ...extraArgs], ['ip', 'netns', 'exec', ns.r[i]]);
      replicas[i] = g;
      await g.waitForStderr('applied snapshot', 15_000);
      return g;
    },
    startClient(intervalMs) {
      client = spawn('ip', ['netns', 'exec', ns.client, process.execPath, '-e', CLIENT_LOOP(intervalMs)], { stdio: ['ignore', 'pipe', 'inherit'] });
      procs.push(client);
      lines(client, clientLog);
    },
    stopClient() {
      if (client?.pid !== undefined && client.exitCode === null && client.signalCode === null) process.kill(client.pid, 'SIGKILL');
    },
    holders() {
      const out: number[] = [];
      ns.r.forEach((n, i) => {
        if (spawnSync('ip', ['-n', n, '-o', 'addr', 'show'], { encoding: 'utf8' }).stdout.includes(` ${VIP}/`)) out.push(i);
      });
      return out;
    },
    async close() {
      for (const g of replicas) if (g && g.child.exitCode === null && g.child.signalCode === null) await g.stop(2000);
      // `ip netns exec` execs node in place, so these PIDs are the processes themselves.
      for (const p of procs) if (p.pid !== undefined && p.exitCode === null && p.signalCode === null) process.kill(p.pid, 'SIGKILL');
      rmSync(dir, { recursive: true, force: true });
      auth.cleanup();
      cleanup();
    },
  };
  return lab;
}
