/**
 * x-forwarded-client-cert (XFCC), as Envoy's forward_client_cert_details with Istio's defaults:
 *
 * | proxy | mode |
 * |---|---|
 * | sidecar inbound (captured) | APPEND_FORWARD: what an mTLS caller sent, plus its own certificate |
 * | gateway | meshConfig `defaultConfig.gatewayTopology.forwardClientCertDetails`, else SANITIZE_SET |
 * | anything else (sidecar outbound, egress router, explicit proxy) | SANITIZE: removed |
 *
 * Whatever the mode, a value a client sent is forwarded only when the connection is mTLS (a verified
 * client certificate), except in ALWAYS_FORWARD_ONLY: a plaintext client could write anything in it.
 * The value this proxy sets describes the verified certificate with the fields Istio sets
 * (`By` — this proxy's own SPIFFE ID — `Hash`, `Subject`, `URI`, `DNS`).
 */
import type { DownstreamConnection, PeerCertificateFacts } from '../context.js';
import type { MtlsLabels } from '../observe/istio-metrics.js';

export type ForwardClientCertDetails = 'SANITIZE' | 'FORWARD_ONLY' | 'APPEND_FORWARD' | 'SANITIZE_SET' | 'ALWAYS_FORWARD_ONLY';

/** What the request head does with XFCC; one per downstream connection. */
export interface XfccPolicy {
  /** Forward the values the client sent. */
  readonly forward: boolean;
  /** A value to add (this connection's verified client certificate), or null. */
  readonly set: string | null;
}

export function xfccModeOf(conn: Pick<DownstreamConnection, 'listener' | 'snapshot'>): ForwardClientCertDetails {
  if (conn.listener.listener.inboundCapture === true) return 'APPEND_FORWARD';
  const s = conn.snapshot.snapshot;
  if (s.proxy.role === 'gateway') return s.policy.forwardClientCertDetails ?? 'SANITIZE_SET';
  return 'SANITIZE';
}

/** `localUri`: this proxy's own identity on the connection (By), when it has one. */
export function xfccPolicyOf(mode: ForwardClientCertDetails, peer: PeerCertificateFacts | undefined, localUri: string | undefined): XfccPolicy {
  const mtls = peer !== undefined;
  switch (mode) {
    case 'SANITIZE':
      return { forward: false, set: null };
    case 'SANITIZE_SET':
      return { forward: false, set: mtls ? xfccValue(peer, localUri) : null };
    case 'APPEND_FORWARD':
      return { forward: mtls, set: mtls ? xfccValue(peer, localUri) : null };
    case 'FORWARD_ONLY':
      return { forward: mtls, set: null };
    case 'ALWAYS_FORWARD_ONLY':
      return { forward: true, set: null };
  }
}

/** One XFCC element: `By=...;Hash=...;Subject="...";URI=...;DNS=...` (Envoy's order and quoting). */
export function xfccValue(peer: PeerCertificateFacts, localUri: string | undefined): string {
  let v = localUri !== undefined ? `By=${localUri};Hash=${peer.sha256}` : `Hash=${peer.sha256}`;
  v += `;Subject="${peer.subject.replace(/["\\]/g, '\\$&')}"`;
  for (const u of peer.uriSans) v += `;URI=${u}`;
  for (const d of peer.dnsSans) v += `;DNS=${d}`;
  return v;
}

/** The policy of a downstream connection; `mtls` gives this proxy's own identity on mesh mTLS (By). */
export function xfccPolicyFor(conn: Pick<DownstreamConnection, 'listener' | 'snapshot' | 'peerCertificate'>, mtls: MtlsLabels | undefined): XfccPolicy {
  const own = mtls !== undefined && mtls.destinationPrincipal !== 'unknown' ? mtls.destinationPrincipal : undefined;
  return xfccPolicyOf(xfccModeOf(conn), conn.peerCertificate, own);
}
