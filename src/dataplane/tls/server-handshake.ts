/**
 * Server-side TLS on a connection the listener already accepted (its ClientHello possibly peeked
 * by the TLS inspector and pushed back): the one way Tollgate terminates TLS from a client, for
 * Gateway servers (SIMPLE, MUTUAL, OPTIONAL_MUTUAL) and for mesh mTLS alike.
 *
 * The connection is handed to a node:tls Server that never listens (`server.emit('connection')`),
 * one per certificate configuration, built when the snapshot (or the workload certificate) is
 * applied. Only a Server runs Node's check of the client's chain after the handshake and sets the
 * public `tlsSocket.authorized` / `authorizationError`; a bare server-side TLSSocket never does.
 * The Server reports a finished handshake with the TLS socket alone, so the pending handshake is
 * found by the connection's address tuple.
 *
 * Servers are made with `rejectUnauthorized: false` and the caller decides with
 * clientCertificateProblem(): a Server that rejects by itself destroys the socket without saying
 * why, and every refusal here is logged with its reason. A client that must send a certificate and
 * sends none completes the handshake and is closed before one byte of it is read.
 */
import type { Socket } from 'node:net';
import type { Server, TlsOptions, TLSSocket } from 'node:tls';
import { nodeTls } from '../../shared/lazy-builtins.js';
import type { PeerCertificateFacts } from '../context.js';
import { hasSubjectAltName } from './peer-certificate.js';

export type HandshakeResult =
  | { readonly ok: true; readonly socket: TLSSocket }
  /** `error`: what the TLS layer reported (undefined when the client just went away). */
  | { readonly ok: false; readonly timedOut: boolean; readonly error: Error | undefined };

type Done = (r: HandshakeResult) => void;

interface Pending {
  readonly done: Done;
  readonly timer: NodeJS.Timeout;
  error?: Error;
}

function noop(): void {}

/** Handshakes in progress, by address tuple (unique among open TCP connections). */
const pending = new Map<string, Pending>();

function tupleOf(s: { remoteAddress?: string | undefined; remotePort?: number | undefined; localAddress?: string | undefined; localPort?: number | undefined }): string {
  return `${s.remoteAddress ?? ''}|${s.remotePort ?? 0}|${s.localAddress ?? ''}|${s.localPort ?? 0}`;
}

/** A Server for serverHandshake(): the certificate, CA and protocol settings of one configuration. Throws on bad key material. */
export function handshakeServer(options: Omit<TlsOptions, 'rejectUnauthorized' | 'handshakeTimeout'>): Server {
  const server = nodeTls().createServer({ ...options, rejectUnauthorized: false });
  server.on('secureConnection', (tls: TLSSocket) => {
    const key = tupleOf(tls);
    const p = pending.get(key);
    if (p === undefined) {
      tls.destroy();
      return;
    }
    pending.delete(key);
    clearTimeout(p.timer);
    tls.on('error', noop);
    tls.pause();
    p.done({ ok: true, socket: tls });
  });
  server.on('tlsClientError', (e: Error, tls: TLSSocket) => {
    const p = pending.get(tupleOf(tls));
    if (p !== undefined) p.error = e;
  });
  return server;
}

/**
 * Runs the server handshake on `socket` (paused) through `server`; calls `done` exactly once,
 * with the TLS socket (paused) or why there is none. The handshake is bounded by `timeoutMs`.
 */
export function serverHandshake(socket: Socket, server: Server, timeoutMs: number, done: Done): void {
  const key = tupleOf(socket);
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    socket.destroy();
  }, timeoutMs);
  const entry: Pending = { done, timer };
  pending.set(key, entry);
  socket.once('close', () => {
    clearTimeout(timer);
    if (pending.get(key) !== entry) return;
    pending.delete(key);
    done({ ok: false, timedOut, error: entry.error });
  });
  server.emit('connection', socket);
}

/** What the client-certificate policy of a connection asks. */
export interface ClientCertificateCheck {
  /** A certificate must be sent (MUTUAL, mesh mTLS); otherwise one that is sent must still verify. */
  readonly required: boolean;
  /** The certificate must carry one of these URI/DNS/IP SANs (Gateway tls.subjectAltNames). */
  readonly subjectAltNames?: readonly string[] | undefined;
}

export type ClientCertificateProblem = { readonly kind: 'missing' | 'unverified' | 'san_mismatch'; readonly detail: string };

/** Why the accepted connection's client certificate is refused; undefined when it may go on. */
export function clientCertificateProblem(socket: TLSSocket, peer: PeerCertificateFacts | undefined, check: ClientCertificateCheck): ClientCertificateProblem | undefined {
  if (peer === undefined) return check.required ? { kind: 'missing', detail: 'no client certificate' } : undefined;
  if (!socket.authorized) {
    const why = socket.authorizationError;
    return { kind: 'unverified', detail: `client certificate ${peer.subject}: ${why === null || why === undefined ? 'not verified' : typeof why === 'string' ? why : ((why as NodeJS.ErrnoException).code ?? why.message)}` };
  }
  const wanted = check.subjectAltNames;
  if (wanted !== undefined && !hasSubjectAltName(peer, wanted)) return { kind: 'san_mismatch', detail: `client certificate ${peer.subject} has none of the subjectAltNames ${wanted.join(', ')}` };
  return undefined;
}
