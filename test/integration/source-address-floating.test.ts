/**
 * Floating source addresses across network namespaces on one bridge (test/helpers/floating-lab.ts):
 * two gateway replicas compete through the control plane for the lease of 198.51.100.50; the
 * holder adds it and leaves from it; a client opens a new tunnel through the address every 100 ms
 * and the destination records the source of each connection.
 *
 * - SIGKILL the holder (then restart it, as the kubelet would): connections from 198.51.100.50
 *   resume through the other replica; the gap is measured (goal 3 s; the test bound is generous,
 *   the distribution is reported by `node bench/failover.mjs`).
 * - SIGTERM the holder: it hands over first (removes the address, releases the lease), so no
 *   connection started after that fails (a tunnel in flight on it at that instant may be cut).
 * - Partition the holder (its veth down): it removes the address before the standby is granted the
 *   lease; the two never hold it at the same time.
 * - Status: the admin API, metrics and the control plane's lease view name the holder.
 * - The same with OpenShift SDN objects: a NetNamespace's egress IP listed by two HostSubnets.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { startLab, VIP, type Lab } from '../helpers/floating-lab.js';
import { waitFor } from '../helpers/net.js';
import { haveTool, isCI, isRoot, run } from '../helpers/tools.js';

const ready = isRoot && haveTool('ip') && haveTool('curl');
const skip = ready ? false : 'needs root, iproute2 (ip netns) and curl';
if (!ready && isCI) throw new Error(`source-address-floating: ${skip}; CI=true`);

const FAILOVERS = Number(process.env['TOLLGATE_FAILOVERS'] ?? 3);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Client lines `<t> ok <peer>` / `<t> fail <why>` after `since`. */
function clientAfter(lab: Lab, since: number): { t: number; ok: boolean; what: string }[] {
  return lab.clientLog.map((l) => l.split(' ')).map(([t, kind, what]) => ({ t: Number(t), ok: kind === 'ok', what: what ?? '' })).filter((x) => x.t > since);
}

describe('floating source address: one holder, failover, hand-over, partition', { skip, concurrency: false, timeout: 180_000 }, () => {
  let lab: Lab;

  before(async () => {
    lab = await startLab(2000);
    await lab.startReplica(0);
    await waitFor(() => lab.holders().length === 1, 10_000, 'replica 0 holds the address');
    await lab.startReplica(1);
    lab.startClient(100);
    await waitFor(() => clientAfter(lab, 0).some((x) => x.ok && x.what === VIP), 10_000, 'first connection from the floating address');
  });

  after(async () => {
    lab?.stopClient();
    await lab?.close();
  });

  it('exactly one replica holds the address; the destination sees only it', async () => {
    await sleep(500);
    assert.equal(lab.holders().length, 1);
    const peers = new Set(lab.destLog.filter((l) => l !== 'LISTEN').map((l) => l.split(' ')[1]));
    assert.deepEqual([...peers], [VIP]);
  });

  it(`SIGKILL the holder ${FAILOVERS} times: connections from ${VIP} resume through the other replica`, async () => {
    const gaps: number[] = [];
    for (let n = 0; n < FAILOVERS; n++) {
      const holder = lab.holders()[0] as 0 | 1;
      const t0 = Date.now();
      lab.replicas[holder]!.kill('SIGKILL');
      await lab.replicas[holder]!.exit();
      // The gap as the destination sees it: its first connection from the address after the kill
      // (records within 150 ms of the kill were tunnels already in flight through the old holder).
      const back = await waitFor(() => lab.destLog.map((l) => l.split(' ')).find(([t, peer]) => Number(t) > t0 + 150 && peer === VIP), 15_000, 'connections after the kill');
      gaps.push(Number(back[0]) - t0);
      // The kubelet restarts the killed container: it removes the stale address and stands by.
      await lab.startReplica(holder);
      await waitFor(() => lab.holders().length === 1 && lab.holders()[0] !== holder, 10_000, 'one holder, the other replica');
    }
    const sorted = [...gaps].sort((a, b) => a - b);
    console.log(`# failover gaps (ms) after SIGKILL: ${gaps.join(', ')}; p50 ${sorted[Math.floor(sorted.length / 2)]}, max ${sorted[sorted.length - 1]}`);
    // Generous bound on a loaded machine (2 s lease + 0.4 s renew + restart noise); the goal is 3 s.
    for (const g of gaps) assert.ok(g < 8000, `gap ${g} ms`);
  });

  it('status: the admin API, the metrics and the control plane name the holder and its last failover', async () => {
    const holder = lab.holders()[0] as 0 | 1;
    const admin = async (path: string) => (await run('ip', ['netns', 'exec', lab.ns.r[holder], 'curl', '-s', `http://127.0.0.1:15000${path}`])).stdout;
    const status = JSON.parse(await admin('/source_addresses')) as { address: string; held: boolean; lastFailover?: { from: string } }[];
    assert.equal(status[0]?.address, VIP);
    assert.equal(status[0]?.held, true);
    assert.ok(status[0]?.lastFailover?.from, JSON.stringify(status));
    const metrics = await admin('/stats/prometheus');
    assert.match(metrics, new RegExp(`^tollgate_source_address_holder\\{address="${VIP.replace(/\./g, '\\.')}",holder="[^"]+"\\} 1$`, 'm'));
    assert.match(metrics, /^tollgate_source_address_failovers_total\{address="198\.51\.100\.50"\} [1-9]/m);
    const leases = spawnSync('ip', ['netns', 'exec', lab.ns.cp, 'curl', '-s', '--cacert', lab.auth.caFile, '-H', `authorization: Bearer ${lab.auth.token('egress')}`, 'https://198.51.100.2:15010/v1/leases'], { encoding: 'utf8' }).stdout;
    const lease = (JSON.parse(leases) as { name: string; holder: string; transitions: number }[])[0];
    assert.equal(lease?.name, 'tollgate-source-198-51-100-50');
    assert.ok((lease?.transitions ?? 0) >= FAILOVERS);
  });

  it('SIGTERM the holder: it hands over first; no connection started after the hand-over fails', async () => {
    const holder = lab.holders()[0] as 0 | 1;
    try {
      const t0 = Date.now();
      lab.replicas[holder]!.kill('SIGTERM');
      // The hand-over begins when the address leaves the old holder (its first step on SIGTERM).
      await waitFor(() => !lab.holders().includes(holder), 10_000, 'the old holder removes the address');
      const tGone = Date.now();
      assert.equal(await lab.replicas[holder]!.exit(), 0);
      await waitFor(() => lab.holders().length === 1 && lab.holders()[0] !== holder, 10_000, 'the other replica holds it');
      await sleep(8500); // tunnels started around the hand-over finish within the client's 8 s timeout
      const settled = clientAfter(lab, t0 - 200).filter((x) => x.t < Date.now() - 8100);
      const inFlight = settled.filter((x) => !x.ok && x.t < tGone);
      console.log(`# SIGTERM hand-over: address left the old holder ${tGone - t0} ms after the signal; ${inFlight.length} tunnel(s) in flight on it then were cut`);
      assert.ok(settled.some((x) => x.ok && x.t >= tGone), 'connections continued');
      assert.deepEqual(settled.filter((x) => !x.ok && x.t >= tGone), []);
    } finally {
      await lab.startReplica(holder);
    }
  });

  it('a partitioned holder removes the address before the standby takes it; never two holders', async () => {
    const holder = lab.holders()[0] as 0 | 1;
    const other = (1 - holder) as 0 | 1;
    spawnSync('ip', ['-n', lab.ns.r[holder], 'link', 'set', lab.replicaDev[holder], 'down']);
    const t0 = Date.now();
    let dropped: number | undefined;
    let taken: number | undefined;
    let both = 0;
    while (Date.now() - t0 < 12_000 && taken === undefined) {
      const h = lab.holders();
      if (h.length === 2) both++;
      if (dropped === undefined && !h.includes(holder)) dropped = Date.now();
      if (taken === undefined && h.includes(other)) taken = Date.now();
      await sleep(10);
    }
    spawnSync('ip', ['-n', lab.ns.r[holder], 'link', 'set', lab.replicaDev[holder], 'up']);
    assert.ok(dropped !== undefined && taken !== undefined, `dropped ${dropped} taken ${taken}`);
    assert.equal(both, 0, 'both replicas held the address at once');
    assert.ok(dropped < taken, `the holder dropped at +${dropped - t0} ms, the standby took it at +${taken - t0} ms`);
    console.log(`# partition: holder dropped the address at +${dropped - t0} ms, standby took it at +${taken - t0} ms`);
    // Reconnected, the old holder finds the lease taken and stays a standby.
    await sleep(1500);
    assert.deepEqual(lab.holders(), [other]);
  });
});

describe('OpenShift SDN: the NetNamespace address is held on a node whose HostSubnet lists it, and fails over to the other', { skip, concurrency: false, timeout: 120_000 }, () => {
  let lab: Lab;

  before(async () => {
    lab = await startLab(2000, 'netnamespace');
    await lab.startReplica(0);
    await waitFor(() => lab.holders().length === 1, 10_000, 'a replica holds the namespace address');
    await lab.startReplica(1);
    lab.startClient(100);
  });

  after(async () => {
    lab?.stopClient();
    await lab?.close();
  });

  it('callers in namespace herasoo leave from its egress IP; after SIGKILL the other node takes it', async () => {
    await waitFor(() => clientAfter(lab, 0).some((x) => x.ok && x.what === VIP), 10_000, 'a connection from the namespace address');
    const holder = lab.holders()[0] as 0 | 1;
    const t0 = Date.now();
    lab.replicas[holder]!.kill('SIGKILL');
    await lab.replicas[holder]!.exit();
    const back = await waitFor(() => lab.destLog.map((l) => l.split(' ')).find(([t, peer]) => Number(t) > t0 + 150 && peer === VIP), 15_000, 'connections after the kill');
    console.log(`# NetNamespace failover gap: ${Number(back[0]) - t0} ms`);
    await lab.startReplica(holder);
    await waitFor(() => lab.holders().length === 1 && lab.holders()[0] !== holder, 10_000, 'the other node holds it');
    const peers = new Set(lab.destLog.filter((l) => l !== 'LISTEN').map((l) => l.split(' ')[1]));
    assert.deepEqual([...peers], [VIP]);
  });
});
