#!/usr/bin/env node
// Config pipeline scale: N ServiceEntries + N/10 VirtualServices bound to one egress Gateway,
// compiled into a gateway snapshot. Prints parse/decode, model, snapshot times and snapshot bytes.
// Usage: node bench/pipeline-scale.mjs [100 1000 10000]   (after npm run build)
import { parseText } from '../dist/src/config/load.js';
import { decodeResources } from '../dist/src/config/decode.js';
import { buildModel } from '../dist/src/model/build.js';
import { buildSnapshot } from '../dist/src/snapshot/build.js';

function config(n) {
  const docs = [`apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: egress, namespace: istio-system}
spec:
  selector: {istio: egressgateway}
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: ["*"]
  - port: {number: 443, name: tls, protocol: TLS}
    hosts: ["*"]
    tls: {mode: PASSTHROUGH}`];
  for (let i = 0; i < n; i++) {
    docs.push(`apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: se-${i}, namespace: istio-system}
spec:
  hosts: [host-${i}.example.com]
  ports: [{number: 80, name: http, protocol: HTTP}, {number: 443, name: tls, protocol: TLS}]
  resolution: DNS`);
  }
  const vsCount = Math.max(1, Math.floor(n / 10));
  for (let v = 0; v < vsCount; v++) {
    const hosts = [];
    for (let i = v * 10; i < Math.min(n, v * 10 + 10); i++) hosts.push(`host-${i}.example.com`);
    docs.push(`apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: vs-${v}, namespace: istio-system}
spec:
  hosts: [${hosts.join(', ')}]
  gateways: [egress]
  http:
${hosts.map((h) => `  - match: [{authority: {exact: ${h}}}]\n    route: [{destination: {host: ${h}}}]`).join('\n')}
  tls:
${hosts.map((h) => `  - match: [{port: 443, sniHosts: [${h}]}]\n    route: [{destination: {host: ${h}}}]`).join('\n')}`);
  }
  return { text: docs.join('\n---\n'), vsCount };
}

const sizes = process.argv.slice(2).map(Number);
const rows = [];
for (const n of sizes.length ? sizes : [100, 1000, 10000]) {
  const { text, vsCount } = config(n);
  const t0 = performance.now();
  const parsed = parseText(text, 'scale.yaml');
  const decoded = decodeResources(parsed.documents);
  const t1 = performance.now();
  const model = buildModel(decoded.resources);
  const t2 = performance.now();
  const snap = buildSnapshot(model, { role: 'gateway', namespace: 'istio-system', name: '', labels: { istio: 'egressgateway' } });
  const t3 = performance.now();
  const bytes = Buffer.byteLength(JSON.stringify(snap));
  rows.push({ serviceEntries: n, virtualServices: vsCount, yamlBytes: text.length, parseDecodeMs: +(t1 - t0).toFixed(0), modelMs: +(t2 - t1).toFixed(0), snapshotMs: +(t3 - t2).toFixed(0), compileMs: +(t3 - t1).toFixed(0), snapshotBytes: bytes, bytesPerEntry: Math.round(bytes / n), diagnostics: parsed.diagnostics.length + decoded.diagnostics.length });
}
console.table(rows);
