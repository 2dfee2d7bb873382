/**
 * `tollgate inject` on the example workloads (egress gateway, egress router, nginx ingress): the output is accepted by `tollgate analyze`, carries the
 * sidecar and the init container whose arguments `tollgate init` turns into the same capture rules
 * istio-init writes, and honours the injection annotations.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { iptablesRules } from '../src/capture/rules.js';
import { parseInitArgs } from '../src/cli/init.js';
import { injectDocument } from '../src/inject/inject.js';
import { BIN, FIXTURES } from './helpers/tollgate.js';

const SEEDS = [join(FIXTURES, 'pipeline', 'egress-gateway.yaml'), join(FIXTURES, 'pipeline', 'egress-router.yaml'), join(FIXTURES, 'http', '001-ingress-gateway.yaml')];
const OPTS = { image: 'tollgate:test', controlPlane: 'tollgate.istio-system.svc:15010', cni: false };

type Obj = Record<string, any>; // parsed YAML, read by path in assertions

function tollgate(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 30_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('tollgate inject', () => {
  it("injects the example workloads; tollgate analyze accepts the result", () => {
    const dir = mkdtempSync(join(tmpdir(), 'tg-inject-'));
    try {
      for (const seed of SEEDS) {
        const r = tollgate('inject', '-f', seed);
        assert.equal(r.status, 0, r.stderr);
        const docs = parseAllDocuments(r.stdout).map((d) => d.toJS() as Obj);
        const workloads = docs.filter((d) => d['kind'] === 'Deployment');
        assert.ok(workloads.length > 0, seed);
        for (const w of workloads) {
          const spec = w['spec']['template']['spec'];
          assert.ok(spec['containers'].some((c: Obj) => c['name'] === 'istio-proxy'), `${seed}: sidecar`);
          assert.ok(spec['initContainers'].some((c: Obj) => c['name'] === 'istio-init'), `${seed}: init`);
        }
        const out = join(dir, 'injected.yaml');
        writeFileSync(out, r.stdout);
        const a = tollgate('analyze', '-f', out);
        assert.equal(a.status, 0, `${seed}: ${a.stdout}${a.stderr}`);
        assert.match(a.stdout, / 0 error\(s\)/);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("the init container's arguments give istio-init's rules", () => {
    const doc = parseAllDocuments(readFileSync(SEEDS[0]!, 'utf8')).map((d) => d.toJS() as Obj).find((d) => d['kind'] === 'Deployment');
    const r = injectDocument(doc, OPTS);
    assert.equal(r.injected, true);
    const init = (r.doc as Obj)['spec']['template']['spec']['initContainers'].find((c: Obj) => c['name'] === 'istio-init');
    assert.equal(init['args'][0], 'init');
    const seedArgs = parseInitArgs(['-p', '15001', '-z', '15006', '-u', '1337', '-m', 'REDIRECT', '-i', '*', '-x', '', '-b', '*', '-d', '15090,15021,15020']);
    assert.equal(iptablesRules(parseInitArgs(init['args'].slice(1)).options), iptablesRules(seedArgs.options));
    const proxy = (r.doc as Obj)['spec']['template']['spec']['containers'].find((c: Obj) => c['name'] === 'istio-proxy');
    assert.equal(proxy['securityContext']['runAsUser'], 1337);
    assert.deepEqual(proxy['env'].map((e: Obj) => e['name']), ['POD_NAME', 'POD_NAMESPACE', 'INSTANCE_IP', 'SERVICE_ACCOUNT', 'NODE_NAME']);
    assert.equal(proxy['readinessProbe']['httpGet']['port'], 15021);
  });

  it('honours sidecar.istio.io/inject and the traffic.sidecar.istio.io annotations; --cni drops the init container', () => {
    const pod = (annotations: Record<string, string>): Obj => ({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', namespace: 'default', annotations }, spec: { containers: [{ name: 'app', image: 'app' }] } });
    const off = injectDocument(pod({ 'sidecar.istio.io/inject': 'false' }), OPTS);
    assert.equal(off.injected, false);
    const on = injectDocument(pod({ 'traffic.sidecar.istio.io/excludeOutboundPorts': '25,587', 'traffic.sidecar.istio.io/includeOutboundIPRanges': '10.0.0.0/8', 'traffic.sidecar.istio.io/excludeInboundPorts': '8081' }), OPTS);
    assert.equal(on.injected, true);
    const args: string[] = (on.doc as Obj)['spec']['initContainers'][0]['args'];
    const parsed = parseInitArgs(args.slice(1)).options;
    assert.deepEqual(parsed.excludeOutboundPorts, [25, 587]);
    assert.deepEqual(parsed.includeOutboundCidrs, ['10.0.0.0/8']);
    assert.ok(parsed.excludeInboundPorts.includes(8081) && parsed.excludeInboundPorts.includes(15021));
    const cni = injectDocument(pod({}), { ...OPTS, cni: true });
    assert.equal((cni.doc as Obj)['spec']['initContainers'], undefined);
    assert.equal((cni.doc as Obj)['metadata']['annotations']['k8s.v1.cni.cncf.io/networks'], 'istio-cni');
    assert.equal(injectDocument(on.doc, OPTS).injected, false, 'injecting twice changes nothing');
  });
});
