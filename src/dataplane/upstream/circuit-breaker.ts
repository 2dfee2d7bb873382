/**
 * Connection-pool limits (DestinationRule connectionPool; Envoy circuit breakers), per cluster name.
 * State outlives snapshots (lives in the ClusterManager); limits are read from the running cluster.
 *
 *  maxConnections      HTTP/1.1 carries one request per connection, so the limit is applied to
 *                      requests in flight to the cluster (= busy upstream connections). Idle pooled
 *                      connections are not counted (they are closed by the pool's idle timeout).
 *  maxRequests         http2MaxRequests: requests in flight to the cluster. For an HTTP/2 cluster it
 *                      is the only limit on them (streams share connections, so maxConnections does
 *                      not bound requests there); for HTTP/1.1 the lower of the two applies.
 *  maxPendingRequests  requests beyond maxConnections wait in FIFO order for a slot, up to this many
 *                      (http1MaxPendingRequests; unset = unlimited). Beyond it: 503 with Envoy's UO
 *                      flag, reason `upstream_overflow`. A waiting request is bounded by the route
 *                      timeout (504 UT) or ends when the client goes.
 *  maxRetries          retries in flight across the cluster at once (http.maxRetries). A request
 *                      takes a retry slot at its first retry and keeps it until it ends; when none
 *                      is free the retry is not made and the client gets the failure as it was
 *                      (Envoy's retry overflow, `upstream_rq_retry_overflow`).
 * Clusters without `connectionPool` cost one property check per request.
 */
import type { Cluster } from '../../snapshot/types.js';

interface ClusterState {
  active: number;
  retries: number;
  readonly pending: { readonly owner: object; readonly resume: () => void }[];
}

export const ADMIT_GO = 0;
export const ADMIT_QUEUED = 1;
export const ADMIT_OVERFLOW = 2;
export type Admission = typeof ADMIT_GO | typeof ADMIT_QUEUED | typeof ADMIT_OVERFLOW;

export class CircuitBreakers {
  private readonly state = new Map<string, ClusterState>();
  /** owner (an exchange) -> cluster it holds a slot of / waits for. */
  private readonly admitted = new WeakMap<object, string>();
  private readonly waiting = new WeakMap<object, string>();
  /** owner -> cluster whose retry slot it holds. */
  private readonly retrying = new WeakMap<object, string>();

  private of(name: string): ClusterState {
    let s = this.state.get(name);
    if (s === undefined) {
      s = { active: 0, retries: 0, pending: [] };
      this.state.set(name, s);
    }
    return s;
  }

  /**
   * A request for `cluster`. GO: it holds a slot (call done(owner) once at its end). QUEUED:
   * resume() is called when a slot is free (then admit() again returns GO). OVERFLOW: answer 503 UO.
   */
  admit(owner: object, cluster: Cluster, resume: () => void): Admission {
    const cp = cluster.connectionPool;
    if (cp === undefined || this.admitted.has(owner)) return ADMIT_GO;
    const s = this.of(cluster.name);
    const max = requestLimit(cluster);
    if (max === undefined || s.active < max) {
      s.active++;
      this.admitted.set(owner, cluster.name);
      return ADMIT_GO;
    }
    if (this.waiting.has(owner)) return ADMIT_QUEUED;
    if (cp.maxPendingRequests !== undefined && s.pending.length >= cp.maxPendingRequests) return ADMIT_OVERFLOW;
    s.pending.push({ owner, resume });
    this.waiting.set(owner, cluster.name);
    return ADMIT_QUEUED;
  }

  /**
   * The owner wants to retry a request to `cluster`: true when the cluster's maxRetries allows it
   * (the owner then holds a retry slot until done(owner)); false = retry overflow, do not retry.
   */
  retry(owner: object, cluster: Cluster): boolean {
    const max = cluster.connectionPool?.maxRetries;
    if (max === undefined || this.retrying.has(owner)) return true;
    const s = this.of(cluster.name);
    if (s.retries >= max) return false;
    s.retries++;
    this.retrying.set(owner, cluster.name);
    return true;
  }

  /** The owner's request ended (any way): frees its slots or leaves the queue. Idempotent. */
  done(owner: object): void {
    const r = this.retrying.get(owner);
    if (r !== undefined) {
      this.retrying.delete(owner);
      const s = this.state.get(r);
      if (s) s.retries--;
    }
    const w = this.waiting.get(owner);
    if (w !== undefined) {
      this.waiting.delete(owner);
      const s = this.state.get(w);
      if (s) {
        const i = s.pending.findIndex((p) => p.owner === owner);
        if (i >= 0) s.pending.splice(i, 1);
      }
    }
    const name = this.admitted.get(owner);
    if (name === undefined) return;
    this.admitted.delete(owner);
    const s = this.state.get(name);
    if (!s) return;
    s.active--;
    const next = s.pending.shift();
    if (next !== undefined) {
      this.waiting.delete(next.owner);
      s.active++;
      this.admitted.set(next.owner, name);
      queueMicrotask(next.resume);
    }
  }

  /** Admin view: requests in flight and waiting per cluster. */
  describe(name: string): { active: number; pending: number; retries: number } | undefined {
    const s = this.state.get(name);
    return s ? { active: s.active, pending: s.pending.length, retries: s.retries } : undefined;
  }
}

/** Requests in flight a cluster admits (undefined: unlimited). */
function requestLimit(cluster: Cluster): number | undefined {
  const cp = cluster.connectionPool!;
  if (cluster.http2 === true) return cp.maxRequests;
  if (cp.maxRequests === undefined) return cp.maxConnections;
  return cp.maxConnections === undefined ? cp.maxRequests : Math.min(cp.maxConnections, cp.maxRequests);
}
