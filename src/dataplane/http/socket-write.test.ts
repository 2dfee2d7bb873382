/**
 * Downstream writes with real loopback sockets: a plain TCP socket is written through its handle
 * (never through net.Socket#write while nothing is queued there), a write the kernel took at once
 * reports no backpressure even above Writable's 16 KiB high-water mark (else every 64 KiB response
 * would pause and resume the upstream), a write that stays queued reports it and the writer calls
 * back once the peer has read, and the order of bytes holds when writes through net.Socket and
 * through the handle mix.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { connect as tlsConnect, createServer as tlsCreateServer, type TLSSocket } from 'node:tls';
import { test } from 'node:test';
import { SocketWriter } from './socket-write.js';
import { makePki } from '../../../test/helpers/pki.js';

async function socketPair(): Promise<{ a: Socket; b: Socket; close(): void }> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const accepted = once(server, 'connection');
  const a = connect((server.address() as AddressInfo).port, '127.0.0.1');
  await once(a, 'connect');
  const [b] = (await accepted) as [Socket];
  return {
    a,
    b,
    close() {
      a.destroy();
      b.destroy();
      server.close();
    },
  };
}

/** net.Socket#write replaced: the test fails if a write goes through the Writable. */
function forbidWritable(s: Socket): { count: number } {
  const calls = { count: 0 };
  const orig = s.write.bind(s);
  s.write = ((...args: Parameters<Socket['write']>) => {
    calls.count++;
    return orig(...args);
  }) as Socket['write'];
  return calls;
}

async function readAll(s: Socket, bytes: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  let n = 0;
  for await (const c of s) {
    parts.push(c as Buffer);
    n += (c as Buffer).length;
    if (n >= bytes) break;
  }
  return Buffer.concat(parts);
}

const KIB32 = Buffer.alloc(32 * 1024, 'x');

test('a plain TCP socket is written through its handle, not net.Socket#write', { timeout: 20_000 }, async () => {
  const p = await socketPair();
  try {
    const calls = forbidWritable(p.a);
    const w = new SocketWriter(p.a, () => {});
    assert.equal(w.direct, true, 'the handle write is available on this Node');
    const head = 'HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n';
    const got = readAll(p.b, head.length + 5 + 3 + 2);
    assert.equal(w.write(head), true);
    assert.equal(w.write(Buffer.from('hello')), true);
    assert.equal(w.writev(['abc', Buffer.from('de')]), true);
    assert.equal((await got).toString('latin1'), `${head}helloabcde`);
    assert.equal(calls.count, 0, 'no write went through the Writable');
    assert.equal(w.queued, false);
  } finally {
    p.close();
  }
});

test('a writev above the high-water mark that the kernel took at once is not backpressure', { timeout: 20_000 }, async () => {
  const p = await socketPair();
  try {
    p.b.resume();
    const w = new SocketWriter(p.a, () => {});
    assert.equal(w.writev(['HTTP/1.1 200 OK\r\ncontent-length: 65536\r\n\r\n', KIB32, KIB32]), true);
    assert.equal(w.queued, false);
    assert.equal(w.write(KIB32), true);
  } finally {
    p.close();
  }
});

test('a write left queued is backpressure; the writer calls back once the peer reads', { timeout: 20_000 }, async () => {
  const p = await socketPair();
  try {
    p.b.pause();
    let drained = 0;
    let resolveDrain: () => void = () => {};
    const drainedOnce = new Promise<void>((r) => (resolveDrain = r));
    const w = new SocketWriter(p.a, () => {
      drained++;
      resolveDrain();
    });
    const chunk = Buffer.alloc(256 * 1024, 'y');
    let written = 0;
    let ok = true;
    // Bounded: loopback buffers are a few MiB at most.
    while (ok && written < 64 * 1024 * 1024) {
      ok = written % (2 * chunk.length) === 0 ? w.write(chunk) : w.writev(['z', chunk]);
      written += chunk.length;
    }
    assert.equal(ok, false, `still no backpressure after ${written} bytes`);
    assert.equal(w.queued, true);
    assert.equal(drained, 0);
    p.b.resume();
    await drainedOnce;
    assert.equal(drained, 1);
    assert.equal(w.queued, false);
  } finally {
    p.close();
  }
});

test('bytes keep their order when writes through net.Socket and through the handle mix', { timeout: 20_000 }, async () => {
  const p = await socketPair();
  try {
    p.b.pause();
    const w = new SocketWriter(p.a, () => {});
    const chunk = Buffer.alloc(512 * 1024, 'a');
    // Fill the socket until a direct write stays queued in libuv.
    let sent = 0;
    while (w.write(chunk) && sent < 64 * 1024 * 1024) sent += chunk.length;
    sent += chunk.length;
    // A write through the Writable goes behind it, and the writer then writes through the Writable too.
    p.a.write(Buffer.from('B'));
    w.write(Buffer.from('C'));
    assert.equal(p.a.writableLength > 0 || w.queued, true);
    p.b.resume();
    const all = await readAll(p.b, sent + 2);
    assert.equal(all.length, sent + 2);
    assert.equal(all.subarray(0, sent).every((x) => x === 0x61), true);
    assert.equal(all.subarray(sent).toString('latin1'), 'BC');
  } finally {
    p.close();
  }
});

test('a TLS socket is written through net.Socket#write (its handle encrypts)', { timeout: 20_000 }, async () => {
  const pki = makePki();
  await pki.ca('ca');
  const leaf = await pki.leaf('server', 'ca', { dns: 'localhost' });
  const server = tlsCreateServer({ key: pki.read(leaf.key), cert: pki.read(leaf.cert) });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const accepted = once(server, 'secureConnection');
  const a = tlsConnect({ port: (server.address() as AddressInfo).port, host: '127.0.0.1', rejectUnauthorized: false });
  await once(a, 'secureConnect');
  const [b] = (await accepted) as [TLSSocket];
  try {
    const calls = forbidWritable(b);
    const w = new SocketWriter(b, () => {});
    assert.equal(w.direct, false);
    const got = readAll(a, 10);
    assert.equal(w.writev(['hello', Buffer.from('world')]), true);
    assert.equal((await got).toString(), 'helloworld');
    assert.equal(calls.count, 2);
  } finally {
    a.destroy();
    b.destroy();
    server.close();
    pki.cleanup();
  }
});

test('a destroyed socket swallows the write (the connection is closing)', { timeout: 20_000 }, async () => {
  const p = await socketPair();
  const w = new SocketWriter(p.a, () => {});
  p.a.destroy();
  assert.equal(w.write(KIB32), true);
  assert.equal(w.writev(['a', KIB32]), true);
  p.close();
});
