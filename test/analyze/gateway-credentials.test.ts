/**
 * analyze on Gateway credentials says what the gateway proxy does with them: the Secret is read from
 * the gateway pods' namespace (as Istio), MUTUAL needs a client CA (ca.crt, or the `<name>-cacert`
 * Secret), and client-certificate checks the proxy does not make are errors, not silently skipped.
 * Each case is also checked against the snapshot the proxy would build (same namespace, same CA).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { analyzeModel } from '../../src/analyze/analyze.js';
import { buildSnapshot } from '../../src/snapshot/build.js';
import { makeCerts } from '../helpers/net.js';
import { loadYaml } from '../helpers/pipeline.js';

const certs = makeCerts(['shop.example']);
const cert = certs.certPem.toString();
const key = certs.keyPem.toString();
certs.cleanup();

const pod = (ns: string) => `---
apiVersion: v1
kind: Pod
metadata: {name: ingress-1, namespace: ${ns}, labels: {istio: ingressgateway}}
spec: {containers: [{name: istio-proxy, image: proxy}]}
`;

function secret(ns: string, name: string, keys: Record<string, string>): string {
  return `---
apiVersion: v1
kind: Secret
metadata: {name: ${name}, namespace: ${ns}}
data: {${Object.entries(keys).map(([k, v]) => `${k}: ${Buffer.from(v).toString('base64')}`).join(', ')}}
`;
}

function gateway(ns: string, tls: string): string {
  return `---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: ${ns}}
spec:
  selector: {istio: ingressgateway}
  servers: [{port: {number: 443, name: https, protocol: HTTPS}, hosts: [shop.example], tls: ${tls}}]
`;
}

function findings(yaml: string): string[] {
  const c = loadYaml(yaml, 'case.yaml');
  return analyzeModel(c.model).filter((d) => d.code.startsWith('TG_GATEWAY_SECRET') || d.code === 'TG_GATEWAY_TLS_UNSUPPORTED').map((d) => `${d.code}: ${d.message}`);
}

function snapshotSecrets(yaml: string, ns: string): string[] {
  const c = loadYaml(yaml, 'case.yaml');
  const snap = buildSnapshot(c.model, { role: 'gateway', namespace: ns, name: 'ingress-1', labels: { istio: 'ingressgateway' } });
  return (snap.secrets ?? []).map((s) => `${s.name}${s.caCertificates !== undefined ? ' +ca' : ''}`);
}

test('the Secret is read from the gateway pods\' namespace, not the Gateway\'s', () => {
  const tls = '{mode: SIMPLE, credentialName: shop-cred}';
  const inPodNs = pod('istio-system') + gateway('shop', tls) + secret('istio-system', 'shop-cred', { 'tls.crt': cert, 'tls.key': key });
  assert.deepEqual(findings(inPodNs), []);
  assert.deepEqual(snapshotSecrets(inPodNs, 'istio-system'), ['istio-system/shop-cred']);

  const besideGateway = pod('istio-system') + gateway('shop', tls) + secret('shop', 'shop-cred', { 'tls.crt': cert, 'tls.key': key });
  const f = findings(besideGateway);
  assert.equal(f.length, 1, f.join('\n'));
  assert.match(f[0]!, /^TG_GATEWAY_SECRET_NAMESPACE: credentialName shop-cred: the Secret is in the Gateway's namespace shop, but a gateway proxy reads it from its own namespace istio-system/);
  assert.deepEqual(snapshotSecrets(besideGateway, 'istio-system'), [], 'and the proxy indeed has no key material');

  // No gateway pod in the config: the Gateway's namespace (what `tollgate run` assumes then).
  assert.deepEqual(findings(gateway('shop', tls) + secret('shop', 'shop-cred', { 'tls.crt': cert, 'tls.key': key })), []);
});

test('MUTUAL: the client CA from ca.crt or the <name>-cacert Secret; none is an error the proxy agrees with', () => {
  const tls = '{mode: MUTUAL, credentialName: shop-cred}';
  const withCaSecret = pod('istio-system') + gateway('istio-system', tls) + secret('istio-system', 'shop-cred', { 'tls.crt': cert, 'tls.key': key }) + secret('istio-system', 'shop-cred-cacert', { cacert: cert });
  assert.deepEqual(findings(withCaSecret), []);
  assert.deepEqual(snapshotSecrets(withCaSecret, 'istio-system'), ['istio-system/shop-cred +ca']);
  const inline = pod('istio-system') + gateway('istio-system', tls) + secret('istio-system', 'shop-cred', { 'tls.crt': cert, 'tls.key': key, 'ca.crt': cert });
  assert.deepEqual(findings(inline), []);

  const noCa = pod('istio-system') + gateway('istio-system', tls) + secret('istio-system', 'shop-cred', { 'tls.crt': cert, 'tls.key': key });
  const f = findings(noCa);
  assert.equal(f.length, 1, f.join('\n'));
  assert.match(f[0]!, /^TG_GATEWAY_SECRET_INVALID: .*has no client CA for tls\.mode MUTUAL \(no ca\.crt or cacert, and no Secret shop-cred-cacert\)/);
  assert.deepEqual(snapshotSecrets(noCa, 'istio-system'), ['istio-system/shop-cred'], 'no CA reaches the proxy either (it refuses the snapshot)');
});

test('client-certificate checks the proxy does not make, and MUTUAL with files but no CA, are errors', () => {
  const f = findings(gateway('edge', '{mode: MUTUAL, serverCertificate: /c.pem, privateKey: /k.pem}') + gateway('edge2', '{mode: MUTUAL, serverCertificate: /c.pem, privateKey: /k.pem, caCertificates: /ca.pem, caCrl: /crl.pem, verifyCertificateHash: [ab]}'));
  assert.equal(f.length, 2, f.join('\n'));
  assert.match(f.join('\n'), /tls\.mode MUTUAL verifies client certificates, and no caCertificates \(or credentialName\) gives the CA/);
  assert.match(f.join('\n'), /caCrl is not supported by this proxy; verifyCertificateHash is not supported by this proxy/);
});
