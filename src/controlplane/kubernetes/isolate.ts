/**
 * One bad object must not hold back a whole cluster's config (istiod skips what it cannot use):
 * objects with errors of their own are left out and the rest is built again. Errors that name no
 * object (or name one that is not a document of this set) still reject the config as a whole.
 */
import { formatDiagnostic, type Diagnostic } from '../../config/diagnostics.js';
import { decodeResources } from '../../config/decode.js';
import type { RawDocument } from '../../config/load.js';
import { buildModel, type Model } from '../../model/build.js';
import type { LeftOutObject } from '../config-source.js';

/** Each round drops at least one object; dropping one rarely breaks another, so a few rounds suffice. */
const MAX_ROUNDS = 5;

export interface IsolatedBuild {
  readonly model: Model;
  /** Diagnostics of the objects that were kept (errors here reject the whole config). */
  readonly diagnostics: Diagnostic[];
  readonly leftOut: LeftOutObject[];
}

const fileOf = (d: Diagnostic): string | undefined => (d.pos ?? d.resource?.pos)?.file;

export function buildIsolated(docs: readonly RawDocument[]): IsolatedBuild {
  const byFile = new Map(docs.map((d) => [d.file, d]));
  const leftOut: LeftOutObject[] = [];
  let kept = docs;
  for (let round = 1; ; round++) {
    const decoded = decodeResources(kept);
    const model = buildModel(decoded.resources);
    const diagnostics = [...decoded.diagnostics, ...model.diagnostics];
    const bad = new Map<string, Diagnostic[]>();
    for (const d of diagnostics) {
      const file = fileOf(d);
      if (d.severity !== 'error' || file === undefined || !byFile.has(file)) continue;
      bad.set(file, [...(bad.get(file) ?? []), d]);
    }
    if (bad.size === 0 || round === MAX_ROUNDS) return { model, diagnostics, leftOut };
    for (const [file, errors] of bad) leftOut.push(describe(byFile.get(file), file, errors));
    kept = kept.filter((d) => !bad.has(d.file));
  }
}

function describe(doc: RawDocument | undefined, file: string, errors: readonly Diagnostic[]): LeftOutObject {
  const v = (doc?.value ?? {}) as { kind?: unknown; metadata?: { name?: unknown; namespace?: unknown } };
  return {
    kind: typeof v.kind === 'string' ? v.kind : '',
    namespace: typeof v.metadata?.namespace === 'string' ? v.metadata.namespace : '',
    name: typeof v.metadata?.name === 'string' ? v.metadata.name : '',
    source: file,
    errors: errors.map(formatDiagnostic),
  };
}
