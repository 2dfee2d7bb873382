/**
 * Gateway server TLS settings are enforced on the terminated listener: minProtocolVersion TLSV1_3
 * refuses a TLS 1.2 client (real `openssl s_client -tls1_2`), cipherSuites restrict TLS 1.2, and
 * settings the proxy cannot enforce are an analyze error and a snapshot the data plane rejects.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { analyzeModel } from '../../src/analyze/analyze.js';
import { decodeResources } from '../../src/config/decode.js';
import { parseText } from '../../src/config/load.js';
import { buildModel } from '../../src/model/build.js';
import { makeCerts } from '../helpers/net.js';
import { startGateWithConfig } from '../helpers/tollgate.js';
import { requireTools, run } from '../helpers/tools.js';

const gatewayYaml = (cert: string, key: string, tls: string) => `
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: gw, namespace: istio-system }
spec:
  selector: { istio: ingressgateway }
  servers:
  - port: { number: 443, name: https, protocol: HTTPS }
    hosts: [www.example.test]
    tls: { mode: SIMPLE, serverCertificate: ${cert}, privateKey: ${key}${tls} }
`;

async function sClient(port: number, args: string[]): Promise<{ ok: boolean; out: string }> {
  const r = await run('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-servername', 'www.example.test', ...args], { input: '', timeoutMs: 10_000 });
  const out = r.stdout + r.stderr;
  // s_client prints "New, TLSv1.3, Cipher is TLS_..." once a handshake completed, "(NONE)" otherwise.
  return { ok: /\b(New|Reused), TLSv1\.[0-3], Cipher is [A-Z]/.test(out), out };
}

async function withGate(tls: string, fn: (port: number) => Promise<void>): Promise<void> {
  const certs = makeCerts(['www.example.test']);
  const { gate, cfg } = await startGateWithConfig(gatewayYaml(certs.cert, certs.key, tls), ['--port-map', '443=0']);
  try {
    await fn(gate.port(443));
  } finally {
    await gate.stop();
    cfg.cleanup();
    certs.cleanup();
  }
}

test('minProtocolVersion TLSV1_3: a TLS 1.2 client is refused, TLS 1.3 works', async (t) => {
  if (!requireTools(t, 'openssl')) return;
  await withGate(', minProtocolVersion: TLSV1_3', async (port) => {
    const v12 = await sClient(port, ['-tls1_2']);
    assert.equal(v12.ok, false, `TLS 1.2 handshake must fail:\n${v12.out}`);
    const v13 = await sClient(port, ['-tls1_3']);
    assert.equal(v13.ok, true, `TLS 1.3 handshake must work:\n${v13.out}`);
  });
});

test('default: TLS 1.2 minimum (a TLS 1.1 client is refused); cipherSuites restrict TLS 1.2', async (t) => {
  if (!requireTools(t, 'openssl')) return;
  await withGate(', maxProtocolVersion: TLSV1_2, cipherSuites: [ECDHE-ECDSA-AES256-GCM-SHA384]', async (port) => {
    const allowed = await sClient(port, ['-tls1_2', '-cipher', 'ECDHE-ECDSA-AES256-GCM-SHA384']);
    assert.equal(allowed.ok, true, allowed.out);
    const other = await sClient(port, ['-tls1_2', '-cipher', 'ECDHE-ECDSA-AES128-GCM-SHA256']);
    assert.equal(other.ok, false, `a suite outside cipherSuites must fail:\n${other.out}`);
    const v13 = await sClient(port, ['-tls1_3']);
    assert.equal(v13.ok, false, `maxProtocolVersion TLSV1_2 refuses TLS 1.3:\n${v13.out}`);
    const v11 = await sClient(port, ['-tls1_1', '-cipher', 'DEFAULT@SECLEVEL=0']);
    assert.equal(v11.ok, false, v11.out);
  });
});

test('unsupported settings: analyze error, and the data plane refuses the snapshot instead of weakening', async (t) => {
  if (!requireTools(t, 'openssl')) return;
  const certs = makeCerts(['www.example.test']);
  t.after(() => certs.cleanup());
  const yaml = gatewayYaml(certs.cert, certs.key, ', cipherSuites: ["[ECDHE-ECDSA-AES128-GCM-SHA256|ECDHE-ECDSA-CHACHA20-POLY1305]", NOT-A-CIPHER]');
  const model = buildModel(decodeResources(parseText(yaml, 'gw.yaml').documents).resources);
  const d = analyzeModel(model).filter((x) => x.code === 'TG_GATEWAY_TLS_UNSUPPORTED');
  assert.equal(d.length, 1);
  assert.equal(d[0]!.severity, 'error');
  assert.match(d[0]!.message, /"NOT-A-CIPHER"/);
  assert.equal(d[0]!.pos?.line, 10);
  await assert.rejects(startGateWithConfig(gatewayYaml(certs.cert, certs.key, ', cipherSuites: [NOT-A-CIPHER]'), ['--port-map', '443=0']), /TLS settings cannot be enforced: cipherSuites "NOT-A-CIPHER"/);
});
