/**
 * The control plane's CA, driven as a user drives it: the real `tollgate control-plane --ca-dir`
 * process, real curl and openssl. A proxy's CSR is signed for the identity of its credential (the
 * SPIFFE URI SAN openssl shows, a chain `openssl verify` accepts), never for another service
 * account; the port speaks only TLS with a certificate from the same CA; the root survives a
 * restart; a proxy renews a short-lived certificate on its own, and a plugged-in intermediate
 * reaches it with a trust bundle holding the old and the new root.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createPrivateKey, randomBytes, X509Certificate } from 'node:crypto';
import { startControlPlaneProcess, type ControlPlaneProcess } from '../helpers/control-plane-process.js';
import { waitFor } from '../helpers/net.js';
import { makePki } from '../helpers/pki.js';
import { requireTools, run } from '../helpers/tools.js';
import { docs, gateway } from '../helpers/istio-yaml.js';
import { parseRunArgs, startFromControlPlane } from '../../src/cli/run.js';
import type { WorkloadCertificate } from '../../src/shared/workload-identity.js';

/** `tollgate control-plane ARGS`, stopped (by PID) when the test ends. */
async function startControlPlane(t: TestContext, args: readonly string[]): Promise<ControlPlaneProcess> {
  const cp = await startControlPlaneProcess(args);
  t.after(cp.stop);
  return cp;
}

interface Setup {
  readonly dir: string;
  readonly caDir: string;
  readonly configDir: string;
  readonly tokensFile: string;
  /** service account -> token (all in namespace edge) */
  readonly tokens: Record<'sa-a' | 'sa-b', string>;
  tokenFile(sa: 'sa-a' | 'sa-b'): string;
}

function setup(t: TestContext): Setup {
  const dir = mkdtempSync(join(tmpdir(), 'tg-ca-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const configDir = join(dir, 'config');
  const caDir = join(dir, 'ca');
  const tokens = { 'sa-a': randomBytes(24).toString('hex'), 'sa-b': randomBytes(24).toString('hex') };
  const tokensFile = join(dir, 'tokens');
  writeFileSync(tokensFile, `${tokens['sa-a']} edge sa-a\n${tokens['sa-b']} edge sa-b\n`);
  for (const [sa, tok] of Object.entries(tokens)) writeFileSync(join(dir, `token-${sa}`), tok + '\n');
  mkdirSync(configDir);
  writeFileSync(join(configDir, 'edge.yaml'), docs(gateway('edge', 'edge', 'edge', '80/HTTP/shop.test')));
  return { dir, caDir, configDir, tokensFile, tokens, tokenFile: (sa) => join(dir, `token-${sa}`) };
}

/** A CSR made by openssl with its own key; `san` e.g. "URI:spiffe://..." (none when undefined). */
async function opensslCsr(dir: string, name: string, san: string | undefined): Promise<string> {
  const args = ['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', join(dir, `${name}.key`), '-out', join(dir, `${name}.csr`), '-subj', '/O=test'];
  if (san !== undefined) args.push('-addext', `subjectAltName=${san}`);
  const r = await run('openssl', args, { timeoutMs: 20_000 });
  assert.equal(r.status, 0, r.stderr);
  return readFileSync(join(dir, `${name}.csr`), 'utf8');
}

/** POST /v1/certificate with curl; returns the HTTP status and body. */
async function requestCertificate(port: number, rootFile: string, token: string, csr: string, dir: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const bodyFile = join(dir, `body-${randomBytes(4).toString('hex')}.json`);
  writeFileSync(bodyFile, JSON.stringify({ csr }));
  const r = await run('curl', ['-sS', '--max-time', '10', '--cacert', rootFile, '-H', `authorization: Bearer ${token}`, '-H', 'content-type: application/json', '--data-binary', `@${bodyFile}`, '-w', '\n%{http_code}', `https://127.0.0.1:${port}/v1/certificate`], { timeoutMs: 20_000 });
  const nl = r.stdout.lastIndexOf('\n');
  const status = Number(r.stdout.slice(nl + 1));
  let body: Record<string, unknown> = {};
  try {
    body = JSON.parse(r.stdout.slice(0, nl)) as Record<string, unknown>;
  } catch {
    body = { raw: r.stdout + r.stderr };
  }
  return { status, body };
}

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n?/g;

/** `openssl verify` of a chain's leaf against `rootsFile`, the rest of the chain as untrusted intermediates. */
async function opensslVerify(dir: string, chainPem: string, rootsFile: string, at?: Date): Promise<{ ok: boolean; out: string }> {
  const certs = chainPem.match(PEM_CERT) ?? [];
  const id = randomBytes(4).toString('hex');
  writeFileSync(join(dir, `leaf-${id}.pem`), certs[0] ?? '');
  writeFileSync(join(dir, `rest-${id}.pem`), certs.slice(1).join('') || (certs[0] ?? ''));
  const r = await run('openssl', ['verify', ...(at ? ['-attime', String(Math.floor(at.getTime() / 1000))] : []), '-CAfile', rootsFile, '-untrusted', join(dir, `rest-${id}.pem`), join(dir, `leaf-${id}.pem`)], { timeoutMs: 20_000 });
  return { ok: r.status === 0 && /: OK/.test(r.stdout), out: r.stdout + r.stderr };
}

async function opensslText(dir: string, pem: string): Promise<string> {
  const f = join(dir, `x-${randomBytes(4).toString('hex')}.pem`);
  writeFileSync(f, pem);
  const r = await run('openssl', ['x509', '-in', f, '-noout', '-text'], { timeoutMs: 20_000 });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout;
}

test('CA (--ca-dir): issues the credential\'s SPIFFE identity only, TLS only, wrong token refused, root kept across a restart', { timeout: 120_000 }, async (t) => {
  if (!requireTools(t, 'curl', 'openssl')) return;
  const s = setup(t);
  const cpArgs = ['-f', s.configDir, '--ca-dir', s.caDir, '--bootstrap-tokens', s.tokensFile];
  let cp = await startControlPlane(t, cpArgs);
  const rootFile = join(s.caDir, 'root-cert.pem');

  // A self-signed root was generated, its key private to the owner.
  assert.equal(statSync(join(s.caDir, 'ca-key.pem')).mode & 0o777, 0o600);
  const root = new X509Certificate(readFileSync(rootFile));
  assert.ok(root.ca, 'the root is a CA certificate');
  assert.match(root.subject, /O=cluster\.local/);
  assert.match(cp.stderr(), /generated a self-signed root/);

  // The port speaks TLS only, with a certificate the CA issued (curl verifies it with the root alone).
  const plain = await run('curl', ['-sS', '--max-time', '3', '-w', '\nHTTP %{http_code}\n', `http://127.0.0.1:${cp.port}/ready`], { timeoutMs: 10_000 });
  assert.match(plain.stdout, /HTTP 000/, plain.stdout + plain.stderr);
  const ready = await run('curl', ['-sS', '--max-time', '5', '--cacert', rootFile, '-w', '\nHTTP %{http_code}\n', `https://127.0.0.1:${cp.port}/ready`], { timeoutMs: 10_000 });
  assert.match(ready.stdout, /HTTP 200/, ready.stdout + ready.stderr);

  // sa-a asks for itself: a chain that verifies to the root, with the SPIFFE ID as URI SAN.
  const own = await requestCertificate(cp.port, rootFile, s.tokens['sa-a'], await opensslCsr(s.dir, 'own', 'URI:spiffe://cluster.local/ns/edge/sa/sa-a'), s.dir);
  assert.equal(own.status, 200, JSON.stringify(own.body));
  assert.equal(own.body['spiffeId'], 'spiffe://cluster.local/ns/edge/sa/sa-a');
  const chain = String(own.body['certChainPem']);
  const verified = await opensslVerify(s.dir, chain, rootFile);
  assert.ok(verified.ok, verified.out);
  const text = await opensslText(s.dir, chain.match(PEM_CERT)![0]!);
  assert.match(text, /URI:spiffe:\/\/cluster\.local\/ns\/edge\/sa\/sa-a/);
  assert.match(text, /TLS Web Server Authentication, TLS Web Client Authentication/);
  assert.match(text, /CA:FALSE/);
  // 24 h by default (notBefore is set a few minutes back for clock skew).
  const leaf = new X509Certificate(chain.match(PEM_CERT)![0]!);
  const lifetimeH = (Date.parse(leaf.validTo) - Date.now()) / 3_600_000;
  assert.ok(lifetimeH > 23.5 && lifetimeH <= 24, `lifetime ${lifetimeH} h`);
  assert.equal(own.body['rootCertsPem'], readFileSync(rootFile, 'utf8'));

  // A request that names no identity gets the credential's.
  const unnamed = await requestCertificate(cp.port, rootFile, s.tokens['sa-b'], await opensslCsr(s.dir, 'unnamed', undefined), s.dir);
  assert.equal(unnamed.status, 200, JSON.stringify(unnamed.body));
  assert.equal(unnamed.body['spiffeId'], 'spiffe://cluster.local/ns/edge/sa/sa-b');

  // sa-a asking for sa-b: refused and logged. Asking for a DNS name too.
  const foreign = await requestCertificate(cp.port, rootFile, s.tokens['sa-a'], await opensslCsr(s.dir, 'foreign', 'URI:spiffe://cluster.local/ns/edge/sa/sa-b'), s.dir);
  assert.equal(foreign.status, 403, JSON.stringify(foreign.body));
  assert.doesNotMatch(JSON.stringify(foreign.body), /BEGIN CERTIFICATE/);
  await waitFor(() => /refused a certificate to 127\.0\.0\.1:\d+ authenticated as edge\/sa-a \(bootstrap-token\): the request asks for spiffe:\/\/cluster\.local\/ns\/edge\/sa\/sa-b/.test(cp.stderr()), 5000, 'the refusal logged');
  const otherNs = await requestCertificate(cp.port, rootFile, s.tokens['sa-a'], await opensslCsr(s.dir, 'otherns', 'URI:spiffe://cluster.local/ns/kube-system/sa/sa-a'), s.dir);
  assert.equal(otherNs.status, 403);
  const dns = await requestCertificate(cp.port, rootFile, s.tokens['sa-a'], await opensslCsr(s.dir, 'dns', 'DNS:control-plane.example'), s.dir);
  assert.equal(dns.status, 403);

  // A wrong token, or none: 401, nothing signed.
  const csr = await opensslCsr(s.dir, 'anon', undefined);
  const wrong = await requestCertificate(cp.port, rootFile, '0123456789abcdef0123456789abcdef', csr, s.dir);
  assert.equal(wrong.status, 401);
  assert.doesNotMatch(JSON.stringify(wrong.body), /BEGIN CERTIFICATE/);
  // A CSR whose signature does not match its key (the requester does not hold the key): 400.
  const der = Buffer.from(csr.replace(/-----[A-Z ]+-----|\s/g, ''), 'base64');
  der.writeUInt8(der.readUInt8(der.length - 1) ^ 0x01, der.length - 1); // the last byte of the signature
  const tampered = `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`;
  const bad = await requestCertificate(cp.port, rootFile, s.tokens['sa-a'], tampered, s.dir);
  assert.equal(bad.status, 400, JSON.stringify(bad.body));

  // Restart: the same root and key are used, so certificates issued before keep verifying.
  const keyBefore = readFileSync(join(s.caDir, 'ca-key.pem'), 'utf8');
  await cp.stop();
  cp = await startControlPlane(t, cpArgs);
  assert.doesNotMatch(cp.stderr(), /generated a self-signed root/);
  assert.equal(readFileSync(join(s.caDir, 'ca-key.pem'), 'utf8'), keyBefore);
  assert.equal(new X509Certificate(readFileSync(rootFile)).fingerprint256, root.fingerprint256);
  const again = await requestCertificate(cp.port, rootFile, s.tokens['sa-a'], await opensslCsr(s.dir, 'again', undefined), s.dir);
  assert.equal(again.status, 200);
  assert.ok((await opensslVerify(s.dir, String(again.body['certChainPem']), rootFile)).ok);
  assert.ok((await opensslVerify(s.dir, chain, rootFile)).ok, 'the certificate from before the restart still verifies');
});

test('CA: a proxy keeps its own key, renews a short-lived certificate, and follows a plugged-in intermediate', { timeout: 120_000 }, async (t) => {
  if (!requireTools(t, 'openssl')) return;
  const s = setup(t);
  const cp = await startControlPlane(t, ['-f', s.configDir, '--ca-dir', s.caDir, '--bootstrap-tokens', s.tokensFile, '--workload-cert-ttl', '4s']);
  const rootFile = join(s.caDir, 'root-cert.pem');
  const oldRoot = readFileSync(rootFile, 'utf8');
  const proxy = await startFromControlPlane(
    parseRunArgs(['--control-plane', `127.0.0.1:${cp.port}`, '--control-plane-ca', rootFile, '--bootstrap-token-file', s.tokenFile('sa-a'), '--role', 'gateway', '--namespace', 'edge', '--labels', 'app=edge', '--name', 'gw-1', '--admin', 'off', '--listen-address-override', '127.0.0.1', '--port-map', '80=0', '--log-level', 'error']),
    { silentAccessLog: true, logOut: { write: () => true } },
  );
  t.after(() => proxy.stop(100));
  const seen: WorkloadCertificate[] = [];
  proxy.identity.onChange((c) => seen.push(c));

  const first = await waitFor(() => proxy.identity.current(), 30_000, 'the first workload certificate');
  assert.equal(first.spiffeId, 'spiffe://cluster.local/ns/edge/sa/sa-a');
  assert.match(first.keyPem, /BEGIN PRIVATE KEY/);
  const v1 = await opensslVerify(s.dir, first.certChainPem, rootFile);
  assert.ok(v1.ok, v1.out);
  // The key is the proxy's own: the certificate carries its public half, and the control plane never logged or stored it.
  const leaf1 = new X509Certificate(first.certChainPem.match(PEM_CERT)![0]!);
  assert.ok(leaf1.checkPrivateKey(createPrivateKey(first.keyPem)));
  assert.doesNotMatch(cp.stderr(), /PRIVATE KEY/);

  // 4 s certificates are renewed at ~80%: a new certificate (and a new key) arrives before expiry.
  const second = await waitFor(() => seen.find((c) => c.certChainPem !== first.certChainPem), 20_000, 'a renewed certificate');
  assert.notEqual(second.keyPem, first.keyPem);
  assert.ok(second.notAfter.getTime() > first.notAfter.getTime());
  assert.ok(Date.now() < first.notAfter.getTime() + 2000, 'renewed before (or right at) the old one expired');

  // Plug in an intermediate from a new root, the way an operator writes Istio's cacerts files.
  const pki = makePki();
  t.after(() => pki.cleanup());
  const newRoot = await pki.ca('new-root');
  const inter = await pki.intermediate('new-intermediate', 'new-root');
  const files: Record<string, string> = {
    'ca-cert.pem': pki.read(inter.cert),
    'ca-key.pem': pki.read(inter.key),
    'root-cert.pem': pki.read(newRoot.cert),
    'cert-chain.pem': pki.read(inter.cert) + pki.read(newRoot.cert),
  };
  for (const [name, content] of Object.entries(files)) {
    writeFileSync(join(s.dir, `${name}.new`), content, { mode: name === 'ca-key.pem' ? 0o600 : 0o644 });
    renameSync(join(s.dir, `${name}.new`), join(s.caDir, name));
  }
  const interPem = new X509Certificate(files['ca-cert.pem']!).toString().trim();
  const rotated = await waitFor(() => {
    const c = proxy.identity.current();
    return c && c.certChainPem.includes(interPem) ? c : undefined;
  }, 30_000, 'a certificate from the plugged-in intermediate');
  const both = join(s.dir, 'both-roots.pem');
  writeFileSync(both, rotated.rootCertsPem);
  assert.ok(rotated.rootCertsPem.includes(oldRoot.trim()), 'the old root is still trusted during the transition');
  assert.ok(rotated.rootCertsPem.includes(pki.read(newRoot.cert).trim()), 'the new root is trusted');
  const v2 = await opensslVerify(s.dir, rotated.certChainPem, newRoot.cert);
  assert.ok(v2.ok, `the new chain verifies to the new root alone: ${v2.out}`);
  // (as of when it was valid: 4 s certificates are long expired by now)
  const whileValid = new Date(first.notAfter.getTime() - 1000);
  assert.ok((await opensslVerify(s.dir, first.certChainPem, both, whileValid)).ok, 'a peer still holding an old-root certificate verifies against the bundle');
  assert.ok(!(await opensslVerify(s.dir, first.certChainPem, newRoot.cert, whileValid)).ok, 'the new root alone does not verify it');
  assert.match(cp.stderr(), /signing with plugged-in/);

  // The proxy keeps talking to the control plane, whose own certificate now comes from the new CA:
  // it renews again (over TLS verified with the roots it was told about) and stays connected.
  const count = seen.length;
  await waitFor(() => seen.length > count + 1, 20_000, 'a renewal after the rotation');
  assert.ok(proxy.client.connected, 'the snapshot stream is up');
  const latest = proxy.identity.current()!;
  assert.ok((await opensslVerify(s.dir, latest.certChainPem, newRoot.cert)).ok);
});

/**
 * A Kubernetes ConfigMap volume as kubelet writes it: `FILE -> ..data/FILE`, `..data -> ..<stamp>`,
 * the new content in a new directory and `..data` swapped atomically.
 */
function configMapVolume(dir: string, file: string): { readonly path: string; update(content: string): void } {
  mkdirSync(dir, { recursive: true });
  let n = 0;
  const update = (content: string): void => {
    const stamp = `..${++n}`;
    mkdirSync(join(dir, stamp));
    writeFileSync(join(dir, stamp, file), content);
    symlinkSync(stamp, join(dir, '..data_tmp'));
    renameSync(join(dir, '..data_tmp'), join(dir, '..data'));
  };
  return {
    path: join(dir, file),
    update(content) {
      update(content);
      if (n === 1) symlinkSync(join('..data', file), join(dir, file));
    },
  };
}

/** A port nothing listens on now (so a restarted control plane can take the same one). */
async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

test('CA: a proxy away during a whole root rotation names the file and both roots, then recovers from the updated mount', { timeout: 120_000 }, async (t) => {
  if (!requireTools(t, 'openssl')) return;
  const s = setup(t);
  const cpArgs = ['-f', s.configDir, '--ca-dir', s.caDir, '--bootstrap-tokens', s.tokensFile, '--listen', `127.0.0.1:${await freePort()}`];
  let cp = await startControlPlane(t, cpArgs);
  const oldRootPem = readFileSync(join(s.caDir, 'root-cert.pem'), 'utf8');
  const mount = configMapVolume(join(s.dir, 'istio-ca-root-cert'), 'root-cert.pem');
  mount.update(oldRootPem);
  const logs: string[] = [];
  const proxy = await startFromControlPlane(
    parseRunArgs(['--control-plane', `127.0.0.1:${cp.port}`, '--control-plane-ca', mount.path, '--bootstrap-token-file', s.tokenFile('sa-a'), '--role', 'gateway', '--namespace', 'edge', '--labels', 'app=edge', '--name', 'gw-1', '--admin', 'off', '--listen-address-override', '127.0.0.1', '--port-map', '80=0', '--log-level', 'info']),
    { silentAccessLog: true, logOut: { write: (l: string | Uint8Array) => logs.push(String(l)) > 0 } },
  );
  t.after(() => proxy.stop(100));
  const first = await waitFor(() => proxy.client.connected && proxy.identity.current(), 30_000, 'connected, with a certificate');

  // The control plane goes away; a new root and intermediate are plugged in; it comes back, knowing only the new root.
  await cp.stop();
  const pki = makePki();
  t.after(() => pki.cleanup());
  const newRoot = await pki.ca('rotated-root');
  const inter = await pki.intermediate('rotated-intermediate', 'rotated-root');
  writeFileSync(join(s.caDir, 'ca-cert.pem'), pki.read(inter.cert));
  writeFileSync(join(s.caDir, 'ca-key.pem'), pki.read(inter.key), { mode: 0o600 });
  writeFileSync(join(s.caDir, 'root-cert.pem'), pki.read(newRoot.cert));
  writeFileSync(join(s.caDir, 'cert-chain.pem'), pki.read(inter.cert) + pki.read(newRoot.cert));
  cp = await startControlPlane(t, cpArgs);
  assert.match(cp.stderr(), /signing with plugged-in/);

  // The proxy cannot verify it, and says why: which file, which root it holds, which one it is shown.
  const said = await waitFor(() => logs.join('').match(/the control plane at 127\.0\.0\.1:\d+ presents [^\n]*/)?.[0], 30_000, 'the untrusted-root error');
  t.diagnostic(said);
  const oldFp = new X509Certificate(oldRootPem).fingerprint256;
  const newFp = new X509Certificate(pki.read(newRoot.cert)).fingerprint256;
  assert.ok(said.includes(`a chain to the root "CN=rotated-root" (SHA-256 ${newFp})`), said);
  assert.ok(said.includes(`trusts only "O=cluster.local" (SHA-256 ${oldFp}) (--control-plane-ca ${mount.path}`), said);
  assert.ok(said.includes(`put the control plane's current root`), said);
  assert.match(logs.join(''), / error the control plane at 127\.0\.0\.1:\d+ presents/, 'logged as an error');
  assert.equal(proxy.client.connected, false);

  // The mount is updated (old and new root, as the control plane keeps the ConfigMap during a
  // transition): the proxy re-reads it at its next attempt, connects, and renews from the new CA.
  mount.update(oldRootPem + pki.read(newRoot.cert));
  await waitFor(() => proxy.client.connected, 30_000, 'reconnected with the updated root');
  const renewed = await waitFor(() => {
    const c = proxy.identity.current();
    return c && c.certChainPem !== first.certChainPem ? c : undefined;
  }, 30_000, 'a certificate from the new CA');
  assert.ok((await opensslVerify(s.dir, renewed.certChainPem, newRoot.cert)).ok, 'the renewed certificate chains to the new root');
});
