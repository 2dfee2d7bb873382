/**
 * CA material in Istio's layout, whether it comes from a directory or a Secret:
 *   ca-cert.pem    the certificate that signs workload certificates (a root, or an intermediate)
 *   ca-key.pem     its private key
 *   root-cert.pem  the root peers trust (empty or absent: ca-cert.pem is the root)
 *   cert-chain.pem ca-cert.pem's chain up to the root (empty or absent: ca-cert.pem alone)
 * `cacerts` (plugged in by the operator) fills all four; Istio's self-signed `istio-ca-secret`
 * fills the first two. Checked before use: a half-written or mismatched set is refused whole.
 */
import { createHash, createPrivateKey, X509Certificate } from 'node:crypto';
import { createSelfSignedRoot, generateKeyPair, splitCertificates } from './x509.js';

export const CA_FILES = ['ca-cert.pem', 'ca-key.pem', 'root-cert.pem', 'cert-chain.pem'] as const;
export type CaFileName = (typeof CA_FILES)[number];
export type CaFiles = Partial<Record<CaFileName, string>>;

export interface CaMaterial {
  readonly signingCertPem: string;
  readonly signingKeyPem: string;
  /** What follows an issued leaf: ca-cert.pem and its chain (never empty). */
  readonly chainPem: string;
  readonly rootCertPem: string;
  /** "self-signed" when the signing certificate is the root, else "plugged-in". */
  readonly kind: 'self-signed' | 'plugged-in';
  /** SHA-256 over the four inputs: a change of any of them is a rotation. */
  readonly fingerprint: string;
  readonly notAfter: Date;
}

/** Where the CA material lives: a directory (--ca-dir) or Kubernetes Secrets. */
export interface CaStore {
  /** The material to sign with now (generated and stored on first use where the store can). */
  load(): Promise<CaMaterial>;
  /** Calls `onChange` with each new valid material. */
  watch(onChange: (m: CaMaterial) => void): void;
  close(): void;
}

/** Validates a set of CA files; `where` names their origin in errors (a directory or a Secret). */
export function caMaterialFrom(files: CaFiles, where: string): CaMaterial {
  const caCert = files['ca-cert.pem']?.trim() ?? '';
  const caKey = files['ca-key.pem']?.trim() ?? '';
  if (caCert === '' || caKey === '') throw new Error(`${where}: ca-cert.pem and ca-key.pem are both required`);
  const signing = one(caCert, `${where}/ca-cert.pem`);
  let key;
  try {
    key = createPrivateKey(caKey);
  } catch (err) {
    throw new Error(`${where}/ca-key.pem: not a PEM private key (${err instanceof Error ? err.message : String(err)})`);
  }
  if (!signing.checkPrivateKey(key)) throw new Error(`${where}: ca-key.pem is not the key of ca-cert.pem`);
  if (!signing.ca) throw new Error(`${where}/ca-cert.pem: not a CA certificate (basicConstraints CA:TRUE is missing)`);
  const rootText = files['root-cert.pem']?.trim() ?? '';
  const root = rootText === '' ? signing : one(rootText, `${where}/root-cert.pem`);
  if (root.issuer !== root.subject || !root.verify(root.publicKey)) throw new Error(`${where}/root-cert.pem: not a self-signed root`);
  const chainText = files['cert-chain.pem']?.trim() ?? '';
  const chain = chainText === '' ? [signing] : splitCertificates(chainText);
  if (chain.length === 0) throw new Error(`${where}/cert-chain.pem: no certificates`);
  if (chain[0]!.fingerprint256 !== signing.fingerprint256) throw new Error(`${where}/cert-chain.pem: must start with ca-cert.pem`);
  verifyChain(chain, root, where);
  const now = Date.now();
  for (const c of [signing, root]) if (Date.parse(c.validTo) < now) throw new Error(`${where}: ${c.subject || c.serialNumber} expired on ${c.validTo}`);
  const fingerprint = createHash('sha256').update([caCert, caKey, rootText, chainText].join('\0')).digest('hex');
  const chainPem = chain.map((c) => c.toString().trim()).join('\n') + '\n';
  return {
    signingCertPem: caCert + '\n',
    signingKeyPem: caKey + '\n',
    chainPem,
    rootCertPem: root.toString().trim() + '\n',
    kind: signing.fingerprint256 === root.fingerprint256 ? 'self-signed' : 'plugged-in',
    fingerprint,
    notAfter: new Date(Math.min(Date.parse(signing.validTo), Date.parse(root.validTo))),
  };
}

function one(text: string, where: string): X509Certificate {
  try {
    return new X509Certificate(text);
  } catch (err) {
    throw new Error(`${where}: not a PEM certificate (${err instanceof Error ? err.message : String(err)})`);
  }
}

/** Each certificate must be signed by the next; the last by the root (or be the root). */
function verifyChain(chain: readonly X509Certificate[], root: X509Certificate, where: string): void {
  for (let i = 0; i < chain.length; i++) {
    const c = chain[i]!;
    if (c.fingerprint256 === root.fingerprint256) return;
    const issuer = chain[i + 1] ?? root;
    if (!c.checkIssued(issuer) || !c.verify(issuer.publicKey)) throw new Error(`${where}: ${c.subject || 'a certificate'} in the chain is not signed by ${issuer.subject || 'the next one'} (cert-chain.pem, root-cert.pem)`);
  }
}

/** Istio's self-signed root lasts ten years; ours too. */
export const SELF_SIGNED_ROOT_LIFETIME_MS = 10 * 365 * 24 * 3_600_000;

/** A new self-signed root in the `istio-ca-secret` layout (ca-cert.pem + ca-key.pem). */
export async function generateSelfSignedCaFiles(trustDomain: string): Promise<Required<Pick<CaFiles, 'ca-cert.pem' | 'ca-key.pem'>>> {
  const keys = await generateKeyPair();
  const cert = await createSelfSignedRoot(keys, trustDomain, SELF_SIGNED_ROOT_LIFETIME_MS);
  return { 'ca-cert.pem': cert, 'ca-key.pem': keys.privateKeyPem };
}
