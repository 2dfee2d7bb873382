/**
 * `tollgate run` config step: files -> snapshot for this proxy's identity, plus the explicit-proxy
 * listener that `--explicit-proxy HOST:PORT` adds (with one cluster per registry host:port, so the
 * data plane's registry check reads only the snapshot).
 */
import type { Diagnostic } from '../config/diagnostics.js';
import { identityFrom } from './common.js';
import { decodeResources } from '../config/decode.js';
import { loadPaths } from '../config/load.js';
import { buildModel } from '../model/build.js';
import { buildSnapshot, type SnapshotOptions } from '../snapshot/build.js';
import type { ExplicitProxySpec } from '../snapshot/generate/explicit-proxy.js';
import type { ProxyIdentity, Snapshot } from '../snapshot/types.js';
import type { IdentityFlags } from './snapshot-loader.js';

export type { ExplicitProxySpec, IdentityFlags };

export interface SnapshotLoad {
  readonly snapshot: Snapshot | undefined;
  readonly proxy: ProxyIdentity | undefined;
  readonly diagnostics: readonly Diagnostic[];
  readonly files: readonly string[];
  /** Objects decoded from the files. */
  readonly resources: number;
}

export function loadSnapshot(paths: readonly string[], identity: IdentityFlags, options: SnapshotOptions = {}, note: (s: string) => void = () => {}): SnapshotLoad {
  const loaded = loadPaths(paths);
  const decoded = decodeResources(loaded.documents);
  const diagnostics: Diagnostic[] = [...loaded.diagnostics, ...decoded.diagnostics];
  if (diagnostics.some((d) => d.severity === 'error')) return { snapshot: undefined, proxy: undefined, diagnostics, files: loaded.files, resources: decoded.resources.length };
  const model = buildModel(decoded.resources);
  diagnostics.push(...model.diagnostics);
  if (model.diagnostics.some((d) => d.severity === 'error')) return { snapshot: undefined, proxy: undefined, diagnostics, files: loaded.files, resources: decoded.resources.length };
  const proxy = identityFrom(identity, model, note);
  // Plain data: the serving process receives it as JSON, as it would from a control plane.
  const snapshot = buildSnapshot(model, proxy, options);
  return { snapshot, proxy, diagnostics, files: loaded.files, resources: decoded.resources.length };
}
