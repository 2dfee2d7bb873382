import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MetricsRegistry } from './metrics.js';
import { MAX_DESTINATIONS, OVERFLOW_HOST, WouldDenyTable } from './would-deny.js';

test('would-deny table: evidence per host:port; past MAX_DESTINATIONS the metric and the table stop growing (host "other")', () => {
  const registry = new MetricsRegistry();
  const counter = registry.counter('tollgate_would_deny_total', 'h', ['destination_host', 'source_namespace', 'protocol']);
  let now = 1_000;
  const t = new WouldDenyTable(counter, () => now);
  t.record('api.example', 443, 'TLS', 'shop');
  now = 2_000;
  t.record('api.example', 443, 'TLS', 'pay');
  assert.deepEqual(t.snapshot(), [{ host: 'api.example', port: 443, protocol: 'TLS', count: 2, firstSeen: new Date(1_000).toISOString(), lastSeen: new Date(2_000).toISOString(), namespaces: ['pay', 'shop'] }]);
  for (let i = 0; i < MAX_DESTINATIONS + 500; i++) t.record(`h${i}.scan.example`, 80, 'HTTP', 'shop');
  const rows = t.snapshot();
  assert.equal(rows.length, MAX_DESTINATIONS + 1, 'the cap plus one overflow row');
  const other = rows.find((r) => r.host === OVERFLOW_HOST);
  assert.equal(other?.count, 501);
  const series = registry.render().split('\n').filter((l) => l.startsWith('tollgate_would_deny_total{'));
  assert.ok(series.length <= MAX_DESTINATIONS + 2, `series bounded (${series.length})`);
  assert.ok(series.includes('tollgate_would_deny_total{destination_host="other",source_namespace="shop",protocol="http"} 501'));
  t.record('api.example', 443, 'TLS', 'shop');
  assert.equal(t.snapshot().find((r) => r.host === 'api.example')?.count, 3, 'known destinations keep counting past the cap');
});
