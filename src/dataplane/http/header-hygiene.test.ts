import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { applyHeaderHygiene, cleanRequestHeaders, type HeaderHygieneResult } from './header-hygiene.js';
import type { RequestHead } from './head.js';
import { HttpParser } from './parser.js';
import type { EngineContext } from './stream-api.js';

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

describe('applyHeaderHygiene on heads kept as raw field lines', () => {
  const engineWith = (action: 'allow' | 'drop' | 'reject'): EngineContext => ({ opts: { headersWithUnderscores: action }, metrics: { headersDropped: () => {} } }) as unknown as EngineContext;

  function parseHead(text: string, split: boolean): RequestHead {
    let head: RequestHead | undefined;
    const p = new HttpParser('request', { onHead: (h) => (head = h), onBody: () => {}, onMessageComplete: () => {}, onError: (e) => assert.fail(e.message) });
    const b = Buffer.from(text, 'latin1');
    if (split) for (let i = 0; i < b.length; i++) p.execute(b.subarray(i, i + 1));
    else p.execute(b);
    assert.ok(head);
    return head;
  }

  it('removes, counts and rejects exactly as on strings; a clean raw head stays raw', () => {
    const texts = [`GET / HTTP/1.1\r\n${pairsOf(MIXED)}\r\n`, 'GET / HTTP/1.1\r\nHost: a\r\nAccept: */*\r\nX-Envoyish: k\r\n\r\n', 'GET / HTTP/1.1\r\nHost: a\r\nx-envoy-internal: true\r\n\r\n'];
    for (const text of texts) {
      for (const edge of [false, true]) {
        for (const action of ['allow', 'drop', 'reject'] as const) {
          const raw = parseHead(text, false);
          const strings = parseHead(text, true);
          assert.ok(raw.raw !== undefined && strings.raw === undefined);
          const a: HeaderHygieneResult = { underscore: 0, envoy: 0, rejected: undefined };
          const b: HeaderHygieneResult = { underscore: 0, envoy: 0, rejected: undefined };
          const ea = applyHeaderHygiene(raw, edge, engineWith(action), a);
          const eb = applyHeaderHygiene(strings, edge, engineWith(action), b);
          assert.deepEqual(a, b, `${text} ${edge} ${action}`);
          assert.equal(ea?.message, eb?.message);
          if (ea !== undefined) continue;
          assert.deepEqual(raw.headers, strings.headers);
          assert.equal(raw.raw === undefined, a.underscore + a.envoy > 0, 'raw lines are given up only when a field was removed');
        }
      }
    }
  });
});

function pairsOf(h: string[]): string {
  let s = '';
  for (let i = 0; i < h.length; i += 2) s += `${h[i]}: ${h[i + 1]}\r\n`;
  return s;
}
