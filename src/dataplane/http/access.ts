/**
 * Access-log helpers for the HTTP engine: the record for requests whose head never parsed (the
 * parse-error lines).
 */
import { emptyRecord, type AccessLogRecord } from '../observe/access-log.js';

/** A record for a connection-level HTTP failure (parse error, header timeout): no method/path known. */
export function connectionRecord(startMs: number, remote: string, local: string, sni: string | undefined, routeName: string): AccessLogRecord {
  const r = emptyRecord(startMs, remote, local);
  r.requested_server_name = sni ?? null;
  r.route_name = routeName;
  return r;
}
