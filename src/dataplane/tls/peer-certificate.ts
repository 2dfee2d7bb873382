/**
 * The facts of the certificate a TLS client presented, read once when its handshake is accepted:
 * subject, SANs, SPIFFE ID and hash. The access log, AuthorizationPolicy (via the SPIFFE ID) and
 * x-forwarded-client-cert all read these, whether the connection was a Gateway server's MUTUAL /
 * OPTIONAL_MUTUAL TLS or mesh mTLS.
 */
import type { PeerCertificate, TLSSocket } from 'node:tls';
import type { PeerCertificateFacts } from '../context.js';
import { isSpiffeId, sansOf } from './subject-alt-names.js';

/** RFC 2253 order (most significant last in the certificate, first here): `CN=client,O=acme`. */
function subjectText(s: PeerCertificate['subject'] | undefined): string {
  if (s === undefined || s === null) return '';
  const parts: string[] = [];
  for (const [k, v] of Object.entries(s)) for (const one of Array.isArray(v) ? v : [v]) parts.push(`${k}=${String(one)}`);
  return parts.reverse().join(',');
}

/** The client certificate of an accepted TLS connection; undefined when the client sent none. */
export function peerCertificateOf(socket: TLSSocket): PeerCertificateFacts | undefined {
  const cert = socket.getPeerCertificate();
  if (cert === null || cert === undefined || Object.keys(cert).length === 0) return undefined;
  const sans = sansOf(cert.subjectaltname);
  const spiffeId = sans.uri.find(isSpiffeId);
  return { subject: subjectText(cert.subject), uriSans: sans.uri, dnsSans: sans.dns, ipSans: sans.ip, sha256: cert.fingerprint256.replaceAll(':', '').toLowerCase(), ...(spiffeId !== undefined ? { spiffeId } : {}) };
}

/** Whether the certificate carries one of `names` as a URI, DNS or IP SAN (Gateway tls.subjectAltNames). */
export function hasSubjectAltName(p: PeerCertificateFacts, names: readonly string[]): boolean {
  return names.some((n) => p.uriSans.includes(n) || p.dnsSans.includes(n) || p.ipSans.includes(n));
}
