/**
 * The HTTP route decision: one request head -> one Decision (a local reply, or a forward to a
 * cluster). Pure: no sockets, no clock; randomness comes in as a function. The HTTP engine calls it
 * per request and `tollgate trace` calls the very same class, so the two cannot disagree.
 *
 *  authority  head.authority (absolute-form target, else Host; RFC 9112 §3.2.2) split with
 *             splitHostPort and normalised with normalizeHost: lower case, one trailing dot
 *             stripped, IDNA to punycode, legacy IPv4 spellings (`0x7f000001`, `127.1`) turned into
 *             the address. Invalid -> 400 `invalid_host`. Virtual hosts are chosen on the host
 *             alone (the port is ignored, as Istio configures Envoy with ignore_port_in_host_matching);
 *             an `authority` match sees the canonical authority WITH the port the client wrote
 *             ("api.example:8080"), as Envoy's `:authority` header matcher does.
 *  path       normalize.ts at the snapshot's level (meshConfig.pathNormalization): the normalised
 *             path is matched AND forwarded.
 *  headers    a header match sees all lines of that name joined with "," (Envoy), so a second
 *             `x-env` line can neither hide nor add a value the route did not see.
 *  Host sent  the route's hostRewrite, else the canonical authority: upstream sees exactly what
 *             was routed on.
 *  port       a passthrough (ORIGINAL_DST) destination is dialed on the listener's port, never on
 *             a port the client names in Host (Envoy's original-destination cluster uses the
 *             connection's port).
 *
 * Outcomes: 404 NR route_not_found; direct responses (with the route's flag/reason, e.g. BLOCKED
 * registry_only); redirects (Location from the normalised request); fault aborts (FI); forward ->
 * pickWeighted (weight-0 destinations never picked) -> 503 NC cluster_not_found when the cluster is
 * missing from the snapshot.
 */
import { normalizeHost, splitHostPort } from '../../net/hostname.js';
import type { Cluster, Route, RouteAction } from '../../snapshot/types.js';
import { defaultBody } from '../http/local-reply.js';
import type { CompiledRoute, CompiledRouteTable, CompiledSnapshot } from './compile.js';
import { DEFAULT_PATH_NORMALIZATION, normalizePath, type EncodedSlashPolicy, type PathNormalization } from './normalize.js';
import { pickWeighted, selectRoute, selectVirtualHost, type RequestFacts } from './select.js';

/** The parts of a parsed request head the decision reads (the HTTP parser's RequestHead has them). */
export interface RequestInput {
  readonly method: string;
  /** The request-target as received. */
  readonly target: string;
  readonly targetForm: string;
  /** 'http' | 'https' for an absolute-form target. */
  readonly scheme: string | undefined;
  /** The authority to route on: the absolute-form target's, else Host. */
  readonly authority: string | undefined;
  /** Origin-form path + query. */
  readonly path: string;
  /** Flat [name, value, ...] as received. */
  readonly headers: readonly string[];
}

/**
 * A request header as matches and AuthorizationPolicy read it (lower-case name): repeated fields
 * comma-joined (as Envoy matches them), pseudo-headers from the routed request.
 */
export function requestHeader(head: RequestInput | undefined, name: string, routed: { readonly method: string; readonly path: string; readonly scheme: string }): string | undefined {
  if (name === 'host' || name === ':authority') return head?.authority;
  if (name === ':method') return routed.method;
  if (name === ':path') return routed.path;
  if (name === ':scheme') return routed.scheme;
  const h = head?.headers;
  if (!h) return undefined;
  const n = name.length;
  let joined: string | undefined;
  for (let i = 0; i + 1 < h.length; i += 2) {
    const k = h[i]!;
    if (k.length === n && (k === name || k.toLowerCase() === name)) joined = joined === undefined ? h[i + 1] : `${joined},${h[i + 1]!}`;
  }
  return joined;
}

/** 400 detail for a rejected escaped slash. */
export const ENCODED_SLASH_DETAIL = 'the path contains %2F or %5C; Tollgate rejects encoded slashes (routing and upstream would read the path differently)';

export type ForwardAction = Extract<RouteAction, { type: 'forward' }>;

/**
 * Explicit-proxy forwards (proxy-router.ts): what the upstream request takes from the proxy filter
 * instead of a route — an ad-hoc cluster (ACL mode), the address the ACL checked, the filter's
 * source address, ACL IP/CIDR exemptions from the SSRF guard.
 */
export interface ProxyUpstream {
  readonly cluster: string | Cluster;
  readonly requestedHost: string;
  readonly filterSourceAddress: string | undefined;
  readonly allowAddresses: readonly string[] | undefined;
  /** Report-only pass of a destination outside the registry (logged as would_deny_registry). */
  readonly wouldDeny?: boolean;
}

/** What the router decided; one per request, filled by `route()`. */
export class Decision {
  kind: 'reply' | 'forward' = 'reply';
  // reply
  status = 0;
  body = '';
  flag = '-';
  reason: string | undefined = undefined;
  detail: string | undefined = undefined;
  replyHeaders: string[] | undefined = undefined;
  /** The gRPC status a gRPC client gets for this reply (fault abort `grpcStatus`); undefined: mapped from `status`. */
  grpcStatus: number | undefined = undefined;
  // both
  routeName: string | null = null;
  /** Normalized host ('' when the authority was invalid). */
  host = '';
  // The request as routed, for the filters that run on it (rbac) whatever the connection routes next.
  method = '';
  /** Canonical authority (host[:port] as given). */
  authority = '';
  /** Normalised path without the query ('' when the request was refused before it). */
  path = '';
  scheme = 'http';
  head: RequestInput | undefined = undefined;
  // forward
  route: Route | undefined = undefined;
  action: ForwardAction | undefined = undefined;
  clusterName: string | undefined = undefined;
  cluster: Cluster | undefined = undefined;
  /** Host header to send upstream. */
  upstreamHost = '';
  /** Origin-form path + query to send upstream. */
  target = '';
  /** Port the client asked for (explicit authority port, else the listener's snapshot port). */
  requestedPort = 0;
  /** Fault delay to apply before forwarding (ms), 0 for none. */
  delayMs = 0;
  /** Explicit proxy only: upstream request overrides (undefined on route-table listeners). */
  proxy: ProxyUpstream | undefined = undefined;
  /** Set when the decision waits for something (explicit proxy ACL: DNS); Exchange.start() re-runs once it settles. */
  pending: Promise<void> | undefined = undefined;
  /** Reason and detail to log for a forwarded request (a dry-run AuthorizationPolicy that would deny it). */
  logReason: string | undefined = undefined;
  logDetail: string | undefined = undefined;

  /** A header of the routed request (requestHeader()). */
  header(name: string): string | undefined {
    return requestHeader(this.head, name, this);
  }

  reply(status: number, flag: string, reason: string | undefined, detail?: string, body?: string): void {
    this.kind = 'reply';
    this.status = status;
    this.flag = flag;
    this.reason = reason;
    this.detail = detail;
    this.body = body ?? defaultBody(status, reason);
  }
}

/** Per-connection routing context (and a one-entry cache: a connection usually repeats its Host). */
export class RouterContext implements RequestFacts {
  // RequestFacts, refreshed per request
  method = '';
  path = '';
  query = '';
  host = '';
  authority = '';
  scheme: string;
  readonly port: number;
  sourceNamespace?: string;
  protected head: RequestInput | undefined;
  /** The snapshot's path normalisation level (mesh config). */
  readonly pathLevel: PathNormalization;

  private lastAuthority: string | undefined = undefined;
  private lastHost = '';
  private lastCanon = '';
  private lastPort = 0;
  private lastBad: string | undefined = undefined;

  constructor(
    readonly snapshot: CompiledSnapshot,
    readonly table: CompiledRouteTable | undefined,
    readonly listenerPort: number,
    readonly tls: boolean,
    readonly encodedSlash: EncodedSlashPolicy,
    readonly random: () => number,
    sourceNamespace: string | undefined,
  ) {
    this.port = listenerPort;
    this.scheme = tls ? 'https' : 'http';
    this.pathLevel = snapshot.snapshot.policy.pathNormalization ?? DEFAULT_PATH_NORMALIZATION;
    if (sourceNamespace !== undefined) this.sourceNamespace = sourceNamespace;
  }

  header(name: string): string | undefined {
    return requestHeader(this.head, name, this);
  }

  /**
   * Splits and normalizes an authority. Sets host/authority and returns undefined, or returns why
   * it is invalid. Cached for the last authority seen on this connection.
   */
  setAuthority(authority: string): string | undefined {
    if (authority === this.lastAuthority) {
      if (this.lastBad !== undefined) return this.lastBad;
      this.host = this.lastHost;
      this.authority = this.lastCanon;
      return undefined;
    }
    this.lastAuthority = authority;
    const hp = splitHostPort(authority, 0);
    if (!hp.ok) return (this.lastBad = hp.error);
    const n = normalizeHost(hp.host);
    if (!n.ok) return (this.lastBad = n.error);
    this.lastBad = undefined;
    const hostText = n.ip !== undefined && n.ip.family === 6 ? `[${n.host}]` : n.host;
    this.lastHost = n.host;
    this.lastCanon = hp.port !== 0 ? `${hostText}:${hp.port}` : hostText;
    this.lastPort = hp.port;
    this.host = n.host;
    this.authority = this.lastCanon;
    return undefined;
  }

  /** Canonical authority of the last setAuthority() (host[:port]), port given by the client or 0. */
  get canonicalAuthority(): string {
    return this.lastCanon;
  }
  get explicitPort(): number {
    return this.lastPort;
  }

  /**
   * The same context on a newer snapshot (a keep-alive connection after a reload), or undefined to
   * keep this one (the new snapshot lacks the connection's route table).
   */
  rebind(snap: CompiledSnapshot, routeConfigName: string): RouterContext | undefined {
    const table = snap.routeTables.get(routeConfigName);
    if (table === undefined) return undefined;
    return new RouterContext(snap, table, this.listenerPort, this.tls, this.encodedSlash, this.random, this.sourceNamespace);
  }

  /** Routes one request; fills `d`. */
  route(d: Decision, head: RequestInput): void {
    this.head = head;
    this.method = head.method;
    d.head = head;
    d.method = head.method;
    if (head.method === 'CONNECT') {
      d.reply(405, 'NR', 'connect_not_allowed', 'CONNECT is served by explicit-proxy listeners, not by HTTP routes');
      return;
    }
    const authority = head.authority;
    if (authority === undefined) {
      // Only HTTP/1.0 can get here (the parser requires Host in 1.1): nothing to route on.
      d.reply(400, 'DPE', 'missing_host', 'HTTP/1.0 request without Host');
      return;
    }
    const bad = this.setAuthority(authority);
    if (bad !== undefined) {
      d.reply(400, 'DPE', 'invalid_host', `authority ${JSON.stringify(authority)}: ${bad}`);
      return;
    }
    d.host = this.host;
    d.authority = this.authority;
    this.scheme = head.scheme ?? (this.tls ? 'https' : 'http');
    d.scheme = this.scheme;
    // path + query
    const raw = head.path;
    const q = raw.indexOf('?');
    const rawPath = q < 0 ? raw : raw.slice(0, q);
    this.query = q < 0 ? '' : raw.slice(q + 1);
    let path = rawPath;
    if (rawPath !== '*') {
      const np = normalizePath(rawPath, this.pathLevel, this.encodedSlash);
      if (np === null) {
        d.reply(400, 'DPE', 'encoded_slash_in_path', ENCODED_SLASH_DETAIL);
        return;
      }
      path = np;
    }
    this.path = path;
    d.path = path;
    const table = this.table;
    if (table === undefined) {
      d.reply(404, 'NR', 'route_not_found', 'the listener names a route table the snapshot does not have');
      return;
    }
    const vh = selectVirtualHost(table, this.host);
    if (vh === undefined) {
      d.reply(404, 'NR', 'route_not_found', `no virtual host for ${this.host} in ${table.config.name}`);
      return;
    }
    const cr: CompiledRoute | undefined = selectRoute(vh, this);
    if (cr === undefined) {
      d.routeName = vh.vhost.name;
      d.reply(404, 'NR', 'route_not_found', `virtual host ${vh.vhost.name} has no route for ${head.method} ${path}`);
      return;
    }
    const route = cr.route;
    d.routeName = route.name;
    d.route = route;
    const action = route.action;
    switch (action.type) {
      case 'direct': {
        const flag = action.flag ?? '-';
        // Snapshot reasons may carry detail after the stable part ("registry_only: host ...").
        const full = action.reason;
        const colon = full !== undefined ? full.indexOf(':') : -1;
        const reason = full === undefined ? undefined : colon > 0 ? full.slice(0, colon) : full;
        d.reply(action.status, flag, reason, full, action.body !== '' || reason === undefined ? action.body : defaultBody(action.status, reason));
        return;
      }
      case 'redirect': {
        d.reply(action.status || 301, '-', undefined, undefined, '');
        d.replyHeaders = ['location', redirectLocation(action, this.scheme, this.canonicalAuthority, path, this.query)];
        return;
      }
      default:
        break;
    }
    // forward
    const fault = action.fault;
    if (fault !== undefined) {
      if (fault.abort && this.random() * 100 < fault.abort.percent) {
        const grpc = fault.abort.grpcStatus;
        d.reply(fault.abort.status, 'FI', 'fault_abort', `route ${route.name} injects ${grpc !== undefined ? `gRPC status ${grpc} (HTTP ${fault.abort.status})` : fault.abort.status} for ${fault.abort.percent}% of requests`);
        d.grpcStatus = grpc;
        return;
      }
      if (fault.delay && this.random() * 100 < fault.delay.percent) d.delayMs = fault.delay.ms;
    }
    const picked = pickWeighted(action.clusters, this.random());
    const cluster = picked !== undefined ? this.snapshot.clusters.get(picked.name) : undefined;
    d.clusterName = picked?.name;
    if (cluster === undefined) {
      d.reply(503, 'NC', 'cluster_not_found', `route ${route.name}: cluster ${picked?.name ?? '(none)'} is not in the snapshot`);
      return;
    }
    d.kind = 'forward';
    d.action = action;
    d.cluster = cluster;
    d.upstreamHost = action.hostRewrite ?? this.canonicalAuthority;
    d.requestedPort = this.listenerPort;
    let fwdPath = path;
    const rw = action.pathRewrite;
    if (rw !== undefined) fwdPath = rewritePath(path, rw, cr);
    d.target = fwdPath === rawPath ? raw : q < 0 ? fwdPath : fwdPath + raw.slice(q);
  }
}

type RedirectAction = Extract<RouteAction, { type: 'redirect' }>;

/**
 * Envoy's redirect: scheme, authority, port and path each replaced when the route says so, else
 * taken from the (normalised) request; the query is kept unless the new path carries one. When
 * the scheme changes, a port that was the old scheme's default is dropped.
 */
export function redirectLocation(action: RedirectAction, scheme: string, authority: string, path: string, query: string): string {
  const newScheme = action.scheme ?? scheme;
  let host = action.authority ?? authority;
  if (action.port !== undefined) host = `${stripPort(host)}:${action.port}`;
  else if (newScheme !== scheme && action.authority === undefined) {
    const defaultPort = scheme === 'https' ? ':443' : ':80';
    if (host.endsWith(defaultPort) && !host.endsWith(']')) host = stripPort(host);
  }
  const newPath = action.path ?? path;
  const q = newPath.indexOf('?') >= 0 || query === '' ? '' : `?${query}`;
  return `${newScheme}://${host}${newPath}${q}`;
}

function stripPort(authority: string): string {
  const close = authority.lastIndexOf(']');
  const colon = authority.lastIndexOf(':');
  return colon > close ? authority.slice(0, colon) : authority;
}

/** Envoy prefix_rewrite / Istio rewrite.uri: replaces the matched prefix (or the whole path for exact/regex/no path match... see docs). */
function rewritePath(path: string, rw: NonNullable<ForwardAction['pathRewrite']>, cr: CompiledRoute): string {
  if (rw.full !== undefined) return rw.full;
  const prefix = rw.prefix;
  if (prefix === undefined) return path;
  const m = cr.route.match.path;
  if (m?.prefix !== undefined) return prefix + path.slice(m.prefix.length);
  if (m?.exact !== undefined || m?.regex !== undefined) return prefix;
  // No path match: Istio treats it as prefix "/".
  return prefix + path.slice(1);
}
