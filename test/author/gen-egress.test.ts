/**
 * `tollgate gen egress` as a user runs it: for each --tls mode the printed YAML, next to the
 * gateway's Deployment/Service/Endpoints, has no analyze error, and trace routes the intended URL
 * through the sidecar to the gateway and from the gateway to the destination.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { analyzeModel } from '../../src/analyze/analyze.js';
import { parseTraceUrl, trace } from '../../src/trace/trace.js';
import { gatewayWorkload } from '../helpers/istio-yaml.js';
import { identity, loadYaml, ROOT, snapshotOf } from '../helpers/pipeline.js';

function gen(args: string[]) {
  const r = spawnSync(process.execPath, [join(ROOT, 'dist/src/cli/bin.js'), 'gen', 'egress', ...args], { cwd: ROOT, encoding: 'utf8', timeout: 30_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

// What the cluster already has: the gateway's pods, Service and Endpoints (what `helm install istio/gateway` creates).
const CLUSTER = gatewayWorkload('istio-egressgateway', 'istio-system', '127.0.0.50');

const gateway = identity('gateway', 'istio-system', { istio: 'egressgateway' });
const sidecar = identity('sidecar', 'apps', { app: 'caller' });

const CASES = [
  { tls: 'none', url: 'http://api.partner.example/v1', gatewayCluster: 'outbound|80||api.partner.example', sidecarCluster: 'outbound|80|egress|istio-egressgateway.istio-system.svc.cluster.local' },
  { tls: 'passthrough', url: 'tls://api.partner.example:443', gatewayCluster: 'outbound|443||api.partner.example', sidecarCluster: 'outbound|443|egress|istio-egressgateway.istio-system.svc.cluster.local' },
  { tls: 'originate', url: 'http://api.partner.example/v1', gatewayCluster: 'outbound|443||api.partner.example', sidecarCluster: 'outbound|80|egress|istio-egressgateway.istio-system.svc.cluster.local' },
] as const;

for (const c of CASES) {
  test(`gen egress --tls ${c.tls}: no analyze error; trace routes ${c.url} sidecar -> gateway -> partner`, () => {
    const r = gen(['--host', 'api.partner.example', '--tls', c.tls, ...(c.tls === 'originate' ? ['--ca-cert', '/etc/partner/ca.pem'] : [])]);
    assert.equal(r.code, 0, r.err);
    const config = loadYaml(`${CLUSTER}\n---\n${r.out}`, `gen-${c.tls}.yaml`);
    assert.deepEqual(config.diagnostics.filter((d) => d.severity === 'error'), []);
    const diags = analyzeModel(config.model);
    assert.deepEqual(diags.filter((d) => d.severity === 'error').map((d) => `${d.code}: ${d.message}`), []);
    if (c.tls === 'passthrough') assert.deepEqual(diags.filter((d) => d.severity === 'warning').map((d) => d.code), []);
    const atGateway = trace(config.model, snapshotOf(config, gateway), parseTraceUrl(c.url));
    assert.equal(atGateway.ok, true, `${atGateway.reason} ${atGateway.hint}`);
    assert.deepEqual(atGateway.steps.filter((s) => s.step === 'cluster').map((s) => s.value), [c.gatewayCluster]);
    const atSidecar = trace(config.model, snapshotOf(config, sidecar), parseTraceUrl(c.url));
    assert.equal(atSidecar.ok, true, `${atSidecar.reason} ${atSidecar.hint}`);
    assert.deepEqual(atSidecar.steps.filter((s) => s.step === 'cluster').map((s) => s.value), [c.sidecarCluster]);
    if (c.tls === 'originate') {
      const policy = atGateway.steps.find((s) => s.step === 'policy')?.detail ?? '';
      assert.match(policy, /tls SIMPLE sni api\.partner\.example ca \/etc\/partner\/ca\.pem/, 'the gateway trusts the partner CA');
    }
  });
}

test('gen egress: client certificate -> MUTUAL with the Secret; source address annotation; bad intents fail with a reason', () => {
  const r = gen(['--host', 'api.partner.example', '--tls', 'originate', '--client-cert', 'partner-client', '--source-address', '203.0.113.7']);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /mode: MUTUAL\n\s+sni: api\.partner\.example\n\s+credentialName: partner-client/);
  assert.match(r.out, /tollgate\.io\/source-address: 203\.0\.113\.7/);
  const config = loadYaml(`${CLUSTER}\n---\n${r.out}`, 'gen-mtls.yaml');
  const t = trace(config.model, snapshotOf(config, gateway), parseTraceUrl('http://api.partner.example/'));
  assert.equal(t.ok, true, t.hint);
  assert.match(t.steps.find((s) => s.step === 'source address')?.value ?? '', /203\.0\.113\.7/);
  const bad = gen(['--host', 'api.partner.example', '--tls', 'passthrough', '--ca-cert', 'x']);
  assert.equal(bad.code, 2);
  assert.match(bad.err, /--ca-cert and --client-cert apply to --tls originate only/);
  assert.equal(gen(['--host', 'not a host']).code, 2);
  assert.match(gen(['--help']).out, /--tls none\|passthrough\|originate/);
});
