/**
 * Auto mTLS, read from the caller's clusters: mesh mTLS to a service whose workloads all run a
 * sidecar, unless a DestinationRule sets TLS, the destination port's PeerAuthentication is DISABLE
 * (the nginx ingress scenario: ingress gateway -> nginx:80), or a workload has no sidecar.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildSnapshot } from '../../src/snapshot/build.js';
import { identity, loadYaml } from '../helpers/pipeline.js';

const service = `apiVersion: v1
kind: Service
metadata: {name: nginx, namespace: web}
spec:
  selector: {app: nginx-app}
  ports: [{name: http, port: 80, targetPort: 8080}, {name: http-admin, port: 9000}]
---
`;
const pod = (containers: string): string => `apiVersion: v1\nkind: Pod\nmetadata: {name: nginx-1, namespace: web, labels: {app: nginx-app}}\nspec: {containers: [${containers}]}\n---\n`;
const withSidecar = pod('{name: nginx}, {name: istio-proxy}');

function tlsOf(yaml: string, port: number): unknown {
  const { model } = loadYaml(yaml);
  const snap = buildSnapshot(model, identity('sidecar', 'shop', { app: 'client' }));
  return snap.clusters.find((c) => c.name === `outbound|${port}||nginx.web.svc.cluster.local`)?.tls;
}

test('every workload runs a sidecar: ISTIO_MUTUAL (auto)', () => {
  assert.deepEqual(tlsOf(service + withSidecar, 80), { mode: 'ISTIO_MUTUAL', auto: true });
});

test('no sidecar, or no workload known: plaintext', () => {
  assert.equal(tlsOf(service + pod('{name: nginx}'), 80), undefined);
  assert.equal(tlsOf(service, 80), undefined);
});

test('portLevelMtls DISABLE on the target port: plaintext to that port only', () => {
  const pa = 'apiVersion: security.istio.io/v1beta1\nkind: PeerAuthentication\nmetadata: {name: nginx, namespace: web}\nspec:\n  selector: {matchLabels: {app: nginx-app}}\n  portLevelMtls:\n    8080: {mode: DISABLE}\n---\n';
  assert.equal(tlsOf(service + withSidecar + pa, 80), undefined);
  assert.deepEqual(tlsOf(service + withSidecar + pa, 9000), { mode: 'ISTIO_MUTUAL', auto: true });
});

test('a DestinationRule with tls wins over auto mTLS', () => {
  const dr = (mode: string): string => `apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: nginx, namespace: web}\nspec:\n  host: nginx.web.svc.cluster.local\n  trafficPolicy: {tls: {mode: ${mode}}}\n---\n`;
  assert.equal(tlsOf(service + withSidecar + dr('DISABLE'), 80), undefined);
  assert.deepEqual(tlsOf(service + withSidecar + dr('ISTIO_MUTUAL'), 80), { mode: 'ISTIO_MUTUAL' });
});
