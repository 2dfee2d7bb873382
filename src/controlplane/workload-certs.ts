/**
 * The proxy's side of workload certificates: it makes its own ECDSA P-256 key, sends only a CSR
 * (`POST /v1/certificate`, same TLS trust and bearer token as the snapshot stream), and puts the
 * key with the returned chain into a `WorkloadIdentityHolder`. It renews at ~80% of the
 * certificate's life (a fresh key each time), retries failures with capped exponential backoff
 * and full jitter, and renews at once when the control plane says the CA changed. The key never
 * leaves this process.
 */
import { X509Certificate } from 'node:crypto';
import { request as tlsRequest } from 'node:https';
import type { WorkloadIdentityHolder } from '../shared/workload-identity.js';
import { CERTIFICATE_PATH, type CertificateResponse } from './protocol.js';
import { createCsr, generateKeyPair } from './ca/x509.js';
import { pemCertificates } from './ca/pem.js';

/** Renew when this share of the lifetime (from when it arrived) has passed, as Istio's agent does. */
export const RENEW_AT_FRACTION = 0.8;

export interface WorkloadCertClientOptions {
  readonly host: string;
  readonly port: number;
  /** The roots the control plane's server certificate must chain to (read at every request). */
  readonly ca: () => string | Buffer;
  readonly token: () => string;
  readonly holder: WorkloadIdentityHolder;
  readonly log?: (line: string) => void;
  readonly initialBackoffMs?: number;
  readonly maxBackoffMs?: number;
  readonly timeoutMs?: number;
}

export class WorkloadCertClient {
  private timer: NodeJS.Timeout | undefined;
  private stopped = true;
  private inFlight = false;
  private again = false;
  private failures = 0;
  private lastError: string | undefined;
  private readonly log: (line: string) => void;

  constructor(private readonly opts: WorkloadCertClientOptions) {
    this.log = opts.log ?? (() => undefined);
  }

  start(): void {
    this.stopped = false;
    this.schedule(0);
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }

  /**
   * The control plane announced its roots and signer (on connect, and when its CA changes): trust
   * the roots at once, and get a certificate from the current signer unless this one is from it.
   */
  trustChanged(rootCertsPem: string, signerSha256?: string): void {
    const cur = this.opts.holder.current();
    // No certificate yet: the first request is on its way.
    if (!cur) return;
    if (cur.rootCertsPem !== rootCertsPem) this.opts.holder.set({ ...cur, rootCertsPem });
    if (signerSha256 !== undefined && signerOf(cur.certChainPem) === signerSha256) return;
    this.renewNow();
  }

  renewNow(): void {
    if (this.stopped) return;
    if (this.inFlight) this.again = true;
    else this.schedule(0);
  }

  private schedule(ms: number): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.renew(), ms);
    this.timer.unref();
  }

  private async renew(): Promise<void> {
    if (this.stopped) return;
    this.inFlight = true;
    let next: number;
    try {
      const keys = await generateKeyPair();
      const csr = await createCsr(keys, undefined);
      const issued = await this.post(csr);
      const receivedAt = Date.now();
      const notAfter = new Date(issued.notAfter);
      if (this.stopped) return;
      this.opts.holder.set({ keyPem: keys.privateKeyPem, certChainPem: issued.certChainPem, rootCertsPem: issued.rootCertsPem, spiffeId: issued.spiffeId, notAfter });
      this.failures = 0;
      this.lastError = undefined;
      next = Math.max(1000, (notAfter.getTime() - receivedAt) * RENEW_AT_FRACTION);
      this.log(`workload certificate ${issued.spiffeId} valid until ${notAfter.toISOString()}; renewing in ${Math.round(next / 1000)} s`);
    } catch (err) {
      this.failures++;
      const ceiling = Math.min(this.opts.maxBackoffMs ?? 30_000, (this.opts.initialBackoffMs ?? 1000) * 2 ** Math.min(this.failures - 1, 16));
      next = Math.floor(Math.random() * ceiling) + 100;
      // Past expiry the proxy has no usable identity; keep trying, but say so.
      const cur = this.opts.holder.current();
      const expired = cur !== undefined && cur.notAfter.getTime() <= Date.now();
      const message = err instanceof Error ? err.message : String(err);
      // The same failure again (e.g. a control plane without a CA) is said once.
      if (message !== this.lastError || expired) this.log(`workload certificate request failed (${message}); retrying with backoff${expired ? '; the current certificate has EXPIRED' : ''}`);
      this.lastError = message;
    } finally {
      this.inFlight = false;
    }
    if (this.stopped) return;
    if (this.again) {
      this.again = false;
      next = 0;
    }
    this.schedule(next);
  }

  private post(csr: string): Promise<CertificateResponse> {
    const body = JSON.stringify({ csr });
    return new Promise((resolve, reject) => {
      const req = tlsRequest(
        {
          host: this.opts.host,
          port: this.opts.port,
          method: 'POST',
          path: CERTIFICATE_PATH,
          ca: this.opts.ca(),
          minVersion: 'TLSv1.2',
          headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), authorization: `Bearer ${this.opts.token()}` },
        },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (d: string) => (text += d));
          res.on('end', () => {
            if (res.statusCode !== 200) return reject(new Error(`HTTP ${res.statusCode}: ${errorOf(text)}`));
            try {
              resolve(JSON.parse(text) as CertificateResponse);
            } catch {
              reject(new Error('the answer is not JSON'));
            }
          });
          res.on('error', reject);
        },
      );
      const timeoutMs = this.opts.timeoutMs ?? 10_000;
      req.setTimeout(timeoutMs, () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
      req.on('error', reject);
      req.end(body);
    });
  }
}

/** The fingerprint of the certificate that signed the chain's leaf (the chain's second one). */
function signerOf(certChainPem: string): string | undefined {
  const pem = pemCertificates(certChainPem)[1];
  try {
    return pem === undefined ? undefined : new X509Certificate(pem).fingerprint256;
  } catch {
    return undefined;
  }
}

function errorOf(text: string): string {
  try {
    const e = (JSON.parse(text) as { error?: unknown }).error;
    if (typeof e === 'string') return e;
  } catch {
    // not JSON: show the start of it
  }
  return text.slice(0, 200);
}
