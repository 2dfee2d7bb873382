import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { parseDownwardLabels, podIdentity } from './pod-identity.js';

describe('sidecar identity from the pod environment', () => {
  it('reads the downward-API labels file format', () => {
    assert.equal(parseDownwardLabels('app="reviews"\nversion="v1"\npod-template-hash="5d\\"x"\n'), 'app=reviews,version=v1,pod-template-hash=5d"x');
  });

  it('takes namespace, name, IP, service account and labels from the pod; flags win', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tg-labels-'));
    try {
      const file = join(dir, 'labels');
      writeFileSync(file, 'app="ratings"\n');
      const env = { POD_NAME: 'ratings-1', POD_NAMESPACE: 'shop', INSTANCE_IP: '198.51.100.10', SERVICE_ACCOUNT: 'ratings' };
      assert.deepEqual(podIdentity({ role: 'sidecar' }, env, file), { role: 'sidecar', namespace: 'shop', name: 'ratings-1', labels: 'app=ratings', instanceIp: '198.51.100.10', serviceAccount: 'ratings' });
      assert.equal(podIdentity({ role: 'sidecar', namespace: 'other', labels: 'app=x' }, env, file).namespace, 'other');
      assert.equal(podIdentity({ role: 'sidecar', labels: 'app=x' }, env, file).labels, 'app=x');
      // Gateways are not pods of the mesh: the environment is not consulted.
      assert.deepEqual(podIdentity({ role: 'gateway' }, env, file), { role: 'gateway' });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
