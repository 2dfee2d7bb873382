/**
 * The one place that signs X.509: certificates and certificate requests through @peculiar/x509
 * (Node's crypto parses and verifies certificates but cannot create them; see docs/dependencies.md).
 * Everything else in the CA works on PEM strings and Node's own `X509Certificate`.
 */
// The library resolves its ASN.1 handlers through tsyringe, which needs the Reflect metadata API
// before the library is evaluated; ES modules evaluate their imports in order.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { createPrivateKey, randomBytes, webcrypto, X509Certificate } from 'node:crypto';
import { pemCertificates } from './pem.js';

type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;
type Algorithm = webcrypto.Algorithm;
type EcdsaParams = webcrypto.EcdsaParams;

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

const EC_P256 = { name: 'ECDSA', namedCurve: 'P-256' } as const;

export interface PemKeyPair {
  readonly privateKeyPem: string;
  readonly publicKey: CryptoKey;
  readonly privateKey: CryptoKey;
}

/** A fresh ECDSA P-256 key pair; the private key is exportable only so it can be written as PEM. */
export async function generateKeyPair(): Promise<PemKeyPair> {
  const keys = (await webcrypto.subtle.generateKey(EC_P256, true, ['sign', 'verify'])) as CryptoKeyPair;
  const pkcs8 = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey));
  return { privateKeyPem: pem('PRIVATE KEY', pkcs8), publicKey: keys.publicKey, privateKey: keys.privateKey };
}

/** A signing key as WebCrypto wants it, from any PEM private key Node reads (PKCS#8, SEC1, PKCS#1; EC or RSA). */
export async function importSigningKey(keyPem: string): Promise<{ key: CryptoKey; algorithm: Algorithm | EcdsaParams }> {
  const k = createPrivateKey(keyPem);
  const der = k.export({ type: 'pkcs8', format: 'der' });
  if (k.asymmetricKeyType === 'rsa') {
    const alg = { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' };
    return { key: await webcrypto.subtle.importKey('pkcs8', der, alg, false, ['sign']), algorithm: alg };
  }
  if (k.asymmetricKeyType === 'ec') {
    const curve = k.asymmetricKeyDetails?.namedCurve;
    const named = curve === 'prime256v1' || curve === 'P-256' ? 'P-256' : curve === 'secp384r1' || curve === 'P-384' ? 'P-384' : undefined;
    if (named === undefined) throw new Error(`EC curve ${String(curve)} is not supported (use P-256 or P-384)`);
    const key = await webcrypto.subtle.importKey('pkcs8', der, { name: 'ECDSA', namedCurve: named }, false, ['sign']);
    return { key, algorithm: { name: 'ECDSA', hash: named === 'P-256' ? 'SHA-256' : 'SHA-384' } as EcdsaParams };
  }
  throw new Error(`a ${String(k.asymmetricKeyType)} key cannot sign certificates here (use EC P-256/P-384 or RSA)`);
}

function pem(label: string, der: Buffer): string {
  const b64 = der.toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '');
  return `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`;
}

/** A positive 128-bit serial number (RFC 5280 asks for at most 20 octets, unpredictable). */
function serialNumber(): string {
  const b = randomBytes(16);
  b[0] = (b[0]! & 0x7f) | 0x01;
  return b.toString('hex');
}

/** How far back notBefore is set, so a peer whose clock lags a little still accepts a fresh certificate. */
const CLOCK_SKEW_MS = 5 * 60_000;

export async function createSelfSignedRoot(keys: PemKeyPair, organization: string, lifetimeMs: number): Promise<string> {
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serialNumber(),
    name: [{ O: [organization] }],
    notBefore: new Date(now - CLOCK_SKEW_MS),
    notAfter: new Date(now + lifetimeMs),
    signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' } as EcdsaParams,
    keys: { publicKey: keys.publicKey, privateKey: keys.privateKey },
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return cert.toString('pem') + '\n';
}

export interface LeafRequest {
  /** SPIFFE ID for a workload, and/or DNS names and IPs for a server. */
  readonly uris?: readonly string[];
  readonly dnsNames?: readonly string[];
  readonly ips?: readonly string[];
  readonly commonName?: string;
  readonly publicKey: CryptoKey | x509.PublicKey;
  readonly lifetimeMs: number;
}

export interface Issuer {
  readonly certPem: string;
  readonly key: CryptoKey;
  readonly algorithm: Algorithm | EcdsaParams;
}

/** Signs an end-entity certificate usable both as a TLS server and client (mTLS peers are both). */
export async function signLeaf(issuer: Issuer, req: LeafRequest): Promise<string> {
  const issuerCert = new x509.X509Certificate(issuer.certPem);
  const names: x509.JsonGeneralName[] = [
    ...(req.uris ?? []).map((value) => ({ type: 'url' as const, value })),
    ...(req.dnsNames ?? []).map((value) => ({ type: 'dns' as const, value })),
    ...(req.ips ?? []).map((value) => ({ type: 'ip' as const, value })),
  ];
  const now = Date.now();
  const publicKey = req.publicKey instanceof x509.PublicKey ? await req.publicKey.export() : req.publicKey;
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serialNumber(),
    subject: req.commonName !== undefined ? [{ CN: [req.commonName] }] : [],
    issuer: issuerCert.subjectName,
    notBefore: new Date(now - CLOCK_SKEW_MS),
    notAfter: new Date(now + req.lifetimeMs),
    signingAlgorithm: issuer.algorithm,
    publicKey,
    signingKey: issuer.key,
    extensions: [
      // An empty subject makes the SAN the only name, so it must be critical (RFC 5280 4.2.1.6).
      new x509.SubjectAlternativeNameExtension(names, req.commonName === undefined),
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
      await x509.AuthorityKeyIdentifierExtension.create(issuerCert),
    ],
  });
  return cert.toString('pem') + '\n';
}

/** A PKCS#10 request for `uri` (the SPIFFE ID the proxy believes it has; the CA decides). */
export async function createCsr(keys: PemKeyPair, uri: string | undefined): Promise<string> {
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: [],
    keys: { publicKey: keys.publicKey, privateKey: keys.privateKey },
    signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' } as EcdsaParams,
    extensions: uri === undefined ? [] : [new x509.SubjectAlternativeNameExtension([{ type: 'url', value: uri }], true)],
  });
  return csr.toString('pem') + '\n';
}

const SUBJECT_ALT_NAME_OID = '2.5.29.17';

export interface ParsedCsr {
  readonly publicKey: x509.PublicKey;
  /** URI SANs the request asks for. */
  readonly uris: readonly string[];
  /** Other SANs (DNS, IP, e-mail): a workload request must not carry any. */
  readonly otherNames: readonly string[];
}

/** Parses and checks the self-signature (proof that the sender holds the private key). Throws on anything else. */
export async function parseCsr(csrPem: string): Promise<ParsedCsr> {
  let csr: x509.Pkcs10CertificateRequest;
  try {
    csr = new x509.Pkcs10CertificateRequest(csrPem);
  } catch (err) {
    throw new Error(`not a PEM certificate request: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (!(await csr.verify())) throw new Error('the certificate request signature does not verify');
  const uris: string[] = [];
  const otherNames: string[] = [];
  const ext = csr.getExtension(SUBJECT_ALT_NAME_OID);
  const san = ext ? new x509.SubjectAlternativeNameExtension(ext.rawData) : undefined;
  for (const n of san?.names.toJSON() ?? []) (n.type === 'url' ? uris : otherNames).push(`${n.value}`);
  return { publicKey: csr.publicKey, uris, otherNames };
}

/** Splits a PEM bundle into its certificates (Node objects), in order. */
export function splitCertificates(bundle: string): X509Certificate[] {
  return pemCertificates(bundle).map((b) => new X509Certificate(b));
}
