/**
 * Downstream TLS (Gateway servers with tls.mode SIMPLE/MUTUAL/OPTIONAL_MUTUAL): every terminating
 * filter chain's SecureContext and client-certificate policy, built when the snapshot is applied —
 * certificate files read, credentialName Secrets taken from the snapshot's secrets. A chain whose
 * key material cannot be loaded, or whose client-certificate check could not be enforced (MUTUAL
 * without a CA), rejects the snapshot with the reason (at start-up the process exits; under --watch
 * or the control plane the previous snapshot keeps serving), instead of a listener that reports
 * ready and then drops every handshake or accepts clients it was told to refuse.
 *
 * Rotation: a changed Secret is a new snapshot, hence new contexts; connections accepted after the
 * swap handshake with the new certificate, established ones keep theirs.
 */
import { readFileSync } from 'node:fs';
import type { Server } from 'node:tls';
import { handshakeServer } from '../tls/server-handshake.js';
import type { DownstreamTls, FilterChain, SnapshotSecret } from '../../snapshot/types.js';
import { SnapshotPart, type CompiledSnapshot } from '../route/compile.js';

/** How a terminating chain treats client certificates (Gateway tls.mode). */
export type ClientCertificatePolicy = 'none' | 'required' | 'optional';

export interface DownstreamTlsContext {
  /** The never-listening tls.Server the chain's connections handshake through (tls/server-handshake.ts). */
  readonly server: Server;
  /** required (MUTUAL): no valid certificate, no handshake; optional (OPTIONAL_MUTUAL): one that is sent must verify. */
  readonly clientCertificate: ClientCertificatePolicy;
  /** Gateway tls.subjectAltNames: the client certificate must carry one of these URI/DNS/IP SANs. */
  readonly subjectAltNames?: readonly string[];
}

export const DOWNSTREAM_TLS = new SnapshotPart<ReadonlyMap<FilterChain, DownstreamTlsContext>>('downstream TLS contexts');

function read(path: string, what: string): Buffer {
  try {
    return readFileSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new Error(`cannot read ${what} ${path}${code !== undefined ? ` (${code})` : ''}`);
  }
}

const DEFAULT_TLS13_SUITES = 'TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256';

/** The Gateway server's protocol versions and cipher suites (snapshot/generate/tls-settings.ts). */
function settingsOf(t: DownstreamTls): { minVersion: NonNullable<DownstreamTls['minVersion']>; maxVersion: NonNullable<DownstreamTls['maxVersion']>; ciphers?: string } {
  if (t.unsupported !== undefined) throw new Error(`TLS settings cannot be enforced: ${t.unsupported}`);
  return {
    minVersion: t.minVersion ?? 'TLSv1.2',
    maxVersion: t.maxVersion ?? 'TLSv1.3',
    // TLS 1.3 suites stay OpenSSL's defaults: Gateway cipherSuites restrict TLS <= 1.2 only.
    ...(t.ciphers !== undefined ? { ciphers: `${t.ciphers}:${DEFAULT_TLS13_SUITES}` } : {}),
  };
}

/** PEM text of the chain's certificate, key and CA: credentialName Secret first, else the files. */
function materialOf(t: DownstreamTls, secrets: ReadonlyMap<string, SnapshotSecret>): { cert: string | Buffer; key: string | Buffer; ca?: string | Buffer } {
  if (t.credentialName !== undefined && (t.serverCertificate === undefined || t.privateKey === undefined)) {
    const s = secrets.get(t.credentialName);
    if (s === undefined) throw new Error(`credentialName ${t.credentialName}: no such Secret in the config`);
    if (s.certificateChain === undefined || s.privateKey === undefined) throw new Error(`credentialName ${t.credentialName}: the Secret needs tls.crt and tls.key (or cert and key)`);
    const ca = s.caCertificates ?? (t.caCertificates !== undefined ? read(t.caCertificates, 'caCertificates') : undefined);
    return { cert: s.certificateChain, key: s.privateKey, ...(ca !== undefined ? { ca } : {}) };
  }
  if (t.serverCertificate === undefined || t.privateKey === undefined) throw new Error('tls needs serverCertificate and privateKey (or credentialName)');
  return {
    cert: read(t.serverCertificate, 'serverCertificate'),
    key: read(t.privateKey, 'privateKey'),
    ...(t.caCertificates !== undefined ? { ca: read(t.caCertificates, 'caCertificates') } : {}),
  };
}

function contextOf(t: DownstreamTls, secrets: ReadonlyMap<string, SnapshotSecret>): DownstreamTlsContext {
  const settings = settingsOf(t);
  const m = materialOf(t, secrets);
  const clientCertificate: ClientCertificatePolicy = t.mode === 'MUTUAL' ? 'required' : t.mode === 'OPTIONAL_MUTUAL' ? 'optional' : 'none';
  if (clientCertificate !== 'none' && m.ca === undefined) {
    const where = t.credentialName !== undefined ? `ca.crt (or cacert) in Secret ${t.credentialName}, or a Secret ${t.credentialName}-cacert` : 'caCertificates';
    throw new Error(`tls.mode ${t.mode} verifies client certificates against a CA, and none is configured: set ${where}`);
  }
  // Without requestCert the CA would only be sent as a hint: it is used only when clients are verified.
  // ALPN h2 then http/1.1: the HTTP connection manager hands an h2 connection to the HTTP/2 codec.
  const server = handshakeServer({ cert: m.cert, key: m.key, ...(clientCertificate !== 'none' && m.ca !== undefined ? { ca: m.ca } : {}), ...settings, requestCert: clientCertificate !== 'none', ALPNProtocols: ['h2', 'http/1.1'] });
  return { server, clientCertificate, ...(t.subjectAltNames !== undefined && t.subjectAltNames.length > 0 ? { subjectAltNames: t.subjectAltNames } : {}) };
}

/** Builds every downstream TLS context of a snapshot; throws the first failure, naming the chain and its config. */
export function compileDownstreamTls(snap: CompiledSnapshot): Map<FilterChain, DownstreamTlsContext> {
  const secrets = new Map((snap.snapshot.secrets ?? []).map((s) => [s.name, s]));
  const out = new Map<FilterChain, DownstreamTlsContext>();
  for (const cl of snap.listeners.values()) {
    const l = cl.listener;
    for (const chain of [...l.filterChains, ...(l.defaultFilterChain ? [l.defaultFilterChain] : [])]) {
      if (chain.tls === undefined) continue;
      try {
        out.set(chain, contextOf(chain.tls, secrets));
      } catch (e) {
        const o = chain.origin ?? l.origin;
        const where = o !== undefined ? ` (${o.kind} ${o.namespace}/${o.name}, ${o.file}:${o.line})` : '';
        const why = e instanceof Error ? e.message.replace(/^error:[^:]*:/, '') : String(e);
        throw new Error(`listener ${l.name}, filter chain ${chain.name}${where}: TLS certificate unavailable: ${why}`);
      }
    }
  }
  return out;
}
