/** Test helpers for the config pipeline: compile fixtures or inline YAML into models and snapshots. */
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { decodeResources } from '../../src/config/decode.js';
import type { Diagnostic } from '../../src/config/diagnostics.js';
import { loadPaths, parseText } from '../../src/config/load.js';
import { buildModel, type Model } from '../../src/model/build.js';
import { buildSnapshot } from '../../src/snapshot/build.js';
import type { ProxyIdentity, Snapshot } from '../../src/snapshot/types.js';

/** Repository root (tests run compiled from dist/test/...). */
export const ROOT = join(fileURLToPath(import.meta.url), '..', '..', '..', '..');
export const FIXTURES = 'test/fixtures/pipeline';

export function fixture(name: string): string {
  return `${FIXTURES}/${name}`;
}

export interface Compiled {
  readonly model: Model;
  readonly diagnostics: Diagnostic[];
}

/** Loads fixture files by repo-relative path (so file names in snapshots are stable). */
export function loadFixtures(...names: string[]): Compiled {
  const prev = process.cwd();
  process.chdir(ROOT);
  try {
    const loaded = loadPaths(names.map(fixture));
    const decoded = decodeResources(loaded.documents);
    const model = buildModel(decoded.resources);
    return { model, diagnostics: [...loaded.diagnostics, ...decoded.diagnostics, ...model.diagnostics] };
  } finally {
    process.chdir(prev);
  }
}

/** Compiles inline YAML text (several documents) as if it were one file called `name`. */
export function loadYaml(text: string, name = 'inline.yaml'): Compiled {
  const parsed = parseText(text, name);
  const decoded = decodeResources(parsed.documents);
  const model = buildModel(decoded.resources);
  return { model, diagnostics: [...parsed.diagnostics, ...decoded.diagnostics, ...model.diagnostics] };
}

export function identity(role: ProxyIdentity['role'], namespace: string, labels: Record<string, string> = {}, name = ''): ProxyIdentity {
  return { role, namespace, labels, name };
}

export function snapshotOf(c: Compiled, id: ProxyIdentity): Snapshot {
  return buildSnapshot(c.model, id);
}
