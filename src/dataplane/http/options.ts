/**
 * Tunables of the HTTP engine, with their defaults in one place (docs/life-of-a-request.md lists
 * them). Tests pass smaller timeouts through `httpEngine(options)`.
 */

import type { EncodedSlashPolicy } from '../route/normalize.js';

/** Request header names containing `_` (header-hygiene.ts): Envoy's headers_with_underscores_action. */
export type UnderscoreHeaderAction = 'allow' | 'drop' | 'reject';
export const UNDERSCORE_HEADER_ACTIONS: readonly UnderscoreHeaderAction[] = ['allow', 'drop', 'reject'];

export type { EncodedSlashPolicy };

export interface HttpEngineOptions {
  /** From the first byte of a request (or the accept, for the first one) to its complete head. Default: services.limits.requestHeadTimeoutMs. */
  readonly headerTimeoutMs?: number;
  /** Keep-alive connection with no request in flight. Default 60 000. */
  readonly idleTimeoutMs?: number;
  /** No byte in either direction while a request is in flight (Envoy stream_idle_timeout). Default 300 000. */
  readonly streamIdleTimeoutMs?: number;
  /** Idle pooled upstream connection is closed after this. Default 15 000. */
  readonly upstreamIdleTimeoutMs?: number;
  /**
   * Most idle pooled connections per (cluster, endpoint, source address) when the cluster has no
   * connectionPool.tcp.maxConnections; fewer are kept when recent concurrency was lower. Default
   * 1024 (Envoy's default max_connections).
   */
  readonly maxIdlePerUpstream?: number;
  /** Request bodies up to this size are kept so the request can be retried after it was sent. Default 16 KiB. */
  readonly maxReplayBodyBytes?: number;
  /** %2F / %5C in a path: 'reject' (400, default) or 'keep' (forwarded as is, never decoded). */
  readonly encodedSlash?: EncodedSlashPolicy;
  /**
   * Append the client address to X-Forwarded-For (Envoy's default at an edge proxy). Default true.
   * Requests to MESH_EXTERNAL destinations never carry X-Forwarded-For (headers.ts).
   */
  readonly xForwardedFor?: boolean;
  /** Request header names containing `_`: 'drop' (default), 'reject' (400) or 'allow' (header-hygiene.ts). */
  readonly headersWithUnderscores?: UnderscoreHeaderAction;
  /** Add X-Request-Id (random UUID) when the request has none. Default true. */
  readonly requestId?: boolean;
  /** Idle timeout of an upgraded (WebSocket) connection. Default 3 600 000. */
  readonly upgradeIdleTimeoutMs?: number;
  /** How long a closing connection keeps reading (and discarding) so the client gets the response, not a reset. Default 2 000. */
  readonly lingerMs?: number;
  /** Parser limits (431 above them). Defaults 16 KiB and 100. */
  readonly maxHeaderBytes?: number;
  readonly maxHeaders?: number;
  /** Clock (ms) of time-based filter state such as local rate-limit buckets. Default performance.now; tests pass a manual clock. */
  readonly clock?: () => number;
}

export interface ResolvedHttpOptions {
  readonly headerTimeoutMs: number;
  readonly idleTimeoutMs: number;
  readonly streamIdleTimeoutMs: number;
  readonly upstreamIdleTimeoutMs: number;
  readonly maxIdlePerUpstream: number;
  readonly maxReplayBodyBytes: number;
  readonly encodedSlash: EncodedSlashPolicy;
  readonly xForwardedFor: boolean;
  readonly headersWithUnderscores: UnderscoreHeaderAction;
  readonly requestId: boolean;
  readonly upgradeIdleTimeoutMs: number;
  readonly lingerMs: number;
  readonly maxHeaderBytes: number;
  readonly maxHeaders: number;
}

export function resolveOptions(o: HttpEngineOptions, defaultHeaderTimeoutMs: number): ResolvedHttpOptions {
  return {
    headerTimeoutMs: o.headerTimeoutMs ?? defaultHeaderTimeoutMs,
    idleTimeoutMs: o.idleTimeoutMs ?? 60_000,
    streamIdleTimeoutMs: o.streamIdleTimeoutMs ?? 300_000,
    upstreamIdleTimeoutMs: o.upstreamIdleTimeoutMs ?? 15_000,
    maxIdlePerUpstream: o.maxIdlePerUpstream ?? 1024,
    maxReplayBodyBytes: o.maxReplayBodyBytes ?? 16 * 1024,
    encodedSlash: o.encodedSlash ?? 'reject',
    xForwardedFor: o.xForwardedFor ?? true,
    headersWithUnderscores: o.headersWithUnderscores ?? 'drop',
    requestId: o.requestId ?? true,
    upgradeIdleTimeoutMs: o.upgradeIdleTimeoutMs ?? 3_600_000,
    lingerMs: o.lingerMs ?? 2_000,
    maxHeaderBytes: o.maxHeaderBytes ?? 16 * 1024,
    maxHeaders: o.maxHeaders ?? 100,
  };
}
