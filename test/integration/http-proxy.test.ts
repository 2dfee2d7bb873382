/**
 * HTTP engine, normal flows: Host routing through `tollgate run` (in-process) to an
 * echo upstream and to nginx, with curl and raw sockets as clients. Proves what the upstream sees
 * (Host, no X-Forwarded-For to an external host, rewrites, header mutations, hop-by-hop removal), the responses
 * (redirect, direct, timeout, fault), keep-alive pooling, pipelining, 100-continue, HEAD,
 * chunked bodies both ways, WebSocket upgrade, retries, and the access log / metrics.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { httpEngine } from '../../src/dataplane/http/engine.js';
import { header, parseResponse, rawClient, startHttpUpstream, startNginx, startRawUpstream, type HttpUpstream, type Nginx, type RawUpstream } from '../helpers/http.js';
import { egressGateway, targetPortEntry, virtualService } from '../helpers/istio-yaml.js';
import { loopbackAddress } from '../helpers/net.js';
import { EDGE_GATEWAY_ARGS, startGate, tempConfig, type TestGate } from '../helpers/tollgate.js';
import { haveTool, isCI, run } from '../helpers/tools.js';
import { freeTcpPort } from '../helpers/dns.js';

const ready = haveTool('curl') && haveTool('nginx');
const skip = ready ? false : 'needs curl and nginx';
if (!ready && isCI) throw new Error(`http-proxy: ${skip}; CI=true`);

const se = (name: string, host: string, endpoints: string[], targetPort: number): string => targetPortEntry(name, 'edge', host, endpoints, targetPort, true);

const dest = (h: string): string => `[{destination: {host: ${h}, port: {number: 80}}}]`;

function config(echo: HttpUpstream, nginx: { ip: string; port: number }, raw: RawUpstream, deadIp: string): string {
  return (
    se('echo', 'echo.test', [echo.host], echo.port) +
    se('nginx', 'nginx.test', [nginx.ip], nginx.port) +
    se('retry', 'retry.test', [raw.host], raw.port) +
    se('multi', 'multi.test', [deadIp, echo.host], echo.port) +
    egressGateway(['echo.test', 'nginx.test', 'retry.test', 'multi.test'], 'edge', 'gw') +
    `${virtualService('echo', 'edge', ['echo.test'], ['gw'], `http:
- name: rewrite
  match: [{uri: {prefix: /rewrite/}}]
  rewrite: {uri: /v2/, authority: backend.internal}
  headers:
    request: {set: {X-Env: prod}, remove: [X-Secret]}
    response: {add: {X-Via: tollgate}, remove: [x-upstream]}
  route: ${dest('echo.test')}
- name: redirect
  match: [{uri: {exact: /redirect}}]
  redirect: {uri: /new, authority: other.test}
- name: direct
  match: [{uri: {prefix: /direct}}]
  directResponse: {status: 418, body: {string: "teapot\\n"}}
- name: slow
  match: [{uri: {prefix: /timed/}}]
  timeout: 300ms
  route: ${dest('echo.test')}
- name: fault
  match: [{uri: {prefix: /fault}}]
  fault: {abort: {httpStatus: 503, percentage: {value: 100}}}
  route: ${dest('echo.test')}
- name: default
  route: ${dest('echo.test')}`)}---
${virtualService('others', 'edge', ['nginx.test', 'retry.test', 'multi.test'], ['gw'], `http:
- match: [{authority: {exact: nginx.test}}]
  route: ${dest('nginx.test')}
- match: [{authority: {exact: retry.test}}]
  retries: {attempts: 2, retryOn: 5xx}
  route: ${dest('retry.test')}
- match: [{authority: {exact: multi.test}}]
  route: ${dest('multi.test')}`)}`
  );
}

describe('HTTP engine: proxying through tollgate run', { skip, concurrency: false }, () => {
  let echo: HttpUpstream;
  let nginx: Nginx;
  let raw: RawUpstream;
  let gate: TestGate;
  let port: number;
  let cfg: { path: string; cleanup(): void };
  const echoIp = loopbackAddress();
  const nginxIp = loopbackAddress();
  const deadIp = loopbackAddress();

  const url = (path = '/'): string => `http://127.0.0.1:${port}${path}`;
  async function curl(args: string[]): Promise<{ status: number; headers: Record<string, string>; body: string; raw: string; code: number | null; stderr: string }> {
    const r = await run('curl', ['-sS', '-i', '--max-time', '5', ...args]);
    let text = r.stdout;
    // skip interim responses (100 Continue)
    while (/^HTTP\/1\.1 1\d\d/.test(text)) text = text.slice(text.indexOf('\r\n\r\n') + 4);
    const p = parseResponse(text, args.includes('-I'));
    return { status: p?.status ?? 0, headers: p?.headers ?? {}, body: p?.body ?? '', raw: r.stdout, code: r.status, stderr: r.stderr };
  }

  before(async () => {
    echo = await startHttpUpstream(echoIp);
    const nginxPort = await freeTcpPort();
    nginx = await startNginx((dir) => `  server { listen ${nginxIp}:${nginxPort}; root ${dir}/www; location / { } }`, nginxIp, nginxPort);
    let retryCount = 0;
    raw = await startRawUpstream(loopbackAddress(), (c) => {
      if (!c.received.endsWith('\r\n\r\n')) return;
      c.received = '';
      retryCount++;
      if (retryCount === 1) c.socket.write('HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\n\r\nnope');
      else c.socket.write('HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nyes');
    });
    cfg = tempConfig(config(echo, { ip: nginxIp, port: nginxPort }, raw, deadIp));
    gate = await startGate(['-f', cfg.path, ...EDGE_GATEWAY_ARGS], {
      httpHandler: httpEngine({ headerTimeoutMs: 2000, upstreamIdleTimeoutMs: 5000 }),
    });
    port = gate.port(80);
  });

  after(async () => {
    await gate?.stop();
    await echo?.close();
    await nginx?.stop();
    await raw?.close();
    cfg?.cleanup();
  });

  it('routes by Host; the (MESH_EXTERNAL) upstream sees Host, X-Forwarded-Proto, X-Request-Id and no X-Forwarded-For; logged and counted', async () => {
    const r = await curl(['-H', 'Host: echo.test', '-H', 'X-Forwarded-For: 203.0.113.9', url('/hello?x=1')]);
    assert.equal(r.status, 200, r.raw + r.stderr);
    const seen = JSON.parse(r.body) as { peer: string; url: string; rawHeaders: string[] };
    assert.equal(seen.url, '/hello?x=1');
    assert.equal(header(seen, 'host'), 'echo.test');
    assert.equal(header(seen, 'x-forwarded-for'), undefined, 'addresses do not leave to an external destination');
    assert.equal(header(seen, 'x-forwarded-proto'), 'http');
    assert.match(header(seen, 'x-request-id') ?? '', /^[0-9a-f-]{36}$/);
    assert.equal(r.headers['x-upstream'], 'echo');
    assert.equal(r.headers['x-upstream-private'], undefined, 'a field the upstream named in Connection is not forwarded');
    const rec = await gate.waitForLog((x) => x.path === '/hello?x=1');
    assert.equal(rec.response_code, 200);
    assert.equal(rec.response_flags, '-');
    assert.equal(rec.method, 'GET');
    assert.equal(rec.authority, 'echo.test');
    assert.equal(rec.protocol, 'HTTP/1.1');
    assert.equal(rec.upstream_cluster, 'outbound|80||echo.test');
    assert.equal(rec.upstream_host, `${echoIp}:${echo.port}`);
    assert.match(rec.upstream_local_address ?? '', /^127\.0\.0\.1:\d+$/);
    assert.equal(rec.route_name, 'edge/echo:default');
    assert.equal(rec.x_forwarded_for, '203.0.113.9');
    assert.equal(rec.request_id, header(seen, 'x-request-id'));
    assert.equal(rec.bytes_sent, r.body.length);
    assert.equal(rec.tollgate_reason, undefined);
    assert.ok(gate.metric('istio_requests_total', 'destination_service="echo.test"') >= 1);
    assert.ok(gate.metric('istio_request_duration_milliseconds_count', 'response_code="200"') >= 1);
  });

  it('normalizes the host (case, trailing dot) for routing and sends the canonical authority upstream', async () => {
    const r = await curl(['-H', 'Host: ECHO.Test.', url('/')]);
    assert.equal(r.status, 200, r.raw);
    assert.equal(header(JSON.parse(r.body) as { rawHeaders: string[] }, 'host'), 'echo.test');
  });

  it('a host with no virtual host: 404, flag NR, reason route_not_found, the connection stays usable', async () => {
    const c = await rawClient('127.0.0.1', port);
    c.send('GET /x HTTP/1.1\r\nHost: nowhere.test\r\n\r\nGET /y HTTP/1.1\r\nHost: echo.test\r\n\r\n');
    const [a, b] = await c.responses(2);
    c.destroy();
    assert.equal(a!.status, 404);
    assert.equal(a!.headers['x-tollgate-reason'], 'route_not_found');
    assert.equal(b!.status, 200);
    const rec = await gate.waitForLog((x) => x.authority === 'nowhere.test');
    assert.equal(rec.response_flags, 'NR');
    assert.equal(rec.tollgate_reason, 'route_not_found');
    assert.ok(gate.metric('tollgate_denied_total', 'reason="route_not_found"') >= 1);
  });

  it('loose IPv4 spellings in Host are read as the address (no virtual host for 127.0.0.1 -> 404)', async () => {
    const c = await rawClient('127.0.0.1', port);
    c.send('GET / HTTP/1.1\r\nHost: 2130706433\r\n\r\n');
    const [a] = await c.responses(1);
    c.destroy();
    assert.equal(a!.status, 404);
  });

  it('hop-by-hop fields are removed, Connection cannot remove Host or Content-Length', async () => {
    const before = echo.requests.length;
    const c = await rawClient('127.0.0.1', port);
    c.send('POST /hop HTTP/1.1\r\nHost: echo.test\r\nConnection: keep-alive, X-Secret, Content-Length, Host\r\nX-Secret: s3cret\r\nKeep-Alive: timeout=5\r\nProxy-Authorization: Basic Zm9vOmJhcg==\r\nTE: trailers\r\nX-Kept: yes\r\nContent-Length: 5\r\n\r\nhello');
    const [a] = await c.responses(1);
    c.destroy();
    assert.equal(a!.status, 200);
    assert.equal(echo.requests.length, before + 1);
    const seen = echo.requests.at(-1)!;
    assert.equal(seen.body, 'hello');
    assert.equal(header(seen, 'host'), 'echo.test');
    assert.equal(header(seen, 'content-length'), '5');
    assert.equal(header(seen, 'x-kept'), 'yes');
    for (const h of ['x-secret', 'keep-alive', 'proxy-authorization', 'te', 'connection']) assert.equal(header(seen, h), undefined, h);
  });

  it('rewrite.uri + rewrite.authority + request/response header mutations', async () => {
    const r = await curl(['-H', 'Host: echo.test', '-H', 'X-Secret: s', '-H', 'X-Env: dev', url('/rewrite/abc?q=1')]);
    assert.equal(r.status, 200, r.raw);
    const seen = JSON.parse(r.body) as { url: string; rawHeaders: string[] };
    assert.equal(seen.url, '/v2/abc?q=1');
    assert.equal(header(seen, 'host'), 'backend.internal');
    assert.equal(header(seen, 'x-env'), 'prod');
    assert.equal(header(seen, 'x-secret'), undefined);
    assert.equal(r.headers['x-via'], 'tollgate');
    assert.equal(r.headers['x-upstream'], undefined);
  });

  it('path normalization is applied to routing and to the forwarded path alike', async () => {
    const c = await rawClient('127.0.0.1', port);
    c.send('GET /a/%2e%2e/rewrite/./z HTTP/1.1\r\nHost: echo.test\r\n\r\n');
    const [a] = await c.responses(1);
    c.destroy();
    assert.equal(a!.status, 200);
    assert.equal((JSON.parse(a!.body) as { url: string }).url, '/v2/z', 'the dot segments resolved before the rewrite route matched');
  });

  it('encoded slashes are rejected (400, nothing forwarded, logged)', async () => {
    const before = echo.requests.length;
    const c = await rawClient('127.0.0.1', port);
    c.send('GET /public/..%2Fadmin HTTP/1.1\r\nHost: echo.test\r\n\r\n');
    const [a] = await c.responses(1);
    c.destroy();
    assert.equal(a!.status, 400);
    assert.equal(echo.requests.length, before);
    const rec = await gate.waitForLog((x) => x.path === '/public/..%2Fadmin');
    assert.equal(rec.tollgate_reason, 'encoded_slash_in_path');
  });

  it('redirect and direct response routes', async () => {
    const r1 = await curl(['-H', 'Host: echo.test', url('/redirect')]);
    assert.equal(r1.status, 301);
    assert.equal(r1.headers['location'], 'http://other.test/new');
    const r2 = await curl(['-H', 'Host: echo.test', url('/direct/x')]);
    assert.equal(r2.status, 418);
    assert.equal(r2.body, 'teapot\n');
  });

  it('route timeout: 504, flag UT, within the timeout (not the upstream delay)', async () => {
    const r = await curl(['-H', 'Host: echo.test', url('/timed/slow/3000')]);
    // The upstream answers 200 after 3 s: a 504 (flag UT below) is only ever the route timeout's
    // answer, given before the upstream's; no clock needed to tell.
    assert.equal(r.status, 504, r.raw);
    const rec = await gate.waitForLog((x) => x.path === '/timed/slow/3000');
    assert.equal(rec.response_flags, 'UT');
    assert.equal(rec.tollgate_reason, 'upstream_request_timeout');
  });

  it('fault abort: 503 with flag FI', async () => {
    const r = await curl(['-H', 'Host: echo.test', url('/fault')]);
    assert.equal(r.status, 503);
    const rec = await gate.waitForLog((x) => x.path === '/fault');
    assert.equal(rec.response_flags, 'FI');
  });

  it('retries (retryOn 5xx): the first 503 is retried on a new connection, the client sees 200', async () => {
    const r = await curl(['-H', 'Host: retry.test', url('/r')]);
    assert.equal(r.status, 200, r.raw);
    assert.equal(r.body, 'yes');
    assert.ok(raw.conns.length >= 2, 'the 503 connection was dropped, a new one carried the retry');
    const rec = await gate.waitForLog((x) => x.authority === 'retry.test');
    assert.equal(rec.response_code, 200);
  });

  it('Istio default retries: 503 from the upstream is retried twice, then returned', async () => {
    const before = echo.requests.length;
    const r = await curl(['-H', 'Host: echo.test', url('/status/503')]);
    assert.equal(r.status, 503);
    assert.equal(echo.requests.length - before, 3);
    const rec = await gate.waitForLog((x) => x.path === '/status/503');
    assert.equal(rec.response_flags, 'URX');
  });

  it('connect-failure retry moves to another endpoint (one endpoint refuses)', async () => {
    for (let i = 0; i < 4; i++) {
      const r = await curl(['-H', 'Host: multi.test', url(`/m${i}`)]);
      assert.equal(r.status, 200, r.raw);
    }
  });

  it('nginx upstream: 1 KiB and 1 MiB bodies, HEAD keeps Content-Length without a body, keep-alive reuse', async () => {
    const created0 = gate.metric('tollgate_http_upstream_connections_created_total', 'nginx.test');
    const r = await run('curl', ['-sS', '--max-time', '5', '-H', 'Host: nginx.test', '-w', '%{http_code} %{size_download}\\n', ...['/1k', '/1m', '/1k', '/1k'].flatMap((p) => ['-o', '/dev/null', url(p)])]);
    assert.equal(r.stdout, '200 1024\n200 1048576\n200 1024\n200 1024\n', r.stderr);
    const h = await curl(['-I', '-H', 'Host: nginx.test', url('/1m')]);
    assert.equal(h.status, 200);
    assert.equal(h.headers['content-length'], '1048576');
    assert.equal(h.body, '');
    const created = gate.metric('tollgate_http_upstream_connections_created_total', 'nginx.test') - created0;
    assert.ok(created <= 2, `upstream connections reused (created ${created})`);
    assert.ok(gate.metric('tollgate_http_upstream_connections_reused_total', 'nginx.test') >= 3);
  });

  it('pipelined requests are answered in order, one at a time', async () => {
    const c = await rawClient('127.0.0.1', port);
    c.send('GET /p1 HTTP/1.1\r\nHost: echo.test\r\n\r\nGET /timed/slow/100 HTTP/1.1\r\nHost: echo.test\r\n\r\nGET /p3 HTTP/1.1\r\nHost: echo.test\r\n\r\n');
    const rs = await c.responses(3);
    c.destroy();
    assert.deepEqual(rs.map((x) => (JSON.parse(x.body) as { url: string }).url), ['/p1', '/timed/slow/100', '/p3']);
  });

  it('request bodies: Content-Length and chunked (re-framed), chunked responses, HTTP/1.0 client', async () => {
    const big = 'z'.repeat(200_000);
    const pr = await run('curl', ['-sS', '--max-time', '5', '-H', 'Host: echo.test', '--data-binary', '@-', url('/post')], { input: big });
    const r = { status: pr.status === 0 ? 200 : 0, body: pr.stdout };
    assert.equal(r.status, 200);
    assert.equal((JSON.parse(r.body) as { body: string }).body.length, 200_000);
    const c = await rawClient('127.0.0.1', port);
    c.send('POST /chunked HTTP/1.1\r\nHost: echo.test\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n');
    const [a] = await c.responses(1);
    assert.equal((JSON.parse(a!.body) as { body: string }).body, 'hello world');
    c.send('GET /stream/5 HTTP/1.1\r\nHost: echo.test\r\n\r\n');
    const [, s] = await c.responses(2);
    assert.equal(s!.headers['transfer-encoding'], 'chunked');
    assert.equal(s!.body, 'chunk 0\nchunk 1\nchunk 2\nchunk 3\nchunk 4\n');
    c.destroy();
    const c10 = await rawClient('127.0.0.1', port);
    c10.send('GET /stream/3 HTTP/1.0\r\nHost: echo.test\r\n\r\n');
    assert.ok(await c10.waitClose(3000), 'HTTP/1.0 response without length ends with the connection');
    assert.match(c10.data(), /^HTTP\/1\.1 200 [^]*\r\nConnection: close\r\n\r\nchunk 0\nchunk 1\nchunk 2\n$/);
  });

  it('Expect: 100-continue: 100 is sent once the request is routed and the upstream connected', async () => {
    const c = await rawClient('127.0.0.1', port);
    c.send('POST /expect HTTP/1.1\r\nHost: echo.test\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n');
    const [cont] = await c.responses(1);
    assert.equal(cont!.status, 100);
    c.send('data');
    await new Promise((r) => setTimeout(r, 200));
    const all = c.data();
    c.destroy();
    const final = parseResponse(all.slice(all.indexOf('\r\n\r\n') + 4))!;
    assert.equal(final.status, 200);
    const seen = JSON.parse(final.body) as { body: string; rawHeaders: string[] };
    assert.equal(seen.body, 'data');
    assert.equal(header(seen, 'expect'), undefined, 'the proxy answered the expectation itself');
    // Denied requests get the final answer instead of 100 (the client never sends the body).
    const d = await rawClient('127.0.0.1', port);
    d.send('POST / HTTP/1.1\r\nHost: nowhere.test\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n');
    const [den] = await d.responses(1);
    assert.equal(den!.status, 404);
    assert.ok(await d.waitClose(2000), 'closed: the unread body cannot be skipped safely');
    d.destroy();
  });

  it('WebSocket upgrade: 101 passes through, then bytes flow both ways; one log line at the end', async () => {
    const c = await rawClient('127.0.0.1', port);
    c.send('GET /ws HTTP/1.1\r\nHost: echo.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n');
    const [u] = await c.responses(1);
    assert.equal(u!.status, 101);
    assert.equal(u!.headers['upgrade'], 'websocket');
    c.send('ping-frame-bytes');
    await new Promise((r) => setTimeout(r, 150));
    assert.ok(c.data().endsWith('ping-frame-bytes'), JSON.stringify(c.data()));
    const seen = echo.requests.at(-1)!;
    assert.equal(header(seen, 'upgrade'), 'websocket');
    c.socket.end();
    const rec = await gate.waitForLog((x) => x.path === '/ws');
    assert.equal(rec.response_code, 101);
    assert.equal(rec.bytes_received, 16);
    c.destroy();
  });

  it('CONNECT on an HTTP listener is refused (405)', async () => {
    const c = await rawClient('127.0.0.1', port);
    c.send('CONNECT echo.test:443 HTTP/1.1\r\nHost: echo.test:443\r\n\r\n');
    const [a] = await c.responses(1);
    c.destroy();
    assert.equal(a!.status, 405);
  });
});
