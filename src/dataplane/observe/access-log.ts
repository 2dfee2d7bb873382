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
import type { LogSink } from './log-sink.js';

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
  /** The verified client certificate of a terminated connection (Envoy's %DOWNSTREAM_PEER_*%); SANs comma-joined. */
  downstream_peer_subject?: string;
  downstream_peer_uri_san?: string;
  downstream_peer_dns_san?: string;
  /** The server's SPIFFE ID on an upstream connection this proxy made with mesh mTLS (Envoy's %UPSTREAM_PEER_URI_SAN%). */
  upstream_peer_uri_san?: string;
  /** gRPC requests only: the response's grpc-status and (decoded) grpc-message. */
  grpc_status?: string | null;
  grpc_message?: string | null;
}

export type AccessLogFormat = 'json' | 'text';

const accessChannel = channel('tollgate:access');

/**
 * How long a line may wait to be written. At thousands of requests per second a write per
 * event-loop turn meant about one write (a thread-pool round trip for a file) per request; every
 * 50 ms it is one write per few hundred lines, and a person tailing the log sees no delay.
 */
const FLUSH_INTERVAL_MS = 50;

export interface AccessLoggerOptions {
  readonly format: AccessLogFormat;
  /** Where lines go (a bounded sink, see log-sink.ts); default: process.stdout as is (tests). */
  readonly out?: LogSink | { write(s: string): unknown };
  /** Disable writing (the records still reach subscribers). */
  readonly silent?: boolean;
}

export class AccessLogger {
  private readonly format: AccessLogFormat;
  private readonly out: LogSink | { write(s: string): unknown };
  private readonly silent: boolean;
  private readonly subscribers = new Set<(r: AccessLogRecord) => void>();
  /**
   * Lines not yet written. Each write costs a syscall, or a round trip through libuv's thread pool
   * for a file: lines are written together every FLUSH_INTERVAL_MS, or as soon as 64 KiB are
   * pending (Envoy buffers its access logs too, for up to a second). Pending lines are flushed on
   * process exit.
   */
  private pending = '';
  private scheduled = false;

  constructor(opts: AccessLoggerOptions) {
    this.format = opts.format;
    this.out = opts.out ?? process.stdout;
    this.silent = opts.silent === true;
  }

  log(r: AccessLogRecord): void {
    if (!this.silent) this.append(this.format === 'json' ? formatJson(r) : formatText(r));
    if (this.subscribers.size > 0) for (const fn of this.subscribers) fn(r);
    if (accessChannel.hasSubscribers) accessChannel.publish(r);
  }

  /**
   * Whether a line or a record would go anywhere (a sink that is not silenced, subscribers, the
   * diagnostics channel): when false, a hot path skips building them.
   */
  get wanted(): boolean {
    return !this.silent || this.subscribers.size > 0 || accessChannel.hasSubscribers;
  }

  /**
   * Whether log() must be given records: something consumes them (subscribers, the diagnostics
   * channel) or the format is text. When false, a hot path may format the JSON line itself (same
   * output as formatJson) and pass it to logJsonLine(), skipping the record object.
   */
  get needsRecords(): boolean {
    return this.format !== 'json' || this.subscribers.size > 0 || accessChannel.hasSubscribers;
  }

  /** A preformatted JSON line (ending in "\n"); only valid while needsRecords is false. */
  logJsonLine(line: string): void {
    if (!this.silent) this.append(line);
  }

  private append(line: string): void {
    this.pending += line;
    if (this.pending.length >= 65536) this.flush();
    else if (!this.scheduled) {
      this.scheduled = true;
      pendingLoggers.add(this);
      setTimeout(this.flush, FLUSH_INTERVAL_MS).unref();
    }
  }

  /** Writes pending lines now (a timer scheduled earlier then finds nothing to write). */
  readonly flush = (): void => {
    this.scheduled = false;
    pendingLoggers.delete(this);
    if (this.pending === '') return;
    const p = this.pending;
    this.pending = '';
    this.out.write(p);
  };

  /** Switches a file sink to a fresh file at the same path (SIGUSR1 after logrotate). */
  reopen(): void {
    this.flush();
    if ('reopen' in this.out) this.out.reopen();
  }

  /** Writes what is pending synchronously, as far as the sink allows (process exit). */
  flushSync(): void {
    this.flush();
    if ('flushSync' in this.out) this.out.flushSync();
  }

  subscribe(fn: (r: AccessLogRecord) => void): () => void {
    this.subscribers.add(fn);
    return () => this.subscribers.delete(fn);
  }
}

const pendingLoggers = new Set<AccessLogger>();
process.on('exit', () => {
  for (const l of pendingLoggers) l.flushSync();
});

/** True when `s` can be written between quotes as is: printable ASCII without `"` and `\\`. */
function plainJson(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c === 0x22 || c === 0x5c || c > 0x7e) return false;
  }
  return true;
}

/** A JSON string literal (or null). */
export function jsonString(s: string | null | undefined): string {
  return q(s);
}

function q(s: string | null | undefined): string {
  if (s === null || s === undefined) return 'null';
  return plainJson(s) ? '"' + s + '"' : JSON.stringify(s);
}

function num(n: number | null | undefined): string {
  return n === null || n === undefined || !Number.isFinite(n) ? 'null' : String(n);
}

/**
 * The JSON line for a record, built with one template (about 3x faster than JSON.stringify on this
 * object, which runs once per request). Same JSON value as JSON.stringify(r): the fixed fields in
 * interface order, then the optional ones that are set.
 */
export function formatJson(r: AccessLogRecord): string {
  let s =
    `{"start_time":${q(r.start_time)},"method":${q(r.method)},"authority":${q(r.authority)},"path":${q(r.path)},"protocol":${q(r.protocol)},` +
    `"response_code":${num(r.response_code)},"response_flags":${q(r.response_flags)},"bytes_received":${num(r.bytes_received)},"bytes_sent":${num(r.bytes_sent)},` +
    `"duration":${num(r.duration)},"upstream_host":${q(r.upstream_host)},"upstream_cluster":${q(r.upstream_cluster)},"upstream_local_address":${q(r.upstream_local_address)},` +
    `"downstream_remote_address":${q(r.downstream_remote_address)},"downstream_local_address":${q(r.downstream_local_address)},` +
    `"requested_server_name":${q(r.requested_server_name)},"route_name":${q(r.route_name)}`;
  if (r.tollgate_reason !== undefined) s += `,"tollgate_reason":${q(r.tollgate_reason)}`;
  if (r.user_agent !== undefined) s += `,"user_agent":${q(r.user_agent)}`;
  if (r.x_forwarded_for !== undefined) s += `,"x_forwarded_for":${q(r.x_forwarded_for)}`;
  if (r.request_id !== undefined) s += `,"request_id":${q(r.request_id)}`;
  if (r.upstream_service_time !== undefined) s += `,"upstream_service_time":${num(r.upstream_service_time)}`;
  if (r.response_code_details !== undefined) s += `,"response_code_details":${q(r.response_code_details)}`;
  if (r.upstream_transport_failure_reason !== undefined) s += `,"upstream_transport_failure_reason":${q(r.upstream_transport_failure_reason)}`;
  if (r.connection_termination_details !== undefined) s += `,"connection_termination_details":${q(r.connection_termination_details)}`;
  if (r.downstream_peer_subject !== undefined) s += `,"downstream_peer_subject":${q(r.downstream_peer_subject)}`;
  if (r.downstream_peer_uri_san !== undefined) s += `,"downstream_peer_uri_san":${q(r.downstream_peer_uri_san)}`;
  if (r.downstream_peer_dns_san !== undefined) s += `,"downstream_peer_dns_san":${q(r.downstream_peer_dns_san)}`;
  if (r.upstream_peer_uri_san !== undefined) s += `,"upstream_peer_uri_san":${q(r.upstream_peer_uri_san)}`;
  if (r.grpc_status !== undefined) s += `,"grpc_status":${q(r.grpc_status)}`;
  if (r.grpc_message !== undefined) s += `,"grpc_message":${q(r.grpc_message)}`;
  return s + '}\n';
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

// The ISO start time of a record, cached per millisecond (records that start in the same
// millisecond share one string), the date part formatted once per second: every HTTP request and
// every TCP connection formats one.
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

/** "ip:port" with brackets for IPv6; null when the address is unknown. */
export function hostPort(ip: string | undefined, port: number | undefined): string | null {
  if (ip === undefined || ip === '' || port === undefined) return null;
  return ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`;
}

/** The client certificate's fields of a record (present only on connections that verified one). */
export function setPeerFields(r: AccessLogRecord, p: { readonly subject: string; readonly uriSans: readonly string[]; readonly dnsSans: readonly string[] }): void {
  r.downstream_peer_subject = p.subject;
  r.downstream_peer_uri_san = p.uriSans.join(',');
  r.downstream_peer_dns_san = p.dnsSans.join(',');
}

/** A record with every field at its "not applicable" value; callers fill what they know. */
export function emptyRecord(startTime: number, downstreamRemote: string, downstreamLocal: string): AccessLogRecord {
  return {
    start_time: isoTime(startTime),
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
