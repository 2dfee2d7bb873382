/**
 * Istio's mesh config, the parts Tollgate acts on, read where Istio keeps it: the ConfigMap `istio`
 * in `istio-system`, key `mesh` (a YAML document of MeshConfig). Fields Tollgate does not use are
 * left alone; a bad value of one it uses is an error naming the ConfigMap's line.
 *
 *   pathNormalization.normalization  NONE | BASE | MERGE_SLASHES | DECODE_AND_MERGE_SLASHES
 *                                    (DEFAULT = BASE, as in Istio)
 *   defaultConfig.gatewayTopology.forwardClientCertDetails
 *                                    what gateways do with x-forwarded-client-cert: SANITIZE |
 *                                    FORWARD_ONLY | APPEND_FORWARD | SANITIZE_SET | ALWAYS_FORWARD_ONLY
 *                                    (unset: SANITIZE_SET, as in Istio)
 */
import { parse as parseYaml } from 'yaml';
import type { Diagnostic } from '../config/diagnostics.js';
import type { Resource } from '../config/decode.js';

export type PathNormalizationLevel = 'NONE' | 'BASE' | 'MERGE_SLASHES' | 'DECODE_AND_MERGE_SLASHES';
const LEVELS: readonly string[] = ['NONE', 'BASE', 'MERGE_SLASHES', 'DECODE_AND_MERGE_SLASHES'];

export const MESH_CONFIGMAP = { namespace: 'istio-system', name: 'istio', key: 'mesh' } as const;

export type ForwardClientCertDetails = 'SANITIZE' | 'FORWARD_ONLY' | 'APPEND_FORWARD' | 'SANITIZE_SET' | 'ALWAYS_FORWARD_ONLY';
const XFCC_MODES: readonly string[] = ['SANITIZE', 'FORWARD_ONLY', 'APPEND_FORWARD', 'SANITIZE_SET', 'ALWAYS_FORWARD_ONLY'];

export interface MeshSettings {
  /** Absent when the mesh config does not set it. */
  readonly pathNormalization?: PathNormalizationLevel;
  /** Gateways' x-forwarded-client-cert handling; absent when the mesh config does not set it. */
  readonly gatewayForwardClientCertDetails?: ForwardClientCertDetails;
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
  const topology = isRecord(mesh) && isRecord(mesh['defaultConfig']) ? mesh['defaultConfig']['gatewayTopology'] : undefined;
  const xfcc = isRecord(topology) ? topology['forwardClientCertDetails'] : undefined;
  let gateway: { gatewayForwardClientCertDetails?: ForwardClientCertDetails } = {};
  if (xfcc !== undefined && xfcc !== null) {
    if (typeof xfcc === 'string' && XFCC_MODES.includes(xfcc)) gateway = { gatewayForwardClientCertDetails: xfcc as ForwardClientCertDetails };
    else diagnostics.push({ severity: 'error', code: 'TG_MESH_CONFIG_INVALID', message: `ConfigMap istio: defaultConfig.gatewayTopology.forwardClientCertDetails ${JSON.stringify(xfcc)} is not one of ${XFCC_MODES.join(', ')}`, resource: cm.ref, pos, hint: 'leave it unset for SANITIZE_SET: the gateway sets the header from the client certificate it verified, and drops what clients sent' });
  }
  const pn = isRecord(mesh) ? mesh['pathNormalization'] : undefined;
  if (pn === undefined || pn === null) return { ...gateway, ...(gateway.gatewayForwardClientCertDetails !== undefined ? { source: pos } : {}) };
  const raw = isRecord(pn) ? pn['normalization'] : undefined;
  const level = raw === 'DEFAULT' ? 'BASE' : raw;
  if (typeof level !== 'string' || !LEVELS.includes(level)) {
    diagnostics.push({ severity: 'error', code: 'TG_MESH_CONFIG_INVALID', message: `ConfigMap istio: pathNormalization.normalization ${JSON.stringify(raw)} is not one of ${LEVELS.join(', ')}`, resource: cm.ref, pos, hint: 'use MERGE_SLASHES (Tollgate\'s default) unless an upstream needs the raw path' });
    return gateway;
  }
  return { pathNormalization: level as PathNormalizationLevel, ...gateway, source: pos };
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
