/** Configurations Istio accepts are not errors for Tollgate (each one was an error before). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { analyzeModel } from '../../src/analyze/analyze.js';
import { loadYaml } from '../helpers/pipeline.js';

function errors(yaml: string): string[] {
  const c = loadYaml(yaml, 'valid.yaml');
  return [...c.diagnostics, ...analyzeModel(c.model)].filter((d) => d.severity === 'error').map((d) => `${d.code}: ${d.message}`);
}

const se = (extra: string) => `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: db, namespace: egress}
spec:
  hosts: [db.example]
${extra}
  resolution: DNS
`;

test('ServiceEntry ports with protocol "" or lowercase "tcp" are valid (and TCP)', () => {
  assert.deepEqual(errors(se('  ports: [{number: 5432, name: pg, protocol: ""}, {number: 5433, name: pg2, protocol: tcp}]')), []);
  const c = loadYaml(se('  ports: [{number: 5432, name: pg, protocol: ""}, {number: 5433, name: pg2, protocol: tcp}]'));
  assert.deepEqual(c.model.registry.services[0]?.ports.map((p) => p.protocol), ['TCP', 'TCP']);
});

test('flow-style address lists with IPv6 ([1.2.3.4, 2001:db8::]) read as Kubernetes reads them', () => {
  assert.deepEqual(errors(se('  addresses: [192.0.2.1, 2001:db8::]\n  ports: [{number: 443, name: tls, protocol: TLS}]')), []);
  const c = loadYaml(se('  addresses: [192.0.2.1, 2001:db8::]\n  ports: [{number: 443, name: tls, protocol: TLS}]'));
  assert.deepEqual(c.model.registry.services[0]?.addresses, ['192.0.2.1', '2001:db8::']);
});

test('an AuthorizationPolicy or Sidecar with no spec is valid', () => {
  assert.deepEqual(errors(`apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-nothing, namespace: shop}
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default, namespace: shop}
`), []);
});

test('a file ending with --- (an empty last document) is valid', () => {
  assert.deepEqual(errors(se('  ports: [{number: 443, name: tls, protocol: TLS}]') + '---\n'), []);
  assert.deepEqual(errors(se('  ports: [{number: 443, name: tls, protocol: TLS}]') + '---\n  \n'), []);
});

test('DestinationRule loadBalancer.warmup is a known field', () => {
  assert.deepEqual(errors(`apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: db, namespace: egress}
spec:
  host: db.example
  trafficPolicy: {loadBalancer: {simple: ROUND_ROBIN, warmup: {duration: 10s, minimumPercent: 10}}}
`).filter((e) => !e.startsWith('TG_DR_HOST')), []);
});

test('common Kubernetes kinds are known (info), not unknown; a misspelt kind is an error naming the right one', () => {
  const c = loadYaml(`apiVersion: v1
kind: ServiceAccount
metadata: {name: app, namespace: shop}
---
apiVersion: networking.istio.io/v1
kind: VirtualSevice
metadata: {name: typo, namespace: shop}
spec: {hosts: [a]}
`);
  assert.deepEqual(c.diagnostics.map((d) => [d.code, d.severity]), [['TG_CONFIG_KIND_NOT_READ', 'info'], ['TG_CONFIG_KIND_TYPO', 'error']]);
  assert.match(c.diagnostics[1]?.message ?? '', /did you mean "VirtualService"/);
});

test('a misspelt field (hots) is an error naming the field meant', () => {
  const c = loadYaml(`apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: v, namespace: shop}
spec:
  hots: [a.example]
`);
  assert.match(c.diagnostics.find((d) => d.code === 'TG_CONFIG_UNKNOWN_FIELD' && d.severity === 'error')?.message ?? '', /spec\.hots is not a known field; did you mean "hosts"\?/);
});

test('TCP ServiceEntries sharing a port are no error when the mesh config auto-allocates addresses (a warning about Tollgate)', () => {
  const tcp = (name: string) => `---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ${name}, namespace: egress}
spec:
  hosts: [${name}.example]
  ports: [{number: 5432, name: pg, protocol: TCP}]
  resolution: DNS
`;
  const yaml = tcp('a') + tcp('b');
  assert.equal(errors(yaml).filter((e) => e.startsWith('TG_TCP_PORT_COLLISION')).length, 2);
  const mesh = '---\ndefaultConfig:\n  proxyMetadata:\n    ISTIO_META_DNS_AUTO_ALLOCATE: "true"\n';
  assert.deepEqual(errors(yaml + mesh), []);
  const c = loadYaml(yaml + mesh);
  assert.equal(analyzeModel(c.model).filter((d) => d.code === 'TG_TCP_PORT_COLLISION' && d.severity === 'warning').length, 2);
});

test('a VirtualService bound to a Gateway API Gateway and an AUTO_PASSTHROUGH server are explained, not errors', () => {
  assert.deepEqual(errors(`apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: shop}
spec:
  gatewayClassName: istio
  listeners: [{name: http, port: 80, protocol: HTTP}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: shop, namespace: shop}
spec: {hosts: [shop.example], ports: [{number: 80, name: http, protocol: HTTP}], resolution: DNS}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: shop, namespace: shop}
spec:
  hosts: [shop.example]
  gateways: [gw]
  http: [{route: [{destination: {host: shop.example}}]}]
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: eastwest, namespace: istio-system}
spec:
  selector: {istio: eastwestgateway}
  servers: [{port: {number: 15443, name: tls, protocol: TLS}, hosts: ["*.local"], tls: {mode: AUTO_PASSTHROUGH}}]
`), []);
});
