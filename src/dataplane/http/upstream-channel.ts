/**
 * What the router and an upstream connection say to each other, whatever the protocol: types
 * only, so the HTTP/1.1 pool (upstream-pool.ts) and the HTTP/2 one (h2-upstream.ts) both implement
 * them without importing each other.
 */
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { UpstreamTarget } from '../upstream/cluster-manager.js';
import type { UpstreamFailure } from '../upstream/failure.js';
import type { MtlsLabels } from '../observe/istio-metrics.js';
import type { HttpParseError } from './errors.js';
import type { ResponseHead } from './head.js';
import type { Framing } from './serialize.js';

/**
 * 'refused': the upstream did not process the request (HTTP/2 REFUSED_STREAM, or a stream above a
 * GOAWAY's last stream id), so it may be sent again whatever its method.
 */
export type UpstreamFailureKind = 'protocol' | 'reset' | 'closed' | 'refused';

/**
 * One request's way to an upstream: an HTTP/1.1 connection (UpstreamConn) or a stream on a pooled
 * HTTP/2 connection (h2-upstream.ts). The router writes the head it built (HTTP/1.1 text, so both
 * carry exactly the same fields) and the body through it, and gets the response as UpstreamUser
 * events, whatever the protocol.
 */
export interface UpstreamChannel {
  readonly target: UpstreamTarget;
  /** "ip:port" of the endpoint, and of the local end of the connection. */
  readonly upstreamHost: string;
  readonly localAddress: string;
  /** Requests the connection carried before this one (0 = fresh). */
  readonly served: number;
  readonly dead: boolean;
  /** The connection is mesh mTLS this proxy originated: its identity and the server's verified one. */
  readonly mtls: MtlsLabels | undefined;
  attach(user: UpstreamUser, method: string): void;
  /**
   * Sends the request head (as buildRequestHead wrote it) and declares how the body is framed;
   * 'none' or 0 means the head is the whole request. `teTrailers`: the client accepts trailers.
   */
  sendHead(text: string, framing: Framing, teTrailers: boolean): void;
  /** Sends body bytes; false when the upstream is full (wait for onUpstreamDrain). */
  sendBody(chunk: Buffer): boolean;
  /** Ends the request body (with the client's trailers, where the protocol carries them). */
  sendEnd(trailers: readonly string[] | null): void;
  /** Batches the writes that follow until uncork() (one syscall for head + replayed body). */
  cork(): void;
  uncork(): void;
  /**
   * Called while the response head is handed on: its chunked body goes to onUpstreamChunked as
   * received instead of decoded to onUpstreamBody. False when the channel cannot (HTTP/2 frames
   * carry no chunks) or the body is not chunked.
   */
  passChunkedBody(): boolean;
  /** Stops / restarts reading the response (downstream backpressure). */
  pause(): void;
  resume(): void;
  /** The user is done. `reusable`: the request was sent completely and the response read completely. */
  release(reusable: boolean): void;
  /** Ends this request now; an HTTP/1.1 connection is closed, an HTTP/2 stream reset. */
  destroy(): void;
}

/** The exchange using a connection: receives the response events. */
export interface UpstreamUser {
  onUpstreamHead(h: ResponseHead): void;
  onUpstreamBody(b: Buffer): void;
  /** After passChunkedBody(): validated bytes of the chunked body as received; `dataBytes` of them are data. */
  onUpstreamChunked(bytes: Buffer, dataBytes: number): void;
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
  /**
   * Body bytes this user was handed may still be referenced: written downstream but queued, not
   * yet taken by the kernel (the connection then reads into a new buffer instead of reusing it).
   */
  bodyQueued(): boolean;
}

/** A connected (and, for TLS clusters, handshaken) socket to an endpoint, or why there is none. */
export type SocketDialResult =
  | { readonly ok: true; readonly socket: Socket | TLSSocket; readonly localIp: string; readonly localPort: number; readonly mtls: MtlsLabels | undefined }
  | { readonly ok: false; readonly failure: UpstreamFailure };
