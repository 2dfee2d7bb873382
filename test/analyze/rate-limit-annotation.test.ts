/** tollgate.io/local-rate-limit: analyze names a bad value at its line; the snapshot carries a good one on every http route. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { analyzeModel } from '../../src/analyze/analyze.js';
import { identity, loadYaml, snapshotOf } from '../helpers/pipeline.js';

const yaml = (value: string): string => `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: api, namespace: egress}
spec:
  hosts: [api.example]
  ports: [{number: 80, name: http, protocol: HTTP}]
  location: MESH_EXTERNAL
  resolution: DNS
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: egress, namespace: egress}
spec:
  selector: {istio: egressgateway}
  servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: [api.example]}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: api
  namespace: egress
  annotations:
    tollgate.io/local-rate-limit: "${value}"
spec:
  hosts: [api.example]
  gateways: [egress]
  http:
  - match: [{uri: {prefix: /a}}]
    route: [{destination: {host: api.example}}]
  - route: [{destination: {host: api.example}}]
`;

test('a bad tollgate.io/local-rate-limit is an error at the annotation line', () => {
  const c = loadYaml(yaml('100 per second'), 'rl.yaml');
  const d = analyzeModel(c.model).filter((x) => x.code === 'TG_RATE_LIMIT_ANNOTATION');
  assert.equal(d.length, 1);
  assert.equal(d[0]!.severity, 'error');
  assert.equal(d[0]!.pos?.file, 'rl.yaml');
  assert.equal(d[0]!.pos?.line, 23); // the annotation's own line
  assert.match(d[0]!.message, /100 per second/);
  const snap = snapshotOf(c, identity('gateway', 'egress', { istio: 'egressgateway' }));
  const routes = snap.routes.flatMap((rc) => rc.virtualHosts.flatMap((v) => v.routes));
  assert.ok(routes.length > 0 && routes.every((r) => r.typedPerFilterConfig?.['local_ratelimit'] === undefined), 'an invalid value limits nothing');
});

test('a valid value: no diagnostic, and every http route of the VirtualService carries the limit', () => {
  const c = loadYaml(yaml('100/s burst=200'), 'rl.yaml');
  assert.deepEqual(analyzeModel(c.model).filter((x) => x.code.startsWith('TG_RATE_LIMIT')), []);
  const snap = snapshotOf(c, identity('gateway', 'egress', { istio: 'egressgateway' }));
  const routes = snap.routes.flatMap((rc) => rc.virtualHosts.flatMap((v) => v.routes)).filter((r) => r.name.startsWith('egress/api:'));
  assert.equal(routes.length, 2);
  for (const r of routes) assert.deepEqual(r.typedPerFilterConfig?.['local_ratelimit'], { tokensPerFill: 100, fillIntervalMs: 1000, maxTokens: 200 });
});
