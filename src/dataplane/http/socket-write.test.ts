/**
 * Downstream writes with real loopback sockets: a writev the kernel took at once reports no
 * backpressure even above Writable's 16 KiB high-water mark (else every 64 KiB response would pause
 * and resume the upstream), and a write that stays queued reports it, with a 'drain' after.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { test } from 'node:test';
import { writeOut, writevOut } from './socket-write.js';

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

const KIB32 = Buffer.alloc(32 * 1024, 'x');

test('a writev above the high-water mark that the kernel took at once is not backpressure', async () => {
  const p = await socketPair();
  try {
    p.b.resume();
    // The premise: a write inside cork() says false although uncork() leaves nothing queued.
    p.a.cork();
    assert.equal(p.a.write(KIB32), false);
    p.a.uncork();
    assert.equal(p.a.writableLength, 0);
    await once(p.a, 'drain');
    assert.equal(writevOut(p.a, ['HTTP/1.1 200 OK\r\ncontent-length: 32768\r\n\r\n', KIB32]), true);
    assert.equal(p.a.writableLength, 0);
    await once(p.a, 'drain');
    assert.equal(writeOut(p.a, KIB32), true);
    assert.equal(p.a.writableLength, 0);
  } finally {
    p.close();
  }
});

test('a write left queued is backpressure, and drain follows once the peer reads', async () => {
  const p = await socketPair();
  try {
    p.b.pause();
    const chunk = Buffer.alloc(256 * 1024, 'y');
    let written = 0;
    let ok = true;
    // Bounded: loopback buffers are a few MiB at most.
    while (ok && written < 64 * 1024 * 1024) {
      ok = written % (2 * chunk.length) === 0 ? writeOut(p.a, chunk) : writevOut(p.a, ['z', chunk]);
      written += chunk.length;
    }
    assert.equal(ok, false, `still no backpressure after ${written} bytes`);
    assert.ok(p.a.writableLength > 0);
    const drained = once(p.a, 'drain');
    p.b.resume();
    await drained;
    assert.equal(p.a.writableLength, 0);
  } finally {
    p.close();
  }
});

test('a destroyed socket swallows the write (the connection is closing)', async () => {
  const p = await socketPair();
  p.a.destroy();
  assert.equal(writeOut(p.a, KIB32), true);
  assert.equal(writevOut(p.a, ['a', KIB32]), true);
  p.close();
});
