/**
 * Upstream TLS key material -> node:tls SecureContext, with rotation and no restart.
 *
 *  credentialName  looked up in the secrets of the latest applied snapshot (`update()`, called by
 *                  ClusterManager.setSnapshot): a snapshot carrying rotated material makes the
 *                  next new upstream connection use it, even for downstream connections that
 *                  started on an older snapshot. Pooled connections keep the certificate they
 *                  authenticated with until they close.
 *  files           caCertificates / clientCertificate / privateKey paths are read once and
 *                  re-read when their mtime or size changes (stat at most once per second per
 *                  cluster, only when a new connection is opened).
 * A context is built once per (cluster TLS settings, secret version, file versions); failures are
 * returned as Errors (the caller answers 503 UF `upstream_tls_credential_unavailable`).
 */
import { readFileSync, statSync } from 'node:fs';
import { createSecureContext, type SecureContext } from 'node:tls';
import type { SnapshotSecret, UpstreamTls } from '../../snapshot/types.js';

const FILE_RECHECK_MS = 1000;

interface Entry {
  readonly ctx: SecureContext | Error;
  readonly secret: SnapshotSecret | undefined;
  readonly fileStamp: string;
  checkedAt: number;
}

function fileStamp(paths: readonly string[]): string {
  let s = '';
  for (const p of paths) {
    try {
      const st = statSync(p);
      s += `${p}:${st.mtimeMs}:${st.size};`;
    } catch {
      s += `${p}:missing;`;
    }
  }
  return s;
}

function filesOf(t: UpstreamTls): string[] {
  const out: string[] = [];
  if (t.caCertificates !== undefined) out.push(t.caCertificates);
  if (t.mode === 'MUTUAL' && t.clientCertificate !== undefined) out.push(t.clientCertificate);
  if (t.mode === 'MUTUAL' && t.privateKey !== undefined) out.push(t.privateKey);
  return out;
}

export class UpstreamTlsContexts {
  private secrets: ReadonlyMap<string, SnapshotSecret> = new Map();
  private readonly cache = new WeakMap<UpstreamTls, Entry>();

  constructor(private readonly now: () => number = Date.now) {}

  /** The secrets of the snapshot just applied. */
  update(secrets: readonly SnapshotSecret[] | undefined): void {
    this.secrets = new Map((secrets ?? []).map((s) => [s.name, s]));
  }

  /** Whether a Secret with this name is known (trace, tests). */
  has(name: string): boolean {
    return this.secrets.has(name);
  }

  contextFor(t: UpstreamTls): SecureContext | Error {
    const secret = t.credentialName !== undefined ? this.secrets.get(t.credentialName) : undefined;
    const e = this.cache.get(t);
    const now = this.now();
    if (e !== undefined && e.secret === secret) {
      if (t.credentialName !== undefined || now - e.checkedAt < FILE_RECHECK_MS) return e.ctx;
      e.checkedAt = now;
      const files = filesOf(t);
      if (files.length === 0 || fileStamp(files) === e.fileStamp) return e.ctx;
    }
    const files = t.credentialName === undefined ? filesOf(t) : [];
    const stamp = files.length > 0 ? fileStamp(files) : '';
    const ctx = build(t, secret);
    this.cache.set(t, { ctx, secret, fileStamp: stamp, checkedAt: now });
    return ctx;
  }
}

function build(t: UpstreamTls, secret: SnapshotSecret | undefined): SecureContext | Error {
  try {
    if (t.credentialName !== undefined) {
      // Istio: credentialName wins over the file fields.
      if (secret === undefined) throw new Error(`credentialName ${t.credentialName}: no such Secret in the config`);
      if (t.mode === 'MUTUAL' && (secret.certificateChain === undefined || secret.privateKey === undefined)) {
        throw new Error(`credentialName ${t.credentialName}: MUTUAL needs tls.crt and tls.key in the Secret`);
      }
      return createSecureContext({
        ...(secret.caCertificates !== undefined ? { ca: secret.caCertificates } : {}),
        ...(t.mode === 'MUTUAL' ? { cert: secret.certificateChain!, key: secret.privateKey! } : {}),
      });
    }
    if (t.mode === 'MUTUAL' && (t.clientCertificate === undefined || t.privateKey === undefined)) {
      throw new Error('MUTUAL needs clientCertificate and privateKey (or credentialName)');
    }
    return createSecureContext({
      ...(t.caCertificates !== undefined ? { ca: readFileSync(t.caCertificates) } : {}),
      ...(t.mode === 'MUTUAL' ? { cert: readFileSync(t.clientCertificate!), key: readFileSync(t.privateKey!) } : {}),
    });
  } catch (e) {
    return e instanceof Error ? e : new Error(String(e));
  }
}
