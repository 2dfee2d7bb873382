/**
 * Leases for floating source addresses: at most one holder per name at a time, with the semantics
 * of Kubernetes' coordination.k8s.io/v1 Lease (holderIdentity, leaseDurationSeconds, acquireTime,
 * renewTime, leaseTransitions). A holder renews well before the duration runs out; a lease whose
 * renewTime is older than its duration is free for anyone. The arbiter's clock decides expiry.
 *
 * `MemoryLeaseStore` is the arbiter in file mode (the control plane process itself); in Kubernetes
 * mode the same interface is backed by Lease objects (kubernetes/leases.ts).
 */

export interface LeaseState {
  readonly name: string;
  readonly holder: string;
  readonly durationMs: number;
  readonly acquiredAt: number;
  readonly renewedAt: number;
  /** How many times the lease changed hands (a first acquisition is not a transition). */
  readonly transitions: number;
  /** The holder before the last transition, when there was one. */
  readonly previousHolder?: string;
}

export type AcquireResult = { readonly granted: true; readonly lease: LeaseState } | { readonly granted: false; readonly lease: LeaseState };

export interface LeaseStore {
  /** Takes or renews `name` for `holder`; refused while another holder's lease is live. */
  acquire(name: string, holder: string, durationMs: number): Promise<AcquireResult>;
  /** Gives the lease up at once (graceful stop); a no-op when `holder` does not hold it. */
  release(name: string, holder: string): Promise<void>;
  list(): Promise<LeaseState[]>;
}

/** Longest lease a holder may ask for: a dead holder blocks its address for at most this long. */
export const MAX_LEASE_MS = 60_000;

export class MemoryLeaseStore implements LeaseStore {
  private readonly leases = new Map<string, LeaseState>();

  constructor(private readonly now: () => number = Date.now) {}

  async acquire(name: string, holder: string, durationMs: number): Promise<AcquireResult> {
    const t = this.now();
    const cur = this.leases.get(name);
    if (cur && cur.holder === holder) {
      const renewed = { ...cur, durationMs, renewedAt: t };
      this.leases.set(name, renewed);
      return { granted: true, lease: renewed };
    }
    if (cur && cur.holder !== '' && t - cur.renewedAt < cur.durationMs) return { granted: false, lease: cur };
    const taken: LeaseState = {
      name,
      holder,
      durationMs,
      acquiredAt: t,
      renewedAt: t,
      transitions: cur ? cur.transitions + (cur.holder !== '' || cur.previousHolder !== undefined ? 1 : 0) : 0,
      ...(cur ? { previousHolder: cur.holder || cur.previousHolder || '' } : {}),
    };
    this.leases.set(name, taken);
    return { granted: true, lease: taken };
  }

  async release(name: string, holder: string): Promise<void> {
    const cur = this.leases.get(name);
    // Kept with an empty holder, so the next holder's acquisition still counts as a transition.
    if (cur && cur.holder === holder) this.leases.set(name, { ...cur, holder: '', previousHolder: holder });
  }

  async list(): Promise<LeaseState[]> {
    return [...this.leases.values()].sort((a, b) => (a.name < b.name ? -1 : 1));
  }
}
