/**
 * The Kubernetes source against the stand-in API server (test/helpers/fake-apiserver.ts), through
 * the real @kubernetes/client-node informers: initial sync -> snapshot pushed to connected proxies,
 * MODIFIED / DELETED events, rejection of an invalid object, 410 Gone -> relist, bookmarks,
 * connection loss, missing CRDs, and nothing handed out before every kind has been listed.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { spawn } from 'node:child_process';
import { ControlPlane } from '../../src/controlplane/server.js';
import { ControlPlaneClient } from '../../src/controlplane/client.js';
import type { ConfigEvent } from '../../src/controlplane/config-source.js';
import { KubernetesConfigSource, loadKubeConfig, type KubernetesSourceOptions } from '../../src/controlplane/kubernetes/source.js';
import type { Snapshot } from '../../src/snapshot/types.js';
import { FakeApiServer, STANDARD_KINDS, type FakeKind } from '../helpers/fake-apiserver.js';
import { ROOT } from '../helpers/pipeline.js';
import { main } from '../../src/cli/main.js';
import { BootstrapTokens } from '../../src/controlplane/auth.js';
import { getJsonTls, makeControlPlaneAuth } from '../helpers/control-plane-auth.js';

/** In-process control planes here serve plaintext with a token (TLS is tested through the CLI below and in auth.test.ts). */
const TOKEN = 'k8s-test-token-0123456789';
const authenticator = BootstrapTokens.parse(`${TOKEN} edge gw`, 'inline');
const token = (): string => TOKEN;

// ---- objects ----

const ns = (name: string) => ({ apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels: { 'kubernetes.io/metadata.name': name } }, spec: { finalizers: ['kubernetes'] }, status: { phase: 'Active' } });
const gateway = (name: string, app: string, hosts: string[]) => ({
  apiVersion: 'networking.istio.io/v1', kind: 'Gateway', metadata: { name, namespace: 'edge' },
  spec: { selector: { app }, servers: [{ port: { number: 80, name: 'http', protocol: 'HTTP' }, hosts }] },
  status: { validationMessages: [] },
});
const vs = (name: string, gw: string, host: string, path: string, extra: Record<string, unknown> = {}) => ({
  apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name, namespace: 'edge', annotations: { 'kubectl.kubernetes.io/last-applied-configuration': '{"huge":"json"}' } },
  spec: { hosts: [host], gateways: [gw], http: [{ match: [{ uri: { prefix: path } }], route: [{ destination: { host } }], ...extra }] },
});
const se = (host: string, namespace = 'edge') => ({
  apiVersion: 'networking.istio.io/v1', kind: 'ServiceEntry', metadata: { name: host.split('.')[0], namespace },
  spec: { hosts: [host], ports: [{ number: 80, name: 'http', protocol: 'HTTP' }], resolution: 'DNS' },
});
const service = (name: string) => ({
  apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: 'edge' },
  spec: { selector: { app: name }, ports: [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP' }], clusterIP: '10.96.0.10', clusterIPs: ['10.96.0.10'], type: 'ClusterIP', ipFamilies: ['IPv4'], ipFamilyPolicy: 'SingleStack', sessionAffinity: 'None', internalTrafficPolicy: 'Cluster' },
  status: { loadBalancer: {} },
});
const slice = (svc: string, ip: string) => ({
  apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', metadata: { name: `${svc}-abcde`, namespace: 'edge', labels: { 'kubernetes.io/service-name': svc } },
  addressType: 'IPv4', endpoints: [{ addresses: [ip], conditions: { ready: true, serving: true, terminating: false }, nodeName: 'node-1' }], ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
});
const endpoints = (svc: string, ip: string) => ({ apiVersion: 'v1', kind: 'Endpoints', metadata: { name: svc, namespace: 'edge' }, subsets: [{ addresses: [{ ip }], ports: [{ name: 'http', port: 8080, protocol: 'TCP' }] }] });
const pod = (name: string, app: string, ip: string) => ({
  apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: 'edge', labels: { app } },
  spec: { containers: [{ name: 'proxy', image: 'tollgate', resources: {}, terminationMessagePath: '/dev/termination-log' }], restartPolicy: 'Always', dnsPolicy: 'ClusterFirst', nodeName: 'node-1' },
  status: { phase: 'Running', podIP: ip, podIPs: [{ ip }], hostIP: '192.0.2.1', conditions: [{ type: 'Ready', status: 'True', lastTransitionTime: '2024-01-01T00:00:00Z' }] },
});
const deployment = (name: string, app: string) => ({
  apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name, namespace: 'edge' },
  spec: { replicas: 1, selector: { matchLabels: { app } }, template: { metadata: { creationTimestamp: null, labels: { app } }, spec: { containers: [{ name: 'proxy', image: 'tollgate' }] } } },
  status: { replicas: 1, readyReplicas: 1, observedGeneration: 1 },
});
const secret = (name: string) => ({ apiVersion: 'v1', kind: 'Secret', metadata: { name, namespace: 'edge' }, type: 'kubernetes.io/tls', data: { 'tls.crt': 'Y2VydA==', 'tls.key': 'a2V5' } });
const egressIp = (name: string) => ({ apiVersion: 'k8s.ovn.org/v1', kind: 'EgressIP', metadata: { name }, spec: { egressIPs: ['192.0.2.50'], namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'edge' } } } });

function seed(api: FakeApiServer): void {
  api.apply(ns('edge'));
  api.apply(ns('other'));
  api.apply(gateway('gw-a', 'a', ['a.example', 'b.example']));
  api.apply(vs('vs-a', 'gw-a', 'a.example', '/v1'));
  api.apply(se('a.example'));
  api.apply(se('b.example'));
  api.apply(se('c.example', 'other'));
  api.apply(service('backend'));
  api.apply(slice('backend', '10.244.0.7'));
  api.apply(endpoints('backend', '10.244.0.7'));
  api.apply(pod('gw-a-1', 'a', '10.244.0.5'));
  api.apply(deployment('gw-a', 'a'));
  api.apply(secret('gw-a-cert'));
}

// ---- harness ----

class RecordingRuntime {
  applied: Snapshot[] = [];
  apply(s: Snapshot): Promise<void> {
    this.applied.push(s);
    return Promise.resolve();
  }
  get last(): Snapshot | undefined {
    return this.applied[this.applied.length - 1];
  }
  get routes(): string[] {
    return (this.last?.routes ?? []).flatMap((r) => r.virtualHosts.flatMap((v) => v.routes.map((x) => JSON.stringify(x.match.path))));
  }
  get clusters(): string[] {
    return (this.last?.clusters ?? []).map((c) => c.name);
  }
}

async function until(what: string, cond: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function runCli(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(argv, { out: (l) => out.push(l), err: (l) => err.push(l) });
  return { code, stdout: out.join('\n'), stderr: err.join('\n') };
}

interface Harness {
  api: FakeApiServer;
  source: KubernetesConfigSource;
  events: ConfigEvent[];
  logs: string[];
  kubeconfig: string;
}

/** A stand-in API server (seeded unless told otherwise) and a source on it, with fast timings; all cleaned up after the test. */
async function harness(t: TestContext, o: { kinds?: readonly FakeKind[]; goneAs?: 'event' | 'http'; seed?: boolean; before?: (api: FakeApiServer) => void; source?: Partial<KubernetesSourceOptions> } = {}): Promise<Harness> {
  const api = new FakeApiServer({ ...(o.kinds ? { kinds: o.kinds } : {}), ...(o.goneAs ? { goneAs: o.goneAs } : {}) });
  await api.start();
  const dir = mkdtempSync(join(tmpdir(), 'tg-k8s-'));
  const kubeconfig = api.writeKubeconfig(dir);
  if (o.seed !== false) seed(api);
  o.before?.(api);
  const logs: string[] = [];
  const events: ConfigEvent[] = [];
  const source = new KubernetesConfigSource({
    kubeConfig: loadKubeConfig(kubeconfig).kubeConfig,
    debounceMs: 20,
    maxDebounceMs: 200,
    initialBackoffMs: 20,
    maxBackoffMs: 150,
    minWatchIntervalMs: 0,
    absentRecheckMs: 150,
    crdGraceMs: 300,
    log: (l) => logs.push(l),
    ...o.source,
  });
  source.onChange((e) => events.push(e));
  t.after(async () => {
    source.close();
    await api.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  return { api, source, events, logs, kubeconfig };
}

const accepted = (h: Harness) => h.events.filter((e) => e.kind === 'accepted').length;
const kinds = (h: Harness) => (h.source.config?.model.resources ?? []).map((r) => `${r.kind}/${r.namespace}/${r.name}`).sort();

// ---- tests ----

test('initial list -> accepted config -> snapshots pushed; MODIFIED VirtualService and DELETED ServiceEntry are pushed too', { timeout: 8000 }, async (t) => {
  const h = await harness(t);
  h.source.start();
  const first = await h.source.firstConfig();
  assert.equal(first.kind, 'accepted', first.kind === 'rejected' ? first.rejection.summary : '');
  assert.deepEqual(kinds(h), [
    'Deployment/edge/gw-a', 'EndpointSlice/edge/backend-abcde', 'Gateway/edge/gw-a', 'Namespace//edge', 'Namespace//other', 'Pod/edge/gw-a-1',
    'Secret/edge/gw-a-cert', 'Service/edge/backend', 'ServiceEntry/edge/a', 'ServiceEntry/edge/b', 'ServiceEntry/other/c', 'VirtualService/edge/vs-a',
  ], 'every kind listed; Endpoints left out because EndpointSlices are served');
  // Server-managed fields (managedFields, resourceVersion, uid, status of Istio kinds...) cause no warnings.
  assert.deepEqual(h.source.config?.diagnostics.filter((d) => d.severity !== 'info').map((d) => d.message), []);
  const vsRes = h.source.config?.model.resources.find((r) => r.kind === 'VirtualService');
  assert.equal(vsRes?.ref.pos.file, 'k8s:virtualservices.networking.istio.io/edge/vs-a');
  assert.deepEqual(Object.keys(vsRes?.body['metadata'] as object), ['name', 'namespace'], 'last-applied-configuration and server fields dropped');
  assert.ok(h.source.status().every((s) => s.state === 'synced' || (s.resource === 'endpoints' && s.state === 'dormant')), JSON.stringify(h.source.status()));

  const cp = new ControlPlane({ source: h.source, pingIntervalMs: 200, authenticator });
  const { port } = await cp.listen('127.0.0.1', 0);
  const gw = new RecordingRuntime();
  const sc = new RecordingRuntime();
  const gwClient = new ControlPlaneClient({ host: '127.0.0.1', port, node: { role: 'gateway', namespace: 'edge', name: 'gw-a-1', labels: { app: 'a' } }, applier: gw, token, initialBackoffMs: 50, maxBackoffMs: 200 });
  const scClient = new ControlPlaneClient({ host: '127.0.0.1', port, node: { role: 'sidecar', namespace: 'edge', name: 'app-1', labels: { app: 'app' } }, applier: sc, token, initialBackoffMs: 50, maxBackoffMs: 200 });
  t.after(async () => {
    gwClient.stop();
    scClient.stop();
    await cp.close();
  });
  gwClient.start();
  scClient.start();
  await until('both proxies SYNCED', () => cp.proxies().filter((p) => p.state === 'SYNCED').length === 2);
  assert.deepEqual(gw.routes, ['{"prefix":"/v1"}']);
  assert.ok(sc.clusters.includes('outbound|80||b.example'), sc.clusters.join(' '));

  h.api.apply(vs('vs-a', 'gw-a', 'a.example', '/v2'));
  await until('the gateway gets the MODIFIED route', () => gw.routes[0] === '{"prefix":"/v2"}');

  assert.ok(h.api.delete('networking.istio.io/v1', 'ServiceEntry', 'edge', 'b'));
  await until('the sidecar loses the DELETED ServiceEntry', () => !sc.clusters.includes('outbound|80||b.example'));
  assert.ok(sc.clusters.includes('outbound|80||a.example'));
  assert.equal(h.events.filter((e) => e.kind === 'rejected').length, 0);

  // A change that leaves the cleaned objects identical (only resourceVersion/managedFields move) builds nothing.
  const before = accepted(h);
  h.api.apply(se('a.example'));
  await sleep(120);
  assert.equal(accepted(h), before, 'no new config for a no-op update');
});

test('an invalid object is left out and reported (proxy-status, log, metric); the rest is served; fixed, it comes back', { timeout: 8000 }, async (t) => {
  const h = await harness(t);
  h.source.start();
  assert.equal((await h.source.firstConfig()).kind, 'accepted');
  const cpLogs: string[] = [];
  const auth = await makeControlPlaneAuth(['edge']);
  const cp = new ControlPlane({ source: h.source, log: (l) => cpLogs.push(l), ...auth.server });
  const { port } = await cp.listen('127.0.0.1', 0);
  t.after(async () => {
    await cp.close();
    auth.cleanup();
  });
  const good = h.source.config;
  h.api.apply(vs('bad', 'gw-a', 'b.example', '/', { timeout: 'soon' }));
  h.api.apply(se('new.example'));
  await until('the valid change is served without the bad object', () => kinds(h).includes('ServiceEntry/edge/new') && (h.source.config?.leftOut.length ?? 0) > 0);
  assert.equal(h.source.rejection, undefined, 'nothing rejected as a whole');
  assert.ok(!kinds(h).includes('VirtualService/edge/bad'));
  assert.ok(kinds(h).includes('VirtualService/edge/vs-a'));
  const leftOut = h.source.config?.leftOut ?? [];
  assert.deepEqual(leftOut.map((o) => `${o.kind}/${o.namespace}/${o.name} ${o.source}`), ['VirtualService/edge/bad k8s:virtualservices.networking.istio.io/edge/bad']);
  assert.match(leftOut[0]?.errors.join('\n') ?? '', /spec\.http\[0\]\.timeout must be a duration/);
  assert.ok((h.source.config?.generation ?? 0) > (good?.generation ?? 0));
  assert.ok(cpLogs.some((l) => l.startsWith('left out VirtualService edge/bad (k8s:virtualservices.networking.istio.io/edge/bad)') && /timeout must be a duration/.test(l)), cpLogs.join('\n'));
  const metrics = (await getJsonTls(port, '/metrics', readFileSync(auth.caFile))).text;
  assert.match(metrics, /^tollgate_config_rejected\{kind="VirtualService",namespace="edge",name="bad"\} 1$/m);
  const status = await runCli(['proxy-status', '--control-plane', `127.0.0.1:${port}`, ...auth.viewArgs]);
  assert.equal(status.code, 0, status.stderr);
  assert.match(status.stdout, /1 invalid object\(s\) LEFT OUT[^\n]*\n  VirtualService edge\/bad \(k8s:virtualservices\.networking\.istio\.io\/edge\/bad\)\n    Error \[[A-Z_]+\] [^\n]*timeout must be a duration/);

  // Unrelated updates while the bad object is there build normally and report it once.
  h.api.apply(pod('gw-a-1', 'a', '10.244.0.6'));
  await until('pod change served', () => JSON.stringify(h.source.config?.model.resources.find((r) => r.kind === 'Pod')?.body).includes('10.244.0.6'));
  assert.equal(cpLogs.filter((l) => l.startsWith('left out VirtualService edge/bad')).length, 1);
  h.api.apply(vs('bad', 'gw-a', 'b.example', '/', { timeout: '5s' }));
  await until('served once fixed', () => kinds(h).includes('VirtualService/edge/bad'));
  assert.deepEqual(h.source.config?.leftOut, []);
  assert.doesNotMatch((await getJsonTls(port, '/metrics', readFileSync(auth.caFile))).text, /tollgate_config_rejected\{/);
  assert.ok(cpLogs.some((l) => l === 'k8s:virtualservices.networking.istio.io/edge/bad is valid again and served'));
});

test('OpenShift SDN HostSubnet and NetNamespace are watched live: a patched egressIPs list moves the namespace address', { timeout: 8000 }, async (t) => {
  const hostSubnet = (node: string, egressIPs: string[]) => ({ apiVersion: 'network.openshift.io/v1', kind: 'HostSubnet', metadata: { name: node }, host: node, hostIP: '10.10.0.11', subnet: '10.128.2.0/23', egressIPs });
  const h = await harness(t, {
    before: (api) => {
      api.apply(hostSubnet('node1', ['192.0.2.99', '192.0.2.100']));
      api.apply(hostSubnet('node2', []));
      api.apply({ apiVersion: 'network.openshift.io/v1', kind: 'NetNamespace', metadata: { name: 'edge' }, netname: 'edge', netid: 42, egressIPs: ['192.0.2.99'] });
    },
  });
  h.source.start();
  assert.equal((await h.source.firstConfig()).kind, 'accepted');
  const placement = () => JSON.stringify(h.source.config?.model.sourcePools.find((p) => p.label === 'NetNamespace edge')?.placement);
  assert.equal(placement(), '{"192.0.2.99":["node1"]}');
  // oc patch hostsubnet node2 -p '{"egressIPs": ["192.0.2.99"]}'
  h.api.apply(hostSubnet('node2', ['192.0.2.99']));
  await until('node2 may host the address too', () => placement() === '{"192.0.2.99":["node1","node2"]}');
});

test('410 Gone on open watches (ERROR event) -> relist, and updates keep flowing', { timeout: 8000 }, async (t) => {
  const h = await harness(t);
  h.source.start();
  assert.equal((await h.source.firstConfig()).kind, 'accepted');
  await until('watches open', () => h.api.openWatches('virtualservices') === 1);
  assert.equal(h.api.lists('virtualservices').length, 1);
  h.api.expireWatches();
  await until('relisted', () => h.api.lists('virtualservices').length === 2 && h.api.openWatches('virtualservices') === 1);
  assert.equal(h.source.status().find((s) => s.resource === 'virtualservices.networking.istio.io')?.lists, 2);
  h.api.apply(vs('vs-a', 'gw-a', 'a.example', '/after-relist'));
  await until('update after relist', () => JSON.stringify(h.source.config?.model.virtualServices[0]?.spec.http).includes('/after-relist'));
});

test('connection lost, history compacted meanwhile (HTTP 410 on re-watch) -> backoff, relist, objects deleted during the outage are gone', { timeout: 8000 }, async (t) => {
  const h = await harness(t, { goneAs: 'http' });
  h.source.start();
  assert.equal((await h.source.firstConfig()).kind, 'accepted');
  await until('watches open', () => h.api.openWatches() >= 13);
  h.api.setDown(true);
  await until('the informers fail to reconnect and back off', () => h.logs.some((l) => /^serviceentries\.networking\.istio\.io: .*; retrying in \d+ ms \(attempt 1\)$/.test(l)));
  h.api.delete('networking.istio.io/v1', 'ServiceEntry', 'edge', 'b');
  h.api.apply(vs('vs-a', 'gw-a', 'a.example', '/during-outage'));
  h.api.compact();
  h.api.setDown(false);
  await until('the deleted ServiceEntry is gone after the relist', () => !kinds(h).includes('ServiceEntry/edge/b'));
  assert.ok(h.api.requests.some((r) => r.watch && r.status === 410), 'a re-watch was refused with 410');
  assert.ok(h.api.lists('serviceentries').length >= 2, 'relisted');
  await until('the change made during the outage is there', () => JSON.stringify(h.source.config?.model.virtualServices[0]?.spec.http).includes('/during-outage'));
  h.api.apply(se('d.example'));
  await until('updates flow after reconnecting', () => kinds(h).includes('ServiceEntry/edge/d'));
});

test('BOOKMARK events keep the resourceVersion fresh: a re-watch after compaction resumes without a relist', { timeout: 8000 }, async (t) => {
  const h = await harness(t);
  h.source.start();
  assert.equal((await h.source.firstConfig()).kind, 'accepted');
  await until('watches open', () => h.api.openWatches('virtualservices') === 1);
  assert.ok(h.api.requests.some((r) => r.watch && r.query['allowWatchBookmarks'] === 'true' && Number(r.query['timeoutSeconds']) >= 300), 'watches ask for bookmarks and a server-side timeout');
  for (let i = 0; i < 5; i++) h.api.apply(pod(`churn-${i}`, 'churn', `10.244.1.${i}`)); // moves the server's resourceVersion past the VirtualService watch's
  await sleep(50);
  h.api.bookmark();
  const bookmarkRv = String(h.api.resourceVersion);
  await until('the informer took the bookmark', () => h.source.status().find((s) => s.resource === 'virtualservices.networking.istio.io')?.resourceVersion === bookmarkRv);
  h.api.compact();
  h.api.dropWatches();
  await until('re-watched from the bookmark', () => h.api.requests.some((r) => r.watch && r.path.endsWith('/virtualservices') && r.resourceVersion === bookmarkRv && r.status === 200));
  assert.equal(h.api.lists('virtualservices').length, 1, 'no relist');
  h.api.apply(vs('vs-a', 'gw-a', 'a.example', '/after-bookmark'));
  await until('update after the re-watch', () => JSON.stringify(h.source.config?.model.virtualServices[0]?.spec.http).includes('/after-bookmark'));
});

test('missing CRDs do not block the rest: older versions are used, Endpoints stand in for EndpointSlices, a CRD installed later is picked up', { timeout: 8000 }, async (t) => {
  const installed = STANDARD_KINDS.filter((k) => k.plural !== 'egressips' && k.plural !== 'endpointslices' && k.group !== 'gateway.networking.k8s.io' && k.group !== 'security.istio.io')
    .map((k) => (k.kind === 'VirtualService' ? { ...k, version: 'v1beta1' } : k));
  const h = await harness(t, {
    kinds: installed,
    seed: false,
    before: (api) => {
      api.apply(ns('edge'));
      api.apply(gateway('gw-a', 'a', ['a.example']));
      api.apply({ ...vs('vs-a', 'gw-a', 'a.example', '/beta'), apiVersion: 'networking.istio.io/v1beta1' });
      api.apply(se('a.example'));
      api.apply(service('backend'));
      api.apply(endpoints('backend', '10.244.0.7'));
    },
  });
  h.source.start();
  const first = await h.source.firstConfig();
  assert.equal(first.kind, 'accepted');
  assert.deepEqual(kinds(h), ['Endpoints/edge/backend', 'Gateway/edge/gw-a', 'Namespace//edge', 'Service/edge/backend', 'ServiceEntry/edge/a', 'VirtualService/edge/vs-a']);
  assert.equal(h.source.config?.model.resources.find((r) => r.kind === 'VirtualService')?.apiVersion, 'networking.istio.io/v1beta1');
  assert.ok(h.logs.some((l) => /virtualservices\.networking\.istio\.io: networking\.istio\.io\/v1 is not served; using networking\.istio\.io\/v1beta1/.test(l)), h.logs.join('\n'));
  for (const r of ['egressips.k8s.ovn.org', 'endpointslices.discovery.k8s.io', 'gateways.gateway.networking.k8s.io', 'httproutes.gateway.networking.k8s.io', 'peerauthentications.security.istio.io']) {
    assert.equal(h.logs.filter((l) => l.startsWith(`${r} (`) && /not found \(404\)/.test(l)).length, 1, `${r} logged once:\n${h.logs.join('\n')}`);
  }
  await sleep(400); // a few rechecks: still not served, not logged again
  assert.equal(h.logs.filter((l) => l.startsWith('egressips.k8s.ovn.org (')).length, 1);

  // The EgressIP CRD gets installed: the next recheck finds it.
  h.api.install({ kind: 'EgressIP', group: 'k8s.ovn.org', version: 'v1', plural: 'egressips', namespaced: false });
  h.api.apply(egressIp('edge-egress'));
  await until('EgressIP picked up', () => (h.source.config?.model.egressIps.length ?? 0) === 1);
  assert.ok(h.logs.some((l) => l.startsWith('egressips.k8s.ovn.org is now served')));

  // EndpointSlices appear: Endpoints are no longer watched (the model would count them twice).
  h.api.install({ kind: 'EndpointSlice', group: 'discovery.k8s.io', version: 'v1', plural: 'endpointslices', namespaced: true });
  h.api.apply(slice('backend', '10.244.0.7'));
  await until('EndpointSlice replaces Endpoints', () => kinds(h).includes('EndpointSlice/edge/backend-abcde') && !kinds(h).includes('Endpoints/edge/backend'));

  // A CRD removed while watched and not back within the grace period: its objects are dropped, the rest carries on.
  h.api.uninstall('serviceentries', 'networking.istio.io');
  await until('the kind is not served', () => h.source.status().find((s) => s.resource === 'serviceentries.networking.istio.io')?.state === 'absent');
  assert.ok(kinds(h).includes('ServiceEntry/edge/a'), 'kept during the grace period');
  await until('ServiceEntries dropped after the grace period', () => !kinds(h).includes('ServiceEntry/edge/a'));
  assert.ok(kinds(h).includes('VirtualService/edge/vs-a'));
  assert.ok(h.logs.some((l) => /^serviceentries\.networking\.istio\.io: still not served after \d+ s; its 1 objects are dropped$/.test(l)), h.logs.join('\n'));
});

test('a CRD that goes away for a moment keeps its objects; its return is noticed by the CRD watch, not by polling', { timeout: 8000 }, async (t) => {
  const h = await harness(t, { source: { crdGraceMs: 60_000, absentRecheckMs: 60_000 } });
  h.source.start();
  assert.equal((await h.source.firstConfig()).kind, 'accepted');
  await until('CRDs watched', () => h.api.openWatches('customresourcedefinitions') === 1);
  const vsKind = STANDARD_KINDS.find((k) => k.kind === 'VirtualService');
  assert.ok(vsKind);
  const emptied: string[] = [];
  h.source.onChange((e) => {
    if (e.kind === 'accepted' && !e.config.model.resources.some((r) => r.kind === 'VirtualService')) emptied.push(`generation ${e.config.generation}`);
  });
  h.api.uninstall('virtualservices', 'networking.istio.io');
  await until('the kind is not served', () => h.source.status().find((s) => s.resource === 'virtualservices.networking.istio.io')?.state === 'absent');
  assert.ok(h.logs.some((l) => /^virtualservices\.networking\.istio\.io \(.*\): not found \(404\).*its 1 objects stay in the config for up to 60 s/.test(l)), h.logs.join('\n'));
  h.api.apply(se('meanwhile.example'));
  await until('other changes are still served', () => kinds(h).includes('ServiceEntry/edge/meanwhile'));
  assert.ok(kinds(h).includes('VirtualService/edge/vs-a'), 'the VirtualService is kept while its CRD is away');
  // The CRD comes back (re-install): the CRD watch sees it at once (polling is 60 s away).
  h.api.install(vsKind);
  h.api.apply(vs('vs-a', 'gw-a', 'a.example', '/back'));
  await until('picked up again', () => JSON.stringify(h.source.config?.model.virtualServices[0]?.spec.http).includes('/back'), 3000);
  assert.deepEqual(emptied, [], 'no config without the VirtualService was ever accepted');
  assert.equal(h.source.status().find((s) => s.resource === 'virtualservices.networking.istio.io')?.retainedUntil, undefined);
});

test('LISTs are paginated (limit/continue) and the watch starts from the first page\'s resourceVersion', { timeout: 8000 }, async (t) => {
  const h = await harness(t, { source: { pageSize: 3 } });
  for (let i = 0; i < 10; i++) h.api.apply(se(`page${i}.example`));
  h.source.start();
  assert.equal((await h.source.firstConfig()).kind, 'accepted');
  assert.equal(kinds(h).filter((k) => k.startsWith('ServiceEntry/')).length, 13);
  const listRequests = h.api.requests.filter((r) => !r.watch && r.path.endsWith('/serviceentries'));
  assert.deepEqual(listRequests.map((r) => `${r.query['limit']} ${r.query['continue'] ? 'continue' : 'first'} ${r.status}`), ['3 first 200', '3 continue 200', '3 continue 200', '3 continue 200', '3 continue 200']);
  const firstRv = listRequests[0]?.resourceVersion;
  assert.equal(firstRv, undefined);
  await until('watch open', () => h.api.openWatches('serviceentries') === 1);
  const watch = h.api.requests.find((r) => r.watch && r.path.endsWith('/serviceentries'));
  assert.ok(watch?.resourceVersion && Number(watch.resourceVersion) > 1000, JSON.stringify(watch));
});

test('no config before the initial list of every kind has completed; a failing LIST is retried with backoff', { timeout: 8000 }, async (t) => {
  const h = await harness(t, { before: (api) => { api.holdLists('services'); api.failLists('pods', 500); } });
  const cp = new ControlPlane({ source: h.source, pingIntervalMs: 200, authenticator });
  const { port } = await cp.listen('127.0.0.1', 0);
  const gw = new RecordingRuntime();
  const client = new ControlPlaneClient({ host: '127.0.0.1', port, node: { role: 'gateway', namespace: 'edge', name: 'gw-a-1', labels: { app: 'a' } }, applier: gw, token, initialBackoffMs: 50, maxBackoffMs: 200 });
  t.after(async () => {
    client.stop();
    await cp.close();
  });
  client.start();
  h.source.start();
  await until('every other kind listed', () => h.api.lists('virtualservices').length === 1 && h.api.lists('namespaces').length === 1 && h.api.requests.filter((r) => r.path.endsWith('/pods') && r.status === 500).length >= 3);
  await sleep(150);
  assert.equal(h.source.config, undefined);
  assert.equal(h.events.length, 0);
  assert.equal(h.source.synced, false);
  assert.equal(gw.applied.length, 0, 'the proxy got nothing');
  const ready = await fetch(`http://127.0.0.1:${port}/ready`);
  assert.equal(ready.status, 503);
  assert.ok(h.logs.some((l) => /^pods: HTTP 500: injected failure listing pods; retrying in \d+ ms \(attempt 1\)$/.test(l)), h.logs.join('\n'));

  h.api.failLists('pods', undefined);
  await sleep(200);
  assert.equal(h.source.config, undefined, 'services are still being listed');
  h.api.releaseLists('services');
  await until('proxy gets its first snapshot', () => gw.applied.length === 1);
  assert.equal(h.events.length, 1);
  assert.ok(kinds(h).includes('Service/edge/backend') && kinds(h).includes('Pod/edge/gw-a-1'));
  assert.deepEqual(gw.routes, ['{"prefix":"/v1"}']);
});

test('--namespace: only that namespace is listed and watched', { timeout: 8000 }, async (t) => {
  const h = await harness(t, { source: { namespace: 'edge' } });
  h.source.start();
  assert.equal((await h.source.firstConfig()).kind, 'accepted');
  assert.ok(!kinds(h).includes('ServiceEntry/other/c'));
  assert.ok(kinds(h).includes('ServiceEntry/edge/a'));
  assert.deepEqual(kinds(h).filter((k) => k.startsWith('Namespace/')), ['Namespace//edge']);
  const paths = new Set(h.api.requests.map((r) => r.path));
  assert.ok(paths.has('/apis/networking.istio.io/v1/namespaces/edge/serviceentries'));
  assert.ok(paths.has('/api/v1/namespaces/edge/pods'));
  assert.ok(h.api.requests.some((r) => r.path === '/api/v1/namespaces' && r.query['fieldSelector'] === 'metadata.name=edge'));
  assert.ok(paths.has('/apis/k8s.ovn.org/v1/egressips'), 'cluster-scoped kinds are listed cluster-wide');
});

test('tollgate control-plane --kubernetes: serves not-ready until synced, then the config; SIGTERM stops it', { timeout: 90_000 }, async (t) => {
  const h = await harness(t, { before: (api) => api.holdLists('gateways') });
  const auth = await makeControlPlaneAuth(['edge']);
  h.api.tokens.set('sa-token-of-edge-gw', 'system:serviceaccount:edge:gw');
  const child = spawn(process.execPath, [join(ROOT, 'dist/src/cli/bin.js'), 'control-plane', '--kubernetes', '--kubeconfig', h.kubeconfig, '--listen', '127.0.0.1:0', '--tls-cert', auth.certFile, '--tls-key', auth.keyFile], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  t.after(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
    auth.cleanup();
  });
  await until('listening', () => /serving on 127\.0\.0\.1:\d+/.test(stderr), 40_000);
  const port = Number(/serving on 127\.0\.0\.1:(\d+)/.exec(stderr)?.[1]);
  const ca = readFileSync(auth.caFile);
  assert.equal((await getJsonTls(port, '/ready', ca)).status, 503);
  h.api.releaseLists('gateways');
  await until('accepted', () => /generation 1 accepted/.test(stderr), 20_000);
  // Views need a token the API server vouches for (TokenReview); an unknown one is refused.
  assert.equal((await getJsonTls(port, '/v1/config', ca, 'not-a-known-token')).status, 401);
  const view = (await getJsonTls(port, '/v1/config', ca, 'sa-token-of-edge-gw')).body as { generation?: number; objects?: number };
  assert.equal(view.generation, 1);
  assert.equal(view.objects, 12);
  assert.ok(h.api.requests.some((r) => r.method === 'POST' && r.path === '/apis/authentication.k8s.io/v1/tokenreviews'), 'a TokenReview was posted');
  assert.equal((await getJsonTls(port, '/ready', ca)).status, 200);
  child.kill('SIGTERM');
  assert.equal(await exited, 0, stderr);
});
