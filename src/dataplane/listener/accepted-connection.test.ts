/**
 * AcceptedConnection on a real loopback connection: the client's address comes from the socket and
 * is still known after it closed, every other field is what the listener
 * passed, copyConnection() keeps the lazily read address and applies the changes, and the object
 * stays in V8's fast mode (checked in a child process with --allow-natives-syntax: an object literal
 * with getters, which this class replaced, is created in dictionary mode).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { copyConnection, type DataPlaneServices } from '../context.js';
import type { CompiledListener, CompiledSnapshot } from '../route/compile.js';
import type { FilterChain } from '../../snapshot/types.js';
import type { PeerIdentity } from '../mesh/peer-identity.js';
import { AcceptedConnection, type AcceptedFacts } from './accepted-connection.js';

function facts(socket: Socket, changes: Partial<AcceptedFacts> = {}): AcceptedFacts {
  const snapshot = {} as CompiledSnapshot;
  return {
    socket,
    snapshot,
    listener: { listener: { port: 8443 } } as unknown as CompiledListener,
    chain: { name: 'chain-a' } as FilterChain,
    chainWhy: 'matched',
    localAddress: '127.0.0.1',
    localPort: 8443,
    sni: 'example.test',
    alpn: ['h2'],
    tls: true,
    mutualTls: false,
    peer: undefined,
    peerCertificate: undefined,
    startTime: 1,
    startHr: 2n,
    originalDestination: undefined,
    initialBytes: Buffer.from('hello'),
    services: {} as DataPlaneServices,
    currentSnapshot: () => snapshot,
    ...changes,
  };
}

test('the client address comes from the socket, is still known after the close, and survives copyConnection', async () => {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const client = connect((server.address() as AddressInfo).port, '127.0.0.1');
  const [accepted] = (await once(server, 'connection')) as [Socket];
  try {
    const conn = new AcceptedConnection(facts(accepted));
    assert.equal(conn.listenerPort, 8443, 'the snapshot port of the listener');
    assert.equal(conn.sni, 'example.test');
    assert.deepEqual(conn.initialBytes, Buffer.from('hello'));
    assert.equal(conn.mutualTls, false);
    assert.equal(conn.remoteAddress, '127.0.0.1');
    assert.equal(conn.remotePort, client.localPort);
    const other = connect((server.address() as AddressInfo).port, '127.0.0.1');
    await once(other, 'connect');
    const copy = copyConnection(conn, { socket: other, chainWhy: 'copied' });
    assert.equal(copy.socket, other);
    assert.equal(copy.chainWhy, 'copied');
    assert.equal(copy.remoteAddress, '127.0.0.1', 'a spread alone would drop the prototype getter');
    assert.equal(copy.remotePort, client.localPort, "the first connection's port, not the new socket's");
    assert.equal(copy.currentSnapshot(), conn.snapshot);
    other.destroy();
    accepted.destroy();
    await once(accepted, 'close');
    assert.equal(conn.remoteAddress, '127.0.0.1', 'still known after the close');
  } finally {
    client.destroy();
    server.close();
  }
});

test('a mesh peer identity is kept only on a mutual-TLS connection', () => {
  const socket = {} as Socket;
  const peer: PeerIdentity = { spiffeId: 'spiffe://cluster.local/ns/ns/sa/sa', principal: 'cluster.local/ns/ns/sa/sa', namespace: 'ns' };
  assert.equal(new AcceptedConnection(facts(socket, { mutualTls: true, peer })).peer, peer);
  assert.equal(new AcceptedConnection(facts(socket, { mutualTls: false, peer })).peer, undefined);
});

test('an AcceptedConnection has fast properties (not a dictionary-mode object)', () => {
  const moduleUrl = new URL('./accepted-connection.js', import.meta.url).href;
  const script = `
    const { AcceptedConnection } = await import(${JSON.stringify(moduleUrl)});
    const f = { socket: {}, snapshot: {}, listener: { listener: { port: 1 } }, chain: {}, chainWhy: '', localAddress: '127.0.0.1', localPort: 1, sni: undefined, alpn: [], tls: false, mutualTls: false, peer: undefined, peerCertificate: undefined, startTime: 0, startHr: 0n, originalDestination: undefined, initialBytes: undefined, services: {}, currentSnapshot: () => ({}) };
    const conn = new AcceptedConnection(f);
    const literal = { a: 1, get b() { return 2; }, c: 3, d: 4, e: 5, f: 6, g: 7, h: 8, i: 9, j: 10, k: 11, l: 12, m: 13, n: 14, o: 15, p: 16, q: 17, r: 18 };
    process.stdout.write(JSON.stringify({ conn: %HasFastProperties(conn), literal: %HasFastProperties(literal) }));
  `;
  const r = spawnSync(process.execPath, ['--allow-natives-syntax', '--input-type=module', '-e', script], { encoding: 'utf8', cwd: fileURLToPath(new URL('.', import.meta.url)) });
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { conn: boolean; literal: boolean };
  // The control shows the check can tell the two apart on this Node release.
  assert.equal(out.literal, false, 'an object literal with a getter and many fields is in dictionary mode');
  assert.equal(out.conn, true);
});
