/**
 * The authorization step of a request or connection: builds the evaluator's input from what the
 * proxy knows, and turns the verdict into the local reply and log fields. The HTTP session, the
 * TCP proxy and `tollgate trace` all go through here.
 */
import type { AuthzPolicy } from '../../snapshot/types.js';
import { identityOfSpiffeId } from '../mesh/peer-identity.js';
import type { DownstreamConnection } from '../context.js';
import type { Decision } from '../route/http-route.js';
import type { RequestFacts } from '../route/select.js';
import { deniedDetail, evaluateAuthz, matchName, RBAC_DENIED_BODY, RBAC_DENIED_REASON, RBAC_DRY_RUN_REASON, type AuthzRequest, type AuthzVerdict } from './evaluate.js';

/** What the connection tells the evaluator (the same for every request on it). */
export interface AuthzConnection {
  readonly remoteAddress: string;
  readonly localAddress: string;
  /** The snapshot's listener port, or the original destination port of a captured connection. */
  readonly destinationPort: number;
  readonly sni: string | undefined | null;
  /** The mTLS peer's principal (`cluster.local/ns/a/sa/sleep`) and namespace; absent on plaintext. */
  readonly sourcePrincipal?: string | undefined;
  readonly sourceNamespace?: string | undefined;
}

/** A captured connection is authorized on the port it was addressed to, others on the listener's configured port. */
export function authzConnectionOf(conn: DownstreamConnection): AuthzConnection {
  return {
    remoteAddress: conn.remoteAddress,
    localAddress: conn.localAddress,
    destinationPort: conn.originalDestination !== undefined ? conn.localPort : conn.listenerPort,
    sni: conn.sni,
    ...(conn.peer !== undefined ? { sourcePrincipal: conn.peer.principal, sourceNamespace: conn.peer.namespace } : {}),
  };
}

/** The identity fields for a principal given as text (trace's --source-principal); none for undefined. */
export function peerOf(principal: string | undefined): { sourcePrincipal?: string; sourceNamespace?: string } {
  if (principal === undefined) return {};
  const ns = identityOfSpiffeId(`spiffe://${principal}`).namespace;
  return { sourcePrincipal: principal, ...(ns !== undefined ? { sourceNamespace: ns } : {}) };
}

export function connectionRequest(c: AuthzConnection): AuthzRequest {
  return {
    sourceIp: c.remoteAddress,
    destinationIp: c.localAddress,
    destinationPort: c.destinationPort,
    sni: c.sni ?? null,
    ...(c.sourcePrincipal !== undefined ? { sourcePrincipal: c.sourcePrincipal } : {}),
    ...(c.sourceNamespace !== undefined ? { sourceNamespace: c.sourceNamespace } : {}),
  };
}

/** What AuthorizationPolicy reads of a routed request (a Decision has it: the request as it was routed). */
export type AuthzRequestFacts = Pick<RequestFacts, 'host' | 'authority' | 'method' | 'path' | 'header'>;

export function httpRequest(c: AuthzConnection, facts: AuthzRequestFacts): AuthzRequest {
  return {
    ...connectionRequest(c),
    http: { host: facts.host, authority: facts.authority, method: facts.method, path: facts.path, header: (n) => facts.header(n) },
  };
}

/**
 * A CONNECT on an explicit-proxy listener as AuthorizationPolicy sees it: method CONNECT, host the
 * target, no path. `headers` is the request's flat [name, value, ...] list; repeated fields are
 * matched comma-joined, as on any other HTTP request.
 */
export function connectRequest(c: AuthzConnection, host: string, port: number, headers: readonly string[]): AuthzRequest {
  const header = (name: string): string | undefined => {
    let joined: string | undefined;
    for (let i = 0; i + 1 < headers.length; i += 2) if (headers[i]!.toLowerCase() === name) joined = joined === undefined ? headers[i + 1] : `${joined},${headers[i + 1]!}`;
    return joined;
  };
  return { ...connectionRequest(c), http: { host, authority: `${host}:${port}`, method: 'CONNECT', path: '', header } };
}

/** The log line's reason and detail for a verdict, undefined when there is nothing to say. */
export function verdictLog(v: AuthzVerdict): { readonly reason: string; readonly detail: string } | undefined {
  if (!v.allowed) return { reason: RBAC_DENIED_REASON, detail: deniedDetail(v) };
  if (v.dryRunDenied !== undefined) return { reason: RBAC_DRY_RUN_REASON, detail: `rbac_dry_run_denied_matched_policy[${matchName(v.dryRunDenied.match)}]` };
  return undefined;
}

/**
 * RBAC in front of the router (Envoy's filter order: it answers before faults and routes), on the
 * request as `d` routed it. A request the codec or the authority check already refused (DPE) is
 * left as it is.
 */
export function authorizeHttp(policies: readonly AuthzPolicy[] | undefined, c: AuthzConnection, d: Decision): AuthzVerdict | undefined {
  if (policies === undefined || (d.kind === 'reply' && d.flag === 'DPE')) return undefined;
  const v = evaluateAuthz(policies, httpRequest(c, d));
  const log = verdictLog(v);
  if (!v.allowed) {
    d.reply(403, '-', RBAC_DENIED_REASON, log!.detail, RBAC_DENIED_BODY);
    d.replyHeaders = undefined;
    // The route's own filters (fault delay, rate limit, mirror) must not run for a denied request.
    d.route = undefined;
    d.delayMs = 0;
  } else if (log !== undefined) {
    d.logReason = log.reason;
    d.logDetail = log.detail;
  }
  return v;
}
