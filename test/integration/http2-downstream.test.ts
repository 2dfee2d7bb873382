/**
 * Downstream HTTP/2 with prior knowledge (h2c) on a Gateway port declared GRPC: real curl
 * (`--http2-prior-knowledge`), h2load and Node's http2 client through `tollgate run` to an
 * HTTP/1.1 echo upstream. Each stream is one request through the same route decision, filters,
 * access log and metrics as HTTP/1.1; HTTP/1.1 keeps working on the same port.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { ServerResponse } from 'node:http';
import * as http2 from 'node:http2';
import { httpEngine } from '../../src/dataplane/http/engine.js';
import { header, startHttpUpstream, type HttpUpstream } from '../helpers/http.js';
import { targetPortEntry, virtualService } from '../helpers/istio-yaml.js';
import { loopbackAddress } from '../helpers/net.js';
import { EDGE_GATEWAY_ARGS, startGate, tempConfig, type TestGate } from '../helpers/tollgate.js';
import { haveTool, isCI, run } from '../helpers/tools.js';

const ready = haveTool('curl') && haveTool('h2load');
const skip = ready ? false : 'needs curl and h2load (nghttp2-client)';
if (!ready && isCI) throw new Error(`http2-downstream: ${skip}; CI=true`);

function config(echo: HttpUpstream, grpc: HttpUpstream): string {
  return (
    targetPortEntry('echo', 'edge', 'echo.test', [echo.host], echo.port, true) +
    targetPortEntry('grpc', 'edge', 'grpc.test', [grpc.host], grpc.port, true) +
    `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: edge}
spec:
  selector: {istio: egressgateway}
  servers: [{port: {number: 80, name: grpc, protocol: GRPC}, hosts: [echo.test, grpc.test]}]
---
` +
    virtualService('echo', 'edge', ['echo.test', 'grpc.test'], ['gw'], `http:
- name: fault
  match: [{uri: {prefix: /fault}}]
  fault: {abort: {httpStatus: 503, percentage: {value: 100}}}
  route: [{destination: {host: echo.test, port: {number: 80}}}]
- name: grpc
  match: [{authority: {exact: grpc.test}}]
  route: [{destination: {host: grpc.test, port: {number: 80}}}]
- name: default
  route: [{destination: {host: echo.test, port: {number: 80}}}]`)
  );
}

interface H2Answer {
  status: number;
  headers: http2.IncomingHttpHeaders;
  trailers: http2.IncomingHttpHeaders | undefined;
  body: string;
}

/** An HTTP/1.1 upstream answering gRPC-shaped: a chunked body, then `grpc-status` in the trailers. */
function grpcShaped(_req: unknown, res: ServerResponse): void {
  res.writeHead(200, { 'content-type': 'application/grpc', trailer: 'grpc-status, grpc-message' });
  res.write(Buffer.from([0, 0, 0, 0, 2, 8, 1]));
  res.addTrailers({ 'grpc-status': '7', 'grpc-message': 'denied by test' });
  res.end();
}

function h2request(port: number, headers: http2.OutgoingHttpHeaders, body?: string): Promise<H2Answer> {
  return new Promise((resolve, reject) => {
    const client = http2.connect(`http://127.0.0.1:${port}`);
    client.on('error', reject);
    const req = client.request(headers, { endStream: body === undefined });
    let status = 0;
    let got: http2.IncomingHttpHeaders = {};
    let trailers: http2.IncomingHttpHeaders | undefined;
    req.on('trailers', (t) => (trailers = t));
    let text = '';
    req.on('response', (h) => {
      got = h;
      status = Number(h[':status']);
    });
    req.setEncoding('utf8');
    req.on('data', (d: string) => (text += d));
    req.on('end', () => {
      client.close();
      resolve({ status, headers: got, trailers, body: text });
    });
    req.on('error', (e) => {
      client.close();
      reject(e);
    });
    if (body !== undefined) req.end(body);
  });
}

describe('HTTP/2 downstream (h2c prior knowledge)', { skip, concurrency: false }, () => {
  let echo: HttpUpstream;
  let grpc: HttpUpstream;
  let gate: TestGate;
  let port: number;
  let cfg: { path: string; cleanup(): void };

  before(async () => {
    echo = await startHttpUpstream(loopbackAddress());
    grpc = await startHttpUpstream(loopbackAddress(), 0, grpcShaped);
    cfg = tempConfig(config(echo, grpc));
    gate = await startGate(['-f', cfg.path, ...EDGE_GATEWAY_ARGS], { httpHandler: httpEngine({ headerTimeoutMs: 2000, upstreamIdleTimeoutMs: 5000 }) });
    port = gate.port(80);
  });

  after(async () => {
    await gate?.stop();
    await echo?.close();
    await grpc?.close();
    cfg?.cleanup();
  });

  it('curl --http2-prior-knowledge: routed to the HTTP/1.1 upstream, logged protocol HTTP/2, counted', async () => {
    const r = await run('curl', ['-sS', '--http2-prior-knowledge', '--max-time', '5', '-H', 'Host: echo.test', '-w', '\n%{http_version} %{http_code}', `http://127.0.0.1:${port}/h2/hello?x=1`]);
    assert.equal(r.status, 0, r.stderr);
    const nl = r.stdout.lastIndexOf('\n');
    assert.equal(r.stdout.slice(nl + 1), '2 200', r.stdout);
    const seen = JSON.parse(r.stdout.slice(0, nl)) as { url: string; rawHeaders: string[] };
    assert.equal(seen.url, '/h2/hello?x=1');
    assert.equal(header(seen, 'host'), 'echo.test');
    assert.equal(header(seen, 'x-forwarded-for'), undefined, 'MESH_EXTERNAL: no X-Forwarded-For');
    const rec = await gate.waitForLog((x) => x.path === '/h2/hello?x=1');
    assert.equal(rec.protocol, 'HTTP/2');
    assert.equal(rec.response_code, 200);
    assert.equal(rec.authority, 'echo.test');
    assert.equal(rec.route_name, 'edge/echo:default');
    assert.equal(rec.upstream_cluster, 'outbound|80||echo.test');
    assert.ok(gate.metric('istio_requests_total', 'destination_service="echo.test"') >= 1);
  });

  it('a request body without content-length reaches the upstream whole (forwarded chunked)', async () => {
    const body = 'x'.repeat(100_000);
    const r = await h2request(port, { ':method': 'POST', ':path': '/h2/post', ':authority': 'echo.test' }, body);
    assert.equal(r.status, 200);
    const seen = JSON.parse(r.body) as { body: string; rawHeaders: string[] };
    assert.equal(seen.body.length, body.length);
    assert.equal(header(seen, 'transfer-encoding'), 'chunked');
  });

  it('local replies (fault abort, no route) are answered on the stream; the connection stays usable', async () => {
    const a = await h2request(port, { ':path': '/fault', ':authority': 'echo.test' });
    assert.equal(a.status, 503);
    assert.equal(a.headers['connection'], undefined, 'no connection-specific field on an h2 response');
    const rec = await gate.waitForLog((x) => x.path === '/fault' && x.protocol === 'HTTP/2');
    assert.equal(rec.response_flags, 'FI');
    const b = await h2request(port, { ':path': '/', ':authority': 'other.test' });
    assert.equal(b.status, 404);
  });

  it('response trailers from the upstream (grpc-status) reach the h2 client as trailers', async () => {
    const r = await h2request(port, { ':method': 'POST', ':path': '/pkg.Svc/Call', ':authority': 'grpc.test', 'content-type': 'application/grpc', te: 'trailers' }, '\0\0\0\0\0');
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-type'], 'application/grpc');
    assert.equal(r.trailers?.['grpc-status'], '7');
    assert.equal(r.trailers?.['grpc-message'], 'denied by test');
    assert.equal(r.body.length, 7);
  });

  it('host disagreeing with :authority is refused, nothing forwarded', async () => {
    const before = echo.requests.length;
    const r = await h2request(port, { ':path': '/conflict', ':authority': 'echo.test', host: 'other.test' });
    assert.equal(r.status, 400);
    assert.equal(echo.requests.length, before);
  });

  it('h2load: 2000 requests on 4 connections x 32 concurrent streams all succeed', async () => {
    const r = await run('h2load', ['-n', '2000', '-c', '4', '-m', '32', '-H', ':authority: echo.test', `http://127.0.0.1:${port}/h2load`], { timeoutMs: 60_000 });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /requests: 2000 total, 2000 started, 2000 done, 2000 succeeded, 0 failed, 0 errored/, r.stdout);
    assert.match(r.stdout, /status codes: 2000 2xx/, r.stdout);
  });

  it('HTTP/1.1 still works on the same port', async () => {
    const r = await run('curl', ['-sS', '--max-time', '5', '-H', 'Host: echo.test', '-o', '/dev/null', '-w', '%{http_version} %{http_code}', `http://127.0.0.1:${port}/h1`]);
    assert.equal(r.stdout, '1.1 200', r.stderr);
  });
});
