/**
 * `tollgate run` config step: files -> snapshot for this proxy's identity, plus the explicit-proxy
 * listener that `--explicit-proxy HOST:PORT` adds (with one cluster per registry host:port, so the
 * data plane's registry check reads only the snapshot).
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Diagnostic } from '../config/diagnostics.js';
import { identityFrom } from './common.js';
import { decodeResources } from '../config/decode.js';
import { loadPaths } from '../config/load.js';
import { buildModel } from '../model/build.js';
import { buildSnapshot, type SnapshotOptions } from '../snapshot/build.js';
import type { ExplicitProxySpec } from '../snapshot/generate/explicit-proxy.js';
import type { ProxyIdentity, Snapshot } from '../snapshot/types.js';

export type { ExplicitProxySpec };

export interface SnapshotLoad {
  readonly snapshot: Snapshot | undefined;
  readonly proxy: ProxyIdentity | undefined;
  readonly diagnostics: readonly Diagnostic[];
  readonly files: readonly string[];
}

/** Identity flags as given; missing labels/namespace are inferred from the config (cli/common.ts identityFrom). */
export interface IdentityFlags {
  readonly role?: string;
  readonly namespace?: string;
  readonly labels?: string;
  readonly name?: string;
  /** `--node`, else NODE_NAME from the environment (downward API spec.nodeName). */
  readonly nodeName?: string;
}

export function loadSnapshot(paths: readonly string[], identity: IdentityFlags, options: SnapshotOptions = {}, note: (s: string) => void = () => {}): SnapshotLoad {
  const loaded = loadPaths(paths);
  const decoded = decodeResources(loaded.documents);
  const diagnostics: Diagnostic[] = [...loaded.diagnostics, ...decoded.diagnostics];
  if (diagnostics.some((d) => d.severity === 'error')) return { snapshot: undefined, proxy: undefined, diagnostics, files: loaded.files };
  const model = buildModel(decoded.resources);
  diagnostics.push(...model.diagnostics);
  if (model.diagnostics.some((d) => d.severity === 'error')) return { snapshot: undefined, proxy: undefined, diagnostics, files: loaded.files };
  const proxy = identityFrom(identity, model, note);
  // A JSON round trip gives the data plane the same plain snapshot a control plane would send, and
  // lets the parsed config (whose strings the built snapshot still shares) be collected.
  const snapshot = JSON.parse(JSON.stringify(buildSnapshot(model, proxy, options))) as Snapshot;
  return { snapshot, proxy, diagnostics, files: loaded.files };
}

/** examples/default next to the package root (works from src/ via tsx and from dist/src/). */
export function defaultConfigDir(): string | undefined {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const candidate = join(dir, 'examples', 'default');
    if (existsSync(join(dir, 'package.json')) && existsSync(candidate)) return candidate;
    dir = dirname(dir);
  }
  return undefined;
}
