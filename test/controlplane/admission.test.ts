/**
 * The validating admission webhook of `tollgate control-plane`, driven with real AdmissionReview v1
 * JSON over HTTPS by curl (as the API server would call it): a valid object is allowed, invalid
 * ones are denied with the field path and the fix, and the uid is echoed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { makeCerts } from '../helpers/net.js';
import { fixture, ROOT } from '../helpers/pipeline.js';
import { requireTools, run } from '../helpers/tools.js';
import { waitFor } from '../helpers/net.js';
import { makeControlPlaneAuth } from '../helpers/control-plane-auth.js';

const HOST = 'tollgate-control-plane.tollgate-system.svc';

const reviewOf = (uid: string, operation: string, object: Record<string, unknown>) => JSON.stringify({
  apiVersion: 'admission.k8s.io/v1',
  kind: 'AdmissionReview',
  request: {
    uid, operation,
    kind: { group: String(object['apiVersion']).split('/')[0], version: 'v1', kind: object['kind'] },
    resource: { group: 'networking.istio.io', version: 'v1', resource: 'virtualservices' },
    name: (object['metadata'] as { name: string }).name,
    namespace: (object['metadata'] as { namespace?: string }).namespace,
    userInfo: { username: 'kubernetes-admin', groups: ['system:masters', 'system:authenticated'] },
    object, oldObject: null, dryRun: false,
    options: { apiVersion: 'meta.k8s.io/v1', kind: 'CreateOptions', fieldManager: 'kubectl-client-side-apply' },
  },
});

const vs = (timeout: string) => ({
  apiVersion: 'networking.istio.io/v1', kind: 'VirtualService',
  metadata: { name: 'shop', namespace: 'apps', uid: 'f1e2', creationTimestamp: null, managedFields: [{ manager: 'kubectl', operation: 'Update' }] },
  spec: { hosts: ['shop.example.org'], gateways: ['default/public'], http: [{ timeout, route: [{ destination: { host: 'shop.default.svc.cluster.local' } }] }] },
});
const router = (destination: string) => ({
  apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'egress-router', namespace: 'egress' },
  spec: {
    selector: { matchLabels: { app: 'egress-router' } },
    template: { metadata: { labels: { app: 'egress-router' } }, spec: { containers: [{ name: 'egress-router', image: 'tollgate', env: [
      { name: 'EGRESS_SOURCE', value: '192.0.2.99' }, { name: 'EGRESS_GATEWAY', value: '192.0.2.1' }, { name: 'EGRESS_DESTINATION', value: destination }, { name: 'EGRESS_ROUTER_MODE', value: 'init' },
    ] }] } },
  },
});

test('admission webhook over HTTPS: valid allowed, invalid VirtualService / EgressIP / egress-router Deployment denied with field path and fix', { timeout: 60_000 }, async (t) => {
  if (!requireTools(t, 'curl', 'openssl')) return;
  const certs = makeCerts([HOST]);
  // The stream itself needs its TLS certificate and proxy tokens; the webhook has its own certificate.
  const auth = await makeControlPlaneAuth();
  t.after(() => {
    certs.cleanup();
    auth.cleanup();
  });
  const child = spawn(process.execPath, [join(ROOT, 'dist/src/cli/bin.js'), 'control-plane', '-f', fixture('ingress-gateway.yaml'), '--listen', '127.0.0.1:0', ...auth.serverArgs,
    '--webhook-listen', '127.0.0.1:0', '--webhook-tls-cert', certs.cert, '--webhook-tls-key', certs.key,
    '--inject-image', 'tollgate:0.1.0', '--inject-control-plane', `${HOST}:15010`], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  t.after(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  await waitFor(() => /webhook: serving https:\/\/127\.0\.0\.1:(\d+)\/validate/.test(stderr), 20_000, `webhook listening (stderr: ${stderr})`);
  const port = Number(/webhook: serving https:\/\/127\.0\.0\.1:(\d+)/.exec(stderr)?.[1]);

  const post = async (body: string, path = '/validate') => {
    const r = await run('curl', ['-sS', '--fail-with-body', '--cacert', certs.cert, '--resolve', `${HOST}:${port}:127.0.0.1`, '-H', 'content-type: application/json', '--data-binary', '@-', `https://${HOST}:${port}${path}?timeout=10s`], { input: body, timeoutMs: 15_000 });
    assert.equal(r.status, 0, r.stderr + r.stdout);
    return JSON.parse(r.stdout) as { apiVersion: string; kind: string; response: { uid: string; allowed: boolean; status?: { code: number; message: string }; warnings?: string[]; patchType?: string; patch?: string } };
  };

  const ok = await post(reviewOf('uid-ok', 'CREATE', vs('5s')));
  assert.deepEqual({ apiVersion: ok.apiVersion, kind: ok.kind, uid: ok.response.uid, allowed: ok.response.allowed }, { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', uid: 'uid-ok', allowed: true });

  const bad = await post(reviewOf('uid-bad', 'UPDATE', vs('soon')));
  assert.equal(bad.response.uid, 'uid-bad');
  assert.equal(bad.response.allowed, false);
  assert.equal(bad.response.status?.code, 400);
  assert.match(bad.response.status?.message ?? '', /^Tollgate rejected VirtualService apps\/shop:\nspec\.http\[0\]\.timeout must be a duration such as "5s"/);

  const eip = await post(reviewOf('uid-eip', 'CREATE', { apiVersion: 'k8s.ovn.org/v1', kind: 'EgressIP', metadata: { name: 'edge' }, spec: { egressIPs: ['192.0.2.300'], namespaceSelector: { matchLabels: { team: 'edge' } } } }));
  assert.equal(eip.response.allowed, false);
  assert.match(eip.response.status?.message ?? '', /spec\.egressIPs\[0\] "192\.0\.2\.300" is not an IP address/);

  const badRouter = await post(reviewOf('uid-router', 'CREATE', router('80 tcp 203.0.113.25\n443 tcpx 203.0.113.25\n')));
  assert.equal(badRouter.response.allowed, false);
  assert.match(badRouter.response.status?.message ?? '', /spec\.template\.spec\.containers\[0\]\.env\[2\]\.value \(line 2\): EGRESS_DESTINATION line "443 tcpx 203\.0\.113\.25": protocol "tcpx" is not tcp or udp \(fix: each line is/);
  assert.equal((await post(reviewOf('uid-router-ok', 'CREATE', router('80 tcp 203.0.113.25\n')))).response.allowed, true);

  const del = await post(reviewOf('uid-del', 'DELETE', vs('soon')));
  assert.equal(del.response.allowed, true, 'deleting a bad object is never blocked');
  assert.match(stderr, /admission: denied Tollgate rejected VirtualService apps\/shop/);

  // Sidecar injection (mutating): a Pod gets what `tollgate inject` adds, as a JSONPatch; inject: "false" is honoured.
  const pod = (annotations: Record<string, string>) => ({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'shop-1', namespace: 'apps', annotations }, spec: { containers: [{ name: 'web', image: 'nginx' }] } });
  const injected = await post(reviewOf('uid-pod', 'CREATE', pod({ team: 'shop' })), '/inject');
  assert.equal(injected.response.uid, 'uid-pod');
  assert.equal(injected.response.allowed, true);
  assert.equal(injected.response.patchType, 'JSONPatch');
  const patch = JSON.parse(Buffer.from(injected.response.patch ?? '', 'base64').toString('utf8')) as { op: string; path: string; value: any }[];
  assert.deepEqual(patch.map((p) => `${p.op} ${p.path}`), ['add /spec', 'add /metadata/annotations']);
  assert.deepEqual(patch[0]?.value.containers.map((c: { name: string }) => c.name), ['web', 'istio-proxy']);
  assert.deepEqual(patch[0]?.value.initContainers.map((c: { name: string }) => c.name), ['istio-init']);
  assert.ok(JSON.stringify(patch[0]?.value.containers[1]).includes(`${HOST}:15010`), 'the sidecar connects to the control plane');
  assert.equal(patch[1]?.value.team, 'shop', 'existing annotations kept');
  assert.ok(patch[1]?.value['sidecar.istio.io/status']);
  const optedOut = await post(reviewOf('uid-pod-off', 'CREATE', pod({ 'sidecar.istio.io/inject': 'false' })), '/inject');
  assert.equal(optedOut.response.allowed, true);
  assert.equal(optedOut.response.patch, undefined);

  // Plain HTTP to the webhook port fails: it speaks TLS only.
  const plain = await run('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code}', `http://127.0.0.1:${port}/validate`], { timeoutMs: 10_000 });
  assert.notEqual(plain.stdout, '200');
  child.kill('SIGTERM');
  await waitFor(() => child.exitCode !== null, 10_000, 'control plane exits on SIGTERM');
  assert.equal(child.exitCode, 0, stderr);
});
