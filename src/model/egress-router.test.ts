import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeResources } from '../config/decode.js';
import type { Diagnostic } from '../config/diagnostics.js';
import { parseText } from '../config/load.js';
import type { DeploymentSpec } from '../config/types.js';
import type { Resource } from '../config/decode.js';
import { parseEgressRouter } from './egress-router.js';

function router(destination: string, extraEnv = '') {
  const text = `apiVersion: apps/v1
kind: Deployment
metadata: {name: r, namespace: ns}
spec:
  replicas: 1
  selector: {matchLabels: {app: r}}
  template:
    metadata: {labels: {app: r}}
    spec:
      initContainers:
      - name: egress-router
        env:
        - name: EGRESS_SOURCE
          value: 198.51.100.9
        - name: EGRESS_DESTINATION
          value: |
${destination.split('\n').map((l) => (l ? `            ${l}` : '')).join('\n')}
${extraEnv}      containers: [{name: wait}]
`;
  const { resources, diagnostics: d1 } = decodeResources(parseText(text, 'router.yaml').documents);
  assert.deepEqual(d1, []);
  const out: Diagnostic[] = [];
  const r = parseEgressRouter(resources[0] as Resource<DeploymentSpec>, out);
  return { r, out };
}

test('parses port rules (with destination port), tabs, comments, trailing whitespace and a fallback', () => {
  const { r, out } = router('80   tcp 203.0.113.25\n443\t tcp 203.0.113.25\t\n8080 tcp 203.0.113.26 80\n# comment\n203.0.113.27');
  assert.deepEqual(out, []);
  assert.deepEqual(r?.rules.map((x) => [x.port, x.protocol, x.destination, x.destinationPort, x.pos.line]), [
    [80, 'tcp', '203.0.113.25', 80, 17],
    [443, 'tcp', '203.0.113.25', 443, 18],
    [8080, 'tcp', '203.0.113.26', 80, 19],
  ]);
  assert.equal(r?.fallback?.destination, '203.0.113.27');
  assert.equal(r?.fallback?.pos.line, 21);
  assert.equal(r?.source, '198.51.100.9');
  assert.equal(r?.mode, 'legacy', 'no EGRESS_ROUTER_MODE: legacy (OpenShift 3 default)');
});

test('a commented-out fallback is not a fallback', () => {
  const { r } = router('80 tcp 203.0.113.25\n#203.0.113.27');
  assert.equal(r?.fallback, undefined);
});

test('unparsable lines are errors at their exact line, with what is wrong', () => {
  const { out, r } = router('80 tcp 203.0.113.25\n70000 tcpx 203.0.113.300\nhello\n80 tcp 203.0.113.9\n203.0.113.27\n203.0.113.28');
  assert.deepEqual(out.map((d) => [d.pos?.line, d.code]), [
    [18, 'TG_ROUTER_BAD_RULE'],
    [19, 'TG_ROUTER_BAD_RULE'],
    [20, 'TG_ROUTER_BAD_RULE'],
    [22, 'TG_ROUTER_BAD_RULE'],
  ]);
  assert.match(out[0]?.message ?? '', /port "70000" is not 1-65535; protocol "tcpx" is not tcp or udp; destination "203\.0\.113\.300" is not an IP address/);
  assert.match(out[2]?.message ?? '', /port 80\/tcp is already forwarded by line 17/);
  assert.match(out[3]?.message ?? '', /second fallback line/);
  assert.equal(r?.rules.length, 1);
});

test('http-proxy mode reads the allow/deny list', () => {
  const { r, out } = router('80 tcp 203.0.113.25', `        - name: EGRESS_ROUTER_MODE
          value: http-proxy
        - name: EGRESS_HTTP_PROXY_DESTINATION
          value: |
            !*.blocked.example
            *.partner.example
            203.0.113.0/24
`);
  assert.deepEqual(out, []);
  assert.equal(r?.mode, 'http-proxy');
  assert.deepEqual(r?.httpProxyRules.map((x) => [x.deny, x.pattern]), [[true, '*.blocked.example'], [false, '*.partner.example'], [false, '203.0.113.0/24']]);
});

test('EGRESS_SOURCE IP/prefix, EGRESS_GATEWAY off that subnet, and the datapath annotation', () => {
  const base = (source: string, gateway: string, annotation = '') => `apiVersion: apps/v1
kind: Deployment
metadata:
  name: r
  namespace: ns
${annotation}spec:
  selector: {matchLabels: {app: r}}
  template:
    metadata: {labels: {app: r}}
    spec:
      initContainers:
      - name: egress-router
        env:
        - {name: EGRESS_SOURCE, value: "${source}"}
        - {name: EGRESS_GATEWAY, value: "${gateway}"}
        - {name: EGRESS_DESTINATION, value: "203.0.113.25"}
        - {name: EGRESS_ROUTER_MODE, value: init}
      containers: [{name: wait}]
`;
  const parse = (text: string) => {
    const { resources } = decodeResources(parseText(text, 'r.yaml').documents);
    const out: Diagnostic[] = [];
    const r = parseEgressRouter(resources[0] as Resource<DeploymentSpec>, out);
    return { r, codes: out.map((d) => `${d.code}@${d.pos?.line}`) };
  };
  const ok = parse(base('198.51.100.99/24', '198.51.100.1'));
  assert.deepEqual(ok.codes, []);
  assert.equal(ok.r?.source, '198.51.100.99');
  assert.equal(ok.r?.sourcePrefix, 24);
  assert.equal(ok.r?.datapath, 'kernel');
  assert.deepEqual(parse(base('198.51.100.99/24', '192.0.2.1')).codes, ['TG_ROUTER_GATEWAY_OFF_SUBNET@15']);
  assert.deepEqual(parse(base('198.51.100.99/33', '198.51.100.1')).codes, ['TG_ROUTER_BAD_SOURCE@14']);
  assert.equal(parse(base('198.51.100.99', '198.51.100.1', '  annotations: {tollgate.io/router-datapath: userspace}\n')).r?.datapath, 'userspace');
  assert.deepEqual(parse(base('198.51.100.99', '198.51.100.1', '  annotations: {tollgate.io/router-datapath: ebpf}\n')).codes, ['TG_ROUTER_BAD_DATAPATH@6']);
});
