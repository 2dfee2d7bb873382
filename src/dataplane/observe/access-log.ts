/**
 * Access log: one line per connection (L4) or request (HTTP) on stdout, with Envoy's field names.
 * `json` writes the record as JSON (Istio's JSON encoding: null for "not applicable");
 * `text` writes Istio's default text format (Envoy's default plus upstream/downstream columns),
 * with tollgate_reason in the %RESPONSE_CODE_DETAILS% column.
 *
 * Records are also published on diagnostics_channel `tollgate:access` and to in-process
 * subscribers (tests), so nothing has to parse stdout to observe the data plane.
 */
import { channel } from 'node:diagnostics_channel';

export interface AccessLogRecord {
  start_time: string;
  method: string | null;
  authority: string | null;
  path: string | null;
  protocol: string | null;
  response_code: number;
  response_flags: string;
  bytes_received: number;
  bytes_sent: number;
  duration: number;
  upstream_host: string | null;
  upstream_cluster: string | null;
  upstream_local_address: string | null;
  downstream_remote_address: string;
  downstream_local_address: string;
  requested_server_name: string | null;
  route_name: string | null;
  tollgate_reason?: string;
  user_agent?: string | null;
  x_forwarded_for?: string | null;
  request_id?: string | null;
  upstream_service_time?: number | null;
  response_code_details?: string | null;
  upstream_transport_failure_reason?: string | null;
  connection_termination_details?: string | null;
}

export type AccessLogFormat = 'json' | 'text';

const accessChannel = channel('tollgate:access');

export interface AccessLoggerOptions {
  readonly format: AccessLogFormat;
  readonly out?: { write(s: string): unknown };
  /** Disable writing (the records still reach subscribers). */
  readonly silent?: boolean;
}

export class AccessLogger {
  private readonly format: AccessLogFormat;
  private readonly out: { write(s: string): unknown };
  private readonly silent: boolean;
  private readonly subscribers = new Set<(r: AccessLogRecord) => void>();

  constructor(opts: AccessLoggerOptions) {
    this.format = opts.format;
    this.out = opts.out ?? process.stdout;
    this.silent = opts.silent === true;
  }

  log(r: AccessLogRecord): void {
    if (!this.silent) this.out.write(this.format === 'json' ? JSON.stringify(r) + '\n' : formatText(r));
    if (this.subscribers.size > 0) for (const fn of this.subscribers) fn(r);
    if (accessChannel.hasSubscribers) accessChannel.publish(r);
  }

  subscribe(fn: (r: AccessLogRecord) => void): () => void {
    this.subscribers.add(fn);
    return () => this.subscribers.delete(fn);
  }
}

const dash = (v: string | number | null | undefined): string => (v === null || v === undefined || v === '' ? '-' : String(v));

/** Istio's default text access log format (proxyconfig accessLogFormat default). */
export function formatText(r: AccessLogRecord): string {
  return (
    `[${r.start_time}] "${dash(r.method)} ${dash(r.path)} ${dash(r.protocol)}" ${r.response_code} ${dash(r.response_flags)} ` +
    `${dash(r.tollgate_reason ?? r.response_code_details)} ${dash(r.connection_termination_details)} "${dash(r.upstream_transport_failure_reason)}" ` +
    `${r.bytes_received} ${r.bytes_sent} ${r.duration} ${dash(r.upstream_service_time)} "${dash(r.x_forwarded_for)}" "${dash(r.user_agent)}" ` +
    `"${dash(r.request_id)}" "${dash(r.authority)}" "${dash(r.upstream_host)}" ${dash(r.upstream_cluster)} ${dash(r.upstream_local_address)} ` +
    `${dash(r.downstream_local_address)} ${dash(r.downstream_remote_address)} ${dash(r.requested_server_name)} ${dash(r.route_name)}\n`
  );
}

/** "ip:port" with brackets for IPv6; null when the address is unknown. */
export function hostPort(ip: string | undefined, port: number | undefined): string | null {
  if (ip === undefined || ip === '' || port === undefined) return null;
  return ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`;
}

/** A record with every field at its "not applicable" value; callers fill what they know. */
export function emptyRecord(startTime: number, downstreamRemote: string, downstreamLocal: string): AccessLogRecord {
  return {
    start_time: new Date(startTime).toISOString(),
    method: null,
    authority: null,
    path: null,
    protocol: null,
    response_code: 0,
    response_flags: '-',
    bytes_received: 0,
    bytes_sent: 0,
    duration: 0,
    upstream_host: null,
    upstream_cluster: null,
    upstream_local_address: null,
    downstream_remote_address: downstreamRemote,
    downstream_local_address: downstreamLocal,
    requested_server_name: null,
    route_name: null,
  };
}
