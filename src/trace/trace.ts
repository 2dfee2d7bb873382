/**
 * `trace`: one synthetic request through one proxy's compiled snapshot, using the data plane's own
 * matchers (dataplane/route), reported step by step. On failure: the Envoy-style flag and a hint
 * naming the object to add, found by asking the Model why.
 */
import type { Model, ServerModel } from '../model/build.js';
import { hostMatches, normalizeHost } from '../net/hostname.js';
import { CompiledSnapshot, type CompiledListener, type CompiledVirtualHost } from '../dataplane/route/compile.js';
import { DEFAULT_PATH_NORMALIZATION } from '../dataplane/route/normalize.js';
import { denyOutcome, selectFilterChain, selectVirtualHost, WOULD_DENY_REASON } from '../dataplane/route/select.js';
import { ClusterManager } from '../dataplane/upstream/cluster-manager.js';
import { EgressIpIndex } from '../dataplane/upstream/source-address.js';
import { normalizeServerName } from '../dataplane/listener/tls-inspector.js';
import { decideConnectRequest, decideHttp, decideL4, describeVerdict, TRACE_SOURCE_IP, type HttpTraceInput, type TraceDecision } from './decision.js';
import { connectionRequest, peerOf } from '../dataplane/authz/apply.js';
import { deniedDetail, evaluateAuthz, RBAC_DENIED_REASON } from '../dataplane/authz/evaluate.js';
import { dispatchOriginalDst, virtualOutboundListener } from '../dataplane/route/original-dst.js';
import { parseIp } from '../net/ip.js';
import { chainOf, explainPlan, FilterSharedState } from '../dataplane/http/filter-chain.js';
import { parseClusterName } from '../snapshot/names.js';
import { gatewaysFor, isTerminated } from '../snapshot/generate/gateway.js';
import { describePolicy } from './policy.js';
import type { Cluster, Origin, RouterKernelPlan, Snapshot, WeightedCluster } from '../snapshot/types.js';

export type TraceScheme = 'http' | 'tls' | 'tcp';

export interface TraceRequest {
  readonly scheme: TraceScheme;
  readonly host: string;
  readonly port: number;
  readonly path: string;
  readonly query: string;
  readonly method: string;
  readonly headers: Readonly<Record<string, string>>;
  /** Header lines in order (repeated names allowed); when set, used instead of `headers`. */
  readonly headerLines?: readonly (readonly [string, string])[];
  /** The URL's authority as written (case and port kept): the Host the request carries. */
  readonly authority?: string;
  /** The raw path?query as written (default: path + query). */
  readonly target?: string;
  /** Send the request to the explicit-proxy listener on this port (CONNECT with -X CONNECT, else absolute-form). */
  readonly proxyPort?: number;
  /** SNI for tls:// (default: host). */
  readonly sni?: string;
  /** Caller IP, to find its namespace (EgressIP, sourceNamespace matches). */
  readonly sourceIp?: string;
  /** The caller's mesh identity (`cluster.local/ns/a/sa/sleep`), as if proven on mTLS. */
  readonly sourcePrincipal?: string;
  /** The proxy-wide --source-address, if the proxy would run with one. */
  readonly proxySourceAddress?: string;
  /**
   * Sidecar: the address the app dialed (the captured connection's original destination). Default:
   * the URL host when it is an IP, and the URL port.
   */
  readonly originalDst?: { readonly ip: string; readonly port: number };
}

export interface TraceStep {
  readonly step: string;
  readonly value: string;
  readonly detail?: string;
  readonly origin?: Origin;
}

export interface TraceResult {
  readonly ok: boolean;
  readonly steps: TraceStep[];
  /** Envoy-style response flag on failure: NR, NC, UH, BLOCKED, NL (no listener). */
  readonly flag?: string;
  readonly status?: number;
  readonly reason?: string;
  readonly hint?: string;
  readonly detail?: string;
  /** HTTP: the access-log fields the proxy would write (status, flag, reason, cluster, upstream host, source address). */
  readonly decision?: TraceDecision;
  readonly snapshotVersion: string;
}

/** The proxy's run-time settings that change decisions (`tollgate run` flags of the same names). */
export interface TraceEnv {
  /** Built from --allow-cidr, --source-address, --dns-server; one per trace by default. */
  readonly clusters: ClusterManager;
}

/** `http://host[:port]/path?q`, `tls://host:port`, `tcp://ip:port`. */
export function parseTraceUrl(url: string, method = 'GET', headers: Record<string, string> = {}, sni?: string): TraceRequest {
  const m = /^(https?|tls|tcp):\/\/(\[[^\]]+\]|[^/:?#]+)(?::(\d+))?([^?#]*)(?:\?([^#]*))?$/i.exec(url);
  if (!m) throw new Error(`cannot parse "${url}": expected http://host[:port]/path, tls://host:port or tcp://ip:port`);
  const scheme0 = (m[1] ?? 'http').toLowerCase();
  const scheme: TraceScheme = scheme0 === 'https' ? 'tls' : (scheme0 as TraceScheme);
  const defaultPort = scheme0 === 'http' ? 80 : 443;
  const port = m[3] ? Number(m[3]) : scheme === 'tcp' ? NaN : defaultPort;
  if (!Number.isInteger(port)) throw new Error(`"${url}": tcp:// needs a port`);
  const host = (m[2] ?? '').toLowerCase();
  const authority = `${m[2] ?? ''}${m[3] ? `:${m[3]}` : ''}`;
  const path = m[4] || '/';
  const target = m[5] !== undefined ? `${path}?${m[5]}` : path;
  return { scheme, host, port, path, query: m[5] ?? '', method, headers, authority, target, ...(sni ? { sni } : {}) };
}

/** Synchronous trace: an outcome that needs a DNS answer is reported as depending on DNS. */
export function trace(model: Model, snapshot: Snapshot, req: TraceRequest, compiled = new CompiledSnapshot(snapshot), env?: TraceEnv): TraceResult {
  return locateOrigins(model, traceSteps(model, snapshot, req, compiled, env ?? defaultEnv(compiled)));
}

/** Like trace(), and when the outcome depends on DNS, asks the resolver the proxy would ask (env.clusters). */
export async function traceResolved(model: Model, snapshot: Snapshot, req: TraceRequest, compiled: CompiledSnapshot, env: TraceEnv): Promise<TraceResult> {
  const r = traceSteps(model, snapshot, req, compiled, env);
  const later = (r as { later?: () => Promise<TraceDecision> }).later;
  if (later === undefined) return locateOrigins(model, r);
  const d = await later();
  const steps = r.steps.filter((s) => s.step !== 'depends on DNS');
  if (d.flag === '-') steps.push({ step: 'upstream', value: d.upstreamHost ?? '', detail: `from ${d.sourceAddress ?? 'the OS default address'} (after DNS)` });
  const base = { steps, snapshotVersion: r.snapshotVersion, decision: d };
  return locateOrigins(model, d.flag === '-' ? { ok: true, ...base } : { ok: false, ...base, flag: d.flag, reason: d.reason ?? '', ...(d.status !== null ? { status: d.status } : {}), ...(d.detail !== undefined ? { detail: d.detail } : {}), hint: `${d.reason ?? d.flag}: see docs/errors.md` });
}

export function defaultEnv(compiled: CompiledSnapshot): TraceEnv {
  // Like the CLI without --check-source-addresses: fixed source addresses are assumed assigned.
  const clusters = new ClusterManager({ isLocalAddress: () => true });
  clusters.setSnapshot(compiled);
  return { clusters };
}

function httpInput(req: TraceRequest, listenerPort: number, sourceNamespace: string | undefined, originalDestination: TraceRequest['originalDst']): HttpTraceInput {
  const lines = req.headerLines ?? Object.entries(req.headers).map(([k, v]) => [k, v] as const);
  const authority = req.authority ?? (req.port === 80 ? req.host : `${req.host}:${req.port}`);
  return {
    method: req.method,
    target: req.target ?? (req.query !== '' ? `${req.path}?${req.query}` : req.path),
    headers: lines,
    authority,
    listenerPort,
    ...(req.sourceIp !== undefined ? { downstreamIp: req.sourceIp } : {}),
    ...(req.sourcePrincipal !== undefined ? { sourcePrincipal: req.sourcePrincipal } : {}),
    ...(sourceNamespace !== undefined ? { sourceNamespace } : {}),
    ...(originalDestination !== undefined ? { originalDestination } : {}),
  };
}

/** The host the decision routed on (a Host header overrides the URL's). */
function hostOf(authority: string, req: TraceRequest, fallback: string): string {
  const lines = req.headerLines ?? Object.entries(req.headers);
  const h = lines.find(([n]) => n.toLowerCase() === 'host')?.[1] ?? authority;
  const n = normalizeHost(h.startsWith('[') ? h.slice(0, h.indexOf(']') + 1) : h.replace(/:\d*$/, ''));
  return n.ok ? n.host : fallback;
}

function traceSteps(model: Model, snapshot: Snapshot, req: TraceRequest, compiled: CompiledSnapshot, env: TraceEnv): TraceResult {
  const steps: TraceStep[] = [];
  const fail = (flag: string, reason: string, hint: string, status?: number): TraceResult => ({ ok: false, steps, flag, reason, hint, ...(status !== undefined ? { status } : {}), snapshotVersion: snapshot.version });
  const proxy = snapshot.proxy;
  const normalized = normalizeHost(req.host);
  const host = normalized.ok ? normalized.host : req.host;
  const callerNs = callerNamespace(model, snapshot, req.sourceIp);

  if (snapshot.routerKernel) return traceRouterKernel(snapshot, snapshot.routerKernel, req, steps);

  // 1. listener (a sidecar: captured on the virtual outbound listener, handed to the listener of
  // the original destination exactly as the data plane does)
  const virtual = proxy.role === 'sidecar' ? virtualOutboundListener(compiled) : undefined;
  // An IP in the URL is what the app dialed, unless --original-dst says otherwise.
  if (virtual && req.originalDst === undefined && parseIp(host)) req = { ...req, originalDst: { ip: host, port: req.port } };
  const originalDst = req.originalDst;
  let listener: CompiledListener | undefined;
  if (virtual) {
    const d = dispatchOriginalDst(compiled, virtual, originalDst ?? { ip: '', port: req.port });
    listener = d.listener;
    steps.push({ step: 'listener', value: d.handedOff ? `${virtual.listener.name} -> ${listener.listener.name}` : virtual.listener.name, detail: `captured on ${virtual.listener.name}; ${d.why}` });
  } else {
    listener = compiled.listenerForPort(req.proxyPort ?? req.port);
  }
  if (listener && !virtual) {
    steps.push({ step: 'listener', value: listener.listener.name, ...(listener.listener.origin ? { origin: listener.listener.origin } : {}) });
  }
  if (!listener) {
    return fail('NL', `no listener on port ${req.port}`, noListenerHint(model, snapshot, req.port), undefined);
  }

  // 2. filter chain
  // The SNI as the TLS inspector hands it to the chain match: normalised, never an IP literal.
  let sni: string | undefined;
  if (req.scheme === 'tls') {
    const raw = req.sni ?? (normalized.ok && normalized.ip !== undefined ? undefined : req.host);
    if (raw !== undefined) {
      const n = normalizeServerName(raw);
      if (!n.ok) return fail('DPE', `tls_bad_sni: ${n.detail}`, 'the proxy closes a connection whose ClientHello carries this server name');
      sni = n.name;
    }
  }
  const destinationIp = originalDst?.ip ?? (req.scheme === 'tcp' ? host : undefined);
  const facts = { tls: req.scheme === 'tls', ...(sni ? { sni } : {}), ...(destinationIp !== undefined ? { destinationIp } : {}), ...(originalDst ? { destinationPort: originalDst.port } : {}) };
  const choice = selectFilterChain(listener, facts);
  const denied = (flag: string, reason: string): TraceDecision => ({ status: null, flag, reason, cluster: null, upstreamHost: null, sourceAddress: null, routeName: null });
  // Plaintext on a listener whose chains need TLS: the listener's TLS inspector reports it, and a
  // connection no chain takes is logged as that failure (listener.ts afterPeek).
  const inspectorFailure = req.scheme !== 'tls' && listener.needsTlsInspector ? TLS_NOT_TLS : undefined;
  if (!choice.chain) {
    const outcome = denyOutcome(undefined, facts, inspectorFailure);
    const hint = outcome.reason === TLS_NOT_TLS ? plaintextHint(model, snapshot, sni ?? host, req.port) : `no route for ${sni ?? host}:${req.port} on this proxy`;
    return { ...fail(outcome.flag, `${outcome.reason}: no filter chain matches on ${listener.listener.name} (${choice.why})`, hint), decision: denied(outcome.flag, outcome.reason) };
  }
  const chain = choice.chain;
  steps.push({ step: 'filter chain', value: `${chain.name} (${chain.filter.type})`, detail: choice.why, ...(chain.origin ? { origin: chain.origin } : {}) });
  const filter = chain.filter;

  if (filter.type === 'deny') {
    const outcome = denyOutcome(chain, { tls: req.scheme === 'tls', ...(sni ? { sni } : {}) }, inspectorFailure);
    const blocked = outcome.flag === 'BLOCKED';
    return { ...fail(outcome.flag, `${outcome.reason}: ${filter.detail}`, blocked ? registryHint(model, host, req.port, req.scheme) : denyHint(model, snapshot, outcome.reason, sni ?? host, req.port)), decision: denied(outcome.flag, outcome.reason) };
  }
  if (filter.type === 'explicit_proxy') {
    steps.push({ step: 'explicit proxy', value: filter.statPrefix, detail: `CONNECT/absolute-form requests are checked against ${filter.acl ? 'the router allow/deny list' : 'the registry'}` });
    if (req.proxyPort !== undefined) {
      // The request as a proxy client sends it: CONNECT host:port, or an absolute-form URL.
      const authority = req.authority ?? `${req.host}:${req.port}`;
      const connect = req.method === 'CONNECT';
      const target = connect ? authority : `${req.scheme === 'tls' ? 'https' : 'http'}://${authority}${req.target ?? req.path}`;
      const input = { ...httpInput(req, listener.listener.port, callerNs, originalDst), target, authority };
      const { decision, later } = connect
        ? decideConnectRequest(compiled, filter, input, env.clusters)
        : decideHttp(compiled, { proxy: filter, listenerName: listener.listener.name, chainName: chain.name }, input, env.clusters);
      steps.push({ step: connect ? 'CONNECT' : 'absolute-form', value: target });
      return withDecision(undefined, decision, later, model, req, host, snapshot, undefined, fail, steps);
    }
    // What the proxy decides per request (the same functions as the data plane: route/select.ts).
    if (filter.acl) {
      const list = filter.acl.map((e) => `${e.deny ? '!' : ''}${e.pattern}`);
      steps.push({ step: 'allow/deny list', value: list.length > 0 ? list.join(', ') : '(empty: everything refused)', detail: `first match decides (names against the host, IP/CIDR against its address), no match -> 403 acl_no_match; CONNECT only to port ${filter.connectPorts.join(', ')}; http:// targets on any port, forwarded from ${filter.sourceAddress ?? 'the OS default address'}` });
    } else {
      steps.push({
        step: 'registry rule',
        value: 'a ServiceEntry must declare host and port',
        detail: `CONNECT host:port: port in ${filter.connectPorts.join(', ')} and declared (else 403 connect_port_not_allowed / connect_not_in_registry); absolute-form http://host[:port]/: host:port declared (port 80 when omitted; else 403 proxy_not_in_registry), TLS/HTTPS ports only with TLS origination (403 proxy_tls_not_originated); forwarded origin-form with Host = the target authority`,
      });
      if (filter.reportOnly === true) {
        steps.push({ step: 'outbound mode', value: 'report-only', detail: `hosts outside the registry are passed as ALLOW_ANY would (SSRF guard and source address still apply) and logged as ${WOULD_DENY_REASON} instead of 403` });
      }
    }
    return { ok: true, steps, snapshotVersion: snapshot.version };
  }

  let clusters: readonly WeightedCluster[];
  if (filter.type === 'http') {
    // A chain that terminates TLS (Gateway tls SIMPLE/MUTUAL) takes https:// (tls) requests: the
    // HTTP inside is routed as the connection manager routes it, with the connection's SNI.
    // Mesh mTLS (ISTIO_MUTUAL, PeerAuthentication): an https:// request stands for the mTLS connection.
    const meshTls = chain.mtls !== undefined && req.scheme === 'tls';
    const terminated = chain.tls !== undefined || meshTls;
    if (chain.mtls === 'STRICT' && req.scheme === 'http') return fail('NR', `filter chain ${chain.name} is mTLS STRICT: a plaintext request is refused (mtls_required)`, 'trace https:// with --source-principal, as a mesh caller connects');
    if (req.scheme !== 'http' && !(terminated && req.scheme === 'tls')) return fail('NR', `listener ${listener.listener.name} speaks HTTP but the request is ${req.scheme}`, 'use http:// for this port, or route the port with a tls/tcp route');
    const table = compiled.routeTables.get(filter.routeConfigName);
    steps.push({ step: 'route table', value: filter.routeConfigName });
    if (meshTls) steps.push({ step: 'tls', value: `mesh mTLS (${chain.mtls ?? ''}), peer ${req.sourcePrincipal ?? '(none given: --source-principal)'}`, detail: 'terminated with the workload certificate; the client must present a certificate from the mesh CA' });
    else if (terminated) steps.push({ step: 'tls', value: `terminated (${chain.tls?.mode ?? ''})`, detail: `SNI ${sni ?? '(none)'}; the HTTP inside is routed by its Host` });
    const input = { ...httpInput(req, listener.listener.port, callerNs, originalDst), ...(terminated ? { tls: true, ...(sni !== undefined ? { sni } : {}) } : {}) };
    const { decision, later } = decideHttp(compiled, { table: filter.routeConfigName, filter }, input, env.clusters);
    const level = snapshot.policy.pathNormalization ?? DEFAULT_PATH_NORMALIZATION;
    const vh = table !== undefined && decision.flag !== 'DPE' ? selectVirtualHost(table, hostOf(input.authority, req, host)) : undefined;
    if (vh) steps.push({ step: 'virtual host', value: vh.vhost.name, detail: `domains ${vh.vhost.domains.slice(0, 4).join(', ')}${vh.vhost.domains.length > 4 ? ', ...' : ''}`, ...(vh.vhost.origin ? { origin: vh.vhost.origin } : {}) });
    const route = vh?.routes.find((r) => r.route.name === decision.routeName);
    if (route) {
      steps.push({ step: 'path', value: decision.forwardedTarget ?? req.path, detail: `path normalisation ${level}; the normalised path is matched and forwarded` });
      steps.push({ step: 'route', value: route.route.name, detail: describeMatch(route.route.match), ...(route.route.origin ? { origin: route.route.origin } : {}) });
      const action = route.route.action;
      if (action.type === 'forward') {
        if (action.hostRewrite) steps.push({ step: 'host rewrite', value: action.hostRewrite });
        if (action.timeoutMs !== undefined) steps.push({ step: 'timeout', value: `${action.timeoutMs} ms` });
      }
      // Each HTTP filter of the listener's chain says what it does on this route, from the
      // per-route config the data plane compiled (fault, rate limit, header mutation, mirror, router...).
      const plan = chainOf(compiled, filter, new FilterSharedState()).plan(route.route);
      for (const e of explainPlan(plan)) steps.push({ step: `http filter ${e.filter}`, value: e.text, detail: FILTER_NOTES[e.filter] ?? 'http filter' });
    }
    if (decision.location !== undefined) steps.push({ step: 'redirect', value: `${decision.status ?? ''} to ${decision.location}` });
    if (route?.route.action.type === 'forward') {
      clusters = route.route.action.clusters;
      return withDecision(describeClusters(model, clusters, compiled, snapshot, req, sni, host, steps, fail), decision, later, model, req, host, snapshot, vh, fail, steps);
    }
    return withDecision(undefined, decision, later, model, req, host, snapshot, vh, fail, steps);
  } else {
    clusters = filter.clusters;
    // A TLS/TCP Gateway server with ISTIO_MUTUAL: tls:// stands for the mTLS connection, as for HTTP chains.
    if (chain.mtls === 'STRICT' && req.scheme !== 'tls') return fail('NR', `filter chain ${chain.name} is mTLS STRICT: a plaintext connection is refused (mtls_required)`, 'trace tls:// with --source-principal, as a mesh caller connects');
    if (chain.mtls === 'STRICT') steps.push({ step: 'tls', value: `mesh mTLS (STRICT), peer ${req.sourcePrincipal ?? '(none given: --source-principal)'}`, detail: 'terminated with the workload certificate; the stream inside (the client\'s own TLS) is forwarded as is' });
    if (filter.routeName) steps.push({ step: 'route', value: filter.routeName, ...(chain.origin ? { origin: chain.origin } : {}) });
    const policies = snapshot.policy.authorization;
    if (policies !== undefined) {
      const sourceIp = req.sourceIp ?? TRACE_SOURCE_IP;
      const verdict = evaluateAuthz(policies, connectionRequest({ remoteAddress: sourceIp, localAddress: originalDst?.ip ?? '', destinationPort: originalDst?.port ?? listener.listener.port, sni: sni ?? null, ...peerOf(req.sourcePrincipal) }));
      steps.push({ step: 'authorization', value: describeVerdict(verdict, sourceIp), detail: 'AuthorizationPolicies of this proxy, evaluated as the TCP proxy does (HTTP-only fields: an ALLOW rule with them never matches, a DENY rule ignores them)' });
      if (!verdict.allowed) return { ...fail('-', RBAC_DENIED_REASON, 'the connection is closed before anything is dialed; see the policy named above'), detail: deniedDetail(verdict) };
    }
  }
  const broken = describeClusters(model, clusters, compiled, snapshot, req, sni, host, steps, fail);
  // The connection's outcome, as tcp-proxy.ts gets it from the cluster manager.
  const l4 = decideL4(clusters, { snapshot: compiled, requestedHost: sni, requestedPort: listener.listener.port, originalDestination: originalDst, downstreamIp: req.sourceIp, peerNamespace: peerOf(req.sourcePrincipal).sourceNamespace }, env.clusters);
  return withDecision(broken, l4.decision, l4.later, model, req, host, snapshot, undefined, fail, steps);
}

/** What trace adds to a filter's own explanation: how its outcome shows, and why trace cannot say more. */
const FILTER_NOTES: Readonly<Record<string, string>> = {
  fault: 'drawn per request; trace shows the request that is not aborted or delayed unless the percentage is 100',
  local_ratelimit: 'token bucket per route and proxy process (tollgate.io/local-rate-limit); trace cannot see how full it is',
  mirror: 'the copy never changes the answer to the client',
};

type Fail = (flag: string, reason: string, hint: string, status?: number) => TraceResult;

/** Steps for every weighted destination (the data plane picks one per request); a failure result for the first broken one. */
function describeClusters(model: Model, clusters: readonly WeightedCluster[], compiled: CompiledSnapshot, snapshot: Snapshot, req: TraceRequest, sni: string | undefined, host: string, steps: TraceStep[], fail: Fail): TraceResult | undefined {

  // 3. clusters and endpoints (every weighted destination is shown; the data plane picks one per request)
  const total = clusters.reduce((a, c) => a + c.weight, 0);
  let failure: TraceResult | undefined;
  for (const wc of clusters) {
    const share = clusters.length > 1 ? ` (weight ${wc.weight}${total > 0 ? `, ${Math.round((wc.weight * 100) / total)}%` : ''})` : '';
    const cluster = compiled.clusters.get(wc.name);
    if (!cluster) {
      steps.push({ step: 'cluster', value: `${wc.name}${share}`, detail: 'MISSING' });
      failure ??= fail('NC', `cluster ${wc.name} does not exist`, noClusterHint(model, wc.name), 503);
      continue;
    }
    steps.push({ step: 'cluster', value: `${cluster.name}${share}`, detail: `${cluster.type}${cluster.tls ? `, TLS ${cluster.tls.mode}${cluster.tls.sni ? ` sni ${cluster.tls.sni}` : ''}` : ''}${cluster.http2 === true ? ', upstream HTTP/2' : ''}; ${cluster.description ?? ''}`, ...(cluster.origin ? { origin: cluster.origin } : {}) });
    const policy = describePolicy(cluster);
    steps.push({ step: 'policy', value: policy.value, detail: policy.detail });
    const eps = compiled.endpoints.get(cluster.name)?.endpoints ?? [];
    const originalDst = req.originalDst;
    if (cluster.type === 'ORIGINAL_DST' && originalDst) {
      steps.push({ step: 'endpoints', value: `${originalDst.ip}:${originalDst.port}`, detail: `the original destination of the captured connection${cluster.explicitAddresses ? '' : ', checked by the SSRF guard'}` });
    } else if (cluster.type === 'ORIGINAL_DST') {
      const target = req.scheme === 'tls' ? `${sni ?? host}:${req.port}` : `${host}:${req.port}`;
      steps.push({ step: 'endpoints', value: target, detail: 'resolution NONE: the host the client asked for, resolved by DNS at connect time and checked by the SSRF guard' });
    } else if (eps.length === 0) {
      steps.push({ step: 'endpoints', value: 'none' });
      failure ??= fail('UH', `cluster ${cluster.name} has no endpoints`, noEndpointHint(model, cluster), 503);
      continue;
    } else {
      const dns = cluster.type === 'STRICT_DNS' || cluster.type === 'LOGICAL_DNS';
      steps.push({ step: 'endpoints', value: eps.map((e) => `${e.address}:${e.port}`).join(', '), detail: dns ? 'resolved by DNS at connect time (TTL respected), then checked by the SSRF guard' : `${cluster.lbPolicy}` });
    }
    if (cluster.allowPrivateAddresses !== undefined) steps.push({ step: 'SSRF exemption', value: cluster.allowPrivateAddresses.join(', '), detail: 'tollgate.io/allow-private-addresses: DNS answers in these ranges pass the SSRF guard when they are private or CGNAT addresses', ...(cluster.origin ? { origin: cluster.origin } : {}) });
    steps.push({ step: 'source address', value: sourceAddressOf(cluster, snapshot, req) });
  }
  return failure;
}

/** The HTTP result is the decision the data plane would log; the steps above explain it. */
function withDecision(
  clusterFailure: TraceResult | undefined,
  decision: TraceDecision,
  later: (() => Promise<TraceDecision>) | undefined,
  model: Model,
  req: TraceRequest,
  host: string,
  snapshot: Snapshot,
  vh: CompiledVirtualHost | undefined,
  fail: Fail,
  steps: TraceStep[],
): TraceResult {
  // The decision names the destination actually used; the cluster steps explain every one. A
  // weighted destination that is broken but never picked is still worth the hint.
  if (decision.flag === '-' && decision.dependsOnDns === undefined && clusterFailure !== undefined && clusterFailure.flag !== decision.flag) steps.push({ step: 'note', value: `another destination would fail: ${clusterFailure.flag} ${clusterFailure.reason ?? ''}`, ...(clusterFailure.hint !== undefined ? { detail: clusterFailure.hint } : {}) });
  if (decision.authz !== undefined) steps.push({ step: 'authorization', value: decision.authz, detail: 'AuthorizationPolicies of this proxy, evaluated as the rbac filter does (CUSTOM, DENY, then ALLOW)' });
  if (decision.dependsOnDns !== undefined) steps.push({ step: 'depends on DNS', value: decision.dependsOnDns, detail: 'pass --dns-server HOST:PORT (the proxy\'s resolver) to see the outcome' });
  else if (decision.flag === '-' && decision.upstreamHost !== null) steps.push({ step: 'upstream', value: decision.upstreamHost, detail: `from ${decision.sourceAddress ?? 'the OS default address'}${decision.detail ? ` (${decision.detail})` : ''}; Host ${decision.forwardedHost ?? ''}, target ${decision.forwardedTarget ?? ''}` });
  const result: TraceResult =
    decision.flag === '-' && decision.reason !== RBAC_DENIED_REASON
      ? { ok: true, steps, ...(decision.status !== null ? { status: decision.status } : {}), snapshotVersion: snapshot.version, decision }
      : { ...fail(decision.flag, decision.reason ?? '', hintFor(model, snapshot, decision, req, host, vh), decision.status ?? undefined), ...(decision.detail !== undefined ? { detail: decision.detail } : {}), decision };
  return later !== undefined ? Object.defineProperty(result, 'later', { value: later, enumerable: false }) : result;
}

function hintFor(model: Model, snapshot: Snapshot, d: TraceDecision, req: TraceRequest, host: string, vh: CompiledVirtualHost | undefined): string {
  switch (d.reason) {
    case 'route_not_found':
      return vh === undefined ? noVhostHint(model, snapshot, host, req.port) : `add an http route (or a match) for this request to ${vh.vhost.origin ? `${vh.vhost.origin.kind} ${vh.vhost.origin.name}` : 'the VirtualService'}`;
    case 'registry_only':
      return registryHint(model, host, req.port, 'http');
    case 'cluster_not_found':
      return noClusterHint(model, d.cluster ?? '');
    case 'no_healthy_upstream': {
      const c = snapshot.clusters.find((x) => x.name === d.cluster);
      return c !== undefined ? noEndpointHint(model, c) : 'the cluster has no usable endpoint';
    }
    case 'ssrf_denied':
      return 'the address is loopback/private/link-local/metadata/CGNAT; the detail says what allows it: the ServiceEntry annotation tollgate.io/allow-private-addresses for a private/CGNAT answer of its host, the proxy\'s --allow-cidr otherwise';
    case 'source_address_unavailable':
      return 'the fixed source address is not assigned on this host: assign it, or remove it from the EgressIP / egress router / --source-address';
    case 'fault_abort':
      return 'the VirtualService injects this abort (fault.abort)';
    case 'encoded_slash_in_path':
      return 'the path contains an escaped slash: send it unescaped, or use DECODE_AND_MERGE_SLASHES in the mesh config';
    default:
      return d.flag === 'DPE' ? `the proxy's HTTP parser refuses this request (${d.detail ?? d.reason ?? ''})` : `${d.reason ?? d.flag}: see docs/errors.md`;
  }
}

/** Snapshot origins carry the resource line and a field path; trace has the config, so it shows the field's own line. */
export function locateOrigins(model: Model, result: TraceResult): TraceResult {
  const steps = result.steps.map((s) => {
    const o = s.origin;
    if (!o?.path) return s;
    const r = model.resources.find((x) => x.ref.kind === o.kind && x.name === o.name && x.namespace === o.namespace && x.ref.pos.file === o.file);
    return r ? { ...s, origin: { ...o, line: r.doc.lineOf(o.path) } } : s;
  });
  return { ...result, steps };
}

function callerNamespace(model: Model, snapshot: Snapshot, ip: string | undefined): string | undefined {
  if (!ip) return undefined;
  for (const rule of snapshot.policy.egressIps) if (rule.callerNamespaces[ip]) return rule.callerNamespaces[ip];
  return model.workloads.find((w) => w.ip === ip)?.namespace;
}

/** Kernel (init) mode: the nftables rules the router installs (dataplane/kernel/nft-router.ts), in their order. */
function traceRouterKernel(snapshot: Snapshot, plan: RouterKernelPlan, req: TraceRequest, steps: TraceStep[]): TraceResult {
  const done = { snapshotVersion: snapshot.version };
  steps.push({ step: 'datapath', value: 'kernel (nftables DNAT + SNAT)', detail: 'EGRESS_ROUTER_MODE init: packets are forwarded by the kernel; Tollgate only keeps the rules in place', ...(plan.origin ? { origin: plan.origin } : {}) });
  const rule = plan.rules.find((r) => r.port === req.port && r.protocol === 'tcp'); // every trace scheme is TCP
  if (rule) {
    steps.push({ step: 'rule', value: rule.name, detail: `EGRESS_DESTINATION line ${rule.line}: DNAT to ${rule.destination}:${rule.destinationPort}`, ...(plan.origin ? { origin: { ...plan.origin, line: rule.line } } : {}) });
  } else if (plan.fallback) {
    steps.push({ step: 'rule', value: plan.fallback.name, detail: `no line for port ${req.port}; the fallback (line ${plan.fallback.line}) DNATs to ${plan.fallback.destination}:${req.port}`, ...(plan.origin ? { origin: { ...plan.origin, line: plan.fallback.line } } : {}) });
  } else {
    return { ok: false, steps, flag: 'NR', reason: 'router_no_rule', hint: `add "${req.port} tcp <destination-ip>" to EGRESS_DESTINATION, or a bare fallback IP line`, ...done };
  }
  steps.push({ step: 'source address', value: `${plan.source} (SNAT to EGRESS_SOURCE)${plan.gateway ? `, default route via ${plan.gateway}` : ''}` });
  return { ok: true, steps, ...done };
}

/** The precedence documented in docs/source-address.md. */
function sourceAddressOf(cluster: Cluster, snapshot: Snapshot, req: TraceRequest): string {
  if (cluster.sourceAddress) return `${cluster.sourceAddress} (destination: ${cluster.origin ? `${cluster.origin.kind} ${cluster.origin.name}` : cluster.name})`;
  const pool = cluster.sourceAddressPool;
  if (pool) {
    const floating = pool.filter((a) => snapshot.managedAddresses?.some((m) => m.address === a));
    const what = pool.length === 0 ? 'none for this replica: connections fail closed (source_address_unavailable)' : `the first of ${pool.join(', ')} assigned here`;
    return `${what} (pool: ${cluster.origin ? `${cluster.origin.kind} ${cluster.origin.name}` : cluster.name}${floating.length > 0 ? '; floating: only while this replica holds the lease' : ''})`;
  }
  // The data plane's own lookup: the namespace a peer certificate proves, else the caller's pod IP.
  const peerNamespace = peerOf(req.sourcePrincipal).sourceNamespace;
  const rule = new EgressIpIndex(snapshot.policy.egressIps).ruleFor(req.sourceIp, peerNamespace);
  if (rule) {
    const caller = peerNamespace !== undefined ? `mTLS peer namespace ${peerNamespace}` : `caller namespace ${rule.callerNamespaces[req.sourceIp ?? ''] ?? ''}`;
    return `${rule.sourceAddresses.join(' or ')} (${caller}: ${rule.name.startsWith('NetNamespace ') ? rule.name : `EgressIP ${rule.name}`})`;
  }
  if (req.proxySourceAddress) return `${req.proxySourceAddress} (proxy-wide --source-address)`;
  return 'OS default (no fixed source address applies)';
}

function describeMatch(m: object): string {
  const parts = Object.entries(m).map(([k, v]) => `${k} ${JSON.stringify(v)}`);
  return parts.length > 0 ? `match ${parts.join(', ')}` : 'matches any request';
}

// ----------------------------------------------------------------------------------------------
// Hints: ask the model why, and name the object to add.

function inRegistry(model: Model, host: string, port?: number): boolean {
  return model.registry.lookup(host).some((s) => port === undefined || s.ports.some((p) => p.number === port));
}

function registryHint(model: Model, host: string, port: number, scheme: TraceScheme): string {
  const proto = scheme === 'http' ? 'HTTP' : scheme === 'tls' ? 'TLS' : 'TCP';
  const known = model.registry.lookup(host)[0];
  const base = known
    ? `${host} is in the registry (${known.resource.ref.kind} ${known.resource.name}) but not on port ${port}: add port ${port}/${proto} to it`
    : `${host} is not in the registry: add a ServiceEntry with hosts [${host}] and port ${port}/${proto}`;
  return `${base}. Tollgate's outbound policy is REGISTRY_ONLY; Istio's default ALLOW_ANY would have sent this straight out, bypassing any egress gateway`;
}

function noListenerHint(model: Model, snapshot: Snapshot, port: number): string {
  const p = snapshot.proxy;
  if (p.role === 'gateway') {
    const sel = Object.entries(p.labels).map(([k, v]) => `${k}: ${v}`).join(', ');
    const gws = gatewaysFor(model, p);
    return gws.length === 0
      ? `no Gateway selects this proxy's labels {${sel}}: add a Gateway with that selector and a server on port ${port}`
      : `Gateway ${gws.map((g) => g.resource.name).join(', ')} has no server on port ${port}: add one (until then, connections to the port are refused or reset)`;
  }
  if (p.role === 'router') return `the egress router has no rule and no fallback for port ${port}: add "${port} tcp <destination-ip>" to EGRESS_DESTINATION, or list the port in the router's Service with a fallback line`;
  return `no listener for port ${port}`;
}

function noVhostHint(model: Model, snapshot: Snapshot, host: string, port: number): string {
  const gws = gatewaysFor(model, snapshot.proxy);
  const vsHint = `add a VirtualService with hosts [${host}] and gateways [${gws.map((g) => g.resource.name).join(', ') || '<gateway>'}] and an http route`;
  const servesHost = gws.some((g) => g.servers.some((s) => s.server.port.number === port && s.hosts.some((h) => hostMatches(h.host, host))));
  const serverHint = servesHost ? '' : `; also list ${host} in the Gateway server hosts for port ${port}`;
  const regHint = inRegistry(model, host) ? '' : `; ${host} is not in the registry either: add a ServiceEntry for it`;
  return `${vsHint}${serverHint}${regHint} (until then, the gateway answers 404: it serves the port but routes no such host)`;
}

function denyHint(model: Model, snapshot: Snapshot, reason: string, name: string, port: number): string {
  if (reason === TLS_NOT_TLS) return plaintextHint(model, snapshot, name, port);
  if (reason === 'sni_missing') return `port ${port} routes TLS by its SNI and this ClientHello has none: connect by name (tls://<host>:${port}), not by address`;
  if (reason === 'sni_not_routed') {
    const { mesh, passthrough } = tlsServersOn(model, snapshot, port);
    const hints: string[] = [];
    // tls routes (sniHosts) apply only to PASSTHROUGH servers: a mesh server routes what is inside its mTLS.
    if (mesh.length > 0) hints.push(`${meshServerHint(mesh, name, port)}; the caller originates Istio mTLS with SNI ${name} (${MESH_CALLER})`);
    if (passthrough.length > 0 || mesh.length === 0) hints.push(`add a tls route with match port ${port} and sniHosts [${name}] to a VirtualService bound to this Gateway, and list ${name} in the Gateway's PASSTHROUGH server hosts${inRegistry(model, name, port) ? '' : `; and a ServiceEntry with hosts [${name}] port ${port}/TLS`}`);
    return hints.join('; or, for plain TLS passed through: ');
  }
  if (reason === 'router_no_rule') return `add "${port} tcp <destination-ip>" to EGRESS_DESTINATION or a fallback IP line`;
  return `${reason}: see docs/errors.md (proxy ${snapshot.proxy.role})`;
}

const TLS_NOT_TLS = 'tls_not_tls';
const MESH_CALLER = 'a DestinationRule for the gateway with trafficPolicy.tls.mode ISTIO_MUTUAL, or a sidecar';

interface PortServer {
  readonly gateway: string;
  readonly server: ServerModel;
}

/** The Gateway servers on `port` that route TLS by SNI: mesh (ISTIO_MUTUAL, any protocol) and PASSTHROUGH. */
function tlsServersOn(model: Model, snapshot: Snapshot, port: number): { mesh: PortServer[]; passthrough: PortServer[] } {
  const servers = gatewaysFor(model, snapshot.proxy).flatMap((gw) => gw.servers.filter((s) => s.server.port.number === port).map((server) => ({ gateway: gw.resource.name, server })));
  return {
    mesh: servers.filter(({ server }) => server.server.tls?.mode === 'ISTIO_MUTUAL'),
    passthrough: servers.filter(({ server }) => (server.protocol === 'TLS' || server.protocol === 'HTTPS') && !isTerminated(server)),
  };
}

/** An HTTPS mesh server routes the HTTP inside the mTLS; a TLS or TCP one, the stream inside (a tcp route). */
const meshRouteKind = (s: PortServer, port: number): string => (s.server.protocol === 'HTTPS' ? 'an http route' : `a tcp route with match port ${port}`);

/** What makes `name` routed on a mesh server: its hosts, then a route for the port. */
function meshServerHint(mesh: readonly PortServer[], name: string, port: number): string {
  const serving = mesh.find(({ server }) => server.hosts.some((h) => hostMatches(h.host, name)));
  const s = serving ?? mesh[0];
  if (!s) return '';
  const route = `${meshRouteKind(s, port)} in a VirtualService with hosts [${name}] bound to Gateway ${s.gateway}`;
  return serving ? `port ${port} is a mesh (ISTIO_MUTUAL) server for ${name}: add ${route}` : `port ${port} is a mesh (ISTIO_MUTUAL) server: list ${name} in its hosts (Gateway ${s.gateway}) and add ${route}`;
}

/** Plaintext sent to a port whose chains need TLS: what the caller must send instead. */
function plaintextHint(model: Model, snapshot: Snapshot, name: string, port: number): string {
  const mesh = tlsServersOn(model, snapshot, port).mesh[0];
  if (mesh) {
    const scheme = mesh.server.protocol === 'HTTPS' ? 'https' : 'tls';
    return `port ${port} is a mesh (ISTIO_MUTUAL) server of Gateway ${mesh.gateway}: it takes only Istio mTLS from a mesh workload and closes plaintext. The caller must originate the mTLS: ${MESH_CALLER}; trace that connection as ${scheme}://${name}:${port} --source-principal <caller identity>`;
  }
  return `port ${port} takes only TLS and this connection is plaintext: send TLS with SNI ${name} (trace tls://${name}:${port}), or use a port served as plain HTTP or TCP`;
}

function noClusterHint(model: Model, name: string): string {
  const parsed = parseClusterName(name);
  if (!parsed) return `nothing defines cluster ${name}`;
  const services = model.registry.lookup(parsed.host);
  if (services.length === 0) return `${parsed.host} is not in the registry: add a ServiceEntry with hosts [${parsed.host}] and port ${parsed.port} (until then, requests for it get 503)`;
  if (!services.some((s) => s.ports.some((p) => p.number === parsed.port))) return `${parsed.host} does not declare port ${parsed.port}: add it to ${services[0]?.resource.ref.kind} ${services[0]?.resource.name}`;
  if (parsed.subset) return `subset "${parsed.subset}" of ${parsed.host} is not defined: add a DestinationRule for ${parsed.host} with that subset`;
  return `cluster ${name} was not generated`;
}

function noEndpointHint(model: Model, cluster: Cluster): string {
  const svc = model.registry.lookup(cluster.serviceHost)[0];
  if (svc?.kubernetes) return `Service ${svc.resource.name} has no endpoints in the config: add Endpoints/EndpointSlice, or Pods with status.podIP matching its selector`;
  return `${cluster.serviceHost} has no endpoints: add spec.endpoints to the ServiceEntry (resolution STATIC), or use resolution DNS`;
}
