/**
 * The CA's material in Kubernetes, with the real client against the stand-in API server: the
 * self-signed `istio-ca-secret` is created on first start and reused by the next control plane; a
 * plugged-in `cacerts` Secret wins and is picked up while running (a rotation); a broken `cacerts`
 * is refused with the reason and the CA keeps what it had.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { FakeApiServer } from '../helpers/fake-apiserver.js';
import { makePki } from '../helpers/pki.js';
import { waitFor } from '../helpers/net.js';
import { requireTools } from '../helpers/tools.js';
import { loadKubeConfig } from '../../src/controlplane/kubernetes/source.js';
import { KubernetesCaSecrets } from '../../src/controlplane/kubernetes/ca-secret.js';
import { CertificateAuthority } from '../../src/controlplane/ca/authority.js';
import type { CaMaterial } from '../../src/controlplane/ca/material.js';

const NS = 'tollgate-system';

function secret(name: string, data: Record<string, string>): Record<string, unknown> {
  return { apiVersion: 'v1', kind: 'Secret', metadata: { name, namespace: NS }, data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v).toString('base64')])) };
}

test('CA in Kubernetes: istio-ca-secret created once and reused; cacerts wins and rotates; a broken cacerts is refused', { timeout: 120_000 }, async (t) => {
  if (!requireTools(t, 'openssl')) return;
  const api = new FakeApiServer();
  await api.start();
  const dir = mkdtempSync(join(tmpdir(), 'tg-ca-k8s-'));
  const pki = makePki();
  t.after(async () => {
    await api.stop();
    rmSync(dir, { recursive: true, force: true });
    pki.cleanup();
  });
  const kc = loadKubeConfig(api.writeKubeconfig(dir)).kubeConfig;
  const logs: string[] = [];
  const log = (l: string): void => void logs.push(l);

  // First start: no Secrets, so a self-signed root is created as istio-ca-secret.
  const first = new KubernetesCaSecrets(kc, NS, 'cluster.local', log, 100);
  const m1 = await first.load();
  assert.equal(m1.kind, 'self-signed');
  assert.match(new X509Certificate(m1.rootCertPem).subject, /O=cluster\.local/);
  assert.ok(api.requests.some((r) => r.method === 'POST' && r.path === `/api/v1/namespaces/${NS}/secrets` && r.status === 201), 'the Secret was created');
  assert.ok(logs.some((l) => l.includes(`created Secret ${NS}/istio-ca-secret`)));

  // A second control plane (a restart, another replica) reads the same root back.
  const second = new KubernetesCaSecrets(kc, NS, 'cluster.local', log, 100);
  const m2 = await second.load();
  assert.equal(m2.fingerprint, m1.fingerprint);
  assert.equal(m2.rootCertPem, m1.rootCertPem);

  const ca = new CertificateAuthority({ trustDomain: 'cluster.local', workloadCertTtlMs: 60_000 });
  t.after(() => ca.close());
  await ca.use(m2);
  const changes: CaMaterial[] = [];
  second.watch((m) => {
    changes.push(m);
    void ca.use(m);
  });
  t.after(() => second.close());
  first.close();

  // The operator plugs in an intermediate: cacerts wins over istio-ca-secret, picked up while running.
  const root = await pki.ca('plugged-root');
  const inter = await pki.intermediate('plugged-int', 'plugged-root');
  api.apply(secret('cacerts', { 'ca-cert.pem': pki.read(inter.cert), 'ca-key.pem': pki.read(inter.key), 'root-cert.pem': pki.read(root.cert), 'cert-chain.pem': pki.read(inter.cert) + pki.read(root.cert) }));
  const plugged = await waitFor(() => changes[0], 20_000, 'the cacerts Secret picked up');
  assert.equal(plugged.kind, 'plugged-in');
  await waitFor(() => ca.material?.fingerprint === plugged.fingerprint, 20_000, 'the CA signing with it');
  const bundle = ca.rootCertsPem();
  assert.ok(bundle.includes(m1.rootCertPem.trim()) && bundle.includes(pki.read(root.cert).trim()), 'old and new roots trusted during the transition');

  // A broken cacerts (the key of another certificate): refused with the reason; the CA keeps signing as before.
  const stranger = await pki.ca('stranger');
  api.apply(secret('cacerts', { 'ca-cert.pem': pki.read(inter.cert), 'ca-key.pem': pki.read(stranger.key), 'root-cert.pem': pki.read(root.cert), 'cert-chain.pem': pki.read(inter.cert) + pki.read(root.cert) }));
  await waitFor(() => logs.some((l) => l.includes(`Secret ${NS}/cacerts: ca-key.pem is not the key of ca-cert.pem`)), 20_000, 'the refusal logged');
  assert.equal(changes.length, 1);
  assert.equal(ca.material?.fingerprint, plugged.fingerprint);
});
