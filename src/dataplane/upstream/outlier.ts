/**
 * Outlier detection (DestinationRule outlierDetection; Envoy's consecutive-5xx and
 * consecutive-gateway-failure detectors). State is per (cluster name, endpoint "ip:port") and lives
 * in the ClusterManager, outside the snapshot: a config reload keeps ejections and counters (Caddy's
 * rule); the policy read is always the running cluster's.
 *
 * Outcomes reported by the HTTP engine: a response status, or 0 for a locally originated failure
 * (connect refused/timeout, TLS handshake failure, reset before the response head) which counts as
 * a 503 for both detectors (Envoy's default, split_external_local_origin_errors: false).
 *
 *  - a 5xx increments consecutive5xx; 502/503/504 (and local failures) also consecutiveGateway;
 *    anything else resets both.
 *  - reaching a threshold (> 0) ejects the endpoint for baseEjectionTime x (number of times it was
 *    ejected), capped at max(300 s, baseEjectionTime), unless that would take the share of ejected
 *    endpoints above maxEjectionPercent (at least one endpoint may always be ejected, as in current
 *    Envoy).
 *  - ejection ends when its time is up (checked when endpoints are picked: no timers; Envoy checks
 *    at each `interval`, so Tollgate may return an endpoint up to one interval earlier).
 *  - every endpoint ejected -> the pick fails with UH `no_healthy_upstream` (no panic mode:
 *    Istio's minHealthPercent defaults to 0).
 */
import type { Cluster } from '../../snapshot/types.js';

interface HostState {
  consecutive5xx: number;
  consecutiveGateway: number;
  ejections: number;
  ejectedUntil: number;
}

const MAX_EJECTION_MS = 300_000;

export interface EjectionView {
  readonly cluster: string;
  readonly host: string;
  readonly ejected: boolean;
  readonly ejectedForMs: number;
  readonly ejections: number;
  readonly consecutive5xx: number;
  readonly consecutiveGateway: number;
}

export class OutlierDetector {
  private readonly clusters = new Map<string, Map<string, HostState>>();
  /** Endpoint count seen at the last pick per cluster (for maxEjectionPercent). */
  private readonly hostCounts = new Map<string, number>();

  constructor(private readonly now: () => number = Date.now) {}

  noteHostCount(cluster: string, n: number): void {
    this.hostCounts.set(cluster, n);
  }

  isEjected(cluster: string, host: string, now = this.now()): boolean {
    const h = this.clusters.get(cluster)?.get(host);
    return h !== undefined && h.ejectedUntil > now;
  }

  /** Records one outcome; returns true when this outcome ejected the endpoint. */
  report(cluster: Cluster, host: string, status: number): boolean {
    const p = cluster.outlierDetection;
    if (p === undefined) return false;
    let hosts = this.clusters.get(cluster.name);
    if (hosts === undefined) {
      hosts = new Map();
      this.clusters.set(cluster.name, hosts);
    }
    let h = hosts.get(host);
    const is5xx = status === 0 || status >= 500;
    const isGw = status === 0 || status === 502 || status === 503 || status === 504;
    if (h === undefined) {
      if (!is5xx) return false;
      h = { consecutive5xx: 0, consecutiveGateway: 0, ejections: 0, ejectedUntil: 0 };
      hosts.set(host, h);
    }
    if (!is5xx) {
      h.consecutive5xx = 0;
      h.consecutiveGateway = 0;
      return false;
    }
    h.consecutive5xx++;
    if (isGw) h.consecutiveGateway++;
    else h.consecutiveGateway = 0;
    const now = this.now();
    if (h.ejectedUntil > now) return false; // already ejected (a request that was in flight)
    const trip = (p.consecutive5xxErrors > 0 && h.consecutive5xx >= p.consecutive5xxErrors) || (p.consecutiveGatewayErrors > 0 && h.consecutiveGateway >= p.consecutiveGatewayErrors);
    if (!trip) return false;
    const total = Math.max(this.hostCounts.get(cluster.name) ?? 1, hosts.size, 1);
    let ejected = 0;
    for (const x of hosts.values()) if (x.ejectedUntil > now) ejected++;
    if (ejected > 0 && ((ejected + 1) * 100) / total > p.maxEjectionPercent) return false;
    h.ejections++;
    h.ejectedUntil = now + Math.min(p.baseEjectionTimeMs * h.ejections, Math.max(MAX_EJECTION_MS, p.baseEjectionTimeMs));
    h.consecutive5xx = 0;
    h.consecutiveGateway = 0;
    return true;
  }

  /** Admin /clusters view. */
  describe(cluster: string): EjectionView[] {
    const now = this.now();
    return [...(this.clusters.get(cluster) ?? new Map<string, HostState>())].map(([host, h]) => ({
      cluster,
      host,
      ejected: h.ejectedUntil > now,
      ejectedForMs: Math.max(0, h.ejectedUntil - now),
      ejections: h.ejections,
      consecutive5xx: h.consecutive5xx,
      consecutiveGateway: h.consecutiveGateway,
    }));
  }
}
