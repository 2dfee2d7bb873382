/**
 * The HTTP/1.1 smuggling defences hold across HTTP/2 -> HTTP/1.1 translation. Node's own http2
 * client refuses to send most of these, so the requests are written as raw frames (preface,
 * SETTINGS, one HEADERS frame with a hand-made HPACK block: literal fields, no Huffman) to the
 * gateway's h2c port. Each must be refused — RST_STREAM, GOAWAY or a 4xx — and nothing may reach
 * the HTTP/1.1 upstream. A control request built the same way is forwarded, so the frames are valid.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { httpEngine } from '../../src/dataplane/http/engine.js';
import { header, startHttpUpstream, type HttpUpstream } from '../helpers/http.js';
import { targetPortEntry, virtualService } from '../helpers/istio-yaml.js';
import { loopbackAddress } from '../helpers/net.js';
import { EDGE_GATEWAY_ARGS, startGate, tempConfig, type TestGate } from '../helpers/tollgate.js';

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
const HEADERS = 0x1;
const RST_STREAM = 0x3;
const SETTINGS = 0x4;
const GOAWAY = 0x7;

function frame(type: number, flags: number, stream: number, payload: Buffer): Buffer {
  const h = Buffer.alloc(9);
  h.writeUIntBE(payload.length, 0, 3);
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(stream, 5);
  return Buffer.concat([h, payload]);
}

/** HPACK "literal header field without indexing, new name", lengths < 127, no Huffman. */
function literal(name: string, value: string): Buffer {
  const n = Buffer.from(name, 'latin1');
  const v = Buffer.from(value, 'latin1');
  if (n.length > 126 || v.length > 126) throw new Error('test fields are short');
  return Buffer.concat([Buffer.from([0x00, n.length]), n, Buffer.from([v.length]), v]);
}

interface Outcome {
  /** What came back on stream 1: 'rst', 'goaway', or the response's HEADERS frame (status undecoded). */
  readonly kind: 'rst' | 'goaway' | 'headers' | 'closed';
  /** The :status when the HEADERS frame used the static table for it (":status: 200" is 0x88, 400 is 0x8c, 404 is 0x8d). */
  readonly firstByte?: number;
}

/** Sends one request as raw frames; resolves with the first frame about stream 1 (or the connection's end). */
function rawH2(port: number, fields: readonly (readonly [string, string])[]): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const block = Buffer.concat(fields.map(([n, v]) => literal(n, v)));
    const sock = connect({ host: '127.0.0.1', port });
    let buf = Buffer.alloc(0);
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error('no answer within 5 s'));
    }, 5000);
    const done = (o: Outcome): void => {
      clearTimeout(timer);
      sock.destroy();
      resolve(o);
    };
    sock.on('connect', () => {
      // END_STREAM (0x1) | END_HEADERS (0x4)
      sock.write(Buffer.concat([PREFACE, frame(SETTINGS, 0, 0, Buffer.alloc(0)), frame(HEADERS, 0x5, 1, block)]));
    });
    sock.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 9) {
        const len = buf.readUIntBE(0, 3);
        if (buf.length < 9 + len) return;
        const type = buf[3]!;
        const stream = buf.readUInt32BE(5) & 0x7fffffff;
        const payload = buf.subarray(9, 9 + len);
        buf = buf.subarray(9 + len);
        if (type === GOAWAY) return done({ kind: 'goaway' });
        if (stream !== 1) continue;
        if (type === RST_STREAM) return done({ kind: 'rst' });
        if (type === HEADERS) return done({ kind: 'headers', firstByte: payload[0]! });
      }
    });
    sock.on('error', () => done({ kind: 'closed' }));
    sock.on('close', () => done({ kind: 'closed' }));
  });
}

const BASE: readonly (readonly [string, string])[] = [
  [':method', 'GET'],
  [':scheme', 'http'],
  [':path', '/smuggle'],
  [':authority', 'echo.test'],
];

describe('HTTP/2 -> HTTP/1.1 translation refuses what HTTP/1.1 would be smuggled with', { concurrency: false }, () => {
  let echo: HttpUpstream;
  let gate: TestGate;
  let port: number;
  let cfg: { path: string; cleanup(): void };

  before(async () => {
    echo = await startHttpUpstream(loopbackAddress());
    cfg = tempConfig(
      targetPortEntry('echo', 'edge', 'echo.test', [echo.host], echo.port, true) +
        `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: edge}
spec:
  selector: {istio: egressgateway}
  servers: [{port: {number: 80, name: http2, protocol: HTTP2}, hosts: [echo.test]}]
---
` +
        virtualService('echo', 'edge', ['echo.test'], ['gw'], `http:
- route: [{destination: {host: echo.test, port: {number: 80}}}]`),
    );
    gate = await startGate(['-f', cfg.path, ...EDGE_GATEWAY_ARGS], { httpHandler: httpEngine({ headerTimeoutMs: 5000 }) });
    port = gate.port(80);
  });

  after(async () => {
    await gate?.stop();
    await echo?.close();
    cfg?.cleanup();
  });

  it('control: the same raw frames without a bad field are forwarded (HEADERS :status 200)', async () => {
    const before = echo.requests.length;
    const o = await rawH2(port, [...BASE, ['x-ok', 'yes']]);
    assert.equal(o.kind, 'headers');
    assert.equal(o.firstByte, 0x88, ':status 200 (static table index 8)');
    assert.equal(echo.requests.length, before + 1);
    assert.equal(header(echo.requests.at(-1)!, 'x-ok'), 'yes');
  });

  const refused: readonly [string, readonly (readonly [string, string])[]][] = [
    ['transfer-encoding: chunked', [['transfer-encoding', 'chunked']]],
    ['connection: keep-alive', [['connection', 'keep-alive']]],
    ['connection naming another field', [['connection', 'x-secret'], ['x-secret', '1']]],
    ['keep-alive', [['keep-alive', 'timeout=5']]],
    ['proxy-connection', [['proxy-connection', 'keep-alive']]],
    ['upgrade: websocket', [['upgrade', 'websocket']]],
    ['te: gzip (only "trailers" is allowed)', [['te', 'gzip']]],
    ['host disagreeing with :authority', [['host', 'other.test']]],
    ['content-length on a request that ends with its head', [['content-length', '5']]],
  ];
  // nghttp2 drops these fields (RFC 9113 §8.2.1: the request is malformed; dropping the field is
  // what Node's nghttp2 does): the request may go on, but without the field, never with it.
  const dropped: readonly [string, readonly [string, string]][] = [
    ['a value with CR LF (a field line injected after it)', ['x-inject', 'a\r\nx-evil: 1']],
    ['a value with a bare LF', ['x-inject', 'a\nx-evil: 1']],
    ['a value with a bare CR', ['x-inject', 'a\rx-evil: 1']],
    ['a value with NUL', ['x-inject', 'a\0b']],
    ['an upper-case field name', ['X-Inject', '1']],
    ['a field name with a space', ['x inject', '1']],
    ['a field name with a colon', ['x-inject:x-evil', '1']],
  ];
  for (const [what, field] of dropped) {
    it(`refused or dropped, never forwarded: ${what}`, async () => {
      const before = echo.requests.length;
      const o = await rawH2(port, [...BASE, ['x-marker', 'kept'], field]);
      await new Promise((r) => setTimeout(r, 100));
      if (echo.requests.length === before) return; // refused
      assert.equal(o.kind, 'headers');
      const seen = echo.requests.at(-1)!;
      assert.equal(header(seen, 'x-marker'), 'kept', 'the forwarded request is this one');
      assert.equal(header(seen, 'x-inject'), undefined, 'the bad field is not forwarded');
      assert.equal(header(seen, 'x-evil'), undefined, 'no field was injected');
      assert.ok(!seen.rawHeaders.some((v) => /[\r\n\0]/.test(v)), 'no CR, LF or NUL upstream');
    });
  }
  const badPseudo: readonly [string, readonly (readonly [string, string])[]][] = [
    [':path with CR LF (a field line injected into the request head)', [[':method', 'GET'], [':scheme', 'http'], [':path', '/x HTTP/1.1\r\nx-evil: 1'], [':authority', 'echo.test']]],
    [':path with a space', [[':method', 'GET'], [':scheme', 'http'], [':path', '/x y'], [':authority', 'echo.test']]],
    [':method with a space', [[':method', 'GET /y'], [':scheme', 'http'], [':path', '/x'], [':authority', 'echo.test']]],
    [':authority with CR LF', [[':method', 'GET'], [':scheme', 'http'], [':path', '/x'], [':authority', 'echo.test\r\nx-evil: 1']]],
  ];
  for (const [what, fields] of badPseudo) {
    it(`refused, nothing forwarded: ${what}`, async () => {
      const before = echo.requests.length;
      const o = await rawH2(port, fields);
      assert.ok(o.kind !== 'headers' || o.firstByte !== 0x88, `answered ${o.kind} 0x${o.firstByte?.toString(16) ?? ''}`);
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(echo.requests.length, before, 'the upstream received nothing');
    });
  }
  for (const [what, extra] of refused) {
    it(`refused, nothing forwarded: ${what}`, async () => {
      const before = echo.requests.length;
      const o = await rawH2(port, [...BASE, ...extra]);
      const refusedByStatus = o.kind === 'headers' && o.firstByte !== 0x88;
      assert.ok(o.kind === 'rst' || o.kind === 'goaway' || o.kind === 'closed' || refusedByStatus, `answered ${o.kind} 0x${o.firstByte?.toString(16) ?? ''}`);
      // Give a forwarded request time to arrive before concluding none did.
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(echo.requests.length, before, 'the upstream received nothing');
    });
  }
});
