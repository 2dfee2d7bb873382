/**
 * Protocol selection for HTTP/2 and gRPC: which clusters go upstream over HTTP/2 (ServiceEntry
 * protocol, Service appProtocol / port name, DestinationRule h2UpgradePolicy), and analyze's
 * warning when a Service port's name and appProtocol disagree about HTTP/2.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { analyzeModel } from '../../src/analyze/analyze.js';
import { identity, loadYaml, snapshotOf } from '../helpers/pipeline.js';

const service = (ports: string): string => `apiVersion: v1
kind: Service
metadata: {name: api, namespace: shop}
spec:
  selector: {app: api}
  ports:
${ports}
---
`;

const conflicts = (yaml: string) => analyzeModel(loadYaml(yaml).model).filter((d) => d.code === 'TG_SERVICE_PORT_PROTOCOL_CONFLICT');

test('a Service port named http-* with appProtocol grpc (and the reverse) is a warning at that port', () => {
  const c = conflicts(service(`  - {name: http-api, port: 8080, appProtocol: grpc}
  - {name: grpc-ok, port: 9090, appProtocol: grpc}
  - {name: grpc-web, port: 9091, appProtocol: http}
  - {name: tcp-db, port: 5432, appProtocol: tcp}`));
  assert.equal(c.length, 2, JSON.stringify(c.map((d) => d.message)));
  assert.equal(c[0]?.severity, 'warning');
  assert.match(c[0]?.message ?? '', /port 8080 is named "http-api" \(HTTP\) but appProtocol "grpc" declares GRPC: appProtocol wins, so requests to this port go upstream as HTTP\/2/);
  assert.equal(c[0]?.pos?.line, 7, 'the line of the port');
  assert.match(c[1]?.message ?? '', /port 9091 is named "grpc-web" \(GRPC\) but appProtocol "http" declares HTTP: .* upstream as HTTP\/1\.1/);
});

test('agreeing names, or a disagreement that does not involve HTTP/2, are quiet', () => {
  assert.deepEqual(conflicts(service(`  - {name: grpc-api, port: 8080, appProtocol: grpc}
  - {name: http-web, port: 80, appProtocol: https}
  - {name: api, port: 81, appProtocol: grpc}`)), []);
});

const entries = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: svc, namespace: egress}
spec:
  hosts: [grpc.example, h2.example, plain.example, upgraded.example]
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: DNS
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: grpc, namespace: egress}
spec: {hosts: [rpc.example], ports: [{number: 9000, name: grpc, protocol: GRPC}], resolution: DNS}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: up, namespace: egress}
spec:
  host: upgraded.example
  trafficPolicy: {connectionPool: {http: {h2UpgradePolicy: UPGRADE, http2MaxRequests: 50}}}
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: egress, namespace: egress}
spec:
  selector: {istio: egressgateway}
  servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: ['*']}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: all, namespace: egress}
spec:
  hosts: [plain.example, upgraded.example, rpc.example]
  gateways: [egress]
  http:
  - match: [{authority: {exact: rpc.example}}]
    fault: {abort: {grpcStatus: UNAVAILABLE, percentage: {value: 100}}}
    route: [{destination: {host: rpc.example, port: {number: 9000}}}]
  - match: [{authority: {exact: upgraded.example}}]
    route: [{destination: {host: upgraded.example}}]
  - route: [{destination: {host: plain.example}}]
`;

test('clusters: GRPC ports and h2UpgradePolicy UPGRADE go upstream over HTTP/2, plain HTTP does not; grpcStatus abort keeps its HTTP equivalent', () => {
  const snap = snapshotOf(loadYaml(entries), identity('gateway', 'egress', { istio: 'egressgateway' }));
  const cluster = (name: string) => snap.clusters.find((c) => c.name === name);
  assert.equal(cluster('outbound|9000||rpc.example')?.http2, true);
  assert.equal(cluster('outbound|80||upgraded.example')?.http2, true);
  assert.equal(cluster('outbound|80||upgraded.example')?.connectionPool?.maxRequests, 50);
  assert.equal(cluster('outbound|80||plain.example')?.http2, undefined);
  const routes = snap.routes.flatMap((t) => t.virtualHosts.flatMap((v) => v.routes));
  const faulted = routes.find((r) => r.action.type === 'forward' && r.action.fault !== undefined);
  assert.ok(faulted && faulted.action.type === 'forward');
  assert.deepEqual(faulted.action.fault?.abort, { status: 503, percent: 100, grpcStatus: 14 });
});

test('a grpcStatus that is not a gRPC status is a config error naming the field', () => {
  const bad = entries.replace('grpcStatus: UNAVAILABLE', 'grpcStatus: NOPE');
  const d = loadYaml(bad).diagnostics.filter((x) => x.severity === 'error');
  assert.ok(d.some((x) => /grpcStatus/.test(x.message) && /not a gRPC status/.test(x.message)), JSON.stringify(d.map((x) => x.message)));
});
