/**
 * Istio's analyzers, one fixture each (written for Tollgate, in the shape of istioctl analyze's own
 * cases): analyze reports the problem on the resource Istio names, with Istio's code beside ours and
 * the level we chose; and stays quiet on the neighbouring valid case.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { analyzeModel } from '../../src/analyze/analyze.js';
import type { Diagnostic } from '../../src/config/diagnostics.js';
import { loadYaml } from '../helpers/pipeline.js';

function analyze(yaml: string): Diagnostic[] {
  const c = loadYaml(yaml, 'case.yaml');
  return [...c.diagnostics, ...analyzeModel(c.model)];
}

/** [tollgate code, IST code, "Kind ns/name", severity] of every finding with an Istio code. */
function istio(yaml: string): string[] {
  return analyze(yaml).filter((d) => d.istio).map((d) => `${d.code} ${d.istio?.code} ${d.resource?.kind} ${d.resource?.namespace}/${d.resource?.name} ${d.severity}`).sort();
}

const ingressPod = `apiVersion: v1
kind: Pod
metadata: {name: ingress-1, namespace: istio-system, labels: {istio: ingressgateway}}
spec: {containers: [{name: istio-proxy, image: proxy}]}
`;

test('IST0109: two mesh VirtualServices for one host conflict, unless exportTo keeps them apart', () => {
  const vs = (name: string, ns: string, host: string, exportTo = '') => `---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ${name}, namespace: ${ns}}
spec:
  hosts: [${host}]${exportTo ? `\n  exportTo: [${exportTo}]` : ''}
  http: [{route: [{destination: {host: ${host}}}]}]
`;
  assert.deepEqual(istio(vs('a', 'shop', 'cart') + vs('b', 'shop', 'cart') + vs('c', 'one', 'cart', '"."') + vs('d', 'two', 'cart.one.svc.cluster.local', '"."')).filter((x) => !x.startsWith('TG_DEST')), [
    'TG_VS_MESH_HOST_CONFLICT IST0109 VirtualService shop/a error',
    'TG_VS_MESH_HOST_CONFLICT IST0109 VirtualService shop/b error',
  ]);
});

const gateway = `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: web, namespace: istio-system}
spec:
  selector: {istio: ingressgateway}
  servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: [shop.example]}]
`;

test('IST0132: a bound Gateway that serves none of the hosts; IST0101: a Gateway that does not exist', () => {
  const yaml = `${ingressPod}---
${gateway}---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: other, namespace: istio-system}
spec:
  selector: {istio: ingressgateway}
  servers: [{port: {number: 8080, name: http, protocol: HTTP}, hosts: [other.example]}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: shop, namespace: istio-system}
spec:
  hosts: [shop.example, admin.example]
  gateways: [web, other, missing]
  http: [{route: [{destination: {host: shop.example}}]}]
`;
  assert.deepEqual(istio(yaml).filter((x) => !x.startsWith('TG_DEST')), [
    'TG_GATEWAY_NOT_FOUND IST0101 VirtualService istio-system/shop error',
    'TG_VS_HOST_NOT_IN_GATEWAY IST0132 VirtualService istio-system/shop warning',
  ]);
  // admin.example is served by none of them: named, without an Istio code.
  assert.equal(analyze(yaml).filter((d) => d.code === 'TG_VS_HOST_UNSERVED' && /admin\.example/.test(d.message)).length, 1);
});

test('IST0162: a Gateway port the gateway Service does not expose (port or targetPort); IST0101: no workload', () => {
  const svc = `---
apiVersion: v1
kind: Service
metadata: {name: ingress, namespace: istio-system}
spec:
  selector: {istio: ingressgateway}
  ports: [{name: http2, port: 80, targetPort: 8080}]
`;
  const gw = (port: number, name = 'web', sel = 'ingressgateway') => `---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: ${name}, namespace: istio-system}
spec:
  selector: {istio: ${sel}}
  servers: [{port: {number: ${port}, name: http, protocol: HTTP}, hosts: ["${name}.example"]}]
`;
  assert.deepEqual(istio(ingressPod + svc + gw(8080, 'target') + gw(80, 'port') + gw(9000, 'bad') + gw(80, 'nobody', 'nothing')), [
    'TG_GATEWAY_NO_WORKLOAD IST0101 Gateway istio-system/nobody warning',
    'TG_GATEWAY_PORT_NOT_IN_SERVICE IST0162 Gateway istio-system/bad warning',
  ]);
});

test('IST0101/IST0161: a gateway credential Secret that is missing or holds no usable certificate', () => {
  const gw = (name: string, cred: string) => `---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: ${name}, namespace: istio-system}
spec:
  selector: {istio: ingressgateway}
  servers: [{port: {number: 443, name: https, protocol: HTTPS}, hosts: [${name}.example], tls: {mode: SIMPLE, credentialName: ${cred}}}]
`;
  const secrets = `---
apiVersion: v1
kind: Secret
metadata: {name: wrong-keys, namespace: istio-system}
stringData: {cert: x}
---
apiVersion: v1
kind: Secret
metadata: {name: not-pem, namespace: istio-system}
stringData: {tls.crt: hello, tls.key: world}
`;
  assert.deepEqual(istio(ingressPod + secrets + gw('a', 'absent') + gw('b', 'wrong-keys') + gw('c', 'not-pem')), [
    'TG_GATEWAY_SECRET_INVALID IST0161 Gateway istio-system/b error',
    'TG_GATEWAY_SECRET_INVALID IST0161 Gateway istio-system/c error',
    'TG_GATEWAY_SECRET_NOT_FOUND IST0101 Gateway istio-system/a error',
  ]);
});

test('IST0145: Gateways on the same proxies claiming one port and host; IST0138: one certificate in two Gateways', () => {
  const gw = (name: string, port: number, host: string, cred: string, extra = '') => `---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: ${name}, namespace: istio-system}
spec:
  selector: {istio: ingressgateway${extra}}
  servers: [{port: {number: ${port}, name: https, protocol: HTTPS}, hosts: [${host}], tls: {mode: SIMPLE, credentialName: ${cred}}}]
`;
  const out = istio(ingressPod + gw('alpha', 443, 'shop.example', 'c1') + gw('beta', 443, 'shop.example', 'c2') + gw('gamma', 8443, 'shop.example', 'c3') + gw('delta', 443, 'a.example', 'shared') + gw('eps', 443, 'b.example', 'shared', ', tier: internal')).filter((x) => !x.includes('SECRET') && !x.includes('NO_WORKLOAD'));
  assert.deepEqual(out, [
    'TG_GATEWAY_CONFLICT IST0145 Gateway istio-system/alpha error',
    'TG_GATEWAY_CONFLICT IST0145 Gateway istio-system/beta error',
    // delta's selector is inside eps's: delta's proxies serve both; eps's narrower proxies do not serve delta.
    'TG_GATEWAY_DUPLICATE_CERT IST0138 Gateway istio-system/delta warning',
  ]);
});

test('IST0128/IST0129: TLS origination without caCertificates, at destination and port level', () => {
  const dr = (name: string, tls: string, level: 'top' | 'port', selector = '') => `---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: ${name}, namespace: egress}
spec:
  host: ${name}.example${selector}
  trafficPolicy:
${level === 'top' ? `    tls: ${tls}` : `    portLevelSettings: [{port: {number: 443}, tls: ${tls}}]`}
`;
  assert.deepEqual(istio(dr('a', '{mode: SIMPLE}', 'top') + dr('b', '{mode: SIMPLE, caCertificates: /ca.pem}', 'top') + dr('c', '{mode: SIMPLE}', 'port') + dr('d', '{mode: SIMPLE, credentialName: cred}', 'top', '\n  workloadSelector: {matchLabels: {istio: egressgateway}}') + dr('e', '{mode: SIMPLE, insecureSkipVerify: true}', 'top')).filter((x) => !x.includes('UNKNOWN') && !x.includes('DR_HOST')), [
    'TG_DR_PORT_TLS_NO_CA IST0129 DestinationRule egress/c warning',
    'TG_DR_TLS_NO_CA IST0128 DestinationRule egress/a warning',
  ]);
});

test('IST0134: TCP ServiceEntry ports without addresses, unless the mesh config auto-allocates them', () => {
  const se = (name: string, port: string, addresses = '') => `---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ${name}, namespace: egress}
spec:
  hosts: [${name}.example]${addresses}
  ports: [${port}]
  resolution: DNS
`;
  const yaml = se('unset', '{number: 27017, name: db}') + se('lower', '{number: 5432, name: pg, protocol: tcp}') + se('empty', '{number: 5433, name: pg2, protocol: ""}') + se('http', '{number: 80, name: http, protocol: HTTP}') + se('vip', '{number: 3306, name: my, protocol: TCP}', '\n  addresses: [192.0.2.10]');
  assert.deepEqual(istio(yaml), [
    'TG_SE_ADDRESSES_REQUIRED IST0134 ServiceEntry egress/empty warning',
    'TG_SE_ADDRESSES_REQUIRED IST0134 ServiceEntry egress/lower warning',
    'TG_SE_ADDRESSES_REQUIRED IST0134 ServiceEntry egress/unset warning',
  ]);
  const mesh = '---\ndefaultConfig:\n  proxyMetadata:\n    ISTIO_META_DNS_AUTO_ALLOCATE: "true"\n';
  assert.deepEqual(istio(yaml + mesh), []);
});

test('IST0110/IST0111/IST0101: Sidecars that select the same pod, several namespace defaults, a selector that selects nothing', () => {
  const pod = `apiVersion: v1
kind: Pod
metadata: {name: app, namespace: shop, labels: {app: cart, tier: web}}
spec: {containers: [{name: app, image: app}]}
`;
  const sc = (name: string, sel = '') => `---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: ${name}, namespace: shop}
spec:${sel ? `\n  workloadSelector: {labels: {${sel}}}` : ' {}'}
`;
  assert.deepEqual(istio(pod + sc('d1') + sc('d2') + sc('one', 'app: cart') + sc('two', 'tier: web') + sc('none', 'app: nothing')), [
    'TG_SIDECAR_MULTIPLE_DEFAULTS IST0111 Sidecar shop/d1 error',
    'TG_SIDECAR_MULTIPLE_DEFAULTS IST0111 Sidecar shop/d2 error',
    'TG_SIDECAR_NO_WORKLOAD IST0101 Sidecar shop/none warning',
    'TG_SIDECAR_SELECTOR_CONFLICT IST0110 Sidecar shop/one error',
    'TG_SIDECAR_SELECTOR_CONFLICT IST0110 Sidecar shop/two error',
  ]);
});

test('IST0118/IST0150: Service port names that select no protocol', () => {
  const svc = (name: string, ports: string, type = '') => `---
apiVersion: v1
kind: Service
metadata: {name: ${name}, namespace: shop}
spec:${type}
  ports: [${ports}]
`;
  assert.deepEqual(istio(svc('plain', '{port: 8080}, {name: http-web, port: 80}, {name: web, port: 81, appProtocol: http}') + svc('ext', '{name: tcp, port: 443}', '\n  type: ExternalName\n  externalName: api.example') + svc('ext-ok', '{name: https, port: 443}', '\n  type: ExternalName\n  externalName: api.example')), [
    'TG_EXTERNALNAME_PORT_NAME IST0150 Service shop/ext warning',
    'TG_SERVICE_PORT_PROTOCOL IST0118 Service shop/plain info',
  ]);
});

test('IST0130/IST0131: rules after a catch-all and matches an earlier match already takes', () => {
  const yaml = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: shop, namespace: shop}
spec:
  hosts: [shop]
  http:
  - match: [{uri: {prefix: /api}}]
    route: [{destination: {host: shop}}]
  - match: [{uri: {prefix: /api/v1}, method: {exact: GET}}, {uri: {prefix: /other}}]
    route: [{destination: {host: shop}}]
  - match: [{uri: {prefix: /api}}]
    route: [{destination: {host: shop}}]
  - route: [{destination: {host: shop}}]
  - route: [{destination: {host: shop}}]
`;
  assert.deepEqual(istio(yaml).filter((x) => !x.startsWith('TG_DEST')), [
    'TG_VS_MATCH_INEFFECTIVE IST0131 VirtualService shop/shop info',
    'TG_VS_MATCH_INEFFECTIVE IST0131 VirtualService shop/shop info',
    'TG_VS_RULE_UNREACHABLE IST0130 VirtualService shop/shop warning',
    'TG_VS_RULE_UNREACHABLE IST0130 VirtualService shop/shop warning',
  ]);
});

test('IST0112/IST0101: a destination with several ports and none chosen; a mirror to an unknown host', () => {
  const yaml = `apiVersion: v1
kind: Service
metadata: {name: two, namespace: shop}
spec: {ports: [{name: http, port: 80}, {name: http-admin, port: 8080}]}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: shop, namespace: shop}
spec:
  hosts: [two]
  http: [{route: [{destination: {host: two}}], mirror: {host: nowhere}}]
`;
  assert.deepEqual(istio(yaml), [
    'TG_DEST_PORT_REQUIRED IST0112 VirtualService shop/shop info',
    'TG_MIRROR_NOT_IN_REGISTRY IST0101 VirtualService shop/shop error',
  ]);
});
