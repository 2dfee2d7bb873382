/**
 * What the proxy would decide for one request, computed with the data plane's own code at every
 * step, so `trace` reports the status, response flag, reason, cluster, upstream host and source
 * address the access log would carry:
 *
 *   bytes    the request is serialised and fed to the HTTP/1.1 parser the proxy uses (same limits),
 *            so a request the codec refuses is refused here with the same status and reason (DPE);
 *   route    dataplane/route RouterContext / ExplicitProxyRouter (normalisation, virtual host,
 *            route, redirect, direct response, fault abort, weighted pick);
 *   upstream ClusterManager.choose(): registry/SSRF guard, self-connect guard, endpoint, source
 *            address — the same object the proxy holds, built from the same flags
 *            (--allow-cidr, --source-address, --dns-server).
 *
 * Randomness (fault percentages, weighted splits) is fixed: a fault aborts only at 100%, and the
 * weighted pick is the last destination with a non-zero weight; `trace` lists every destination.
 */
import { Buffer } from 'node:buffer';
import type { CompiledSnapshot } from '../dataplane/route/compile.js';
import { ExplicitProxyRouter } from '../dataplane/route/explicit-proxy-route.js';
import { Decision, RouterContext } from '../dataplane/route/http-route.js';
import { HttpParser } from '../dataplane/http/parser.js';
import { cleanRequestHeaders, isEdge } from '../dataplane/http/header-hygiene.js';
import type { HttpParseError } from '../dataplane/http/errors.js';
import type { RequestHead } from '../dataplane/http/head.js';
import type { ChooseResult, ClusterManager, UpstreamRequest } from '../dataplane/upstream/cluster-manager.js';
import { connectStatusForFailure, statusForFailure } from '../dataplane/upstream/failure.js';
import { DEFAULT_CONNECT_TIMEOUT_MS, decideConnect, WOULD_DENY_REASON } from '../dataplane/route/select.js';
import { normalizeHost, splitHostPort } from '../net/hostname.js';
import { compileRetry } from '../dataplane/http/retry.js';
import type { ExplicitProxy, HttpConnectionManager, WeightedCluster } from '../snapshot/types.js';
import { chainOf, FilterSharedState } from '../dataplane/http/filter-chain.js';
import { RBAC_FILTER, type RbacConfig } from '../dataplane/http/filters/rbac.js';
import { authorizeHttp, connectRequest, peerOf, verdictLog, type AuthzConnection } from '../dataplane/authz/apply.js';
import { evaluateAuthz, matchName, RBAC_DENIED_REASON, type AuthzVerdict } from '../dataplane/authz/evaluate.js';
import { explicitProxyParseReason } from '../dataplane/tcp/explicit-proxy.js';
import { pickWeighted } from '../dataplane/route/select.js';

/** The access-log fields of one request, as the proxy would write them. */
export interface TraceDecision {
  /** Response status; null when the request is forwarded (the upstream answers). */
  readonly status: number | null;
  readonly flag: string;
  readonly reason: string | null;
  readonly cluster: string | null;
  /** "ip:port" dialed (or refused by a guard), null when nothing is dialed. */
  readonly upstreamHost: string | null;
  /** Bound source IP, null for the OS default. */
  readonly sourceAddress: string | null;
  readonly routeName: string | null;
  /** Local reply detail, or why a destination was chosen. */
  readonly detail?: string;
  /** Redirect Location. */
  readonly location?: string;
  /** Host and origin-form target sent upstream when forwarded. */
  readonly forwardedHost?: string;
  readonly forwardedTarget?: string;
  /** Set when the outcome depends on a DNS answer trace did not get (no --dns-server, or it failed to answer in time). */
  readonly dependsOnDns?: string;
  /** The AuthorizationPolicy verdict (absent when no policy applies to the proxy). */
  readonly authz?: string;
}

/** The caller address trace assumes without --source-ip (ipBlocks and source.ip are matched against it). */
export const TRACE_SOURCE_IP = '127.0.0.1';

/** One line for the trace step: what decided, as the access log names it. */
export function describeVerdict(v: AuthzVerdict, sourceIp: string): string {
  const dry = v.dryRunDenied !== undefined ? `; dry-run: would be denied by ${matchName(v.dryRunDenied.match)}` : '';
  const audit = v.audited.length > 0 ? `; audited by ${v.audited.map(matchName).join(', ')}` : '';
  const verdict = !v.allowed ? (v.deniedBy === undefined ? 'denied: ALLOW policies apply and none matched ([none])' : `denied by ${matchName(v.deniedBy)}`) : v.allowedBy !== undefined ? `allowed by ${matchName(v.allowedBy)}` : 'allowed (no ALLOW policy applies, no DENY policy matched)';
  return `${verdict}${dry}${audit} (source ${sourceIp})`;
}

/** The connection as the proxy's authorization would see it. */
function traceAuthzConnection(input: HttpTraceInput): AuthzConnection {
  return { remoteAddress: input.downstreamIp ?? TRACE_SOURCE_IP, localAddress: input.originalDestination?.ip ?? '', destinationPort: input.originalDestination?.port ?? input.listenerPort, sni: input.sni ?? null, ...peerOf(input.sourcePrincipal) };
}

/** Always the upper end of [0, 1): a fault below 100% does not fire, the last non-zero weight wins. */
const TRACE_RANDOM = (): number => 0.999999;

export interface HttpTraceInput {
  readonly method: string;
  /** Request-target as sent: origin-form path?query, or an absolute URL. */
  readonly target: string;
  /** Header lines in order; a Host line is added from `authority` when none is given. */
  readonly headers: readonly (readonly [string, string])[];
  readonly authority: string;
  readonly listenerPort: number;
  readonly downstreamIp?: string;
  /** The caller's mesh identity as mTLS would have proven it (`cluster.local/ns/a/sa/sleep`). */
  readonly sourcePrincipal?: string;
  readonly sourceNamespace?: string;
  /** A sidecar's captured connection: where the app was going (ORIGINAL_DST clusters dial it). */
  readonly originalDestination?: { readonly ip: string; readonly port: number };
  /** The request arrived inside TLS the proxy terminated (a Gateway server with tls SIMPLE/MUTUAL). */
  readonly tls?: boolean;
  /** That connection's SNI, as the TLS inspector normalised it. */
  readonly sni?: string;
}

/** Serialises and parses the request as the proxy's codec does; a parse error is the decision. */
export function parseRequest(input: HttpTraceInput): { head: RequestHead } | { error: HttpParseError } {
  let text = `${input.method} ${input.target} HTTP/1.1\r\n`;
  if (!input.headers.some(([n]) => n.toLowerCase() === 'host')) text += `Host: ${input.authority}\r\n`;
  for (const [n, v] of input.headers) text += `${n}: ${v}\r\n`;
  text += '\r\n';
  let head: RequestHead | undefined;
  let error: HttpParseError | undefined;
  const parser = new HttpParser('request', {
    onHead: (h) => (head = h),
    onBody: () => undefined,
    onMessageComplete: () => undefined,
    onError: (e) => (error ??= e),
  });
  parser.execute(Buffer.from(text, 'latin1'));
  if (error !== undefined) return { error };
  if (head === undefined) throw new Error('internal: the parser took a complete head without a result');
  return { head };
}

export type RouterKind = { readonly table: string; readonly filter: HttpConnectionManager } | { readonly proxy: ExplicitProxy; readonly listenerName: string; readonly chainName: string };

/** Runs the route decision and, for a forward, the upstream choice (sync when no DNS is needed). */
export function decideHttp(compiled: CompiledSnapshot, kind: RouterKind, input: HttpTraceInput, clusters: ClusterManager): { decision: TraceDecision; later?: () => Promise<TraceDecision> } {
  const parsed = parseRequest(input);
  // On an explicit-proxy listener the CONNECT session's parser reads every head first.
  if ('error' in parsed) return { decision: parseErrorDecision(parsed.error, 'table' in kind ? parsed.error.code : explicitProxyParseReason(parsed.error)) };
  const head = parsed.head;
  // The fields the engine removes before routing (header-hygiene.ts, default options).
  cleanRequestHeaders(head.headers, isEdge({ snapshot: compiled }), 'drop', { underscore: 0, envoy: 0, rejected: undefined });
  const ns = input.sourceNamespace;
  const router =
    'table' in kind
      ? new RouterContext(compiled, compiled.routeTables.get(kind.table), input.listenerPort, input.tls === true, 'reject', TRACE_RANDOM, ns)
      : new ExplicitProxyRouter(compiled, kind.proxy, kind.listenerName, kind.chainName, clusters.dns, input.listenerPort, false, 'reject', TRACE_RANDOM, ns);
  const d = new Decision();
  router.route(d, head);
  const authzConn = traceAuthzConnection(input);
  // The rbac filter runs first in the route's chain when the proxy has policies, once the decision
  // is complete (after the allow/deny list's DNS answer): the same function on the same config.
  const authorize = (): { authz?: string } => {
    const plan = chainOf(compiled, 'table' in kind ? kind.filter : kind.proxy, new FilterSharedState()).plan(d.route);
    const rbac = plan.active.find((a) => a.factory.name === RBAC_FILTER)?.route as RbacConfig | undefined;
    const verdict = rbac === undefined ? undefined : authorizeHttp(rbac.policies, authzConn, d);
    return verdict === undefined ? {} : { authz: describeVerdict(verdict, authzConn.remoteAddress) };
  };
  const finish = (): { decision: TraceDecision; later?: () => Promise<TraceDecision> } => {
    const authz = authorize();
    const r = finishDecision();
    return { decision: { ...r.decision, ...authz }, ...(r.later ? { later: async () => ({ ...(await r.later!()), ...authz }) } : {}) };
  };
  const finishDecision = (): { decision: TraceDecision; later?: () => Promise<TraceDecision> } => {
    if (d.kind === 'reply') return { decision: replyDecision(d) };
    const req = upstreamRequestOf(d, compiled, input.downstreamIp, authzConn.sourceNamespace, input.originalDestination);
    const now = clusters.chooseSync(req);
    if (now !== undefined) return { decision: chosenDecision(d, now) };
    const host = typeof req.cluster === 'string' ? req.cluster : req.cluster.name;
    return {
      decision: { status: null, flag: '-', reason: null, cluster: d.clusterName ?? null, upstreamHost: null, sourceAddress: null, routeName: d.routeName, dependsOnDns: `cluster ${host} needs a DNS answer for ${d.proxy?.requestedHost ?? d.host}` },
      later: async () => chosenDecision(d, await clusters.choose(req)),
    };
  };
  const pending = d.pending;
  if (pending !== undefined) {
    return {
      decision: { status: null, flag: '-', reason: null, cluster: null, upstreamHost: null, sourceAddress: null, routeName: d.routeName, dependsOnDns: `the allow/deny list is checked against the address ${d.host} resolves to` },
      later: async () => {
        await pending;
        const r = finish();
        return r.later ? r.later() : r.decision;
      },
    };
  }
  return finish();
}

/**
 * A CONNECT on an explicit-proxy listener, as tcp/explicit-proxy.ts decides it: the parser, the
 * target's host:port, DNS for an ACL (names are checked by their address), decideConnect, then
 * the cluster manager. 200 when the tunnel would be opened.
 */
export function decideConnectRequest(compiled: CompiledSnapshot, proxy: ExplicitProxy, input: HttpTraceInput, clusters: ClusterManager): { decision: TraceDecision; later?: () => Promise<TraceDecision> } {
  const parsed = parseRequest(input);
  if ('error' in parsed) return { decision: parseErrorDecision(parsed.error, explicitProxyParseReason(parsed.error)) };
  const authority = parsed.head.authority ?? '';
  const hp = splitHostPort(authority, 0);
  const nh = hp.ok ? normalizeHost(hp.host) : undefined;
  if (!hp.ok || !nh || !nh.ok || hp.port === 0) return { decision: { status: 400, flag: 'DPE', reason: 'connect_bad_authority', cluster: null, upstreamHost: null, sourceAddress: null, routeName: null, detail: `CONNECT target ${JSON.stringify(authority)} is not host:port` } };
  const host = nh.host;
  const port = hp.port;
  // AuthorizationPolicies on the CONNECT itself, before anything is resolved (tcp/explicit-proxy.ts).
  const policies = compiled.snapshot.policy.authorization;
  const verdict = policies === undefined ? undefined : evaluateAuthz(policies, connectRequest(traceAuthzConnection(input), host, port, parsed.head.headers));
  const authz = verdict === undefined ? {} : { authz: describeVerdict(verdict, input.downstreamIp ?? TRACE_SOURCE_IP) };
  const log = verdict === undefined ? undefined : verdictLog(verdict);
  if (verdict !== undefined && !verdict.allowed) return { decision: { status: 403, flag: '-', reason: RBAC_DENIED_REASON, cluster: null, upstreamHost: null, sourceAddress: null, routeName: null, detail: log!.detail, ...authz } };
  const decide = (ip: string | undefined): { decision: TraceDecision; later?: () => Promise<TraceDecision> } => {
    const d = decideConnect(proxy, compiled, host, port, ip, DEFAULT_CONNECT_TIMEOUT_MS);
    if (!d.allowed) return { decision: { status: d.status, flag: d.flag, reason: d.reason, cluster: null, upstreamHost: null, sourceAddress: null, routeName: null, detail: d.why } };
    const req: UpstreamRequest = { cluster: d.cluster, snapshot: compiled, requestedHost: d.requestedHost, requestedPort: port, downstreamIp: input.downstreamIp, filterSourceAddress: proxy.sourceAddress, allowAddresses: d.allowAddresses };
    const name = typeof d.cluster === 'string' ? d.cluster : d.cluster.name;
    const routeName = d.routeName ?? null;
    const reason = d.wouldDeny !== undefined ? WOULD_DENY_REASON : (log?.reason ?? null);
    const now = clusters.chooseSync(req);
    if (now !== undefined) return { decision: connectChosen(now, name, routeName, reason) };
    return {
      decision: { status: null, flag: '-', reason: null, cluster: name, upstreamHost: null, sourceAddress: null, routeName, dependsOnDns: `cluster ${name} needs a DNS answer for ${d.requestedHost}` },
      later: async () => connectChosen(await clusters.choose(req), name, routeName, reason),
    };
  };
  if (proxy.acl === undefined || nh.ip !== undefined || !proxy.connectPorts.includes(port)) return decide(nh.ip !== undefined ? host : undefined);
  const cached = clusters.dns.peek(host, 'V4_ONLY');
  if (cached !== undefined) return decide(cached[0]);
  const dnsFailed = (message: string): TraceDecision => ({ status: 502, flag: 'DF', reason: 'dns_resolution_failed', cluster: null, upstreamHost: null, sourceAddress: null, routeName: null, detail: message });
  return {
    decision: { status: null, flag: '-', reason: null, cluster: null, upstreamHost: null, sourceAddress: null, routeName: null, dependsOnDns: `the allow/deny list is checked against the address ${host} resolves to` },
    later: async () => {
      const r = await clusters.dns.resolve(host, 'V4_ONLY');
      if (!r.ok) return dnsFailed(r.message);
      const out = decide(r.addresses[0]);
      return out.later ? out.later() : out.decision;
    },
  };
}

function connectChosen(r: ChooseResult, cluster: string, routeName: string | null, passReason: string | null): TraceDecision {
  if (!r.ok) {
    const f = r.failure;
    return { status: connectStatusForFailure(f), flag: f.flag, reason: f.reason, cluster, upstreamHost: f.upstreamHost ?? null, sourceAddress: f.upstreamLocalAddress ?? null, routeName, detail: f.detail };
  }
  const t = r.target;
  return { status: 200, flag: '-', reason: passReason, cluster: t.cluster.name, upstreamHost: t.ip.includes(':') ? `[${t.ip}]:${t.port}` : `${t.ip}:${t.port}`, sourceAddress: t.localAddress ?? null, routeName, detail: t.sourceWhy };
}

/** A TLS-passthrough or TCP connection: the weighted pick and the cluster manager, as tcp-proxy.ts does. */
export function decideL4(clusters: readonly WeightedCluster[], base: Omit<UpstreamRequest, 'cluster'>, manager: ClusterManager): { decision: TraceDecision; later?: () => Promise<TraceDecision> } {
  const picked = pickWeighted(clusters, TRACE_RANDOM());
  if (picked === undefined) return { decision: { status: null, flag: 'NC', reason: 'cluster_not_found', cluster: null, upstreamHost: null, sourceAddress: null, routeName: null, detail: 'tcp filter has no cluster' } };
  const req: UpstreamRequest = { ...base, cluster: picked.name };
  const l4 = (r: ChooseResult): TraceDecision => {
    if (!r.ok) {
      const f = r.failure;
      return { status: null, flag: f.flag, reason: f.reason, cluster: f.cluster ?? picked.name, upstreamHost: f.upstreamHost ?? null, sourceAddress: f.upstreamLocalAddress ?? null, routeName: null, detail: f.detail };
    }
    const t = r.target;
    return { status: null, flag: '-', reason: null, cluster: t.cluster.name, upstreamHost: t.ip.includes(':') ? `[${t.ip}]:${t.port}` : `${t.ip}:${t.port}`, sourceAddress: t.localAddress ?? null, routeName: null, detail: t.sourceWhy };
  };
  const now = manager.chooseSync(req);
  if (now !== undefined) return { decision: l4(now) };
  return {
    decision: { status: null, flag: '-', reason: null, cluster: picked.name, upstreamHost: null, sourceAddress: null, routeName: null, dependsOnDns: `cluster ${picked.name} needs a DNS answer` },
    later: async () => l4(await manager.choose(req)),
  };
}

function parseErrorDecision(e: HttpParseError, reason: string): TraceDecision {
  return { status: e.status, flag: 'DPE', reason, cluster: null, upstreamHost: null, sourceAddress: null, routeName: null, detail: e.message };
}

/** The UpstreamRequest the HTTP engine builds for a forward decision (without retry state). */
function upstreamRequestOf(d: Decision, snapshot: CompiledSnapshot, downstreamIp: string | undefined, peerNamespace: string | undefined, originalDestination: HttpTraceInput['originalDestination']): UpstreamRequest {
  const px = d.proxy;
  return {
    cluster: px === undefined ? d.clusterName! : px.cluster,
    snapshot,
    requestedHost: px === undefined ? d.host : px.requestedHost,
    requestedPort: d.requestedPort,
    originalDestination,
    downstreamIp,
    peerNamespace,
    filterSourceAddress: px?.filterSourceAddress,
    allowAddresses: px?.allowAddresses,
  };
}

function replyDecision(d: Decision): TraceDecision {
  const loc = d.replyHeaders !== undefined && d.replyHeaders[0] === 'location' ? d.replyHeaders[1] : undefined;
  return {
    status: d.status,
    flag: d.flag,
    reason: d.reason ?? null,
    cluster: d.clusterName ?? null,
    upstreamHost: null,
    sourceAddress: null,
    routeName: d.routeName,
    ...(d.detail !== undefined ? { detail: d.detail } : {}),
    ...(loc !== undefined ? { location: loc } : {}),
  };
}

function chosenDecision(d: Decision, r: ChooseResult): TraceDecision {
  const clusterName = d.proxy === undefined ? (d.clusterName ?? null) : typeof d.proxy.cluster === 'string' ? d.proxy.cluster : d.proxy.cluster.name;
  if (!r.ok) {
    const f = r.failure;
    // The engine retries a retryable connect failure when the route's policy says so; the same
    // failure comes back (a DNS or guard outcome does not change between tries), logged F,URX.
    const retry = compileRetry(d.action?.retries);
    const retried = f.retryable && retry.connectFailure && retry.maxTries > 1;
    return { status: statusForFailure(f), flag: retried ? `${f.flag},URX` : f.flag, reason: f.reason, cluster: f.cluster ?? clusterName, upstreamHost: f.upstreamHost ?? null, sourceAddress: f.upstreamLocalAddress ?? null, routeName: d.routeName, detail: f.detail };
  }
  const t = r.target;
  return {
    status: null,
    flag: '-',
    // Report-only mode lets a destination outside the registry pass and says so in the log (as does a dry-run policy).
    reason: d.logReason ?? (d.proxy?.wouldDeny === true ? WOULD_DENY_REASON : null),
    cluster: t.cluster.name,
    upstreamHost: t.ip.includes(':') ? `[${t.ip}]:${t.port}` : `${t.ip}:${t.port}`,
    sourceAddress: t.localAddress ?? null,
    routeName: d.routeName,
    detail: d.logDetail ?? t.sourceWhy,
    forwardedHost: d.upstreamHost,
    forwardedTarget: d.target,
  };
}
