/**
 * The control plane's certificate authority: signs workload certificates for the identity a proxy
 * authenticated as (never the one it asks for), signs the control plane's own server certificate,
 * and keeps the roots peers must trust. When the CA material changes (a new intermediate plugged
 * in, a new root), the old root stays in the trust bundle for one workload-certificate lifetime,
 * so certificates issued before the change keep verifying while proxies renew.
 */
import { X509Certificate } from 'node:crypto';
import { spiffeIdOf, type SpiffeIdentity } from '../../shared/workload-identity.js';
import type { CaMaterial } from './material.js';
import { generateKeyPair, importSigningKey, parseCsr, signLeaf, type Issuer } from './x509.js';

/** A refused request: `status` is the HTTP answer (400 malformed, 403 not this caller's identity). */
export class CertificateRequestError extends Error {
  constructor(readonly status: 400 | 403, message: string) {
    super(message);
  }
}

export interface IssuedCertificate {
  /** Leaf first, then the CA's chain. */
  readonly certChainPem: string;
  /** Every root a peer may present a chain to (the current one, plus the previous one during a rotation). */
  readonly rootCertsPem: string;
  readonly spiffeId: string;
  readonly notAfter: string;
}

export interface AuthorityOptions {
  readonly trustDomain: string;
  readonly workloadCertTtlMs: number;
  readonly log?: (line: string) => void;
}

interface ActiveCa {
  readonly material: CaMaterial;
  readonly issuer: Issuer;
  readonly signerSha256: string;
}

export class CertificateAuthority {
  private active: ActiveCa | undefined;
  /** Roots replaced by a rotation, trusted until `until`. */
  private previousRoots: { pem: string; until: number }[] = [];
  /** The latest expiry of a leaf signed under the current root: its root is needed until then. */
  private latestLeafExpiry = 0;
  private pruneTimer: NodeJS.Timeout | undefined;
  private changing: Promise<void> = Promise.resolve();
  private readonly listeners = new Set<() => void>();
  private readonly log: (line: string) => void;

  constructor(readonly opts: AuthorityOptions) {
    this.log = opts.log ?? (() => undefined);
  }

  get trustDomain(): string {
    return this.opts.trustDomain;
  }

  get material(): CaMaterial | undefined {
    return this.active?.material;
  }

  /** Starts signing with `material`. Listeners hear of it when it replaces earlier material. */
  use(material: CaMaterial): Promise<void> {
    // One change at a time, so each rotation sees the material it replaces.
    const next = this.changing.then(() => this.switchTo(material));
    this.changing = next.catch(() => undefined);
    return next;
  }

  private async switchTo(material: CaMaterial): Promise<void> {
    const before = this.active;
    if (before?.material.fingerprint === material.fingerprint) return;
    const { key, algorithm } = await importSigningKey(material.signingKeyPem);
    const signer = new X509Certificate(material.signingCertPem);
    this.active = { material, issuer: { certPem: material.signingCertPem, key, algorithm }, signerSha256: signer.fingerprint256 };
    this.log(`CA: signing with ${material.kind} ${signer.subject.replace(/\n/g, ', ') || '(no subject)'} (expires ${signer.validTo}) for trust domain ${this.opts.trustDomain}`);
    if (!before) return;
    if (before.material.rootCertPem !== material.rootCertPem) {
      // Until the last leaf chained to the old root has expired; at least one workload lifetime,
      // for leaves a previous run of the control plane issued.
      const until = Math.max(this.latestLeafExpiry, Date.now() + this.opts.workloadCertTtlMs);
      this.latestLeafExpiry = 0;
      this.previousRoots = [...this.previousRoots.filter((r) => r.pem !== material.rootCertPem), { pem: before.material.rootCertPem, until }];
      this.schedulePrune();
      this.log(`CA: new root; the previous one stays trusted until ${new Date(until).toISOString()}, when the last certificate chained to it expires`);
    }
    this.emit();
  }

  /** Called after every change of the signing certificate or of the trust bundle. */
  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  close(): void {
    if (this.pruneTimer) clearTimeout(this.pruneTimer);
    this.listeners.clear();
  }

  /** SHA-256 fingerprint of the certificate that signs now (Node's `fingerprint256` form). */
  signerSha256(): string {
    return this.require().signerSha256;
  }

  rootCertsPem(): string {
    const a = this.require();
    const now = Date.now();
    return [a.material.rootCertPem, ...this.previousRoots.filter((r) => r.until > now).map((r) => r.pem)].join('');
  }

  /**
   * Signs `csrPem` for `identity` (from the caller's credential). The request may name the
   * identity it expects as its one URI SAN; naming any other one is refused, as is any DNS/IP name.
   */
  async issueWorkload(csrPem: string, identity: Omit<SpiffeIdentity, 'trustDomain'>): Promise<IssuedCertificate> {
    const a = this.require();
    let csr;
    try {
      csr = await parseCsr(csrPem);
    } catch (err) {
      throw new CertificateRequestError(400, err instanceof Error ? err.message : String(err));
    }
    const spiffeId = spiffeIdOf({ ...identity, trustDomain: this.opts.trustDomain });
    const foreign = csr.uris.filter((u) => u !== spiffeId);
    if (foreign.length > 0 || csr.otherNames.length > 0) {
      throw new CertificateRequestError(403, `the request asks for ${[...foreign, ...csr.otherNames].join(', ')}, but the credential is ${spiffeId}`);
    }
    const certPem = await signLeaf(a.issuer, { uris: [spiffeId], publicKey: csr.publicKey, lifetimeMs: this.leafLifetime(this.opts.workloadCertTtlMs) });
    const leaf = this.signed(certPem);
    return { certChainPem: certPem + a.material.chainPem, rootCertsPem: this.rootCertsPem(), spiffeId, notAfter: leaf.validTo };
  }

  /** A key and certificate for a server of ours (the control plane's stream): names are DNS names or IPs. */
  async issueServer(dnsNames: readonly string[], ips: readonly string[], lifetimeMs: number): Promise<{ certChainPem: string; keyPem: string; notAfter: Date }> {
    const a = this.require();
    const keys = await generateKeyPair();
    const certPem = await signLeaf(a.issuer, { commonName: dnsNames[0] ?? ips[0] ?? 'tollgate', dnsNames, ips, publicKey: keys.publicKey, lifetimeMs: this.leafLifetime(lifetimeMs) });
    return { certChainPem: certPem + a.material.chainPem, keyPem: keys.privateKeyPem, notAfter: new Date(this.signed(certPem).validTo) };
  }

  /** Notes a new leaf's expiry (see `latestLeafExpiry`). */
  private signed(certPem: string): X509Certificate {
    const leaf = new X509Certificate(certPem);
    this.latestLeafExpiry = Math.max(this.latestLeafExpiry, Date.parse(leaf.validTo));
    return leaf;
  }

  /** A leaf never outlives the certificate that signed it. */
  private leafLifetime(wanted: number): number {
    return Math.max(1000, Math.min(wanted, this.require().material.notAfter.getTime() - Date.now()));
  }

  private require(): ActiveCa {
    if (!this.active) throw new Error('the CA has no material yet');
    return this.active;
  }

  private schedulePrune(): void {
    if (this.pruneTimer) clearTimeout(this.pruneTimer);
    const next = Math.min(...this.previousRoots.map((r) => r.until));
    if (!Number.isFinite(next)) return;
    this.pruneTimer = setTimeout(() => {
      const now = Date.now();
      const before = this.previousRoots.length;
      this.previousRoots = this.previousRoots.filter((r) => r.until > now);
      if (this.previousRoots.length !== before) {
        this.log('CA: the previous root is no longer trusted');
        this.emit();
      }
      this.schedulePrune();
    }, Math.max(0, next - Date.now()) + 10);
    this.pruneTimer.unref();
  }

  private emit(): void {
    for (const l of this.listeners) l();
  }
}
