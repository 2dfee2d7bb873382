/**
 * PeerAuthentication precedence as Istio applies it, read from the sidecar's inbound filter chains:
 * workload over namespace over mesh, UNSET inherits, portLevelMtls only on a workload policy and
 * an UNSET port inherits the workload's mode; the nginx ingress scenario (portLevelMtls DISABLE on
 * nginx's port 80) leaves exactly that port plaintext-only.
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
  ports: [{name: http, port: 80, targetPort: 80}, {name: https, port: 443, targetPort: 8443}, {name: tcp-db, port: 5432}]
---
`;
const pa = (name: string, ns: string, spec: string): string => `apiVersion: security.istio.io/v1beta1\nkind: PeerAuthentication\nmetadata: {name: ${name}, namespace: ${ns}}\nspec:\n${spec.replace(/^/gm, '  ')}\n---\n`;

/** The inbound mTLS mode per destination port (and `default` for the passthrough chain). */
function modes(yaml: string): Record<string, string> {
  const { model } = loadYaml(service + yaml);
  const snap = buildSnapshot(model, identity('sidecar', 'web', { app: 'nginx-app' }));
  const inbound = snap.listeners.find((l) => l.inboundCapture)!;
  const out: Record<string, string> = {};
  for (const c of inbound.filterChains) out[String(c.match.destinationPort)] = c.mtls ?? 'DISABLE';
  out['default'] = inbound.defaultFilterChain?.mtls ?? 'DISABLE';
  return out;
}

test('no PeerAuthentication: every inbound port is PERMISSIVE (mTLS and plaintext)', () => {
  assert.deepEqual(modes(''), { '80': 'PERMISSIVE', '8443': 'PERMISSIVE', '5432': 'PERMISSIVE', default: 'PERMISSIVE' });
});

test('mesh STRICT, namespace UNSET inherits it; a namespace PERMISSIVE overrides the mesh; a workload DISABLE overrides both', () => {
  const mesh = pa('default', 'istio-system', 'mtls: {mode: STRICT}');
  assert.deepEqual(modes(mesh + pa('ns', 'web', 'mtls: {mode: UNSET}')), { '80': 'STRICT', '8443': 'STRICT', '5432': 'STRICT', default: 'STRICT' });
  assert.deepEqual(modes(mesh + pa('ns', 'web', 'mtls: {mode: PERMISSIVE}')).default, 'PERMISSIVE');
  assert.deepEqual(modes(mesh + pa('w', 'web', 'selector: {matchLabels: {app: nginx-app}}\nmtls: {mode: DISABLE}')).default, 'DISABLE');
  assert.deepEqual(modes(mesh + pa('other', 'shop', 'mtls: {mode: DISABLE}')).default, 'STRICT', 'another namespace\'s policy does not apply');
});

test('portLevelMtls: the ingress scenario (DISABLE on 80 for app=nginx-app) opens just that port; UNSET ports inherit; a namespace policy\'s portLevelMtls is ignored', () => {
  const strictNs = pa('ns', 'web', 'mtls: {mode: STRICT}');
  const seed = pa('example-workload-policy', 'web', 'selector:\n  matchLabels: {app: nginx-app}\nportLevelMtls:\n  80: {mode: DISABLE}\n  8443: {mode: UNSET}\n  9000: {mode: PERMISSIVE}');
  assert.deepEqual(modes(strictNs + seed), { '80': 'DISABLE', '8443': 'STRICT', '5432': 'STRICT', '9000': 'PERMISSIVE', default: 'STRICT' });
  assert.deepEqual(modes(pa('ns', 'web', 'mtls: {mode: STRICT}\nportLevelMtls:\n  80: {mode: DISABLE}'))['80'], 'STRICT');
});
