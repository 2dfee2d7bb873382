/**
 * Floating source address leases as coordination.k8s.io/v1 Lease objects, for the control plane in
 * Kubernetes mode: the cluster is the arbiter, so two control plane replicas (or a restarted one)
 * agree on the holder. Reads the Lease, decides like MemoryLeaseStore, and writes it back with
 * the resourceVersion it read: a concurrent writer makes the write fail with 409 Conflict and the
 * request is refused (the proxy retries at its next renewal). Durations are whole seconds on the
 * object (rounded up, so the arbiter never frees a lease earlier than the holder assumes).
 */
import { CoordinationV1Api, type KubeConfig, type V1Lease } from '@kubernetes/client-node';
import type { AcquireResult, LeaseState, LeaseStore } from '../leases.js';

const MANAGED_BY = 'tollgate';

function codeOf(err: unknown): number | undefined {
  const c = (err as { code?: unknown }).code;
  return typeof c === 'number' ? c : undefined;
}

export class KubernetesLeaseStore implements LeaseStore {
  private readonly api: CoordinationV1Api;

  constructor(kc: KubeConfig, private readonly namespace: string, private readonly now: () => number = Date.now) {
    this.api = kc.makeApiClient(CoordinationV1Api);
  }

  async acquire(name: string, holder: string, durationMs: number): Promise<AcquireResult> {
    const t = this.now();
    const seconds = Math.max(1, Math.ceil(durationMs / 1000));
    let current: V1Lease | undefined;
    try {
      current = await this.api.readNamespacedLease({ name, namespace: this.namespace });
    } catch (err) {
      if (codeOf(err) !== 404) throw err;
    }
    const state = current ? toState(name, current) : undefined;
    if (state && state.holder !== '' && state.holder !== holder && t - state.renewedAt < state.durationMs) return { granted: false, lease: state };
    const takeOver = !state || state.holder !== holder;
    const previous = state?.holder || (current?.metadata?.annotations?.['tollgate.io/previous-holder'] ?? '');
    const body: V1Lease = {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: {
        name,
        namespace: this.namespace,
        labels: { 'app.kubernetes.io/managed-by': MANAGED_BY },
        ...(takeOver && previous ? { annotations: { 'tollgate.io/previous-holder': previous } } : current?.metadata?.annotations ? { annotations: current.metadata.annotations } : {}),
        ...(current?.metadata?.resourceVersion ? { resourceVersion: current.metadata.resourceVersion } : {}),
      },
      spec: {
        holderIdentity: holder,
        leaseDurationSeconds: seconds,
        acquireTime: takeOver ? new Date(t) : (current?.spec?.acquireTime ?? new Date(t)),
        renewTime: new Date(t),
        leaseTransitions: (current?.spec?.leaseTransitions ?? 0) + (takeOver && previous ? 1 : 0),
      },
    };
    try {
      const written = current
        ? await this.api.replaceNamespacedLease({ name, namespace: this.namespace, body })
        : await this.api.createNamespacedLease({ namespace: this.namespace, body });
      return { granted: true, lease: toState(name, written) };
    } catch (err) {
      // Someone else wrote the Lease between our read and write: not granted this time.
      if (codeOf(err) === 409) return { granted: false, lease: state ?? { name, holder: '', durationMs: seconds * 1000, acquiredAt: 0, renewedAt: 0, transitions: 0 } };
      throw err;
    }
  }

  async release(name: string, holder: string): Promise<void> {
    let current: V1Lease;
    try {
      current = await this.api.readNamespacedLease({ name, namespace: this.namespace });
    } catch (err) {
      if (codeOf(err) === 404) return;
      throw err;
    }
    if (current.spec?.holderIdentity !== holder) return;
    const body: V1Lease = {
      ...current,
      metadata: { ...current.metadata, annotations: { ...current.metadata?.annotations, 'tollgate.io/previous-holder': holder } },
      spec: { ...current.spec, holderIdentity: '' },
    };
    await this.api.replaceNamespacedLease({ name, namespace: this.namespace, body }).catch((err: unknown) => {
      if (codeOf(err) !== 409) throw err;
    });
  }

  async list(): Promise<LeaseState[]> {
    const l = await this.api.listNamespacedLease({ namespace: this.namespace, labelSelector: `app.kubernetes.io/managed-by=${MANAGED_BY}` });
    return l.items.map((x) => toState(x.metadata?.name ?? '', x)).sort((a, b) => (a.name < b.name ? -1 : 1));
  }
}

function toState(name: string, l: V1Lease): LeaseState {
  const ms = (d: Date | string | undefined): number => (d === undefined ? 0 : new Date(d).getTime());
  const previous = l.metadata?.annotations?.['tollgate.io/previous-holder'];
  return {
    name,
    holder: l.spec?.holderIdentity ?? '',
    durationMs: (l.spec?.leaseDurationSeconds ?? 0) * 1000,
    acquiredAt: ms(l.spec?.acquireTime),
    renewedAt: ms(l.spec?.renewTime),
    transitions: l.spec?.leaseTransitions ?? 0,
    ...(previous ? { previousHolder: previous } : {}),
  };
}
