import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeResources } from './decode.js';
import { formatDiagnostic } from './diagnostics.js';
import { parseText } from './load.js';

function decode(text: string, file = 'cfg.yaml') {
  const parsed = parseText(text, file);
  const decoded = decodeResources(parsed.documents);
  return { ...decoded, diagnostics: [...parsed.diagnostics, ...decoded.diagnostics] };
}

test('a bad enum value names the object, the file:line of the field, the path and the allowed values', () => {
  const { diagnostics, resources } = decode(`apiVersion: networking.istio.io/v1alpha3
kind: ServiceEntry
metadata:
  name: athn-kmc
spec:
  hosts: [kmcert.com]
  ports:
  - number: 80
    name: http
    protocol: HTTP
  - number: 443
    name: https
    protocol: HTTPX
`, '000-serviceentries.yaml');
  assert.equal(resources.length, 0, 'an invalid object is not passed on');
  assert.equal(diagnostics.length, 1);
  assert.equal(
    formatDiagnostic(diagnostics[0]!),
    'Error [TG_CONFIG_INVALID] ServiceEntry athn-kmc.default (000-serviceentries.yaml:13): spec.ports[1].protocol "HTTPX" is not one of HTTP, HTTPS, HTTP2, GRPC, TLS, TCP, MONGO',
  );
});

test('a known kind without apiVersion is accepted with a warning naming the assumed version', () => {
  const { diagnostics, resources } = decode(`apiVersion: networking.istio.io/v1beta1
kind: ServiceEntry
metadata: {name: a}
spec: {hosts: [a.example]}
---
kind: ServiceEntry
metadata: {name: b}
spec: {hosts: [b.example]}
---
kind: Gateway
metadata: {name: g}
spec: {servers: [{port: {number: 80, protocol: HTTP}, hosts: ["*"]}]}
`);
  assert.equal(resources.length, 3);
  assert.equal(resources[1]?.apiVersion, 'networking.istio.io/v1beta1', 'the version used by its neighbours in the file');
  assert.equal(resources[2]?.apiVersion, 'networking.istio.io/v1');
  const warns = diagnostics.filter((d) => d.code === 'TG_CONFIG_ASSUMED_VERSION');
  assert.equal(warns.length, 2);
  assert.match(warns[0]?.message ?? '', /assumed networking\.istio\.io\/v1beta1/);
  assert.equal(warns[0]?.resource?.pos.line, 6);
});

test('unknown fields are reported as warnings with their line, never dropped silently', () => {
  const { diagnostics, resources } = decode(`apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: v}
spec:
  hosts: [a.example]
  htpp:
  - route: [{destination: {host: a.example}}]
`);
  // A near miss of a known field is a typo: an error naming the field meant, and the object is not used.
  assert.equal(resources.length, 0);
  const d = diagnostics.find((x) => x.code === 'TG_CONFIG_UNKNOWN_FIELD');
  assert.equal(d?.severity, 'error');
  assert.equal(d?.pos?.line, 6);
  assert.match(d?.message ?? '', /spec\.htpp is not a known field; did you mean "http"\?/);
  // A field far from every known name stays a warning: the object is used without it.
  const far = decode(`apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: v}
spec:
  hosts: [a.example]
  somethingNew: true
`);
  assert.equal(far.resources.length, 1);
  assert.deepEqual(far.diagnostics.map((x) => [x.code, x.severity]), [['TG_CONFIG_UNKNOWN_FIELD', 'warning']]);
});

test('unknown kinds and unsupported versions are reported', () => {
  const { diagnostics } = decode(`apiVersion: example.com/v1
kind: Frobnicator
metadata: {name: c}
---
apiVersion: networking.istio.io/v2
kind: ServiceEntry
metadata: {name: s}
spec: {hosts: [a]}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: sa}
---
apiVersion: networking.istio.io/v1
kind: VirtualSevice
metadata: {name: typo}
spec: {hosts: [a]}
`);
  assert.deepEqual(diagnostics.map((d) => [d.code, d.severity]), [
    ['TG_CONFIG_UNKNOWN_KIND', 'warning'],
    ['TG_CONFIG_UNKNOWN_VERSION', 'error'],
    ['TG_CONFIG_KIND_NOT_READ', 'info'],
    ['TG_CONFIG_KIND_TYPO', 'error'],
  ]);
  assert.match(diagnostics[1]?.hint ?? '', /use apiVersion: networking\.istio\.io\/v1/);
  assert.match(diagnostics[3]?.message ?? '', /did you mean "VirtualService"\?/);
});

test('type errors, missing required fields and durations', () => {
  const { diagnostics } = decode(`apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: v}
spec:
  hosts: a.example
  http:
  - timeout: 5 seconds
    route: [{destination: {subset: x}}]
`);
  const msgs = diagnostics.map((d) => `${d.pos?.line} ${d.message}`);
  assert.deepEqual(msgs, [
    '5 spec.hosts must be a list, got string "a.example"',
    '7 spec.http[0].timeout must be a duration such as "5s" or "250ms", got string "5 seconds"',
    '8 spec.http[0].route[0].destination.host is required',
  ]);
});

test('YAML syntax errors point at the line; other documents in the file still load', () => {
  const { diagnostics, resources } = decode(`apiVersion: v1
kind: Namespace
metadata: {name: ok}
---
apiVersion: v1
kind: Namespace
metadata: {name: [broken
`);
  assert.equal(resources.length, 1);
  assert.equal(diagnostics[0]?.code, 'TG_CONFIG_YAML');
  assert.ok((diagnostics[0]?.pos?.line ?? 0) >= 7);
});

test('duplicates are errors that point at both definitions; List objects are flattened', () => {
  const { diagnostics, resources } = decode(`apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Namespace
  metadata: {name: a}
- apiVersion: v1
  kind: Namespace
  metadata: {name: a}
`);
  assert.equal(resources.length, 1);
  assert.equal(diagnostics[0]?.code, 'TG_CONFIG_DUPLICATE');
  assert.match(diagnostics[0]?.message ?? '', /first definition is at cfg\.yaml:4/);
});

test('an Envoy bootstrap is recognised without kind; Helm values are explained, not silently dropped', () => {
  const { resources, diagnostics } = decode(`admin:
  address: {socket_address: {address: 127.0.0.1, port_value: 9901}}
---
replicaCount: 1
service: {type: ClusterIP}
---
foo: bar
`);
  assert.deepEqual(resources.map((r) => r.kind), ['EnvoyBootstrap']);
  assert.deepEqual(diagnostics.map((d) => d.code), ['TG_CONFIG_HELM_VALUES', 'TG_CONFIG_NO_KIND']);
});

test('host patterns are checked where Istio takes hosts (ns/host allowed on Gateway servers)', () => {
  const { diagnostics, resources } = decode(`apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: v}
spec:
  hosts: ["foo.*"]
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: g}
spec:
  servers: [{port: {number: 80, protocol: HTTP}, hosts: ["prod/*.example.com", "./a.example"]}]
`);
  assert.deepEqual(resources.map((r) => r.kind), ['Gateway']);
  assert.equal(diagnostics.length, 1);
  assert.match(diagnostics[0]?.message ?? '', /spec\.hosts\[0\] "foo\.\*" is not a valid host/);
  assert.equal(diagnostics[0]?.pos?.line, 5);
});
