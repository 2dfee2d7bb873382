/**
 * gRPC through `tollgate run` with a real client and server (@grpc/grpc-js, h2c both sides):
 * as an ingress-style gateway (unary, server-streaming, client deadline, grpc-timeout enforced by
 * the proxy, retry on `unavailable`, fault abort with `grpcStatus`, a 50/50 weighted split, a
 * gRPC-shaped local reply) and as an egress gateway to a MESH_EXTERNAL gRPC service. Access log
 * and istio_requests_total carry grpc-status.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as http2 from 'node:http2';
import { status as grpcStatus } from '@grpc/grpc-js';
import { httpEngine } from '../../src/dataplane/http/engine.js';
import { call, echoClient, startGrpcServer, streamCall, type EchoClient, type GrpcServer } from '../helpers/grpc.js';
import { grpcEntry, virtualService } from '../helpers/istio-yaml.js';
import { loopbackAddress } from '../helpers/net.js';
import { EDGE_GATEWAY_ARGS, EGRESS_GATEWAY_ARGS, startGate, tempConfig, type TestGate } from '../helpers/tollgate.js';

function gatewayYaml(ns: string, hosts: string): string {
  return `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: ${ns}}
spec:
  selector: {istio: egressgateway}
  servers: [{port: {number: 80, name: grpc, protocol: GRPC}, hosts: [${hosts}]}]
---
`;
}

interface H2Answer {
  headers: http2.IncomingHttpHeaders;
  trailers: http2.IncomingHttpHeaders | undefined;
  ms: number;
}

/** A raw gRPC call with node:http2 (no client-side deadline), to see exactly what the proxy sends. */
function rawGrpc(port: number, path: string, authority: string, extra: http2.OutgoingHttpHeaders = {}): Promise<H2Answer> {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const client = http2.connect(`http://127.0.0.1:${port}`);
    client.on('error', reject);
    const req = client.request({ ':method': 'POST', ':path': path, ':authority': authority, 'content-type': 'application/grpc', te: 'trailers', ...extra });
    let headers: http2.IncomingHttpHeaders = {};
    let trailers: http2.IncomingHttpHeaders | undefined;
    req.on('response', (h) => (headers = h));
    req.on('trailers', (t) => (trailers = t));
    req.resume();
    req.on('end', () => {
      client.close();
      resolve({ headers, trailers, ms: Date.now() - t0 });
    });
    req.on('error', (e) => {
      client.close();
      reject(e);
    });
    req.end(Buffer.from([0, 0, 0, 0, 1, 0x78])); // one message: "x"
  });
}

describe('gRPC through a gateway (grpc-js client and servers)', { concurrency: false }, () => {
  let a: GrpcServer;
  let b: GrpcServer;
  let gate: TestGate;
  let client: EchoClient;
  let cfg: { path: string; cleanup(): void };
  let port: number;

  before(async () => {
    const host = loopbackAddress();
    a = await startGrpcServer('a', host);
    b = await startGrpcServer('b', host);
    const yaml =
      grpcEntry('a', 'edge', 'a.grpc.test', host, a.port) +
      grpcEntry('b', 'edge', 'b.grpc.test', host, b.port) +
      gatewayYaml('edge', 'echo.grpc.test') +
      virtualService('echo', 'edge', ['echo.grpc.test'], ['gw'], `http:
- name: fault
  match: [{uri: {exact: /test.Echo/Fault}}, {headers: {x-fault: {exact: 'yes'}}}]
  fault: {abort: {grpcStatus: RESOURCE_EXHAUSTED, percentage: {value: 100}}}
  route: [{destination: {host: a.grpc.test}}]
- name: flaky
  match: [{uri: {exact: /test.Echo/Flaky}}]
  retries: {attempts: 2, retryOn: unavailable}
  route: [{destination: {host: a.grpc.test}}]
- name: flaky-no-retry
  match: [{uri: {exact: /test.Echo/FlakyNoRetry}}]
  retries: {attempts: 0}
  rewrite: {uri: /test.Echo/Flaky}
  route: [{destination: {host: b.grpc.test}}]
- name: slow
  match: [{uri: {exact: /test.Echo/Slow}}]
  # The server would enforce grpc-timeout too: without it upstream, only the proxy's deadline acts.
  headers: {request: {remove: [grpc-timeout]}}
  route: [{destination: {host: a.grpc.test}}]
- name: split
  route:
  - {destination: {host: a.grpc.test}, weight: 50}
  - {destination: {host: b.grpc.test}, weight: 50}`);
    cfg = tempConfig(yaml);
    gate = await startGate(['-f', cfg.path, ...EDGE_GATEWAY_ARGS], { httpHandler: httpEngine({ headerTimeoutMs: 5000, upstreamIdleTimeoutMs: 5000 }) });
    port = gate.port(80);
    client = echoClient(`127.0.0.1:${port}`, 'echo.grpc.test');
  });

  after(async () => {
    client?.close();
    await gate?.stop();
    await a?.stop();
    await b?.stop();
    cfg?.cleanup();
  });

  it('unary: the reply comes back; the access log and istio_requests_total carry grpc-status 0', async () => {
    const r = await call(client, 'unary', 'hello-unary');
    assert.equal(r.code, grpcStatus.OK, r.details);
    assert.match(r.reply ?? '', /^[ab]:hello-unary$/);
    const rec = await gate.waitForLog((x) => x.path === '/test.Echo/Unary');
    assert.equal(rec.protocol, 'HTTP/2');
    assert.equal(rec.response_code, 200);
    assert.equal(rec.grpc_status, '0');
    assert.ok(gate.metric('istio_requests_total', 'request_protocol="grpc",response_code="200",response_flags="-",connection_security_policy="none",source_principal="unknown",destination_principal="unknown",grpc_response_status="0"') >= 1);
  });

  it('server-streaming: five messages in order, then OK', async () => {
    const r = await streamCall(client, 'hello-stream');
    assert.equal(r.code, grpcStatus.OK);
    assert.equal(r.messages.length, 5);
    const who = r.messages[0]!.split(':')[0];
    assert.deepEqual(r.messages, [0, 1, 2, 3, 4].map((i) => `${who}:hello-stream:${i}`));
  });

  it('a client deadline shorter than the server: DEADLINE_EXCEEDED', async () => {
    const t0 = Date.now();
    const r = await call(client, 'slow', 'deadline', 300);
    assert.equal(r.code, grpcStatus.DEADLINE_EXCEEDED);
    assert.ok(Date.now() - t0 < 1900, 'well before the 2 s server');
  });

  it('grpc-timeout is enforced by the proxy: trailers-only grpc-status 4 (DEADLINE_EXCEEDED), logged UT', async () => {
    const r = await rawGrpc(port, '/test.Echo/Slow', 'echo.grpc.test', { 'grpc-timeout': '200m' });
    assert.equal(r.headers[':status'], 200);
    assert.equal(r.headers['grpc-status'], '4', 'grpc-status in the head (trailers-only)');
    assert.equal(r.headers['content-type'], 'application/grpc');
    assert.equal(r.trailers, undefined);
    assert.ok(r.ms < 1900, `answered at the 200 ms deadline, not by the 2 s server (${r.ms} ms)`);
    const rec = await gate.waitForLog((x) => x.path === '/test.Echo/Slow' && x.response_flags === 'UT');
    assert.equal(rec.grpc_status, '4');
  });

  it('retries.retryOn unavailable: the call succeeds on the second try; without retries it fails UNAVAILABLE', async () => {
    const before = a.calls['flaky'] ?? 0;
    const r = await call(client, 'flaky', 'k1');
    assert.equal(r.code, grpcStatus.OK, r.details);
    assert.equal(r.reply, 'a:k1');
    assert.equal((a.calls['flaky'] ?? 0) - before, 2, 'two tries reached the server');
    const rec = await gate.waitForLog((x) => x.path === '/test.Echo/Flaky');
    assert.equal(rec.grpc_status, '0');
    const noRetry = await rawGrpc(port, '/test.Echo/FlakyNoRetry', 'echo.grpc.test');
    assert.equal(noRetry.headers['grpc-status'] ?? noRetry.trailers?.['grpc-status'], String(grpcStatus.UNAVAILABLE));
  });

  it('fault abort with grpcStatus: the client gets RESOURCE_EXHAUSTED, nothing reaches a server', async () => {
    const before = (a.calls['unary'] ?? 0) + (b.calls['unary'] ?? 0);
    const faulty = echoClient(`127.0.0.1:${port}`, 'echo.grpc.test');
    try {
      const md = new (await import('@grpc/grpc-js')).Metadata();
      md.set('x-fault', 'yes');
      const r = await new Promise<{ code: number; details: string }>((resolve) => faulty.unary(Buffer.from('f'), md, {}, (err) => resolve({ code: err?.code ?? 0, details: err?.details ?? '' })));
      assert.equal(r.code, grpcStatus.RESOURCE_EXHAUSTED, r.details);
      assert.match(r.details, /fault_abort|Too Many Requests/);
    } finally {
      faulty.close();
    }
    assert.equal((a.calls['unary'] ?? 0) + (b.calls['unary'] ?? 0), before);
    const rec = await gate.waitForLog((x) => x.response_flags === 'FI' && x.path === '/test.Echo/Unary');
    assert.equal(rec.response_code, 200);
    assert.equal(rec.grpc_status, '8');
    assert.ok(gate.metric('istio_requests_total', 'response_flags="FI",connection_security_policy="none",source_principal="unknown",destination_principal="unknown",grpc_response_status="8"') >= 1);
  });

  it('a local reply to a gRPC client is gRPC-shaped: no route -> HTTP 200, grpc-status 12 (UNIMPLEMENTED), trailers-only', async () => {
    const r = await rawGrpc(port, '/test.Echo/Unary', 'nowhere.grpc.test');
    assert.equal(r.headers[':status'], 200);
    assert.equal(r.headers['grpc-status'], '12');
    assert.match(String(r.headers['grpc-message']), /route_not_found|Not Found/);
    assert.equal(r.trailers, undefined);
  });

  it('a 50/50 weighted split: 200 calls land on both servers in proportion, streams sharing one connection per server', async () => {
    const beforeA = a.calls['unary'] ?? 0;
    const beforeB = b.calls['unary'] ?? 0;
    // 20 calls in flight at a time; generous deadlines, as the machine may be loaded.
    const results: Awaited<ReturnType<typeof call>>[] = [];
    for (let i = 0; i < 200; i += 20) results.push(...(await Promise.all(Array.from({ length: 20 }, (_, j) => call(client, 'unary', `split-${i + j}`, 30_000)))));
    assert.deepEqual(results.filter((r) => r.code !== grpcStatus.OK), []);
    const na = (a.calls['unary'] ?? 0) - beforeA;
    const nb = (b.calls['unary'] ?? 0) - beforeB;
    assert.equal(na + nb, 200);
    assert.ok(na >= 60 && nb >= 60, `a=${na} b=${nb}`);
    const created = gate.metric('tollgate_http_upstream_connections_created_total');
    assert.ok(created <= 10, `streams share upstream connections: ${created} opened`);
  });
});

describe('gRPC through an egress gateway to a MESH_EXTERNAL service', { concurrency: false }, () => {
  let ext: GrpcServer;
  let gate: TestGate;
  let client: EchoClient;
  let cfg: { path: string; cleanup(): void };

  before(async () => {
    const host = loopbackAddress();
    ext = await startGrpcServer('ext', host);
    const yaml =
      grpcEntry('api', 'egress', 'api.grpc.example', host, ext.port, true) +
      gatewayYaml('egress', 'api.grpc.example') +
      virtualService('api', 'egress', ['api.grpc.example'], ['gw'], `http:
- route: [{destination: {host: api.grpc.example, port: {number: 80}}}]`);
    cfg = tempConfig(yaml);
    gate = await startGate(['-f', cfg.path, ...EGRESS_GATEWAY_ARGS], { httpHandler: httpEngine({ headerTimeoutMs: 5000, upstreamIdleTimeoutMs: 5000 }) });
    client = echoClient(`127.0.0.1:${gate.port(80)}`, 'api.grpc.example');
  });

  after(async () => {
    client?.close();
    await gate?.stop();
    await ext?.stop();
    cfg?.cleanup();
  });

  it('unary and server-streaming calls reach the external service over HTTP/2', async () => {
    const r = await call(client, 'unary', 'out');
    assert.equal(r.code, grpcStatus.OK, r.details);
    assert.equal(r.reply, 'ext:out');
    const s = await streamCall(client, 'out');
    assert.deepEqual(s.messages, [0, 1, 2, 3, 4].map((i) => `ext:out:${i}`));
    const rec = await gate.waitForLog((x) => x.path === '/test.Echo/Stream');
    assert.equal(rec.upstream_cluster, 'outbound|80||api.grpc.example');
    assert.equal(rec.grpc_status, '0');
  });

  it('a host outside the registry is refused gRPC-shaped (PERMISSION_DENIED or UNIMPLEMENTED), never forwarded', async () => {
    const other = echoClient(`127.0.0.1:${gate.port(80)}`, 'other.grpc.example');
    try {
      const r = await call(other, 'unary', 'x');
      assert.ok(r.code === grpcStatus.PERMISSION_DENIED || r.code === grpcStatus.UNIMPLEMENTED, `code ${r.code}: ${r.details}`);
    } finally {
      other.close();
    }
  });
});
