/**
 * deploy/grafana/tollgate-dashboard.json queries only metric names the data plane exports (the
 * registry's own HELP lines), so a renamed metric breaks this test rather than a user's panel.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DataPlaneMetrics } from '../../src/dataplane/observe/istio-metrics.js';
import { MetricsRegistry } from '../../src/dataplane/observe/metrics.js';
import { ROOT } from '../helpers/pipeline.js';

interface Panel {
  readonly title: string;
  readonly targets: readonly { readonly expr: string }[];
}

test('Grafana dashboard: valid JSON, every queried metric is exported by the data plane', () => {
  const dash = JSON.parse(readFileSync(join(ROOT, 'deploy/grafana/tollgate-dashboard.json'), 'utf8')) as { panels: Panel[]; uid: string };
  assert.equal(dash.uid, 'tollgate-egress');
  const registry = new MetricsRegistry();
  new DataPlaneMetrics(registry, { role: 'gateway', namespace: 'egress', name: '', labels: {} });
  const exported = new Set([...registry.render().matchAll(/^# TYPE (\S+) (\w+)$/gm)].flatMap((m) => (m[2] === 'histogram' ? [`${m[1]}_bucket`, `${m[1]}_sum`, `${m[1]}_count`] : [m[1]!])));
  const used = new Set<string>();
  for (const p of dash.panels) {
    assert.ok(p.targets.length > 0, `panel ${p.title} has a query`);
    for (const t of p.targets) for (const m of t.expr.matchAll(/\b((?:istio|tollgate)_[a-z_]+)\b/g)) used.add(m[1]!);
  }
  assert.ok(used.has('tollgate_would_deny_total') && used.has('tollgate_denied_total') && used.has('istio_requests_total'));
  assert.deepEqual([...used].filter((m) => !exported.has(m)), [], 'metrics the dashboard queries but nothing exports');
});
