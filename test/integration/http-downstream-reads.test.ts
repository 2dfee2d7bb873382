/**
 * Downstream HTTP/1.1 reads into reused buffers: once a plain-TCP client connection has shown
 * HTTP/1.x, the proxy's accepted socket reads through net's `onread` (no 'data' events). Proves
 * the switch happens, and that what follows it is forwarded exactly: heads split across many
 * reads, pipelined requests, a body large enough for bulk reads (the reader's own buffer), and an
 * upgrade whose tunnel is then fed from those reads.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { httpEngine } from '../../src/dataplane/http/engine.js';
import { readsIntoBuffers } from '../../src/dataplane/tcp/user-buffer.js';
import { acceptedOn, header, rawClient, startHttpUpstream, type HttpUpstream, type SeenRequest } from '../helpers/http.js';
import { egressGateway, targetPortEntry, virtualService } from '../helpers/istio-yaml.js';
import { loopbackAddress } from '../helpers/net.js';
import { EDGE_GATEWAY_ARGS, startGate, tempConfig, type TestGate } from '../helpers/tollgate.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('HTTP engine: downstream reads into reused buffers', { concurrency: false }, () => {
  let echo: HttpUpstream;
  let gate: TestGate;
  let port: number;
  let cfg: { path: string; cleanup(): void };

  before(async () => {
    echo = await startHttpUpstream(loopbackAddress());
    const yaml =
      targetPortEntry('echo', 'edge', 'echo.test', [echo.host], echo.port, true) +
      egressGateway(['echo.test'], 'edge', 'gw') +
      virtualService('echo', 'edge', ['echo.test'], ['gw'], `http:\n- route: [{destination: {host: echo.test, port: {number: 80}}}]`);
    cfg = tempConfig(yaml);
    gate = await startGate(['-f', cfg.path, ...EDGE_GATEWAY_ARGS], { httpHandler: httpEngine({ headerTimeoutMs: 3000 }) });
    port = gate.port(80);
  });

  after(async () => {
    await gate?.stop();
    await echo?.close();
    cfg?.cleanup();
  });

  it('switches after the first request; split heads and pipelined requests after it are forwarded exactly', async () => {
    const c = await rawClient('127.0.0.1', port);
    c.send('GET /first HTTP/1.1\r\nHost: echo.test\r\n\r\n');
    await c.responses(1);
    const mine = acceptedOn(port).filter((s) => s.remotePort === c.socket.localPort);
    assert.equal(mine.length, 1);
    assert.equal(readsIntoBuffers(mine[0]!), true, 'the accepted socket reads through onread after the first request');

    // A head sent a few bytes at a time: each piece is its own read.
    const split = 'GET /split?q=1 HTTP/1.1\r\nHost: echo.test\r\nX-One: a b  c\r\nx-two:\tv2\r\n\r\n';
    for (let i = 0; i < split.length; i += 7) {
      c.send(split.slice(i, i + 7));
      await sleep(3);
    }
    // Three pipelined requests in one write, the middle one with a body.
    c.send('GET /p1 HTTP/1.1\r\nHost: echo.test\r\n\r\nPOST /p2 HTTP/1.1\r\nHost: echo.test\r\nContent-Length: 5\r\n\r\nhelloGET /p3 HTTP/1.1\r\nHost: echo.test\r\n\r\n');
    const rs = await c.responses(5, 5000);
    const seen = rs.map((r) => JSON.parse(r.body) as SeenRequest);
    assert.deepEqual(seen.map((s) => s.url), ['/first', '/split?q=1', '/p1', '/p2', '/p3']);
    assert.equal(header(seen[1]!, 'x-one'), 'a b  c');
    assert.equal(header(seen[1]!, 'x-two'), 'v2');
    assert.equal(seen[3]!.method, 'POST');
    assert.equal(seen[3]!.body, 'hello');
    c.destroy();
  });

  it('a large body after the switch (bulk reads) arrives intact', async () => {
    const c = await rawClient('127.0.0.1', port);
    c.send('GET /warm HTTP/1.1\r\nHost: echo.test\r\n\r\n');
    await c.responses(1);
    let body = '';
    for (let i = 0; body.length < 600_000; i++) body += `${i.toString(36)}-`;
    c.send(`POST /upload HTTP/1.1\r\nHost: echo.test\r\nContent-Length: ${body.length}\r\n\r\n`);
    for (let i = 0; i < body.length; i += 100_000) c.send(body.slice(i, i + 100_000));
    c.send('GET /after HTTP/1.1\r\nHost: echo.test\r\n\r\n');
    const rs = await c.responses(3, 10_000);
    const up = JSON.parse(rs[1]!.body) as SeenRequest;
    assert.equal(up.url, '/upload');
    assert.equal(up.body.length, body.length);
    assert.ok(up.body === body, 'the body arrives byte for byte');
    assert.equal((JSON.parse(rs[2]!.body) as SeenRequest).url, '/after');
    c.destroy();
  });

  it('an upgrade on a switched connection: the tunnel gets the bytes read after the 101', async () => {
    const c = await rawClient('127.0.0.1', port);
    c.send('GET /warm HTTP/1.1\r\nHost: echo.test\r\n\r\n');
    await c.responses(1);
    const before = c.data().length;
    c.send('GET /ws HTTP/1.1\r\nHost: echo.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n');
    for (let i = 0; i < 200 && !c.data().slice(before).includes('\r\n\r\n'); i++) await sleep(10);
    assert.match(c.data().slice(before), /^HTTP\/1\.1 101 /);
    c.send('ping-frame-bytes');
    for (let i = 0; i < 200 && !c.data().endsWith('ping-frame-bytes'); i++) await sleep(10);
    assert.ok(c.data().endsWith('ping-frame-bytes'), JSON.stringify(c.data().slice(before)));
    c.socket.end();
    const rec = await gate.waitForLog((x) => x.path === '/ws');
    assert.equal(rec.response_code, 101);
    assert.equal(rec.bytes_received, 16);
    c.destroy();
  });
});
