// Control-plane cost at N ServiceEntries, measured in-process (one fresh process per N, so heap
// figures are not polluted by the previous size): YAML parse -> decode -> model -> snapshot, the
// snapshot's JSON size, the data plane's runtime compile (CompiledSnapshot) and the cost of one
// Host lookup in the compiled route table. Each stage that is not importable (yet) is reported as
// { error } rather than failing the run.
// Usage: node --expose-gc compile-bench.mjs <N> <reps>    (prints one JSON object)
import { performance } from 'node:perf_hooks';
import { benchIstioYaml, REPO } from './tollgate.mjs';
import { median } from './util.mjs';

const n = Number(process.argv[2] ?? 1);
const reps = Math.max(1, Number(process.argv[3] ?? 3));
const d = (p) => new URL(`dist/src/${p}`, `file://${REPO.endsWith('/') ? REPO : `${REPO}/`}`).href;

const out = { serviceEntries: n, reps };
const gc = globalThis.gc ?? (() => {});

async function imp(path) {
  try {
    return await import(d(path));
  } catch (err) {
    return { __error: `${path}: ${err.message.split('\n')[0]}` };
  }
}

const load = await imp('config/load.js');
const decode = await imp('config/decode.js');
const model = await imp('model/build.js');
const snap = await imp('snapshot/build.js');
const route = await imp('dataplane/route/compile.js');
const select = await imp('dataplane/route/select.js');

const yaml = benchIstioYaml({ httpPort: 18080, upstreamPort: 18081, scale: Math.max(0, n - 1) });
out.yamlBytes = Buffer.byteLength(yaml);
const proxy = { role: 'gateway', namespace: 'bench', name: 'bench-gw', labels: { app: 'bench' } };

const missing = [load, decode, model, snap].find((m) => m.__error);
if (missing) {
  out.error = missing.__error;
} else {
  const times = { parseMs: [], decodeMs: [], modelMs: [], snapshotMs: [], totalMs: [], runtimeCompileMs: [] };
  let snapshot;
  let compiled;
  gc();
  const heap0 = process.memoryUsage().heapUsed;
  const rss0 = process.memoryUsage().rss;
  for (let r = 0; r < reps; r++) {
    snapshot = undefined;
    compiled = undefined;
    gc();
    const t0 = performance.now();
    const parsed = load.parseText(yaml, 'bench.yaml');
    const t1 = performance.now();
    const decoded = decode.decodeResources(parsed.documents);
    const t2 = performance.now();
    const m = model.buildModel(decoded.resources);
    const t3 = performance.now();
    snapshot = snap.buildSnapshot(m, proxy);
    const t4 = performance.now();
    times.parseMs.push(t1 - t0);
    times.decodeMs.push(t2 - t1);
    times.modelMs.push(t3 - t2);
    times.snapshotMs.push(t4 - t3);
    times.totalMs.push(t4 - t0);
    if (r === 0) {
      out.diagnostics = [...parsed.diagnostics, ...decoded.diagnostics].filter((x) => x.severity === 'error').length;
      out.listeners = snapshot.listeners.length;
      out.clusters = snapshot.clusters.length;
      out.virtualHosts = snapshot.routes.reduce((a, rc) => a + rc.virtualHosts.length, 0);
    }
    if (!route.__error && route.CompiledSnapshot) {
      const t5 = performance.now();
      compiled = new route.CompiledSnapshot(snapshot);
      times.runtimeCompileMs.push(performance.now() - t5);
    }
  }
  for (const [k, v] of Object.entries(times)) if (v.length) out[k] = median(v);
  out.snapshotBytes = Buffer.byteLength(JSON.stringify(snapshot));
  gc();
  const mem = process.memoryUsage();
  // What stays alive: the last snapshot and its compiled form (the yaml text is in both baselines).
  out.retainedHeapBytes = mem.heapUsed - heap0;
  out.rssGrowthBytes = mem.rss - rss0;
  if (route.__error) out.runtimeCompileError = route.__error;
  // Host lookup cost: the route table with the most virtual hosts, hosts drawn from it (hits) plus misses.
  if (compiled && !select.__error && select.selectVirtualHost) {
    const table = [...compiled.routeTables.values()].sort((a, b) => b.config.virtualHosts.length - a.config.virtualHosts.length)[0];
    if (table) {
      const hosts = [];
      for (let i = 0; i < 1024; i++) hosts.push(n > 1 ? `svc-${(i * 7919) % (n - 1)}.scale.bench.test` : 'up.bench.test');
      for (let i = 0; i < 64; i++) hosts[i * 16] = `miss-${i}.example.org`;
      let sink = 0;
      const iters = 200_000;
      for (let i = 0; i < 20_000; i++) if (select.selectVirtualHost(table, hosts[i & 1023])) sink++;
      const t0 = performance.now();
      for (let i = 0; i < iters; i++) if (select.selectVirtualHost(table, hosts[i & 1023])) sink++;
      out.hostLookupNs = ((performance.now() - t0) * 1e6) / iters;
      out.hostLookupHits = sink;
    }
  } else if (select.__error) out.hostLookupError = select.__error;
}
process.stdout.write(`${JSON.stringify(out)}\n`);
