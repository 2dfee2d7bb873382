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
 *  ISTIO_MUTUAL    the proxy's workload certificate, current when the connection is opened: a
 *                  rotated certificate serves new connections, open ones keep theirs.
 * Every context of a snapshot is built when it is applied (`prepare`): key material that cannot be
 * loaded rejects the snapshot. Later failures (a file rotated into something unreadable) are
 * returned as Errors (the caller answers 503 UF `upstream_tls_credential_unavailable`).
 */
import { readFileSync, statSync } from 'node:fs';
import type { SecureContext } from 'node:tls';
import { nodeTls } from '../../shared/lazy-builtins.js';
import type { Snapshot, SnapshotSecret, UpstreamTls } from '../../snapshot/types.js';
import type { WorkloadCertificate, WorkloadIdentitySource } from '../../shared/workload-identity.js';
import { meshContextOf } from '../mesh/contexts.js';

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
  /** Contexts of the snapshot being served (and of the one being applied, between prepare and update). */
  private cache = new Map<UpstreamTls, Entry>();
  private prepared = new Map<UpstreamTls, Entry>();

  constructor(
    private readonly now: () => number = Date.now,
    private readonly identity?: WorkloadIdentitySource,
  ) {}

  /** The workload certificate ISTIO_MUTUAL clusters use now; undefined until the proxy has one. */
  meshCertificate(): WorkloadCertificate | undefined {
    return this.identity?.current();
  }

  /**
   * Builds the context of every cluster with TLS in a snapshot about to be applied; throws the
   * first failure, naming the cluster and where it came from (the snapshot is then rejected).
   */
  prepare(snapshot: Snapshot): void {
    const secrets = new Map((snapshot.secrets ?? []).map((s) => [s.name, s]));
    const out = new Map<UpstreamTls, Entry>();
    const now = this.now();
    for (const c of snapshot.clusters) {
      const t = c.tls;
      // Mesh mTLS uses the workload certificate current at connect time (rotation, first issue).
      if (t === undefined || t.mode === 'ISTIO_MUTUAL' || out.has(t)) continue;
      const secret = t.credentialName !== undefined ? secrets.get(t.credentialName) : undefined;
      const files = t.credentialName === undefined ? filesOf(t) : [];
      const ctx = build(t, secret);
      if (ctx instanceof Error) {
        const o = c.origin;
        throw new Error(`cluster ${c.name}${o !== undefined ? ` (${o.kind} ${o.namespace}/${o.name}, ${o.file}:${o.line})` : ''}: upstream TLS unavailable: ${ctx.message}`);
      }
      out.set(t, { ctx, secret, fileStamp: files.length > 0 ? fileStamp(files) : '', checkedAt: now });
    }
    this.prepared = out;
  }

  /** The snapshot just applied: its secrets, and the contexts prepare() built for it. */
  update(secrets: readonly SnapshotSecret[] | undefined): void {
    this.secrets = new Map((secrets ?? []).map((s) => [s.name, s]));
    this.cache = this.prepared;
    this.prepared = new Map();
  }

  /** Whether a Secret with this name is known (trace, tests). */
  has(name: string): boolean {
    return this.secrets.has(name);
  }

  contextFor(t: UpstreamTls): SecureContext | Error {
    if (t.mode === 'ISTIO_MUTUAL') {
      const cert = this.identity?.current();
      return cert === undefined ? new Error('ISTIO_MUTUAL: this proxy has no workload certificate yet') : meshContextOf(cert);
    }
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
      return nodeTls().createSecureContext({
        ...(secret.caCertificates !== undefined ? { ca: secret.caCertificates } : {}),
        ...(t.mode === 'MUTUAL' ? { cert: secret.certificateChain!, key: secret.privateKey! } : {}),
      });
    }
    if (t.mode === 'MUTUAL' && (t.clientCertificate === undefined || t.privateKey === undefined)) {
      throw new Error('MUTUAL needs clientCertificate and privateKey (or credentialName)');
    }
    return nodeTls().createSecureContext({
      ...(t.caCertificates !== undefined ? { ca: readFileSync(t.caCertificates) } : {}),
      ...(t.mode === 'MUTUAL' ? { cert: readFileSync(t.clientCertificate!), key: readFileSync(t.privateKey!) } : {}),
    });
  } catch (e) {
    return e instanceof Error ? e : new Error(String(e));
  }
}
