/**
 * Istio's mesh config, the parts Tollgate acts on, read where Istio keeps it: the ConfigMap `istio`
 * in `istio-system`, key `mesh` (a YAML document of MeshConfig). Fields Tollgate does not use are
 * left alone; a bad value of one it uses is an error naming the ConfigMap's line.
 *
 *   pathNormalization.normalization  NONE | BASE | MERGE_SLASHES | DECODE_AND_MERGE_SLASHES
 *                                    (DEFAULT = BASE, as in Istio)
 */
import { parse as parseYaml } from 'yaml';
import type { Diagnostic } from '../config/diagnostics.js';
import type { Resource } from '../config/decode.js';

export type PathNormalizationLevel = 'NONE' | 'BASE' | 'MERGE_SLASHES' | 'DECODE_AND_MERGE_SLASHES';
const LEVELS: readonly string[] = ['NONE', 'BASE', 'MERGE_SLASHES', 'DECODE_AND_MERGE_SLASHES'];

export const MESH_CONFIGMAP = { namespace: 'istio-system', name: 'istio', key: 'mesh' } as const;

export interface MeshSettings {
  /** Absent when the mesh config does not set it. */
  readonly pathNormalization?: PathNormalizationLevel;
  /** Where it was set, for analyze and trace. */
  readonly source?: { readonly file: string; readonly line: number };
}

export function meshSettingsOf(resources: readonly Resource[], diagnostics: Diagnostic[]): MeshSettings {
  const cm = resources.find((r) => r.kind === 'ConfigMap' && r.name === MESH_CONFIGMAP.name && r.namespace === MESH_CONFIGMAP.namespace);
  if (!cm) return {};
  const data = cm.body['data'] as Record<string, unknown> | undefined;
  const text = data?.[MESH_CONFIGMAP.key];
  if (typeof text !== 'string') return {};
  const line = cm.doc.lineOf(['data', MESH_CONFIGMAP.key]);
  const pos = { file: cm.doc.file, line };
  let mesh: unknown;
  try {
    mesh = parseYaml(text);
  } catch (err) {
    diagnostics.push({ severity: 'error', code: 'TG_MESH_CONFIG_INVALID', message: `ConfigMap istio: data.mesh is not YAML: ${(err as Error).message.split('\n')[0]}`, resource: cm.ref, pos, hint: 'data.mesh holds a MeshConfig document, e.g. "pathNormalization:\\n  normalization: MERGE_SLASHES"' });
    return {};
  }
  const pn = isRecord(mesh) ? mesh['pathNormalization'] : undefined;
  if (pn === undefined || pn === null) return {};
  const raw = isRecord(pn) ? pn['normalization'] : undefined;
  const level = raw === 'DEFAULT' ? 'BASE' : raw;
  if (typeof level !== 'string' || !LEVELS.includes(level)) {
    diagnostics.push({ severity: 'error', code: 'TG_MESH_CONFIG_INVALID', message: `ConfigMap istio: pathNormalization.normalization ${JSON.stringify(raw)} is not one of ${LEVELS.join(', ')}`, resource: cm.ref, pos, hint: 'use MERGE_SLASHES (Tollgate\'s default) unless an upstream needs the raw path' });
    return {};
  }
  return { pathNormalization: level as PathNormalizationLevel, source: pos };
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
