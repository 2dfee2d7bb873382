/**
 * The control plane hands out TLS private keys, so nobody gets a snapshot without TLS and a valid
 * token, and a token gets only its own namespace's snapshot and Secrets. Driven with real curl
 * against the real `tollgate control-plane` process.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIN } from '../helpers/tollgate.js';
import { waitFor } from '../helpers/net.js';
import { makeControlPlaneAuth } from '../helpers/control-plane-auth.js';
import { requireTools, run } from '../helpers/tools.js';

const secret = (ns: string, name: string, marker: string) =>
  `apiVersion: v1\nkind: Secret\nmetadata: {name: ${name}, namespace: ${ns}}\ntype: kubernetes.io/tls\nstringData:\n  tls.crt: "-----BEGIN CERTIFICATE-----\\n${marker}-CERT\\n-----END CERTIFICATE-----\\n"\n  tls.key: "-----BEGIN PRIVATE KEY-----\\n${marker}-KEY\\n-----END PRIVATE KEY-----\\n"\n`;

const tlsGateway = (ns: string, name: string, port: number, credential: string) =>
  `apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: ${name}, namespace: ${ns}}\nspec:\n  selector: {app: edge}\n  servers:\n  - {port: {number: ${port}, name: https-${port}, protocol: HTTPS}, hosts: ["*"], tls: {mode: SIMPLE, credentialName: ${credential}}}\n`;

const CONFIG = [tlsGateway('edge', 'gw', 443, 'edge-cert'), secret('edge', 'edge-cert', 'EDGE'), tlsGateway('team', 'gw-team', 8443, 'team-cert'), secret('team', 'team-cert', 'TEAM')].join('---\n');

const hello = (ns: string) => JSON.stringify({ type: 'hello', node: { role: 'gateway', namespace: ns, name: 'gw-1', labels: { app: 'edge' } } }) + '\n';

test('control plane: TLS + token required; a token gets its own namespace only, and only its namespace\'s Secrets', { timeout: 60_000 }, async (t) => {
  if (!requireTools(t, 'curl', 'openssl')) return;
  const auth = await makeControlPlaneAuth(['edge', 'other']);
  const dir = mkdtempSync(join(tmpdir(), 'tg-cp-auth-'));
  writeFileSync(join(dir, 'config.yaml'), CONFIG);
  const child = spawn(process.execPath, [BIN, 'control-plane', '-f', dir, '--listen', '127.0.0.1:0', ...auth.serverArgs], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  t.after(() => {
    if (child.exitCode === null && child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
    rmSync(dir, { recursive: true, force: true });
    auth.cleanup();
  });
  await waitFor(() => /serving \d+ objects on 127\.0\.0\.1:\d+/.test(stderr) || child.exitCode !== null, 20_000, 'control plane listening');
  const port = Number(/on 127\.0\.0\.1:(\d+)/.exec(stderr)?.[1]);
  assert.ok(port > 0, stderr);
  const url = `https://127.0.0.1:${port}`;
  const curl = (args: string[]) => run('curl', ['-sS', '--max-time', '3', '-w', '\nHTTP %{http_code}\n', ...args], { timeoutMs: 10_000 });
  const stream = (ns: string, extra: string[]) => curl(['--cacert', auth.caFile, '-X', 'POST', '-H', 'content-type: application/x-ndjson', '--data-binary', hello(ns), ...extra, `${url}/v1/stream`]);

  // Plain HTTP to the TLS port: no HTTP answer at all, certainly no snapshot.
  const plain = await curl(['-X', 'POST', '--data-binary', hello('edge'), `http://127.0.0.1:${port}/v1/stream`]);
  assert.doesNotMatch(plain.stdout, /PRIVATE KEY|"snapshot"/);
  assert.match(plain.stdout, /HTTP 000/, plain.stdout + plain.stderr);

  // TLS without a token: 401.
  const anonymous = await stream('edge', []);
  assert.match(anonymous.stdout, /HTTP 401/);
  assert.doesNotMatch(anonymous.stdout, /PRIVATE KEY|"snapshot"/);

  // A wrong token: 401.
  const forged = await stream('edge', ['-H', 'authorization: Bearer 0123456789abcdef0123456789abcdef']);
  assert.match(forged.stdout, /HTTP 401/);
  assert.doesNotMatch(forged.stdout, /PRIVATE KEY|"snapshot"/);

  // A valid token of namespace "other" claiming "edge": refused with the reason, nothing else.
  const otherNs = await stream('edge', ['-H', `authorization: Bearer ${auth.token('other')}`]);
  assert.match(otherNs.stdout, /does not match the credential's namespace \\"other\\"/, otherNs.stdout);
  assert.doesNotMatch(otherNs.stdout, /PRIVATE KEY|"snapshot"/);

  // The views are not public either (but /ready is, for probes).
  assert.match((await curl(['--cacert', auth.caFile, `${url}/v1/proxies`])).stdout, /HTTP 401/);
  assert.match((await curl(['--cacert', auth.caFile, `${url}/v1/config`])).stdout, /HTTP 401/);
  assert.match((await curl(['--cacert', auth.caFile, `${url}/ready`])).stdout, /HTTP 200/);

  // The edge token gets the edge snapshot with edge's key, never team's (a Gateway in team selects the same pods).
  const edge = await stream('edge', ['-H', `authorization: Bearer ${auth.token('edge')}`]);
  assert.match(edge.stdout, /"type":"snapshot"/, edge.stdout.slice(0, 500));
  assert.match(edge.stdout, /EDGE-KEY/);
  // As in Istio, the gateway reads credentialName from its own namespace: edge/team-cert, which does not exist.
  assert.match(edge.stdout, /"credentialName":"edge\/team-cert"/, 'the team listener is there');
  assert.doesNotMatch(edge.stdout, /TEAM-KEY|TEAM-CERT/, 'but not the Secret of another namespace');
  assert.match(stderr, /refused a proxy from 127\.0\.0\.1: it claims namespace "edge" but authenticated as other\/tollgate-proxy/);
});
