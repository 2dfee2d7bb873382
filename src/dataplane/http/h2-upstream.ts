/**
 * Upstream HTTP/2 (clusters with `http2`: ports declared HTTP2/GRPC, or `h2UpgradePolicy:
 * UPGRADE`): Node's `node:http2` client (nghttp2) over sockets from the same dialer as HTTP/1.1
 * (SSRF guard, source address, connect timeout, TLS with ALPN `h2`).
 *
 * Pooling is by streams: a request takes a slot on a connection to its endpoint that has one —
 * fewer streams open than the server's SETTINGS_MAX_CONCURRENT_STREAMS, and fewer opened in total
 * than `maxRequestsPerConnection` — else a new connection is dialled (requests that arrive while it
 * connects share it). Each request is one H2UpstreamStream, an UpstreamChannel like an HTTP/1.1
 * connection, so the router's attempts, retries, timeouts and circuit breakers are the same code.
 *
 * GOAWAY is a graceful drain: the connection takes no new stream, the streams it already accepted
 * finish, and it closes when the last one ends. A stream the server did not process (above the
 * GOAWAY's last stream id, or REFUSED_STREAM) fails as 'refused', which the router sends again on
 * another connection whatever the method. Idle connections close after the pool's idle timeout.
 *
 * Translation: the router's head (HTTP/1.1 text from buildRequestHead: hop-by-hop fields already
 * dropped, Host written from the routed authority) becomes `:method`/`:scheme`/`:authority`/
 * `:path` plus lower-case fields; `te: trailers` is kept when the client sent it (gRPC servers
 * require it). The response becomes a ResponseHead: framed by its content-length when it has one,
 * else streamed (chunked to an HTTP/1.1 client, with the trailers).
 */
import type * as http2 from 'node:http2';
import { H2_CANCEL, H2_FLAG_END_STREAM, H2_REFUSED_STREAM, http2Module } from './http2-module.js';
import { STATUS_CODES } from 'node:http';
import { addrPort, plainIp } from '../context.js';
import type { UpstreamTarget } from '../upstream/cluster-manager.js';
import type { UpstreamFailure } from '../upstream/failure.js';
import type { ResponseHead } from './head.js';
import type { Framing } from './serialize.js';
import type { Sweepable, Sweeper } from '../sweeper.js';
import type { SocketDialResult, UpstreamChannel, UpstreamUser } from './upstream-channel.js';
import type { CounterChild } from '../observe/metrics.js';
import type { MtlsLabels } from '../observe/istio-metrics.js';

/** Streams assumed per connection until the server's SETTINGS say otherwise (RFC 9113 recommends >= 100). */
const ASSUMED_MAX_STREAMS = 100;
/** Never more streams on one connection than this, whatever the server allows. */
const STREAM_CAP = 1000;
/** Fields that never go on an h2 stream (RFC 9113 §8.2.2), plus Host (it becomes :authority). */
const NOT_ON_H2 = new Set(['host', 'connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te']);

export type SocketDialer = (target: UpstreamTarget, connectTimeoutMs: number | undefined) => Promise<SocketDialResult>;
type DialFailure = { readonly ok: false; readonly failure: UpstreamFailure };
export type H2Acquired = { readonly ok: true; readonly conn: UpstreamChannel } | DialFailure;

/** One pooled HTTP/2 connection to an endpoint. */
class H2Connection {
  /** Streams reserved or open now. */
  active = 0;
  /** Streams ever opened (maxRequestsPerConnection). */
  opened = 0;
  idleSince: number;
  /** GOAWAY received, the request limit reached, or closed: takes no new stream. */
  draining = false;
  readonly localAddress: string;
  readonly upstreamHost: string;

  constructor(
    private readonly pool: H2Pool,
    readonly key: string,
    readonly target: UpstreamTarget,
    readonly session: http2.ClientHttp2Session,
    localIp: string,
    localPort: number,
    readonly mtls: MtlsLabels | undefined,
  ) {
    this.idleSince = pool.sweeper.now;
    this.localAddress = addrPort(plainIp(localIp), localPort);
    this.upstreamHost = addrPort(target.ip, target.port);
    session.on('error', noop);
    session.on('goaway', this.onGoaway);
    session.on('close', this.onClose);
  }

  /** Whether one more stream may start here now. */
  get hasRoom(): boolean {
    if (this.draining || this.session.destroyed) return false;
    const max = this.target.cluster.connectionPool?.maxRequestsPerConnection;
    if (max !== undefined && this.opened >= max) return false;
    const remote = this.session.remoteSettings.maxConcurrentStreams;
    const limit = this.session.connecting || remote === undefined ? ASSUMED_MAX_STREAMS : Math.min(remote, STREAM_CAP);
    return this.active < limit;
  }

  reserve(): H2UpstreamStream {
    this.active++;
    const s = new H2UpstreamStream(this, this.opened);
    this.opened++;
    const max = this.target.cluster.connectionPool?.maxRequestsPerConnection;
    if (max !== undefined && this.opened >= max) this.drain();
    return s;
  }

  streamDone(): void {
    this.active--;
    if (this.active > 0) return;
    this.idleSince = this.pool.sweeper.now;
    if (this.draining) this.session.close();
    else if (this.pool.closing) this.drain();
  }

  /** No new streams; close once the streams in flight end. */
  drain(): void {
    if (this.draining) return;
    this.draining = true;
    this.pool.forget(this);
    if (this.active === 0) this.session.close();
  }

  private readonly onGoaway = (): void => {
    this.drain();
  };

  private readonly onClose = (): void => {
    this.draining = true;
    this.pool.forget(this);
  };
}

/** One request on an H2Connection: the slot is reserved at once, the stream opened by sendHead. */
export class H2UpstreamStream implements UpstreamChannel {
  readonly target: UpstreamTarget;
  readonly upstreamHost: string;
  readonly localAddress: string;
  readonly mtls: MtlsLabels | undefined;
  dead = false;
  private user: UpstreamUser | null = null;
  private stream: http2.ClientHttp2Stream | null = null;
  private released = false;
  private completed = false;
  private method = 'GET';

  constructor(
    private readonly conn: H2Connection,
    readonly served: number,
  ) {
    this.target = conn.target;
    this.upstreamHost = conn.upstreamHost;
    this.localAddress = conn.localAddress;
    this.mtls = conn.mtls;
  }

  attach(user: UpstreamUser, method: string): void {
    this.user = user;
    this.method = method;
  }

  sendHead(text: string, framing: Framing, teTrailers: boolean): void {
    const headers = h2RequestHeaders(text, this.target.cluster.tls !== undefined ? 'https' : 'http', teTrailers);
    const endStream = framing === 'none' || framing === 0;
    let s: http2.ClientHttp2Stream;
    try {
      s = this.conn.session.request(headers, { endStream });
    } catch (err) {
      // The session went away between the reservation and now: never processed.
      this.fail('refused', `upstream HTTP/2 connection unusable: ${(err as Error).message}`);
      return;
    }
    this.stream = s;
    s.on('response', this.onResponse);
    s.on('data', this.onData);
    s.on('trailers', this.onTrailers);
    s.on('end', this.onEnd);
    s.on('drain', this.onDrain);
    s.on('error', noop);
    s.on('close', this.onClose);
  }

  sendBody(chunk: Buffer): boolean {
    const s = this.stream;
    if (s === null || s.destroyed) return true;
    return s.write(chunk);
  }

  sendEnd(): void {
    // Request trailers are not sent upstream over HTTP/2 (no client of ours sends them).
    const s = this.stream;
    if (s !== null && !s.destroyed && !s.writableEnded) s.end();
  }

  cork(): void {}
  uncork(): void {}

  /** HTTP/2 DATA frames carry no chunks: the body is decoded data, re-chunked for an HTTP/1.1 client. */
  passChunkedBody(): boolean {
    return false;
  }

  pause(): void {
    this.stream?.pause();
  }

  resume(): void {
    this.stream?.resume();
  }

  release(_reusable: boolean): void {
    // The connection's reuse does not depend on one stream: a complete stream just frees its slot.
    this.user = null;
    if (!this.completed) this.reset();
    this.free();
  }

  destroy(): void {
    this.dead = true;
    this.user = null;
    this.reset();
    this.free();
  }

  private reset(): void {
    const s = this.stream;
    if (s !== null && !s.destroyed) s.close(H2_CANCEL);
  }

  private free(): void {
    if (this.released) return;
    this.released = true;
    this.conn.streamDone();
  }

  private fail(kind: 'refused' | 'reset' | 'closed', detail: string): void {
    const u = this.user;
    this.dead = true;
    this.user = null;
    this.free();
    u?.onUpstreamFailure(kind, detail, undefined);
  }

  private readonly onResponse = (h: http2.IncomingHttpHeaders & http2.IncomingHttpStatusHeader, flags: number): void => {
    this.user?.onUpstreamHead(responseHeadOf(h, (flags & H2_FLAG_END_STREAM) !== 0, this.method));
  };

  private readonly onData = (chunk: Buffer): void => {
    const u = this.user;
    if (u === null) return;
    u.onUpstreamBody(chunk);
    if (this.user === u) u.onUpstreamReadDone();
  };

  private readonly onTrailers = (t: http2.IncomingHttpHeaders): void => {
    this.user?.onUpstreamTrailers(fieldList(t));
  };

  private readonly onEnd = (): void => {
    this.completed = true;
    this.user?.onUpstreamComplete();
  };

  private readonly onDrain = (): void => {
    this.user?.onUpstreamDrain();
  };

  private readonly onClose = (): void => {
    if (this.completed || this.user === null) {
      this.free();
      return;
    }
    const code = this.stream?.rstCode ?? 0;
    if (code === H2_REFUSED_STREAM) this.fail('refused', 'upstream refused the HTTP/2 stream (REFUSED_STREAM or above the GOAWAY last stream id)');
    else this.fail(code === 0 ? 'closed' : 'reset', `upstream HTTP/2 stream closed${code !== 0 ? ` with error code ${code}` : ''} before the response was complete`);
  };
}

/** The HTTP/2 connections of one engine, by pool key (cluster, endpoint, source address, SNI). */
export class H2Pool implements Sweepable {
  private readonly conns = new Map<string, H2Connection[]>();
  /** Dials in progress: requests that arrive meanwhile wait for the same connection. */
  private readonly dialing = new Map<string, Promise<H2Connection | DialFailure>>();
  private registered = false;
  /** Shutdown: a connection closes as soon as it has no stream. */
  closing = false;

  constructor(
    readonly sweeper: Sweeper,
    private readonly dialSocket: SocketDialer,
    private readonly idleTimeoutMs: number,
    private readonly reused: (cluster: string) => CounterChild | undefined,
  ) {}

  /** A stream slot to the target now, or once a connection is dialled. */
  acquire(target: UpstreamTarget, key: string): H2UpstreamStream | Promise<H2Acquired> {
    const c = this.withRoom(key);
    if (c !== undefined) {
      const counter = this.reused(target.cluster.name);
      if (counter !== undefined) counter.value++;
      return c.reserve();
    }
    let p = this.dialing.get(key);
    if (p === undefined) {
      p = this.open(target, key);
      this.dialing.set(key, p);
      const clear = (): void => void this.dialing.delete(key);
      p.then(clear, clear);
    }
    return p.then((r): H2Acquired | Promise<H2Acquired> => {
      if (!(r instanceof H2Connection)) return r;
      // Shared by the requests that waited for it; past its room, the next one dials again.
      if (r.hasRoom) return { ok: true, conn: r.reserve() };
      const again = this.acquire(target, key);
      return again instanceof H2UpstreamStream ? { ok: true, conn: again } : again;
    });
  }

  private withRoom(key: string): H2Connection | undefined {
    const list = this.conns.get(key);
    if (list === undefined) return undefined;
    for (let i = 0; i < list.length; i++) if (list[i]!.hasRoom) return list[i];
    return undefined;
  }

  private async open(target: UpstreamTarget, key: string): Promise<H2Connection | DialFailure> {
    const r = await this.dialSocket(target, undefined);
    if (!r.ok) return r;
    const socket = r.socket;
    const scheme = target.cluster.tls !== undefined ? 'https' : 'http';
    const session = http2Module().connect(`${scheme}://${addrPort(target.ip, target.port)}`, { createConnection: () => socket, settings: { enablePush: false } });
    const c = new H2Connection(this, key, target, session, r.localIp, r.localPort, r.mtls);
    let list = this.conns.get(key);
    if (list === undefined) {
      list = [];
      this.conns.set(key, list);
    }
    list.push(c);
    if (!this.registered) {
      this.registered = true;
      this.sweeper.add(this);
    }
    return c;
  }

  forget(c: H2Connection): void {
    const list = this.conns.get(c.key);
    if (list === undefined) return;
    const i = list.indexOf(c);
    if (i >= 0) list.splice(i, 1);
    if (list.length === 0) this.conns.delete(c.key);
  }

  sweep(now: number): void {
    for (const list of this.conns.values()) {
      for (const c of [...list]) {
        const limit = c.target.cluster.connectionPool?.idleTimeoutMs ?? this.idleTimeoutMs;
        if (c.active === 0 && now - c.idleSince >= limit) c.drain();
      }
    }
    if (this.conns.size === 0 && this.registered) {
      this.registered = false;
      this.sweeper.delete(this);
    }
  }

  /** Closes every connection gracefully (shutdown): streams in flight finish; connections opened later close when idle. */
  closeAll(): void {
    this.closing = true;
    for (const list of [...this.conns.values()]) for (const c of [...list]) c.drain();
  }

  get connections(): number {
    let n = 0;
    for (const list of this.conns.values()) n += list.length;
    return n;
  }
}

function noop(): void {}

/** The router's HTTP/1.1 head text as h2 request fields. */
export function h2RequestHeaders(text: string, scheme: string, teTrailers: boolean): http2.OutgoingHttpHeaders {
  const lineEnd = text.indexOf('\r\n');
  const requestLine = text.slice(0, lineEnd);
  const sp1 = requestLine.indexOf(' ');
  const sp2 = requestLine.lastIndexOf(' ');
  const out: http2.OutgoingHttpHeaders = { ':method': requestLine.slice(0, sp1), ':scheme': scheme, ':path': requestLine.slice(sp1 + 1, sp2) };
  let pos = lineEnd + 2;
  while (pos < text.length) {
    const end = text.indexOf('\r\n', pos);
    if (end <= pos) break; // the empty line ends the head
    const colon = text.indexOf(':', pos);
    const name = text.slice(pos, colon).toLowerCase();
    const value = text.slice(colon + 2, end);
    pos = end + 2;
    if (name === 'host') {
      out[':authority'] = value;
      continue;
    }
    if (NOT_ON_H2.has(name)) continue;
    const prev = out[name];
    out[name] = prev === undefined ? value : Array.isArray(prev) ? [...prev, value] : [String(prev), value];
  }
  if (teTrailers) out['te'] = 'trailers';
  return out;
}

/** h2 fields (pseudo-headers dropped) as the flat [name, value, ...] list heads carry. */
function fieldList(h: http2.IncomingHttpHeaders): string[] {
  const out: string[] = [];
  for (const name of Object.keys(h)) {
    if (name.charCodeAt(0) === 0x3a) continue; // ':'
    const v = h[name];
    if (v === undefined) continue;
    if (Array.isArray(v)) for (const x of v) out.push(name, x);
    else out.push(name, v);
  }
  return out;
}

function responseHeadOf(h: http2.IncomingHttpHeaders & http2.IncomingHttpStatusHeader, endStream: boolean, method: string): ResponseHead {
  const status = Number(h[':status'] ?? 502);
  const cl = h['content-length'];
  const length = cl !== undefined && /^\d{1,15}$/.test(cl) ? Number(cl) : -1;
  const bodyless = endStream || method === 'HEAD' || status === 204 || status === 304;
  return {
    kind: 'response',
    version: '1.1',
    statusCode: status,
    reason: STATUS_CODES[status] ?? '',
    headers: fieldList(h),
    contentLength: length,
    chunked: false,
    bodyFraming: bodyless ? 'none' : length >= 0 ? 'length' : 'chunked',
    keepAlive: true,
    connectionTokens: [],
    upgrade: false,
    upgradeProtocol: undefined,
  };
}
