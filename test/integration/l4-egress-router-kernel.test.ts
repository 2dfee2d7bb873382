/**
 * The egress router's kernel (init) mode across network namespaces, with OpenShift's example Deployment
 * (addresses moved to TEST-NET, the fallback line enabled). A client namespace reaches the router
 * at 192.0.2.1; the router namespace has only a veth towards the destination network, on which
 * Tollgate creates a macvlan, puts EGRESS_SOURCE (198.51.100.99, /32 with an on-link route to
 * EGRESS_GATEWAY as OpenShift does) on it, routes by default via EGRESS_GATEWAY and installs nftables
 * DNAT + SNAT. The destination records the peer of every connection. Proves: the destination sees
 * EGRESS_SOURCE, per-line port rewrite, the fallback line, per-rule nft counters as metrics, /ready,
 * reconcile on config change (--watch), and that the table, macvlan, address and route are gone after
 * SIGTERM. Nothing is routed to the host network; namespaces are deleted by name afterwards.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { waitFor } from '../helpers/net.js';
import { FIXTURES, spawnGate, tempConfig, type ChildGate } from '../helpers/tollgate.js';
import { haveTool, isCI, isRoot, run } from '../helpers/tools.js';

const ready = isRoot && haveTool('ip') && haveTool('nft') && haveTool('curl');
const skip = ready ? false : 'needs root, iproute2 (ip netns), nftables (nft) and curl';
if (!ready && isCI) throw new Error(`l4-egress-router-kernel: ${skip}; CI=true`);

const id = process.pid % 100000;
const NS = { client: `tgkc-${id}`, router: `tgkr-${id}`, dest: `tgkd-${id}` };
const PARENT = `tgkp${id}`;
const MACVLAN = `tgkm${id}`;

function ip(...args: string[]): void {
  const r = spawnSync('ip', args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`ip ${args.join(' ')}: ${r.stderr}`);
}
const inRouter = (cmd: string, ...args: string[]) => spawnSync('ip', ['netns', 'exec', NS.router, cmd, ...args], { encoding: 'utf8' });

function cleanup(): void {
  for (const ns of Object.values(NS)) spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
}

/** The example router Deployment with the fallback line enabled and no datapath annotation (kernel is the default). */
function seedRouter(extraLine = ''): string {
  return readFileSync(join(FIXTURES, 'dataplane', 'egress-router-netns.yaml'), 'utf8')
    .replace(/^ {2}annotations: \{tollgate\.io\/router-datapath: userspace\}.*\n/m, '')
    .replace('#203.0.113.27', `${extraLine}203.0.113.27`);
}

const DEST_SERVER = `
const net = require('node:net');
for (const [host, port] of [['203.0.113.25', 80], ['203.0.113.25', 443], ['203.0.113.26', 80], ['203.0.113.27', 9000], ['203.0.113.27', 9090]]) {
  net.createServer((s) => {
    console.log('PEER ' + s.remoteAddress + ' ' + host + ':' + port);
    s.on('error', () => {});
    s.end('dest=' + host + ':' + port + ' peer=' + s.remoteAddress + '\\n');
  }).listen(port, host, () => console.log('LISTEN ' + host + ':' + port));
}`;

const CLIENT = (host: string, port: number): string => `
const s = require('node:net').connect({ host: '${host}', port: ${port}, timeout: 1500 });
let out = '';
s.on('data', (d) => (out += d));
s.on('end', () => { process.stdout.write(out); process.exit(0); });
s.on('timeout', () => { process.stdout.write('TIMEOUT'); process.exit(0); });
s.on('error', (e) => { process.stdout.write('ERROR ' + e.code); process.exit(0); });`;

describe('egress router kernel (init) mode across network namespaces', { skip, concurrency: false }, () => {
  let dest: ChildProcess;
  const destLines: string[] = [];
  let gate: ChildGate;
  let cfg: { path: string; cleanup(): void };

  before(async () => {
    cleanup();
    for (const ns of Object.values(NS)) ip('netns', 'add', ns);
    ip('link', 'add', `tgkc${id}`, 'netns', NS.client, 'type', 'veth', 'peer', 'name', `tgkrc${id}`, 'netns', NS.router);
    ip('link', 'add', PARENT, 'netns', NS.router, 'type', 'veth', 'peer', 'name', `tgkd${id}`, 'netns', NS.dest);
    for (const ns of Object.values(NS)) ip('-n', ns, 'link', 'set', 'lo', 'up');
    ip('-n', NS.client, 'addr', 'add', '192.0.2.2/24', 'dev', `tgkc${id}`);
    ip('-n', NS.client, 'link', 'set', `tgkc${id}`, 'up');
    ip('-n', NS.router, 'addr', 'add', '192.0.2.1/24', 'dev', `tgkrc${id}`);
    ip('-n', NS.router, 'link', 'set', `tgkrc${id}`, 'up');
    ip('-n', NS.router, 'link', 'set', PARENT, 'up'); // no address: Tollgate's macvlan carries EGRESS_SOURCE
    ip('-n', NS.dest, 'addr', 'add', '198.51.100.1/24', 'dev', `tgkd${id}`);
    ip('-n', NS.dest, 'link', 'set', `tgkd${id}`, 'up');
    for (const a of ['203.0.113.25', '203.0.113.26', '203.0.113.27']) ip('-n', NS.dest, 'addr', 'add', `${a}/32`, 'dev', 'lo');

    dest = spawn('ip', ['netns', 'exec', NS.dest, process.execPath, '-e', DEST_SERVER], { stdio: ['ignore', 'pipe', 'inherit'] });
    dest.stdout!.on('data', (d: Buffer) => destLines.push(...d.toString().split('\n').filter(Boolean)));
    await waitFor(() => destLines.filter((l) => l.startsWith('LISTEN')).length === 5, 5000, 'destination servers');

    cfg = tempConfig(seedRouter());
    gate = spawnGate(['-f', cfg.path, '--watch', '--role', 'router', '--namespace', 'default', '--labels', 'app=egress-route-1', '--admin', '127.0.0.1:15000', '--router-interface', MACVLAN, '--router-macvlan-parent', PARENT, '--drain-timeout', '200'], ['ip', 'netns', 'exec', NS.router]);
    await gate.waitForStderr('tollgate running', 10_000);
  });

  after(async () => {
    if (gate) await gate.stop(3000);
    if (dest?.pid !== undefined && dest.exitCode === null) process.kill(dest.pid, 'SIGKILL');
    cfg?.cleanup();
    cleanup();
  });

  const client = async (host: string, port: number): Promise<string> => (await run('ip', ['netns', 'exec', NS.client, process.execPath, '-e', CLIENT(host, port)], { timeoutMs: 8000 })).stdout;
  const admin = async (path: string): Promise<string> => (await run('ip', ['netns', 'exec', NS.router, 'curl', '-s', `http://127.0.0.1:15000${path}`])).stdout;

  it('the kernel is programmed: macvlan with EGRESS_SOURCE, default route via EGRESS_GATEWAY, the nft table', () => {
    assert.match(inRouter('ip', '-o', '-4', 'addr', 'show', 'dev', MACVLAN).stdout, /198\.51\.100\.99\/32/);
    assert.match(inRouter('ip', 'route', 'show', 'default').stdout, new RegExp(`default via 198\\.51\\.100\\.1 dev ${MACVLAN}`));
    const table = inRouter('nft', 'list', 'table', 'ip', 'tollgate_router').stdout;
    assert.match(table, /tcp dport 8080 counter packets \d+ bytes \d+ dnat to 203\.0\.113\.26:80/);
    assert.match(table, /snat to 198\.51\.100\.99/);
  });

  it('80 tcp 203.0.113.25 and 8080 tcp 203.0.113.26 80: the destination sees EGRESS_SOURCE', async () => {
    assert.equal(await client('192.0.2.1', 80), 'dest=203.0.113.25:80 peer=198.51.100.99\n');
    assert.equal(await client('192.0.2.1', 8080), 'dest=203.0.113.26:80 peer=198.51.100.99\n');
  });

  it('the fallback line takes every other port', async () => {
    assert.equal(await client('192.0.2.1', 9000), 'dest=203.0.113.27:9000 peer=198.51.100.99\n');
  });

  it('/ready is served and not redirected; per-rule packets and bytes come from the nft counters', async () => {
    assert.equal(await admin('/ready'), 'LIVE\n');
    const metrics = await admin('/stats/prometheus');
    const value = (rule: string, what: string): number => Number(new RegExp(`^tollgate_router_rule_${what}_total\\{rule="${rule.replace(/[.>/]/g, '\\$&')}"\\} (\\d+)$`, 'm').exec(metrics)?.[1] ?? -1);
    assert.ok(value('80/tcp->203.0.113.25:80', 'packets') >= 1, metrics);
    assert.ok(value('80/tcp->203.0.113.25:80', 'bytes') > 0, metrics);
    assert.ok(value('fallback->203.0.113.27', 'packets') >= 1, metrics);
    assert.ok(value('snat', 'packets') >= 3, metrics);
    assert.equal(value('443/tcp->203.0.113.25:443', 'packets'), 0);
  });

  it('a config change is reconciled: a new line forwards', async () => {
    writeFileSync(cfg.path, seedRouter('9090 tcp 203.0.113.26 80\n            '));
    await waitFor(() => inRouter('nft', 'list', 'table', 'ip', 'tollgate_router').stdout.includes('dport 9090'), 8000, 'the new rule');
    assert.equal(await client('192.0.2.1', 9090), 'dest=203.0.113.26:80 peer=198.51.100.99\n');
  });

  it('every connection the destination saw came from EGRESS_SOURCE', () => {
    const peers = destLines.filter((l) => l.startsWith('PEER ')).map((l) => l.split(' ')[1]);
    assert.ok(peers.length >= 4);
    assert.deepEqual([...new Set(peers)], ['198.51.100.99']);
  });

  it('SIGTERM: exit 0 and the table, macvlan, address and route are gone', async () => {
    gate.kill('SIGTERM');
    assert.equal(await gate.exit(), 0);
    assert.notEqual(inRouter('nft', 'list', 'table', 'ip', 'tollgate_router').status, 0);
    assert.notEqual(inRouter('ip', 'link', 'show', 'dev', MACVLAN).status, 0);
    assert.doesNotMatch(inRouter('ip', 'route', 'show', 'default').stdout, /198\.51\.100\.1/);
    assert.equal(inRouter('cat', '/proc/sys/net/ipv4/ip_forward').stdout.trim(), '0');
    assert.match(await client('192.0.2.1', 80), /^(ERROR|TIMEOUT)/);
  });
});
