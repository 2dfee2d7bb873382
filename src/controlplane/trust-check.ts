/**
 * Why a proxy cannot verify the control plane. The usual cause is a root rotation the proxy was
 * away for: its --control-plane-ca file still holds only the old root, and TLS says no more than
 * "unable to get local issuer certificate". This looks at what the control plane presents (one
 * handshake without verification; nothing is sent over it) and names the file and both roots.
 */
import type { X509Certificate } from 'node:crypto';
import type { DetailedPeerCertificate } from 'node:tls';
import { nodeCrypto, nodeTls } from '../shared/lazy-builtins.js';
import { pemCertificates } from './ca/pem.js';

/** OpenSSL verification codes that mean "the chain does not lead to a root we trust". */
const UNTRUSTED_CHAIN = new Set([
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_GET_ISSUER_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'CERT_SIGNATURE_FAILURE',
  'CERT_UNTRUSTED',
]);

export function isUntrustedChainError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && UNTRUSTED_CHAIN.has(code);
}

export interface CertFacts {
  readonly subject: string;
  readonly sha256: string;
}

function factsOf(c: X509Certificate): CertFacts {
  return { subject: c.subject.replace(/\n/g, ', ') || '(no subject)', sha256: c.fingerprint256 };
}

/** The certificates of a PEM bundle (unparseable blocks are skipped). */
export function certificatesIn(pem: string): CertFacts[] {
  const out: CertFacts[] = [];
  for (const block of pemCertificates(pem)) {
    try {
      out.push(factsOf(new (nodeCrypto().X509Certificate)(block)));
    } catch {
      // not a certificate: nothing to name
    }
  }
  return out;
}

/**
 * The top of the chain a TLS server presents: its root when the server sends it (`root`), else
 * the name of the issuer it leads to.
 */
export function presentedRoot(host: string, port: number, timeoutMs = 5000): Promise<{ readonly root?: CertFacts; readonly issuer: string }> {
  return new Promise((resolve, reject) => {
    // Unverified on purpose: only to read the chain for the error message; nothing is sent.
    const socket = nodeTls().connect({ host, port, rejectUnauthorized: false, minVersion: 'TLSv1.2', ...(isIp(host) ? {} : { servername: host }) }, () => {
      let top: DetailedPeerCertificate = socket.getPeerCertificate(true);
      socket.destroy();
      if (!top.raw) return reject(new Error('the server presented no certificate'));
      for (let i = 0; i < 10 && top.issuerCertificate && top.issuerCertificate.raw && top.issuerCertificate !== top && top.issuerCertificate.fingerprint256 !== top.fingerprint256; i++) top = top.issuerCertificate;
      const cert = new (nodeCrypto().X509Certificate)(top.raw);
      const selfSigned = cert.issuer === cert.subject && cert.verify(cert.publicKey);
      resolve({ ...(selfSigned ? { root: factsOf(cert) } : {}), issuer: cert.issuer.replace(/\n/g, ', ') });
    });
    socket.setTimeout(timeoutMs, () => socket.destroy(new Error(`no TLS handshake within ${timeoutMs} ms`)));
    socket.on('error', reject);
  });
}

/**
 * The message for a control plane whose chain `trustedPem` (read from `caFile`) does not verify:
 * which root it presents, which ones the file holds, and what to do.
 */
export async function explainUntrustedControlPlane(host: string, port: number, caFile: string, trustedPem: string): Promise<string> {
  const held = [...new Map(certificatesIn(trustedPem).map((c) => [c.sha256, c])).values()];
  const heldText = held.length === 0 ? 'no certificate' : held.map((c) => `"${c.subject}" (SHA-256 ${c.sha256})`).join(', ');
  let seen: string;
  try {
    const top = await presentedRoot(host, port);
    seen = top.root ? `a chain to the root "${top.root.subject}" (SHA-256 ${top.root.sha256})` : `a chain issued by "${top.issuer}" (its root is not sent)`;
  } catch (err) {
    seen = `a certificate that could not be read (${err instanceof Error ? err.message : String(err)})`;
  }
  return (
    `the control plane at ${host}:${port} presents ${seen}, but this proxy trusts only ${heldText} (--control-plane-ca ${caFile}, and any root the control plane announced earlier). ` +
    `Its CA root was probably rotated while this proxy was away: put the control plane's current root (its root-cert.pem; in Kubernetes the istio-ca-root-cert ConfigMap) into ${caFile}. ` +
    `The file is re-read at every reconnect attempt.`
  );
}

function isIp(host: string): boolean {
  return /^[\d.]+$/.test(host) || host.includes(':');
}
