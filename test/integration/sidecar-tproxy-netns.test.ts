/**
 * TPROXY interception on a real kernel: a pod namespace with `tollgate init -m TPROXY` rules
 * (mangle TPROXY to 15006, fwmark routing) and a client namespace on a veth. The sidecar runs with
 * --interception-mode TPROXY: IP_TRANSPARENT on its listeners (it needs CAP_NET_ADMIN, so it runs as
 * root with the proxy's group 1337, which the rules exempt). Inbound connections keep their
 * destination (the pod's address), reach the app from 127.0.0.6; outbound is still REDIRECTed.
 * TEST-NET addresses only; namespaces per process.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { waitFor } from '../helpers/net.js';
import { sockoptAvailable } from '../../src/net/sockopt.js';
import { BIN, REPO_ROOT, spawnGate, type ChildGate } from '../helpers/tollgate.js';
import { haveTool, isCI, isRoot, run } from '../helpers/tools.js';

const ready = isRoot && haveTool('ip') && haveTool('nft') && haveTool('curl') && haveTool('setpriv') && sockoptAvailable();
const skip = ready ? false : 'needs root, iproute2, nftables, curl, setpriv and the koffi package';
if (!ready && isCI) throw new Error(`sidecar-tproxy-netns: ${skip}; CI=true`);

const id = process.pid % 100000;
const NS = { pod: `tgtp-${id}`, client: `tgtc-${id}` };
const POD = '192.0.2.20';
const CLIENT = '192.0.2.1';

function ip(...args: string[]): void {
  const r = spawnSync('ip', args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`ip ${args.join(' ')}: ${r.stderr}`);
}

function cleanup(): void {
  for (const ns of Object.values(NS)) spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
}

describe('sidecar TPROXY interception', { skip, concurrency: false, timeout: 60_000 }, () => {
  let app: ChildProcess | undefined;
  const appLines: string[] = [];
  let sidecar: ChildGate | undefined;

  before(async () => {
    cleanup();
    for (const ns of Object.values(NS)) {
      ip('netns', 'add', ns);
      ip('-n', ns, 'link', 'set', 'lo', 'up');
    }
    ip('link', 'add', `tgtv${id}`, 'netns', NS.client, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', NS.pod);
    ip('-n', NS.client, 'addr', 'add', `${CLIENT}/24`, 'dev', `tgtv${id}`);
    ip('-n', NS.client, 'link', 'set', `tgtv${id}`, 'up');
    ip('-n', NS.pod, 'addr', 'add', `${POD}/24`, 'dev', 'eth0');
    ip('-n', NS.pod, 'link', 'set', 'eth0', 'up');
    ip('-n', NS.pod, 'route', 'add', 'default', 'via', CLIENT);
    const init = spawnSync('ip', ['netns', 'exec', NS.pod, process.execPath, BIN, 'init', '-m', 'TPROXY'], { encoding: 'utf8' });
    assert.equal(init.status, 0, init.stderr);
    app = spawn('ip', ['netns', 'exec', NS.pod, process.execPath, '-e', `require('node:http').createServer((q, s) => { const l = JSON.stringify({ peer: q.socket.remoteAddress, local: q.socket.localAddress + ':' + q.socket.localPort }); console.log(l); s.end(l); }).listen(9080, '0.0.0.0', () => console.log('LISTEN'))`], { stdio: ['ignore', 'pipe', 'inherit'] });
    app.stdout!.on('data', (d: Buffer) => appLines.push(...d.toString().split('\n').filter(Boolean)));
    sidecar = spawnGate(['-f', join(REPO_ROOT, 'examples', 'sidecar', 'two-pods.yaml'), '--role', 'sidecar', '-n', 'default', '-l', 'app=reviews', '--admin', 'off', '--interception-mode', 'TPROXY', '--drain-timeout', '500'], ['ip', 'netns', 'exec', NS.pod, 'setpriv', '--regid=1337', '--clear-groups']);
    await waitFor(() => appLines.includes('LISTEN'), 10_000, 'app listening');
    await waitFor(() => sidecar!.stderr.join('').includes('tollgate running snapshot') || sidecar!.child.exitCode !== null, 15_000, 'sidecar start');
    assert.equal(sidecar.child.exitCode, null, sidecar.stderr.join(''));
  });

  after(async () => {
    await sidecar?.stop(1000);
    app?.kill('SIGKILL');
    cleanup();
  });

  it('the rules are TPROXY (mangle, fwmark 1337 -> table 133), not NAT, for inbound', async () => {
    const rules = await run('ip', ['netns', 'exec', NS.pod, 'nft', 'list', 'table', 'ip', 'tollgate_capture'], { timeoutMs: 5000 });
    assert.match(rules.stdout, /tproxy to :15006/);
    const rule = await run('ip', ['-n', NS.pod, 'rule'], { timeoutMs: 5000 });
    assert.match(rule.stdout, /fwmark 0x539 lookup 133/);
  });

  it('an inbound connection keeps its destination, goes through the sidecar, and reaches the app from 127.0.0.6', async () => {
    const r = await run('ip', ['netns', 'exec', NS.client, 'curl', '-sS', '--max-time', '5', `http://${POD}:9080/tproxy`], { timeoutMs: 8000 });
    assert.equal(r.status, 0, r.stderr);
    const seen = JSON.parse(r.stdout) as { peer: string; local: string };
    assert.equal(seen.peer, '127.0.0.6');
    assert.equal(seen.local, `${POD}:9080`);
    const rec = await waitFor(() => sidecar!.records().find((x) => x.path === '/tproxy'), 5000, 'inbound log');
    assert.equal(rec.upstream_cluster, 'inbound|9080||');
    assert.equal(rec.downstream_local_address, `${POD}:9080`);
    assert.match(rec.downstream_remote_address ?? '', new RegExp(`^${CLIENT.replace(/\./g, '\\.')}:`));
  });

  it('outbound is still REDIRECTed in TPROXY mode: the app reaching a Service goes through the sidecar', async () => {
    // reviews' own ClusterIP (hairpin): outbound by SO_ORIGINAL_DST, then inbound to the app.
    const r = await run('ip', ['netns', 'exec', NS.pod, 'curl', '-sS', '--max-time', '5', '--resolve', 'reviews:80:203.0.113.20', 'http://reviews/out'], { timeoutMs: 8000 });
    assert.equal(r.status, 0, r.stderr);
    assert.equal((JSON.parse(r.stdout) as { peer: string }).peer, '127.0.0.6');
    const out = await waitFor(() => sidecar!.records().find((x) => x.path === '/out' && x.upstream_cluster?.startsWith('outbound|')), 5000, 'outbound log');
    assert.equal(out.downstream_local_address, '203.0.113.20:80');
  });
});
