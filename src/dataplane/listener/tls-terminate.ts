/**
 * TLS termination for a Gateway server's connection (tls.mode SIMPLE, MUTUAL, OPTIONAL_MUTUAL),
 * through the chain's handshake server (tls-store.ts, tls/server-handshake.ts): ALPN offers `h2`
 * then `http/1.1`, the client certificate is checked as the mode says — MUTUAL needs one that
 * leads to the configured CA, OPTIONAL_MUTUAL refuses only one that does not, and
 * `subjectAltNames` must name one of its SANs — and the connection is handed on with the client
 * certificate's facts once the handshake completed.
 */
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { PeerCertificateFacts } from '../context.js';
import { peerCertificateOf } from '../tls/peer-certificate.js';
import { clientCertificateProblem, serverHandshake } from '../tls/server-handshake.js';
import type { DownstreamTlsContext } from './tls-store.js';

export type TerminateResult =
  | { readonly ok: true; readonly socket: TLSSocket; readonly peer: PeerCertificateFacts | undefined }
  | { readonly ok: false; readonly reason: TlsRefusal; readonly detail: string };

/** Stable tollgate_reason values of a refused TLS connection (docs/errors.md). */
export type TlsRefusal = 'tls_handshake_failed' | 'tls_client_certificate_invalid' | 'tls_client_certificate_san_mismatch';

/** `ERR_SSL_...: wrong version number` from OpenSSL's `<hex>:error:<lib>:<func>:<reason>:<file>:<line>:` text. */
function opensslReason(e: Error): string {
  const code = (e as NodeJS.ErrnoException).code;
  const m = /:error:[0-9A-F]+:[^:]*:[^:]*:([^:]+):/.exec(e.message);
  return `${code ?? 'error'}: ${m?.[1] ?? e.message}`;
}

/**
 * Runs the server handshake on `raw` (paused; bytes the TLS inspector read were unshifted) and
 * calls `done` once: with the TLS socket (paused) after a handshake that passed the client
 * certificate policy, or with the reason it failed (the connection is closed then).
 */
export function terminateTls(raw: Socket, ctx: DownstreamTlsContext, timeoutMs: number, done: (r: TerminateResult) => void): void {
  serverHandshake(raw, ctx.server, timeoutMs, (h) => {
    if (!h.ok) {
      done({ ok: false, reason: 'tls_handshake_failed', detail: h.timedOut ? `no TLS handshake within ${timeoutMs} ms` : h.error !== undefined ? opensslReason(h.error) : 'closed during the TLS handshake' });
      return;
    }
    const socket = h.socket;
    if (ctx.clientCertificate === 'none') {
      done({ ok: true, socket, peer: undefined });
      return;
    }
    const peer = peerCertificateOf(socket);
    const problem = clientCertificateProblem(socket, peer, { required: ctx.clientCertificate === 'required', subjectAltNames: ctx.subjectAltNames });
    if (problem !== undefined) {
      socket.destroy();
      done({ ok: false, reason: problem.kind === 'san_mismatch' ? 'tls_client_certificate_san_mismatch' : 'tls_client_certificate_invalid', detail: problem.detail });
      return;
    }
    done({ ok: true, socket, peer });
  });
}
