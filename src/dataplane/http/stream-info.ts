/**
 * The facts of one HTTP request, filled while it runs and read once at its end: the ONE record the
 * access-log line, istio_requests_total and the filters' log phase are all built from, so the three
 * can never tell different stories about the same request. Field names follow Envoy's StreamInfo
 * and the access-log keys (docs/observability.md).
 */
import type { PeerCertificateFacts } from '../context.js';
import { isoTime, jsonString, setPeerFields, type AccessLogRecord } from '../observe/access-log.js';
import type { MtlsLabels } from '../observe/istio-metrics.js';
import { decodeGrpcMessage } from '../../shared/grpc-status.js';
import { fieldValue, isGrpcHead } from './grpc.js';
import type { RequestHead } from './head.js';
import type { RequestHeadFacts } from './headers.js';

/** The connection's side of a record (HttpSession has these). */
export interface DownstreamFacts {
  readonly remoteText: string;
  readonly localText: string;
  readonly sni: string | null;
  readonly peerCertificate: PeerCertificateFacts | undefined;
}

export class StreamInfo implements RequestHeadFacts {
  // RequestHeadFacts (filled while the upstream head is built)
  xffIn: string | null = null;
  requestId: string | null = null;
  userAgent: string | null = null;

  bytesReceived = 0;
  bytesSent = 0;
  responseCode = 0;
  /** Envoy response flags ('-' for none, 'UF', 'UC,URX', ...); docs/errors.md. */
  flags = '-';
  /** Stable `tollgate_reason` (docs/errors.md), undefined for a normal response. */
  reason: string | undefined = undefined;
  detail: string | undefined = undefined;
  transportFailure: string | undefined = undefined;
  upstreamHost: string | null = null;
  upstreamCluster: string | null = null;
  upstreamLocal: string | null = null;
  /** The upstream connection was mesh mTLS (this proxy's and the server's identities). */
  upstreamMtls: MtlsLabels | undefined = undefined;
  /** From the request written upstream to the response head (ms), null when none came. */
  upstreamServiceTime: number | null = null;
  routeName: string | null = null;

  /** As logged: from the request line for HTTP/1.x; the HTTP/2 codec sets 'HTTP/2'. */
  protocol: string;
  /** The request is gRPC (content-type application/grpc...): its outcome is grpc-status. */
  readonly grpc: boolean;
  /** grpc-status / grpc-message of the response (head of a trailers-only response, else trailers). */
  grpcStatus: string | null = null;
  grpcMessage: string | null = null;

  constructor(
    readonly head: RequestHead,
    readonly startMs: number,
    readonly startPerf: number,
  ) {
    this.protocol = head.version === '1.1' ? 'HTTP/1.1' : 'HTTP/1.0';
    this.grpc = isGrpcHead(head);
  }

  /** Takes grpc-status / grpc-message from response fields (head or trailers) that carry them. */
  grpcFrom(fields: readonly string[]): void {
    const st = fieldValue(fields, 'grpc-status');
    if (st === null) return;
    this.grpcStatus = st;
    const msg = fieldValue(fields, 'grpc-message');
    this.grpcMessage = msg === null ? null : decodeGrpcMessage(msg);
  }

  /** Sets the outcome of a failed or locally answered request (a flag other than '-' is kept over '-'). */
  fail(flags: string, reason: string | undefined, detail: string | undefined): void {
    if (flags !== '-' || this.flags === '-') this.flags = flags;
    this.reason = reason;
    this.detail = detail;
  }

  record(d: DownstreamFacts, durationMs: number): AccessLogRecord {
    const head = this.head;
    const r: AccessLogRecord = {
      start_time: isoTime(this.startMs),
      method: head.method,
      authority: head.authority ?? null,
      path: head.path,
      protocol: this.protocol,
      response_code: this.responseCode,
      response_flags: this.flags,
      bytes_received: this.bytesReceived,
      bytes_sent: this.bytesSent,
      duration: Math.floor(durationMs),
      upstream_host: this.upstreamHost,
      upstream_cluster: this.upstreamCluster,
      upstream_local_address: this.upstreamLocal,
      downstream_remote_address: d.remoteText,
      downstream_local_address: d.localText,
      requested_server_name: d.sni,
      route_name: this.routeName,
    };
    if (this.reason !== undefined) r.tollgate_reason = this.reason;
    r.user_agent = this.userAgent;
    r.x_forwarded_for = this.xffIn;
    r.request_id = this.requestId;
    r.upstream_service_time = this.upstreamServiceTime === null ? null : Math.floor(this.upstreamServiceTime);
    if (this.detail !== undefined) r.response_code_details = this.detail;
    if (this.transportFailure !== undefined) r.upstream_transport_failure_reason = this.transportFailure;
    if (d.peerCertificate !== undefined) setPeerFields(r, d.peerCertificate);
    if (this.upstreamMtls !== undefined) r.upstream_peer_uri_san = this.upstreamMtls.destinationPrincipal;
    if (this.grpc) {
      r.grpc_status = this.grpcStatus;
      r.grpc_message = this.grpcMessage;
    }
    return r;
  }

  /**
   * The same line formatJson(this.record()) gives, built directly (no record object). Values the
   * parser or the engine already restricted to safe characters (method token, validated authority,
   * addresses, flags, reasons) are not re-checked for JSON escaping. The fields that stay the same
   * for a connection (downstream addresses, SNI) or an upstream connection (its host, cluster and
   * local address) come as one cached piece each, and so do the pieces that repeat from one request
   * to the next (the opening per millisecond, protocol with code and flags, the route name): a line
   * is a rope of its pieces until it is encoded, and encoding costs about as much per piece as per
   * byte.
   */
  jsonLine(d: DownstreamFacts, durationMs: number): string {
    const head = this.head;
    const ust = this.upstreamServiceTime;
    let line =
      startJson(this.startMs) +
      head.method +
      (head.authority === undefined ? '","authority":null,"path":' : '","authority":"' + head.authority + '","path":') +
      jsonString(head.path) +
      statusJson(this.protocol, this.responseCode, this.flags) +
      this.bytesReceived +
      ',"bytes_sent":' +
      this.bytesSent +
      ',"duration":' +
      Math.floor(durationMs) +
      ',' +
      upstreamJson(this.upstreamHost, this.upstreamCluster, this.upstreamLocal) +
      downstreamJson(d) +
      routeJson(this.routeName);
    if (this.reason !== undefined) line += `,"tollgate_reason":${jsonString(this.reason)}`;
    line +=
      (this.userAgent === null ? ',"user_agent":null' : ',"user_agent":' + jsonString(this.userAgent)) +
      (this.xffIn === null ? ',"x_forwarded_for":null,"request_id":' : ',"x_forwarded_for":' + jsonString(this.xffIn) + ',"request_id":') +
      jsonString(this.requestId) +
      (ust === null ? ',"upstream_service_time":null' : ',"upstream_service_time":' + Math.floor(ust));
    if (this.detail !== undefined) line += `,"response_code_details":${jsonString(this.detail)}`;
    if (this.transportFailure !== undefined) line += `,"upstream_transport_failure_reason":${jsonString(this.transportFailure)}`;
    if (d.peerCertificate !== undefined) line += peerFieldsJson(d.peerCertificate);
    if (this.upstreamMtls !== undefined) line += `,"upstream_peer_uri_san":${jsonString(this.upstreamMtls.destinationPrincipal)}`;
    if (this.grpc) line += `,"grpc_status":${jsonString(this.grpcStatus)},"grpc_message":${jsonString(this.grpcMessage)}`;
    return line + '}\n';
  }
}

// Pieces of the line that repeat from one request to the next, each kept while it stays the same.

let lastStartMs = -1;
let lastStart = '';

/** The line's opening up to the method's value: one per millisecond. */
function startJson(ms: number): string {
  if (ms !== lastStartMs) {
    lastStartMs = ms;
    lastStart = '{"start_time":"' + isoTime(ms) + '","method":"';
  }
  return lastStart;
}

let lastProtocol = '';
let lastCode = -1;
let lastFlags = '';
let lastStatus = '';

/** Protocol, response code and flags, up to the bytes_received value. */
function statusJson(protocol: string, code: number, flags: string): string {
  if (code !== lastCode || protocol !== lastProtocol || flags !== lastFlags) {
    lastProtocol = protocol;
    lastCode = code;
    lastFlags = flags;
    lastStatus = flat(`,"protocol":"${protocol}","response_code":${code},"response_flags":"${flags}","bytes_received":`);
  }
  return lastStatus;
}

let lastRoute: string | null = null;
let lastRouteJson = '"route_name":null';

function routeJson(name: string | null): string {
  if (name !== lastRoute) {
    lastRoute = name;
    lastRouteJson = flat('"route_name":' + jsonString(name));
  }
  return lastRouteJson;
}

/** A sequential copy of `s`: a cached piece that is a rope would be walked again in every line. */
function flat(s: string): string {
  return Buffer.from(s, 'utf8').toString('utf8');
}

/** Per downstream connection: its addresses and SNI, as JSON fields ending in a comma. */
const downstreamPieces = new WeakMap<DownstreamFacts, string>();

function downstreamJson(d: DownstreamFacts): string {
  let piece = downstreamPieces.get(d);
  if (piece === undefined) {
    piece = flat(`"downstream_remote_address":"${d.remoteText}","downstream_local_address":"${d.localText}","requested_server_name":${d.sni === null ? 'null' : `"${d.sni}"`},`);
    downstreamPieces.set(d, piece);
  }
  return piece;
}

interface UpstreamPiece {
  readonly host: string | null;
  readonly cluster: string | null;
  readonly piece: string;
}

/**
 * Per upstream connection, keyed by its local address (one socket each): upstream host, cluster
 * and local address as JSON fields ending in a comma. Bounded: cleared when it outgrows
 * MAX_UPSTREAM_PIECES (connections come and go; a miss only costs building the piece again).
 */
const upstreamPieces = new Map<string, UpstreamPiece>();
const MAX_UPSTREAM_PIECES = 4096;

function upstreamJson(host: string | null, cluster: string | null, local: string | null): string {
  if (local === null) return upstreamFields(host, cluster, local);
  const hit = upstreamPieces.get(local);
  if (hit !== undefined && hit.host === host && hit.cluster === cluster) return hit.piece;
  if (upstreamPieces.size >= MAX_UPSTREAM_PIECES) upstreamPieces.clear();
  const piece = flat(upstreamFields(host, cluster, local));
  upstreamPieces.set(local, { host, cluster, piece });
  return piece;
}

function upstreamFields(host: string | null, cluster: string | null, local: string | null): string {
  return `"upstream_host":${host === null ? 'null' : `"${host}"`},"upstream_cluster":${jsonString(cluster)},"upstream_local_address":${local === null ? 'null' : `"${local}"`},`;
}

function peerFieldsJson(p: PeerCertificateFacts): string {
  return `,"downstream_peer_subject":${jsonString(p.subject)},"downstream_peer_uri_san":${jsonString(p.uriSans.join(','))},"downstream_peer_dns_san":${jsonString(p.dnsSans.join(','))}`;
}
