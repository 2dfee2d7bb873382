/**
 * TLS termination for a Gateway server's connection (tls.mode SIMPLE, MUTUAL, OPTIONAL_MUTUAL):
 * ALPN offers `h2` then `http/1.1` (the HTTP connection manager hands an h2 connection to the
 * HTTP/2 codec), the client certificate is checked as the mode says, and the connection is handed
 * on only once the handshake completed, with the client certificate's subject and SANs.
 *
 * Client certificates: `requestCert` makes OpenSSL ask for one, and for MUTUAL refuse a handshake
 * without one (the client gets a `certificate required` alert). OpenSSL's verification result for a
 * certificate that was sent is read after the handshake, as Node's own tls.Server does (a socket
 * built outside a tls.Server is never verified by Node): a certificate that does not lead to the
 * configured CA is refused in both mutual modes, and so is one without any of `subjectAltNames`.
 * (A tls.Server would do both, but builds its own SecureContext and hides which accepted
 * connection a socket belongs to; the two internals read here are the ones it uses.)
 */
import type { Socket } from 'node:net';
import { TLSSocket, type PeerCertificate } from 'node:tls';
import type { PeerCertificateFacts } from '../context.js';
import type { DownstreamTlsContext } from './tls-store.js';

export type TerminateResult =
  | { readonly ok: true; readonly socket: TLSSocket; readonly peer: PeerCertificateFacts | undefined }
  | { readonly ok: false; readonly reason: TlsRefusal; readonly detail: string };

/** Stable tollgate_reason values of a refused TLS connection (docs/errors.md). */
export type TlsRefusal = 'tls_handshake_failed' | 'tls_client_certificate_invalid' | 'tls_client_certificate_san_mismatch';

const ALPN = ['h2', 'http/1.1'];

interface VerifyingHandle {
  verifyError?: () => Error | null | undefined;
}

function subjectText(s: PeerCertificate['subject'] | undefined): string {
  if (s === undefined || s === null) return '';
  const parts: string[] = [];
  for (const [k, v] of Object.entries(s)) for (const one of Array.isArray(v) ? v : [v]) parts.push(`${k}=${String(one)}`);
  return parts.reverse().join(',');
}

/** `subjectaltname` as Node prints it: `DNS:a, URI:spiffe://x, IP Address:1.2.3.4`. */
function sansOf(text: string | undefined): { uri: string[]; dns: string[]; ip: string[] } {
  const out = { uri: [] as string[], dns: [] as string[], ip: [] as string[] };
  for (const part of (text ?? '').split(', ')) {
    const colon = part.indexOf(':');
    if (colon < 0) continue;
    const kind = part.slice(0, colon);
    const value = part.slice(colon + 1);
    if (kind === 'URI') out.uri.push(value);
    else if (kind === 'DNS') out.dns.push(value);
    else if (kind === 'IP Address') out.ip.push(value);
  }
  return out;
}

function peerFacts(socket: TLSSocket): PeerCertificateFacts | undefined {
  const cert = socket.getPeerCertificate();
  if (cert === null || cert === undefined || Object.keys(cert).length === 0) return undefined;
  const sans = sansOf(cert.subjectaltname);
  return { subject: subjectText(cert.subject), uriSans: sans.uri, dnsSans: sans.dns, ipSans: sans.ip, sha256: cert.fingerprint256.replaceAll(':', '').toLowerCase() };
}

/** Why the handshake's client certificate is refused, or undefined when the connection may go on. */
function clientCertificateProblem(socket: TLSSocket, ctx: DownstreamTlsContext, peer: PeerCertificateFacts | undefined): { reason: TlsRefusal; detail: string } | undefined {
  if (ctx.clientCertificate === 'none') return undefined;
  if (peer === undefined) {
    // MUTUAL: OpenSSL already refused the handshake; OPTIONAL_MUTUAL: no certificate is allowed.
    return ctx.clientCertificate === 'required' ? { reason: 'tls_client_certificate_invalid', detail: 'no client certificate' } : undefined;
  }
  const handle = (socket as unknown as { _handle?: VerifyingHandle })._handle;
  if (typeof handle?.verifyError !== 'function') return { reason: 'tls_client_certificate_invalid', detail: 'the client certificate could not be verified (no verification result)' };
  const err = handle.verifyError();
  if (err) return { reason: 'tls_client_certificate_invalid', detail: `client certificate ${peer.subject}: ${(err as NodeJS.ErrnoException).code ?? err.message}` };
  const wanted = ctx.subjectAltNames;
  if (wanted !== undefined && !wanted.some((n) => peer.uriSans.includes(n) || peer.dnsSans.includes(n) || peer.ipSans.includes(n))) {
    return { reason: 'tls_client_certificate_san_mismatch', detail: `client certificate ${peer.subject} has none of the subjectAltNames ${wanted.join(', ')}` };
  }
  return undefined;
}

/** `ERR_SSL_...: wrong version number` from OpenSSL's `<hex>:error:<lib>:<func>:<reason>:<file>:<line>:` text. */
function opensslReason(e: Error): string {
  const code = (e as NodeJS.ErrnoException).code;
  const m = /:error:[0-9A-F]+:[^:]*:[^:]*:([^:]+):/.exec(e.message);
  return `${code ?? 'error'}: ${m?.[1] ?? e.message}`;
}

/**
 * Runs the server handshake on `raw` (paused; bytes the TLS inspector read were unshifted) and
 * calls `done` once: with the TLS socket (paused) after a handshake that passed the client
 * certificate policy, or with the reason it failed (the socket is destroyed then).
 */
export function terminateTls(raw: Socket, ctx: DownstreamTlsContext, timeoutMs: number, done: (r: TerminateResult) => void): void {
  const mutual = ctx.clientCertificate !== 'none';
  const socket = new TLSSocket(raw, { isServer: true, secureContext: ctx.secureContext, ALPNProtocols: ALPN, requestCert: mutual, rejectUnauthorized: ctx.clientCertificate === 'required' });
  socket.pause();
  let finished = false;
  const finish = (r: TerminateResult): void => {
    if (finished) return;
    finished = true;
    clearTimeout(timer);
    socket.removeListener('secure', onSecure);
    socket.removeListener('close', onClose);
    if (!r.ok) socket.destroy();
    done(r);
  };
  const timer = setTimeout(() => finish({ ok: false, reason: 'tls_handshake_failed', detail: `no TLS handshake within ${timeoutMs} ms` }), timeoutMs);
  let lastError: Error | undefined;
  const onError = (e: Error): void => {
    lastError = e;
  };
  const onClose = (): void => {
    const code = (lastError as NodeJS.ErrnoException | undefined)?.code;
    if (code === 'ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE') finish({ ok: false, reason: 'tls_client_certificate_invalid', detail: 'no client certificate' });
    else finish({ ok: false, reason: 'tls_handshake_failed', detail: lastError !== undefined ? opensslReason(lastError) : 'closed during the TLS handshake' });
  };
  const onSecure = (): void => {
    const peer = mutual ? peerFacts(socket) : undefined;
    const problem = clientCertificateProblem(socket, ctx, peer);
    if (problem !== undefined) {
      finish({ ok: false, ...problem });
      return;
    }
    // As tls.Server marks its sockets once secure: node:http2 waits for 'secureConnect' (a client
    // event) while this is set, so the HTTP/2 session would never start on a server socket.
    (socket as unknown as { secureConnecting: boolean }).secureConnecting = false;
    finish({ ok: true, socket, peer });
  };
  // The HTTP code adds its own error handler; this one keeps a late error from being unhandled.
  socket.on('error', onError);
  socket.on('close', onClose);
  socket.once('secure', onSecure);
}
