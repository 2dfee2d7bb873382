/**
 * One bound listener: accept -> connection limit -> (TLS inspector) -> selectFilterChain ->
 * dispatch to the chain's network filter. The compiled listener is swapped by the runtime on a new
 * snapshot; each connection keeps the snapshot it was accepted under.
 */
import { createServer, isIP, type Server, type Socket } from 'node:net';
import { isTlsSocket } from '../../shared/lazy-builtins.js';
import type { FilterChain } from '../../snapshot/types.js';
import { addrPort, copyConnection, elapsedMs, plainIp, type DataPlaneServices, type HttpConnectionHandler, type PeerCertificateFacts } from '../context.js';
import { AcceptedConnection } from './accepted-connection.js';
import { emptyRecord, type AccessLogRecord } from '../observe/access-log.js';
import type { CompiledListener, CompiledSnapshot } from '../route/compile.js';
import { dispatchOriginalDst, type OriginalDestination } from '../route/original-dst.js';
import { denyOutcome, selectFilterChain, type ConnectionFacts } from '../route/select.js';
import { handleExplicitProxy } from '../tcp/explicit-proxy.js';
import { handleTcpProxy } from '../tcp/tcp-proxy.js';
import { fdOf, setTransparent } from '../../net/sockopt.js';
import { inspectorReason, peekClientHello, type PeekResult } from './peek.js';
import { DOWNSTREAM_TLS } from './tls-store.js';
import { acceptMeshTls } from '../mesh/accept.js';
import { offersMeshAlpn } from '../mesh/contexts.js';
import type { PeerIdentity } from '../mesh/peer-identity.js';
import type { WorkloadIdentitySource } from '../../shared/workload-identity.js';
import { terminateTls } from './tls-terminate.js';
import type { ConnectionBudget } from './connection-budget.js';
import type { GaugeChild } from '../observe/metrics.js';

export interface ListenerState {
  readonly snapshot: CompiledSnapshot;
  readonly listener: CompiledListener;
}

export interface ListenerRuntimeOptions {
  readonly boundAddress: string;
  readonly boundPort: number;
  readonly maxConnections: number;
  /** Shared by every listener of the process (descriptor budget); unset = per-listener limit only. */
  readonly budget?: ConnectionBudget;
  readonly services: DataPlaneServices;
  readonly http: HttpConnectionHandler;
  /**
   * How a captured connection's original destination is read (REDIRECT: SO_ORIGINAL_DST; TPROXY:
   * the local address). Used only on the sidecar's virtual listeners; undefined = not captured.
   */
  readonly originalDestination?: (socket: Socket) => OriginalDestination | undefined;
  /** TPROXY: set IP_TRANSPARENT on the listening socket so diverted connections are accepted. */
  readonly transparent?: boolean;
}

function noop(): void {}

const EMPTY = Buffer.alloc(0);
const NO_ALPN: readonly string[] = [];

/** How long a silent client may take before a PERMISSIVE port treats it as a server-first plaintext protocol. */
const MTLS_DETECTION_TIMEOUT_MS = 1000;

const NO_IDENTITY: WorkloadIdentitySource = { current: () => undefined, onChange: () => noop };

interface TunnelAdmission {
  readonly snapshot: CompiledSnapshot;
  readonly chain: FilterChain;
}

/** What a TCP tunnel was routed by: its chain and the clusters (with their targets) it may use. */
function tunnelRoute(snapshot: CompiledSnapshot, chain: FilterChain): string {
  if (chain.filter.type !== 'tcp') return '';
  const clusters = chain.filter.clusters.map((w) => {
    const c = snapshot.clusters.get(w.name);
    const eps = snapshot.endpoints.get(w.name)?.endpoints.map((e) => `${e.address}:${e.port}`).sort().join(',') ?? '';
    return `${w.name}=${c ? `${c.type}|${c.serviceHost}|${c.port}|${c.sourceAddress ?? ''}|${eps}` : 'missing'}`;
  });
  return `${chain.name}|${clusters.sort().join(';')}`;
}

export class ListenerRuntime {
  readonly server: Server;
  /** Open connections, each with the active-connections gauge it was counted in (its listener's name at accept). */
  readonly sockets = new Map<Socket, GaugeChild>();
  /**
   * Open TCP tunnels and the route that admitted them (see revalidateTunnels): the snapshot and
   * chain, turned into a route key only when a new snapshot is checked, not per connection.
   */
  private readonly tunnels = new Map<Socket, TunnelAdmission>();
  state: ListenerState;
  boundAddress: string;
  boundPort: number;
  draining = false;
  private readonly opts: ListenerRuntimeOptions;
  /**
   * Every accepted connection's local address, when the listener is bound to one address (not a
   * wildcard, not TPROXY): read from the socket it costs a getsockname system call per connection.
   */
  private readonly fixedLocalIp: string | undefined;
  private gaugeName = '';
  private gauge: GaugeChild | undefined;

  constructor(state: ListenerState, opts: ListenerRuntimeOptions) {
    this.state = state;
    this.opts = opts;
    this.boundAddress = opts.boundAddress;
    this.boundPort = opts.boundPort;
    const a = opts.boundAddress;
    this.fixedLocalIp = isIP(a) !== 0 && a !== '0.0.0.0' && a !== '::' && !opts.transparent ? plainIp(a) : undefined;
    this.server = createServer({ allowHalfOpen: true, pauseOnConnect: true, noDelay: true }, this.onConnection);
    this.server.on('error', noop);
  }

  get name(): string {
    return this.state.listener.listener.name;
  }

  bind(): Promise<void> {
    return new Promise((resolve, reject) => {
      const onError = (err: Error): void => {
        this.server.removeListener('listening', onListening);
        reject(err);
      };
      const onListening = (): void => {
        this.server.removeListener('error', onError);
        const a = this.server.address();
        if (a && typeof a === 'object') this.boundPort = a.port;
        if (this.opts.transparent) {
          const fd = fdOf(this.server);
          const r = fd === undefined ? { ok: false as const, message: 'listening socket has no file descriptor' } : setTransparent(fd, this.boundAddress.includes(':'));
          if (!r.ok) {
            this.server.close();
            reject(new Error(`TPROXY needs IP_TRANSPARENT on ${this.boundAddress}:${this.boundPort}: ${r.message}`));
            return;
          }
        }
        resolve();
      };
      this.server.once('error', onError);
      this.server.once('listening', onListening);
      this.server.listen({ host: this.boundAddress, port: this.boundPort, backlog: 4096 });
    });
  }

  /** Stop accepting; open connections continue. */
  close(): Promise<void> {
    this.draining = true;
    return new Promise((resolve) => {
      if (!this.server.listening) {
        resolve();
        return;
      }
      this.server.close(() => resolve());
      // server.close() waits for connections; resolve as soon as the socket stops accepting.
      setImmediate(resolve);
    });
  }

  destroyAll(): void {
    for (const s of this.sockets.keys()) s.destroy();
  }

  /**
   * Policy for open tunnels when the config changes (docs/control-plane.md, "Reload policy"): a
   * tunnel stays open while the new snapshot still has the route that admitted it — the same
   * filter chain with the same clusters, endpoints and source address. When that route was removed
   * or changed (a ServiceEntry deleted, an endpoint moved), the tunnel is closed at once: a
   * removal is usually a security decision and must not wait for the client to hang up.
   * Returns how many tunnels were closed.
   */
  revalidateTunnels(): number {
    const { snapshot, listener } = this.state;
    const allowed = new Set<string>();
    for (const c of [...listener.listener.filterChains, ...(listener.listener.defaultFilterChain ? [listener.listener.defaultFilterChain] : [])]) {
      if (c.filter.type === 'tcp') allowed.add(tunnelRoute(snapshot, c));
    }
    return this.closeTunnelsWhere((route) => !allowed.has(route));
  }

  /** A removed listener's routes are all gone: its tunnels close at once (HTTP connections drain). */
  closeTunnels(): number {
    return this.closeTunnelsWhere(() => true);
  }

  private closeTunnelsWhere(stale: (route: string) => boolean): number {
    let closed = 0;
    // Tunnels admitted under the same snapshot and chain share one key.
    const keys = new Map<CompiledSnapshot, Map<FilterChain, string>>();
    const routeOf = (a: TunnelAdmission): string => {
      let byChain = keys.get(a.snapshot);
      if (byChain === undefined) keys.set(a.snapshot, (byChain = new Map()));
      let key = byChain.get(a.chain);
      if (key === undefined) byChain.set(a.chain, (key = tunnelRoute(a.snapshot, a.chain)));
      return key;
    };
    for (const [socket, admission] of this.tunnels) {
      if (!stale(routeOf(admission))) continue;
      this.tunnels.delete(socket);
      socket.destroy();
      this.opts.services.metrics.denied('route_removed');
      closed++;
    }
    if (closed > 0) {
      this.opts.services.logger.info('closed tunnels whose route was removed or changed', { listener: this.name, closed });
    }
    return closed;
  }

  /** The active-connections gauge of a listener name, resolved when the name changes, not per connection. */
  private gaugeOf(name: string): GaugeChild {
    if (name !== this.gaugeName || this.gauge === undefined) {
      this.gaugeName = name;
      this.gauge = this.opts.services.metrics.activeConnections.labels(name);
    }
    return this.gauge;
  }

  /**
   * An accepted socket's 'close': the listener's bookkeeping and the tunnel table. One function for
   * every connection (EventEmitter calls it with the socket as `this`), not a closure per connection.
   */
  private readonly onSocketClose = ((rt: ListenerRuntime) =>
    function (this: Socket): void {
      rt.sockets.get(this)?.dec();
      rt.sockets.delete(this);
      rt.tunnels.delete(this);
      rt.opts.budget?.release();
    })(this);

  private readonly currentSnapshot = (): CompiledSnapshot => this.state.snapshot;

  private readonly onConnection = (socket: Socket): void => {
    const { services } = this.opts;
    socket.on('error', noop);
    let state = this.state;
    const startTime = Date.now();
    const startHr = process.hrtime.bigint();
    const overListener = this.sockets.size >= this.opts.maxConnections;
    const budget = this.opts.budget;
    if (overListener || this.draining || (budget !== undefined && !budget.tryTake())) {
      const r = this.record(socket, startTime);
      r.response_flags = 'OM';
      r.tollgate_reason = this.draining ? 'listener_draining' : overListener ? 'listener_connection_limit' : 'process_connection_limit';
      r.route_name = state.listener.listener.name;
      services.accessLog.log(r);
      services.metrics.denied(r.tollgate_reason);
      socket.destroy();
      return;
    }
    const gauge = this.gaugeOf(state.listener.listener.name);
    this.sockets.set(socket, gauge);
    gauge.inc();
    socket.on('close', this.onSocketClose);
    const virtual = state.listener.listener;
    let original: OriginalDestination | undefined;
    if ((virtual.useOriginalDst || virtual.inboundCapture) && this.opts.originalDestination) {
      original = this.opts.originalDestination(socket);
      if (original && virtual.useOriginalDst) {
        const handOff = dispatchOriginalDst(state.snapshot, state.listener, original);
        state = { snapshot: state.snapshot, listener: handOff.listener };
      }
    }
    const destination = { ip: original?.ip ?? this.localIp(socket), port: original?.port ?? this.localPort(socket) };
    if (state.listener.needsTlsInspector) {
      const timeoutMs = state.listener.mtlsDetectionOnly ? Math.min(MTLS_DETECTION_TIMEOUT_MS, services.limits.tlsHelloTimeoutMs) : services.limits.tlsHelloTimeoutMs;
      peekClientHello(socket, { timeoutMs, maxHelloBytes: services.limits.maxHelloBytes }, (p) => this.afterPeek(socket, state, p, startTime, startHr, original));
    } else {
      this.dispatch(socket, state, { tls: false, destinationIp: destination.ip, destinationPort: destination.port }, undefined, startTime, startHr, NO_ALPN, original, EMPTY);
    }
  };

  private afterPeek(socket: Socket, state: ListenerState, p: PeekResult, startTime: number, startHr: bigint, original: OriginalDestination | undefined): void {
    const services = this.opts.services;
    const destinationIp = original?.ip ?? this.localIp(socket);
    const destinationPort = original?.port ?? this.localPort(socket);
    // The bytes read are handed on with the connection (start()), not pushed back here: a refused
    // connection never needs them, and a TCP proxy writes them upstream without an unshift.
    if (p.kind === 'hello') {
      const facts: ConnectionFacts = p.hello.sni !== undefined ? { tls: true, destinationIp, destinationPort, sni: p.hello.sni } : { tls: true, destinationIp, destinationPort };
      this.dispatch(socket, state, facts, undefined, startTime, startHr, p.hello.alpn, original, p.bytes);
      return;
    }
    if (p.kind === 'not_tls' || (p.kind === 'timeout' && p.bytes.length === 0 && state.listener.mtlsDetectionOnly)) {
      this.dispatch(socket, state, { tls: false, destinationIp, destinationPort }, 'tls_not_tls', startTime, startHr, [], original, p.bytes);
      return;
    }
    const r = this.record(socket, startTime);
    r.route_name = state.listener.listener.name;
    r.bytes_received = p.bytes.length;
    if (p.kind === 'timeout') {
      r.response_flags = 'DPE';
      r.tollgate_reason = 'tls_hello_timeout';
      r.connection_termination_details = `no complete ClientHello within ${services.limits.tlsHelloTimeoutMs} ms`;
    } else if (p.kind === 'closed') {
      r.response_flags = 'DC';
      r.tollgate_reason = 'downstream_closed_before_hello';
    } else {
      r.response_flags = 'DPE';
      r.tollgate_reason = inspectorReason(p.code);
      r.connection_termination_details = p.reason;
    }
    r.duration = elapsedMs(startHr);
    services.accessLog.log(r);
    services.metrics.denied(r.tollgate_reason);
    socket.destroy();
  }

  /** `read`: what the TLS inspector read (handed on by start(); empty without an inspector). */
  private dispatch(socket: Socket, state: ListenerState, facts: ConnectionFacts, inspectorFailure: string | undefined, startTime: number, startHr: bigint, alpn: readonly string[], original: OriginalDestination | undefined, read: Buffer): void {
    const services = this.opts.services;
    const choice = selectFilterChain(state.listener, facts);
    const chain = choice.chain;
    if (!chain || chain.filter.type === 'deny') {
      const r = this.record(socket, startTime);
      r.requested_server_name = facts.sni ?? null;
      r.route_name = chain?.name ?? state.listener.listener.name;
      const outcome = denyOutcome(chain, facts, inspectorFailure);
      const reason = outcome.reason;
      r.response_flags = outcome.flag;
      r.tollgate_reason = reason;
      r.connection_termination_details = chain && chain.filter.type === 'deny' ? chain.filter.detail : choice.why;
      if (original) r.downstream_local_address = addrPort(original.ip, original.port);
      r.duration = elapsedMs(startHr);
      services.accessLog.log(r);
      services.metrics.denied(reason);
      services.logger.debug('connection denied', { listener: state.listener.listener.name, reason, why: choice.why });
      socket.destroy();
      return;
    }
    if (chain.mtls !== undefined) {
      // PERMISSIVE detection (Istio's filter chain match): a ClientHello is mesh mTLS when the port is
      // STRICT, the chain speaks HTTP (the app does not terminate TLS there) or the client offers the
      // mesh ALPN; any other TLS client on a TCP port is the app's own TLS and passes through.
      const mesh = facts.tls && (chain.mtls === 'STRICT' || chain.filter.type !== 'tcp' || offersMeshAlpn(alpn));
      if (mesh) {
        if (read.length > 0) socket.unshift(read);
        acceptMeshTls(socket, services.identity ?? NO_IDENTITY, services.limits.tlsHelloTimeoutMs, (r) => {
          if (r.ok) this.start(r.socket, state, chain, choice.why, facts, alpn, original, startTime, startHr, r.peer, r.certificate, EMPTY);
          else this.refuse(socket, chain, facts, original, startTime, startHr, r.reason, 'UF', r.detail);
        });
        return;
      }
      if (chain.mtls === 'STRICT') {
        this.refuse(socket, chain, facts, original, startTime, startHr, 'mtls_required', 'NR', `filter chain ${chain.name}: mTLS STRICT: plaintext refused`);
        return;
      }
    }
    this.start(socket, state, chain, choice.why, facts, alpn, original, startTime, startHr, undefined, undefined, read);
  }

  /** A connection refused by the chain's mTLS requirement: logged, counted, closed. */
  private refuse(socket: Socket, chain: FilterChain, facts: ConnectionFacts, original: OriginalDestination | undefined, startTime: number, startHr: bigint, reason: string, flag: string, detail: string): void {
    const services = this.opts.services;
    const r = this.record(socket, startTime);
    r.requested_server_name = facts.sni ?? null;
    r.route_name = chain.name;
    r.response_flags = flag;
    r.tollgate_reason = reason;
    r.connection_termination_details = detail;
    if (original) r.downstream_local_address = addrPort(original.ip, original.port);
    r.duration = elapsedMs(startHr);
    services.accessLog.log(r);
    services.metrics.denied(reason);
    socket.destroy();
  }

  /**
   * Hands the connection (decrypted when mesh mTLS was terminated) to the chain's network filter.
   * `read`: bytes the inspector already read, given to a TCP proxy as initialBytes and pushed back
   * on the socket for every other filter.
   */
  private start(socket: Socket, state: ListenerState, chain: FilterChain, chainWhy: string, facts: ConnectionFacts, alpn: readonly string[], original: OriginalDestination | undefined, startTime: number, startHr: bigint, peer: PeerIdentity | undefined, peerCertificate: PeerCertificateFacts | undefined, read: Buffer): void {
    const services = this.opts.services;
    const mutualTls = isTlsSocket(socket);
    const f = chain.filter;
    const handOver = f.type === 'tcp' && read.length > 0;
    if (read.length > 0 && !handOver) socket.unshift(read);
    const conn = new AcceptedConnection({
      socket,
      snapshot: state.snapshot,
      listener: state.listener,
      chain,
      chainWhy,
      // As Envoy restores it: a captured connection's local address is its original destination.
      localAddress: original?.ip ?? this.localIp(socket),
      localPort: original?.port ?? this.localPort(socket),
      sni: facts.sni,
      alpn,
      tls: facts.tls,
      mutualTls,
      peer,
      peerCertificate,
      startTime,
      startHr,
      originalDestination: original,
      initialBytes: handOver ? read : undefined,
      services,
      currentSnapshot: this.currentSnapshot,
    });
    switch (f.type) {
      case 'tcp':
        if (!socket.destroyed) {
          this.tunnels.set(socket, { snapshot: state.snapshot, chain });
          // The accepted socket's close listener (onConnection) removes it; mesh mTLS runs the
          // tunnel on the TLSSocket that wraps the accepted socket.
          if (mutualTls) socket.once('close', () => this.tunnels.delete(socket));
        }
        handleTcpProxy(conn, f);
        return;
      case 'explicit_proxy':
        handleExplicitProxy(conn, f, this.opts.http);
        return;
      case 'http':
        if (chain.tls) {
          // Built when the snapshot was applied (tls-store.ts): a snapshot without it was rejected.
          const ctx = state.snapshot.part(DOWNSTREAM_TLS)?.get(chain);
          if (ctx === undefined) {
            const r = this.record(socket, startTime);
            r.requested_server_name = facts.sni ?? null;
            r.route_name = chain.name;
            r.response_flags = 'DPE';
            r.tollgate_reason = 'tls_credential_unavailable';
            r.connection_termination_details = `filter chain ${chain.name}: no TLS context was built for this snapshot`;
            services.accessLog.log(r);
            services.metrics.denied('tls_credential_unavailable');
            socket.destroy();
            return;
          }
          terminateTls(socket, ctx, services.limits.tlsHelloTimeoutMs, (t) => {
            if (t.ok) {
              this.opts.http.handle(copyConnection(conn, t.peer !== undefined ? { socket: t.socket, peerCertificate: t.peer } : { socket: t.socket }), f);
              return;
            }
            const r = emptyRecord(startTime, addrPort(conn.remoteAddress, conn.remotePort), addrPort(conn.localAddress, conn.localPort));
            r.requested_server_name = facts.sni ?? null;
            r.route_name = chain.name;
            r.response_flags = 'DPE';
            r.tollgate_reason = t.reason;
            r.connection_termination_details = t.detail;
            r.duration = elapsedMs(startHr);
            services.accessLog.log(r);
            services.metrics.denied(t.reason);
          });
          return;
        }
        this.opts.http.handle(conn, f);
        return;
    }
  }

  private record(socket: Socket, startTime: number): AccessLogRecord {
    return emptyRecord(startTime, addrPort(plainIp(socket.remoteAddress), socket.remotePort ?? 0), addrPort(this.localIp(socket), this.localPort(socket)));
  }

  private localIp(socket: Socket): string {
    return this.fixedLocalIp ?? plainIp(socket.localAddress);
  }

  private localPort(socket: Socket): number {
    return this.fixedLocalIp !== undefined && this.boundPort !== 0 ? this.boundPort : (socket.localPort ?? 0);
  }
}
