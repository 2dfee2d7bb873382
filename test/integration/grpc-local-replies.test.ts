/**
 * Replies the proxy makes before (or instead of) the upstream, to a gRPC client (@grpc/grpc-js
 * through `tollgate run`): as Envoy does, HTTP 200 with grpc-status and grpc-message, so the
 * client sees a gRPC status instead of an HTTP error — an AuthorizationPolicy denial is
 * PERMISSION_DENIED (7) with "RBAC: access denied", no route is UNIMPLEMENTED (12), an upstream
 * that refuses connections is UNAVAILABLE (14). Nothing denied reaches the server.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { status as grpcStatus } from '@grpc/grpc-js';
import { httpEngine } from '../../src/dataplane/http/engine.js';
import { call, echoClient, startGrpcServer, type EchoClient, type GrpcServer } from '../helpers/grpc.js';
import { grpcEntry, virtualService } from '../helpers/istio-yaml.js';
import { freeTcpPort } from '../helpers/dns.js';
import { loopbackAddress } from '../helpers/net.js';
import { EDGE_GATEWAY_ARGS, startGate, tempConfig, type TestGate } from '../helpers/tollgate.js';

describe('gRPC-shaped local replies: RBAC denial, no route, upstream unavailable (grpc-js)', { concurrency: false }, () => {
  let server: GrpcServer;
  let gate: TestGate;
  let cfg: { path: string; cleanup(): void };
  let echo: EchoClient;
  let nowhere: EchoClient;

  before(async () => {
    const host = loopbackAddress();
    server = await startGrpcServer('a', host);
    const closedPort = await freeTcpPort();
    const yaml =
      grpcEntry('a', 'edge', 'a.grpc.test', host, server.port) +
      grpcEntry('dead', 'edge', 'dead.grpc.test', host, closedPort) +
      `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: edge}
spec:
  selector: {istio: egressgateway}
  servers: [{port: {number: 80, name: grpc, protocol: GRPC}, hosts: ["*.grpc.test"]}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: no-slow, namespace: edge}
spec:
  selector: {matchLabels: {istio: egressgateway}}
  action: DENY
  rules: [{to: [{operation: {paths: [/test.Echo/Slow]}}]}]
---
` +
      virtualService('echo', 'edge', ['echo.grpc.test'], ['gw'], `http:
- name: dead
  match: [{uri: {exact: /test.Echo/Flaky}}]
  route: [{destination: {host: dead.grpc.test}}]
- name: echo
  route: [{destination: {host: a.grpc.test}}]`);
    cfg = tempConfig(yaml);
    gate = await startGate(['-f', cfg.path, ...EDGE_GATEWAY_ARGS], { httpHandler: httpEngine({ headerTimeoutMs: 5000, upstreamIdleTimeoutMs: 5000 }) });
    echo = echoClient(`127.0.0.1:${gate.port(80)}`, 'echo.grpc.test');
    nowhere = echoClient(`127.0.0.1:${gate.port(80)}`, 'nowhere.grpc.test');
  });

  after(async () => {
    echo?.close();
    nowhere?.close();
    await gate?.stop();
    await server?.stop();
    cfg?.cleanup();
  });

  it('an allowed call goes through', async () => {
    const r = await call(echo, 'unary', 'hi');
    assert.equal(r.code, grpcStatus.OK, r.details);
  });

  it('an AuthorizationPolicy denial is PERMISSION_DENIED with "RBAC: access denied", never forwarded, logged rbac_denied', async () => {
    const before = server.calls['slow'] ?? 0;
    const r = await call(echo, 'slow', 'x');
    assert.equal(r.code, grpcStatus.PERMISSION_DENIED, r.details);
    assert.equal(r.details, 'RBAC: access denied');
    assert.equal(server.calls['slow'] ?? 0, before);
    const rec = await gate.waitForLog((l) => l.path === '/test.Echo/Slow');
    assert.equal(rec.response_code, 200);
    assert.equal(rec.tollgate_reason, 'rbac_denied');
    assert.equal(rec.grpc_status, String(grpcStatus.PERMISSION_DENIED));
    assert.equal(rec.response_code_details, 'rbac_access_denied_matched_policy[ns[edge]-policy[no-slow]-rule[0]]');
  });

  it('no route for the authority is UNIMPLEMENTED', async () => {
    const r = await call(nowhere, 'unary', 'x');
    assert.equal(r.code, grpcStatus.UNIMPLEMENTED, r.details);
  });

  it('an upstream that refuses the connection is UNAVAILABLE', async () => {
    const r = await call(echo, 'flaky', 'x');
    assert.equal(r.code, grpcStatus.UNAVAILABLE, r.details);
    const rec = await gate.waitForLog((l) => l.path === '/test.Echo/Flaky');
    assert.match(rec.response_flags, /^UF\b/); // UF, then URX: the default retries also failed
    assert.equal(rec.response_code, 200);
    assert.equal(rec.grpc_status, String(grpcStatus.UNAVAILABLE));
  });
});
