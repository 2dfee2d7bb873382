/**
 * The rbac filter is an ordinary `httpFilters` entry: moved behind a filter that pauses the request
 * (a fault delay) in the snapshot, it still authorizes each request as that request was routed.
 * Over one HTTP/2 connection, a stream that must be denied is held by the delay while a second
 * stream (allowed) is routed; when the first resumes, rbac must judge its own headers, not the
 * connection's latest request.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as http2 from 'node:http2';
import type { Snapshot } from '../../src/snapshot/types.js';
import { startHttpUpstream, type HttpUpstream } from '../helpers/http.js';
import { staticEntry } from '../helpers/istio-yaml.js';
import { EDGE_GATEWAY_ARGS, startGateWithConfig, type TestGate } from '../helpers/tollgate.js';

function yaml(upstreamPort: number): string {
  return `${staticEntry('shop', 'edge', 'shop.test', 80, 'HTTP', upstreamPort)}---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: edge, namespace: edge}
spec:
  selector: {istio: egressgateway}
  servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: [shop.test]}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: shop, namespace: edge}
spec:
  hosts: [shop.test]
  gateways: [edge]
  http:
  - fault: {delay: {fixedDelay: 400ms, percentage: {value: 100}}}
    route: [{destination: {host: shop.test}}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: no-x-deny, namespace: edge}
spec:
  selector: {matchLabels: {istio: egressgateway}}
  action: DENY
  rules: [{when: [{key: "request.headers[x-deny]", values: ["yes"]}]}]
`;
}

/** The same snapshot with rbac moved right after fault in every HTTP chain. */
function rbacAfterFault(s: Snapshot): Snapshot {
  const copy = JSON.parse(JSON.stringify(s)) as { version: string; listeners: { filterChains: { filter: { type: string; httpFilters?: { name: string }[] } }[] }[] };
  for (const l of copy.listeners) {
    for (const c of l.filterChains) {
      const list = c.filter.httpFilters;
      if (c.filter.type !== 'http' || list === undefined) continue;
      const rbac = list.splice(list.findIndex((f) => f.name === 'rbac'), 1)[0]!;
      list.splice(list.findIndex((f) => f.name === 'fault') + 1, 0, rbac);
    }
  }
  copy.version = `${s.version}-rbac-after-fault`;
  return copy as unknown as Snapshot;
}

function h2Get(session: http2.ClientHttp2Session, path: string, headers: http2.OutgoingHttpHeaders): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = session.request({ ':method': 'GET', ':path': path, ':authority': 'shop.test', ...headers });
    req.on('response', (h) => resolve(Number(h[':status'])));
    req.on('error', reject);
    req.resume();
    req.end();
  });
}

describe('rbac moved behind a pausing filter still judges each stream by its own request', { concurrency: false }, () => {
  let up: HttpUpstream;
  let gate: TestGate;
  let cleanup: () => void;

  before(async () => {
    up = await startHttpUpstream('127.0.0.1', 0);
    const started = await startGateWithConfig(yaml(up.port), EDGE_GATEWAY_ARGS);
    gate = started.gate;
    cleanup = started.cfg.cleanup;
    const reordered = rbacAfterFault(gate.tg.runtime.current!.snapshot);
    await gate.tg.runtime.apply(reordered);
    const names = gate.tg.runtime.current!.snapshot.listeners.flatMap((l) => l.filterChains.map((c) => (c.filter.type === 'http' ? (c.filter.httpFilters ?? []).map((f) => f.name).join(',') : '')));
    assert.ok(names.some((n) => n.startsWith('fault,rbac,')), names.join(' | '));
  });

  after(async () => {
    await gate?.stop();
    await up?.close();
    cleanup?.();
  });

  it('a delayed stream with x-deny: yes is denied although an allowed stream was routed while it waited', async () => {
    const session = http2.connect(`http://127.0.0.1:${gate.port(80)}`);
    try {
      const denied = h2Get(session, '/first', { 'x-deny': 'yes' });
      await new Promise((r) => setTimeout(r, 50));
      const allowed = h2Get(session, '/second', {});
      assert.deepEqual(await Promise.all([denied, allowed]), [403, 200]);
    } finally {
      session.close();
    }
    const rec = await gate.waitForLog((l) => l.path === '/first');
    assert.equal(rec.tollgate_reason, 'rbac_denied');
    assert.equal(up.requests.filter((r) => r.url === '/first').length, 0);
  });
});
