/**
 * Every command line the manifests give a container is one its command accepts: `tollgate run`
 * args go through run's own parser, with the downward-API variables filled in as the kubelet would.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseRunArgs } from '../../src/cli/run.js';
import { generateObjects, PROFILES } from '../../src/manifest/generate.js';

const POD_VARS: Record<string, string> = { POD_NAME: 'gw-7c9d-x2x', POD_NAMESPACE: 'tollgate-system', NODE_NAME: 'worker-1', INSTANCE_IP: '10.244.1.7' };

test('generated tollgate run command lines parse, with the identity the pod will have', () => {
  let checked = 0;
  for (const p of PROFILES) {
    for (const o of generateObjects(p, 'tollgate-system', [])) {
      if (o['kind'] !== 'Deployment') continue;
      const spec = (o as any).spec.template.spec;
      for (const c of spec.containers as { args?: string[] }[]) {
        if (c.args?.[0] !== 'run') continue;
        const args = c.args.slice(1).map((a) => a.replace(/\$\((\w+)\)/g, (_, v: string) => POD_VARS[v] ?? `$(${v})`));
        const parsed = parseRunArgs(args);
        assert.equal(parsed.identity.namespace, 'tollgate-system');
        assert.equal(parsed.identity.name, 'gw-7c9d-x2x');
        checked++;
      }
    }
  }
  assert.equal(checked, 3, 'egress gateway, ingress gateway, egress router');
});
