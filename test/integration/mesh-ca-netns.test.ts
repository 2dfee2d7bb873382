/**
 * The mesh CA end to end, without a test PKI for the workloads: `tollgate control-plane --ca-dir`
 * with bootstrap tokens runs in the node namespace; two sidecars in pod namespaces (capture rules
 * from `tollgate init`, uid 1337) get their workload certificates only from it, over the
 * authenticated stream (their own key, a CSR; the test writes no certificate for them). They trust
 * the control plane through its root, copied as a ConfigMap mount would hold it.
 *
 *   node   192.0.2.1 (bridge; the control plane listens on 192.0.2.1:15010)
 *   pod A  192.0.2.10 productpage (sa productpage)   pod B 192.0.2.20 reviews (sa reviews)
 *
 * Then an operator plugs in an intermediate from a NEW root (Istio's cacerts files) while a load
 * generator in pod A calls B continuously: no request fails, and new connections present
 * certificates from the new chain.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { X509Certificate, randomBytes } from 'node:crypto';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitFor } from '../helpers/net.js';
import { makePki } from '../helpers/pki.js';
import { NODE_IP, PodLab, podLabSkip, twoPodsConfig, type LabPod } from '../helpers/pod-lab.js';
import { startControlPlaneProcess, type ControlPlaneProcess } from '../helpers/control-plane-process.js';

const skip = podLabSkip('mesh-ca-netns', ['openssl']);

const POD_A = '192.0.2.10';
const POD_B = '192.0.2.20';
const CLUSTER_IP_B = '203.0.113.20';
const CP = `${NODE_IP}:15010`;
const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/**
 * Pod A's load generator: `CONCURRENCY` loops of GET http://reviews/load, a new connection each, until
 * stdin closes (or MAX_MS / MAX_REQUESTS); prints progress lines, then a summary line.
 */
const LOAD = `
const http = require('node:http');
const MAX_MS = 120000, MAX_REQUESTS = 200000, CONCURRENCY = 4;
let ok = 0, failed = 0, stopping = false, running = CONCURRENCY;
const errors = [];
const started = Date.now();
process.stdin.on('end', () => (stopping = true));
process.stdin.resume();
const progress = setInterval(() => console.log(JSON.stringify({ progress: ok, failed })), 250);
const finish = () => {
  if (--running > 0) return;
  clearInterval(progress);
  console.log(JSON.stringify({ done: true, ok, failed, errors: errors.slice(0, 10) }));
  process.exit(0);
};
const one = () => {
  if (stopping || Date.now() - started > MAX_MS || ok + failed >= MAX_REQUESTS) return finish();
  let settled = false;
  const settle = (err) => {
    if (settled) return;
    settled = true;
    if (err === undefined) ok++; else { failed++; errors.push(err); }
    one();
  };
  const req = http.get({ host: '${CLUSTER_IP_B}', port: 80, path: '/load', agent: false }, (res) => {
    res.resume();
    res.on('end', () => settle(res.statusCode === 200 ? undefined : 'HTTP ' + res.statusCode));
    res.on('error', (e) => settle(e.message));
  });
  req.setTimeout(5000, () => req.destroy(new Error('timeout')));
  req.on('error', (e) => settle(e.message));
};
for (let i = 0; i < CONCURRENCY; i++) one();
`;

describe('mesh CA end to end: sidecars get certificates only from the control plane, and a new root under load', { skip, concurrency: false, timeout: 180_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'tg-meshca-'));
  chmodSync(dir, 0o755); // the sidecars run as uid 1337
  const configDir = join(dir, 'config');
  const caDir = join(dir, 'ca');
  /** The control plane's root as the pods see it (what the istio-ca-root-cert ConfigMap mount holds). */
  const cpRoot = join(dir, 'root-cert.pem');
  const lab = new PodLab({ prefix: 'tgm', pods: [{ key: 'a', ip: POD_A, app: 'productpage' }, { key: 'b', ip: POD_B, app: 'reviews' }] });
  const pods = { a: lab.pod('a'), b: lab.pod('b') };
  const tokens: Record<string, string> = { productpage: randomBytes(24).toString('hex'), reviews: randomBytes(24).toString('hex'), outsider: randomBytes(24).toString('hex') };
  const tokenFile = (sa: string): string => join(dir, `token-${sa}`);
  let cp: ControlPlaneProcess | undefined;
  const cpLog = (): string => cp?.stderr() ?? '';
  const pki = makePki();

  const startSidecar = (pod: LabPod): void => {
    const labels = join(dir, `${pod.app}.labels`);
    writeFileSync(labels, `app="${pod.app}"\n`, { mode: 0o644 });
    lab.startSidecar(pod, ['--control-plane', CP, '--control-plane-ca', cpRoot, '--bootstrap-token-file', tokenFile(pod.app), '--role', 'sidecar', '--labels-file', labels, '--dns-server', '127.0.0.1:53', '--admin', 'off', '--status-ports', 'on', '--drain-timeout', '500']);
  };

  /** Certificates a sidecar logged receiving, in order. */
  const issuedTo = (pod: LabPod): string[] => pod.sidecar!.stderr.join('').match(/workload certificate spiffe:\/\/\S+ valid until \S+/g) ?? [];

  /** A mesh client certificate for `sa`, from the CA over its API (openssl key and CSR, curl), in the node namespace. */
  const clientCert = async (sa: string, name: string, cpTrust = cpRoot): Promise<{ leaf: string; rest: string; key: string; roots: string }> => {
    const p = (f: string): string => join(dir, `${name}.${f}`);
    const csr = await lab.run(lab.nodeNs, 'openssl', ['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', p('key'), '-out', p('csr'), '-subj', '/O=test'], { timeoutMs: 20_000 });
    assert.equal(csr.status, 0, csr.stderr);
    writeFileSync(p('json'), JSON.stringify({ csr: readFileSync(p('csr'), 'utf8') }));
    const r = await lab.run(lab.nodeNs, 'curl', ['-sS', '--max-time', '10', '--cacert', cpTrust, '-H', `authorization: Bearer ${tokens[sa]}`, '--data-binary', `@${p('json')}`, `https://${CP}/v1/certificate`], { timeoutMs: 20_000 });
    const body = JSON.parse(r.stdout) as { certChainPem: string; rootCertsPem: string };
    const chain = body.certChainPem.match(PEM_CERT) ?? [];
    writeFileSync(p('leaf'), chain[0] + '\n');
    writeFileSync(p('rest'), chain.slice(1).join('\n') + '\n');
    writeFileSync(p('roots'), body.rootCertsPem);
    return { leaf: p('leaf'), rest: p('rest'), key: p('key'), roots: p('roots') };
  };

  /** openssl s_client to a pod's inbound port with a mesh client certificate, verifying against `caFile`. */
  const sClient = async (podIp: string, client: { leaf: string; rest: string; key: string }, caFile: string): Promise<{ verified: boolean; chain: X509Certificate[]; out: string }> => {
    const r = await lab.run(lab.nodeNs, 'openssl', ['s_client', '-connect', `${podIp}:9080`, '-showcerts', '-CAfile', caFile, '-cert', client.leaf, '-cert_chain', client.rest, '-key', client.key, '-verify_return_error', '-alpn', 'istio'], { input: 'Q\n', timeoutMs: 15_000 });
    const chain = (r.stdout.match(PEM_CERT) ?? []).map((pem) => new X509Certificate(pem));
    return { verified: /Verify return code: 0 \(ok\)/.test(r.stdout), chain, out: r.stdout + r.stderr };
  };

  before(async () => {
    mkdirSync(configDir);
    writeFileSync(join(configDir, 'two-pods.yaml'), twoPodsConfig('REGISTRY_ONLY'));
    writeFileSync(join(dir, 'tokens'), `${tokens['productpage']} default productpage\n${tokens['reviews']} default reviews\n${tokens['outsider']} other outsider\n`);
    for (const [sa, t] of Object.entries(tokens)) writeFileSync(tokenFile(sa), t + '\n', { mode: 0o644 });
    lab.create();
    await lab.startApps();
    cp = await startControlPlaneProcess(['-f', configDir, '--ca-dir', caDir, '--bootstrap-tokens', join(dir, 'tokens'), '--listen', CP], ['ip', 'netns', 'exec', lab.nodeNs]);
    copyFileSync(join(caDir, 'root-cert.pem'), cpRoot);
    chmodSync(cpRoot, 0o644);
    for (const pod of Object.values(pods)) startSidecar(pod);
    for (const pod of Object.values(pods)) {
      await lab.waitReady(pod, 30_000);
      await waitFor(() => issuedTo(pod).length > 0, 30_000, `${pod.app}'s workload certificate`);
    }
  });

  after(async () => {
    await lab.stop();
    await cp?.stop();
    rmSync(dir, { recursive: true, force: true });
    pki.cleanup();
  });

  it('each sidecar got its own identity from the CA, for its credential', () => {
    assert.match(issuedTo(pods.a)[0]!, /spiffe:\/\/cluster\.local\/ns\/default\/sa\/productpage /);
    assert.match(issuedTo(pods.b)[0]!, /spiffe:\/\/cluster\.local\/ns\/default\/sa\/reviews /);
    assert.match(cpLog(), /issued spiffe:\/\/cluster\.local\/ns\/default\/sa\/productpage to/);
    assert.match(cpLog(), /issued spiffe:\/\/cluster\.local\/ns\/default\/sa\/reviews to/);
  });

  it('A -> B goes over mTLS automatically: B logs and counts mutual_tls with A\'s SPIFFE ID', async () => {
    const r = await lab.curl(pods.a, `http://${CLUSTER_IP_B}/over-mtls`);
    assert.equal(r.code, '200', r.stderr + r.body);
    assert.equal((JSON.parse(r.body) as { app: string }).app, 'reviews');
    const inbound = await waitFor(() => pods.b.sidecar!.records().find((x) => x.path === '/over-mtls'), 5000, 'inbound log on B');
    assert.equal(inbound.upstream_cluster, 'inbound|9080||');
    assert.equal(inbound.downstream_peer_uri_san, 'spiffe://cluster.local/ns/default/sa/productpage');
    const metrics = await lab.run(pods.b.ns, 'curl', ['-sS', '--max-time', '3', 'http://127.0.0.1:15090/stats/prometheus'], { timeoutMs: 5000 });
    assert.match(metrics.stdout, /^istio_requests_total\{reporter="destination",.*connection_security_policy="mutual_tls",source_principal="spiffe:\/\/cluster\.local\/ns\/default\/sa\/productpage",destination_principal="spiffe:\/\/cluster\.local\/ns\/default\/sa\/reviews"[^}]*\} [1-9]/m);
  });

  it('openssl s_client to B\'s inbound port: B\'s certificate from the CA, chained to the CA\'s root', async () => {
    const outsider = await clientCert('outsider', 'outsider-1');
    const s = await sClient(POD_B, outsider, cpRoot);
    assert.ok(s.verified, s.out);
    assert.equal(s.chain[0]!.subjectAltName, 'URI:spiffe://cluster.local/ns/default/sa/reviews');
    const root = new X509Certificate(readFileSync(join(caDir, 'root-cert.pem')));
    assert.ok(s.chain[0]!.checkIssued(root) && s.chain[0]!.verify(root.publicKey), 'B\'s leaf is signed by the CA\'s root');
  });

  it('a new root and intermediate plugged in under load: 0 failed requests, new connections present the new chain', async (t) => {
    const oldRoot = readFileSync(join(caDir, 'root-cert.pem'), 'utf8');
    const load = spawn('ip', ['netns', 'exec', pods.a.ns, process.execPath, '-e', LOAD], { stdio: ['pipe', 'pipe', 'inherit'] });
    const lines: string[] = [];
    let rotatedAt = 0;
    load.stdout!.on('data', (d: Buffer) => lines.push(...d.toString().split('\n').filter(Boolean)));
    const progress = (): { progress: number; failed: number } => JSON.parse(lines.filter((l) => l.includes('"progress"')).at(-1) ?? '{"progress":0,"failed":0}') as { progress: number; failed: number };
    try {
      await waitFor(() => progress().progress >= 50 || load.exitCode !== null, 30_000, 'load running');
      const before = { a: issuedTo(pods.a).length, b: issuedTo(pods.b).length };

      // The operator's new CA: an intermediate from a new root, in Istio's cacerts layout, each file
      // replaced atomically.
      const newRoot = await pki.ca('new-root');
      const inter = await pki.intermediate('new-intermediate', 'new-root');
      const files: Record<string, string> = {
        'ca-cert.pem': pki.read(inter.cert),
        'ca-key.pem': pki.read(inter.key),
        'root-cert.pem': pki.read(newRoot.cert),
        'cert-chain.pem': pki.read(inter.cert) + pki.read(newRoot.cert),
      };
      for (const [name, content] of Object.entries(files)) {
        writeFileSync(join(dir, `${name}.new`), content, { mode: name === 'ca-key.pem' ? 0o600 : 0o644 });
        renameSync(join(dir, `${name}.new`), join(caDir, name));
      }
      rotatedAt = progress().progress;
      await waitFor(() => /signing with plugged-in/.test(cpLog()), 30_000, 'the control plane signing with the new intermediate');
      await waitFor(() => issuedTo(pods.a).length > before.a && issuedTo(pods.b).length > before.b, 30_000, 'both sidecars renewed from the new CA');
      // Keep the load on a while after both renewed.
      const renewedAt = progress().progress;
      await waitFor(() => progress().progress >= renewedAt + 100 || load.exitCode !== null, 60_000, 'requests after the renewal');

      // New connections: each sidecar now presents a leaf from the new intermediate, verified by the new root alone.
      // The control plane's own certificate is from the new CA too: the client trusts both roots.
      const bothRoots = join(dir, 'both-roots.pem');
      writeFileSync(bothRoots, oldRoot + pki.read(newRoot.cert));
      const outsider = await clientCert('outsider', 'outsider-2', bothRoots);
      const bundle = readFileSync(outsider.roots, 'utf8');
      assert.ok(bundle.includes(oldRoot.trim()) && bundle.includes(pki.read(newRoot.cert).trim()), 'the trust bundle holds the old and the new root during the transition');
      const interCert = new X509Certificate(files['ca-cert.pem']!);
      for (const ip of [POD_B, POD_A]) {
        const s = await sClient(ip, outsider, newRoot.cert);
        assert.ok(s.verified, s.out);
        assert.ok(s.chain[0]!.checkIssued(interCert), `${ip} presents a leaf issued by the new intermediate`);
      }
    } finally {
      load.stdin!.end();
    }
    await waitFor(() => lines.some((l) => l.includes('"done"')), 15_000, 'the load generator\'s summary');
    const summary = JSON.parse(lines.find((l) => l.includes('"done"'))!) as { ok: number; failed: number; errors: string[] };
    t.diagnostic(`load: ${summary.ok} requests, ${summary.failed} failed; ${rotatedAt} before the rotation`);
    assert.equal(summary.failed, 0, `failed requests: ${summary.errors.join('; ')}`);
    assert.ok(summary.ok >= 150, `requests made: ${summary.ok}`);
  });
});
