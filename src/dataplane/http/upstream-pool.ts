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
 * it. Idle connections are reused LIFO (the warmest first) and closed once idle longer than
 * `idleTimeoutMs` (one sweeper tick, no timer per connection).
 *
 * How many idle connections a key keeps follows its traffic: up to the most connections it had in
 * use at once over the last one or two idle-timeout windows, never more than the cluster's
 * connectionPool.tcp.maxConnections (else `maxIdle`). A fixed small cap churns: when more requests
 * than the cap are in flight, each burst of responses closes the excess and the next burst dials
 * them again, filling the ephemeral port range with TIME_WAIT.
 */
import type { OnReadOpts, Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { addrPort, plainIp } from '../context.js';
import type { Cluster } from '../../snapshot/types.js';
import type { ClusterManager, UpstreamTarget } from '../upstream/cluster-manager.js';
import type { UpstreamFailure } from '../upstream/failure.js';
import type { HttpParseError } from './errors.js';
import type { ResponseHead } from './head.js';
import type { SocketDialResult, UpstreamChannel, UpstreamUser } from './upstream-channel.js';
import { H2Pool } from './h2-upstream.js';
import { HttpParser, type HttpParserHandler } from './parser.js';
import { CHUNK_END, LAST_CHUNK, chunkHeader, lastChunk, type Framing } from './serialize.js';
import type { Sweepable, Sweeper } from '../sweeper.js';
import { originatesTls, originateTls, sniFor } from './upstream-tls.js';
import { upstreamMtlsLabelsOf } from '../mesh/peer-identity.js';
import type { MtlsLabels } from '../observe/istio-metrics.js';
import type { Counter, CounterChild, Gauge } from '../observe/metrics.js';
import { ReadBuffers } from '../tcp/user-buffer.js';
import { SocketWriter } from './socket-write.js';

export type { UpstreamChannel, UpstreamFailureKind, UpstreamUser } from './upstream-channel.js';

const EMPTY = Buffer.alloc(0);
/**
 * An upstream connection's own read buffer once its responses stream in bulk: room for a 64 KiB
 * body with its head, so such a response is one read and one downstream write instead of a full
 * 64 KiB read, its write, and a second read and write for the few hundred bytes left over. Only
 * the pages a read fills become resident.
 */
const BODY_READ_SIZE = 128 * 1024;

/**
 * Reads of a plain-TCP upstream connection (net's `onread`, set when the socket is opened): each
 * read lands in a reused buffer (tcp/user-buffer.ts) and goes straight to the connection's
 * parser — no Readable stream, no 'data' event, no 64 KiB ArrayBuffer per read. A body chunk in
 * the connection's own buffer is written downstream before the next read overwrites it; when the
 * write could not complete at once (queued in the downstream socket, or handed to an HTTP/2
 * stream), the next read gets a new buffer instead.
 */
export class UpstreamReads {
  private readonly buffers = new ReadBuffers(BODY_READ_SIZE);
  private conn: UpstreamConn | null = null;
  /** Bytes read before the connection object existed (a server that talks first): replayed to it. */
  private early: Buffer[] | null = null;
  readonly onread = { buffer: this.buffers.nextBuffer, callback: (n: number, buf: Uint8Array): boolean => this.onRead(n, buf) };

  bind(conn: UpstreamConn): void {
    this.conn = conn;
    const early = this.early;
    this.early = null;
    if (early !== null) for (const b of early) conn.onChunk(b);
  }

  private onRead(n: number, buf: Uint8Array): boolean {
    const bufs = this.buffers;
    const chunk = bufs.take(n, buf);
    const c = this.conn;
    if (c === null) {
      (this.early ??= []).push(bufs.lastOwn ? Buffer.from(chunk) : chunk);
      return true;
    }
    if (c.onChunk(chunk) && bufs.lastOwn) bufs.dropOwn();
    return true;
  }
}

export class UpstreamConn implements UpstreamChannel, HttpParserHandler<ResponseHead> {
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
  private chunked = false;
  /** tollgate_http_upstream_connections_reused_total child for this connection's cluster. */
  reusedCounter: CounterChild | undefined = undefined;
  /** Handed to a request (counted in its key's `busy`) and not yet given back. */
  inUse = false;
  /** After a 101: the socket belongs to a tunnel; reads are passed on as 'data' events. */
  private tunneled = false;
  /** Request writes through the socket's handle (socket-write.ts), except while corked. */
  private readonly writer: SocketWriter;
  private corked = false;

  constructor(
    private readonly pool: UpstreamPool,
    readonly keyPool: KeyPool,
    readonly socket: Socket | TLSSocket,
    readonly target: UpstreamTarget,
    readonly key: string,
    localIp: string,
    localPort: number,
    readonly mtls: MtlsLabels | undefined,
    reads: UpstreamReads | undefined,
  ) {
    this.parser = new HttpParser('response', this);
    this.localAddress = addrPort(plainIp(localIp), localPort);
    this.upstreamHost = addrPort(target.ip, target.port);
    this.writer = new SocketWriter(socket, this.onDrain);
    if (reads === undefined) socket.on('data', this.onData);
    socket.on('end', this.onEnd);
    socket.on('error', this.onSocketError);
    socket.on('close', this.onClose);
    socket.on('drain', this.onDrain);
    reads?.bind(this);
  }

  /** Gives the connection to a user for one request/response. */
  attach(user: UpstreamUser, method: string): void {
    this.user = user;
    this.completed = false;
    this.interim = false;
    this.parser.expectResponseTo(method);
  }

  sendHead(text: string, framing: Framing): void {
    this.chunked = framing === 'chunked';
    this.write(text);
  }

  sendBody(chunk: Buffer): boolean {
    if (!this.chunked) return this.write(chunk);
    // The chunk and its framing in one system call (corked, the Writable joins them into one writev).
    if (!this.corked) return this.writer.writev([chunkHeader(chunk.length), chunk, CHUNK_END]);
    this.write(chunkHeader(chunk.length));
    this.write(chunk);
    return this.write(CHUNK_END);
  }

  sendEnd(trailers: readonly string[] | null): void {
    if (this.chunked) this.write(trailers !== null ? lastChunk(trailers) : LAST_CHUNK);
  }

  /** false: bytes are still queued (onUpstreamDrain follows). Corked writes collect in the Writable for one writev. */
  private write(data: string | Buffer): boolean {
    if (!this.corked) return this.writer.write(data);
    const s = this.socket;
    return typeof data === 'string' ? s.write(data, 'latin1') : s.write(data);
  }

  passChunkedBody(): boolean {
    this.parser.passChunkedBody();
    return this.parser.passesChunkedBody;
  }

  cork(): void {
    this.corked = true;
    this.socket.cork();
  }

  uncork(): void {
    this.corked = false;
    this.socket.uncork();
  }

  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
  }

  release(reusable: boolean): void {
    this.pool.checkIn(this);
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
    this.pool.checkIn(this);
    this.dead = true;
    this.user = null;
    this.socket.destroy();
    this.pool.forgetIfEmpty(this.keyPool);
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
    this.pool.checkIn(this);
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

  onChunkedBytes(bytes: Buffer, dataBytes: number): void {
    this.user?.onUpstreamChunked(bytes, dataBytes);
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
    this.onChunk(chunk);
  };

  /**
   * One read from the upstream. Returns true when part of `chunk` may still be referenced after
   * this call (a downstream write of it is queued, or a tunnel took the socket over).
   */
  onChunk(chunk: Buffer): boolean {
    const u = this.user;
    if (this.tunneled) {
      // After a 101 the tunnel reads the socket through 'data' events (Tunnel, tcp/pipe.ts).
      this.socket.emit('data', chunk);
      return true;
    }
    if (u === null) {
      // Bytes on an idle connection: the server is confused or malicious; never reuse it.
      this.pool.remove(this);
      this.destroy();
      return false;
    }
    const n = this.parser.execute(chunk);
    if (this.user !== u) return u.bodyQueued(); // failed inside execute
    if (this.parser.upgraded) {
      this.detach();
      this.tunneled = true;
      u.onUpstreamUpgrade(n < chunk.length ? chunk.subarray(n) : EMPTY);
      return true;
    }
    if (this.completed) {
      if (n < chunk.length) this.dead = true; // bytes after the response: never reuse
      u.onUpstreamComplete();
      return u.bodyQueued();
    }
    u.onUpstreamReadDone();
    return u.bodyQueued();
  }

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
    this.pool.checkIn(this);
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

/**
 * Upstream affinity of one downstream HTTP/1.1 connection: the upstream connection its last
 * response came on, taken again for its next request when that request would be sent the same way
 * anyway — no endpoint choice, no pool key, no pool lookup per request (as Envoy keeps a
 * connection pool per downstream connection). It applies when the request routes to the same
 * cluster on the same snapshot and the cluster leaves nothing to decide per request (allowsAffinity):
 * STATIC endpoints, ROUND_ROBIN or RANDOM (spread per connection instead of per request), no
 * consistent hash, outlier detection, connectionPool limits, source address or HTTP/2; and only for
 * a request's first attempt. The connection waits in the pool meanwhile, so the idle timeout, the
 * idle cap and other requests may still take or close it; then the request takes the usual path.
 */
export class UpstreamAffinity {
  private conn: UpstreamConn | null = null;
  private snapshot: object | null = null;

  /** The connection of the response just completed (called after it went back to the pool). */
  remember(c: UpstreamChannel, snapshot: object): void {
    if (c instanceof UpstreamConn && !c.dead && !c.inUse && c.target.localAddress === undefined && allowsAffinity(c.target.cluster)) {
      this.conn = c;
      this.snapshot = snapshot;
    } else this.conn = null;
  }

  /** The remembered connection, out of the pool, when this request may use it (see the class comment). */
  take(pool: UpstreamPool, clusterName: string, snapshot: object): UpstreamConn | undefined {
    const c = this.conn;
    if (c === null) return undefined;
    this.conn = null;
    if (snapshot !== this.snapshot || c.target.cluster.name !== clusterName) return undefined;
    return pool.takeConn(c);
  }
}

/** The cluster leaves nothing to decide per request: its upstream connection may follow the downstream one (UpstreamAffinity). */
export function allowsAffinity(c: Cluster): boolean {
  return (
    c.type === 'STATIC' &&
    (c.lbPolicy === 'ROUND_ROBIN' || c.lbPolicy === 'RANDOM') &&
    c.consistentHash === undefined &&
    c.outlierDetection === undefined &&
    c.connectionPool === undefined &&
    c.http2 !== true &&
    c.sourceAddress === undefined &&
    c.sourceAddressPool === undefined
  );
}

export type DialResult = { readonly ok: true; readonly conn: UpstreamChannel } | { readonly ok: false; readonly failure: UpstreamFailure };

export interface PoolMetrics {
  readonly created: Counter;
  readonly reused: Counter;
  readonly idle: Gauge;
}

/** One pool key's connections: the idle ones, and how many the traffic has needed at once lately. */
export class KeyPool {
  /** LIFO: the most recently used at the end. */
  readonly idle: UpstreamConn[] = [];
  /** Connections handed to requests and not given back. */
  busy = 0;
  /** Highest `busy` in the current window and in the one before (a window is the idle timeout). */
  peak = 0;
  prevPeak = 0;
  windowStart: number;

  constructor(
    readonly key: string,
    now: number,
  ) {
    this.windowStart = now;
  }

  /** Starts a new window when the current one is over; a window with no traffic at all counts as empty. */
  roll(now: number, windowMs: number): void {
    const elapsed = now - this.windowStart;
    if (elapsed < windowMs) return;
    this.prevPeak = elapsed >= 2 * windowMs ? this.busy : this.peak;
    this.peak = this.busy;
    this.windowStart = now;
  }
}

export class UpstreamPool implements Sweepable {
  private readonly keys = new Map<string, KeyPool>();
  private idleCount = 0;
  private registered = false;
  /** Shutdown: connections coming back are closed instead of kept, so none holds the process open. */
  private draining = false;
  /** Streams on pooled HTTP/2 connections, for clusters that speak HTTP/2 upstream. */
  readonly h2: H2Pool;

  constructor(
    private readonly clusters: ClusterManager,
    private readonly sweeper: Sweeper,
    private readonly idleTimeoutMs: number,
    /** Idle connections per key when the cluster has no connectionPool.tcp.maxConnections. */
    private readonly maxIdle: number,
    private readonly metrics: PoolMetrics | undefined,
  ) {
    this.h2 = new H2Pool(sweeper, this.dialSocket, idleTimeoutMs, (cluster) => this.metrics?.reused.labels(cluster));
  }

  /** Pool key for a target: the ClusterManager's key, plus the SNI for TLS clusters. */
  keyOf(target: UpstreamTarget): string {
    if (target.cluster.tls === undefined) return target.poolKey;
    return target.poolKey + '|' + (sniFor(target.cluster, target) ?? '');
  }

  /** An idle connection for `key`, most recently used first; undefined when there is none. */
  take(key: string): UpstreamConn | undefined {
    const kp = this.keys.get(key);
    if (kp === undefined) return undefined;
    const list = kp.idle;
    while (list.length > 0) {
      const c = list.pop()!;
      this.idleCount--;
      // `dead` is set on the socket's end/error/close: no stream getters on the hot path.
      if (!c.dead) {
        if (c.reusedCounter !== undefined) c.reusedCounter.value++;
        this.checkOut(c);
        return c;
      }
    }
    return undefined;
  }

  /** `c` if it is idle in the pool (not dead, not in use): taken out of it as take() would. */
  takeConn(c: UpstreamConn): UpstreamConn | undefined {
    if (c.dead || c.inUse) return undefined;
    const list = c.keyPool.idle;
    const last = list.length - 1;
    if (last >= 0 && list[last] === c) list.pop();
    else {
      const i = list.indexOf(c);
      if (i < 0) return undefined;
      list.splice(i, 1);
    }
    this.idleCount--;
    if (c.reusedCounter !== undefined) c.reusedCounter.value++;
    this.checkOut(c);
    return c;
  }

  /** A released connection: kept idle while its key's recent concurrency says it will be needed, else closed. */
  put(c: UpstreamConn): void {
    const kp = c.keyPool;
    const cluster = c.target.cluster;
    const now = this.sweeper.now;
    kp.roll(now, cluster.connectionPool?.idleTimeoutMs ?? this.idleTimeoutMs);
    const cap = cluster.connectionPool?.maxConnections ?? this.maxIdle;
    if (this.draining || kp.idle.length >= Math.min(cap, Math.max(kp.peak, kp.prevPeak))) {
      c.destroy();
      return;
    }
    if (this.keys.get(kp.key) !== kp) this.keys.set(kp.key, kp); // the sweeper dropped it while c was busy
    c.idleSince = now;
    kp.idle.push(c);
    this.idleCount++;
    if (!this.registered) {
      this.registered = true;
      this.sweeper.add(this);
    }
  }

  remove(c: UpstreamConn): void {
    const list = c.keyPool.idle;
    const i = list.indexOf(c);
    if (i < 0) return;
    list.splice(i, 1);
    this.idleCount--;
  }

  /** The connection goes to a request: its key's concurrency rises. */
  private checkOut(c: UpstreamConn): void {
    const kp = c.keyPool;
    c.inUse = true;
    kp.roll(this.sweeper.now, c.target.cluster.connectionPool?.idleTimeoutMs ?? this.idleTimeoutMs);
    if (++kp.busy > kp.peak) kp.peak = kp.busy;
  }

  /** The request is done with the connection (released, destroyed or taken over by a tunnel). */
  checkIn(c: UpstreamConn): void {
    if (!c.inUse) return;
    c.inUse = false;
    c.keyPool.busy--;
  }

  /** A key with nothing idle and nothing busy is dropped (with its concurrency history): keys do not accumulate. */
  forgetIfEmpty(kp: KeyPool): void {
    if (kp.busy === 0 && kp.idle.length === 0 && this.keys.get(kp.key) === kp) this.keys.delete(kp.key);
  }

  private keyPool(key: string): KeyPool {
    let kp = this.keys.get(key);
    if (kp === undefined) {
      kp = new KeyPool(key, this.sweeper.now);
      this.keys.set(key, kp);
    }
    return kp;
  }

  /** Opens a new HTTP/1.1 connection. */
  async dial(target: UpstreamTarget, key: string, connectTimeoutMs: number | undefined): Promise<DialResult> {
    // A plain-TCP connection reads into reused buffers (UpstreamReads); TLS decrypts into its own.
    const reads = target.cluster.tls === undefined ? new UpstreamReads() : undefined;
    const r = await this.dialSocket(target, connectTimeoutMs, reads?.onread);
    if (!r.ok) return r;
    const conn = new UpstreamConn(this, this.keyPool(key), r.socket, target, key, r.localIp, r.localPort, r.mtls, reads);
    conn.reusedCounter = this.metrics?.reused.labels(target.cluster.name);
    this.checkOut(conn);
    return { ok: true, conn };
  }

  /**
   * A socket to the target: TCP from the ClusterManager (SSRF guard, source address, connect
   * timeout), then TLS when the cluster has it. `onread` only for clusters without TLS.
   */
  readonly dialSocket = async (target: UpstreamTarget, connectTimeoutMs: number | undefined, onread?: OnReadOpts): Promise<SocketDialResult> => {
    const r = await this.clusters.dial(target, connectTimeoutMs, onread);
    if (!r.ok) return r;
    const cluster = target.cluster;
    let socket: Socket | TLSSocket = r.socket;
    let mtls: MtlsLabels | undefined;
    if (cluster.tls !== undefined && originatesTls(cluster, this.clusters.tls)) {
      const alpn = cluster.http2 === true ? 'h2' : 'http/1.1';
      const t = await originateTls(r.socket, cluster, target, sniFor(cluster, target), connectTimeoutMs ?? cluster.connectTimeoutMs, addrPort(target.ip, target.port), target.localAddress, this.clusters.tls, alpn); // credentialName secrets + rotation
      if (!t.ok) return t;
      socket = t.socket;
      if (cluster.tls.mode === 'ISTIO_MUTUAL') mtls = upstreamMtlsLabelsOf(t.socket);
    }
    this.metrics?.created.labels(cluster.name).inc();
    return { ok: true, socket, localIp: r.localAddress, localPort: r.localPort, mtls };
  };

  sweep(now: number): void {
    for (const [key, kp] of this.keys) {
      const list = kp.idle;
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
      if (list.length === 0 && kp.busy === 0) this.keys.delete(key);
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
    this.h2.closeAll(); // HTTP/2 connections close once their streams end
    this.closeIdle();
  }

  /** Closes every idle connection. */
  private closeIdle(): void {
    for (const kp of this.keys.values()) {
      const list = kp.idle.splice(0);
      for (const c of list) c.destroy();
    }
    this.idleCount = 0;
  }

  get idleConnections(): number {
    return this.idleCount;
  }
}
