/**
 * The CA's material in Kubernetes, with the real client against the stand-in API server: the
 * self-signed `istio-ca-secret` is created on first start and reused by the next control plane; a
 * plugged-in `cacerts` Secret wins and is picked up while running (a rotation); a broken `cacerts`
 * is refused with the reason and the CA keeps what it had. The real `control-plane --kubernetes`
 * serves a certificate from that CA and signs the identity the API server's TokenReview vouches for,
 * and publishes the CA's roots as ConfigMap istio-ca-root-cert in every namespace, kept up to date
 * through a rotation and put back when deleted (checked with the real kubectl).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { FakeApiServer, STANDARD_KINDS } from '../helpers/fake-apiserver.js';
import { startControlPlaneProcess } from '../helpers/control-plane-process.js';
import { makePki } from '../helpers/pki.js';
import { waitFor, waitForAsync } from '../helpers/net.js';
import { requireTools, run } from '../helpers/tools.js';
import { BIN } from '../helpers/tollgate.js';
import { getJsonTls } from '../helpers/control-plane-auth.js';
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
  const first = new KubernetesCaSecrets(kc, NS, 'cluster.local', log);
  const m1 = await first.load();
  assert.equal(m1.kind, 'self-signed');
  assert.match(new X509Certificate(m1.rootCertPem).subject, /O=cluster\.local/);
  assert.ok(api.requests.some((r) => r.method === 'POST' && r.path === `/api/v1/namespaces/${NS}/secrets` && r.status === 201), 'the Secret was created');
  assert.ok(logs.some((l) => l.includes(`created Secret ${NS}/istio-ca-secret`)));

  // A second control plane (a restart, another replica) reads the same root back.
  const second = new KubernetesCaSecrets(kc, NS, 'cluster.local', log);
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
  // Picked up by a watch on the two Secrets by name (what RBAC grants), not by polling.
  for (const name of ['cacerts', 'istio-ca-secret']) assert.ok(api.requests.some((r) => r.watch && r.path === `/api/v1/namespaces/${NS}/secrets` && r.query['fieldSelector'] === `metadata.name=${name}`), `a watch on ${name}`);
  assert.ok(!api.requests.some((r) => !r.watch && r.method === 'GET' && r.path === `/api/v1/namespaces/${NS}/secrets`), 'never a LIST of every Secret');
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

test('control-plane --kubernetes without --tls-cert: its certificate and the workload certificates come from istio-ca-secret; the identity is the TokenReview user', { timeout: 120_000 }, async (t) => {
  if (!requireTools(t, 'curl', 'openssl')) return;
  const api = new FakeApiServer();
  const apiPort = await api.start();
  const dir = mkdtempSync(join(tmpdir(), 'tg-ca-k8s-cli-'));
  t.after(async () => {
    await api.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  api.tokens.set('sa-token-of-edge-gw', 'system:serviceaccount:edge:gw');
  const child = spawn(process.execPath, [BIN, 'control-plane', '--kubernetes', '--kubeconfig', api.writeKubeconfig(dir), '--listen', '127.0.0.1:0', '--trust-domain', 'example.org'], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, POD_NAMESPACE: NS } });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  t.after(async () => {
    if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
    await exited;
  });
  await waitFor(() => /serving on 127\.0\.0\.1:\d+/.test(stderr) || child.exitCode !== null, 40_000, 'control plane listening');
  const port = Number(/serving on 127\.0\.0\.1:(\d+)/.exec(stderr)?.[1]);
  assert.ok(port > 0, stderr);
  // The root, as an operator would fetch it for the proxies' --control-plane-ca.
  const got = (await (await fetch(`http://127.0.0.1:${apiPort}/api/v1/namespaces/${NS}/secrets/istio-ca-secret`)).json()) as { type?: string; data: Record<string, string> };
  assert.equal(got.type, 'istio.io/ca-root');
  const rootFile = join(dir, 'root.pem');
  writeFileSync(rootFile, Buffer.from(got.data['ca-cert.pem'] ?? '', 'base64'));
  assert.match(new X509Certificate(readFileSync(rootFile)).subject, /O=example\.org/);

  const csr = join(dir, 'w.csr');
  const gen = await run('openssl', ['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', join(dir, 'w.key'), '-out', csr, '-subj', '/O=test'], { timeoutMs: 20_000 });
  assert.equal(gen.status, 0, gen.stderr);
  writeFileSync(join(dir, 'csr.json'), JSON.stringify({ csr: readFileSync(csr, 'utf8') }));
  const post = (token: string) => run('curl', ['-sS', '--max-time', '10', '--cacert', rootFile, '-H', `authorization: Bearer ${token}`, '--data-binary', `@${join(dir, 'csr.json')}`, '-w', '\n%{http_code}', `https://127.0.0.1:${port}/v1/certificate`], { timeoutMs: 20_000 });
  // curl verified the control plane's certificate with the CA root alone.
  const ok = await post('sa-token-of-edge-gw');
  assert.match(ok.stdout, /\n200$/, ok.stdout + ok.stderr);
  const body = JSON.parse(ok.stdout.slice(0, ok.stdout.lastIndexOf('\n'))) as { spiffeId: string; certChainPem: string };
  assert.equal(body.spiffeId, 'spiffe://example.org/ns/edge/sa/gw');
  writeFileSync(join(dir, 'chain.pem'), body.certChainPem);
  const verify = await run('openssl', ['verify', '-CAfile', rootFile, join(dir, 'chain.pem')], { timeoutMs: 20_000 });
  assert.match(verify.stdout, /chain\.pem: OK/, verify.stdout + verify.stderr);
  const unknown = await post('a-token-the-api-server-does-not-know');
  assert.match(unknown.stdout, /\n401$/);
  // The CA's Secret (holding its key) is never config: the cluster has no other object, so the config is empty.
  await waitFor(() => /generation 1 accepted/.test(stderr), 20_000, 'the first config');
  const view = await getJsonTls(port, '/v1/config', readFileSync(rootFile), 'sa-token-of-edge-gw');
  assert.equal((view.body as { objects?: number }).objects, 0, view.text);
});

test('control-plane --kubernetes publishes the CA roots as ConfigMap istio-ca-root-cert in every namespace, through a rotation (kubectl reads it)', { timeout: 120_000 }, async (t) => {
  if (!requireTools(t, 'kubectl', 'openssl')) return;
  const api = new FakeApiServer({ kinds: [...STANDARD_KINDS, { kind: 'ConfigMap', group: '', version: 'v1', plural: 'configmaps', namespaced: true }] });
  await api.start();
  const dir = mkdtempSync(join(tmpdir(), 'tg-ca-k8s-cm-'));
  const pki = makePki();
  t.after(async () => {
    await api.stop();
    rmSync(dir, { recursive: true, force: true });
    pki.cleanup();
  });
  for (const ns of [NS, 'shop', 'kube-system']) api.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
  const kubeconfig = api.writeKubeconfig(dir);
  const cp = await startControlPlaneProcess(['--kubernetes', '--kubeconfig', kubeconfig], [], { POD_NAMESPACE: NS });
  t.after(cp.stop);
  const kubectl = (...args: string[]) => run('kubectl', ['--kubeconfig', kubeconfig, ...args], { timeoutMs: 30_000 });
  const published = async (ns: string): Promise<string> => {
    const r = await kubectl('get', 'configmap', 'istio-ca-root-cert', '-n', ns, '-o', 'jsonpath={.data.root-cert\\.pem}');
    return r.status === 0 ? r.stdout : '';
  };

  // The self-signed root, in each namespace but Kubernetes' own.
  await waitFor(() => /published the CA roots \(1 certificate\(s\)\) in ConfigMap shop\/istio-ca-root-cert/.test(cp.stderr()), 30_000, 'published in shop');
  const selfSigned = (await (await fetch(`${api.url}/api/v1/namespaces/${NS}/secrets/istio-ca-secret`)).json()) as { data: Record<string, string> };
  const root = Buffer.from(selfSigned.data['ca-cert.pem'] ?? '', 'base64').toString();
  for (const ns of [NS, 'shop']) assert.equal(await published(ns), root, `kubectl reads the root in ${ns}`);
  assert.equal(await published('kube-system'), '', 'nothing in kube-system');

  // A namespace created later gets it too.
  const created = await kubectl('create', 'namespace', 'late');
  assert.equal(created.status, 0, created.stderr);
  await waitFor(() => /in ConfigMap late\/istio-ca-root-cert/.test(cp.stderr()), 30_000, 'published in the new namespace');
  assert.equal(await published('late'), root);

  // A rotation to a new root: the ConfigMap holds the old and the new root during the transition.
  const newRoot = await pki.ca('k8s-new-root');
  const inter = await pki.intermediate('k8s-new-int', 'k8s-new-root');
  api.apply(secret('cacerts', { 'ca-cert.pem': pki.read(inter.cert), 'ca-key.pem': pki.read(inter.key), 'root-cert.pem': pki.read(newRoot.cert), 'cert-chain.pem': pki.read(inter.cert) + pki.read(newRoot.cert) }));
  const both = await waitForAsync(async () => {
    const pem = await published('shop');
    return pem.includes(pki.read(newRoot.cert).trim()) ? pem : undefined;
  }, 30_000, 'the new root published');
  assert.ok(both.includes(root.trim()), 'the old root stays while certificates chained to it can be valid');

  // Deleted by someone: put back.
  const del = await kubectl('delete', 'configmap', 'istio-ca-root-cert', '-n', 'shop');
  assert.equal(del.status, 0, del.stderr);
  await waitForAsync(async () => (await published('shop')) === both, 30_000, 'the ConfigMap put back');
});
