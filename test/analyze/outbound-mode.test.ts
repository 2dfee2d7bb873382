/**
 * Report-only mode from the Gateway annotation: analyze rejects a bad value, the snapshot carries
 * the mode, trace shows it, and the registry verdict (the data plane's own function) passes a host
 * outside the registry as a would-be denial only when the mode is on.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { analyzeModel } from '../../src/analyze/analyze.js';
import { CompiledSnapshot } from '../../src/dataplane/route/compile.js';
import { selectExplicitProxyHttpTarget, selectExplicitProxyTarget } from '../../src/dataplane/route/select.js';
import { parseTraceUrl, trace } from '../../src/trace/trace.js';
import { identity, loadYaml, snapshotOf } from '../helpers/pipeline.js';

const gatewayWith = (mode: string) => `
apiVersion: networking.istio.io/v1
kind: Gateway
metadata:
  name: egressgateway
  namespace: istio-system
  annotations: {tollgate.io/explicit-proxy: "3128", tollgate.io/outbound-mode: "${mode}"}
spec:
  selector: {istio: egressgateway}
  servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: ["*"]}]
`;
const gw = identity('gateway', 'istio-system', { istio: 'egressgateway' });

test('tollgate.io/outbound-mode: report -> explicit proxy reportOnly, policy.outboundMode, trace step; bad value is an analyze error', () => {
  const c = loadYaml(gatewayWith('report'));
  const snap = snapshotOf(c, gw);
  assert.equal(snap.policy.outboundMode, 'report');
  const filter = snap.listeners.flatMap((l) => l.filterChains).map((fc) => fc.filter).find((f) => f.type === 'explicit_proxy');
  assert.equal(filter?.type === 'explicit_proxy' && filter.reportOnly, true);
  const t = trace(c.model, snap, parseTraceUrl('http://x.example:3128/'));
  assert.equal(t.steps.find((s) => s.step === 'outbound mode')?.value, 'report-only');
  assert.ok(analyzeModel(c.model).some((d) => d.code === 'TG_OUTBOUND_MODE_REPORT' && d.severity === 'info'));

  const enforce = snapshotOf(loadYaml(gatewayWith('enforce')), gw);
  assert.equal(enforce.policy.outboundMode, undefined);
  const bad = loadYaml(gatewayWith('reprot'));
  const err = analyzeModel(bad.model).find((d) => d.code === 'TG_OUTBOUND_MODE_ANNOTATION');
  assert.equal(err?.severity, 'error');
  assert.equal(snapshotOf(bad, gw).policy.outboundMode, undefined, 'an unreadable mode enforces');
});

test('registry verdict: outside the registry -> 403 when enforcing, a report_only pass when reporting (plain HTTP and CONNECT)', () => {
  const compiled = new CompiledSnapshot(snapshotOf(loadYaml(gatewayWith('report')), gw));
  const denied = selectExplicitProxyHttpTarget(compiled, 'http', 'x.example', 80);
  assert.equal(denied.allowed === false && denied.reason, 'proxy_not_in_registry');
  const passed = selectExplicitProxyHttpTarget(compiled, 'http', 'x.example', 80, { sourceAddress: '203.0.113.9' });
  assert.equal(passed.allowed, true);
  assert.equal(passed.allowed && passed.wouldDeny, 'proxy_not_in_registry');
  assert.equal(passed.allowed && passed.cluster?.name, 'report_only|80||x.example');
  assert.equal(passed.allowed && passed.cluster?.sourceAddress, '203.0.113.9');
  assert.equal(selectExplicitProxyHttpTarget(compiled, 'https', 'x.example', 443, { sourceAddress: undefined }).allowed, false, 'https:// still needs origination');
  const tunnel = selectExplicitProxyTarget(compiled, [443], 'x.example', 443, { sourceAddress: undefined });
  assert.equal(tunnel.allowed && tunnel.wouldDeny, 'connect_not_in_registry');
  assert.equal(selectExplicitProxyTarget(compiled, [443], 'x.example', 8443, { sourceAddress: undefined }).allowed, false, 'connect ports still apply');
});
