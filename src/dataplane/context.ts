/**
 * The contract between the listener layer and the filters that take a connection over (TCP proxy,
 * explicit proxy, the HTTP engine). See docs/dataplane-internals.md §2.
 */
import type { Socket } from 'node:net';
import type { Logger } from '../shared/logger.js';
import type { WorkloadIdentitySource } from '../shared/workload-identity.js';
import type { PeerIdentity } from './mesh/peer-identity.js';
import type { ExplicitProxy, FilterChain, HttpConnectionManager } from '../snapshot/types.js';
import type { AccessLogger } from './observe/access-log.js';
import type { DataPlaneMetrics } from './observe/istio-metrics.js';
import type { CompiledListener, CompiledSnapshot } from './route/compile.js';
import type { ClusterManager } from './upstream/cluster-manager.js';

export interface DataPlaneServices {
  readonly clusters: ClusterManager;
  readonly accessLog: AccessLogger;
  readonly metrics: DataPlaneMetrics;
  readonly logger: Logger;
  /** Tunables shared by the filters. */
  readonly limits: DataPlaneLimits;
  /** This proxy's mesh identity (workload certificate); absent: mesh mTLS is refused. */
  readonly identity?: WorkloadIdentitySource;
}

export interface DataPlaneLimits {
  /** TLS inspector silent-client timeout (listener) and the post-CONNECT ClientHello wait. */
  readonly tlsHelloTimeoutMs: number;
  readonly maxHelloBytes: number;
  /** Explicit proxy: time to receive the CONNECT head. */
  readonly requestHeadTimeoutMs: number;
  /** Overrides the snapshot's TCP idle timeout when set (tests). */
  readonly tcpIdleTimeoutMs?: number;
}

/** The verified client certificate of a terminated connection (filters and the access log read it). */
export interface PeerCertificateFacts {
  /** RFC 2253-style subject, most significant first: `CN=client,O=acme`. */
  readonly subject: string;
  readonly uriSans: readonly string[];
  readonly dnsSans: readonly string[];
  readonly ipSans: readonly string[];
  /** SHA-256 of the DER certificate, lower-case hex (Envoy's x-forwarded-client-cert `Hash`). */
  readonly sha256: string;
  /** The first `spiffe://` URI SAN (a mesh workload's identity), absent when there is none. */
  readonly spiffeId?: string;
}

export interface DownstreamConnection {
  /**
   * Paused. Bytes the listener already read (the TLS inspector's ClientHello) are in initialBytes
   * for a TCP proxy, and pushed back with unshift() for every other filter: read it as fresh.
   */
  readonly socket: Socket;
  /** TCP proxy only: the first bytes of the connection, read by the listener; they go upstream first. */
  readonly initialBytes?: Buffer | undefined;
  readonly snapshot: CompiledSnapshot;
  readonly listener: CompiledListener;
  readonly chain: FilterChain;
  readonly chainWhy: string;
  /** The snapshot's port for this listener (route `match.port` compares this, not the bound port). */
  readonly listenerPort: number;
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly localAddress: string;
  readonly localPort: number;
  readonly sni: string | undefined;
  readonly alpn: readonly string[];
  /** The first bytes were a TLS ClientHello. */
  readonly tls: boolean;
  /** Mesh mTLS was terminated on this connection; `peer` is the identity the client's certificate proved. */
  readonly mutualTls?: boolean;
  readonly peer?: PeerIdentity | undefined;
  /** A terminated connection's verified client certificate (Gateway tls.mode MUTUAL/OPTIONAL_MUTUAL). */
  readonly peerCertificate?: PeerCertificateFacts | undefined;
  readonly startTime: number;
  readonly startHr: bigint;
  /**
   * Where the client was going before the sidecar's capture rules sent it here (SO_ORIGINAL_DST
   * after REDIRECT, the local address under TPROXY). ORIGINAL_DST clusters dial exactly this.
   */
  readonly originalDestination?: { readonly ip: string; readonly port: number } | undefined;
  readonly services: DataPlaneServices;
  /**
   * The snapshot this connection's listener runs now. `snapshot` is the one it was accepted under;
   * HTTP connections route each new request on the current one (as Envoy applies a route update to
   * the next request), while tunnels stay on theirs. For a listener that was removed (draining),
   * this stays the accept-time snapshot.
   */
  currentSnapshot(): CompiledSnapshot;
}

/**
 * A copy of `conn` with `changes`. Not a bare spread: the listener's connections read the client's
 * address through getters on their prototype (listener/accepted-connection.ts), which a spread drops.
 */
export function copyConnection(conn: DownstreamConnection, changes: Partial<DownstreamConnection>): DownstreamConnection {
  return { ...conn, remoteAddress: conn.remoteAddress, remotePort: conn.remotePort, currentSnapshot: conn.currentSnapshot, ...changes };
}

export interface HttpConnectionHandler {
  /** Builds what the handler needs from a snapshot being applied (HTTP filter chains); a throw rejects the snapshot. */
  compile?(snapshot: CompiledSnapshot): void;
  /** Takes ownership of conn.socket. Must never throw. */
  handle(conn: DownstreamConnection, filter: HttpConnectionManager): void;
  /** Absolute-form requests on an explicit-proxy listener (optional). */
  handleExplicitProxy?(conn: DownstreamConnection, filter: ExplicitProxy): void;
  /** Drain hint: stop keep-alive on existing connections. */
  drain?(): void;
}

export type HttpConnectionHandlerFactory = (services: DataPlaneServices) => HttpConnectionHandler;

/** "ip:port" (IPv6 bracketed). */
export function addrPort(ip: string, port: number): string {
  return ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`;
}

/** Milliseconds since `startHr`, integer. */
export function elapsedMs(startHr: bigint): number {
  return Number((process.hrtime.bigint() - startHr) / 1_000_000n);
}

/** Strips the IPv4-mapped prefix that dual-stack sockets report. */
export function plainIp(ip: string | undefined): string {
  if (ip === undefined) return '';
  return ip.startsWith('::ffff:') && ip.includes('.') ? ip.slice(7) : ip;
}
