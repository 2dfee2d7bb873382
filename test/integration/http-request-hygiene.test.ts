/**
 * What a client cannot make the gateway send upstream, and what it cannot make it parse:
 * - X-Forwarded-For never reaches a MESH_EXTERNAL destination (pod and client addresses stay
 *   inside); a MESH_INTERNAL one gets the client address appended as before;
 * - client-sent x-envoy-* and header names with `_` (Transfer_Encoding) are removed at a gateway,
 *   or refused with 400 under --headers-with-underscores reject;
 * - a refused CONNECT (405) closes the connection: bytes after it are never parsed as a request;
 * - a malformed chunked body that arrived with the head is refused (400) before the head is
 *   written upstream: the upstream sees no byte of it, on a fresh and on a pooled connection.
 * Clients are curl and raw sockets; upstreams a recording echo server and a raw TCP server.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { httpEngine } from '../../src/dataplane/http/engine.js';
import { header, rawClient, startHttpUpstream, startRawUpstream, type HttpUpstream, type RawUpstream } from '../helpers/http.js';
import { egressGateway, targetPortEntry, virtualService } from '../helpers/istio-yaml.js';
import { loopbackAddress, waitFor } from '../helpers/net.js';
import { EDGE_GATEWAY_ARGS, startGate, tempConfig, withGateConfig, type TestGate } from '../helpers/tollgate.js';
import { haveTool, isCI, run } from '../helpers/tools.js';

const ready = haveTool('curl');
const skip = ready ? false : 'needs curl';
if (!ready && isCI) throw new Error(`http-request-hygiene: ${skip}; CI=true`);

const route = (host: string): string => `- match: [{authority: {exact: ${host}}}]\n  route: [{destination: {host: ${host}, port: {number: 80}}}]`;

/** A MESH_INTERNAL ServiceEntry (the helper writes MESH_EXTERNAL or Istio's default, which is external too). */
function internalEntry(name: string, host: string, address: string, port: number): string {
  return targetPortEntry(name, 'edge', host, [address], port).replace('  resolution: STATIC', '  location: MESH_INTERNAL\n  resolution: STATIC');
}

function config(echo: HttpUpstream, raw: RawUpstream): string {
  const hosts = ['external.test', 'internal.test', 'fresh.test', 'pooled.test'];
  return (
    targetPortEntry('external', 'edge', 'external.test', [echo.host], echo.port, true) +
    internalEntry('internal', 'internal.test', echo.host, echo.port) +
    targetPortEntry('fresh', 'edge', 'fresh.test', [raw.host], raw.port, true) +
    targetPortEntry('pooled', 'edge', 'pooled.test', [raw.host], raw.port, true) +
    egressGateway(hosts, 'edge', 'gw') +
    virtualService('all', 'edge', hosts, ['gw'], `http:\n${hosts.map(route).join('\n')}`)
  );
}

describe('HTTP engine: request hygiene at the edge', { skip, concurrency: false }, () => {
  let echo: HttpUpstream;
  let raw: RawUpstream;
  let gate: TestGate;
  let port: number;
  let cfg: { path: string; cleanup(): void };

  const curl = async (host: string, headers: string[]): Promise<{ seen: { rawHeaders: string[]; body: string }; status: string }> => {
    const r = await run('curl', ['-sS', '--max-time', '5', '-w', '\n%{http_code}', ...headers.flatMap((h) => ['-H', h]), '-H', `Host: ${host}`, `http://127.0.0.1:${port}/h`]);
    const nl = r.stdout.lastIndexOf('\n');
    const status = r.stdout.slice(nl + 1);
    return { status, seen: status === '200' ? (JSON.parse(r.stdout.slice(0, nl)) as { rawHeaders: string[]; body: string }) : { rawHeaders: [], body: '' } };
  };

  before(async () => {
    echo = await startHttpUpstream(loopbackAddress());
    // One keep-alive answer per complete bodyless request head; `received` keeps every byte.
    const answered = new Map<unknown, number>();
    raw = await startRawUpstream(loopbackAddress(), (c) => {
      const heads = c.received.split('\r\n\r\n').length - 1;
      for (let n = answered.get(c) ?? 0; n < heads; n++) c.socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
      answered.set(c, heads);
    });
    cfg = tempConfig(config(echo, raw));
    gate = await startGate(['-f', cfg.path, ...EDGE_GATEWAY_ARGS], { httpHandler: httpEngine({ lingerMs: 300 }) });
    port = gate.port(80);
  });

  after(async () => {
    await gate?.stop();
    await echo?.close();
    await raw?.close();
    cfg?.cleanup();
  });

  it('no X-Forwarded-For to a MESH_EXTERNAL destination, neither received nor appended; logged as received', async () => {
    const r = await curl('external.test', ['X-Forwarded-For: 10.1.2.3']);
    assert.equal(r.status, '200');
    assert.equal(header(r.seen, 'x-forwarded-for'), undefined, 'the pod address 10.1.2.3 and the client address stay inside');
    const rec = await gate.waitForLog((x) => x.authority === 'external.test');
    assert.equal(rec.x_forwarded_for, '10.1.2.3');
  });

  it('a MESH_INTERNAL destination gets the client address appended', async () => {
    const r = await curl('internal.test', ['X-Forwarded-For: 10.1.2.3']);
    assert.equal(r.status, '200');
    assert.equal(header(r.seen, 'x-forwarded-for'), '10.1.2.3, 127.0.0.1');
  });

  it('client-sent x-envoy-* and underscore names (Transfer_Encoding) are removed at a gateway, and counted', async () => {
    const underscoreBefore = gate.metric('tollgate_http_request_headers_dropped_total', 'reason="underscore"');
    const envoyBefore = gate.metric('tollgate_http_request_headers_dropped_total', 'reason="x_envoy"');
    const r = await curl('internal.test', ['X-Envoy-Retry-On: 5xx', 'x-envoy-internal: true', 'Transfer_Encoding: chunked', 'X_Forwarded_For: 10.9.9.9', 'X-Keep: yes']);
    assert.equal(r.status, '200');
    const names = r.seen.rawHeaders.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase());
    for (const gone of ['x-envoy-retry-on', 'x-envoy-internal', 'transfer_encoding', 'x_forwarded_for']) assert.ok(!names.includes(gone), `${gone} reached the upstream: ${names.join(',')}`);
    assert.equal(header(r.seen, 'x-keep'), 'yes');
    assert.equal(gate.metric('tollgate_http_request_headers_dropped_total', 'reason="underscore"') - underscoreBefore, 2);
    assert.equal(gate.metric('tollgate_http_request_headers_dropped_total', 'reason="x_envoy"') - envoyBefore, 2);
  });

  it('a refused CONNECT closes the connection: the bytes after it are never parsed as a request', async () => {
    const before = echo.requests.length;
    const c = await rawClient('127.0.0.1', port);
    c.send('CONNECT internal.test:443 HTTP/1.1\r\nHost: internal.test:443\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: internal.test\r\n\r\n');
    const [r] = await c.responses(1);
    assert.equal(r!.status, 405);
    assert.equal(r!.headers['connection'], 'close');
    assert.ok(await c.waitClose(3000), 'closed after the refusal');
    c.destroy();
    // The same refusal with the next request written only after the 405 arrived.
    const d = await rawClient('127.0.0.1', port);
    d.send('CONNECT internal.test:443 HTTP/1.1\r\nHost: internal.test:443\r\n\r\n');
    await d.responses(1);
    if (!d.closed()) d.send('GET /smuggled-later HTTP/1.1\r\nHost: internal.test\r\n\r\n');
    assert.ok(await d.waitClose(3000));
    assert.equal((d.data().match(/HTTP\/1\.1 /g) ?? []).length, 1, d.data());
    d.destroy();
    await new Promise((res) => setTimeout(res, 200));
    assert.equal(echo.requests.length, before, 'nothing reached the upstream');
  });

  async function badChunkedBody(host: string): Promise<void> {
    const c = await rawClient('127.0.0.1', port);
    c.send(`POST /bad HTTP/1.1\r\nHost: ${host}\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n`);
    const [r] = await c.responses(1);
    assert.equal(r!.status, 400);
    assert.ok(await c.waitClose(3000));
    c.destroy();
  }

  it('an invalid chunked body that came with the head: 400, and a fresh upstream connection receives nothing', async () => {
    const conns = raw.conns.length;
    await badChunkedBody('fresh.test');
    const rec = await gate.waitForLog((x) => x.path === '/bad' && x.authority === 'fresh.test');
    assert.equal(rec.tollgate_reason, 'TG_HTTP_BAD_CHUNK');
    await new Promise((res) => setTimeout(res, 200));
    for (const c of raw.conns.slice(conns)) assert.equal(c.received, '', 'the upstream saw bytes of the refused request');
  });

  it('... and a pooled keep-alive connection receives nothing either (it is closed, not reused)', async () => {
    // Warm the pool: one good request leaves an idle connection to pooled.test.
    const warm = await rawClient('127.0.0.1', port);
    warm.send('GET /warm HTTP/1.1\r\nHost: pooled.test\r\n\r\n');
    const [w] = await warm.responses(1);
    warm.destroy();
    assert.equal(w!.status, 200);
    const pooled = raw.conns.at(-1)!;
    const warmBytes = pooled.received;
    assert.match(warmBytes, /^GET \/warm /);
    const conns = raw.conns.length;
    await badChunkedBody('pooled.test');
    const rec = await gate.waitForLog((x) => x.path === '/bad' && x.authority === 'pooled.test');
    assert.equal(rec.upstream_host, `${raw.host}:${raw.port}`, 'the pooled connection was taken for it');
    await waitFor(() => pooled.closed || undefined, 3000, 'the pooled connection closed');
    assert.equal(pooled.received, warmBytes, 'the pooled upstream connection received bytes of the refused request');
    for (const c of raw.conns.slice(conns)) assert.equal(c.received, '');
  });

  it('--headers-with-underscores reject: 400 TG_HTTP_UNDERSCORE_HEADER, nothing forwarded', async () => {
    await withGateConfig(config(echo, raw), [...EDGE_GATEWAY_ARGS, '--headers-with-underscores', 'reject'], async (g) => {
      const before = echo.requests.length;
      const c = await rawClient('127.0.0.1', g.port(80));
      c.send('GET /u HTTP/1.1\r\nHost: internal.test\r\nTransfer_Encoding: chunked\r\n\r\n');
      const [r] = await c.responses(1);
      c.destroy();
      assert.equal(r!.status, 400);
      const rec = await g.waitForLog((x) => x.tollgate_reason === 'TG_HTTP_UNDERSCORE_HEADER');
      assert.equal(rec.response_code, 400);
      assert.equal(echo.requests.length, before);
    });
  });
});
