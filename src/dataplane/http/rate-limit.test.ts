import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseLocalRateLimit } from '../../config/rate-limit.js';
import { shadowHost } from './router/shadow.js';
import { CONTINUE, STOP } from './filter.js';
import { compileFilterChain, FilterSharedState } from './filter-chain.js';
import { localRateLimitFilter } from './filters/local-rate-limit.js';
import type { StreamCallbacks } from './stream-api.js';
import { LocalRateLimiter } from './rate-limit.js';
import { DEFAULT_HTTP_FILTERS, type Route } from '../../snapshot/types.js';

test('tollgate.io/local-rate-limit values', () => {
  assert.deepEqual(parseLocalRateLimit('100/s'), { tokensPerFill: 100, fillIntervalMs: 1000, maxTokens: 100 });
  assert.deepEqual(parseLocalRateLimit(' 100 / s  burst=200 '), { tokensPerFill: 100, fillIntervalMs: 1000, maxTokens: 200 });
  assert.deepEqual(parseLocalRateLimit('6000/m'), { tokensPerFill: 6000, fillIntervalMs: 60_000, maxTokens: 6000 });
  assert.deepEqual(parseLocalRateLimit('10/10s'), { tokensPerFill: 10, fillIntervalMs: 10_000, maxTokens: 10 });
  assert.deepEqual(parseLocalRateLimit('1000/h burst=1000'), { tokensPerFill: 1000, fillIntervalMs: 3_600_000, maxTokens: 1000 });
  for (const bad of ['', '100', '100/d', 'fast', '0/s', '100/s burst=50', '5/10ms', '100/s burst', '-1/s', '1.5/s']) {
    assert.ok('error' in parseLocalRateLimit(bad), bad);
  }
});

test('token bucket: burst, continuous refill, cap, O(1) state per route', () => {
  let now = 0;
  const rl = new LocalRateLimiter(() => now);
  const limit = { tokensPerFill: 2, fillIntervalMs: 1000, maxTokens: 4 };
  const r = (n: number): number[] => Array.from({ length: n }, () => rl.take('r', limit));
  assert.deepEqual(r(4), [-1, -1, -1, -1]);
  assert.equal(rl.take('r', limit), 500); // next token in 500 ms
  now = 499;
  assert.ok(rl.take('r', limit) > 0);
  now = 500;
  assert.equal(rl.take('r', limit), -1);
  now = 100_000; // refills up to the burst only
  assert.deepEqual(r(5).map((x) => x < 0), [true, true, true, true, false]);
  assert.equal(rl.take('other', limit), -1, 'routes have their own buckets');
  // An equal limit from a newer snapshot keeps the bucket; a changed one starts full.
  assert.ok(rl.take('r', { ...limit }) > 0);
  assert.equal(rl.take('r', { ...limit, maxTokens: 5 }), -1);
  assert.equal(rl.size, 2);
});

test('local_ratelimit filter: 429 RL rate_limited with the x-ratelimit headers; runs after fault, so fault aborts are not counted', () => {
  const now = 0;
  const limiter = new LocalRateLimiter(() => now);
  const route: Route = { name: 'ns/vs:0', match: {}, action: { type: 'forward', clusters: [], fault: { abort: { status: 503, percent: 100 } } }, typedPerFilterConfig: { local_ratelimit: { tokensPerFill: 1, fillIntervalMs: 2500, maxTokens: 1 } } };
  const rc = localRateLimitFilter.forRoute(undefined, route, undefined)!;
  const f = localRateLimitFilter.create(undefined, { slot: 1, shared: limiter });
  const replies: unknown[][] = [];
  const s = { sendLocalReply: (...a: unknown[]) => void replies.push(a) } as unknown as StreamCallbacks;
  assert.equal(f.onRequestHeaders!(s, rc), CONTINUE);
  assert.equal(f.onRequestHeaders!(s, rc), STOP);
  assert.deepEqual(replies[0]!.slice(0, 3), [429, 'RL', 'rate_limited']);
  assert.deepEqual(replies[0]![4], ['x-ratelimit-limit', '1', 'x-ratelimit-remaining', '0', 'x-ratelimit-reset', '3', 'retry-after', '3']);
  // The default chain orders fault before local_ratelimit: an aborted request never takes a token.
  const chain = compileFilterChain(DEFAULT_HTTP_FILTERS, { name: 't', virtualHosts: [{ name: 'v', domains: ['*'], routes: [route] }] }, new FilterSharedState());
  assert.deepEqual(chain.plan(route).names, ['fault', 'local_ratelimit', 'router']);
  assert.throws(() => localRateLimitFilter.forRoute(undefined, { ...route, typedPerFilterConfig: { local_ratelimit: { tokensPerFill: 0 } } }, undefined), /positive numbers/);
});

test('mirror Host: -shadow before any port (Envoy)', () => {
  assert.equal(shadowHost('api.example'), 'api.example-shadow');
  assert.equal(shadowHost('api.example:8080'), 'api.example-shadow:8080');
  assert.equal(shadowHost('[::1]:8080'), '[::1]-shadow:8080');
  assert.equal(shadowHost('10.0.0.1'), '10.0.0.1-shadow');
});
