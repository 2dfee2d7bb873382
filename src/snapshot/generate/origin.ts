import type { Resource } from '../../config/decode.js';
import type { Origin } from '../types.js';

export function originOf(r: Resource, line?: number): Origin {
  return { kind: r.ref.kind, name: r.name, namespace: r.namespace, file: r.ref.pos.file, line: line ?? r.ref.pos.line };
}
