#!/usr/bin/env node
/**
 * Floating source address failover, measured: the lab of test/integration/source-address-floating
 * (two gateway replicas in network namespaces on a bridge, control plane, destination, client
 * opening a CONNECT tunnel through the floating address every 100 ms). Kills the holder with SIGKILL
 * N times (restarting it as a standby each time, as the kubelet would) and reports the gap until the
 * destination sees a new connection from the address again.
 *
 *   npm run build && node bench/failover.mjs [--kills 10] [--lease 2000] [--json bench/results/failover.json]
 *
 * Needs root (network namespaces). Writes nothing unless --json is given.
 */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { startLab, VIP } from '../dist/test/helpers/floating-lab.js';

const { values } = parseArgs({ options: { kills: { type: 'string', default: '10' }, lease: { type: 'string', default: '2000' }, json: { type: 'string' } } });
const kills = Math.min(100, Math.max(1, Number(values.kills)));
const leaseMs = Number(values.lease);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function until(fn, ms, what) {
  const end = Date.now() + ms;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

const lab = await startLab(leaseMs);
const gaps = [];
try {
  await lab.startReplica(0);
  await until(() => lab.holders().length === 1, 10_000, 'a holder');
  await lab.startReplica(1);
  lab.startClient(100);
  await until(() => lab.destLog.some((l) => l.endsWith(` ${VIP}`)), 10_000, 'first connection');
  for (let n = 0; n < kills; n++) {
    const holder = lab.holders()[0];
    const t0 = Date.now();
    lab.replicas[holder].kill('SIGKILL');
    await lab.replicas[holder].exit();
    const back = await until(() => lab.destLog.map((l) => l.split(' ')).find(([t, peer]) => Number(t) > t0 + 150 && peer === VIP), 20_000, 'connections after the kill');
    gaps.push(Number(back[0]) - t0);
    console.log(`kill ${n + 1}: replica ${holder} -> gap ${gaps[gaps.length - 1]} ms`);
    await lab.startReplica(holder);
    await until(() => lab.holders().length === 1 && lab.holders()[0] !== holder, 10_000, 'one holder');
  }
} finally {
  lab.stopClient();
  await lab.close();
}
const sorted = [...gaps].sort((a, b) => a - b);
const pct = (p) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
const result = { kills, leaseMs, gapsMs: gaps, p50Ms: pct(50), maxMs: sorted[sorted.length - 1], minMs: sorted[0] };
console.log(`SIGKILL failover over ${kills} kills (lease ${leaseMs} ms): p50 ${result.p50Ms} ms, min ${result.minMs} ms, max ${result.maxMs} ms`);
if (values.json) writeFileSync(values.json, JSON.stringify(result, null, 2) + '\n');
