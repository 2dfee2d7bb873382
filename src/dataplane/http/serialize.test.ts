import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { HttpParser } from './parser.js';
import type { HttpHead } from './head.js';
import { HttpParseError } from './errors.js';
import {
  CHUNK_END, LAST_CHUNK, chunkHeader, errorResponse, hopByHopFilter, lastChunk, reasonPhrase, simpleResponse, writeRequestHead, writeResponseHead,
} from './serialize.js';

/** Parses one complete message with our own strict parser. */
function parseOne(kind: 'request' | 'response', bytes: Buffer, method = 'GET'): { head: HttpHead; body: string; trailers: string[] } {
  let head: HttpHead | undefined;
  let body = '';
  let trailers: string[] = [];
  let done = false;
  const parser = new HttpParser(kind, {
    onHead: (h) => (head = h),
    onBody: (c) => (body += c.toString('latin1')),
    onTrailers: (t) => (trailers = t),
    onMessageComplete: () => (done = true),
    onError: (e) => assert.fail(e.message),
  });
  parser.expectResponseTo(method);
  assert.equal(parser.execute(bytes), bytes.length);
  assert.ok(done && head !== undefined, 'message complete');
  return { head, body, trailers };
}

test('writeRequestHead: one string, framing written by the serializer only', () => {
  const headers = ['Host', 'a.example', 'Content-Length', '999', 'transfer-encoding', 'gzip', 'X-Keep', 'Case'];
  assert.equal(
    writeRequestHead('POST', '/up', headers, 5),
    'POST /up HTTP/1.1\r\nHost: a.example\r\nX-Keep: Case\r\nContent-Length: 5\r\n\r\n',
  );
  assert.equal(writeRequestHead('POST', '/up', headers, 'chunked'), 'POST /up HTTP/1.1\r\nHost: a.example\r\nX-Keep: Case\r\nTransfer-Encoding: chunked\r\n\r\n');
  assert.equal(writeRequestHead('GET', '/', ['Host', 'a'], 'none'), 'GET / HTTP/1.1\r\nHost: a\r\n\r\n');
  assert.throws(() => writeRequestHead('GET', '/', [], -1), /TG_HTTP_BAD_FRAMING|Content-Length/);
  assert.throws(() => writeRequestHead('GET', '/', [], 1.5));
});

test('writeResponseHead: connection argument replaces any Connection field', () => {
  const s = writeResponseHead(200, 'OK', ['Connection', 'keep-alive', 'X-A', '1'], 0, 'close');
  assert.equal(s, 'HTTP/1.1 200 OK\r\nX-A: 1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
  assert.equal(writeResponseHead(204, 'No Content', ['Connection', 'x'], 'none'), 'HTTP/1.1 204 No Content\r\nConnection: x\r\n\r\n');
  assert.throws(() => writeResponseHead(42, 'x', [], 'none'));
});

test('latin1 values round-trip byte for byte', () => {
  const head = writeResponseHead(200, 'OK', ['X-Name', 'caf\u00e9'], 0);
  const { head: parsed } = parseOne('response', Buffer.from(head, 'latin1'));
  assert.deepEqual(parsed.headers, ['X-Name', 'caf\u00e9', 'Content-Length', '0']);
});

test('chunk framing round-trips through the parser', () => {
  assert.equal(chunkHeader(255), 'ff\r\n');
  assert.equal(chunkHeader(1), '1\r\n');
  assert.throws(() => chunkHeader(0), /positive/);
  assert.equal(LAST_CHUNK, '0\r\n\r\n');
  assert.equal(lastChunk(), LAST_CHUNK);
  const wire =
    writeResponseHead(200, 'OK', [], 'chunked') +
    chunkHeader(5) + 'hello' + CHUNK_END + chunkHeader(17) + ' world, chunked!!' + CHUNK_END +
    lastChunk(['X-Checksum', 'abc']);
  const { head, body, trailers } = parseOne('response', Buffer.from(wire, 'latin1'));
  assert.equal(head.chunked, true);
  assert.equal(body, 'hello world, chunked!!');
  assert.deepEqual(trailers, ['X-Checksum', 'abc']);
});

test('simpleResponse: Content-Length, Connection: close, parseable', () => {
  const buf = simpleResponse(431, 'header section too large: TG_HTTP_HEADERS_TOO_LARGE\n', ['X-Tollgate-Error', 'TG_HTTP_HEADERS_TOO_LARGE']);
  const { head, body } = parseOne('response', buf);
  assert.equal(head.kind === 'response' && head.statusCode, 431);
  assert.equal(head.kind === 'response' && head.reason, 'Request Header Fields Too Large');
  assert.equal(head.keepAlive, false);
  assert.deepEqual(head.connectionTokens, ['close']);
  assert.equal(head.contentLength, Buffer.byteLength(body));
  assert.match(body, /TG_HTTP_HEADERS_TOO_LARGE/);
  assert.ok(head.headers.includes('text/plain; charset=utf-8'));
});

test('simpleResponse: utf-8 body length in bytes, caller content type kept, no body on 204', () => {
  const buf = simpleResponse(403, 'refusé ✋', ['Content-Type', 'text/html']);
  const text = buf.toString('utf8');
  assert.ok(text.endsWith('refusé ✋'));
  assert.match(text, new RegExp(`Content-Length: ${Buffer.byteLength('refusé ✋')}\r\n`));
  assert.ok(!text.includes('text/plain'));
  assert.equal(simpleResponse(204, 'ignored').toString(), 'HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n');
  assert.equal(reasonPhrase(599), 'Unknown');
});

test('errorResponse: status and stable code from the parse error', () => {
  const text = errorResponse(new HttpParseError('TG_HTTP_CL_TE', 'request', 'both')).toString('latin1');
  assert.ok(text.startsWith('HTTP/1.1 400 Bad Request\r\n'));
  assert.ok(text.endsWith('\r\n\r\nBad Request (TG_HTTP_CL_TE)\n'));
  assert.match(errorResponse(new HttpParseError('TG_HTTP_BAD_CHUNK', 'response', 'x')).toString('latin1'), /^HTTP\/1\.1 502 Bad Gateway\r\n/);
  assert.match(errorResponse(new HttpParseError('TG_HTTP_HEADERS_TOO_LARGE', 'request', 'x')).toString('latin1'), /^HTTP\/1\.1 431 /);
});

test('hopByHopFilter removes connection-specific fields and the ones Connection names', () => {
  const headers = [
    'Host', 'a.example', 'Connection', 'keep-alive, X-Secret', 'Keep-Alive', 'timeout=5', 'Proxy-Connection', 'keep-alive',
    'TE', 'trailers', 'Trailer', 'X-T', 'Transfer-Encoding', 'chunked', 'Upgrade', 'websocket', 'Proxy-Authorization', 'Basic x',
    'X-Secret', 'hidden', 'x-secret', 'hidden too', 'Accept', '*/*',
  ];
  assert.deepEqual(hopByHopFilter(headers, ['keep-alive', 'x-secret']), ['Host', 'a.example', 'Accept', '*/*']);
});

test('hopByHopFilter never removes Content-Length or Host because Connection names them', () => {
  const headers = ['Host', 'a.example', 'Content-Length', '5', 'Connection', 'close, Content-Length, host'];
  assert.deepEqual(hopByHopFilter(headers, ['close', 'content-length', 'host']), ['Host', 'a.example', 'Content-Length', '5']);
});

test('hopByHopFilter keeps Upgrade when upgrading', () => {
  const headers = ['Host', 'a', 'Connection', 'Upgrade', 'Upgrade', 'websocket', 'Sec-WebSocket-Key', 'k'];
  assert.deepEqual(hopByHopFilter(headers, ['upgrade'], { keepUpgrade: true }), ['Host', 'a', 'Upgrade', 'websocket', 'Sec-WebSocket-Key', 'k']);
  assert.deepEqual(hopByHopFilter(headers, ['upgrade']), ['Host', 'a', 'Sec-WebSocket-Key', 'k']);
});

test('parse -> filter -> serialize -> parse keeps the end-to-end message', () => {
  const raw = 'POST /api?x=1 HTTP/1.1\r\nHost: a.example\r\nConnection: keep-alive, X-Hop\r\nX-Hop: 1\r\nTransfer-Encoding: chunked\r\nX-E2E: yes\r\n\r\n3\r\nabc\r\n0\r\n\r\n';
  const first = parseOne('request', Buffer.from(raw));
  assert.ok(first.head.kind === 'request');
  const forwarded = writeRequestHead(first.head.method, first.head.path, hopByHopFilter(first.head.headers, first.head.connectionTokens), first.body.length);
  const second = parseOne('request', Buffer.concat([Buffer.from(forwarded, 'latin1'), Buffer.from(first.body)]));
  assert.ok(second.head.kind === 'request');
  assert.equal(second.head.path, '/api?x=1');
  assert.deepEqual(second.head.headers, ['Host', 'a.example', 'X-E2E', 'yes', 'Content-Length', '3']);
  assert.equal(second.body, 'abc');
});
