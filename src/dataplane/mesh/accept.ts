/**
 * Inbound mesh mTLS: TLS is terminated with the proxy's workload certificate, and the client must
 * present a certificate whose chain leads to the mesh roots (no hostname check: a peer is known by
 * its SPIFFE ID, which authorization reads). The handshake is bounded in time. The caller gets the
 * decrypted socket, the peer's certificate and identity, or a stable reason to log.
 *
 * The handshake goes through tls/server-handshake.ts, as a Gateway server's does: one handshake
 * server per workload certificate, so a rotated certificate is used by the next connection.
 */
import type { Socket } from 'node:net';
import type { Server, TLSSocket } from 'node:tls';
import type { WorkloadCertificate, WorkloadIdentitySource } from '../../shared/workload-identity.js';
import type { PeerCertificateFacts } from '../context.js';
import { peerCertificateOf } from '../tls/peer-certificate.js';
import { clientCertificateProblem, handshakeServer, serverHandshake } from '../tls/server-handshake.js';
import { identityOfSpiffeId, type PeerIdentity } from './peer-identity.js';

export type MeshAcceptFailure = 'mtls_no_workload_certificate' | 'mtls_handshake_failed' | 'mtls_handshake_timeout';

export type MeshAcceptResult =
  | { readonly ok: true; readonly socket: TLSSocket; readonly peer: PeerIdentity | undefined; readonly certificate: PeerCertificateFacts }
  | { readonly ok: false; readonly reason: MeshAcceptFailure; readonly detail: string };

type Done = (r: MeshAcceptResult) => void;

const servers = new WeakMap<WorkloadCertificate, Server | Error>();

function serverFor(cert: WorkloadCertificate): Server | Error {
  let s = servers.get(cert);
  if (s !== undefined) return s;
  try {
    // No ALPN: Node fails a handshake whose ALPN offer it cannot answer, and a mesh client's `istio` offer needs no answer.
    s = handshakeServer({ key: cert.keyPem, cert: cert.certChainPem, ca: cert.rootCertsPem, requestCert: true, minVersion: 'TLSv1.2' });
  } catch (e) {
    s = new Error(`workload certificate ${cert.spiffeId}: ${e instanceof Error ? e.message : String(e)}`);
  }
  servers.set(cert, s);
  return s;
}

/** Terminates mesh mTLS on `socket` (paused, ClientHello unread or unshifted). Calls `done` exactly once. */
export function acceptMeshTls(socket: Socket, identity: WorkloadIdentitySource, timeoutMs: number, done: Done): void {
  const cert = identity.current();
  const server = cert === undefined ? new Error('this proxy has no workload certificate yet') : serverFor(cert);
  if (server instanceof Error) {
    done({ ok: false, reason: 'mtls_no_workload_certificate', detail: server.message });
    return;
  }
  serverHandshake(socket, server, timeoutMs, (h) => {
    if (!h.ok) {
      const code = (h.error as NodeJS.ErrnoException | undefined)?.code;
      done(h.timedOut ? { ok: false, reason: 'mtls_handshake_timeout', detail: `no mTLS handshake within ${timeoutMs} ms` } : { ok: false, reason: 'mtls_handshake_failed', detail: code === undefined || code === 'ECONNRESET' ? 'closed during the mTLS handshake' : code });
      return;
    }
    const certificate = peerCertificateOf(h.socket);
    const problem = clientCertificateProblem(h.socket, certificate, { required: true });
    if (problem !== undefined || certificate === undefined) {
      h.socket.destroy();
      done({ ok: false, reason: 'mtls_handshake_failed', detail: `${problem?.detail ?? 'no client certificate'} (the mesh roots must verify it)` });
      return;
    }
    done({ ok: true, socket: h.socket, peer: certificate.spiffeId !== undefined ? identityOfSpiffeId(certificate.spiffeId) : undefined, certificate });
  });
}
