/**
 * Request header fields the proxy removes before anything reads the request (routing, filters,
 * the upstream head), so a route can never match on a field the upstream does not receive:
 *
 * - names containing `_` (Envoy's `headers_with_underscores_action`). Many servers and CGI/WSGI
 *   stacks map `_` and `-` to the same variable, so `Transfer_Encoding: chunked` can become a
 *   framing header behind the proxy that the proxy never saw as one (request smuggling), and
 *   `X_Forwarded_For` can shadow the field the proxy writes. Default `drop` (Envoy's default is
 *   ALLOW; Istio leaves it there); `reject` answers 400 `TG_HTTP_UNDERSCORE_HEADER`; `allow` keeps
 *   them (only for upstreams known to need such names).
 * - `x-envoy-*` sent by a client of a gateway or egress router (Envoy sanitises them from external
 *   callers): they steer Envoy proxies behind this one (retries, timeouts, `x-envoy-internal`),
 *   so only a hop inside the mesh may set them. A sidecar keeps them: its callers are its own
 *   application and mesh peers.
 *
 * Cost: one `includes('_')` per field, and a first-letter test for `x-envoy-`; the header list is
 * copied only when something is removed. A head whose field lines are still raw (head.ts
 * RawFields) is scanned in place, and its fields become strings only when one is removed.
 */
import { HttpParseError } from './errors.js';
import { editHeaders, type RawFields, type RequestHead } from './head.js';
import type { UnderscoreHeaderAction } from './options.js';
import type { EngineContext } from './stream-api.js';

export type { UnderscoreHeaderAction };

export interface HeaderHygieneResult {
  /** Fields removed, by why (metrics); 0 and 0 in the common case. */
  underscore: number;
  envoy: number;
  /** `reject`: the first underscore name found (the request is refused). */
  rejected: string | undefined;
}

const X_ENVOY = 'x-envoy-';

function isEnvoyHeader(name: string): boolean {
  if (name.length <= X_ENVOY.length || (name.charCodeAt(0) | 0x20) !== 0x78) return false;
  return name.slice(0, X_ENVOY.length).toLowerCase() === X_ENVOY;
}

/**
 * Removes the fields above from `headers` (flat [name, value, ...], edited in place) and says what
 * it removed. `edge`: the request comes from outside the mesh (gateway or router listener).
 */
export function cleanRequestHeaders(headers: string[], edge: boolean, underscores: UnderscoreHeaderAction, out: HeaderHygieneResult): void {
  out.underscore = 0;
  out.envoy = 0;
  out.rejected = undefined;
  let w = -1; // write index once the first field is dropped
  for (let i = 0; i + 1 < headers.length; i += 2) {
    const name = headers[i]!;
    let drop = false;
    if (underscores !== 'allow' && name.includes('_')) {
      if (underscores === 'reject') {
        out.rejected = name;
        return;
      }
      out.underscore++;
      drop = true;
    } else if (edge && isEnvoyHeader(name)) {
      out.envoy++;
      drop = true;
    }
    if (drop) {
      if (w < 0) w = i;
      continue;
    }
    if (w >= 0) {
      headers[w] = name;
      headers[w + 1] = headers[i + 1]!;
      w += 2;
    }
  }
  if (w >= 0) headers.length = w;
}

/** Some raw field line would be removed (or rejected) by cleanRequestHeaders with these options. */
function rawNeedsCleaning(raw: RawFields, edge: boolean, underscores: UnderscoreHeaderAction): boolean {
  const t = raw.text;
  const pos = raw.pos;
  for (let i = 0; i + 4 < pos.length; i += 5) {
    const ls = pos[i]!;
    const ne = pos[i + 1]!;
    if (underscores !== 'allow') for (let k = ls; k < ne; k++) if (t.charCodeAt(k) === 0x5f) return true;
    if (edge && ne - ls > X_ENVOY.length && (t.charCodeAt(ls) | 0x20) === 0x78 && t.slice(ls, ls + X_ENVOY.length).toLowerCase() === X_ENVOY) return true;
  }
  return false;
}

/**
 * The engine's step for one parsed request head (HTTP/1.1 and HTTP/2 alike): cleans it with the
 * engine's options, counts what went, and returns the 400 to answer under `reject`.
 */
export function applyHeaderHygiene(head: RequestHead, edge: boolean, engine: EngineContext, scratch: HeaderHygieneResult): HttpParseError | undefined {
  const underscores = engine.opts.headersWithUnderscores;
  if (head.raw !== undefined && !rawNeedsCleaning(head.raw, edge, underscores)) {
    scratch.underscore = 0;
    scratch.envoy = 0;
    scratch.rejected = undefined;
    return undefined;
  }
  cleanRequestHeaders(editHeaders(head), edge, underscores, scratch);
  if (scratch.rejected !== undefined) return new HttpParseError('TG_HTTP_UNDERSCORE_HEADER', 'request', `field name ${JSON.stringify(scratch.rejected)} contains "_" (--headers-with-underscores reject)`);
  if (scratch.underscore + scratch.envoy > 0) engine.metrics.headersDropped(scratch);
  return undefined;
}

/** Whether callers of this connection come from outside the mesh (a gateway's or a router's listener). */
export function isEdge(conn: { readonly snapshot: { readonly snapshot: { readonly proxy: { readonly role: string } } } }): boolean {
  return conn.snapshot.snapshot.proxy.role !== 'sidecar';
}
