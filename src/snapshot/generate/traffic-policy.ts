/**
 * DestinationRule trafficPolicy fields -> the Cluster's policy objects (plain data the data plane
 * enforces: dataplane/upstream/{hash-lb,circuit-breaker,outlier}.ts). Durations become ms here, so
 * nothing after the snapshot parses strings. Field-by-field semantics: docs/traffic-management.md.
 */
import { parseDurationMs } from '../../config/schema/dsl.js';
import type { TrafficPolicy } from '../../config/types.js';
import type { ConnectionPoolPolicy, ConsistentHashPolicy, OutlierDetectionPolicy } from '../types.js';

/** Istio's defaults when `outlierDetection` is present but a field is not. */
export const OUTLIER_DEFAULTS = { consecutive5xxErrors: 5, intervalMs: 10_000, baseEjectionTimeMs: 30_000, maxEjectionPercent: 10 } as const;

function ms(d: unknown): number | undefined {
  return typeof d === 'string' ? parseDurationMs(d) : undefined;
}

function num(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

export function consistentHashOf(ch: Readonly<Record<string, unknown>> | undefined): ConsistentHashPolicy | undefined {
  if (!ch) return undefined;
  const header = ch['httpHeaderName'];
  if (typeof header === 'string' && header !== '') return { header: header.toLowerCase() };
  const cookie = ch['httpCookie'] as { name?: unknown; path?: unknown; ttl?: unknown } | undefined;
  if (cookie && typeof cookie.name === 'string') {
    const ttlMs = ms(cookie.ttl);
    return { cookie: { name: cookie.name, ...(typeof cookie.path === 'string' ? { path: cookie.path } : {}), ...(ttlMs !== undefined ? { ttlMs } : {}) } };
  }
  if (ch['useSourceIp'] === true) return { sourceIp: true };
  const q = ch['httpQueryParameterName'];
  if (typeof q === 'string' && q !== '') return { queryParameter: q };
  return undefined;
}

export function connectionPoolOf(cp: TrafficPolicy['connectionPool']): ConnectionPoolPolicy | undefined {
  if (!cp) return undefined;
  const idle = ms(cp.http?.idleTimeout ?? cp.tcp?.idleTimeout);
  const out: ConnectionPoolPolicy = {
    ...(num(cp.tcp?.maxConnections) !== undefined ? { maxConnections: cp.tcp!.maxConnections! } : {}),
    ...(num(cp.http?.http1MaxPendingRequests) !== undefined ? { maxPendingRequests: cp.http!.http1MaxPendingRequests! } : {}),
    ...(num(cp.http?.http2MaxRequests) !== undefined && cp.http!.http2MaxRequests! > 0 ? { maxRequests: cp.http!.http2MaxRequests! } : {}),
    ...(num(cp.http?.maxRequestsPerConnection) !== undefined && cp.http!.maxRequestsPerConnection! > 0 ? { maxRequestsPerConnection: cp.http!.maxRequestsPerConnection! } : {}),
    ...(num(cp.http?.maxRetries) !== undefined ? { maxRetries: cp.http!.maxRetries! } : {}),
    ...(idle !== undefined && idle > 0 ? { idleTimeoutMs: idle } : {}),
  };
  return Object.keys(out).length > 0 ? out : undefined;
}

export function outlierDetectionOf(od: Readonly<Record<string, unknown>> | undefined): OutlierDetectionPolicy | undefined {
  if (!od) return undefined;
  // `consecutiveErrors` (deprecated) meant gateway errors in Istio.
  const gw = num(od['consecutiveGatewayErrors']) ?? num(od['consecutiveErrors']) ?? 0;
  const x5 = num(od['consecutive5xxErrors']) ?? (od['consecutiveGatewayErrors'] !== undefined || od['consecutiveErrors'] !== undefined ? 0 : OUTLIER_DEFAULTS.consecutive5xxErrors);
  return {
    consecutive5xxErrors: x5,
    consecutiveGatewayErrors: gw,
    intervalMs: ms(od['interval']) ?? OUTLIER_DEFAULTS.intervalMs,
    baseEjectionTimeMs: ms(od['baseEjectionTime']) ?? OUTLIER_DEFAULTS.baseEjectionTimeMs,
    maxEjectionPercent: num(od['maxEjectionPercent']) ?? OUTLIER_DEFAULTS.maxEjectionPercent,
  };
}

/** Ports whose protocol is HTTP/2 on the wire (Istio's protocol.IsHTTP2). */
const HTTP2_PROTOCOLS = new Set(['HTTP2', 'GRPC', 'GRPC-WEB']);

/**
 * Whether the cluster speaks HTTP/2 upstream: always for HTTP2/GRPC ports; for HTTP ports only
 * when the DestinationRule asks (`h2UpgradePolicy: UPGRADE`), as Istio's default is not to upgrade.
 */
export function upstreamHttp2(protocol: string, cp: TrafficPolicy['connectionPool']): boolean {
  if (HTTP2_PROTOCOLS.has(protocol)) return true;
  return protocol === 'HTTP' && cp?.http?.h2UpgradePolicy === 'UPGRADE';
}
