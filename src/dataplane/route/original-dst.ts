/**
 * Where a captured outbound connection goes, as Envoy's `use_original_dst` decides it: the
 * connection REDIRECTed to the virtual outbound listener is handed to the listener the snapshot has
 * for its original destination — the one bound to exactly that ip:port, else the wildcard listener
 * on that port — and that listener's filter chains (HTTP by Host, TLS by SNI, TCP by address) take
 * it from there. Without such a listener the virtual listener's own chains decide (the outbound
 * traffic policy: PassthroughCluster or BlackHoleCluster).
 *
 * Pure: the sidecar and `trace --role sidecar` call the same function.
 */
import type { CompiledListener, CompiledSnapshot } from './compile.js';

export interface OriginalDestination {
  readonly ip: string;
  readonly port: number;
}

export interface OriginalDstDecision {
  /** The listener that takes the connection (the virtual listener itself when none matches). */
  readonly listener: CompiledListener;
  readonly handedOff: boolean;
  readonly why: string;
}

const WILDCARDS = new Set(['0.0.0.0', '::']);

export function dispatchOriginalDst(snapshot: CompiledSnapshot, virtual: CompiledListener, dst: OriginalDestination): OriginalDstDecision {
  let wildcard: CompiledListener | undefined;
  for (const l of snapshot.listeners.values()) {
    const ll = l.listener;
    if (ll.port !== dst.port || ll.useOriginalDst || ll.inboundCapture) continue;
    if (ll.address === dst.ip) return { listener: l, handedOff: true, why: `original destination ${dst.ip}:${dst.port} is listener ${ll.name}` };
    if (WILDCARDS.has(ll.address)) wildcard ??= l;
  }
  if (wildcard) return { listener: wildcard, handedOff: true, why: `original destination ${dst.ip}:${dst.port}: listener ${wildcard.listener.name} for port ${dst.port}` };
  return { listener: virtual, handedOff: false, why: `no listener for port ${dst.port}: ${virtual.listener.name} applies the outbound traffic policy` };
}

/** The sidecar's virtual outbound listener, if the snapshot has one. */
export function virtualOutboundListener(snapshot: CompiledSnapshot): CompiledListener | undefined {
  for (const l of snapshot.listeners.values()) if (l.listener.useOriginalDst) return l;
  return undefined;
}
