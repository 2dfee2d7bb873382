/** A header match on a field the proxy removes before routing is a warning at the match's line. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { analyzeModel } from '../../src/analyze/analyze.js';
import { loadYaml } from '../helpers/pipeline.js';

const yaml = (gateways: string): string => `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: api, namespace: egress}
spec: {hosts: [api.example], ports: [{number: 80, name: http, protocol: HTTP}], resolution: DNS}
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
metadata: {name: api, namespace: egress}
spec:
  hosts: [api.example]
  gateways: [${gateways}]
  http:
  - match:
    - headers:
        x_tenant: {exact: a}
        x-envoy-debug: {exact: "1"}
        x-tenant: {exact: a}
    route: [{destination: {host: api.example}}]
  - route: [{destination: {host: api.example}}]
`;

test('underscore names always, x-envoy-* on a gateway: warnings naming the field and the effect', () => {
  const c = loadYaml(yaml('egress'), 'vs.yaml');
  const w = analyzeModel(c.model).filter((d) => d.code === 'TG_HEADER_MATCH_DROPPED');
  assert.deepEqual(w.map((d) => d.message.split(':')[0]).sort(), ['headers.x-envoy-debug', 'headers.x_tenant']);
  assert.ok(w.every((d) => d.severity === 'warning' && /never applies/.test(d.message)));
  const line = yaml('egress').split('\n').findIndex((l) => l.includes('x_tenant')) + 1;
  assert.equal(w.find((d) => d.message.startsWith('headers.x_tenant'))?.pos?.line, line);
});

test('on sidecars (mesh) x-envoy-* reaches the routes: only the underscore name is reported', () => {
  const c = loadYaml(yaml('mesh'), 'vs.yaml');
  const w = analyzeModel(c.model).filter((d) => d.code === 'TG_HEADER_MATCH_DROPPED');
  assert.deepEqual(w.map((d) => d.message.split(':')[0]), ['headers.x_tenant']);
});
