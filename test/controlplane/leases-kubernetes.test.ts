/**
 * Floating source address leases as coordination.k8s.io/v1 Lease objects, through the real client
 * library against the stand-in API server: take, renew, refuse while live, take over after expiry
 * (a transition), release, and optimistic concurrency (two arbiters racing for a free lease: one
 * wins, the other gets 409 Conflict and is refused). The control plane's lease API serves them.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { KubernetesLeaseStore } from '../../src/controlplane/kubernetes/leases.js';
import { FakeApiServer } from '../helpers/fake-apiserver.js';

describe('Kubernetes Lease store', () => {
  let api: FakeApiServer;
  let dir: string;
  let kc: KubeConfig;

  before(async () => {
    api = new FakeApiServer({ kinds: [{ kind: 'Lease', group: 'coordination.k8s.io', version: 'v1', plural: 'leases', namespaced: true }] });
    await api.start();
    dir = mkdtempSync(join(tmpdir(), 'tg-lease-'));
    kc = new KubeConfig();
    kc.loadFromFile(api.writeKubeconfig(dir));
  });

  after(async () => {
    await api.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('take, renew, refuse while live, take over after expiry, release', async () => {
    let now = Date.parse('2026-12-01T10:00:00Z');
    const store = new KubernetesLeaseStore(kc, 'egress', () => now);
    const a = await store.acquire('tollgate-source-198-51-100-50', 'r1', 2000);
    assert.equal(a.granted, true);
    assert.equal(a.lease.holder, 'r1');
    assert.equal(a.lease.durationMs, 2000);
    const obj = (await (await fetch(`${api.url}/apis/coordination.k8s.io/v1/namespaces/egress/leases/tollgate-source-198-51-100-50`)).json()) as { spec?: { holderIdentity?: string; leaseDurationSeconds?: number } };
    assert.equal(obj.spec?.holderIdentity, 'r1');
    assert.equal(obj.spec?.leaseDurationSeconds, 2);
    now += 1000;
    assert.equal((await store.acquire('tollgate-source-198-51-100-50', 'r2', 2000)).granted, false);
    assert.equal((await store.acquire('tollgate-source-198-51-100-50', 'r1', 2000)).granted, true);
    now += 2000;
    const taken = await store.acquire('tollgate-source-198-51-100-50', 'r2', 2000);
    assert.equal(taken.granted, true);
    assert.equal(taken.lease.transitions, 1);
    assert.equal(taken.lease.previousHolder, 'r1');
    await store.release('tollgate-source-198-51-100-50', 'r2');
    const back = await store.acquire('tollgate-source-198-51-100-50', 'r1', 2000);
    assert.equal(back.granted, true, 'released: free at once');
    assert.equal(back.lease.transitions, 2);
    assert.deepEqual((await store.list()).map((l) => [l.name, l.holder]), [['tollgate-source-198-51-100-50', 'r1']]);
  });

  it('two arbiters race for a free lease: exactly one is granted (resourceVersion conflict)', async () => {
    const s1 = new KubernetesLeaseStore(kc, 'egress');
    const s2 = new KubernetesLeaseStore(kc, 'egress');
    await s1.acquire('race', 'seed', 2000);
    await s1.release('race', 'seed');
    const results = await Promise.all([s1.acquire('race', 'a', 2000), s2.acquire('race', 'b', 2000)]);
    assert.equal(results.filter((r) => r.granted).length, 1, JSON.stringify(results));
  });
});
