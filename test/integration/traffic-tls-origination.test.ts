/**
 * TLS origination with a client certificate that lives only in the gateway's
 * config. An app calls http://partner.example/ (curl --connect-to the gateway); the partner is
 * `openssl s_server -Verify 1` requiring a client certificate signed by the partner's client CA.
 *  - credentialName Secret (stringData + base64 data) -> 200
 *  - no client certificate (SIMPLE) -> the handshake fails, 503, and the access log says why
 *  - rotation: a new snapshot with another client certificate is used by the next connection
 *  - file paths (clientCertificate/privateKey/caCertificates) -> 200
 *  - /config_dump never shows the key material (redacted with a fingerprint)
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { httpEngine } from '../../src/dataplane/http/engine.js';
import { freeTcpPort } from '../helpers/dns.js';
import { egressGateway, targetPortEntry, virtualService } from '../helpers/istio-yaml.js';
import { loopbackAddress } from '../helpers/net.js';
import { makePki, startOpensslServer, type OpensslServer, type Pki } from '../helpers/pki.js';
import { EGRESS_GATEWAY_ARGS, startGate, tempConfig, type TestGate } from '../helpers/tollgate.js';
import { haveTool, isCI, run } from '../helpers/tools.js';

const ready = haveTool('openssl') && haveTool('curl');
const skip = ready ? false : 'needs openssl and curl';
if (!ready && isCI) throw new Error(`traffic-tls-origination: ${skip}; CI=true`);

const b64 = (s: string): string => Buffer.from(s).toString('base64');
const indent = (pem: string): string => JSON.stringify(pem);

function config(o: { ip: string; port: number; tls: string; secret?: { crt: string; key: string; ca: string } }): string {
  return `${targetPortEntry('partner', 'egress', 'partner.example', [o.ip], o.port, true)}${egressGateway(['partner.example'])}${virtualService('partner', 'egress', ['partner.example'], ['egress'], `http: [{route: [{destination: {host: partner.example, port: {number: 80}}}]}]`)}---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: partner, namespace: egress}
spec:
  host: partner.example
  trafficPolicy:
    tls: ${o.tls}
${
  o.secret
    ? `---
apiVersion: v1
kind: Secret
metadata: {name: partner-client, namespace: egress}
type: kubernetes.io/tls
stringData:
  tls.crt: ${indent(o.secret.crt)}
  tls.key: ${indent(o.secret.key)}
data:
  ca.crt: ${b64(o.secret.ca)}
`
    : ''
}`;
}

describe('TLS origination to a partner that requires a client certificate', { skip, concurrency: false }, () => {
  let pki: Pki;
  let server: OpensslServer;
  let gate: TestGate;
  let cfg: { path: string; cleanup(): void };
  const ip = loopbackAddress();
  let port = 0;
  let good: { cert: string; key: string };
  let rogue: { cert: string; key: string };
  let partnerCa: { cert: string; key: string };
  let adminPort = 0;

  async function call(): Promise<{ status: number; body: string }> {
    const r = await run('curl', ['-sS', '-o', '-', '-w', '\n%{http_code}', '--max-time', '5', '--connect-to', `partner.example:80:127.0.0.1:${gate.port(80)}`, 'http://partner.example/']);
    const i = r.stdout.lastIndexOf('\n');
    return { status: Number(r.stdout.slice(i + 1)), body: r.stdout.slice(0, i) };
  }

  async function reconfigure(yaml: string): Promise<void> {
    writeFileSync(cfg.path, yaml);
    await gate.tg.reload();
  }

  before(async () => {
    pki = makePki();
    partnerCa = await pki.ca('partner-ca'); // signs the partner's server certificate
    await pki.ca('client-ca'); // the CA the partner trusts for client certificates
    await pki.ca('rogue-ca');
    const srv = await pki.leaf('partner', 'partner-ca', { dns: 'partner.example' });
    good = await pki.leaf('gateway-client', 'client-ca', { client: true });
    rogue = await pki.leaf('rogue-client', 'rogue-ca', { client: true });
    port = await freeTcpPort();
    server = await startOpensslServer(ip, port, srv.cert, srv.key, `${pki.dir}/client-ca.crt`);
    cfg = tempConfig(config({ ip, port, tls: '{mode: MUTUAL, credentialName: partner-client}', secret: { crt: pki.read(good.cert), key: pki.read(good.key), ca: pki.read(partnerCa.cert) } }));
    adminPort = await freeTcpPort();
    gate = await startGate(['-f', cfg.path, ...EGRESS_GATEWAY_ARGS, '--admin', `127.0.0.1:${adminPort}`], { httpHandler: httpEngine({}) });
  });

  after(async () => {
    await gate?.stop();
    await server?.stop();
    cfg?.cleanup();
    pki?.cleanup();
  });

  it('answers 200 with the client certificate from a credentialName Secret (the app speaks plain HTTP)', async () => {
    const r = await call();
    assert.equal(r.status, 200, r.body);
    assert.match(r.body, /s_server|Ciphers|TLS/i); // s_server -www status page
    const rec = await gate.waitForLog((x) => x.response_code === 200);
    assert.equal(rec.upstream_cluster, 'outbound|80||partner.example');
  });

  it('/config_dump carries no key material: secret values are fingerprints', async () => {
    const r = await run('curl', ['-sS', '--max-time', '5', `http://127.0.0.1:${adminPort}/config_dump`]);
    assert.ok(!r.stdout.includes('PRIVATE KEY'), 'private key leaked into config_dump');
    assert.ok(!r.stdout.includes('BEGIN CERTIFICATE'), 'certificate text in config_dump');
    assert.match(r.stdout, /"name":\s*"egress\/partner-client"/);
    assert.match(r.stdout, /\[redacted sha256:[0-9a-f]{12} \d+ bytes\]/);
  });

  it('without a client certificate the handshake fails: 503 UF and the access log says why', async () => {
    await reconfigure(config({ ip, port, tls: `{mode: SIMPLE, caCertificates: ${partnerCa.cert}}` }));
    gate.logs.length = 0;
    const r = await call();
    assert.equal(r.status, 503, r.body);
    const rec = await gate.waitForLog((x) => x.response_code === 503);
    const why = `${rec.response_code_details ?? ''} ${rec.upstream_transport_failure_reason ?? ''}`;
    assert.match(why, /certificate required|CERTIFICATE_REQUIRED|handshake failure|alert/i, JSON.stringify(rec));
    assert.match(String(rec.response_flags), /^U[FC]/);
    if (process.env["TG_SHOW"]) console.log(JSON.stringify(rec));
  });

  it('rotation without restart: a snapshot with another client certificate is used by the next connection', async () => {
    // A certificate from a CA the partner does not trust: refused.
    await reconfigure(config({ ip, port, tls: '{mode: MUTUAL, credentialName: partner-client}', secret: { crt: pki.read(rogue.cert), key: pki.read(rogue.key), ca: pki.read(partnerCa.cert) } }));
    assert.equal((await call()).status, 503);
    // Rotated back to the good certificate: accepted, same process.
    await reconfigure(config({ ip, port, tls: '{mode: MUTUAL, credentialName: partner-client}', secret: { crt: pki.read(good.cert), key: pki.read(good.key), ca: pki.read(partnerCa.cert) } }));
    assert.equal((await call()).status, 200);
  });

  it('file-based MUTUAL (clientCertificate/privateKey/caCertificates) works too', async () => {
    await reconfigure(config({ ip, port, tls: `{mode: MUTUAL, clientCertificate: ${good.cert}, privateKey: ${good.key}, caCertificates: ${partnerCa.cert}}` }));
    assert.equal((await call()).status, 200);
  });

  it('a server certificate from an untrusted CA is refused (verification is on)', async () => {
    await reconfigure(config({ ip, port, tls: `{mode: MUTUAL, clientCertificate: ${good.cert}, privateKey: ${good.key}, caCertificates: ${pki.dir}/rogue-ca.crt}` }));
    gate.logs.length = 0;
    assert.equal((await call()).status, 503);
    const rec = await gate.waitForLog((x) => x.response_code === 503);
    assert.match(String(rec.response_code_details), /certificate|verify|issuer/i);
  });
});
