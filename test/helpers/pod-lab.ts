/**
 * Pods with sidecars on a real kernel: a "node" namespace with a bridge (192.0.2.1/24) and one
 * namespace per pod on a veth pair, optionally an "external" namespace behind the node
 * (198.51.100.0/24). Each pod runs an app (an HTTP server on 9080) and a Tollgate sidecar as uid
 * 1337 behind the capture rules `tollgate init` writes (nftables, REDIRECT).
 *
 * Every address is TEST-NET; nothing is routed to the host network; namespace names carry the
 * process id, so test files running side by side never share one.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { sockoptAvailable } from '../../src/net/sockopt.js';
import { waitFor } from './net.js';
import { BIN, REPO_ROOT, spawnGate, type ChildGate } from './tollgate.js';
import { haveTool, isCI, isRoot, run, type RunResult } from './tools.js';

/** The node's address on the pods' bridge (their default gateway). */
export const NODE_IP = '192.0.2.1';
/** The node's address towards the external namespace. */
export const NODE_EXTERNAL_IP = '198.51.100.1';

/** `false` when the lab can run here, else the reason to skip; throws under CI=true. */
export function podLabSkip(testName: string, extraTools: readonly string[] = []): false | string {
  const tools = ['ip', 'nft', 'curl', 'setpriv', ...extraTools];
  const ready = isRoot && tools.every(haveTool) && sockoptAvailable();
  const skip = ready ? false : `needs root, ${tools.join(', ')} and the koffi package`;
  if (skip && isCI) throw new Error(`${testName}: ${skip}; CI=true`);
  return skip;
}

/**
 * The demo config of docs/sidecar.md (productpage 192.0.2.10 and reviews 192.0.2.20, ClusterIPs
 * 203.0.113.10/.20) with the outbound policy under test; both pods run the sidecar (an
 * istio-proxy container, as injection adds), so they talk auto mTLS; `extra` adds objects.
 */
export const twoPodsConfig = (policy: 'REGISTRY_ONLY' | 'ALLOW_ANY', extra = ''): string =>
  readFileSync(join(REPO_ROOT, 'examples', 'sidecar', 'two-pods.yaml'), 'utf8')
    .replace('mode: REGISTRY_ONLY', `mode: ${policy}`)
    .replaceAll('containers: [{name: app, ports: [{containerPort: 9080}]}]', 'containers: [{name: app, ports: [{containerPort: 9080}]}, {name: istio-proxy}]') + extra;

/** The app: answers with who connected to it, which Host it was asked for and the x-forwarded-client-cert it got. */
const APP = (name: string): string => `
require('node:http').createServer((req, res) => {
  const line = JSON.stringify({ app: '${name}', peer: req.socket.remoteAddress, local: req.socket.localAddress + ':' + req.socket.localPort, host: req.headers.host, xfcc: req.headers['x-forwarded-client-cert'] ?? null });
  if (req.url !== '/load') console.log(line);
  res.setHeader('content-type', 'application/json');
  res.end(line);
}).listen(9080, '0.0.0.0', () => console.log('LISTEN'));`;

export interface LabPod {
  readonly key: string;
  readonly ns: string;
  readonly ip: string;
  /** The app's name: its `app` label, service account and Service. */
  readonly app: string;
  readonly appLines: string[];
  appProc?: ChildProcess;
  sidecar?: ChildGate;
}

export interface PodLabOptions {
  /** Three letters that start every namespace and interface name of this lab. */
  readonly prefix: string;
  readonly pods: readonly { readonly key: string; readonly ip: string; readonly app: string }[];
  /** Addresses of an external namespace (198.51.100.x), reached through the node. */
  readonly external?: readonly string[];
  /** The pods' resolver (written to their resolv.conf). */
  readonly nameserver?: string;
}

export class PodLab {
  readonly id = process.pid % 100000;
  readonly nodeNs: string;
  readonly externalNs: string | undefined;
  readonly pods: Record<string, LabPod> = {};

  constructor(private readonly opts: PodLabOptions) {
    this.nodeNs = `${opts.prefix}n-${this.id}`;
    this.externalNs = opts.external ? `${opts.prefix}x-${this.id}` : undefined;
    for (const p of opts.pods) this.pods[p.key] = { ...p, ns: `${opts.prefix}${p.key}-${this.id}`, appLines: [] };
  }

  pod(key: string): LabPod {
    const p = this.pods[key];
    if (!p) throw new Error(`no pod ${key}`);
    return p;
  }

  private get namespaces(): string[] {
    return [this.nodeNs, ...Object.values(this.pods).map((p) => p.ns), ...(this.externalNs ? [this.externalNs] : [])];
  }

  /** Namespaces, the bridge, veth pairs, addresses, routes and the pods' resolv.conf. */
  create(): void {
    this.cleanup();
    for (const ns of this.namespaces) ip('netns', 'add', ns);
    for (const ns of this.namespaces) ip('-n', ns, 'link', 'set', 'lo', 'up');
    ip('-n', this.nodeNs, 'link', 'add', 'br0', 'type', 'bridge');
    ip('-n', this.nodeNs, 'addr', 'add', `${NODE_IP}/24`, 'dev', 'br0');
    ip('-n', this.nodeNs, 'link', 'set', 'br0', 'up');
    for (const pod of Object.values(this.pods)) {
      const host = `${this.opts.prefix}v${pod.key}${this.id}`;
      ip('link', 'add', host, 'netns', this.nodeNs, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', pod.ns);
      ip('-n', this.nodeNs, 'link', 'set', host, 'master', 'br0');
      ip('-n', this.nodeNs, 'link', 'set', host, 'up');
      ip('-n', pod.ns, 'addr', 'add', `${pod.ip}/24`, 'dev', 'eth0');
      ip('-n', pod.ns, 'link', 'set', 'eth0', 'up');
      ip('-n', pod.ns, 'route', 'add', 'default', 'via', NODE_IP);
      if (this.opts.nameserver !== undefined) {
        // The pod's resolver, as kubelet writes it (ip netns exec bind-mounts /etc/netns/NS/*).
        mkdirSync(`/etc/netns/${pod.ns}`, { recursive: true });
        writeFileSync(`/etc/netns/${pod.ns}/resolv.conf`, `search default.svc.cluster.local svc.cluster.local cluster.local\nnameserver ${this.opts.nameserver}\noptions ndots:5 timeout:1 attempts:1\n`);
      }
    }
    if (this.externalNs) {
      const host = `${this.opts.prefix}vx${this.id}`;
      ip('link', 'add', host, 'netns', this.nodeNs, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', this.externalNs);
      ip('-n', this.nodeNs, 'addr', 'add', `${NODE_EXTERNAL_IP}/24`, 'dev', host);
      ip('-n', this.nodeNs, 'link', 'set', host, 'up');
      this.exec(this.nodeNs, 'sysctl', '-qw', 'net.ipv4.ip_forward=1');
      for (const a of this.opts.external ?? []) ip('-n', this.externalNs, 'addr', 'add', `${a}/24`, 'dev', 'eth0');
      ip('-n', this.externalNs, 'link', 'set', 'eth0', 'up');
      ip('-n', this.externalNs, 'route', 'add', '192.0.2.0/24', 'via', NODE_EXTERNAL_IP);
    }
  }

  /** In each pod: the capture rules of `tollgate init` (uid 1337 and the status ports excluded), then the app. */
  async startApps(): Promise<void> {
    for (const pod of Object.values(this.pods)) {
      const init = spawnSync('ip', ['netns', 'exec', pod.ns, process.execPath, BIN, 'init', '-p', '15001', '-z', '15006', '-u', '1337', '-m', 'REDIRECT', '-i', '*', '-x', '', '-b', '*', '-d', '15090,15021,15020'], { encoding: 'utf8' });
      assert.equal(init.status, 0, init.stderr);
      assert.match(init.stdout, /nftables, REDIRECT/);
      pod.appProc = spawn('ip', ['netns', 'exec', pod.ns, process.execPath, '-e', APP(pod.app)], { stdio: ['ignore', 'pipe', 'inherit'] });
      pod.appProc.stdout!.on('data', (d: Buffer) => pod.appLines.push(...d.toString().split('\n').filter(Boolean)));
    }
    await waitFor(() => Object.values(this.pods).every((p) => p.appLines.includes('LISTEN')), 10_000, 'apps listening');
  }

  /** `tollgate run ARGS` in the pod as uid 1337, with the downward-API environment of the pod. */
  startSidecar(pod: LabPod, args: readonly string[]): ChildGate {
    const env = { POD_NAME: `${pod.app}-1`, POD_NAMESPACE: 'default', INSTANCE_IP: pod.ip, SERVICE_ACCOUNT: pod.app };
    pod.sidecar = spawnGate(args, ['ip', 'netns', 'exec', pod.ns, 'setpriv', '--reuid=1337', '--regid=1337', '--clear-groups'], env);
    return pod.sidecar;
  }

  async waitReady(pod: LabPod, timeoutMs = 15_000): Promise<void> {
    await waitFor(() => pod.sidecar!.stderr.join('').includes('tollgate running snapshot') || /applied snapshot/.test(pod.sidecar!.stderr.join('')) || pod.sidecar!.child.exitCode !== null, timeoutMs, `${pod.app} sidecar start`);
    assert.equal(pod.sidecar!.child.exitCode, null, pod.sidecar!.stderr.join(''));
  }

  /** curl in a pod, as the app (root: any uid but the proxy's is captured). */
  async curl(pod: LabPod, url: string, extra: readonly string[] = []): Promise<{ code: string; body: string; stderr: string }> {
    const r = await run('ip', ['netns', 'exec', pod.ns, 'curl', '-sS', '--max-time', '5', '-o', '-', '-w', '\n%{http_code}', ...extra, url], { timeoutMs: 8000 });
    const lines = r.stdout.split('\n');
    return { code: lines.pop() ?? '', body: lines.join('\n'), stderr: r.stderr };
  }

  /** A command in namespace `ns`, asynchronously. */
  run(ns: string, cmd: string, args: readonly string[], opts: { input?: string; timeoutMs?: number } = {}): Promise<RunResult> {
    return run('ip', ['netns', 'exec', ns, cmd, ...args], opts);
  }

  /** A command in namespace `ns` that must succeed. */
  exec(ns: string, ...cmd: string[]): void {
    const r = spawnSync('ip', ['netns', 'exec', ns, ...cmd], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`${cmd.join(' ')} in ${ns}: ${r.stderr}${r.stdout}`);
  }

  /** Stops sidecars and apps (by PID), then removes the namespaces and resolv.conf files. */
  async stop(): Promise<void> {
    for (const pod of Object.values(this.pods)) {
      await pod.sidecar?.stop(1000);
      pod.appProc?.kill('SIGKILL');
    }
    this.cleanup();
  }

  private cleanup(): void {
    for (const ns of this.namespaces) spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
    for (const pod of Object.values(this.pods)) rmSync(`/etc/netns/${pod.ns}`, { recursive: true, force: true });
  }
}

function ip(...args: string[]): void {
  const r = spawnSync('ip', args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`ip ${args.join(' ')}: ${r.stderr}`);
}
