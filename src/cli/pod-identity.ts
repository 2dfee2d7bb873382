/**
 * A sidecar's identity from the environment a Kubernetes pod gives its containers, as Istio's
 * injected proxy reads it: POD_NAME, POD_NAMESPACE, INSTANCE_IP, SERVICE_ACCOUNT (downward API
 * env) and the pod's labels from a downward-API volume file (`key="value"` lines, Istio mounts it
 * at /etc/istio/pod/labels). Flags win over the environment.
 */
import { existsSync, readFileSync } from 'node:fs';
import type { IdentityFlags } from './snapshot-loader.js';

export const DEFAULT_LABELS_FILE = '/etc/istio/pod/labels';

export interface PodIdentity extends IdentityFlags {
  readonly instanceIp?: string;
  readonly serviceAccount?: string;
}

/** Parses a downward-API labels file: `app="reviews"` per line, values with Go string escapes. */
export function parseDownwardLabels(text: string): string {
  const out: string[] = [];
  for (const line of text.split('\n')) {
    const m = /^([^=\s]+)="((?:[^"\\]|\\.)*)"\s*$/.exec(line.trim());
    if (m) out.push(`${m[1]}=${(m[2] ?? '').replace(/\\(.)/g, '$1')}`);
  }
  return out.join(',');
}

export function podIdentity(flags: IdentityFlags, env: NodeJS.ProcessEnv, labelsFile: string | undefined): PodIdentity {
  if (flags.role !== 'sidecar') return flags;
  const file = labelsFile ?? (existsSync(DEFAULT_LABELS_FILE) ? DEFAULT_LABELS_FILE : undefined);
  const labels = flags.labels ?? (file !== undefined ? parseDownwardLabels(readFileSync(file, 'utf8')) : undefined);
  const namespace = flags.namespace ?? env['POD_NAMESPACE'];
  const name = flags.name ?? env['POD_NAME'];
  return {
    ...flags,
    ...(namespace ? { namespace } : {}),
    ...(name ? { name } : {}),
    ...(labels !== undefined ? { labels } : {}),
    ...(env['INSTANCE_IP'] ? { instanceIp: env['INSTANCE_IP'] } : {}),
    ...(env['SERVICE_ACCOUNT'] ? { serviceAccount: env['SERVICE_ACCOUNT'] } : {}),
  };
}
