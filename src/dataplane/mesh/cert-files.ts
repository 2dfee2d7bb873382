/**
 * A workload identity from files, in the layout Istio mounts for file-based certificates
 * (`key.pem`, `cert-chain.pem`, `root-cert.pem` in one directory): read at start and again when
 * the directory changes (a Kubernetes Secret or ConfigMap volume swaps a symlink, which a directory
 * watch sees). A change that cannot be loaded — a half-written file, a key that does not match —
 * is logged and the previous certificate stays in use.
 */
import { watch, readFileSync, type FSWatcher } from 'node:fs';
import { join } from 'node:path';
import type { X509Certificate } from 'node:crypto';
import { nodeCrypto } from '../../shared/lazy-builtins.js';
import type { WorkloadCertificate, WorkloadIdentityHolder } from '../../shared/workload-identity.js';
import { spiffeIdsOf } from '../tls/subject-alt-names.js';

export const WORKLOAD_CERT_FILES = { key: 'key.pem', chain: 'cert-chain.pem', roots: 'root-cert.pem' } as const;

/** Reads and checks one certificate set; throws with the file and the reason. */
export function readWorkloadCertDir(dir: string): WorkloadCertificate {
  const read = (name: string): string => {
    try {
      return readFileSync(join(dir, name), 'utf8');
    } catch (e) {
      throw new Error(`${join(dir, name)}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
    }
  };
  const keyPem = read(WORKLOAD_CERT_FILES.key);
  const certChainPem = read(WORKLOAD_CERT_FILES.chain);
  const rootCertsPem = read(WORKLOAD_CERT_FILES.roots);
  let leaf: X509Certificate;
  try {
    leaf = new (nodeCrypto().X509Certificate)(certChainPem);
  } catch (e) {
    throw new Error(`${join(dir, WORKLOAD_CERT_FILES.chain)}: not a PEM certificate (${e instanceof Error ? e.message : String(e)})`);
  }
  try {
    if (!leaf.checkPrivateKey(nodeCrypto().createPrivateKey(keyPem))) throw new Error('the key does not match the certificate');
  } catch (e) {
    throw new Error(`${join(dir, WORKLOAD_CERT_FILES.key)}: ${e instanceof Error ? e.message : String(e)}`);
  }
  const spiffeId = spiffeIdsOf(leaf.subjectAltName)[0];
  if (spiffeId === undefined) throw new Error(`${join(dir, WORKLOAD_CERT_FILES.chain)}: the leaf certificate has no spiffe:// URI SAN`);
  return { keyPem, certChainPem, rootCertsPem, spiffeId, notAfter: new Date(leaf.validTo) };
}

export interface CertDirWatch {
  close(): void;
}

/** Loads `dir` into `holder` now (throws when it cannot) and on every later change. */
export function watchWorkloadCertDir(dir: string, holder: WorkloadIdentityHolder, log: (msg: string, fields: Record<string, unknown>) => void): CertDirWatch {
  holder.set(readWorkloadCertDir(dir));
  let timer: NodeJS.Timeout | undefined;
  const reload = (): void => {
    timer = undefined;
    try {
      const next = readWorkloadCertDir(dir);
      const cur = holder.current();
      if (cur !== undefined && cur.keyPem === next.keyPem && cur.certChainPem === next.certChainPem && cur.rootCertsPem === next.rootCertsPem) return;
      holder.set(next);
      log('workload certificate reloaded', { dir, spiffeId: next.spiffeId, notAfter: next.notAfter.toISOString() });
    } catch (e) {
      log('workload certificate change not applied; the previous one stays in use', { dir, error: e instanceof Error ? e.message : String(e) });
    }
  };
  let watcher: FSWatcher | undefined;
  try {
    watcher = watch(dir, () => {
      // Writers replace the three files one by one: wait for them to settle.
      if (timer === undefined) timer = setTimeout(reload, 200);
    });
    watcher.on('error', () => undefined);
  } catch {
    watcher = undefined;
  }
  return {
    close() {
      watcher?.close();
      if (timer !== undefined) clearTimeout(timer);
    },
  };
}
