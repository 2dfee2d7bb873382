/**
 * Secrets in a snapshot (Tollgate's SDS): the Kubernetes Secrets that clusters (DestinationRule
 * tls.credentialName) and listeners (Gateway tls.credentialName) name are resolved here, at
 * snapshot time, into PEM text in `snapshot.secrets`. The data plane reads them from the snapshot
 * it runs (so a new snapshot with rotated material is used by the next connection); every view of
 * a snapshot prints `redactSnapshot(s)` instead (config_dump, proxy-config, config-dump), which
 * keeps the names and a fingerprint of each value, never the value.
 *
 * Secret keys read (Istio's credentialName conventions): tls.crt / tls.key / ca.crt, or the generic
 * cert / key / cacert; `data` (base64) or `stringData` (text; wins on conflicts, as in Kubernetes).
 */
import { nodeCrypto } from '../shared/lazy-builtins.js';
import type { Resource } from '../config/decode.js';
import { originOf } from './generate/origin.js';
import type { Snapshot, SnapshotSecret } from './types.js';

export function secretValue(r: Resource, keys: readonly string[]): string | undefined {
  const body = r.body;
  const stringData = body['stringData'] as Readonly<Record<string, unknown>> | undefined;
  const data = body['data'] as Readonly<Record<string, unknown>> | undefined;
  for (const k of keys) {
    const s = stringData?.[k];
    if (typeof s === 'string' && s !== '') return s;
    const d = data?.[k];
    if (typeof d === 'string' && d !== '') return Buffer.from(d, 'base64').toString('utf8');
  }
  return undefined;
}

/** The secrets `names` ("namespace/name") point at that exist in `secrets`, sorted by name. */
export function resolveSecrets(secrets: readonly Resource[], names: Iterable<string>): SnapshotSecret[] {
  const byName = new Map(secrets.map((s) => [`${s.namespace}/${s.name}`, s]));
  const out: SnapshotSecret[] = [];
  for (const name of [...new Set(names)].sort()) {
    const r = byName.get(name);
    if (!r) continue; // analyze reports TG_DR_SECRET_NOT_FOUND; the data plane fails the handshake (UF)
    const certificateChain = secretValue(r, ['tls.crt', 'cert']);
    const privateKey = secretValue(r, ['tls.key', 'key']);
    // Istio also reads the CA from a companion Secret `<name>-cacert` when the Secret has none.
    const caSecret = byName.get(`${name}-cacert`);
    const caCertificates = secretValue(r, ['ca.crt', 'cacert']) ?? (caSecret ? secretValue(caSecret, ['cacert', 'ca.crt']) : undefined);
    out.push({
      name,
      ...(certificateChain !== undefined ? { certificateChain } : {}),
      ...(privateKey !== undefined ? { privateKey } : {}),
      ...(caCertificates !== undefined ? { caCertificates } : {}),
      origin: originOf(r),
    });
  }
  return out;
}

function fingerprint(v: string): string {
  return `[redacted sha256:${nodeCrypto().createHash('sha256').update(v).digest('hex').slice(0, 12)} ${Buffer.byteLength(v)} bytes]`;
}

/** The snapshot as views show it: secret values replaced by a fingerprint (rotation stays visible). */
export function redactSnapshot<S extends Pick<Snapshot, 'secrets'>>(s: S): S {
  if (!s.secrets || s.secrets.length === 0) return s;
  return {
    ...s,
    secrets: s.secrets.map((x) => ({
      name: x.name,
      ...(x.certificateChain !== undefined ? { certificateChain: fingerprint(x.certificateChain) } : {}),
      ...(x.privateKey !== undefined ? { privateKey: fingerprint(x.privateKey) } : {}),
      ...(x.caCertificates !== undefined ? { caCertificates: fingerprint(x.caCertificates) } : {}),
      ...(x.origin ? { origin: x.origin } : {}),
    })),
  };
}
