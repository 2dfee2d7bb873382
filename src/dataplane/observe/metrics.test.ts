import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { MetricsRegistry } from './metrics.js';
import { DataPlaneMetrics } from './istio-metrics.js';
import { AccessLogger, emptyRecord, formatText } from './access-log.js';

describe('MetricsRegistry', () => {
  it('renders counters, gauges and histograms in Prometheus text format with escaped labels', () => {
    const r = new MetricsRegistry();
    const c = r.counter('x_total', 'help x', ['a']);
    const child = c.labels('q"u\\o\nte');
    child.inc();
    child.inc(2);
    assert.equal(c.labels('q"u\\o\nte'), child, 'children are cached');
    r.gauge('g', 'help g').labels().set(5);
    const h = r.histogram('h_ms', 'help h', ['k'], [1, 10]);
    h.labels('v').observe(0.5);
    h.labels('v').observe(5);
    h.labels('v').observe(50);
    const text = r.render();
    assert.match(text, /^# TYPE x_total counter$/m);
    assert.match(text, /^x_total\{a="q\\"u\\\\o\\nte"\} 3$/m);
    assert.match(text, /^g 5$/m);
    assert.match(text, /^h_ms_bucket\{k="v",le="1"\} 1$/m);
    assert.match(text, /^h_ms_bucket\{k="v",le="10"\} 2$/m);
    assert.match(text, /^h_ms_bucket\{k="v",le="\+Inf"\} 3$/m);
    assert.match(text, /^h_ms_sum\{k="v"\} 55.5$/m);
    assert.match(text, /^h_ms_count\{k="v"\} 3$/m);
  });

  it('refuses a wrong number of label values and a name registered with two types', () => {
    const r = new MetricsRegistry();
    const c = r.counter('c', 'h', ['a', 'b']);
    assert.throws(() => c.labels('only-one'));
    assert.equal(r.counter('c', 'h', ['a', 'b']), c);
    assert.throws(() => r.gauge('c', 'h'));
  });

  it('series limit: new label combinations past the limit are refused and counted, existing ones keep counting', () => {
    const r = new MetricsRegistry({ maxSeriesPerMetric: 3 });
    const c = r.counter('req_total', 'h', ['host']);
    for (let i = 0; i < 10; i++) c.labels(`h${i}`).inc();
    c.labels('h0').inc(5);
    const text = r.render();
    assert.equal(text.match(/^req_total\{/gm)?.length, 3, text);
    assert.match(text, /^req_total\{host="h0"\} 6$/m);
    assert.match(text, /^tollgate_metric_series_refused_total\{metric="req_total"\} 7$/m);
    assert.ok(c.isDetached(c.labels('h9')));
    assert.ok(!c.isDetached(c.labels('h1')));
  });

  it('DataPlaneMetrics: istio_* TCP and request families with Istio label names, tollgate_denied_total', () => {
    const r = new MetricsRegistry();
    const m = new DataPlaneMetrics(r, { role: 'gateway', namespace: 'istio-system', name: '', labels: { istio: 'egressgateway' } });
    const l = { destinationService: 'edition.cnn.com', requestProtocol: 'tcp' as const, responseFlags: '-' };
    m.tcpOpened(l);
    m.tcpClosed(l, 100, 20);
    m.recordRequest({ ...l, requestProtocol: 'http', responseCode: 200 }, 12, 0, 512);
    m.denied('sni_not_routed');
    const text = r.render();
    assert.match(text, /^istio_tcp_connections_opened_total\{reporter="source",source_workload="egressgateway",source_workload_namespace="istio-system",.*destination_service="edition.cnn.com",destination_service_name="edition".*\} 1$/m);
    assert.match(text, /^istio_tcp_sent_bytes_total\{.*\} 100$/m);
    assert.match(text, /^istio_tcp_received_bytes_total\{.*\} 20$/m);
    assert.match(text, /^istio_requests_total\{.*response_code="200".*\} 1$/m);
    assert.match(text, /^istio_request_duration_milliseconds_bucket\{.*le="25"\} 1$/m);
    assert.match(text, /^tollgate_denied_total\{reason="sni_not_routed"\} 1$/m);
  });
});

describe('AccessLogger', () => {
  it('writes one JSON line per record with Envoy field names, and Istio text format on request', () => {
    const lines: string[] = [];
    const rec = emptyRecord(Date.UTC(2024, 0, 2, 3, 4, 5, 6), '10.0.0.1:5555', '127.0.0.1:443');
    rec.requested_server_name = 'edition.cnn.com';
    rec.response_flags = 'NR';
    rec.tollgate_reason = 'sni_not_routed';
    const json = new AccessLogger({ format: 'json', out: { write: (s: string) => lines.push(s) } });
    const seen: unknown[] = [];
    const unsub = json.subscribe((r) => seen.push(r));
    json.log(rec);
    unsub();
    json.log(rec);
    json.flush(); // lines are batched per event-loop turn
    assert.equal(lines.join('').split('\n').length - 1, 2);
    lines.splice(0, lines.length, ...lines.join('').split(/(?<=\n)/));
    assert.ok(lines[0]!.endsWith('\n') && !lines[0]!.slice(0, -1).includes('\n'));
    const parsed = JSON.parse(lines[0]!) as Record<string, unknown>;
    for (const k of ['start_time', 'method', 'authority', 'path', 'protocol', 'response_code', 'response_flags', 'bytes_received', 'bytes_sent', 'duration', 'upstream_host', 'upstream_cluster', 'upstream_local_address', 'downstream_remote_address', 'requested_server_name', 'route_name', 'tollgate_reason']) {
      assert.ok(k in parsed, `field ${k}`);
    }
    assert.equal(parsed['start_time'], '2024-01-02T03:04:05.006Z');
    assert.equal(seen.length, 1);
    const text = formatText(rec);
    assert.equal(text, '[2024-01-02T03:04:05.006Z] "- - -" 0 NR sni_not_routed - "-" 0 0 0 - "-" "-" "-" "-" "-" - - 127.0.0.1:443 10.0.0.1:5555 edition.cnn.com -\n');
  });
});
