import { test } from 'node:test';
import assert from 'node:assert/strict';
import { constants } from 'node:http2';
import { H2_CANCEL, H2_FLAG_END_STREAM, H2_INTERNAL_ERROR, H2_NO_ERROR, H2_REFUSED_STREAM, http2Module } from './http2-module.js';

test('the protocol constants are the values node:http2 uses', () => {
  assert.equal(H2_NO_ERROR, constants.NGHTTP2_NO_ERROR);
  assert.equal(H2_INTERNAL_ERROR, constants.NGHTTP2_INTERNAL_ERROR);
  assert.equal(H2_REFUSED_STREAM, constants.NGHTTP2_REFUSED_STREAM);
  assert.equal(H2_CANCEL, constants.NGHTTP2_CANCEL);
  assert.equal(H2_FLAG_END_STREAM, constants.NGHTTP2_FLAG_END_STREAM);
  assert.equal(typeof http2Module().connect, 'function');
});
