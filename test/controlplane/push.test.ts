/**
 * Control plane with real HTTP streams on loopback and proxies whose "runtime" records what it was
 * asked to apply: pushes only to the proxies a change concerns, ACK/NACK, rejection of bad config
 * with file:line, no resend of a NACKed version, reconnect after a control-plane restart.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { FileConfigSource } from '../../src/controlplane/config-source.js';
import { ControlPlane } from '../../src/controlplane/server.js';
import { ControlPlaneClient } from '../../src/controlplane/client.js';
import { makeControlPlaneAuth } from '../helpers/control-plane-auth.js';
import type { Snapshot } from '../../src/snapshot/types.js';
import { main } from '../../src/cli/main.js';

const gateway = (name: string, label: string, host: string) => `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: ${name}, namespace: edge}
spec:
  selector: {app: ${label}}
  servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: ["${host}"]}]
`;
const vs = (name: string, gw: string, host: string, path: string) => `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ${name}, namespace: edge}
spec:
  hosts: ["${host}"]
  gateways: [${gw}]
  http: [{match: [{uri: {prefix: "${path}"}}], route: [{destination: {host: ${host}}}]}]
`;
const se = (host: string) => `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ${host.split('.')[0]}, namespace: edge}
spec: {hosts: ["${host}"], ports: [{number: 80, name: http, protocol: HTTP}], resolution: DNS}
`;

class RecordingRuntime {
  applied: Snapshot[] = [];
  refuse: ((s: Snapshot) => string | undefined) | undefined;
  apply(s: Snapshot): Promise<void> {
    const problem = this.refuse?.(s);
    if (problem) return Promise.reject(new Error(problem));
    this.applied.push(s);
    return Promise.resolve();
  }
  get routes(): string[] {
    const last = this.applied[this.applied.length - 1];
    return (last?.routes ?? []).flatMap((r) => r.virtualHosts.flatMap((v) => v.routes.map((x) => JSON.stringify(x.match.path))));
  }
}

async function until(what: string, cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('push, ACK, selective push, rejected config, NACK without resend, reconnect', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tg-cp-'));
  const write = (file: string, text: string) => writeFileSync(join(dir, file), text);
  write('a.yaml', [gateway('gw-a', 'a', 'a.example'), vs('vs-a', 'gw-a', 'a.example', '/v1'), se('a.example')].join('---\n'));
  write('b.yaml', [gateway('gw-b', 'b', 'b.example'), vs('vs-b', 'gw-b', 'b.example', '/v1'), se('b.example')].join('---\n'));

  const source = new FileConfigSource({ paths: [dir], debounceMs: 50 });
  assert.equal(source.reload().kind, 'accepted');
  const auth = await makeControlPlaneAuth(['edge']);
  let cp = new ControlPlane({ source, pingIntervalMs: 200, ...auth.server });
  const { port } = await cp.listen('127.0.0.1', 0);
  source.watch();
  const ra = new RecordingRuntime();
  const rb = new RecordingRuntime();
  const ca = new ControlPlaneClient({ host: '127.0.0.1', port, node: { role: 'gateway', namespace: 'edge', name: 'gw-a-1', labels: { app: 'a' } }, applier: ra, ...auth.client('edge'), initialBackoffMs: 50, maxBackoffMs: 200 });
  const cb = new ControlPlaneClient({ host: '127.0.0.1', port, node: { role: 'gateway', namespace: 'edge', name: 'gw-b-1', labels: { app: 'b' } }, applier: rb, ...auth.client('edge'), initialBackoffMs: 50, maxBackoffMs: 200 });
  t.after(async () => {
    ca.stop();
    cb.stop();
    source.close();
    await cp.close();
    rmSync(dir, { recursive: true, force: true });
    auth.cleanup();
  });
  ca.start();
  cb.start();
  await until('both proxies SYNCED', () => cp.proxies().filter((p) => p.state === 'SYNCED').length === 2);
  assert.deepEqual(ra.routes, ['{"prefix":"/v1"}']);

  // A change that concerns only gateway a: a is pushed, b is not.
  write('a.yaml', [gateway('gw-a', 'a', 'a.example'), vs('vs-a', 'gw-a', 'a.example', '/v2'), se('a.example')].join('---\n'));
  await until('a gets the new route', () => ra.routes[0] === '{"prefix":"/v2"}');
  await until('a SYNCED again', () => cp.proxies().find((p) => p.node.name === 'gw-a-1')?.state === 'SYNCED');
  assert.equal(rb.applied.length, 1, 'b was not pushed');

  // Broken YAML: rejected with file:line, nobody pushed, views say so.
  write('b.yaml', 'apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: x, namespace: edge}\nspec:\n  hosts: [b.example]\n  http: [{timeout: soon}]\n');
  await until('rejection recorded', () => cp.configView().rejected !== undefined);
  assert.match(cp.configView().rejected?.errors.join('\n') ?? '', /b\.yaml:6\): spec\.http\[0\]\.timeout must be a duration/);
  assert.equal(ra.applied.length, 2);
  assert.equal(rb.applied.length, 1);
  const lines: string[] = [];
  assert.equal(await main(['proxy-status', '--control-plane', `127.0.0.1:${port}`, ...auth.viewArgs], { out: (l) => lines.push(l), err: (l) => lines.push(l) }), 0);
  assert.match(lines[0] ?? '', /^NAME\s+ROLE\s+NAMESPACE\s+VERSION\s+STATUS/);
  assert.ok(lines.some((l) => /^gw-a-1\s+gateway\s+edge\s+[0-9a-f]{16}\s+SYNCED/.test(l)), lines.join('\n'));
  assert.ok(lines.some((l) => /REJECTED/.test(l)));

  // b refuses anything with a /v3 route: NACKed, keeps its version, and the bad version is not resent.
  rb.refuse = (s) => (JSON.stringify(s.routes).includes('/v3') ? 'listener 0.0.0.0_80: address already in use' : undefined);
  write('b.yaml', [gateway('gw-b', 'b', 'b.example'), vs('vs-b', 'gw-b', 'b.example', '/v3'), se('b.example')].join('---\n'));
  await until('b NACKED', () => cp.proxies().find((p) => p.node.name === 'gw-b-1')?.state === 'NACKED');
  const bView = cp.proxies().find((p) => p.node.name === 'gw-b-1');
  assert.equal(bView?.lastError, 'listener 0.0.0.0_80: address already in use');
  assert.equal(bView?.ackedVersion, rb.applied[0]?.version);
  const sentBefore = bView?.lastPushAt;
  write('a.yaml', [gateway('gw-a', 'a', 'a.example'), vs('vs-a', 'gw-a', 'a.example', '/v4'), se('a.example')].join('---\n'));
  await until('a gets /v4', () => ra.routes[0] === '{"prefix":"/v4"}');
  assert.equal(cp.proxies().find((p) => p.node.name === 'gw-b-1')?.lastPushAt, sentBefore, 'the NACKed version was not pushed again');

  // Control plane goes away: proxies keep their snapshot; it comes back on the same port: they reconnect and are not re-sent what they run.
  const aVersion = ca.appliedVersion;
  await cp.close();
  await until('a notices', () => !ca.connected);
  assert.equal(ca.appliedVersion, aVersion);
  cp = new ControlPlane({ source, pingIntervalMs: 200, ...auth.server });
  await cp.listen('127.0.0.1', port);
  await until('both reconnect', () => cp.proxies().length === 2, 8000);
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(ra.applied.length, 3, 'a already ran the current version; nothing re-applied');
  assert.equal(cp.proxies().find((p) => p.node.name === 'gw-a-1')?.state, 'SYNCED');
});
