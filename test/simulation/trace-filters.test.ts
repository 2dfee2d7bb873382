/**
 * `trace` asks each HTTP filter of the listener's chain what it does on the matched route (the
 * filter's explain(), on the per-route config the data plane compiled): fault, local rate limit,
 * header mutation, mirror, the router's retries and a Gateway's response header all show, in
 * chain order; a route without them shows none of those steps.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runTrace } from '../../src/cli/trace.js';
import { buildSnapshot } from '../../src/snapshot/build.js';
import { identity, loadYaml } from '../helpers/pipeline.js';

const YAML = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: api, namespace: egress}
spec: {hosts: [api.test, copy.test], ports: [{number: 80, name: http, protocol: HTTP}], resolution: STATIC, endpoints: [{address: 127.0.0.1, ports: {http: 9}}]}
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata:
  name: egress
  namespace: egress
  annotations: {tollgate.io/response-header: "x-served-by: egress-a"}
spec:
  selector: {istio: egressgateway}
  servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: [api.test]}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: api
  namespace: egress
  annotations: {tollgate.io/local-rate-limit: "10/s burst=20"}
spec:
  hosts: [api.test]
  gateways: [egress]
  http:
  - name: busy
    match: [{uri: {prefix: /busy}}]
    fault: {delay: {fixedDelay: 2s, percentage: {value: 10}}, abort: {httpStatus: 503, percentage: {value: 5}}}
    headers: {request: {set: {x-team: payments}}, response: {remove: [server]}}
    mirror: {host: copy.test}
    mirrorPercentage: {value: 25}
    retries: {attempts: 3, retryOn: 5xx}
    route: [{destination: {host: api.test}}]
  - name: plain
    route: [{destination: {host: api.test}}]
`;

const POLICIES = `---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: no-delete, namespace: egress}
spec:
  selector: {matchLabels: {istio: egressgateway}}
  action: DENY
  rules: [{to: [{operation: {methods: [DELETE]}}]}]
`;

async function stepsFor(path: string, extra = '', method = 'GET'): Promise<{ step: string; value: string }[]> {
  const loaded = loadYaml(YAML + extra);
  assert.deepEqual(loaded.diagnostics.filter((d) => d.severity === 'error'), []);
  const snapshot = buildSnapshot(loaded.model, identity('gateway', 'egress', { istio: 'egressgateway' }));
  const r = await runTrace(loaded.model, snapshot, { scheme: 'http', host: 'api.test', port: 80, path, query: '', method, headers: {} }, { allowCidrs: [], dnsServers: [] });
  return r.steps.map((s) => ({ step: s.step, value: s.value }));
}

test('trace shows every filter that acts on the route, in chain order, from the filters themselves', async () => {
  const steps = (await stepsFor('/busy/x')).filter((s) => s.step.startsWith('http filter '));
  assert.deepEqual(steps.map((s) => s.step), ['http filter fault', 'http filter local_ratelimit', 'http filter header_mutation', 'http filter mirror', 'http filter add_response_header', 'http filter router']);
  const text = (name: string): string => steps.find((s) => s.step === `http filter ${name}`)?.value ?? '';
  assert.match(text('fault'), /abort 503 for 5%.*delay 2000 ms for 10%/);
  assert.match(text('local_ratelimit'), /10 per 1000 ms, burst 20.*429 RL rate_limited/);
  assert.match(text('header_mutation'), /request: set x-team; response: remove server/);
  assert.match(text('mirror'), /mirror 25% to outbound\|80\|\|copy\.test/);
  assert.match(text('add_response_header'), /x-served-by: egress-a/);
  assert.match(text('router'), /retries: up to 3/);
});

test('a route without fault, mirror or mutations shows only the filters that still act on it', async () => {
  const steps = (await stepsFor('/other')).filter((s) => s.step.startsWith('http filter '));
  assert.deepEqual(steps.map((s) => s.step), ['http filter local_ratelimit', 'http filter add_response_header', 'http filter router']);
});

test('with an AuthorizationPolicy the rbac filter runs first; without one it is not in any chain', async () => {
  const loaded = loadYaml(YAML + POLICIES);
  const gw = identity('gateway', 'egress', { istio: 'egressgateway' });
  const chains = (snap: ReturnType<typeof buildSnapshot>): string[][] => snap.listeners.flatMap((l) => l.filterChains.map((c) => (c.filter.type === 'http' ? (c.filter.httpFilters ?? []).map((f) => f.name) : [])));
  assert.ok(chains(buildSnapshot(loaded.model, gw)).every((names) => names[0] === 'rbac'));
  assert.ok(chains(buildSnapshot(loadYaml(YAML).model, gw)).every((names) => !names.includes('rbac')));
  // A workload the policy does not select has no rbac filter either.
  assert.ok(chains(buildSnapshot(loaded.model, identity('gateway', 'egress', { istio: 'ingressgateway' }))).every((names) => !names.includes('rbac')));

  const steps = await stepsFor('/other', POLICIES, 'DELETE');
  const filters = steps.filter((s) => s.step.startsWith('http filter '));
  assert.deepEqual(filters.map((s) => s.step), ['http filter rbac', 'http filter local_ratelimit', 'http filter add_response_header', 'http filter router']);
  assert.match(filters[0]!.value, /DENY egress\/no-delete/);
  assert.match(steps.find((s) => s.step === 'authorization')?.value ?? '', /denied by ns\[egress\]-policy\[no-delete\]-rule\[0\]/);
});
