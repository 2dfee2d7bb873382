/**
 * Inbound mesh mTLS: TLS is terminated with the proxy's workload certificate, and the client must
 * present a certificate whose chain leads to the mesh roots (no hostname check: a peer is known by
 * its SPIFFE ID, which authorization reads). The handshake is bounded in time. The caller gets the
 * decrypted socket and the peer's identity, or a stable reason to log.
 *
 * The connection is handed to a node:tls Server (one per workload certificate, never listening):
 * only a Server enforces `rejectUnauthorized` on the client's chain — a bare server-side TLSSocket
 * completes the handshake with an unverified client certificate.
 */
import type { Socket } from 'node:net';
import { createServer, type Server, type TLSSocket } from 'node:tls';
import type { WorkloadCertificate, WorkloadIdentitySource } from '../../shared/workload-identity.js';
import { peerIdentityOf, type PeerIdentity } from './peer-identity.js';

export type MeshAcceptFailure = 'mtls_no_workload_certificate' | 'mtls_handshake_failed' | 'mtls_handshake_timeout';

export type MeshAcceptResult = { readonly ok: true; readonly socket: TLSSocket; readonly peer: PeerIdentity | undefined } | { readonly ok: false; readonly reason: MeshAcceptFailure; readonly detail: string };

type Done = (r: MeshAcceptResult) => void;

interface Pending {
  readonly done: Done;
  /** The TLS error the server reported, if any (the rejected chain, a timeout...). */
  error?: string;
}

function noop(): void {}

/** Connections in their handshake, by address tuple (the TLS server's events carry only the TLS socket). */
const pending = new Map<string, Pending>();

function tupleOf(s: { remoteAddress?: string | undefined; remotePort?: number | undefined; localPort?: number | undefined }): string {
  return `${s.remoteAddress ?? ''}|${s.remotePort ?? 0}|${s.localPort ?? 0}`;
}

const servers = new WeakMap<WorkloadCertificate, Server | Error>();

function serverFor(cert: WorkloadCertificate, handshakeTimeoutMs: number): Server | Error {
  let s = servers.get(cert);
  if (s !== undefined) return s;
  try {
    // No ALPN: Node fails a handshake whose ALPN offer it cannot answer, and a mesh client's `istio` offer needs no answer.
    const server = createServer({ key: cert.keyPem, cert: cert.certChainPem, ca: cert.rootCertsPem, requestCert: true, rejectUnauthorized: true, handshakeTimeout: handshakeTimeoutMs, minVersion: 'TLSv1.2' });
    server.on('secureConnection', (tls: TLSSocket) => {
      const key = tupleOf(tls);
      const p = pending.get(key);
      if (p === undefined) {
        tls.destroy();
        return;
      }
      pending.delete(key);
      tls.on('error', noop);
      tls.pause();
      p.done({ ok: true, socket: tls, peer: peerIdentityOf(tls) });
    });
    server.on('tlsClientError', (e: NodeJS.ErrnoException, tls: TLSSocket) => {
      const p = pending.get(tupleOf(tls));
      if (p !== undefined) p.error = e.code ?? e.message;
    });
    s = server;
  } catch (e) {
    s = new Error(`workload certificate ${cert.spiffeId}: ${e instanceof Error ? e.message : String(e)}`);
  }
  servers.set(cert, s);
  return s;
}

/** Terminates mesh mTLS on `socket` (paused, ClientHello unread or unshifted). Calls `done` exactly once. */
export function acceptMeshTls(socket: Socket, identity: WorkloadIdentitySource, timeoutMs: number, done: Done): void {
  const cert = identity.current();
  const server = cert === undefined ? new Error('this proxy has no workload certificate yet') : serverFor(cert, timeoutMs);
  if (server instanceof Error) {
    done({ ok: false, reason: 'mtls_no_workload_certificate', detail: server.message });
    return;
  }
  const key = tupleOf(socket);
  const entry: Pending = { done };
  pending.set(key, entry);
  socket.once('close', () => {
    if (pending.get(key) !== entry) return;
    pending.delete(key);
    const timeout = entry.error === 'ERR_TLS_HANDSHAKE_TIMEOUT';
    done({
      ok: false,
      reason: timeout ? 'mtls_handshake_timeout' : 'mtls_handshake_failed',
      detail: timeout ? `no mTLS handshake within ${timeoutMs} ms` : entry.error === undefined || entry.error === 'ECONNRESET' ? 'no client certificate the mesh roots verify' : entry.error,
    });
  });
  server.emit('connection', socket);
}
