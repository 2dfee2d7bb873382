/** Unit tests: outlier detection, connection-pool admission, secret redaction, TLS contexts. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Cluster } from '../../snapshot/types.js';
import { redactSnapshot } from '../../snapshot/secrets.js';
import { ADMIT_GO, ADMIT_OVERFLOW, ADMIT_QUEUED, CircuitBreakers } from './circuit-breaker.js';
import { hashKeyOf } from './hash-lb.js';
import { OutlierDetector } from './outlier.js';
import { UpstreamTlsContexts } from './tls-context.js';

const base: Cluster = { name: 'c', type: 'STATIC', serviceHost: 'h', port: 80, protocol: 'HTTP', connectTimeoutMs: 1000, lbPolicy: 'ROUND_ROBIN', explicitAddresses: true };

describe('outlier detection', () => {
  const cluster: Cluster = { ...base, outlierDetection: { consecutive5xxErrors: 3, consecutiveGatewayErrors: 0, intervalMs: 1000, baseEjectionTimeMs: 10_000, maxEjectionPercent: 50 } };
  it('ejects after N consecutive 5xx, a success resets the count, ejection time grows and ends', () => {
    let now = 1000;
    const o = new OutlierDetector(() => now);
    o.noteHostCount('c', 2);
    o.report(cluster, 'a', 500);
    o.report(cluster, 'a', 500);
    o.report(cluster, 'a', 200);
    o.report(cluster, 'a', 503);
    o.report(cluster, 'a', 0);
    assert.equal(o.isEjected('c', 'a', now), false);
    assert.equal(o.report(cluster, 'a', 502), true);
    assert.equal(o.isEjected('c', 'a', now), true);
    now += 10_001;
    assert.equal(o.isEjected('c', 'a', now), false);
    for (let i = 0; i < 3; i++) o.report(cluster, 'a', 500);
    assert.equal(o.isEjected('c', 'a', now + 19_000), true, 'second ejection lasts 2 x base');
  });
  it('maxEjectionPercent: the second of two endpoints is not ejected at 50%', () => {
    const o = new OutlierDetector(() => 0);
    o.noteHostCount('c', 2);
    for (let i = 0; i < 3; i++) o.report(cluster, 'a', 500);
    for (let i = 0; i < 3; i++) o.report(cluster, 'b', 500);
    assert.equal(o.isEjected('c', 'a', 0), true);
    assert.equal(o.isEjected('c', 'b', 0), false);
  });
  it('gateway errors count 502/503/504 and local failures only', () => {
    const gw: Cluster = { ...base, outlierDetection: { consecutive5xxErrors: 0, consecutiveGatewayErrors: 2, intervalMs: 1000, baseEjectionTimeMs: 1000, maxEjectionPercent: 100 } };
    const o = new OutlierDetector(() => 0);
    o.report(gw, 'a', 500);
    o.report(gw, 'a', 500);
    assert.equal(o.isEjected('c', 'a', 0), false);
    o.report(gw, 'a', 0);
    o.report(gw, 'a', 504);
    assert.equal(o.isEjected('c', 'a', 0), true);
  });
});

describe('connection-pool admission', () => {
  const cluster: Cluster = { ...base, connectionPool: { maxConnections: 1, maxPendingRequests: 1 } };
  it('one in flight, one waiting, the rest overflow; done() promotes the waiter', async () => {
    const b = new CircuitBreakers();
    const [x, y, z] = [{}, {}, {}];
    let resumed = 0;
    assert.equal(b.admit(x, cluster, () => {}), ADMIT_GO);
    assert.equal(b.admit(y, cluster, () => resumed++), ADMIT_QUEUED);
    assert.equal(b.admit(z, cluster, () => {}), ADMIT_OVERFLOW);
    b.done(x);
    await new Promise((r) => queueMicrotask(() => r(undefined)));
    assert.equal(resumed, 1);
    assert.equal(b.admit(y, cluster, () => {}), ADMIT_GO);
    assert.deepEqual(b.describe('c'), { active: 1, pending: 0, retries: 0 });
    b.done(y);
    b.done(y);
    assert.deepEqual(b.describe('c'), { active: 0, pending: 0, retries: 0 });
  });
  it('a waiter that goes away leaves the queue', () => {
    const b = new CircuitBreakers();
    const [x, y] = [{}, {}];
    b.admit(x, cluster, () => {});
    b.admit(y, cluster, () => assert.fail('resumed after done'));
    b.done(y);
    b.done(x);
    assert.deepEqual(b.describe('c'), { active: 0, pending: 0, retries: 0 });
  });
  it('maxRetries: one retry slot per request until done(); none free -> overflow', () => {
    const b = new CircuitBreakers();
    const c2: Cluster = { ...base, connectionPool: { maxRetries: 1 } };
    const [x, y] = [{}, {}];
    assert.equal(b.retry(x, c2), true);
    assert.equal(b.retry(x, c2), true, 'the holder retries again on its slot');
    assert.equal(b.retry(y, c2), false);
    b.done(x);
    b.done(x);
    assert.equal(b.retry(y, c2), true);
    assert.equal(b.retry({}, cluster), true, 'no maxRetries: unlimited');
  });
});

describe('consistent hash keys', () => {
  const facts = { headers: ['Host', 'x', 'X-User', 'alice', 'Cookie', 'a=1; sid=s42'], path: '/p?x=1&tenant=t7', sourceIp: '10.0.0.9' };
  it('reads header, cookie, source IP and query parameter; absent -> undefined', () => {
    assert.equal(hashKeyOf({ header: 'x-user' }, facts), 'alice');
    assert.equal(hashKeyOf({ cookie: { name: 'sid' } }, facts), 's42');
    assert.equal(hashKeyOf({ sourceIp: true }, facts), '10.0.0.9');
    assert.equal(hashKeyOf({ queryParameter: 'tenant' }, facts), 't7');
    assert.equal(hashKeyOf({ header: 'x-none' }, facts), undefined);
    assert.equal(hashKeyOf(undefined, facts), undefined);
  });
});

describe('secrets', () => {
  it('views never print secret values, only a fingerprint', () => {
    const r = redactSnapshot({ secrets: [{ name: 'ns/s', privateKey: '-----BEGIN PRIVATE KEY-----x', certificateChain: 'c' }] });
    const text = JSON.stringify(r);
    assert.ok(!text.includes('BEGIN PRIVATE KEY'));
    assert.match(text, /redacted sha256:[0-9a-f]{12}/);
  });
  it('a missing credentialName Secret is an error, not a silent plain connection', () => {
    const c = new UpstreamTlsContexts();
    c.update([]);
    const r = c.contextFor({ mode: 'MUTUAL', credentialName: 'ns/missing' });
    assert.ok(r instanceof Error && /no such Secret/.test(r.message));
  });
});
