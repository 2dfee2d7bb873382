import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { AccessLogger, emptyRecord, formatJson, type AccessLogRecord } from './access-log.js';

describe('access log JSON line', () => {
  it('formatJson gives the same JSON value as JSON.stringify, escaping what needs it', () => {
    const r: AccessLogRecord = emptyRecord(Date.UTC(2026, 0, 2, 3, 4, 5, 6), '127.0.0.1:1', '127.0.0.1:2');
    r.method = 'GET';
    r.path = '/a?q="x"\\y';
    r.authority = 'example.com';
    r.user_agent = 'ua \u00e9 "quoted" \u0001';
    r.tollgate_reason = 'route_not_found';
    r.upstream_service_time = null;
    r.response_code_details = 'line\nbreak';
    const line = formatJson(r);
    assert.ok(line.endsWith('}\n'));
    assert.deepEqual(JSON.parse(line), JSON.parse(JSON.stringify(r)));
  });

  it('batches lines: one write per flush interval, or as soon as 64 KiB are pending', async () => {
    const writes: string[] = [];
    const log = new AccessLogger({ format: 'json', out: { write: (s: string) => writes.push(s) } });
    const r = emptyRecord(0, 'a', 'b');
    log.log(r);
    log.log(r);
    assert.equal(writes.length, 0, 'nothing written synchronously');
    await new Promise((res) => setImmediate(res));
    log.log(r);
    assert.equal(writes.length, 0, 'lines of several event-loop turns wait for the same write');
    await new Promise((res) => setTimeout(res, 120));
    assert.equal(writes.length, 1, 'written within the flush interval');
    assert.equal(writes[0]!.split('\n').length, 4);
    const line = writes[0]!.split('\n')[0]!;
    for (let i = 0; i < Math.ceil(65536 / line.length); i++) log.log(r);
    assert.equal(writes.length, 2, '64 KiB pending: written at once');
    assert.equal(log.needsRecords, false);
    log.subscribe(() => {});
    assert.equal(log.needsRecords, true);
  });
});
