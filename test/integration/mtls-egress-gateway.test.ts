/**
 * Egress authorization by workload identity: an egress gateway whose Gateway server on 443 has
 * tls.mode ISTIO_MUTUAL (Istio's egress gateway pattern), with its workload certificate from
 * --workload-cert-dir. Callers are real curl and openssl clients holding mesh certificates for
 * namespaces `a` and `c`. Namespace `a` may reach edition.cnn.com (an upstream on loopback), `c` is
 * denied by a DENY policy named in the log, a DENY on one principal of `a` beats the ALLOW, a
 * dry-run policy only logs. Without a mesh certificate, or in plaintext, nothing gets through.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { createServer as createHttpServer } from 'node:http';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { listen, loopbackAddress, tcpExchange, waitFor } from '../helpers/net.js';
import { meshCert, type MeshCert } from '../helpers/mesh-pki.js';
import { makePki, type Pki } from '../helpers/pki.js';
import { BIN, startGateWithConfig, type TestGate } from '../helpers/tollgate.js';
import { haveTool, isCI, run } from '../helpers/tools.js';

const ready = haveTool('curl') && haveTool('openssl');
const skip = ready ? false : 'needs curl and openssl';
if (!ready && isCI) throw new Error(`mtls-egress-gateway: ${skip}; CI=true`);

function config(upIp: string, upPort: number): string {
  return `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: cnn, namespace: istio-system}
spec:
  hosts: [edition.cnn.com]
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: STATIC
  endpoints: [{address: ${upIp}, ports: {http: ${upPort}}}]
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: istio-egressgateway, namespace: istio-system}
spec:
  selector: {istio: egressgateway}
  servers:
  - port: {number: 443, name: https, protocol: HTTPS}
    hosts: [edition.cnn.com]
    tls: {mode: ISTIO_MUTUAL}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: cnn-through-egress, namespace: istio-system}
spec:
  hosts: [edition.cnn.com]
  gateways: [istio-egressgateway]
  http: [{route: [{destination: {host: edition.cnn.com, port: {number: 80}}}]}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-a-to-cnn, namespace: istio-system}
spec:
  selector: {matchLabels: {istio: egressgateway}}
  action: ALLOW
  rules:
  - from: [{source: {namespaces: [a]}}]
    to: [{operation: {hosts: [edition.cnn.com]}}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-c, namespace: istio-system}
spec:
  selector: {matchLabels: {istio: egressgateway}}
  action: DENY
  rules:
  - from: [{source: {namespaces: [c]}}]
  - from: [{source: {principals: [cluster.local/ns/a/sa/blocked]}}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: audit-a, namespace: istio-system, annotations: {istio.io/dry-run: "true"}}
spec:
  selector: {matchLabels: {istio: egressgateway}}
  action: DENY
  rules:
  - when: [{key: source.principal, values: ["cluster.local/ns/a/sa/*"]}, {key: "request.headers[x-audit]", values: ["*"]}]
`;
}

/** A mesh root, the egress gateway's certificate, the upstream standing for edition.cnn.com, and the gateway on config(). */
interface EgressSetup {
  readonly pki: Pki;
  readonly gate: TestGate;
  readonly cfgPath: string;
  /** Paths the upstream served, in order. */
  readonly served: string[];
  /** The x-forwarded-client-cert the upstream received, by path. */
  readonly xfcc: Map<string, string | undefined>;
  stop(): Promise<void>;
}

async function startEgressGateway(): Promise<EgressSetup> {
  const pki = makePki();
  await pki.ca('mesh-root');
  const gw = await meshCert(pki, 'mesh-root', 'istio-system', 'istio-egressgateway');
  const served: string[] = [];
  const xfcc = new Map<string, string | undefined>();
  const up = createHttpServer((req, res) => {
    served.push(req.url ?? '');
    xfcc.set(req.url ?? '', req.headers['x-forwarded-client-cert'] as string | undefined);
    res.end('upstream');
  });
  const upIp = loopbackAddress();
  const upPort = await listen(up, upIp);
  const started = await startGateWithConfig(config(upIp, upPort), ['--role', 'gateway', '-n', 'istio-system', '-l', 'istio=egressgateway', '--port-map', '443=0', '--workload-cert-dir', gw.dir]);
  return {
    pki,
    gate: started.gate,
    cfgPath: started.cfg.path,
    served,
    xfcc,
    async stop() {
      await started.gate.stop();
      started.cfg.cleanup();
      up.close();
      pki.cleanup();
    },
  };
}

describe('egress gateway with ISTIO_MUTUAL: authorization by the caller\'s mesh identity', { skip }, () => {
  let setup: EgressSetup;
  let pki: Pki;
  let gate: TestGate;
  let served: string[] = [];
  let cfgPath = '';
  let a: MeshCert;
  let blocked: MeshCert;
  let c: MeshCert;

  before(async () => {
    setup = await startEgressGateway();
    ({ pki, gate, served, cfgPath } = setup);
    a = await meshCert(pki, 'mesh-root', 'a', 'sleep');
    blocked = await meshCert(pki, 'mesh-root', 'a', 'blocked');
    c = await meshCert(pki, 'mesh-root', 'c', 'sleep');
  });
  after(async () => {
    await setup?.stop();
  });

  const curl = async (client: MeshCert | undefined, path: string, extra: string[] = []): Promise<{ code: string; body: string; exit: number }> => {
    const port = gate.port(443);
    // -k: the gateway proves a SPIFFE ID, not the name edition.cnn.com (its chain is checked with openssl below).
    const certArgs = client === undefined ? [] : ['--cert', client.cert, '--key', client.key];
    const r = await run('curl', ['-s', '-k', '--max-time', '10', ...certArgs, ...extra, '--resolve', `edition.cnn.com:${port}:127.0.0.1`, '-w', '\n%{http_code}', `https://edition.cnn.com:${port}${path}`], { timeoutMs: 15_000 });
    const lines = r.stdout.split('\n');
    return { code: lines.pop() ?? '', body: lines.join('\n'), exit: r.status ?? -1 };
  };

  it('openssl s_client: the gateway presents its workload certificate, chained to the mesh root, with its SPIFFE ID', async () => {
    const r = await run('openssl', ['s_client', '-connect', `127.0.0.1:${gate.port(443)}`, '-servername', 'edition.cnn.com', '-CAfile', a.root, '-cert', a.cert, '-key', a.key, '-verify_return_error', '-showcerts'], { input: 'Q\n', timeoutMs: 15_000 });
    assert.match(r.stdout, /Verify return code: 0 \(ok\)/);
    const pem = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(r.stdout)?.[0];
    assert.ok(pem, r.stdout);
    assert.equal(new X509Certificate(pem).subjectAltName, 'URI:spiffe://cluster.local/ns/istio-system/sa/istio-egressgateway');
  });

  it('namespace a reaches edition.cnn.com through the gateway', async () => {
    const r = await curl(a, '/from-a');
    assert.deepEqual([r.code, r.body], ['200', 'upstream']);
    assert.ok(served.includes('/from-a'));
    const log = await gate.waitForLog((l) => l.path === '/from-a');
    assert.equal(log.response_code, 200);
  });

  it('x-forwarded-client-cert: the gateway sets it from the certificate it verified (SANITIZE_SET), never from what the client wrote', async () => {
    const r = await curl(a, '/xfcc', ['-H', 'X-Forwarded-Client-Cert: By=spiffe://spoofed;URI=spiffe://cluster.local/ns/admin/sa/root']);
    assert.equal(r.code, '200');
    const hash = new X509Certificate(readFileSync(a.cert)).fingerprint256.replaceAll(':', '').toLowerCase();
    assert.equal(setup.xfcc.get('/xfcc'), `By=spiffe://cluster.local/ns/istio-system/sa/istio-egressgateway;Hash=${hash};Subject="O=cluster.local";URI=${a.spiffeId}`);
  });

  it('namespace c is denied: 403 RBAC: access denied, the DENY policy and rule in the log, never forwarded', async () => {
    const before = served.length;
    const r = await curl(c, '/from-c');
    assert.deepEqual([r.code, r.body], ['403', 'RBAC: access denied']);
    assert.equal(served.length, before);
    const log = await gate.waitForLog((l) => l.path === '/from-c');
    assert.equal(log.tollgate_reason, 'rbac_denied');
    assert.equal(log.response_code_details, 'rbac_access_denied_matched_policy[ns[istio-system]-policy[deny-c]-rule[0]]');
    assert.equal(gate.metric('tollgate_rbac_total', 'policy="istio-system/deny-c",result="denied"'), 1);
  });

  it('trace --source-principal gives the verdicts the gateway applied, and refuses plaintext on the ISTIO_MUTUAL server', async () => {
    const trace = (principal: string | undefined, scheme = 'https') =>
      run(process.execPath, [BIN, 'trace', '-f', cfgPath, '--role', 'gateway', '-n', 'istio-system', '-l', 'istio=egressgateway', ...(principal ? ['--source-principal', principal] : []), '-o', 'json', `${scheme}://edition.cnn.com:443/`], { timeoutMs: 15_000 }).then((r) => JSON.parse(r.stdout) as { ok: boolean; reason?: string; detail?: string; flag?: string });
    const c = await trace('cluster.local/ns/c/sa/sleep');
    assert.equal(c.ok, false);
    assert.equal(c.reason, 'rbac_denied');
    assert.equal(c.detail, 'rbac_access_denied_matched_policy[ns[istio-system]-policy[deny-c]-rule[0]]');
    const blockedTrace = await trace('cluster.local/ns/a/sa/blocked');
    assert.equal(blockedTrace.detail, 'rbac_access_denied_matched_policy[ns[istio-system]-policy[deny-c]-rule[1]]');
    const plain = await trace(undefined, 'http');
    assert.equal(plain.ok, false);
    assert.equal(plain.flag, 'NR');
  });

  it('DENY beats ALLOW: a principal of namespace a named in the DENY policy is refused', async () => {
    const r = await curl(blocked, '/from-blocked');
    assert.deepEqual([r.code, r.body], ['403', 'RBAC: access denied']);
    const log = await gate.waitForLog((l) => l.path === '/from-blocked');
    assert.equal(log.response_code_details, 'rbac_access_denied_matched_policy[ns[istio-system]-policy[deny-c]-rule[1]]');
  });

  it('dry-run: the request goes through and the log names the policy that would have denied it', async () => {
    const r = await curl(a, '/audited', ['-H', 'x-audit: 1']);
    assert.deepEqual([r.code, r.body], ['200', 'upstream']);
    const log = await gate.waitForLog((l) => l.path === '/audited');
    assert.equal(log.tollgate_reason, 'rbac_dry_run_denied');
    assert.equal(log.response_code_details, 'rbac_dry_run_denied_matched_policy[ns[istio-system]-policy[audit-a]-rule[0]]');
  });

  it('a client without a mesh certificate fails the handshake; plaintext is closed; neither reaches the upstream', async () => {
    const before = served.length;
    const r = await curl(undefined, '/no-cert');
    assert.notEqual(r.exit, 0, 'curl must fail without a client certificate');
    assert.notEqual(r.code, '200');
    const log = await gate.waitForLog((l) => l.tollgate_reason === 'mtls_handshake_failed');
    assert.equal(log.response_flags, 'UF');
    const plain = await tcpExchange('127.0.0.1', gate.port(443), 'GET / HTTP/1.1\r\nHost: edition.cnn.com\r\n\r\n', { timeoutMs: 5000 });
    assert.doesNotMatch(plain.data, /200|upstream/);
    assert.notEqual(plain.closedBy, 'timeout');
    assert.equal(served.length, before);
  });

  it('a certificate from another CA is refused', async () => {
    await pki.ca('other-root');
    const stranger = await meshCert(pki, 'other-root', 'a', 'sleep', 'stranger');
    const before = served.length;
    const r = await curl(stranger, '/stranger');
    assert.notEqual(r.code, '200');
    assert.equal(served.length, before);
    // The refusal names the certificate and OpenSSL's verification error.
    const log = await gate.waitForLog((l) => l.tollgate_reason === 'mtls_handshake_failed' && /^client certificate O=cluster\.local: [A-Z_]+ \(the mesh roots must verify it\)$/.test(l.connection_termination_details ?? ''));
    assert.equal(log.response_flags, 'UF');
  });
});

/** The sidecar side of the pattern, as a second proxy: plain HTTP in, ISTIO_MUTUAL to the egress gateway (DestinationRule). */
function clientConfig(gatewayPort: number, sans: string): string {
  return `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: egressgateway, namespace: a}
spec:
  hosts: [istio-egressgateway.istio-system.svc.cluster.local]
  ports: [{number: 443, name: https, protocol: HTTPS}]
  resolution: STATIC
  endpoints: [{address: 127.0.0.1, ports: {https: ${gatewayPort}}}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: egressgateway-for-cnn, namespace: a}
spec:
  host: istio-egressgateway.istio-system.svc.cluster.local
  trafficPolicy:
    tls: {mode: ISTIO_MUTUAL, sni: edition.cnn.com, subjectAltNames: ["${sans}"]}
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: front, namespace: a}
spec:
  selector: {app: sleep}
  servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: [edition.cnn.com]}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: cnn-via-egress, namespace: a}
spec:
  hosts: [edition.cnn.com]
  gateways: [front]
  http: [{route: [{destination: {host: istio-egressgateway.istio-system.svc.cluster.local, port: {number: 443}}}]}]
`;
}

describe('two proxies: ISTIO_MUTUAL origination to the egress gateway, identity checked both ways', { skip }, () => {
  let setup: EgressSetup;
  let pki: Pki;
  let served: string[] = [];
  const gates: TestGate[] = [];
  const cleanups: (() => void)[] = [];

  before(async () => {
    setup = await startEgressGateway();
    ({ pki, served } = setup);
    gates.push(setup.gate);
  });
  after(async () => {
    for (const g of gates.slice(1)) await g.stop();
    for (const cl of cleanups) cl();
    await setup?.stop();
  });

  const client = async (ns: string, sans: string): Promise<{ gate: TestGate; cert: MeshCert }> => {
    const cert = await meshCert(pki, 'mesh-root', ns, 'sleep', `client-${ns}-${gates.length}`);
    const g = await startGateWithConfig(clientConfig(gates[0]!.port(443), sans), ['--role', 'gateway', '-n', ns, '-l', 'app=sleep', '--port-map', '80=0', '--workload-cert-dir', cert.dir]);
    gates.push(g.gate);
    cleanups.push(() => g.cfg.cleanup());
    return { gate: g.gate, cert };
  };
  const get = async (g: TestGate, path: string): Promise<{ code: string; body: string }> => {
    const r = await run('curl', ['-s', '--max-time', '10', '-H', 'Host: edition.cnn.com', '-w', '\n%{http_code}', `http://127.0.0.1:${g.port(80)}${path}`], { timeoutMs: 15_000 });
    const lines = r.stdout.split('\n');
    return { code: lines.pop() ?? '', body: lines.join('\n') };
  };

  it('namespace a: plain HTTP in, mTLS between the proxies, the gateway authorizes a by its certificate', async () => {
    const { gate } = await client('a', 'spiffe://cluster.local/ns/istio-system/sa/istio-egressgateway');
    assert.deepEqual(await get(gate, '/via-a'), { code: '200', body: 'upstream' });
    assert.ok(served.includes('/via-a'));
    const gwLog = await gates[0]!.waitForLog((l) => l.path === '/via-a');
    assert.equal(gwLog.response_code, 200);
    assert.equal(gwLog.requested_server_name, 'edition.cnn.com');
  });

  it('principals in logs and metrics: the gateway logs the caller\'s SPIFFE ID, the client logs and labels the gateway\'s', async () => {
    const { gate, cert } = await client('a', 'spiffe://cluster.local/ns/istio-system/sa/istio-egressgateway');
    assert.equal((await get(gate, '/principals')).code, '200');
    const gwLog = await gates[0]!.waitForLog((l) => l.path === '/principals');
    assert.equal(gwLog.downstream_peer_uri_san, cert.spiffeId);
    const clientLog = await gate.waitForLog((l) => l.path === '/principals');
    assert.equal(clientLog.upstream_peer_uri_san, 'spiffe://cluster.local/ns/istio-system/sa/istio-egressgateway');
    assert.equal(clientLog.downstream_peer_uri_san, undefined, 'the client proxy\'s caller was plaintext');
    // Outbound (reporter=source): this proxy's identity as the source, the verified server as the destination.
    assert.ok(gate.metric('istio_requests_total', `connection_security_policy="unknown",source_principal="${cert.spiffeId}",destination_principal="spiffe://cluster.local/ns/istio-system/sa/istio-egressgateway"`) >= 1);
    // The gateway terminated mTLS: the caller is the source, the gateway itself the destination.
    assert.ok(gates[0]!.metric('istio_requests_total', `connection_security_policy="mutual_tls",source_principal="${cert.spiffeId}",destination_principal="spiffe://cluster.local/ns/istio-system/sa/istio-egressgateway"`) >= 1);
  });

  it('x-forwarded-client-cert through two proxies: the plaintext caller\'s value is dropped, the gateway names the client proxy it verified', async () => {
    const { gate, cert } = await client('a', 'spiffe://cluster.local/ns/istio-system/sa/istio-egressgateway');
    const r = await run('curl', ['-s', '--max-time', '10', '-H', 'Host: edition.cnn.com', '-H', 'X-Forwarded-Client-Cert: URI=spiffe://cluster.local/ns/admin/sa/root', '-w', '\n%{http_code}', `http://127.0.0.1:${gate.port(80)}/xfcc-chain`], { timeoutMs: 15_000 });
    assert.match(r.stdout, /200$/);
    const hash = new X509Certificate(readFileSync(cert.cert)).fingerprint256.replaceAll(':', '').toLowerCase();
    assert.equal(setup.xfcc.get('/xfcc-chain'), `By=spiffe://cluster.local/ns/istio-system/sa/istio-egressgateway;Hash=${hash};Subject="O=cluster.local";URI=${cert.spiffeId}`);
  });

  it('namespace c: the same path, denied at the gateway by its identity (403 comes back through the client proxy)', async () => {
    const { gate } = await client('c', 'spiffe://cluster.local/ns/istio-system/sa/istio-egressgateway');
    assert.deepEqual(await get(gate, '/via-c'), { code: '403', body: 'RBAC: access denied' });
    assert.ok(!served.includes('/via-c'));
    const gwLog = await gates[0]!.waitForLog((l) => l.path === '/via-c');
    assert.equal(gwLog.response_code_details, 'rbac_access_denied_matched_policy[ns[istio-system]-policy[deny-c]-rule[0]]');
  });

  it('the client refuses a gateway whose SPIFFE ID is not the expected one (subjectAltNames): 503, nothing sent', async () => {
    const { gate } = await client('a', 'spiffe://cluster.local/ns/istio-system/sa/someone-else');
    const r = await get(gate, '/wrong-server');
    assert.equal(r.code, '503');
    assert.ok(!served.includes('/wrong-server'));
    const log = await gate.waitForLog((l) => l.path === '/wrong-server');
    assert.equal(log.tollgate_reason, 'upstream_tls_handshake_failed');
    assert.match(log.response_code_details ?? log.connection_termination_details ?? '', /someone-else|subjectAltNames|spiffe/);
  });

  it('certificate rotation: new files are picked up for new connections; a pooled connection keeps working', async () => {
    const { gate, cert } = await client('a', 'spiffe://cluster.local/ns/istio-system/sa/istio-egressgateway');
    assert.equal((await get(gate, '/before-rotation')).code, '200');
    const holder = gate.tg.services.identity!;
    const before = holder.current()!;
    const next = await meshCert(pki, 'mesh-root', 'a', 'sleep', 'rotated');
    for (const f of ['key.pem', 'cert-chain.pem', 'root-cert.pem']) writeFileSync(join(cert.dir, f), readFileSync(join(next.dir, f)));
    await waitFor(() => (holder.current() !== before ? true : undefined), 5000, 'reloaded certificate');
    assert.notEqual(holder.current()!.certChainPem, before.certChainPem);
    for (let i = 0; i < 3; i++) assert.equal((await get(gate, `/after-rotation-${i}`)).code, '200');
  });
});
