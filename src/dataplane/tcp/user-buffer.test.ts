/**
 * ReadBuffers: small reads are copied out of the shared buffer; the first bulk read gives the
 * reader its own buffer, of the size the reader asked for (an HTTP upstream asks for room for a
 * whole 64 KiB response, head included), reused while its writes complete at once.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ReadBuffers } from './user-buffer.js';

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
