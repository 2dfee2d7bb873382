/**
 * The control-plane wire protocol: newline-delimited JSON over one full-duplex HTTP/1.1 request
 * (`POST /v1/stream`). It is Envoy's ADS reduced to one resource type — the whole snapshot — with
 * the same acknowledgement rules (version_info + nonce; a NACK carries error_detail), so a real
 * xDS endpoint can be added beside it later. See docs/control-plane.md.
 */
import type { ProxyIdentity, Snapshot } from '../snapshot/types.js';
import type { IssuedCertificate } from './ca/authority.js';

/** Proxy -> control plane. */
export type ProxyMessage =
  | { readonly type: 'hello'; readonly node: ProxyIdentity; readonly appliedVersion?: string }
  /** `warnings`: applied, but something it needs is missing here (e.g. a source address not assigned on the host). */
  | { readonly type: 'ack'; readonly version: string; readonly nonce: string; readonly warnings?: readonly string[] }
  | { readonly type: 'nack'; readonly version: string; readonly nonce: string; readonly error: string }
  | { readonly type: 'pong' };

/** Control plane -> proxy. */
export type ControlMessage =
  | { readonly type: 'snapshot'; readonly version: string; readonly nonce: string; readonly snapshot: Snapshot }
  | { readonly type: 'ping' }
  /**
   * The CA's roots and signer, sent when a proxy connects and when the CA changes: trust these
   * roots now, and ask for a new certificate unless the current one was signed by `signerSha256`
   * (the SHA-256 fingerprint of the signing certificate, as Node formats it).
   */
  | { readonly type: 'trust'; readonly rootCertsPem: string; readonly signerSha256?: string }
  | { readonly type: 'error'; readonly error: string };

export const STREAM_PATH = '/v1/stream';

/**
 * Workload certificates: `POST /v1/certificate` with the stream's bearer token and
 * `{"csr": "<PEM PKCS#10>"}`; 200 with a `CertificateResponse`, 403 when the request names an
 * identity other than the credential's, 400 when it is malformed, 404 when the control plane runs no CA.
 */
export const CERTIFICATE_PATH = '/v1/certificate';
export interface CertificateRequestBody {
  readonly csr: string;
}
export type CertificateResponse = IssuedCertificate;
/** A snapshot of 10k ServiceEntries is ~20 MB of JSON; leave room, but bound it. */
export const MAX_MESSAGE_BYTES = 256 * 1024 * 1024;

export function encode(msg: ProxyMessage | ControlMessage): string {
  return JSON.stringify(msg) + '\n';
}

/**
 * Splits a byte stream into JSON lines. Keeps partial lines as a list of chunks (no Buffer.concat
 * per chunk), joins once per complete line, and fails when a line exceeds the limit.
 */
export class LineDecoder {
  private parts: Buffer[] = [];
  private size = 0;

  constructor(private readonly onLine: (line: string) => void, private readonly maxBytes = MAX_MESSAGE_BYTES) {}

  push(chunk: Buffer): void {
    let start = 0;
    for (let nl = chunk.indexOf(10, start); nl >= 0; nl = chunk.indexOf(10, start)) {
      const piece = chunk.subarray(start, nl);
      const line = this.parts.length === 0 ? piece.toString('utf8') : Buffer.concat([...this.parts, piece]).toString('utf8');
      this.parts = [];
      this.size = 0;
      start = nl + 1;
      if (line.trim() !== '') this.onLine(line);
    }
    if (start < chunk.length) {
      this.size += chunk.length - start;
      if (this.size > this.maxBytes) throw new Error(`message larger than ${this.maxBytes} bytes`);
      this.parts.push(chunk.subarray(start));
    }
  }
}

export function identityKey(node: ProxyIdentity): string {
  const labels = Object.entries(node.labels).sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, v]) => `${k}=${v}`).join(',');
  return `${node.role}/${node.namespace}/${node.name || labels}${node.nodeName ? `@${node.nodeName}` : ''}`;
}
