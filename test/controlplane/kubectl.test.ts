/**
 * The Kubernetes source with objects written by the real `kubectl` (apply, get, delete) into the
 * stand-in API server, so the stand-in's wire protocol is checked by a client we did not write:
 * an ingress gateway config and an egress gateway config plus 50 generated objects and one invalid
 * VirtualService; the control plane pushes to two gateways, leaves the bad object out and reports it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { ControlPlane } from '../../src/controlplane/server.js';
import { ControlPlaneClient } from '../../src/controlplane/client.js';
import { KubernetesConfigSource, loadKubeConfig } from '../../src/controlplane/kubernetes/source.js';
import { main } from '../../src/cli/main.js';
import type { Snapshot } from '../../src/snapshot/types.js';
import { FakeApiServer, INSTALL_KINDS, STANDARD_KINDS } from '../helpers/fake-apiserver.js';
import { waitFor } from '../helpers/net.js';
import { fixture, ROOT } from '../helpers/pipeline.js';
import { requireTools, run } from '../helpers/tools.js';
import { getJsonTls, makeControlPlaneAuth } from '../helpers/control-plane-auth.js';

class LastSnapshot {
  last: Snapshot | undefined;
  apply(s: Snapshot): Promise<void> {
    this.last = s;
    return Promise.resolve();
  }
  get domains(): string[] {
    return (this.last?.routes ?? []).flatMap((r) => r.virtualHosts.flatMap((v) => v.domains)).filter((d) => !d.includes(':'));
  }
}

const APPS = 25;

/** 25 ServiceEntries + 25 VirtualServices on the ingress Gateway, valid; then one VirtualService that is not. */
function generated(): string {
  const docs: string[] = ['apiVersion: v1\nkind: Namespace\nmetadata: {name: apps}', 'apiVersion: v1\nkind: Namespace\nmetadata: {name: egress}'];
  for (let i = 0; i < APPS; i++) {
    docs.push(`apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: ext-${i}, namespace: apps}\nspec:\n  hosts: [ext-${i}.partner.example]\n  ports: [{number: 443, name: tls, protocol: TLS}]\n  resolution: DNS`);
    docs.push(`apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: app-${i}, namespace: apps}\nspec:\n  hosts: [app-${i}.example.org]\n  gateways: [default/public]\n  http:\n  - route:\n    - destination: {host: shop.default.svc.cluster.local}`);
  }
  docs.push('apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: broken, namespace: apps}\nspec:\n  hosts: [broken.example.org]\n  gateways: [default/public]\n  http:\n  - timeout: soon\n    route:\n    - destination: {host: shop.default.svc.cluster.local}');
  return docs.join('\n---\n') + '\n';
}

test('kubectl apply/get/delete against the stand-in API server; one invalid VirtualService among 50 valid objects is left out and reported, the rest reaches two gateways', { timeout: 60_000 }, async (t) => {
  if (!requireTools(t, 'kubectl')) return;
  const api = new FakeApiServer({ kinds: [...STANDARD_KINDS, ...INSTALL_KINDS] });
  await api.start();
  const dir = mkdtempSync(join(tmpdir(), 'tg-kubectl-'));
  const kubeconfig = api.writeKubeconfig(dir);
  t.after(async () => {
    await api.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  // No OpenAPI document on the stand-in: kubectl is told not to validate client-side.
  const kubectl = (...args: string[]) => run('kubectl', ['--kubeconfig', kubeconfig, ...args], { timeoutMs: 30_000 });
  api.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'default' } });
  writeFileSync(join(dir, 'apps.yaml'), generated());
  // The control-plane profile's own objects first, as an install would (Namespace, RBAC, Deployment, Service, webhook...).
  const profile = await kubectl('apply', '--validate=false', '-f', join(ROOT, 'deploy', 'control-plane.yaml'));
  assert.equal(profile.status, 0, profile.stderr);
  assert.match(profile.stdout, /^clusterrole\.rbac\.authorization\.k8s\.io\/tollgate-control-plane created$/m);
  assert.match(profile.stdout, /^validatingwebhookconfiguration\.admissionregistration\.k8s\.io\/tollgate-control-plane created$/m);
  const applied = await kubectl('apply', '--validate=false', '-f', fixture('ingress-gateway.yaml'), '-f', fixture('egress-gateway.yaml'), '-f', join(dir, 'apps.yaml'));
  assert.equal(applied.status, 0, applied.stderr);
  assert.equal((applied.stdout.match(/ created$/gm) ?? []).length, 6 + 7 + 2 + 2 * APPS + 1, applied.stdout);
  const listed = await kubectl('get', 'virtualservices.networking.istio.io', '--all-namespaces', '-o', 'name');
  assert.equal(listed.status, 0, listed.stderr);
  assert.equal(listed.stdout.trim().split('\n').length, 1 + 2 + APPS + 1, listed.stdout);
  const one = await kubectl('get', 'virtualservice.networking.istio.io', 'broken', '-n', 'apps', '-o', 'jsonpath={.spec.http[0].timeout}');
  assert.equal(one.stdout, 'soon', one.stderr);

  const logs: string[] = [];
  // As the profile runs it: Secrets read only in the control plane's namespace.
  const source = new KubernetesConfigSource({ kubeConfig: loadKubeConfig(kubeconfig).kubeConfig, secretNamespaces: ['tollgate-system'], debounceMs: 20, maxDebounceMs: 200, minWatchIntervalMs: 0, pageSize: 10, log: (l) => logs.push(l) });
  const auth = await makeControlPlaneAuth(['default', 'egress']);
  const cp = new ControlPlane({ source, pingIntervalMs: 500, log: (l) => logs.push(l), ...auth.server });
  const { port } = await cp.listen('127.0.0.1', 0);
  const ingress = new LastSnapshot();
  const egress = new LastSnapshot();
  const clients = [
    new ControlPlaneClient({ host: '127.0.0.1', port, node: { role: 'gateway', namespace: 'default', name: 'ingress-1', labels: { istio: 'ingressgateway' } }, applier: ingress, ...auth.client('default'), initialBackoffMs: 50, maxBackoffMs: 200 }),
    new ControlPlaneClient({ host: '127.0.0.1', port, node: { role: 'gateway', namespace: 'egress', name: 'egress-1', labels: { app: 'partner-egress', istio: 'egressgateway' } }, applier: egress, ...auth.client('egress'), initialBackoffMs: 50, maxBackoffMs: 200 }),
  ];
  t.after(async () => {
    for (const c of clients) c.stop();
    source.close();
    await cp.close();
    auth.cleanup();
  });
  source.start();
  for (const c of clients) c.start();
  const first = await source.firstConfig();
  assert.equal(first.kind, 'accepted', first.kind === 'rejected' ? first.rejection.summary : '');
  await waitFor(() => cp.proxies().filter((p) => p.state === 'SYNCED').length === 2, 10_000, 'both gateways SYNCED');
  assert.ok(api.requests.some((r) => r.path.endsWith('/serviceentries') && r.query['continue']), 'ServiceEntries were listed in pages');
  const secretPaths = [...new Set(api.requests.filter((r) => r.path.endsWith('/secrets')).map((r) => r.path))];
  assert.deepEqual(secretPaths, ['/api/v1/namespaces/tollgate-system/secrets'], 'Secrets only where the profile\'s Role allows');
  assert.ok(source.config?.model.resources.some((r) => r.kind === 'Deployment' && r.name === 'tollgate-control-plane'), 'the profile\'s own Deployment is part of the config');

  const appHosts = Array.from({ length: APPS }, (_, i) => `app-${i}.example.org`);
  assert.deepEqual(ingress.domains.filter((d) => d !== '*').sort(), ['shop.example.org', ...appHosts].sort());
  assert.ok(!ingress.domains.includes('broken.example.org'));
  assert.deepEqual([...new Set(egress.domains)].sort(), ['api.partner.example', 'files.partner.example']);
  const leftOut = source.config?.leftOut ?? [];
  assert.deepEqual(leftOut.map((o) => `${o.kind}/${o.namespace}/${o.name}`), ['VirtualService/apps/broken']);
  assert.ok(logs.some((l) => l.startsWith('left out VirtualService apps/broken')), logs.join('\n'));

  const out: string[] = [];
  assert.equal(await main(['proxy-status', '--control-plane', `127.0.0.1:${port}`, ...auth.viewArgs], { out: (l) => out.push(l), err: (l) => out.push(l) }), 0);
  const status = out.join('\n');
  assert.match(status, /^ingress-1 +gateway +default +\S+ +SYNCED/m);
  assert.match(status, /^egress-1 +gateway +egress +\S+ +SYNCED/m);
  assert.match(status, /VirtualService apps\/broken \(k8s:virtualservices\.networking\.istio\.io\/apps\/broken\)\n {4}Error \[\w+\] .*spec\.http\[0\]\.timeout/);
  const metrics = (await getJsonTls(port, '/metrics', readFileSync(auth.caFile))).text;
  assert.match(metrics, /^tollgate_config_rejected\{kind="VirtualService",namespace="apps",name="broken"\} 1$/m);

  // kubectl delete: the bad object is gone from the report, a deleted route from the gateway.
  const deleted = await kubectl('delete', '-n', 'apps', 'virtualservice.networking.istio.io/broken', 'virtualservice.networking.istio.io/app-0');
  assert.equal(deleted.status, 0, deleted.stderr);
  await waitFor(() => !ingress.domains.includes('app-0.example.org'), 10_000, 'app-0 removed from the ingress gateway');
  assert.deepEqual(source.config?.leftOut, []);
  assert.ok(ingress.domains.includes('app-1.example.org'));
  const gone = await kubectl('get', '-n', 'apps', 'virtualservice.networking.istio.io', 'app-0');
  assert.notEqual(gone.status, 0);
  assert.match(gone.stderr, /NotFound|not found/);
});
