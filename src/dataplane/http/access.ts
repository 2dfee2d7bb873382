/**
 * Access-log helpers for the HTTP engine: the ISO start time (cached per millisecond: requests that
 * start in the same millisecond share one string; the date part is formatted once per second) and
 * the record for requests whose head never parsed (the parse-error lines).
 */
import { emptyRecord, type AccessLogRecord } from '../observe/access-log.js';

let lastMs = -1;
let lastIso = '';
let lastSecond = -1;
/** "2026-12-02T01:02:03." of lastSecond: only the milliseconds change within a second. */
let secondPrefix = '';
const MILLIS = Array.from({ length: 1000 }, (_, i) => String(i).padStart(3, '0'));

export function isoTime(ms: number): string {
  if (ms === lastMs) return lastIso;
  lastMs = ms;
  const second = Math.floor(ms / 1000);
  if (second !== lastSecond) {
    lastSecond = second;
    secondPrefix = new Date(second * 1000).toISOString().slice(0, 20);
  }
  lastIso = secondPrefix + MILLIS[ms - second * 1000]! + 'Z';
  return lastIso;
}

/** A record for a connection-level HTTP failure (parse error, header timeout): no method/path known. */
export function connectionRecord(startMs: number, remote: string, local: string, sni: string | undefined, routeName: string): AccessLogRecord {
  const r = emptyRecord(startMs, remote, local);
  r.requested_server_name = sni ?? null;
  r.route_name = routeName;
  return r;
}
