/**
 * API-server objects -> the RawDocuments the config pipeline decodes. An object read from the API
 * server has no file and no line: its "file" is `k8s:<resource>[/<namespace>]/<name>` (resource
 * spelled as kubectl does, e.g. `k8s:virtualservices.networking.istio.io/edge/vs-a`), its line is 1.
 * Server-managed fields are dropped first so decoding sees what a user wrote.
 */
import type { RawDocument } from '../../config/load.js';
import { apiVersionOf, resourceName, type WatchedKind } from './kinds.js';

/** Metadata fields that are configuration; everything else in metadata is written by the server. */
const KEPT_METADATA = ['name', 'namespace', 'labels', 'annotations', 'generateName'] as const;
/** Annotations that repeat the object (kubectl apply) or carry controller state. */
const DROPPED_ANNOTATIONS = new Set(['kubectl.kubernetes.io/last-applied-configuration']);

type Obj = Record<string, unknown>;

function isRecord(v: unknown): v is Obj {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

export function documentName(k: WatchedKind, namespace: string | undefined, name: string): string {
  return `k8s:${resourceName(k)}/${k.namespaced && namespace ? `${namespace}/` : ''}${name}`;
}

/**
 * Returns the object as a user would have written it: apiVersion/kind set from the watched kind
 * (LIST items of built-in kinds carry neither), metadata reduced to name/namespace/labels/annotations,
 * status reduced to what the model reads (kinds.ts).
 */
export function cleanObject(k: WatchedKind, version: string, obj: Obj): Obj {
  const out: Obj = { apiVersion: apiVersionOf(k, version), kind: k.kind };
  const meta = isRecord(obj['metadata']) ? obj['metadata'] : {};
  const metadata: Obj = {};
  for (const key of KEPT_METADATA) {
    const v = meta[key];
    if (v === undefined || v === null) continue;
    if (key === 'annotations' && isRecord(v)) {
      const kept = Object.fromEntries(Object.entries(v).filter(([a]) => !DROPPED_ANNOTATIONS.has(a)));
      if (Object.keys(kept).length > 0) metadata[key] = kept;
      continue;
    }
    metadata[key] = v;
  }
  if (!k.namespaced) delete metadata['namespace'];
  out['metadata'] = metadata;
  for (const [key, v] of Object.entries(obj)) {
    if (key === 'apiVersion' || key === 'kind' || key === 'metadata') continue;
    if (key === 'status') {
      if (k.status === 'drop') continue;
      if (k.status !== 'keep') {
        if (!isRecord(v)) continue;
        const kept = Object.fromEntries((k.status as readonly string[]).filter((f) => v[f] !== undefined).map((f) => [f, v[f]]));
        if (Object.keys(kept).length > 0) out[key] = kept;
        continue;
      }
    }
    out[key] = v;
  }
  return out;
}

export function toDocument(k: WatchedKind, version: string, obj: Obj): RawDocument {
  const value = cleanObject(k, version, obj);
  const meta = value['metadata'] as Obj;
  return {
    value,
    file: documentName(k, typeof meta['namespace'] === 'string' ? meta['namespace'] : undefined, String(meta['name'] ?? '')),
    line: 1,
    lineOf: () => 1,
    blockStartLine: () => undefined,
  };
}
