import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { cleanRequestHeaders, type HeaderHygieneResult } from './header-hygiene.js';

function clean(headers: string[], edge: boolean, action: 'allow' | 'drop' | 'reject'): HeaderHygieneResult & { headers: string[] } {
  const out: HeaderHygieneResult = { underscore: 0, envoy: 0, rejected: undefined };
  const copy = [...headers];
  cleanRequestHeaders(copy, edge, action, out);
  return { ...out, headers: copy };
}

const MIXED = ['Host', 'a', 'Transfer_Encoding', 'chunked', 'X-Envoy-Retry-On', '5xx', 'accept', '*/*', 'x-envoy-internal', 'true', 'X_Forwarded_For', '1.2.3.4', 'X-Envoyish', 'k'];

describe('cleanRequestHeaders', () => {
  it('drop at an edge: underscore names and x-envoy-* go, everything else stays in order', () => {
    const r = clean(MIXED, true, 'drop');
    assert.deepEqual(r.headers, ['Host', 'a', 'accept', '*/*', 'X-Envoyish', 'k']);
    assert.equal(r.underscore, 2);
    assert.equal(r.envoy, 2);
  });

  it('a sidecar keeps x-envoy-* (mesh callers) but still drops underscore names', () => {
    const r = clean(MIXED, false, 'drop');
    assert.deepEqual(r.headers, ['Host', 'a', 'X-Envoy-Retry-On', '5xx', 'accept', '*/*', 'x-envoy-internal', 'true', 'X-Envoyish', 'k']);
    assert.equal(r.envoy, 0);
  });

  it('reject names the first underscore field; allow keeps them', () => {
    assert.equal(clean(MIXED, true, 'reject').rejected, 'Transfer_Encoding');
    const r = clean(MIXED, false, 'allow');
    assert.deepEqual(r.headers, MIXED);
    assert.equal(r.rejected, undefined);
  });

  it('a clean list is left alone (no copy, nothing counted)', () => {
    const h = ['Host', 'a', 'Accept', '*/*'];
    const out: HeaderHygieneResult = { underscore: 0, envoy: 0, rejected: undefined };
    cleanRequestHeaders(h, true, 'drop', out);
    assert.deepEqual(h, ['Host', 'a', 'Accept', '*/*']);
    assert.equal(out.underscore + out.envoy, 0);
  });
});
