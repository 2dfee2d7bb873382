/**
 * `tollgate manifest generate`: every generated object validates against the Kubernetes OpenAPI
 * schemas (the kubernetes-models package) and passes `tollgate analyze`; deploy/ is the defaults'
 * output byte for byte and `kubectl kustomize deploy/` renders it; the settings that change the
 * layout (fixed source address, low ports, Secrets namespaces) do what they say.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { parseAllDocuments } from 'yaml';
import { main } from '../../src/cli/main.js';
import { WATCHED_KINDS } from '../../src/controlplane/kubernetes/kinds.js';
import { findProfile, generateObjects, PROFILES, type Profile } from '../../src/manifest/generate.js';
import type { K8sObject } from '../../src/manifest/common.js';
import { fixture, ROOT } from '../helpers/pipeline.js';
import { requireTools, run } from '../helpers/tools.js';

type Obj = K8sObject & { apiVersion: string; kind: string; metadata: { name: string; namespace?: string; labels?: Record<string, string> }; spec?: any; rules?: any };

async function cli(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(argv, { out: (l) => out.push(l), err: (l) => err.push(l) });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

/** Validates with the kubernetes-models class for the object's apiVersion and kind (its JSON schema). */
async function validateK8s(o: Obj): Promise<void> {
  const [group, version] = o.apiVersion.includes('/') ? (o.apiVersion.split('/') as [string, string]) : ['', o.apiVersion];
  const mod = (await import(`kubernetes-models/${group ? `${group}/` : ''}${version}`)) as Record<string, new (data: unknown) => { validate(): void }>;
  const Model = mod[o.kind];
  assert.ok(Model, `kubernetes-models has no ${o.apiVersion} ${o.kind}`);
  try {
    new Model(o).validate();
  } catch (err) {
    assert.fail(`${o.kind} ${o.metadata.name}: ${err instanceof Error ? err.message : String(err)}`);
  }
}

const profile = (name: string): Profile => {
  const p = findProfile(name);
  assert.ok(p, name);
  return p;
};
const gen = (name: string, sets: string[] = [], ns = 'tollgate-system') => generateObjects(profile(name), ns, sets) as Obj[];
const byKind = (objs: Obj[], kind: string) => objs.filter((o) => o.kind === kind);

test('every profile, defaults and variants: each object validates against the Kubernetes schemas', async () => {
  const variants: [string, string[]][] = [
    ...PROFILES.map((p): [string, string[]] => [p.name, []]),
    ['egress-gateway', ['sourceAddress=192.0.2.10', 'node=worker-1', 'ports=80:80,443:443', 'egressNamespaces=shop,billing']],
    ['egress-gateway', ['sourceAddressPool=true']],
    ['ingress-gateway', ['serviceType=NodePort', 'externalTrafficPolicy=Cluster']],
    ['control-plane', ['secretNamespaces=edge,istio-system', 'replicas=3']],
    ['egress-router', ['node=infra-1', 'destination=8080 tcp 203.0.113.26 80;203.0.113.27']],
  ];
  let count = 0;
  for (const [name, sets] of variants) {
    for (const o of gen(name, sets)) {
      await validateK8s(o);
      count++;
    }
  }
  assert.ok(count > 50, `validated ${count} objects`);
  // The check has teeth: a wrong type is refused.
  await assert.rejects(validateK8s({ apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'x' }, spec: { replicas: 'two', selector: {}, template: {} } }), /replicas/);
});

test('deploy/ is the defaults\' output, kustomization.yaml lists the applyable profiles, and tollgate analyze passes it', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tg-manifest-'));
  try {
    const r = await cli(['manifest', 'generate', ...PROFILES.flatMap((p) => ['--profile', p.name]), '-o', dir]);
    assert.equal(r.code, 0, r.err);
    const deploy = join(ROOT, 'deploy');
    for (const p of PROFILES) {
      assert.equal(readFileSync(join(deploy, `${p.name}.yaml`), 'utf8'), readFileSync(join(dir, `${p.name}.yaml`), 'utf8'), `deploy/${p.name}.yaml is stale: run scripts/generate-deploy.sh`);
    }
    assert.deepEqual(readdirSync(deploy).filter((f) => f.endsWith('.yaml')).sort(), [...PROFILES.map((p) => `${p.name}.yaml`), 'kustomization.yaml'].sort(), 'one file per profile, and the kustomization');
    const kustomization = parseAllDocuments(readFileSync(join(deploy, 'kustomization.yaml'), 'utf8'))[0]?.toJS() as { resources: string[] };
    assert.deepEqual(kustomization.resources, ['control-plane.yaml', 'egress-gateway.yaml', 'ingress-gateway.yaml']);
    const analyzed = await cli(['analyze', ...[...PROFILES.map((p) => `${p.name}.yaml`), 'kustomization.yaml'].flatMap((f) => ['-f', join(deploy, f)])]);
    assert.equal(analyzed.code, 0, analyzed.out + analyzed.err);
    assert.match(analyzed.out, /0 error\(s\), 0 warning\(s\)$/m, analyzed.out);
    // The router Deployment is read as an egress router (its EGRESS_* env), not ignored.
    const routerLabels = byKind(gen('egress-router'), 'Deployment')[0]?.spec.template.metadata.labels as Record<string, string>;
    const routerOnly = await cli(['config-dump', '-f', join(deploy, 'egress-router.yaml'), '--role', 'router', '-n', 'tollgate-system', '-l', Object.entries(routerLabels).map(([k, v]) => `${k}=${v}`).join(','), '-o', 'json']);
    assert.equal(routerOnly.code, 0, routerOnly.err);
    assert.match(routerOnly.out, /203\.0\.113\.25/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('kubectl kustomize deploy/ renders every object of the listed profiles', async (t) => {
  if (!requireTools(t, 'kubectl')) return;
  const r = await run('kubectl', ['kustomize', join(ROOT, 'deploy')], { timeoutMs: 30_000 });
  assert.equal(r.status, 0, r.stderr);
  const rendered = parseAllDocuments(r.stdout).map((d) => d.toJS() as Obj);
  const expected = [...gen('control-plane'), ...gen('egress-gateway'), ...gen('ingress-gateway')];
  assert.deepEqual(rendered.map((o) => `${o.kind}/${o.metadata.name}`).sort(), expected.map((o) => `${o.kind}/${o.metadata.name}`).sort());
  const args = rendered.find((o) => o.kind === 'Deployment' && o.metadata.name === 'tollgate-egressgateway')?.spec.template.spec.containers[0].args as unknown[];
  assert.ok(args.includes('on'), `"on" survives kubectl's YAML parser as a string: ${JSON.stringify(args)}`);
});

test('control-plane RBAC: read-only, exactly the kinds the Kubernetes source watches, Secrets only in the gateways\' namespaces and the CA\'s own; the root ConfigMaps it publishes', () => {
  const objs = gen('control-plane', ['secretNamespaces=edge,istio-system']);
  const [role] = byKind(objs, 'ClusterRole');
  const allRules = role?.rules as { apiGroups: string[]; resources: string[]; verbs: string[] }[];
  // One write: TokenReview create, to check the service-account tokens proxies authenticate with.
  const reviews = allRules.filter((r) => r.resources.includes('tokenreviews'));
  assert.deepEqual(reviews, [{ apiGroups: ['authentication.k8s.io'], resources: ['tokenreviews'], verbs: ['create'] }]);
  // The other write: the istio-ca-root-cert ConfigMap it publishes in every namespace.
  const configMaps = allRules.filter((r) => r.resources.includes('configmaps'));
  assert.deepEqual(configMaps, [{ apiGroups: [''], resources: ['configmaps'], verbs: ['get', 'list', 'watch', 'create', 'update'] }]);
  const rules = allRules.filter((r) => !r.resources.includes('tokenreviews') && !r.resources.includes('configmaps'));
  assert.ok(rules.every((r) => JSON.stringify(r.verbs) === '["get","list","watch"]'), JSON.stringify(rules));
  const granted = rules.flatMap((r) => r.resources.map((res) => `${res}.${r.apiGroups[0]}`)).sort();
  const watched = WATCHED_KINDS.filter((k) => k.plural !== 'secrets').map((k) => `${k.plural}.${k.group}`);
  assert.deepEqual(granted, [...new Set(watched)].sort());
  assert.ok(!granted.some((g) => g.startsWith('secrets.')), 'no cluster-wide Secrets');
  const roles = byKind(objs, 'Role');
  assert.deepEqual(roles.map((r) => `${r.metadata.namespace} ${JSON.stringify(r.rules)}`), [
    'tollgate-system [{"apiGroups":["coordination.k8s.io"],"resources":["leases"],"verbs":["get","list","create","update"]}]',
    // The CA: its two Secrets by name (watched by name), and create for the self-signed one on first start.
    'tollgate-system [{"apiGroups":[""],"resources":["secrets"],"resourceNames":["cacerts","istio-ca-secret"],"verbs":["get","list","watch"]},{"apiGroups":[""],"resources":["secrets"],"verbs":["create"]}]',
    'edge [{"apiGroups":[""],"resources":["secrets"],"verbs":["get","list","watch"]}]',
    'istio-system [{"apiGroups":[""],"resources":["secrets"],"verbs":["get","list","watch"]}]',
  ]);
  const dep = byKind(objs, 'Deployment')[0];
  const c = dep?.spec.template.spec.containers[0];
  assert.deepEqual(c.args, ['control-plane', '--kubernetes', '--listen', '0.0.0.0:15010', '--tls-san', 'tollgate-control-plane.tollgate-system.svc', '--secrets-namespace', 'edge', '--secrets-namespace', 'istio-system',
    '--webhook-listen', '0.0.0.0:15017', '--webhook-tls-cert', '/etc/tollgate/webhook/tls.crt', '--webhook-tls-key', '/etc/tollgate/webhook/tls.key',
    '--inject-image', 'tollgate:0.1.0', '--inject-control-plane', 'tollgate-control-plane.tollgate-system.svc:15010']);
  const [vwc] = byKind(objs, 'ValidatingWebhookConfiguration');
  assert.deepEqual((vwc?.['webhooks'] as any[]).map((w) => `${w.name} ${w.rules[0].apiGroups.join(',')} ${w.failurePolicy} ${w.clientConfig.service.name}:${w.clientConfig.service.port}${w.clientConfig.service.path}`), [
    'istio.validation.tollgate.io networking.istio.io,security.istio.io Ignore tollgate-control-plane:443/validate',
    'egressip.validation.tollgate.io k8s.ovn.org Ignore tollgate-control-plane:443/validate',
    'egress-router.validation.tollgate.io apps Ignore tollgate-control-plane:443/validate',
  ]);
  assert.equal(byKind(gen('control-plane', ['webhook=false']), 'ValidatingWebhookConfiguration').length, 0);
  assert.equal(dep?.spec.replicas, 2);
  assert.ok(dep?.spec.template.spec.affinity.podAntiAffinity, 'replicas spread over nodes');
  assert.equal(byKind(objs, 'PodDisruptionBudget').length, 1);
  assert.deepEqual(c.securityContext.capabilities, { drop: ['ALL'] });
  assert.equal(c.securityContext.readOnlyRootFilesystem, true);
  assert.equal(c.securityContext.runAsUser, 1337);
  // Its serving certificate comes from its own CA: no certificate Secret is mounted.
  assert.deepEqual((dep?.spec.template.spec.volumes as { name: string }[]).map((v) => v.name), ['tmp', 'webhook-tls']);
});

test('proxies trust the control plane through the istio-ca-root-cert ConfigMap, mounted where Istio mounts it', () => {
  for (const profile of ['egress-gateway', 'ingress-gateway', 'egress-router']) {
    const spec = byKind(gen(profile), 'Deployment')[0]?.spec.template.spec;
    const c = spec.containers[0];
    const args = c.args as string[];
    assert.equal(args[args.indexOf('--control-plane-ca') + 1], '/var/run/secrets/istio/root-cert.pem', profile);
    assert.deepEqual(c.volumeMounts.find((m: { name: string }) => m.name === 'istiod-ca-cert'), { name: 'istiod-ca-cert', mountPath: '/var/run/secrets/istio', readOnly: true }, profile);
    assert.deepEqual(spec.volumes.find((v: { name: string }) => v.name === 'istiod-ca-cert'), { name: 'istiod-ca-cert', configMap: { name: 'istio-ca-root-cert', items: [{ key: 'root-cert.pem', path: 'root-cert.pem' }] } }, profile);
  }
});

test('gateways: probes on 15021 /healthz/ready, ClusterIP egress, LoadBalancer ingress with externalTrafficPolicy Local, HPA and PDB only without a fixed source address', () => {
  const egress = gen('egress-gateway');
  const svc = byKind(egress, 'Service')[0];
  assert.equal(svc?.spec.type, 'ClusterIP');
  assert.equal(svc?.spec.externalTrafficPolicy, undefined);
  const c = byKind(egress, 'Deployment')[0]?.spec.template.spec.containers[0];
  assert.deepEqual(c.readinessProbe.httpGet, { path: '/healthz/ready', port: 15021 });
  assert.deepEqual(c.securityContext.capabilities, { drop: ['ALL'] }, 'ports 8080/8443: no capability');
  assert.equal(byKind(egress, 'HorizontalPodAutoscaler').length, 1);
  assert.equal(byKind(egress, 'PodDisruptionBudget').length, 1);
  assert.equal(byKind(egress, 'NetworkPolicy').length, 0, 'no namespaces chosen, no policies');

  const ingress = gen('ingress-gateway');
  assert.equal(byKind(ingress, 'Service')[0]?.spec.type, 'LoadBalancer');
  assert.equal(byKind(ingress, 'Service')[0]?.spec.externalTrafficPolicy, 'Local');

  const pinned = gen('egress-gateway', ['sourceAddress=192.0.2.10', 'node=worker-1', 'ports=80:80,443:443']);
  const dep = byKind(pinned, 'Deployment')[0];
  assert.equal(dep?.spec.replicas, 1);
  assert.deepEqual(dep?.spec.template.spec.nodeSelector, { 'kubernetes.io/hostname': 'worker-1' });
  assert.equal(dep?.spec.strategy.type, 'Recreate');
  assert.ok((dep?.spec.template.spec.containers[0].args as string[]).join(' ').includes('--source-address 192.0.2.10'));
  assert.deepEqual(dep?.spec.template.spec.containers[0].securityContext.capabilities, { drop: ['ALL'], add: ['NET_BIND_SERVICE'] });
  assert.deepEqual(dep?.spec.template.spec.securityContext.sysctls, [{ name: 'net.ipv4.ip_unprivileged_port_start', value: '0' }]);
  assert.equal(byKind(pinned, 'HorizontalPodAutoscaler').length, 0);
  assert.equal(byKind(pinned, 'PodDisruptionBudget').length, 0);
  assert.throws(() => gen('egress-gateway', ['sourceAddress=192.0.2.10']), /needs --set node=/);
  const pool = gen('egress-gateway', ['sourceAddressPool=true']);
  assert.equal(byKind(pool, 'HorizontalPodAutoscaler').length, 0, 'pool shares are per node: no autoscaler');
  assert.equal(byKind(pool, 'PodDisruptionBudget').length, 1);
});

test('egress NetworkPolicy set: listed namespaces reach DNS and pods only; the gateway accepts proxy ports only from them', () => {
  const policies = byKind(gen('egress-gateway', ['egressNamespaces=shop,billing']), 'NetworkPolicy');
  assert.deepEqual(policies.map((p) => `${p.metadata.namespace}/${p.metadata.name}`), ['shop/tollgate-egressgateway-only-way-out', 'billing/tollgate-egressgateway-only-way-out', 'tollgate-system/tollgate-egressgateway-clients']);
  const out = policies[0]?.spec;
  assert.deepEqual(out.policyTypes, ['Egress']);
  assert.ok(!JSON.stringify(out).includes('ipBlock'), 'no address outside the cluster is allowed');
  const clients = policies[2]?.spec;
  assert.deepEqual(clients.ingress[0].from.map((f: any) => f.namespaceSelector.matchLabels['kubernetes.io/metadata.name']), ['shop', 'billing']);
  assert.deepEqual(clients.ingress[0].ports.map((p: any) => p.port), [8080, 8443]);
});

test('egress router: OpenShift EGRESS_* env on the egress-router container, NET_ADMIN and NET_RAW and nothing else, no privilege', () => {
  const dep = byKind(gen('egress-router', ['node=infra-1']), 'Deployment')[0];
  const spec = dep?.spec.template.spec;
  assert.equal(spec.initContainers, undefined, 'the router keeps its kernel rules itself');
  const c = spec.containers[0];
  assert.equal(c.name, 'egress-router');
  assert.deepEqual(c.env.map((e: any) => e.name).filter((n: string) => n.startsWith('EGRESS_')), ['EGRESS_SOURCE', 'EGRESS_GATEWAY', 'EGRESS_DESTINATION', 'EGRESS_ROUTER_MODE']);
  assert.equal(c.env.find((e: any) => e.name === 'EGRESS_DESTINATION').value, '80 tcp 203.0.113.25\n443 tcp 203.0.113.25\n');
  assert.deepEqual(c.securityContext.capabilities, { drop: ['ALL'], add: ['NET_ADMIN', 'NET_RAW'] });
  assert.equal(c.securityContext.privileged, undefined);
  assert.equal(c.securityContext.allowPrivilegeEscalation, false);
  assert.equal(c.securityContext.readOnlyRootFilesystem, true);
  assert.deepEqual(spec.securityContext.sysctls, [{ name: 'net.ipv4.ip_forward', value: '1' }]);
  assert.equal(dep?.spec.template.metadata.annotations['pod.network.openshift.io/assign-macvlan'], 'true');
  assert.equal(spec.nodeName, 'infra-1');
  assert.equal(dep?.spec.replicas, 1);
});

test('crds profile: the groups, versions, scopes and names Istio, OVN-Kubernetes and OpenShift objects use', () => {
  const crds = gen('crds');
  const names = crds.map((c) => c.metadata.name).sort();
  assert.ok(names.includes('virtualservices.networking.istio.io') && names.includes('egressips.k8s.ovn.org') && names.includes('hostsubnets.network.openshift.io'));
  const vs = crds.find((c) => c.metadata.name === 'virtualservices.networking.istio.io');
  assert.deepEqual(vs?.spec.versions.map((v: any) => `${v.name}${v.storage ? '*' : ''}`), ['v1alpha3*', 'v1beta1', 'v1']);
  assert.equal(crds.find((c) => c.metadata.name === 'egressips.k8s.ovn.org')?.spec.scope, 'Cluster');
});

test('tollgate manifest generate: usage errors name the setting and list what is allowed', async () => {
  const unknown = await cli(['manifest', 'generate', '--profile', 'egress-gateway', '--set', 'replica=3']);
  assert.equal(unknown.code, 2);
  assert.match(unknown.err, /--set replica: not a setting of profile egress-gateway; its settings are: .*replicas/);
  const bad = await cli(['manifest', 'generate', '--profile', 'egress-gateway', '--set', 'serviceType=Public']);
  assert.match(bad.err, /serviceType=Public: must be one of ClusterIP, NodePort, LoadBalancer/);
  const noProfile = await cli(['manifest', 'generate', '--profile', 'gateway']);
  assert.match(noProfile.err, /unknown profile "gateway"; profiles: control-plane, egress-gateway/);
  const stray = await cli(['manifest', 'generate', '--profile', 'crds', '--profile', 'control-plane', '--set', 'nonsense=1']);
  assert.equal(stray.code, 2);
  assert.match(stray.err, /--set nonsense: not a setting of any of the profiles crds, control-plane/);
  const printed = await cli(['manifest', 'generate', '--profile', 'egress-gateway', '--namespace', 'egress', '--set', 'replicas=3']);
  assert.equal(printed.code, 0, printed.err);
  assert.match(printed.out, /^# Generated by: tollgate manifest generate --profile egress-gateway --namespace egress --set replicas=3$/m);
  assert.equal(parseAllDocuments(printed.out).filter((d) => d.contents).length, gen('egress-gateway', ['replicas=3'], 'egress').length);
  const help = await cli(['manifest', '--help']);
  assert.match(help.out, /egress-gateway: .*\n(.*\n)*\s+sourceAddress=\(empty\)/);
});

test('analyze: a LoadBalancer Service in front of an egress gateway is an open relay (warning); the profile\'s ClusterIP default is not', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tg-relay-'));
  try {
    const analyzeWith = async (sets: string[]) => {
      const r = await cli(['manifest', 'generate', '--profile', 'egress-gateway', '--namespace', 'egress', ...sets.flatMap((s) => ['--set', s])]);
      assert.equal(r.code, 0, r.err);
      writeFileSync(join(dir, 'gateway.yaml'), r.out);
      return cli(['analyze', '-f', join(dir, 'gateway.yaml'), '-f', fixture('egress-gateway.yaml')]);
    };
    const open = await analyzeWith(['serviceType=LoadBalancer']);
    assert.match(open.out, /Warning \[TG_EGRESS_GATEWAY_PUBLIC\] Service tollgate-egressgateway\.egress \([^)]*gateway\.yaml:\d+\): Service tollgate-egressgateway\.egress is a LoadBalancer in front of egress Gateway egress\/partner-egress: .*open relay/);
    const closed = await analyzeWith([]);
    assert.doesNotMatch(closed.out, /TG_EGRESS_GATEWAY_PUBLIC/);
    const ingress = await cli(['analyze', '-f', join(ROOT, 'deploy', 'ingress-gateway.yaml'), '-f', fixture('ingress-gateway.yaml')]);
    assert.doesNotMatch(ingress.out, /TG_EGRESS_GATEWAY_PUBLIC/, 'an ingress gateway behind a LoadBalancer is what it is for');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('sidecar-injection profile: pods in istio-injection=enabled or tollgate-injection=enabled namespaces go to /inject; inject: "false" pods never do', () => {
  const [mwc] = gen('sidecar-injection');
  const hooks = mwc?.['webhooks'] as any[];
  assert.deepEqual(hooks.map((h) => `${JSON.stringify(h.namespaceSelector.matchLabels)} ${h.clientConfig.service.path} ${h.rules[0].resources} ${h.rules[0].operations}`), [
    '{"istio-injection":"enabled"} /inject pods CREATE',
    '{"tollgate-injection":"enabled"} /inject pods CREATE',
  ]);
  assert.deepEqual(hooks[0].objectSelector.matchExpressions, [{ key: 'sidecar.istio.io/inject', operator: 'NotIn', values: ['false'] }]);
});
