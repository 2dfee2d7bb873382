/**
 * The example HTTP filter (filters/add-response-header.ts) end to end: Gateway annotation
 * tollgate.io/response-header -> the listener's httpFilters -> compiled at apply -> every answer
 * carries the field, the upstream's and the proxy's own (404 NR); a route's typedPerFilterConfig
 * overrides it; an invalid value rejects the snapshot at start-up.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startHttpUpstream, hostRequest } from '../helpers/http.js';
import { docs, staticEntry } from '../helpers/istio-yaml.js';
import { startGateWithConfig, EDGE_GATEWAY_ARGS } from '../helpers/tollgate.js';
import { DEFAULT_HTTP_FILTERS } from '../../src/snapshot/types.js';
import { compileFilterChain, FilterSharedState } from '../../src/dataplane/http/filter-chain.js';

const gatewayWith = (annotation: string): string => `apiVersion: networking.istio.io/v1
kind: Gateway
metadata:
  name: edge
  namespace: edge
  annotations: {tollgate.io/response-header: "${annotation}"}
spec:
  selector: {istio: egressgateway}
  servers:
  - {port: {number: 80, name: http, protocol: HTTP}, hosts: [shop.test]}
`;

const vs = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: shop, namespace: edge}
spec:
  hosts: [shop.test]
  gateways: [edge]
  http:
  - match: [{uri: {prefix: /api}}]
    route: [{destination: {host: shop.test}}]
`;

describe('example filter add_response_header through tollgate run', { concurrency: false }, () => {
  it('every answer carries the field: the upstream\'s and a 404 from the proxy', async (t) => {
    const up = await startHttpUpstream('127.0.0.1', 0);
    const { gate, cfg } = await startGateWithConfig(docs(staticEntry('shop', 'edge', 'shop.test', 80, 'HTTP', up.port), gatewayWith('x-served-by: edge-1'), vs), EDGE_GATEWAY_ARGS);
    t.after(async () => {
      await gate.stop();
      await up.close();
      cfg.cleanup();
    });
    const filters = gate.tg.snapshot.listeners.flatMap((l) => l.filterChains).map((c) => (c.filter.type === 'http' ? c.filter.httpFilters?.map((f) => f.name) : undefined));
    assert.deepEqual(filters, [['fault', 'local_ratelimit', 'header_mutation', 'mirror', 'add_response_header', 'router']]);
    const ok = await hostRequest(gate.port(80), 'shop.test', { path: '/api/x' });
    assert.equal(ok.status, 200);
    assert.equal(ok.headers['x-served-by'], 'edge-1');
    const nr = await hostRequest(gate.port(80), 'shop.test', { path: '/other' });
    assert.equal(nr.status, 404);
    assert.equal(nr.headers['x-tollgate-reason'], 'route_not_found');
    assert.equal(nr.headers['x-served-by'], 'edge-1', 'local replies carry it too');
  });

  it('a route override wins; an invalid value is refused when the snapshot is compiled', () => {
    const route = { name: 'r', match: {}, action: { type: 'forward' as const, clusters: [] }, typedPerFilterConfig: { add_response_header: { name: 'x-route', value: 'one' } } };
    const list = [...DEFAULT_HTTP_FILTERS.slice(0, -1), { name: 'add_response_header', config: { name: 'x-served-by', value: 'edge-1' } }, { name: 'router' }];
    const chain = compileFilterChain(list, { name: 't', virtualHosts: [{ name: 'v', domains: ['*'], routes: [route] }] }, new FilterSharedState());
    assert.deepEqual(chain.plan(route).responseHeaders.map((b) => b.route), [{ name: 'x-route', value: 'one' }]);
    assert.deepEqual(chain.noRoute.responseHeaders.map((b) => b.route), [{ name: 'x-served-by', value: 'edge-1' }]);
    assert.throws(() => compileFilterChain([{ name: 'add_response_header', config: { name: 'Content-Length', value: '1' } }, { name: 'router' }], undefined, new FilterSharedState()), /not a field name the proxy may add/);
    assert.throws(() => compileFilterChain([{ name: 'router' }, { name: 'fault' }], undefined, new FilterSharedState()), /last filter must be router/);
    assert.throws(() => compileFilterChain([{ name: 'nope' }, { name: 'router' }], undefined, new FilterSharedState()), /unknown http filter "nope"/);
  });
});
