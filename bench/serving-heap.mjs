#!/usr/bin/env node
// Heap of a serving Tollgate at N ServiceEntries, step by step: the plain snapshot as received from
// the config child process, the compiled matchers, the downstream TLS store, the cluster tables and
// the HTTP filter chains (heap in use after two full GCs, MB, and the step's share per entry).
// Usage: node --expose-gc bench/serving-heap.mjs [N]   (default 10000; needs `npx tsc` first)
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { benchIstioYaml, REPO } from './lib/tollgate.mjs';

if (typeof globalThis.gc !== 'function' || process.argv.includes('--help')) {
  console.error('usage: node --expose-gc bench/serving-heap.mjs [N]');
  process.exit(process.argv.includes('--help') ? 0 : 2);
}
const n = Number(process.argv[2] ?? 10000);
const dir = mkdtempSync(join(tmpdir(), 'tollgate-heap-'));
const file = (k) => join(dir, `n${k}.yaml`);
writeFileSync(file(1), benchIstioYaml({ httpPort: 18080, upstreamPort: 18081 }));
writeFileSync(file(n), benchIstioYaml({ httpPort: 18080, upstreamPort: 18081, scale: n - 1 }));
const { parseRunArgs, startTollgate } = await import(`${REPO}/dist/src/cli/run.js`);
const { loadSnapshotIsolated } = await import(`${REPO}/dist/src/cli/snapshot-loader.js`);
const { CompiledSnapshot } = await import(`${REPO}/dist/src/dataplane/route/compile.js`);
const { compileDownstreamTls, DOWNSTREAM_TLS } = await import(`${REPO}/dist/src/dataplane/listener/tls-store.js`);

let last = 0;
const rows = [];
const step = (name) => {
  globalThis.gc();
  globalThis.gc();
  const used = process.memoryUsage().heapUsed;
  rows.push({ step: name, heapMB: +(used / 1048576).toFixed(1), deltaMB: +((used - last) / 1048576).toFixed(1), KBPerEntry: rows.length === 0 ? undefined : +((used - last) / 1024 / n).toFixed(2) });
  last = used;
};
// A running proxy at N=1 first: what every later step adds is the cost of the N entries.
const tg = await startTollgate(parseRunArgs(['-f', file(1), '--namespace', 'bench', '--labels', 'app=bench', '--admin', 'off', '--no-access-log', '--port-map', '18080=0', '--log-level', 'warn']));
step('proxy at N=1');
const reply = await loadSnapshotIsolated({ paths: [file(n)], identity: { namespace: 'bench', labels: 'app=bench' }, options: {} });
step('plain snapshot');
const compiled = new CompiledSnapshot(reply.snapshot);
step('compiled matchers');
compiled.attach(DOWNSTREAM_TLS, compileDownstreamTls(compiled));
step('downstream TLS');
tg.services.clusters.prepare(compiled);
step('cluster tables');
tg.runtime.http.compile?.(compiled);
step('HTTP filter chains');
console.table(rows);
console.log(JSON.stringify({ serviceEntries: n, totalKBPerEntry: +((last - rows[0].heapMB * 1048576) / 1024 / n).toFixed(2) }));
await tg.stop(0);
rmSync(dir, { recursive: true, force: true });
