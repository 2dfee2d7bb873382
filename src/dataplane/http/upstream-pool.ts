/**
 * Upstream HTTP/1.1 connections and their keep-alive pool, keyed by (cluster, endpoint, source
 * address) — UpstreamTarget.poolKey, plus the SNI for TLS clusters.
 *
 * Connections come from ClusterManager.dial (so the SSRF guard, source address and connect timeout
 * all apply) and are TLS-wrapped here when the cluster says so. Each has one response parser
 * (HttpParser('response')) for its whole life; `expectResponseTo(method)` is called before each
 * request. A connection goes back to the pool only if the response was complete, framed (not
 * read-to-close), the request was sent completely, the parser is idle and no byte followed the
 * response. Anything else — a parse error, a reset, an unfinished body, bytes while idle — destroys
 * it. The pool keeps at most `maxIdle` connections per key (LIFO: the warmest first) and closes
 * those idle longer than `idleTimeoutMs` (one sweeper tick, no timer per connection).
 */
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { addrPort, plainIp } from '../context.js';
import type { ClusterManager, UpstreamTarget } from '../upstream/cluster-manager.js';
import type { UpstreamFailure } from '../upstream/failure.js';
import type { HttpParseError } from './errors.js';
import type { ResponseHead } from './head.js';
import { HttpParser, type HttpParserHandler } from './parser.js';
import type { Sweepable, Sweeper } from './sweeper.js';
import { originateTls, sniFor } from './upstream-tls.js';
import type { Counter, CounterChild, Gauge } from '../observe/metrics.js';

export type UpstreamFailureKind = 'protocol' | 'reset' | 'closed';

/** The exchange using a connection: receives the response events. */
export interface UpstreamUser {
  onUpstreamHead(h: ResponseHead): void;
  onUpstreamBody(b: Buffer): void;
  onUpstreamTrailers(t: string[]): void;
  /** The response is complete (called after the read that completed it). */
  onUpstreamComplete(): void;
  /** A read that did not complete the response has been processed: flush what it produced. */
  onUpstreamReadDone(): void;
  /** 101: the connection is now a tunnel; `rest` are bytes that followed the 101 head. */
  onUpstreamUpgrade(rest: Buffer): void;
  /** The connection failed while this user had it; it is already destroyed. */
  onUpstreamFailure(kind: UpstreamFailureKind, detail: string, err: HttpParseError | undefined): void;
  onUpstreamDrain(): void;
}

const EMPTY = Buffer.alloc(0);

export class UpstreamConn implements HttpParserHandler<ResponseHead> {
  readonly parser: HttpParser<'response'>;
  user: UpstreamUser | null = null;
  /** Requests this connection carried before the current one (0 = fresh). */
  served = 0;
  idleSince = 0;
  dead = false;
  /** "ip:port" the socket is bound to. */
  readonly localAddress: string;
  readonly upstreamHost: string;
  private completed = false;
  private interim = false;
  /** tollgate_http_upstream_connections_reused_total child for this connection's cluster. */
  reusedCounter: CounterChild | undefined = undefined;

  constructor(
    private readonly pool: UpstreamPool,
    readonly socket: Socket | TLSSocket,
    readonly target: UpstreamTarget,
    readonly key: string,
    localIp: string,
    localPort: number,
  ) {
    this.parser = new HttpParser('response', this);
    this.localAddress = addrPort(plainIp(localIp), localPort);
    this.upstreamHost = addrPort(target.ip, target.port);
    socket.on('data', this.onData);
    socket.on('end', this.onEnd);
    socket.on('error', this.onSocketError);
    socket.on('close', this.onClose);
    socket.on('drain', this.onDrain);
  }

  /** Gives the connection to a user for one request/response. */
  attach(user: UpstreamUser, method: string): void {
    this.user = user;
    this.completed = false;
    this.interim = false;
    this.parser.expectResponseTo(method);
  }

  /** The user is done. `reusable`: the request was sent completely and the response read completely. */
  release(reusable: boolean): void {
    if (this.user === null && this.dead) return;
    this.user = null;
    if (!reusable || this.dead || this.socket.destroyed || !this.parser.idle) {
      this.destroy();
      return;
    }
    this.served++;
    // DestinationRule connectionPool.http.maxRequestsPerConnection
    const maxReq = this.target.cluster.connectionPool?.maxRequestsPerConnection;
    if (maxReq !== undefined && this.served >= maxReq) {
      this.destroy();
      return;
    }
    this.parser.resume();
    this.pool.put(this);
  }

  destroy(): void {
    this.dead = true;
    this.user = null;
    this.socket.destroy();
  }

  /** Stops listening (after a 101 the tunnel takes the socket over). */
  detach(): void {
    const s = this.socket;
    s.removeListener('data', this.onData);
    s.removeListener('end', this.onEnd);
    s.removeListener('error', this.onSocketError);
    s.removeListener('close', this.onClose);
    s.removeListener('drain', this.onDrain);
    s.on('error', noop);
    this.dead = true;
    this.user = null;
  }

  // ---------------------------------------------------------------- parser events

  onHead(h: ResponseHead): void {
    if (h.statusCode < 200 && h.statusCode !== 101) {
      this.interim = true; // 100 / 102 / 103: dropped (the proxy answers 100-continue itself)
      return;
    }
    this.user?.onUpstreamHead(h);
  }

  onBody(b: Buffer): void {
    this.user?.onUpstreamBody(b);
  }

  onTrailers(t: string[]): void {
    this.user?.onUpstreamTrailers(t);
  }

  onMessageComplete(): void {
    if (this.interim) {
      this.interim = false;
      return;
    }
    this.completed = true;
    this.parser.pause();
  }

  onError(err: HttpParseError): void {
    const u = this.user;
    this.destroy();
    // A response cut by the upstream's FIN is a terminated connection (UC), not a malformed one.
    if (err.code === 'TG_HTTP_TRUNCATED') u?.onUpstreamFailure('closed', err.message, undefined);
    else u?.onUpstreamFailure('protocol', err.message, err);
  }

  // ---------------------------------------------------------------- socket events

  private readonly onData = (chunk: Buffer): void => {
    const u = this.user;
    if (u === null) {
      // Bytes on an idle connection: the server is confused or malicious; never reuse it.
      this.pool.remove(this);
      this.destroy();
      return;
    }
    const n = this.parser.execute(chunk);
    if (this.user !== u) return; // failed inside execute
    if (this.parser.upgraded) {
      this.detach();
      u.onUpstreamUpgrade(n < chunk.length ? chunk.subarray(n) : EMPTY);
      return;
    }
    if (this.completed) {
      if (n < chunk.length) this.dead = true; // bytes after the response: never reuse
      u.onUpstreamComplete();
      return;
    }
    u.onUpstreamReadDone();
  };

  private readonly onEnd = (): void => {
    const u = this.user;
    this.dead = true;
    if (u !== null) {
      this.parser.finish(); // completes a read-to-close body, or reports a truncated one (onError)
      if (this.user === u) {
        if (this.completed) u.onUpstreamComplete();
        else {
          this.destroy();
          u.onUpstreamFailure('closed', 'upstream closed the connection before the response was complete', undefined);
        }
      }
    } else {
      this.pool.remove(this);
    }
    if (!this.socket.destroyed && this.user === null) this.socket.destroy();
  };

  private readonly onSocketError = (err: NodeJS.ErrnoException): void => {
    const u = this.user;
    this.pool.remove(this);
    this.destroy();
    u?.onUpstreamFailure('reset', `upstream ${err.code ?? err.message}`, undefined);
  };

  private readonly onClose = (): void => {
    this.pool.remove(this);
    const u = this.user;
    this.dead = true;
    this.user = null;
    u?.onUpstreamFailure('closed', 'upstream connection closed', undefined);
  };

  private readonly onDrain = (): void => {
    this.user?.onUpstreamDrain();
  };
}

function noop(): void {}

export type DialResult = { readonly ok: true; readonly conn: UpstreamConn } | { readonly ok: false; readonly failure: UpstreamFailure };

export interface PoolMetrics {
  readonly created: Counter;
  readonly reused: Counter;
  readonly idle: Gauge;
}

export class UpstreamPool implements Sweepable {
  private readonly idle = new Map<string, UpstreamConn[]>();
  private idleCount = 0;
  private registered = false;
  /** Shutdown: connections coming back are closed instead of kept, so none holds the process open. */
  private draining = false;

  constructor(
    private readonly clusters: ClusterManager,
    private readonly sweeper: Sweeper,
    private readonly idleTimeoutMs: number,
    private readonly maxIdle: number,
    private readonly metrics: PoolMetrics | undefined,
  ) {}

  /** Pool key for a target: the ClusterManager's key, plus the SNI for TLS clusters. */
  keyOf(target: UpstreamTarget): string {
    if (target.cluster.tls === undefined) return target.poolKey;
    return target.poolKey + '|' + (sniFor(target.cluster, target) ?? '');
  }

  /** An idle connection for `key`, most recently used first; undefined when there is none. */
  take(key: string): UpstreamConn | undefined {
    const list = this.idle.get(key);
    if (list === undefined) return undefined;
    while (list.length > 0) {
      const c = list.pop()!;
      this.idleCount--;
      // `dead` is set on the socket's end/error/close: no stream getters on the hot path.
      if (!c.dead) {
        if (c.reusedCounter !== undefined) c.reusedCounter.value++;
        return c;
      }
    }
    return undefined;
  }

  put(c: UpstreamConn): void {
    let list = this.idle.get(c.key);
    if (list === undefined) {
      list = [];
      this.idle.set(c.key, list);
    }
    if (list.length >= this.maxIdle || this.draining) {
      c.destroy();
      return;
    }
    c.idleSince = this.sweeper.now;
    list.push(c);
    this.idleCount++;
    if (!this.registered) {
      this.registered = true;
      this.sweeper.add(this);
    }
  }

  remove(c: UpstreamConn): void {
    const list = this.idle.get(c.key);
    if (list === undefined) return;
    const i = list.indexOf(c);
    if (i < 0) return;
    list.splice(i, 1);
    this.idleCount--;
  }

  /** Opens a new connection (TCP from the ClusterManager, then TLS when the cluster has it). */
  async dial(target: UpstreamTarget, key: string, connectTimeoutMs: number | undefined): Promise<DialResult> {
    const r = await this.clusters.dial(target, connectTimeoutMs);
    if (!r.ok) return r;
    const cluster = target.cluster;
    let socket: Socket | TLSSocket = r.socket;
    if (cluster.tls !== undefined) {
      const t = await originateTls(r.socket, cluster, target, sniFor(cluster, target), connectTimeoutMs ?? cluster.connectTimeoutMs, addrPort(target.ip, target.port), target.localAddress, this.clusters.tls); // credentialName secrets + rotation
      if (!t.ok) return t;
      socket = t.socket;
    }
    this.metrics?.created.labels(cluster.name).inc();
    const conn = new UpstreamConn(this, socket, target, key, r.localAddress, r.localPort);
    conn.reusedCounter = this.metrics?.reused.labels(cluster.name);
    return { ok: true, conn };
  }

  sweep(now: number): void {
    for (const [key, list] of this.idle) {
      // DestinationRule connectionPool.http.idleTimeout (per cluster; the newest connection's
      // cluster is the current config), else the engine-wide upstream idle timeout.
      const newest = list[list.length - 1];
      const limit = now - (newest?.target.cluster.connectionPool?.idleTimeoutMs ?? this.idleTimeoutMs);
      // LIFO: the oldest are at the front.
      let n = 0;
      while (n < list.length && list[n]!.idleSince <= limit) n++;
      if (n > 0) {
        const old = list.splice(0, n);
        this.idleCount -= n;
        for (const c of old) c.destroy();
      }
      if (list.length === 0) this.idle.delete(key);
    }
    if (this.metrics) this.metrics.idle.labels().set(this.idleCount);
    if (this.idleCount === 0 && this.registered) {
      this.registered = false;
      this.sweeper.delete(this);
    }
  }

  /** Shutdown: closes every idle connection, and each one released from now on. */
  drain(): void {
    this.draining = true;
    this.closeIdle();
  }

  /** Closes every idle connection. */
  private closeIdle(): void {
    for (const list of this.idle.values()) for (const c of list) c.destroy();
    this.idle.clear();
    this.idleCount = 0;
  }

  get idleConnections(): number {
    return this.idleCount;
  }
}
