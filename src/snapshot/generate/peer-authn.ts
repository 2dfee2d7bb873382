/**
 * PeerAuthentication -> the mTLS mode of each of a workload's inbound ports, with Istio's
 * precedence: a workload policy (selector matching the workload, in its namespace) over the
 * namespace policy (no selector) over the mesh policy (root namespace, no selector); `UNSET` (or no
 * mode) inherits from the level above; with nothing set, PERMISSIVE. `portLevelMtls` is honoured
 * only on a workload policy, as in Istio, keyed by the workload's port (the container port a
 * caller dials); an UNSET port inherits the workload's mode. Several policies on one level: the
 * first by name applies (Istio takes the oldest; the config carries no creation time).
 */
import type { Resource } from '../../config/decode.js';
import type { PeerAuthenticationSpec } from '../../config/types.js';
import type { Model } from '../../model/build.js';
import { labelsMatch } from '../../model/selectors.js';
import type { MtlsMode } from '../types.js';
import { MESH_ROOT_NAMESPACE } from './authz.js';

export type PeerAuthnMode = MtlsMode | 'DISABLE';

export interface EffectivePeerAuthn {
  /** The workload's mode (ports without a port-level setting). */
  readonly mode: PeerAuthnMode;
  /** Port-level modes (workload policy `portLevelMtls`), already resolved against `mode`. */
  readonly ports: ReadonlyMap<number, PeerAuthnMode>;
  /** The policies that decided, most specific first (trace, analyze). */
  readonly from: readonly Resource<PeerAuthenticationSpec>[];
}

function modeOf(raw: string | undefined): PeerAuthnMode | undefined {
  return raw === 'STRICT' || raw === 'PERMISSIVE' || raw === 'DISABLE' ? raw : undefined;
}

function byName(a: Resource, b: Resource): number {
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

export function peerAuthentications(model: Model): Resource<PeerAuthenticationSpec>[] {
  return (model.resources.filter((r) => r.kind === 'PeerAuthentication') as Resource<PeerAuthenticationSpec>[]).sort(byName);
}

function hasSelector(r: Resource<PeerAuthenticationSpec>): boolean {
  return Object.keys(r.spec?.selector?.matchLabels ?? {}).length > 0;
}

/** The effective PeerAuthentication of a workload in `namespace` with `labels`. */
export function effectivePeerAuthn(model: Model, namespace: string, labels: Readonly<Record<string, string>>): EffectivePeerAuthn {
  const all = peerAuthentications(model);
  const mesh = all.find((r) => r.namespace === MESH_ROOT_NAMESPACE && !hasSelector(r));
  const ns = namespace === MESH_ROOT_NAMESPACE ? undefined : all.find((r) => r.namespace === namespace && !hasSelector(r));
  const workload = all.find((r) => r.namespace === namespace && hasSelector(r) && labelsMatch(r.spec?.selector?.matchLabels ?? {}, labels));
  let mode: PeerAuthnMode = 'PERMISSIVE';
  for (const level of [mesh, ns, workload]) mode = modeOf(level?.spec?.mtls?.mode) ?? mode;
  const ports = new Map<number, PeerAuthnMode>();
  for (const [port, setting] of Object.entries(workload?.spec?.portLevelMtls ?? {})) {
    const n = Number(port);
    if (Number.isInteger(n) && n > 0) ports.set(n, modeOf(setting.mode) ?? mode);
  }
  return { mode, ports, from: [workload, ns, mesh].filter((r): r is Resource<PeerAuthenticationSpec> => r !== undefined) };
}

export function modeAtPort(p: EffectivePeerAuthn, port: number | undefined): PeerAuthnMode {
  return (port !== undefined ? p.ports.get(port) : undefined) ?? p.mode;
}

/** The filter chain field for a mode (DISABLE: no mTLS). */
export function chainMtls(mode: PeerAuthnMode): { readonly mtls?: MtlsMode } {
  return mode === 'DISABLE' ? {} : { mtls: mode };
}

