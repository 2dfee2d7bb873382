/** Shared helpers for analyze checks: diagnostics bound to a resource and a field path. */
import type { Diagnostic, Severity } from '../config/diagnostics.js';
import type { Resource } from '../config/decode.js';
import type { Path } from '../config/load.js';
import type { Model } from '../model/build.js';
import { codeEntry } from '../catalogue/catalogue.js';
import { istioEquivalent } from './istio-codes.js';

export interface Finder {
  readonly model: Model;
  report(severity: Severity, code: string, r: Resource, path: Path, message: string, hint: string): void;
}

export function makeFinder(model: Model, out: Diagnostic[]): Finder {
  return {
    model,
    report(severity, code, r, path, message, hint) {
      const istio = istioEquivalent(code);
      // A check without a specific hint gets the catalogue's (docs/errors.md).
      out.push({ severity, code, message, resource: r.ref, pos: { file: r.doc.file, line: r.doc.lineOf(path) }, hint: hint !== '' ? hint : (codeEntry(code)?.fix ?? ''), ...(istio ? { istio } : {}) });
    },
  };
}

export type Check = (f: Finder) => void;
