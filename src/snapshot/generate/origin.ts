import type { Resource } from '../../config/decode.js';
import type { Origin } from '../types.js';

/**
 * Where a snapshot element came from. The line is the resource's; `path` names the field inside
 * it, so tools holding the config (trace, analyze) can resolve the exact line on demand without
 * making every compile pay for source positions.
 */
const resourceOrigins = new WeakMap<Resource, Origin>();

export function originOf(r: Resource, path?: readonly (string | number)[]): Origin {
  // The path-less origin of a resource is shared by every element it produces (immutable data).
  if (!path) {
    let o = resourceOrigins.get(r);
    if (!o) {
      o = Object.freeze({ kind: r.ref.kind, name: r.name, namespace: r.namespace, file: r.ref.pos.file, line: r.ref.pos.line });
      resourceOrigins.set(r, o);
    }
    return o;
  }
  return { kind: r.ref.kind, name: r.name, namespace: r.namespace, file: r.ref.pos.file, line: r.ref.pos.line, path };
}
