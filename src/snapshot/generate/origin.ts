import type { Resource } from '../../config/decode.js';
import type { Origin } from '../types.js';

/**
 * Where a snapshot element came from. The line is the resource's; `path` names the field inside
 * it, so tools holding the config (trace, analyze) can resolve the exact line on demand without
 * making every compile pay for source positions.
 */
export function originOf(r: Resource, path?: readonly (string | number)[]): Origin {
  return { kind: r.ref.kind, name: r.name, namespace: r.namespace, file: r.ref.pos.file, line: r.ref.pos.line, ...(path ? { path } : {}) };
}
