/**
 * `tollgate suggest` on a recorded access log (1,000 lines, 30 external destinations; written by
 * test/fixtures/suggest/make-access-log.mjs): the same YAML every run and whatever the line order,
 * one ServiceEntry per destination (wildcards past the threshold), protocols from what was seen,
 * evidence comments, and output that analyze accepts — with --via-gateway too.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { analyzeModel } from '../../src/analyze/analyze.js';
import { suggest } from '../../src/author/suggest.js';
import { parseTraceUrl, trace } from '../../src/trace/trace.js';
import { gatewayWorkload } from '../helpers/istio-yaml.js';
import { identity, loadYaml, ROOT, snapshotOf } from '../helpers/pipeline.js';

const LOG = 'test/fixtures/suggest/access-1000.jsonl';

function tollgate(args: string[], input?: string) {
  const r = spawnSync(process.execPath, [join(ROOT, 'dist/src/cli/bin.js'), ...args], { cwd: ROOT, encoding: 'utf8', input, timeout: 30_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

const GATEWAY_WORKLOAD = gatewayWorkload();

function kinds(yamlText: string): { kind: string; name: string; hosts: string[] }[] {
  return yamlText.split(/^---$/m).map((d) => parse(d) as { kind: string; metadata: { name: string }; spec: { hosts?: string[] } }).map((o) => ({ kind: o.kind, name: o.metadata.name, hosts: o.spec.hosts ?? [] }));
}

test('suggest on 1,000 recorded lines: identical YAML twice and for shuffled input; 30 destinations -> 30 ServiceEntries', () => {
  assert.equal(readFileSync(join(ROOT, LOG), 'utf8').trim().split('\n').length, 1000);
  const a = tollgate(['suggest', '--access-log', LOG]);
  assert.equal(a.code, 0, a.err);
  const b = tollgate(['suggest', '--access-log', LOG]);
  assert.equal(b.out, a.out, 'same input, same bytes');
  const lines = readFileSync(join(ROOT, LOG), 'utf8').trim().split('\n');
  const reversed = tollgate(['suggest', '--access-log', '-'], [...lines].reverse().join('\n') + '\n');
  assert.equal(reversed.out, a.out, 'line order does not matter');
  const objs = kinds(a.out);
  assert.equal(objs.filter((o) => o.kind === 'ServiceEntry').length, 30);
  const hosts = objs.flatMap((o) => o.hosts);
  assert.ok(!hosts.includes('registered.example') && !hosts.includes('metadata.internal'), 'allowed traffic and other denials are not suggested');
  // Protocol from what was seen, evidence per object.
  assert.match(a.out, /# observed api1\.partner1\.example: \d+ request\(s\)\/connection\(s\) on 8080\/HTTP, first 2026-11-30T\S+, last 2026-11-30T\S+\n# callers: 10\.1\.0\.5, 10\.1\.0\.6, 10\.2\.0\.9\n/);
  assert.match(a.out, /hosts:\n\s+- login3\.vendor3\.example\.org\n\s+ports:\n\s+- number: 443\n\s+name: tls-443\n\s+protocol: TLS/);
  assert.match(a.out, /hosts:\n\s+- mq1\.broker\.example\.com\n\s+ports:\n\s+- number: 8444\n\s+name: tls-8444\n\s+protocol: TLS/);
  assert.match(a.out, /addresses:\n\s+- 203\.0\.113\.11\n\s+ports:\n\s+- number: 5433\n\s+name: tcp-5433\n\s+protocol: TCP/);
  const config = loadYaml(a.out, 'suggested.yaml');
  assert.deepEqual(config.diagnostics.filter((d) => d.severity === 'error'), []);
  assert.deepEqual(analyzeModel(config.model).filter((d) => d.severity === 'error'), []);
});

test('suggest --wildcard-threshold 5: ten CDN subdomains become *.cdn.example.net; --via-gateway output passes analyze and routes', () => {
  const r = tollgate(['suggest', '--access-log', LOG, '--wildcard-threshold', '5', '--via-gateway', 'egressgateway']);
  assert.equal(r.code, 0, r.err);
  const objs = kinds(r.out);
  const ses = objs.filter((o) => o.kind === 'ServiceEntry');
  assert.equal(ses.length, 21, '30 destinations, 10 of them folded into one wildcard');
  assert.ok(ses.some((o) => o.hosts[0] === '*.cdn.example.net'));
  assert.ok(!ses.some((o) => o.hosts[0]?.startsWith('img')));
  assert.match(r.out, /# wildcard for 10 subdomains: img0\.cdn\.example\.net, img1\.cdn\.example\.net/);
  assert.equal(objs.filter((o) => o.kind === 'Gateway').length, 1, 'one Gateway with every host');
  const config = loadYaml(`${GATEWAY_WORKLOAD}\n---\n${r.out}`, 'suggested.yaml');
  assert.deepEqual(config.diagnostics.filter((d) => d.severity === 'error'), []);
  assert.deepEqual(analyzeModel(config.model).filter((d) => d.severity === 'error').map((d) => d.message), []);
  const gw = snapshotOf(config, identity('gateway', 'istio-system', { istio: 'egressgateway' }));
  const http = trace(config.model, gw, parseTraceUrl('http://api0.partner0.example/v1/items'));
  assert.equal(http.ok, true, http.hint);
  const tls = trace(config.model, gw, parseTraceUrl('tls://login2.vendor2.example.org:443'));
  assert.equal(tls.ok, true, tls.hint);
  assert.equal(tollgate(['suggest', '--access-log', LOG, '--wildcard-threshold', '5', '--via-gateway', 'egressgateway']).out, r.out);
});

test('suggest: a non-JSON line is reported with file:line; no source is a usage error', () => {
  const r = tollgate(['suggest', '--access-log', '-'], 'not json\n');
  assert.equal(r.code, 0);
  assert.match(r.err, /<stdin>:1: not a JSON access-log record/);
  assert.equal(tollgate(['suggest']).code, 2);
});

test('suggest merges the observations of several proxies: counts summed, callers and ports unioned, earliest/latest kept', () => {
  const a = { host: 'api.partner.example', port: 443, protocol: 'TLS' as const, count: 2, firstSeen: '2026-11-30T08:00:00.000Z', lastSeen: '2026-11-30T09:00:00.000Z', callers: ['shop'] };
  const b = { ...a, count: 5, firstSeen: '2026-11-30T07:00:00.000Z', lastSeen: '2026-11-30T08:30:00.000Z', callers: ['pay'] };
  const c = { ...a, port: 80, protocol: 'HTTP' as const, count: 1, callers: ['shop'] };
  const items = suggest([a, b, c], { namespace: 'egress', wildcardThreshold: 0 });
  assert.equal(items.length, 1);
  assert.deepEqual(items[0]!.comment, ['observed api.partner.example: 8 request(s)/connection(s) on 80/HTTP, 443/TLS, first 2026-11-30T07:00:00.000Z, last 2026-11-30T09:00:00.000Z', 'callers: pay, shop']);
  assert.deepEqual(suggest([c, b, a], { namespace: 'egress', wildcardThreshold: 0 }), items, 'order does not matter');
});
