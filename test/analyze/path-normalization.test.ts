/** meshConfig.pathNormalization: read from the istio ConfigMap into the snapshot; analyze warns on weak levels and names a bad value's line. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { analyzeModel } from '../../src/analyze/analyze.js';
import { identity, loadYaml, snapshotOf } from '../helpers/pipeline.js';

const mesh = (level: string): string => `apiVersion: v1
kind: ConfigMap
metadata: {name: istio, namespace: istio-system}
data:
  mesh: |
    defaultConfig: {}
    pathNormalization:
      normalization: ${level}
---
`;

const routes = `apiVersion: networking.istio.io/v1
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
  gateways: [egress]
  http:
  - match: [{uri: {prefix: /admin}}]
    directResponse: {status: 403}
  - route: [{destination: {host: api.example}}]
`;

const gw = identity('gateway', 'egress', { istio: 'egressgateway' });
const codes = (yaml: string): string[] => analyzeModel(loadYaml(yaml).model).map((d) => d.code);

test('a path deny under BASE or NONE is a warning at the uri match; MERGE_SLASHES and the default are quiet', () => {
  for (const level of ['BASE', 'NONE', 'DEFAULT']) {
    const c = loadYaml(mesh(level) + routes);
    const warn = analyzeModel(c.model).filter((d) => d.code === 'TG_PATH_NORMALIZATION_WEAK');
    assert.equal(warn.length, 1, level);
    assert.equal(warn[0]?.pos?.line, 29, 'the line of the uri match');
    assert.match(warn[0]?.message ?? '', /answers a path directly/);
  }
  assert.ok(!codes(mesh('MERGE_SLASHES') + routes).includes('TG_PATH_NORMALIZATION_WEAK'));
  assert.ok(!codes(routes).includes('TG_PATH_NORMALIZATION_WEAK'));
});

test('the level reaches the snapshot; DEFAULT means BASE; absent means the data plane default', () => {
  assert.equal(snapshotOf(loadYaml(mesh('DECODE_AND_MERGE_SLASHES') + routes), gw).policy.pathNormalization, 'DECODE_AND_MERGE_SLASHES');
  assert.equal(snapshotOf(loadYaml(mesh('DEFAULT') + routes), gw).policy.pathNormalization, 'BASE');
  assert.equal(snapshotOf(loadYaml(routes), gw).policy.pathNormalization, undefined);
});

test('an unknown level is an error at the ConfigMap line, with the levels named', () => {
  const c = loadYaml(mesh('MERGE') + routes);
  const d = c.diagnostics.find((x) => x.code === 'TG_MESH_CONFIG_INVALID');
  assert.ok(d, 'reported');
  assert.equal(d.severity, 'error');
  assert.equal(d.pos?.line, 5);
  assert.match(d.message, /NONE, BASE, MERGE_SLASHES, DECODE_AND_MERGE_SLASHES/);
});
