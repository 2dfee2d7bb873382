/**
 * The `explicit_proxy` network filter: what applications get with HTTPS_PROXY=http://tollgate:PORT.
 *
 * 1. Read one request head with the project's strict HTTP/1.1 parser (head timeout).
 * 2. CONNECT host:port:
 *    - a body (Content-Length > 0 / Transfer-Encoding) -> 400 connect_with_body (parser);
 *      bytes after the head before our answer -> 400 connect_early_data;
 *    - registry mode (no `acl`): selectExplicitProxyTarget (port in connectPorts, a cluster for
 *      host:port in the snapshot) else 403;
 *    - ACL mode (egress router http-proxy): resolve a name, aclDecide() first match, else 403;
 *    - connect upstream (SSRF guard, source address: ClusterManager) else 502/503;
 *    - 200 Connection established; then for TLS destinations read the ClientHello: an SNI that
 *      differs from the CONNECT host closes the tunnel (connect_sni_mismatch: domain fronting);
 *    - splice (pipe.ts). One access-log line per tunnel, method CONNECT.
 * 3. Other methods (absolute-form GET http://...): HttpConnectionHandler.handleExplicitProxy when
 *    the HTTP engine provides it, else 501 explicit_proxy_http_unsupported. The engine keeps the
 *    connection for keep-alive and hands a later CONNECT back here (continueExplicitConnect).
 */
import { authzConnectionOf, connectRequest, verdictLog } from '../authz/apply.js';
import { evaluateAuthz, RBAC_DENIED_BODY, RBAC_DENIED_REASON } from '../authz/evaluate.js';
import type { Socket } from 'node:net';
import { HttpParser } from '../http/parser.js';
import type { HttpParseError } from '../http/errors.js';
import type { RequestHead } from '../http/head.js';
import { simpleResponse } from '../http/serialize.js';
import { normalizeHost, splitHostPort } from '../../net/hostname.js';
import type { ExplicitProxy } from '../../snapshot/types.js';
import { addrPort, elapsedMs, plainIp, type DownstreamConnection, type HttpConnectionHandler } from '../context.js';
import { hostPort, type AccessLogRecord } from '../observe/access-log.js';
import { destinationServiceLabel, type IstioLabels } from '../observe/istio-metrics.js';
import { peekClientHello, inspectorReason } from '../listener/peek.js';
import { DEFAULT_CONNECT_TIMEOUT_MS, decideConnect, WOULD_DENY_REASON } from '../route/select.js';
import { connectStatusForFailure, type ResponseFlag, type UpstreamFailure } from '../upstream/failure.js';
import { resetSocket, Tunnel } from './pipe.js';
import { baseRecord } from './tcp-proxy.js';

/** The reason an explicit-proxy listener logs for a request head its parser refuses (CONNECT or not). */
export function explicitProxyParseReason(e: HttpParseError): string {
  return e.code === 'TG_HTTP_CONNECT_BODY' ? 'connect_with_body' : 'http_bad_request';
}

const ESTABLISHED = Buffer.from('HTTP/1.1 200 Connection established\r\n\r\n', 'latin1');

export function handleExplicitProxy(conn: DownstreamConnection, filter: ExplicitProxy, http: HttpConnectionHandler | undefined, onTunnel?: (t: Tunnel) => void): void {
  new ConnectSession(conn, filter, http, onTunnel).start();
}

/**
 * A CONNECT the HTTP engine parsed on an explicit-proxy connection that already carried
 * absolute-form requests (keep-alive): decided and tunneled here like any CONNECT. The socket's
 * other listeners are gone; `early` = bytes followed the head before our answer (refused).
 */
export function continueExplicitConnect(conn: DownstreamConnection, filter: ExplicitProxy, head: RequestHead, early: boolean): void {
  new ConnectSession(conn, filter, undefined, undefined).continueWith(head, early);
}

class ConnectSession {
  private readonly parser: HttpParser<'request'>;
  private head: RequestHead | undefined;
  private parseError: HttpParseError | undefined;
  private early = false;
  private decided = false;
  private timer: NodeJS.Timeout | undefined;
  private readonly record: AccessLogRecord;
  private labels: IstioLabels;
  /** Bytes read before the head was complete (only kept to hand absolute-form requests on). */
  private readonly seen: Buffer[] = [];

  constructor(
    private readonly conn: DownstreamConnection,
    private readonly filter: ExplicitProxy,
    private readonly http: HttpConnectionHandler | undefined,
    private readonly onTunnel: ((t: Tunnel) => void) | undefined,
  ) {
    this.parser = new HttpParser('request', {
      onHead: (h) => {
        this.head = h;
        this.parser.pause();
      },
      onBody: () => {},
      onMessageComplete: () => {},
      onError: (e) => {
        this.parseError = e;
      },
    });
    this.record = baseRecord(conn, { statPrefix: filter.statPrefix, routeName: filter.statPrefix });
    this.labels = { destinationService: 'unknown', requestProtocol: 'tcp', responseFlags: '-' };
  }

  start(): void {
    const s = this.conn.socket;
    s.on('data', this.onData);
    s.on('end', this.onEndBeforeHead);
    s.on('error', this.onErrorBeforeHead);
    this.timer = setTimeout(this.onHeadTimeout, this.conn.services.limits.requestHeadTimeoutMs);
    s.resume();
  }

  continueWith(head: RequestHead, early: boolean): void {
    this.head = head;
    this.early = early;
    const s = this.conn.socket;
    s.on('data', this.onData); // marks any byte before the answer as early data
    s.resume();
    this.onHead(head);
  }

  private detach(): void {
    clearTimeout(this.timer);
    const s = this.conn.socket;
    s.removeListener('end', this.onEndBeforeHead);
    s.removeListener('error', this.onErrorBeforeHead);
  }

  private readonly onData = (chunk: Buffer): void => {
    if (this.head !== undefined || this.parseError !== undefined) {
      // Bytes after the head, before the decision: refused (checked when the decision is made).
      this.early = true;
      if (!this.decided) this.conn.socket.pause();
      return;
    }
    if (this.http?.handleExplicitProxy) this.seen.push(chunk);
    const n = this.parser.execute(chunk);
    const pe = this.parseError as HttpParseError | undefined;
    if (pe) {
      this.detach();
      this.deny(pe.status, explicitProxyParseReason(pe), 'DPE', pe.message);
      return;
    }
    if (this.head === undefined) return;
    this.detach();
    if (n < chunk.length) this.early = true;
    // The socket keeps flowing while we decide: any byte that arrives before the answer marks the
    // request as sending early data (refused); it is paused again before the tunnel starts.
    this.onHead(this.head);
  };

  private readonly onEndBeforeHead = (): void => {
    this.detach();
    this.conn.socket.removeListener('data', this.onData);
    this.record.response_flags = 'DC';
    this.record.tollgate_reason = 'downstream_closed_before_request';
    this.log();
    this.conn.socket.destroy();
  };

  private readonly onErrorBeforeHead = (): void => {
    this.onEndBeforeHead();
  };

  private readonly onHeadTimeout = (): void => {
    this.detach();
    this.deny(408, 'request_head_timeout', 'DPE', `no complete request head within ${this.conn.services.limits.requestHeadTimeoutMs} ms`);
  };

  private onHead(head: RequestHead): void {
    const r = this.record;
    r.method = head.method;
    r.protocol = `HTTP/${head.version}`;
    r.authority = head.authority ?? null;
    r.path = head.method === 'CONNECT' ? null : head.path;
    if (head.method !== 'CONNECT') {
      if (this.http?.handleExplicitProxy) {
        const s = this.conn.socket;
        s.pause();
        s.removeListener('data', this.onData);
        for (let i = this.seen.length - 1; i >= 0; i--) s.unshift(this.seen[i]!);
        this.http.handleExplicitProxy(this.conn, this.filter);
        return;
      }
      this.deny(501, 'explicit_proxy_http_unsupported', '-', 'absolute-form requests need the HTTP engine; use CONNECT');
      return;
    }
    if (this.early) {
      this.deny(400, 'connect_early_data', 'DPE', 'bytes sent after CONNECT before the proxy answered');
      return;
    }
    const hp = splitHostPort(head.authority ?? '', 0);
    const nh = hp.ok ? normalizeHost(hp.host) : undefined;
    if (!hp.ok || !nh || !nh.ok || hp.port === 0) {
      this.deny(400, 'connect_bad_authority', 'DPE', `CONNECT target ${JSON.stringify(head.authority)} is not host:port`);
      return;
    }
    if (!this.authorize(head, nh.host, hp.port)) return;
    void this.decide(nh.host, hp.port, nh.ip !== undefined);
  }

  /** AuthorizationPolicies on the CONNECT request (method CONNECT, host = the target, no path); false when denied. */
  private authorize(head: RequestHead, host: string, port: number): boolean {
    const policies = this.conn.snapshot.snapshot.policy.authorization;
    if (policies === undefined) return true;
    const v = evaluateAuthz(policies, connectRequest(authzConnectionOf(this.conn), host, port, head.headers));
    this.conn.services.metrics.authorized(v);
    const log = verdictLog(v);
    if (log !== undefined) this.record.response_code_details = log.detail;
    if (v.allowed) {
      if (log !== undefined) this.record.tollgate_reason = log.reason;
      return true;
    }
    this.deny(403, RBAC_DENIED_REASON, '-', log!.detail, RBAC_DENIED_BODY);
    return false;
  }

  private async decide(host: string, port: number, isIp: boolean): Promise<void> {
    const f = this.filter;
    const conn = this.conn;
    const services = conn.services;
    this.labels = { ...this.labels, destinationService: destinationServiceLabel(undefined, true) };
    // ACL mode checks the address too: resolve the name first (the port check comes before DNS).
    let ip: string | undefined = isIp ? host : undefined;
    if (f.acl && !isIp && f.connectPorts.includes(port)) {
      const r = await services.clusters.dns.resolve(host, 'V4_ONLY');
      if (!r.ok) return this.deny(502, 'dns_resolution_failed', 'DF', r.message);
      ip = r.addresses[0];
    }
    const d = decideConnect(f, conn.snapshot, host, port, ip, DEFAULT_CONNECT_TIMEOUT_MS);
    if (!d.allowed) return this.deny(d.status, d.reason, d.flag, d.why);
    const { cluster, requestedHost, allowAddresses, tlsRequired } = d;
    if (d.wouldDeny !== undefined) this.record.tollgate_reason = WOULD_DENY_REASON; // replaced if the tunnel is then refused (ssrf_denied, ...)
    if (d.routeName !== undefined) this.record.route_name = d.routeName;
    const c = d.cause ?? (typeof cluster === 'string' ? undefined : cluster);
    if (c !== undefined) this.labels = { ...this.labels, destinationService: destinationServiceLabel(c, true), ...(c.origin?.namespace ? { destinationNamespace: c.origin.namespace } : {}) };
    this.record.upstream_cluster = typeof cluster === 'string' ? cluster : cluster.name;
    const ns = services.clusters.callerNamespace(conn.remoteAddress);
    if (ns !== undefined) this.labels = { ...this.labels, sourceNamespace: ns };

    const res = await services.clusters.connect({
      cluster,
      snapshot: conn.snapshot,
      requestedHost,
      requestedPort: port,
      downstreamIp: conn.remoteAddress,
      peerNamespace: conn.peer?.namespace,
      filterSourceAddress: f.sourceAddress,
      allowAddresses,
    });
    if (!res.ok) return this.denyFailure(res.failure);
    if (this.record.tollgate_reason === WOULD_DENY_REASON) services.metrics.wouldDenyPassed(host, port, 'TLS', ns);
    const up = res.socket;
    this.record.upstream_host = addrPort(res.target.ip, res.target.port);
    this.record.upstream_local_address = hostPort(plainIp(res.localAddress), res.localPort);
    const down = conn.socket;
    if (down.destroyed || this.early) {
      up.destroy();
      if (this.early) return this.deny(400, 'connect_early_data', 'DPE', 'bytes sent after CONNECT before the proxy answered');
      this.record.response_flags = 'DC';
      this.record.tollgate_reason = 'downstream_closed_before_upstream_connected';
      this.log();
      return;
    }
    down.pause();
    down.removeListener('data', this.onData);
    this.decided = true;
    this.record.response_code = 200;
    down.write(ESTABLISHED);
    services.metrics.tcpOpened(this.labels);
    if (!tlsRequired) {
      this.splice(up);
      return;
    }
    const onUpEarly = (): void => {
      down.destroy();
    };
    up.on('error', onUpEarly);
    up.on('close', onUpEarly);
    peekClientHello(down, { timeoutMs: services.limits.tlsHelloTimeoutMs, maxHelloBytes: services.limits.maxHelloBytes }, (p) => {
      up.removeListener('error', onUpEarly);
      up.removeListener('close', onUpEarly);
      if (p.kind === 'hello') {
        const sni = p.hello.sni;
        this.record.requested_server_name = sni ?? null;
        if (sni !== undefined && sni !== host) {
          up.destroy();
          this.closeTunnel('connect_sni_mismatch', 'BLOCKED', `SNI ${sni} differs from CONNECT host ${host} (possible domain fronting)`);
          return;
        }
        this.splice(up, p.bytes);
        return;
      }
      up.destroy();
      if (p.kind === 'timeout') this.closeTunnel('tls_hello_timeout', 'DPE', `no ClientHello within ${services.limits.tlsHelloTimeoutMs} ms after CONNECT`);
      else if (p.kind === 'closed') this.closeTunnel('downstream_closed_before_hello', 'DC', 'client closed the tunnel before a ClientHello');
      else if (p.kind === 'not_tls') this.closeTunnel('connect_not_tls', 'BLOCKED', `${host}:${port} is a TLS destination but the client sent non-TLS bytes (${p.reason})`);
      else this.closeTunnel(inspectorReason(p.code), 'DPE', p.reason);
    });
  }

  /** `initial`: the ClientHello read after CONNECT, written upstream first. */
  private splice(up: Socket, initial?: Buffer): void {
    const conn = this.conn;
    const t = new Tunnel(conn.socket, up, {
      idleTimeoutMs: conn.services.limits.tcpIdleTimeoutMs ?? 3_600_000,
      initial,
      onEnd: (res) => {
        const r = this.record;
        r.bytes_received = res.bytesFromDownstream;
        r.bytes_sent = res.bytesFromUpstream;
        if (res.outcome === 'upstream_reset') {
          r.response_flags = 'UC';
          r.tollgate_reason = 'upstream_reset';
        } else if (res.outcome === 'downstream_reset') {
          r.response_flags = 'DC';
          r.tollgate_reason = 'downstream_reset';
        } else if (res.outcome === 'idle_timeout') r.tollgate_reason = 'idle_timeout';
        else if (res.outcome === 'aborted') r.tollgate_reason = 'drained';
        if (res.detail !== undefined) r.connection_termination_details = res.detail;
        this.log();
        conn.services.metrics.tcpClosed({ ...this.labels, responseFlags: r.response_flags }, res.bytesFromUpstream, res.bytesFromDownstream);
      },
    });
    this.onTunnel?.(t);
  }

  /** After 200: the tunnel is refused by what the client sent first. */
  private closeTunnel(reason: string, flag: ResponseFlag, detail: string): void {
    const r = this.record;
    r.response_flags = flag;
    r.tollgate_reason = reason;
    r.connection_termination_details = detail;
    this.conn.services.metrics.denied(reason);
    this.conn.services.metrics.tcpClosed({ ...this.labels, responseFlags: flag }, 0, 0);
    this.log();
    resetSocket(this.conn.socket);
  }

  private denyFailure(f: UpstreamFailure): void {
    const status = connectStatusForFailure(f);
    if (f.upstreamHost !== undefined) this.record.upstream_host = f.upstreamHost;
    if (f.upstreamLocalAddress !== undefined) this.record.upstream_local_address = f.upstreamLocalAddress;
    this.deny(status, f.reason, f.flag, f.detail);
  }

  private deny(status: number, reason: string, flag: ResponseFlag, detail: string, text = `${reason}\n`): void {
    const s = this.conn.socket;
    s.removeListener('data', this.onData);
    const r = this.record;
    r.response_code = status;
    r.response_flags = flag;
    r.tollgate_reason = reason;
    r.connection_termination_details = detail;
    this.conn.services.metrics.denied(reason);
    this.conn.services.logger.debug('explicit proxy refused', { reason, detail });
    const body = simpleResponse(status, text, ['X-Tollgate-Reason', reason]);
    r.bytes_sent = body.length;
    this.log();
    if (s.destroyed) return;
    // Drain (and discard) what the client still sends so closing does not turn into a RST that
    // could destroy the response in flight; give up after 2 s.
    s.on('data', discard);
    s.on('error', discard);
    s.resume();
    s.end(body);
    setTimeout(() => s.destroy(), 2000).unref();
  }

  private log(): void {
    this.record.duration = elapsedMs(this.conn.startHr);
    this.conn.services.accessLog.log(this.record);
  }
}

function discard(): void {}
