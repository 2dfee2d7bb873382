/**
 * SecureContexts built from the proxy's workload certificate: one for accepting mesh mTLS (server)
 * and one for originating it (client), both requiring the peer's chain to lead to the mesh roots.
 * They are built once per certificate and replaced when the identity source rotates it; a
 * connection keeps the context it started with, so rotation never touches open connections.
 */
import type { SecureContext } from 'node:tls';
import { nodeTls } from '../../shared/lazy-builtins.js';
import type { WorkloadCertificate } from '../../shared/workload-identity.js';

const contexts = new WeakMap<WorkloadCertificate, SecureContext | Error>();

/** The context of `cert` (cached per certificate object); an Error when its PEM cannot be loaded. */
export function meshContextOf(cert: WorkloadCertificate): SecureContext | Error {
  let ctx = contexts.get(cert);
  if (ctx === undefined) {
    try {
      ctx = nodeTls().createSecureContext({ key: cert.keyPem, cert: cert.certChainPem, ca: cert.rootCertsPem, minVersion: 'TLSv1.2' });
    } catch (e) {
      ctx = new Error(`workload certificate ${cert.spiffeId}: ${e instanceof Error ? e.message : String(e)}`);
    }
    contexts.set(cert, ctx);
  }
  return ctx;
}

/** ALPN a mesh client offers, as Istio's sidecars do (a plain TLS client offers neither). */
export const MESH_ALPN: readonly string[] = ['istio-peer-exchange', 'istio'];

/** Whether a ClientHello's ALPN list says the client is a mesh proxy (Istio's PERMISSIVE filter chain match). */
export function offersMeshAlpn(alpn: readonly string[]): boolean {
  return alpn.some((p) => p === 'istio' || p.startsWith('istio-'));
}
