/**
 * The authenticated identity of a mesh peer, read from the certificate it presented on an mTLS
 * connection (the URI SAN `spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>`), in the
 * forms AuthorizationPolicy and Istio's metrics use.
 */
import { spiffeIdsOf } from '../tls/subject-alt-names.js';
import type { PeerCertificate, TLSSocket } from 'node:tls';
import { parseSpiffeId, type WorkloadIdentitySource } from '../../shared/workload-identity.js';
import type { MtlsLabels } from '../observe/istio-metrics.js';

export interface PeerIdentity {
  /** The full URI SAN, `spiffe://...`. */
  readonly spiffeId: string;
  /** Istio's principal: the SPIFFE ID without `spiffe://` (`cluster.local/ns/a/sa/sleep`). */
  readonly principal: string;
  /** The `ns/<namespace>` part; undefined when the ID is not in Istio's workload form. */
  readonly namespace: string | undefined;
}

export function identityOfSpiffeId(spiffeId: string): PeerIdentity {
  return { spiffeId, principal: spiffeId.slice('spiffe://'.length), namespace: parseSpiffeId(spiffeId)?.namespace };
}

/**
 * Istio's metric labels for a connection: on mesh mTLS, the peer's SPIFFE ID and this proxy's own
 * (the destination); undefined on anything else (connection_security_policy="none").
 */
export function mtlsLabelsOf(conn: { readonly mutualTls?: boolean; readonly peer?: PeerIdentity | undefined; readonly services: { readonly identity?: WorkloadIdentitySource } }): MtlsLabels | undefined {
  if (conn.mutualTls !== true) return undefined;
  return { sourcePrincipal: conn.peer?.spiffeId ?? 'unknown', destinationPrincipal: conn.services.identity?.current()?.spiffeId ?? 'unknown', connectionSecurityPolicy: 'mutual_tls' };
}

/**
 * Istio's labels for traffic this proxy sent over an mTLS connection it originated: its own
 * identity (the certificate it presented) as the source, the server's verified SPIFFE ID as the
 * destination. Computed once per upstream connection.
 */
export function upstreamMtlsLabelsOf(socket: TLSSocket): MtlsLabels | undefined {
  const server = spiffeIdsOf((socket.getPeerCertificate() as PeerCertificate | null)?.subjectaltname)[0];
  if (server === undefined) return undefined;
  const own = spiffeIdsOf((socket.getCertificate() as PeerCertificate | null)?.subjectaltname)[0];
  return { sourcePrincipal: own ?? 'unknown', destinationPrincipal: server, connectionSecurityPolicy: 'unknown' };
}
