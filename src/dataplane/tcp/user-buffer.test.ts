/**
 * ReadBuffers: small reads are copied out of the shared buffer; the first bulk read gives the
 * reader its own buffer, of the size the reader asked for (an HTTP upstream asks for room for a
 * whole 64 KiB response, head included), reused while its writes complete at once.
 *
 * readIntoBuffers() on real loopback sockets: an accepted socket switched to onread reads hands
 * every byte to the callback, in order, and none to 'data'; its end of stream still arrives as
 * 'end'; pause() stops the handle's reads and resume() restarts them; a socket with bytes queued in
 * its Readable side, or one already switched, is refused; a switched socket cannot be adopted.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { test } from 'node:test';
import { canAdopt, ReadBuffers, readIntoBuffers, readsIntoBuffers } from './user-buffer.js';

test('a bulk read moves the reader to its own buffer of the size asked for, reused read after read', () => {
  for (const size of [64 * 1024, 128 * 1024]) {
    const r = new ReadBuffers(size);
    const shared = r.nextBuffer();
    shared.fill(1, 0, 100);
    const small = r.take(100, shared);
    assert.equal(small.length, 100);
    assert.notEqual(small.buffer, shared.buffer, 'a small read is a copy');
    assert.equal(r.nextBuffer(), shared, 'still on the shared buffer');
    r.take(20 * 1024, shared);
    const own = r.nextBuffer();
    assert.notEqual(own, shared);
    assert.equal(own.length, size);
    const chunk = r.take(size, own);
    assert.equal(chunk.length, size);
    assert.equal(r.lastOwn, true);
    assert.equal(r.nextBuffer(), own, 'reused for the next read');
    r.dropOwn();
    assert.notEqual(r.nextBuffer(), own, 'a new buffer when the last one may still be queued');
    assert.equal(r.nextBuffer().length, size);
  }
});

async function pair(): Promise<{ client: Socket; accepted: Socket; server: Server; close(): Promise<void> }> {
  const server = createServer({ allowHalfOpen: true, pauseOnConnect: true });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const acceptedP = once(server, 'connection') as Promise<[Socket]>;
  const client = connect({ host: '127.0.0.1', port: (server.address() as AddressInfo).port, allowHalfOpen: true });
  const [accepted] = await acceptedP;
  return {
    client,
    accepted,
    server,
    async close() {
      client.destroy();
      accepted.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

function until(cond: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  return new Promise((resolve, reject) => {
    const tick = (): void => {
      if (cond()) resolve();
      else if (Date.now() > deadline) reject(new Error('timed out'));
      else setTimeout(tick, 5);
    };
    tick();
  });
}

test('readIntoBuffers: bytes go to the callback in order (small and bulk reads), none to data; end still arrives', async () => {
  const p = await pair();
  const reads = new ReadBuffers();
  const got: Buffer[] = [];
  let dataEvents = 0;
  p.accepted.on('data', () => dataEvents++);
  const ended = once(p.accepted, 'end');
  assert.equal(readsIntoBuffers(p.accepted), false);
  assert.equal(
    readIntoBuffers(p.accepted, {
      buffer: reads.nextBuffer,
      callback: (n, buf) => {
        const c = reads.take(n, buf);
        got.push(reads.lastOwn ? Buffer.from(c) : c);
        return true;
      },
    }),
    true,
  );
  assert.equal(readsIntoBuffers(p.accepted), true);
  assert.equal(canAdopt(p.accepted), false, 'a socket reading into buffers is not adopted a second time');
  p.accepted.resume();
  const sent = Buffer.alloc(300_000);
  for (let i = 0; i < sent.length; i++) sent[i] = (i * 7 + (i >> 9)) & 0xff;
  p.client.write('hello ');
  await until(() => got.length > 0);
  p.client.end(sent);
  await ended;
  assert.equal(dataEvents, 0);
  assert.deepEqual(Buffer.concat(got), Buffer.concat([Buffer.from('hello '), sent]));
  await p.close();
});

test('readIntoBuffers: pause() stops the reads until resume()', async () => {
  const p = await pair();
  const reads = new ReadBuffers();
  let bytes = 0;
  readIntoBuffers(p.accepted, { buffer: reads.nextBuffer, callback: (n, buf) => ((bytes += reads.take(n, buf).length), true) });
  p.accepted.resume();
  p.client.write('abc');
  await until(() => bytes === 3);
  p.accepted.pause();
  p.client.write('defg');
  await new Promise((r) => setTimeout(r, 150));
  assert.equal(bytes, 3, 'no read while paused');
  p.accepted.resume();
  await until(() => bytes === 7);
  await p.close();
});

test('readIntoBuffers: refused (nothing changed) with bytes queued in the stream, or when already switched', async () => {
  const p = await pair();
  p.accepted.unshift(Buffer.from('queued'));
  const reads = new ReadBuffers();
  const cb = (n: number, buf: Uint8Array): boolean => (reads.take(n, buf), true);
  assert.equal(readIntoBuffers(p.accepted, { buffer: reads.nextBuffer, callback: cb }), false);
  assert.equal(readsIntoBuffers(p.accepted), false);
  assert.equal(String(p.accepted.read()), 'queued');
  assert.equal(readIntoBuffers(p.accepted, { buffer: reads.nextBuffer, callback: cb }), true);
  assert.equal(readIntoBuffers(p.accepted, { buffer: reads.nextBuffer, callback: cb }), false);
  await p.close();
});
