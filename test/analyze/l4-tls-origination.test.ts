/**
 * The TCP proxy originates only mesh mTLS: a DestinationRule asking for SIMPLE or MUTUAL TLS on a
 * port a tcp/tls route sends to is an error (the connection would leave without that TLS), while
 * the same rule for HTTP routes, for another port, or ISTIO_MUTUAL, is not.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { analyzeModel } from '../../src/analyze/analyze.js';
import { loadYaml } from '../helpers/pipeline.js';

const entry = `---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: db, namespace: edge}
spec:
  hosts: [db.example.com]
  location: MESH_EXTERNAL
  resolution: DNS
  ports: [{number: 5432, name: tcp, protocol: TCP}, {number: 80, name: http, protocol: HTTP}]
`;

function rule(tls: string): string {
  return `---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: db, namespace: edge}
spec:
  host: db.example.com
  trafficPolicy:
    portLevelSettings:
    - port: {number: 5432}
      tls: {mode: ${tls}}
  subsets:
  - name: primary
    trafficPolicy: {tls: {mode: ${tls}}}
`;
}

function route(kind: 'tcp' | 'http', port: number, subset?: string): string {
  const dest = `{host: db.example.com, port: {number: ${port}}${subset !== undefined ? `, subset: ${subset}` : ''}}`;
  return `---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: db, namespace: edge}
spec:
  hosts: [db.example.com]
  ${kind}:
  - route: [{destination: ${dest}}]
`;
}

/** The YAML line each finding points at. */
function findings(yaml: string): string[] {
  const lines = yaml.split('\n');
  return analyzeModel(loadYaml(yaml, 'case.yaml').model).filter((d) => d.code === 'TG_L4_TLS_ORIGINATION').map((d) => (lines[(d.pos?.line ?? 0) - 1] ?? '').trim());
}

test('SIMPLE or MUTUAL on the port a tcp route sends to is an error, at the field that asks for it', () => {
  assert.deepEqual(findings(entry + rule('SIMPLE') + route('tcp', 5432)), ['tls: {mode: SIMPLE}']);
  assert.deepEqual(findings(entry + rule('MUTUAL') + route('tcp', 5432, 'primary')), ['tls: {mode: MUTUAL}', 'trafficPolicy: {tls: {mode: MUTUAL}}']);
});

test('not an error: the rule for HTTP routes (originated), for another port, or ISTIO_MUTUAL (originated by the TCP proxy)', () => {
  assert.deepEqual(findings(entry + rule('SIMPLE') + route('http', 5432)), []);
  assert.deepEqual(findings(entry + rule('SIMPLE') + route('tcp', 80)), []);
  assert.deepEqual(findings(entry + rule('ISTIO_MUTUAL') + route('tcp', 5432, 'primary')), []);
});
