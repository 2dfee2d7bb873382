/** EgressIP by caller namespace: analyze warns about a namespace no connection can be attributed to. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { analyzeModel } from '../../src/analyze/analyze.js';
import { loadYaml } from '../helpers/pipeline.js';

const base = `apiVersion: v1
kind: Namespace
metadata: {name: a, labels: {team: a}}
---
apiVersion: k8s.ovn.org/v1
kind: EgressIP
metadata: {name: egress-a}
spec: {egressIPs: [198.51.100.10], namespaceSelector: {matchLabels: {team: a}}}
---
apiVersion: network.openshift.io/v1
kind: NetNamespace
metadata: {name: b}
netname: b
egressIPs: [198.51.100.11]
---
`;
const pod = 'apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: a}\nspec: {containers: [{name: app}]}\nstatus: {podIP: 10.1.0.5}\n---\n';
const mtlsGateway = `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: egress, namespace: istio-system}
spec:
  selector: {istio: egressgateway}
  servers: [{port: {number: 443, name: tls, protocol: TLS}, hosts: [partner.example], tls: {mode: ISTIO_MUTUAL}}]
`;

function unseen(yaml: string): string[] {
  const c = loadYaml(yaml);
  return analyzeModel(c.model).filter((d) => d.code === 'TG_EGRESSIP_NAMESPACE_UNSEEN').map((d) => `${d.resource ?? ''}: ${d.message.split(':')[0]!}`);
}

test('a namespace without pod IPs in the config, with no ISTIO_MUTUAL Gateway server, is never attributed: warning', () => {
  const found = unseen(base);
  assert.equal(found.length, 2, found.join('\n'));
  assert.ok(found.some((f) => f.includes('namespace a')));
  assert.ok(found.some((f) => f.includes('namespace b')));
  assert.deepEqual(unseen(base + pod).map((f) => f.includes('namespace b')), [true], 'a Pod with an IP makes namespace a visible');
});

test('a Gateway server that terminates ISTIO_MUTUAL sees every namespace through its callers\' certificates', () => {
  assert.deepEqual(unseen(base + mtlsGateway), []);
});
