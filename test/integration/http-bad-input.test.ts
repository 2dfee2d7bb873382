/**
 * Bad input against the HTTP engine, as raw bytes on a socket. Pass criteria: the
 * 4xx/5xx status of the codec table (docs/http-codec.md), nothing reached the upstream (the echo
 * server counts requests and connections), the connection is closed, and the access log carries
 * the TG_HTTP_* code as tollgate_reason. Errors found in a body that was already being streamed
 * destroy the upstream connection (never reused).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { httpEngine } from '../../src/dataplane/http/engine.js';
import { header, rawClient, startHttpUpstream, type HttpUpstream } from '../helpers/http.js';
import { egressGateway, targetPortEntry, virtualService } from '../helpers/istio-yaml.js';
import { loopbackAddress, waitFor } from '../helpers/net.js';
import { EDGE_GATEWAY_ARGS, startGate, tempConfig, type TestGate } from '../helpers/tollgate.js';

const HEADER_TIMEOUT_MS = 500;

function config(echo: HttpUpstream): string {
  return `${targetPortEntry('echo', 'edge', 'echo.test', [echo.host], echo.port)}${egressGateway(['echo.test'], 'edge', 'gw')}${virtualService('echo', 'edge', ['echo.test'], ['gw'], `http:
- route: [{destination: {host: echo.test, port: {number: 80}}}]`)}`;
}

const H = 'Host: echo.test\r\n';

/** [name, bytes, status, code] — malformed heads: answered without contacting the upstream. */
const HEAD_CASES: [string, string, number, string][] = [
  ['Content-Length + Transfer-Encoding', `POST / HTTP/1.1\r\n${H}Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`, 400, 'TG_HTTP_CL_TE'],
  ['Content-Length 0x10', `POST / HTTP/1.1\r\n${H}Content-Length: 0x10\r\n\r\n`, 400, 'TG_HTTP_BAD_CONTENT_LENGTH'],
  ['Content-Length +5', `POST / HTTP/1.1\r\n${H}Content-Length: +5\r\n\r\nhello`, 400, 'TG_HTTP_BAD_CONTENT_LENGTH'],
  ['Content-Length "1 2"', `POST / HTTP/1.1\r\n${H}Content-Length: 1 2\r\n\r\n`, 400, 'TG_HTTP_BAD_CONTENT_LENGTH'],
  ['Content-Length 5,5', `POST / HTTP/1.1\r\n${H}Content-Length: 5,5\r\n\r\nhello`, 400, 'TG_HTTP_BAD_CONTENT_LENGTH'],
  ['two Content-Length lines', `POST / HTTP/1.1\r\n${H}Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello`, 400, 'TG_HTTP_BAD_CONTENT_LENGTH'],
  ['Transfer-Encoding ",chunked"', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: ,chunked\r\n\r\n0\r\n\r\n`, 400, 'TG_HTTP_BAD_TE'],
  ['Transfer-Encoding "chunked, identity"', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n`, 400, 'TG_HTTP_BAD_TE'],
  ['two Transfer-Encoding lines', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`, 400, 'TG_HTTP_BAD_TE'],
  ['Transfer-Encoding identity', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: identity\r\n\r\n`, 400, 'TG_HTTP_BAD_TE'],
  ['obs-fold', `GET / HTTP/1.1\r\n${H}X-A: a\r\n b\r\n\r\n`, 400, 'TG_HTTP_OBS_FOLD'],
  ['obs-fold hiding Transfer-Encoding', `POST / HTTP/1.1\r\n${H}X-A: a\r\n Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\nabc`, 400, 'TG_HTTP_OBS_FOLD'],
  ['bare LF', `GET / HTTP/1.1\n${H}\r\n`, 400, 'TG_HTTP_BARE_LF'],
  ['bare CR', `GET / HTTP/1.1\r\n${H}X-A: a\rX-B: b\r\n\r\n`, 400, 'TG_HTTP_BARE_CR'],
  ['NUL in a value', `GET / HTTP/1.1\r\n${H}X-A: a\u0000b\r\n\r\n`, 400, 'TG_HTTP_NUL'],
  ['space before colon', `GET / HTTP/1.1\r\n${H}Transfer-Encoding : chunked\r\n\r\n`, 400, 'TG_HTTP_SPACE_BEFORE_COLON'],
  ['header section > 16 KiB', `GET / HTTP/1.1\r\n${H}X-Big: ${'a'.repeat(17_000)}\r\n\r\n`, 431, 'TG_HTTP_HEADERS_TOO_LARGE'],
  ['> 100 header fields', `GET / HTTP/1.1\r\n${H}${Array.from({ length: 101 }, (_, i) => `X-${i}: v\r\n`).join('')}\r\n`, 431, 'TG_HTTP_TOO_MANY_HEADERS'],
  ['two Host fields', `GET / HTTP/1.1\r\n${H}Host: other.test\r\n\r\n`, 400, 'TG_HTTP_DUPLICATE_HOST'],
  ['missing Host', 'GET / HTTP/1.1\r\nX-A: b\r\n\r\n', 400, 'TG_HTTP_MISSING_HOST'],
  ['Host with userinfo', 'GET / HTTP/1.1\r\nHost: user@echo.test\r\n\r\n', 400, 'TG_HTTP_BAD_HOST'],
  ['version HTTP/1.2', `GET / HTTP/1.2\r\n${H}\r\n`, 505, 'TG_HTTP_VERSION_NOT_SUPPORTED'],
  ['version HTTP/2.0', `GET / HTTP/2.0\r\n${H}\r\n`, 505, 'TG_HTTP_VERSION_NOT_SUPPORTED'],
  ['version http/1.1', `GET / http/1.1\r\n${H}\r\n`, 400, 'TG_HTTP_BAD_VERSION'],
  ['version HTTP/1.10', `GET / HTTP/1.10\r\n${H}\r\n`, 400, 'TG_HTTP_BAD_VERSION'],
  ['method with a delimiter', `G(T / HTTP/1.1\r\n${H}\r\n`, 400, 'TG_HTTP_BAD_METHOD'],
  ['space in the target', `GET /a b HTTP/1.1\r\n${H}\r\n`, 400, 'TG_HTTP_BAD_REQUEST_LINE'],
  ['target not origin/absolute form', `GET foo HTTP/1.1\r\n${H}\r\n`, 400, 'TG_HTTP_BAD_TARGET'],
  ['CONNECT with a body', 'CONNECT echo.test:443 HTTP/1.1\r\nHost: echo.test:443\r\nContent-Length: 5\r\n\r\nhello', 400, 'TG_HTTP_CONNECT_BODY'],
];

/**
 * Malformed bodies: the upstream connection was opened for the request and is destroyed; the bytes
 * arrived with the head, so the head itself never went out (http-request-hygiene.test.ts checks
 * the bytes on a raw upstream).
 */
const BODY_CASES: [string, string, number, string][] = [
  ['chunk size not hex', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n`, 400, 'TG_HTTP_BAD_CHUNK'],
  ['chunk size 0x5', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n`, 400, 'TG_HTTP_BAD_CHUNK'],
  ['chunk data not followed by CRLF', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n3\r\nabcdef\r\n0\r\n\r\n`, 400, 'TG_HTTP_BAD_CHUNK'],
  ['chunk-extension flood', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n${`1;${'e'.repeat(500)}=v\r\nx\r\n`.repeat(40)}0\r\n\r\n`, 400, 'TG_HTTP_CHUNK_EXT_TOO_LONG'],
];

describe('HTTP engine: bad input', { concurrency: false }, () => {
  let echo: HttpUpstream;
  let gate: TestGate;
  let port: number;
  let cfg: { path: string; cleanup(): void };

  before(async () => {
    echo = await startHttpUpstream(loopbackAddress());
    cfg = tempConfig(config(echo));
    gate = await startGate(['-f', cfg.path, ...EDGE_GATEWAY_ARGS], {
      httpHandler: httpEngine({ headerTimeoutMs: HEADER_TIMEOUT_MS, lingerMs: 500 }),
    });
    port = gate.port(80);
  });

  after(async () => {
    await gate?.stop();
    await echo?.close();
    cfg?.cleanup();
  });

  async function rejected(bytes: string, status: number, code: string, upstreamContacted: boolean): Promise<void> {
    const reqs = echo.requests.length;
    const conns = echo.connections;
    const closedConns = echo.closedConnections;
    const logged = gate.logs.filter((r) => r.tollgate_reason === code).length;
    const c = await rawClient('127.0.0.1', port);
    c.send(Buffer.from(bytes, 'latin1'));
    const [r] = await c.responses(1);
    assert.equal(r!.status, status, c.data().slice(0, 200));
    assert.equal(r!.headers['connection'], 'close');
    assert.ok(await c.waitClose(2000), 'the proxy closed the connection');
    c.destroy();
    await waitFor(() => gate.logs.filter((x) => x.tollgate_reason === code).length > logged, 2000, `access log with ${code}`);
    const rec = gate.logs.filter((x) => x.tollgate_reason === code).at(-1)!;
    assert.equal(rec.response_code, status);
    assert.equal(rec.response_flags, 'DPE');
    assert.equal(echo.requests.length, reqs, 'no request reached the upstream');
    if (!upstreamContacted) assert.equal(echo.connections, conns, 'not even a connection to the upstream');
    else await waitFor(() => echo.closedConnections > closedConns, 2000, 'the upstream connection to be destroyed mid-request');
  }

  for (const [name, bytes, status, code] of HEAD_CASES) {
    it(`${name} -> ${status} ${code}`, () => rejected(bytes, status, code, false));
  }

  for (const [name, bytes, status, code] of BODY_CASES) {
    it(`${name} -> ${status} ${code}, the upstream connection is destroyed`, () => rejected(bytes, status, code, true));
  }

  it('" chunked" (OWS around the value) is the same coding: re-framed by the proxy, body intact', async () => {
    const c = await rawClient('127.0.0.1', port);
    c.send(`POST /ows HTTP/1.1\r\n${H}Transfer-Encoding:  chunked \r\n\r\n3\r\nabc\r\n0\r\n\r\n`);
    const [r] = await c.responses(1);
    c.destroy();
    assert.equal(r!.status, 200);
    const seen = JSON.parse(r!.body) as { body: string; rawHeaders: string[] };
    assert.equal(seen.body, 'abc');
    assert.equal(header(seen, 'transfer-encoding'), 'chunked');
  });

  it('absolute-form wins over Host: routed, authorised and forwarded on the target authority', async () => {
    const c = await rawClient('127.0.0.1', port);
    c.send('GET http://echo.test/abs HTTP/1.1\r\nHost: nowhere.test\r\n\r\nGET http://nowhere.test/abs2 HTTP/1.1\r\nHost: echo.test\r\n\r\n');
    const [a, b] = await c.responses(2);
    c.destroy();
    assert.equal(a!.status, 200);
    const seen = JSON.parse(a!.body) as { url: string; rawHeaders: string[] };
    assert.equal(seen.url, '/abs');
    assert.equal(header(seen, 'host'), 'echo.test');
    assert.equal(b!.status, 404, 'a Host naming a routed host does not rescue an unrouted target');
  });

  it('pipelining: good, bad, good -> 200, 400 and close; the third request is never forwarded', async () => {
    const before = echo.requests.length;
    const c = await rawClient('127.0.0.1', port);
    c.send(`GET /first HTTP/1.1\r\n${H}\r\nGET /second HTTP/1.1\r\n${H}${H}\r\nGET /third HTTP/1.1\r\n${H}\r\n`);
    const [a, b] = await c.responses(2);
    assert.ok(await c.waitClose(2000));
    c.destroy();
    assert.equal(a!.status, 200);
    assert.equal(b!.status, 400);
    assert.deepEqual(echo.requests.slice(before).map((r) => r.url), ['/first']);
  });

  it('Connection naming Content-Length / Transfer-Encoding / Host cannot change framing or authority (no smuggling)', async () => {
    const before = echo.requests.length;
    const c = await rawClient('127.0.0.1', port);
    c.send(`POST /c HTTP/1.1\r\n${H}Connection: Content-Length, Transfer-Encoding, Host\r\nContent-Length: 5\r\n\r\nhelloGET /next HTTP/1.1\r\n${H}\r\n`);
    const [a, b] = await c.responses(2);
    c.destroy();
    assert.equal(a!.status, 200);
    assert.equal(b!.status, 200);
    const got = echo.requests.slice(before);
    assert.deepEqual(got.map((r) => [r.url, r.body]), [['/c', 'hello'], ['/next', '']]);
    assert.equal(header(got[0]!, 'host'), 'echo.test');
  });

  it('slowloris: a head trickled byte by byte is answered 408 and closed at the header timeout', async () => {
    const c = await rawClient('127.0.0.1', port);
    const t0 = Date.now();
    c.send('GET / HTTP/1.1\r\n');
    const trickle = setInterval(() => {
      if (!c.closed()) c.send('X-A: b\r\n');
    }, 100);
    // The trickle never stops: a timer reset by each read would never fire. The upper bound is
    // only against that hang (a loaded machine delays timers); the lower one says it was the
    // header timeout, not something earlier.
    const closed = await c.waitClose(15_000);
    clearInterval(trickle);
    const took = Date.now() - t0;
    c.destroy();
    assert.ok(closed, 'closed while the client kept trickling');
    assert.ok(took >= HEADER_TIMEOUT_MS - 20, `closed after ${took} ms`);
    assert.match(c.data(), /^HTTP\/1\.1 408 /);
    const rec = await gate.waitForLog((r) => r.tollgate_reason === 'request_header_timeout');
    assert.equal(rec.response_code, 408);
  });

  it('a client that connects and says nothing is closed at the header timeout, without a response', async () => {
    const c = await rawClient('127.0.0.1', port);
    const t0 = Date.now();
    assert.ok(await c.waitClose(15_000)); // a bound against a hang only
    assert.ok(Date.now() - t0 >= HEADER_TIMEOUT_MS - 20);
    assert.equal(c.data(), '');
    c.destroy();
  });

  it('a cut head (client FIN mid-head) is answered 400 TG_HTTP_TRUNCATED', async () => {
    const c = await rawClient('127.0.0.1', port);
    c.socket.end(`GET / HTTP/1.1\r\n${H}X-A: b`);
    assert.ok(await c.waitClose(2000));
    assert.match(c.data(), /^HTTP\/1\.1 400 /);
    c.destroy();
  });
});
