/**
 * The egress router across network namespaces: a client namespace, a router namespace
 * holding EGRESS_SOURCE (198.51.100.99) on a veth, and a destination namespace with the example's
 * TEST-NET-3 destinations (203.0.113.25/.26). Tollgate runs the example config unchanged (only the
 * source moved to TEST-NET-2) inside the router namespace. Proves the destination sees the egress
 * source address and nothing else reaches it (the router namespace does not forward packets).
 * Nothing is routed to the host network; namespaces are deleted by name afterwards.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { waitFor } from '../helpers/net.js';
import { FIXTURES, spawnGate, type ChildGate } from '../helpers/tollgate.js';
import { haveTool, isCI, isRoot, run } from '../helpers/tools.js';

const ready = isRoot && haveTool('ip') && haveTool('curl');
const skip = ready ? false : 'needs root, iproute2 (ip netns) and curl';
if (!ready && isCI) throw new Error(`l4-egress-router-netns: ${skip}; CI=true`);

const id = process.pid % 100000;
const NS = { client: `tgc-${id}`, router: `tgr-${id}`, dest: `tgd-${id}` };

function ip(...args: string[]): void {
  const r = spawnSync('ip', args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`ip ${args.join(' ')}: ${r.stderr}`);
}

function cleanup(): void {
  for (const ns of Object.values(NS)) spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
}

const DEST_SERVER = `
const net = require('node:net');
for (const [host, port] of [['203.0.113.25', 80], ['203.0.113.25', 443], ['203.0.113.26', 80]]) {
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

describe('egress router across network namespaces', { skip, concurrency: false }, () => {
  let dest: ChildProcess;
  const destLines: string[] = [];
  let gate: ChildGate;

  before(async () => {
    cleanup();
    ip('netns', 'add', NS.client);
    ip('netns', 'add', NS.router);
    ip('netns', 'add', NS.dest);
    ip('link', 'add', `tgc${id}`, 'netns', NS.client, 'type', 'veth', 'peer', 'name', `tgrc${id}`, 'netns', NS.router);
    ip('link', 'add', `tgrd${id}`, 'netns', NS.router, 'type', 'veth', 'peer', 'name', `tgd${id}`, 'netns', NS.dest);
    for (const ns of Object.values(NS)) ip('-n', ns, 'link', 'set', 'lo', 'up');
    ip('-n', NS.client, 'addr', 'add', '192.0.2.2/24', 'dev', `tgc${id}`);
    ip('-n', NS.client, 'link', 'set', `tgc${id}`, 'up');
    // The client even has a route to the destinations via the router: only the proxy may carry it.
    ip('-n', NS.client, 'route', 'add', '203.0.113.0/24', 'via', '192.0.2.1');
    ip('-n', NS.router, 'addr', 'add', '192.0.2.1/24', 'dev', `tgrc${id}`);
    ip('-n', NS.router, 'link', 'set', `tgrc${id}`, 'up');
    ip('-n', NS.router, 'addr', 'add', '198.51.100.99/24', 'dev', `tgrd${id}`);
    ip('-n', NS.router, 'link', 'set', `tgrd${id}`, 'up');
    ip('-n', NS.router, 'route', 'add', '203.0.113.0/24', 'via', '198.51.100.1');
    ip('-n', NS.dest, 'addr', 'add', '198.51.100.1/24', 'dev', `tgd${id}`);
    ip('-n', NS.dest, 'link', 'set', `tgd${id}`, 'up');
    ip('-n', NS.dest, 'addr', 'add', '203.0.113.25/32', 'dev', 'lo');
    ip('-n', NS.dest, 'addr', 'add', '203.0.113.26/32', 'dev', 'lo');
    ip('-n', NS.dest, 'route', 'add', '192.0.2.0/24', 'via', '198.51.100.99');

    dest = spawn('ip', ['netns', 'exec', NS.dest, process.execPath, '-e', DEST_SERVER], { stdio: ['ignore', 'pipe', 'inherit'] });
    dest.stdout!.on('data', (d: Buffer) => destLines.push(...d.toString().split('\n').filter(Boolean)));
    await waitFor(() => destLines.filter((l) => l.startsWith('LISTEN')).length === 3, 5000, 'destination servers');

    gate = spawnGate(['-f', join(FIXTURES, 'dataplane', 'egress-router-netns.yaml'), '--role', 'router', '--namespace', 'default', '--labels', 'app=egress-route-1', '--admin', '127.0.0.1:15000', '--drain-timeout', '200'], ['ip', 'netns', 'exec', NS.router]);
    await gate.waitForStderr('tollgate running', 10_000);
  });

  after(async () => {
    if (gate) {
      gate.kill('SIGTERM');
      await Promise.race([gate.exit(), new Promise((r) => setTimeout(r, 3000))]);
      gate.kill('SIGKILL');
    }
    if (dest?.pid !== undefined && dest.exitCode === null) {
      // `ip netns exec` execs node in place, so this PID is the server itself.
      process.kill(dest.pid, 'SIGKILL');
    }
    cleanup();
  });

  const client = async (host: string, port: number): Promise<string> => (await run('ip', ['netns', 'exec', NS.client, process.execPath, '-e', CLIENT(host, port)], { timeoutMs: 8000 })).stdout;

  it('80 tcp 203.0.113.25: the destination sees the EGRESS_SOURCE address', async () => {
    assert.equal(await client('192.0.2.1', 80), 'dest=203.0.113.25:80 peer=198.51.100.99\n');
  });

  it('443 tcp 203.0.113.25 and 8080 tcp 203.0.113.26 80 forward per their rules', async () => {
    assert.equal(await client('192.0.2.1', 443), 'dest=203.0.113.25:443 peer=198.51.100.99\n');
    assert.equal(await client('192.0.2.1', 8080), 'dest=203.0.113.26:80 peer=198.51.100.99\n');
  });

  it('nothing else reaches the destination: the client cannot connect to it directly', async () => {
    const r = await client('203.0.113.25', 80);
    assert.match(r, /^(TIMEOUT|ERROR )/);
  });

  it('every connection the destination saw came from 198.51.100.99, and the router logged each one', async () => {
    const peers = destLines.filter((l) => l.startsWith('PEER ')).map((l) => l.split(' ')[1]);
    assert.equal(peers.length, 3);
    assert.deepEqual([...new Set(peers)], ['198.51.100.99']);
    await waitFor(() => gate.records().length >= 3, 3000, 'access log lines');
    const recs = gate.records();
    assert.deepEqual(recs.map((r) => r.upstream_host).sort(), ['203.0.113.25:443', '203.0.113.25:80', '203.0.113.26:80']);
    for (const r of recs) assert.ok(r.upstream_local_address?.startsWith('198.51.100.99:'), JSON.stringify(r));
  });

  it('SIGTERM: readiness fails, listeners close, exit 0', async () => {
    const readyBefore = await run('ip', ['netns', 'exec', NS.router, 'curl', '-s', '-o', '/dev/null', '-w', '%{http_code}', 'http://127.0.0.1:15000/ready']);
    assert.equal(readyBefore.stdout, '200');
    gate.kill('SIGTERM');
    assert.equal(await gate.exit(), 0);
    assert.match(await client('192.0.2.1', 80), /^ERROR ECONNREFUSED/);
  });
});
