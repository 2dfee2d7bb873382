/**
 * HTTPS termination at a gateway with credentialName Secrets, with real clients:
 * - the nginx ingress scenario (its YAML unchanged, nginx behind svc-clusterip) served over HTTPS by a
 *   Gateway server beside it whose credentialName Secret lives in the gateway proxy's namespace
 *   (istio-system, as Istio requires): curl HTTP/1.1 and `--http2` (ALPN h2), h2load with many
 *   concurrent streams;
 * - SNI picks the certificate among several servers on one port; MUTUAL refuses a client without a
 *   certificate or with one from another CA, accepts one from the `<name>-cacert` CA and logs its
 *   subject and SANs; OPTIONAL_MUTUAL; a rotated Secret is served to new connections by the same
 *   process (`run --watch`, and a proxy of the control plane).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseRunArgs, startFromControlPlane } from '../../src/cli/run.js';
import { startWatchedControlPlane } from '../helpers/watched-control-plane.js';
import type { AccessLogRecord } from '../../src/dataplane/observe/access-log.js';
import { startHttpUpstream, startNginx, type HttpUpstream, type Nginx } from '../helpers/http.js';
import { targetPortEntry } from '../helpers/istio-yaml.js';
import { loopbackAddress, waitFor } from '../helpers/net.js';
import { makePki, type Pki } from '../helpers/pki.js';
import { FIXTURES, spawnGate, startGate, tempConfig, type ChildGate, type TestGate } from '../helpers/tollgate.js';
import { haveTool, isCI, run } from '../helpers/tools.js';

const ready = haveTool('curl') && haveTool('h2load') && haveTool('nginx') && haveTool('openssl');
const skip = ready ? false : 'needs curl, h2load (nghttp2-client), nginx and openssl';
if (!ready && isCI) throw new Error(`gateway-https: ${skip}; CI=true`);

const HTTP = join(FIXTURES, 'http');

/** A kubernetes.io/tls Secret (base64 `data`, as `kubectl create secret tls` writes it). */
function tlsSecret(ns: string, name: string, cert: string, key: string, ca?: string): string {
  const b64 = (s: string): string => Buffer.from(s).toString('base64');
  return `apiVersion: v1
kind: Secret
metadata: {name: ${name}, namespace: ${ns}}
type: kubernetes.io/tls
data:
  tls.crt: ${b64(cert)}
  tls.key: ${b64(key)}
${ca !== undefined ? `  ca.crt: ${b64(ca)}\n` : ''}---
`;
}

/** A generic Secret holding only the client CA (`cacert`), Istio's `<credentialName>-cacert` convention. */
function cacertSecret(ns: string, name: string, ca: string): string {
  return `apiVersion: v1
kind: Secret
metadata: {name: ${name}, namespace: ${ns}}
type: Opaque
stringData:
  cacert: |
${ca.trimEnd().split('\n').map((l) => `    ${l}`).join('\n')}
---
`;
}

interface CurlResult {
  readonly exit: number | null;
  readonly code: string;
  readonly version: string;
  readonly body: string;
  readonly stderr: string;
}

/** curl over HTTPS to `host` (resolved to 127.0.0.1:port), trusting `ca`; extra args e.g. --http2, --cert. */
async function curlHttps(port: number, host: string, ca: string, args: readonly string[] = [], path = '/'): Promise<CurlResult> {
  const r = await run('curl', ['-sS', '--max-time', '10', '--cacert', ca, '--resolve', `${host}:${port}:127.0.0.1`, '-w', '\n%{http_code} %{http_version}', ...args, `https://${host}:${port}${path}`], { timeoutMs: 20_000 });
  const nl = r.stdout.lastIndexOf('\n');
  const [code = '', version = ''] = r.stdout.slice(nl + 1).split(' ');
  return { exit: r.status, code, version, body: r.stdout.slice(0, Math.max(0, nl)), stderr: r.stderr };
}

describe('nginx ingress over HTTPS: credentialName Secret in the gateway namespace, HTTP/1.1 and HTTP/2', { skip, concurrency: false }, () => {
  let nginx: Nginx;
  let gate: TestGate;
  let pki: Pki;
  let files: { path: string; cleanup(): void }[] = [];
  let ca = '';
  const podIp = loopbackAddress();

  before(async () => {
    pki = makePki();
    ca = (await pki.ca('ingress-ca')).cert;
    const leaf = await pki.leaf('gasida', 'ingress-ca', { dns: 'www.gasida.dev' });
    nginx = await startNginx((dir) => `  server { listen ${podIp}:80; root ${dir}/www; location / { } }`, podIp, 80);
    const pod = tempConfig(readFileSync(join(HTTP, '001-ingress-pod.yaml'), 'utf8').replace('{podIP: PODIP}', `{podIP: ${podIp}}`));
    // Beside the unchanged scenario: the Secret (in the gateway's namespace), an HTTPS server and its route.
    const https = tempConfig(
      tlsSecret('istio-system', 'gasida-credential', pki.read(leaf.cert), pki.read(leaf.key)) +
        `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: test-gateway-https}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 443, name: https, protocol: HTTPS}
    hosts: [www.gasida.dev]
    tls: {mode: SIMPLE, credentialName: gasida-credential}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: nginx-service-https}
spec:
  hosts: [www.gasida.dev]
  gateways: [test-gateway-https]
  http:
  - route: [{destination: {host: svc-clusterip, port: {number: 80}}}]
`,
    );
    files = [pod, https];
    gate = await startGate(['-f', join(HTTP, '001-ingress-gateway.yaml'), '-f', pod.path, '-f', https.path, '--role', 'gateway', '--namespace', 'istio-system', '--labels', 'istio=ingressgateway', '--port-map', '80=0', '--port-map', '443=0']);
  });

  after(async () => {
    await gate?.stop();
    await nginx?.stop();
    for (const f of files) f.cleanup();
    pki?.cleanup();
  });

  it('the ingress scenario YAML is unchanged', () => {
    // The fixture is a byte copy of the published ingress scenario; HTTPS comes only from the files beside it.
    assert.doesNotMatch(readFileSync(join(HTTP, '001-ingress-gateway.yaml'), 'utf8'), /credentialName|443/);
  });

  it('curl HTTP/1.1 over TLS: nginx answers, the access log says HTTP/1.1 with the SNI', async () => {
    const r = await curlHttps(gate.port(443), 'www.gasida.dev', ca, ['--http1.1']);
    assert.equal(r.exit, 0, r.stderr);
    assert.equal(`${r.code} ${r.version}`, '200 1.1');
    assert.equal(r.body, '<h1>nginx behind tollgate</h1>\n');
    const rec = await gate.waitForLog((x) => x.authority?.startsWith('www.gasida.dev:') === true && x.protocol === 'HTTP/1.1');
    assert.equal(rec.requested_server_name, 'www.gasida.dev');
    assert.equal(rec.upstream_cluster, 'outbound|80||svc-clusterip.default.svc.cluster.local');
    assert.equal(rec.upstream_host, `${podIp}:80`);
  });

  it('curl --http2 negotiates h2 by ALPN: same route, access log protocol HTTP/2, metrics counted', async () => {
    const before = gate.metric('istio_requests_total', 'response_code="200"');
    const r = await curlHttps(gate.port(443), 'www.gasida.dev', ca, ['--http2', '-v']);
    assert.equal(r.exit, 0, r.stderr);
    assert.equal(`${r.code} ${r.version}`, '200 2');
    assert.match(r.stderr, /ALPN: server accepted h2/);
    assert.equal(r.body, '<h1>nginx behind tollgate</h1>\n');
    const rec = await gate.waitForLog((x) => x.authority?.startsWith('www.gasida.dev:') === true && x.protocol === 'HTTP/2');
    assert.equal(rec.response_code, 200);
    assert.equal(rec.upstream_host, `${podIp}:80`);
    assert.equal(rec.requested_server_name, 'www.gasida.dev');
    await waitFor(() => gate.metric('istio_requests_total', 'response_code="200"') > before, 3000, 'request counted');
  });

  it('h2load over TLS: 2000 requests on 4 connections x 50 concurrent streams, all 2xx', async () => {
    const r = await run('h2load', ['-n', '2000', '-c', '4', '-m', '50', `--connect-to=127.0.0.1:${gate.port(443)}`, 'https://www.gasida.dev/1k'], { timeoutMs: 120_000 });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /Application protocol: h2/, r.stdout);
    assert.match(r.stdout, /requests: 2000 total, 2000 started, 2000 done, 2000 succeeded, 0 failed, 0 errored/, r.stdout);
    assert.match(r.stdout, /status codes: 2000 2xx/, r.stdout);
  });

  it('the scenario\'s HTTP port keeps working beside it', async () => {
    const r = await run('curl', ['-sS', '--max-time', '5', '-H', 'Host: www.gasida.dev', '-o', '/dev/null', '-w', '%{http_code}', `http://127.0.0.1:${gate.port(80)}/`]);
    assert.equal(r.stdout, '200', r.stderr);
  });
});

describe('SNI among servers, MUTUAL / OPTIONAL_MUTUAL client certificates, Secret rotation (run --watch)', { skip, concurrency: false }, () => {
  let upstream: HttpUpstream;
  let pki: Pki;
  let gate: ChildGate;
  let cfg: { path: string; cleanup(): void };
  let port = 0;
  const p: Record<string, { cert: string; key: string }> = {};

  function config(aCert: { cert: string; key: string }): string {
    return (
      targetPortEntry('echo', 'edge', 'echo.test', [upstream.host], upstream.port, true) +
      tlsSecret('edge', 'a-cred', pki.read(aCert.cert), pki.read(aCert.key)) +
      tlsSecret('edge', 'b-cred', pki.read(p['b']!.cert), pki.read(p['b']!.key)) +
      cacertSecret('edge', 'b-cred-cacert', pki.read(p['clientCa']!.cert)) +
      tlsSecret('edge', 'c-cred', pki.read(p['c']!.cert), pki.read(p['c']!.key), pki.read(p['clientCa']!.cert)) +
      tlsSecret('edge', 'd-cred', pki.read(p['d']!.cert), pki.read(p['d']!.key), pki.read(p['clientCa']!.cert)) +
      tlsSecret('edge', 'e-cred', pki.read(p['e']!.cert), pki.read(p['e']!.key), pki.read(p['clientCa']!.cert)) +
      `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: apps}
spec:
  selector: {istio: ingressgateway}
  servers:
  - {port: {number: 443, name: https-a, protocol: HTTPS}, hosts: [a.test], tls: {mode: SIMPLE, credentialName: a-cred}}
  - {port: {number: 443, name: https-b, protocol: HTTPS}, hosts: [b.test], tls: {mode: MUTUAL, credentialName: b-cred}}
  - {port: {number: 443, name: https-c, protocol: HTTPS}, hosts: [c.test], tls: {mode: OPTIONAL_MUTUAL, credentialName: c-cred}}
  - {port: {number: 443, name: https-d, protocol: HTTPS}, hosts: [d.test], tls: {mode: MUTUAL, credentialName: d-cred, subjectAltNames: [client.apps.test]}}
  - {port: {number: 443, name: https-e, protocol: HTTPS}, hosts: [e.test], tls: {mode: MUTUAL, credentialName: e-cred, subjectAltNames: [spiffe://cluster.local/ns/apps/sa/other]}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: all, namespace: apps}
spec:
  hosts: [a.test, b.test, c.test, d.test, e.test]
  gateways: [gw]
  http: [{route: [{destination: {host: echo.test, port: {number: 80}}}]}]
`
    );
  }

  before(async () => {
    pki = makePki();
    await pki.ca('server-ca');
    await pki.ca('server-ca-2');
    p['clientCa'] = await pki.ca('client-ca');
    p['otherCa'] = await pki.ca('other-ca');
    p['a'] = await pki.leaf('a', 'server-ca', { dns: 'a.test' });
    p['a2'] = await pki.leaf('a2', 'server-ca-2', { dns: 'a.test' });
    p['b'] = await pki.leaf('b', 'server-ca', { dns: 'b.test' });
    p['c'] = await pki.leaf('c', 'server-ca', { dns: 'c.test' });
    p['d'] = await pki.leaf('d', 'server-ca', { dns: 'd.test' });
    p['e'] = await pki.leaf('e', 'server-ca', { dns: 'e.test' });
    p['client'] = await pki.leaf('client', 'client-ca', { dns: 'client.apps.test', client: true });
    p['intruder'] = await pki.leaf('intruder', 'other-ca', { dns: 'client.apps.test', client: true });
    upstream = await startHttpUpstream(loopbackAddress());
    cfg = tempConfig(config(p['a']));
    // Credentials are read from the proxy's namespace (edge), not the Gateway's (apps).
    gate = spawnGate(['-f', cfg.path, '--watch', '--role', 'gateway', '--namespace', 'edge', '--labels', 'istio=ingressgateway', '--port-map', '443=0', '--listen-address-override', '127.0.0.1', '--admin', 'off', '--log-level', 'info']);
    await gate.waitForStderr('tollgate running', 20_000);
    port = Number(/_443 -> [^:]+:(\d+)/.exec(gate.stderr.join(''))?.[1] ?? 0);
    assert.ok(port > 0, gate.stderr.join(''));
  });

  after(async () => {
    await gate?.stop(500);
    await upstream?.close();
    cfg?.cleanup();
    pki?.cleanup();
  });

  const logged = (pred: (r: AccessLogRecord) => boolean): Promise<AccessLogRecord> => waitFor(() => gate.records().find(pred), 10_000, 'access log record');
  const caOf = (name: string): string => join(pki.dir, `${name}.crt`);
  const clientArgs = (name: string): string[] => ['--cert', p[name]!.cert, '--key', p[name]!.key];

  it('SNI picks the certificate: a.test and b.test each present their own', async () => {
    const a = await curlHttps(port, 'a.test', caOf('server-ca'), ['--http2']);
    assert.equal(`${a.exit} ${a.code} ${a.version}`, '0 200 2', a.stderr);
    const s = await run('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-servername', 'b.test', '-CAfile', caOf('server-ca')], { input: '', timeoutMs: 10_000 });
    assert.match(s.stdout, /subject=CN ?= ?b\.test/, s.stdout + s.stderr);
    const a2 = await run('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-servername', 'a.test'], { input: '', timeoutMs: 10_000 });
    assert.match(a2.stdout, /subject=CN ?= ?a\.test/, a2.stdout + a2.stderr);
  });

  it('MUTUAL: no client certificate -> closed once the handshake ends, before the request is read; logged', async () => {
    const before = upstream.requests.length;
    const r = await curlHttps(port, 'b.test', caOf('server-ca'), ['--http1.1'], '/no-cert');
    assert.notEqual(r.exit, 0, 'the connection must fail');
    assert.notEqual(r.code, '200');
    const rec = await logged((x) => x.tollgate_reason === 'tls_client_certificate_invalid' && x.connection_termination_details === 'no client certificate');
    assert.equal(rec.requested_server_name, 'b.test');
    assert.equal(rec.response_flags, 'DPE');
    // TLS 1.2 and 1.3 alike: the request curl wrote after its side of the handshake is never parsed nor forwarded.
    for (const version of [['--tls-max', '1.2'], ['--tlsv1.3']]) {
      const again = await curlHttps(port, 'b.test', caOf('server-ca'), ['--http1.1', ...version], '/no-cert');
      assert.notEqual(again.code, '200', `${version.join(' ')}: ${again.stderr}`);
    }
    assert.equal(gate.records().filter((x) => x.path === '/no-cert').length, 0);
    assert.equal(upstream.requests.length, before);
  });

  it('MUTUAL: a certificate from another CA is refused', async () => {
    const r = await curlHttps(port, 'b.test', caOf('server-ca'), ['--http2', ...clientArgs('intruder')]);
    assert.notEqual(r.code, '200', `a certificate the CA did not sign must not pass: ${r.stderr}`);
    const rec = await logged((x) => x.tollgate_reason === 'tls_client_certificate_invalid' && /^client certificate CN=client\.apps\.test: [A-Z_]+$/.test(x.connection_termination_details ?? ''));
    assert.equal(rec.requested_server_name, 'b.test');
  });

  it('MUTUAL: a certificate from the <name>-cacert CA passes over h2; subject and SANs in the access log', async () => {
    const r = await curlHttps(port, 'b.test', caOf('server-ca'), ['--http2', ...clientArgs('client')], '/mtls');
    assert.equal(`${r.exit} ${r.code} ${r.version}`, '0 200 2', r.stderr);
    const rec = await logged((x) => x.path === '/mtls');
    assert.equal(rec.protocol, 'HTTP/2');
    assert.equal(rec.downstream_peer_subject, 'CN=client.apps.test');
    assert.equal(rec.downstream_peer_dns_san, 'client.apps.test');
  });

  it('OPTIONAL_MUTUAL: no certificate passes, a valid one is logged, a foreign one is refused', async () => {
    const none = await curlHttps(port, 'c.test', caOf('server-ca'), ['--http1.1'], '/opt-none');
    assert.equal(`${none.exit} ${none.code}`, '0 200', none.stderr);
    const good = await curlHttps(port, 'c.test', caOf('server-ca'), ['--http1.1', ...clientArgs('client')], '/opt-good');
    assert.equal(`${good.exit} ${good.code}`, '0 200', good.stderr);
    assert.equal((await logged((x) => x.path === '/opt-good')).downstream_peer_subject, 'CN=client.apps.test');
    assert.equal((await logged((x) => x.path === '/opt-none')).downstream_peer_subject, undefined);
    const bad = await curlHttps(port, 'c.test', caOf('server-ca'), ['--http1.1', ...clientArgs('intruder')], '/opt-bad');
    assert.notEqual(bad.code, '200', bad.stderr);
  });

  it('MUTUAL with subjectAltNames: a client certificate from the CA must also carry one of them', async () => {
    const ok = await curlHttps(port, 'd.test', caOf('server-ca'), ['--http1.1', ...clientArgs('client')], '/san-ok');
    assert.equal(`${ok.exit} ${ok.code}`, '0 200', ok.stderr);
    const other = await curlHttps(port, 'e.test', caOf('server-ca'), ['--http1.1', ...clientArgs('client')], '/san-other');
    assert.notEqual(other.code, '200', other.stderr);
    const rec = await logged((x) => x.tollgate_reason === 'tls_client_certificate_san_mismatch');
    assert.equal(rec.requested_server_name, 'e.test');
    assert.match(rec.connection_termination_details ?? '', /has none of the subjectAltNames spiffe:\/\/cluster\.local\/ns\/apps\/sa\/other/);
  });

  it('a rotated Secret is served to new connections without a restart', async () => {
    const pid = gate.child.pid;
    writeFileSync(cfg.path, config(p['a2']!));
    const deadline = Date.now() + 20_000;
    let r = await curlHttps(port, 'a.test', caOf('server-ca-2'), ['--http2']);
    while (r.exit !== 0 && Date.now() < deadline) {
      await new Promise((res) => setTimeout(res, 200));
      r = await curlHttps(port, 'a.test', caOf('server-ca-2'), ['--http2']);
    }
    assert.equal(`${r.exit} ${r.code}`, '0 200', `the new certificate is served: ${r.stderr}`);
    const old = await curlHttps(port, 'a.test', caOf('server-ca'), ['--http2']);
    assert.notEqual(old.exit, 0, 'the old certificate is no longer served');
    assert.equal(gate.child.pid, pid);
    assert.equal(gate.child.exitCode, null);
  });
});

describe('a rotated credential Secret reaches a proxy of the control plane without a restart', { skip, concurrency: false }, () => {
  it('the next connection gets the new certificate', async (t) => {
    const pki = makePki();
    const caOne = (await pki.ca('one-ca')).cert;
    const caTwo = (await pki.ca('two-ca')).cert;
    const one = await pki.leaf('www-one', 'one-ca', { dns: 'www.rotate.test' });
    const two = await pki.leaf('www-two', 'two-ca', { dns: 'www.rotate.test' });
    const upstream = await startHttpUpstream(loopbackAddress());
    const dir = mkdtempSync(join(tmpdir(), 'tg-rotate-'));
    const file = join(dir, 'edge.yaml');
    const config = (leaf: { cert: string; key: string }): string =>
      targetPortEntry('echo', 'edge', 'echo.test', [upstream.host], upstream.port, true) +
      tlsSecret('edge', 'www-cred', pki.read(leaf.cert), pki.read(leaf.key)) +
      `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: www, namespace: edge}
spec:
  selector: {istio: ingressgateway}
  servers: [{port: {number: 443, name: https, protocol: HTTPS}, hosts: [www.rotate.test], tls: {mode: SIMPLE, credentialName: www-cred}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: www, namespace: edge}
spec:
  hosts: [www.rotate.test]
  gateways: [www]
  http: [{route: [{destination: {host: echo.test, port: {number: 80}}}]}]
`;
    writeFileSync(file, config(one));
    const cpw = await startWatchedControlPlane(dir);
    const { port: cpPort, auth } = cpw;
    const px = await startFromControlPlane(parseRunArgs(['--control-plane', `127.0.0.1:${cpPort}`, ...auth.runArgs('edge'), '--role', 'gateway', '--namespace', 'edge', '--labels', 'istio=ingressgateway', '--name', 'gw-1', '--admin', 'off', '--listen-address-override', '127.0.0.1', '--port-map', '443=0', '--log-level', 'error']), { silentAccessLog: true, logOut: { write: () => true } });
    t.after(async () => {
      await px.stop(100);
      await cpw.close();
      await upstream.close();
      rmSync(dir, { recursive: true, force: true });
      pki.cleanup();
    });
    await waitFor(() => px.runtime.ready, 10_000, 'proxy ready');
    const port = px.runtime.boundPortOf(443) ?? 0;
    const first = await curlHttps(port, 'www.rotate.test', caOne, ['--http2']);
    assert.equal(`${first.exit} ${first.code}`, '0 200', first.stderr);
    const before = px.runtime.current?.snapshot.version;

    writeFileSync(file, config(two));
    await waitFor(() => px.runtime.current?.snapshot.version !== before, 15_000, 'the rotated snapshot applied');
    const rotated = await curlHttps(port, 'www.rotate.test', caTwo, ['--http2']);
    assert.equal(`${rotated.exit} ${rotated.code}`, '0 200', `the new certificate is served: ${rotated.stderr}`);
    const stale = await curlHttps(port, 'www.rotate.test', caOne, ['--http2']);
    assert.notEqual(stale.exit, 0, 'the old certificate is no longer served');
    assert.equal(px.runtime.boundPortOf(443), port, 'same listener, no restart');
  });
});
