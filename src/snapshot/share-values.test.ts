import { test } from 'node:test';
import assert from 'node:assert/strict';
import { shareValues } from './share-values.js';

test('shareValues keeps every value and shape of parsed JSON, in place', () => {
  const text = JSON.stringify({ a: 'x', b: ['x', 'y', { c: 'x', d: [1, null, true, 'y'] }], e: null, f: 2, g: { h: { i: 'deep' } } });
  const parsed = JSON.parse(text) as Record<string, unknown>;
  const out = shareValues(parsed);
  assert.equal(out, parsed);
  assert.deepEqual(out, JSON.parse(text));
  assert.equal(shareValues('plain'), 'plain');
  assert.equal(shareValues(null), null);
});

test('shareValues makes equal values one object and leaves named objects and their holders distinct', () => {
  const route = (name: string, port: number) => ({ name, match: {}, action: { retries: { attempts: 2, retryOn: ['connect-failure'] }, clusters: [{ name: 'c', weight: 100 }] }, origin: { kind: 'VirtualService', name: 'vs', path: ['spec', 'http', 0] }, port });
  const text = JSON.stringify({ routes: [route('a', 80), route('b', 80), route('c', 81)], endpoints: [[{ address: '10.0.0.1', port: 80 }], [{ address: '10.0.0.1', port: 80 }], [{ address: '10.0.0.1', port: '80' }]] });
  const s = shareValues(JSON.parse(text) as { routes: ReturnType<typeof route>[]; endpoints: { address: string; port: number | string }[][] });
  assert.deepEqual(s, JSON.parse(text));
  const [a, b, c] = s.routes;
  assert.ok(a && b && c);
  assert.equal(a.match, b.match);
  assert.equal(a.action.retries, c.action.retries);
  assert.equal(a.origin.path, c.origin.path);
  // Named: the routes, the weighted cluster and the origins; and what holds a named object.
  assert.notEqual(a, b);
  assert.notEqual(a.origin, b.origin);
  assert.notEqual(a.action.clusters[0], b.action.clusters[0]);
  assert.notEqual(a.action, b.action);
  // A number and a string of the same digits are different values.
  assert.equal(s.endpoints[0], s.endpoints[1]);
  assert.notEqual(s.endpoints[0], s.endpoints[2]);
});

test('shareValues tells values apart whatever their property names hold', () => {
  // Both would read `x:'1,y:5,` if names stood in the key as text.
  const text = JSON.stringify([{ "x:'1,y": 5 }, { x: 'y', y: 5 }, { "x:'1,y": 5 }, { x: 'y', y: 5 }, { 'fd00::1': 'a' }, { 'fd00::1': 'b' }]);
  const s = shareValues(JSON.parse(text) as object[]);
  assert.deepEqual(s, JSON.parse(text));
  assert.equal(s[0], s[2]);
  assert.equal(s[1], s[3]);
  assert.notEqual(s[0], s[1]);
  assert.notEqual(s[4], s[5]);
});
