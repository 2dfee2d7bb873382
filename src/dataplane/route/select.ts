/**
 * The routing decisions, as pure functions over compiled snapshots: which filter chain takes a
 * connection, which virtual host and route take a request, which weighted cluster is picked.
 * Hot path: no allocation beyond what the caller passes in, regexes precompiled.
 */
import { cidrContains, ipEquals, parseCidr, parseIp, type Cidr, type Ip } from '../../net/ip.js';
import { hostMatches } from '../../net/hostname.js';
import type { Cluster, FilterChain, WeightedCluster } from '../../snapshot/types.js';
import type { CompiledListener, CompiledRoute, CompiledRouteTable, CompiledStringMatcher, CompiledVirtualHost } from './compile.js';

export interface ConnectionFacts {
  /** SNI from the ClientHello (normalised: lower case, no trailing dot). */
  readonly sni?: string;
  /** Whether the first bytes were a TLS ClientHello. */
  readonly tls: boolean;
  /** Original destination IP (sidecar capture, or the listener's local address). */
  readonly destinationIp?: string;
  /** Original destination port (sidecar capture, or the listener's local port). */
  readonly destinationPort?: number;
}

const ONLY_CHAIN = 'the only chain that matches any connection';

export interface ChainChoice {
  readonly chain: FilterChain | undefined;
  /** How the choice was made, for trace: "server name edition.cnn.com", "default chain", ... */
  readonly why: string;
}

const cidrCache = new Map<string, Cidr | undefined>();
function cidr(s: string): Cidr | undefined {
  let c = cidrCache.get(s);
  if (c === undefined && !cidrCache.has(s)) {
    c = parseCidr(s);
    cidrCache.set(s, c);
  }
  return c;
}

/** Bounds the choices a listener remembers by SNI: a client picks the SNI, so it must not grow memory without end. */
const MAX_REMEMBERED_CHOICES = 1024;
/** The key of a connection that did not speak TLS (no SNI can contain a space). */
const NOT_TLS = ' raw';

/**
 * Envoy's filter chain match order: destination port, destination prefix (longest), then server name (exact over
 * the longest wildcard), then transport protocol; chains without a criterion match anything.
 * Where the choice depends only on the SNI (and TLS or not), it is made once per SNI and reused.
 */
export function selectFilterChain(listener: CompiledListener, facts: ConnectionFacts): ChainChoice {
  const remembered = listener.choicesBySni;
  if (remembered === undefined) return chooseFilterChain(listener, facts);
  const key = facts.tls ? (facts.sni ?? '') : NOT_TLS;
  let choice = remembered.get(key);
  if (choice === undefined) {
    choice = chooseFilterChain(listener, facts);
    if (remembered.size < MAX_REMEMBERED_CHOICES) remembered.set(key, choice);
  }
  return choice;
}

function chooseFilterChain(listener: CompiledListener, facts: ConnectionFacts): ChainChoice {
  if (listener.onlyChain !== undefined) return { chain: listener.onlyChain, why: ONLY_CHAIN };
  const chains = listener.listener.filterChains;
  let candidates: FilterChain[] = [...chains];
  let why: string[] = [];

  // 0. destination port
  if (listener.needsDestinationPort) {
    const byPort = candidates.filter((c) => c.match.destinationPort !== undefined && c.match.destinationPort === facts.destinationPort);
    if (byPort.length > 0) {
      candidates = byPort;
      why.push(`destination port ${facts.destinationPort}`);
    } else {
      candidates = candidates.filter((c) => c.match.destinationPort === undefined);
    }
  }

  // 1. destination prefixes
  const dst: Ip | undefined = facts.destinationIp !== undefined ? parseIp(facts.destinationIp) : undefined;
  let bestLen = -1;
  let byPrefix: FilterChain[] = [];
  for (const c of candidates) {
    const prefixes = c.match.destinationPrefixes;
    if (!prefixes || prefixes.length === 0) continue;
    for (const p of prefixes) {
      const pc = cidr(p);
      if (!pc || !dst || !cidrContains(pc, dst)) continue;
      if (pc.prefix > bestLen) {
        bestLen = pc.prefix;
        byPrefix = [c];
      } else if (pc.prefix === bestLen && !byPrefix.includes(c)) byPrefix.push(c);
    }
  }
  if (byPrefix.length > 0) {
    candidates = byPrefix;
    why.push(`destination ${facts.destinationIp} in ${byPrefix[0]?.match.destinationPrefixes?.join(',')}`);
  } else {
    candidates = candidates.filter((c) => !c.match.destinationPrefixes || c.match.destinationPrefixes.length === 0);
  }

  // 2. server names
  const sni = facts.sni;
  let exact: FilterChain | undefined;
  let wildcard: { chain: FilterChain; len: number } | undefined;
  for (const c of candidates) {
    for (const n of c.match.serverNames ?? []) {
      if (sni === undefined) continue;
      if (n === sni) exact ??= c;
      else if (n.startsWith('*') && hostMatches(n, sni) && (!wildcard || n.length > wildcard.len)) wildcard = { chain: c, len: n.length };
    }
  }
  const named = exact ?? wildcard?.chain;
  if (named) {
    candidates = [named];
    why.push(`server name ${sni} matches ${exact ? 'exactly' : 'a wildcard'}`);
  } else {
    candidates = candidates.filter((c) => !c.match.serverNames || c.match.serverNames.length === 0);
  }

  // 3. transport protocol
  const proto = facts.tls ? 'tls' : 'raw_buffer';
  const chosen = candidates.find((c) => c.match.transportProtocol === proto) ?? candidates.find((c) => c.match.transportProtocol === undefined);
  if (chosen) {
    if (why.length === 0) why = [ONLY_CHAIN];
    return { chain: chosen, why: why.join('; ') };
  }
  const def = listener.listener.defaultFilterChain;
  return def ? { chain: def, why: `no filter chain matched (sni=${sni ?? 'none'}, tls=${facts.tls}); default chain` } : { chain: undefined, why: `no filter chain matched (sni=${sni ?? 'none'}, tls=${facts.tls})` };
}

export interface DenyOutcome {
  /** BLOCKED for a registry denial (a policy refusal, as on HTTP), NR when nothing routes the connection. */
  readonly flag: 'NR' | 'BLOCKED';
  readonly reason: string;
}

/**
 * What the listener logs when a connection gets no chain or a deny chain; `inspectorFailure` is
 * the TLS inspector's reason when the ClientHello could not be read. The listener and `trace` both
 * call this, so the flag of an L4 registry denial is the same in both.
 */
export function denyOutcome(chain: FilterChain | undefined, facts: ConnectionFacts, inspectorFailure?: string): DenyOutcome {
  let reason = chain && chain.filter.type === 'deny' ? chain.filter.reason : 'no_filter_chain';
  if (inspectorFailure !== undefined && (reason === 'sni_not_routed' || reason === 'no_filter_chain')) reason = inspectorFailure;
  else if (facts.tls && facts.sni === undefined && reason === 'sni_not_routed') reason = 'sni_missing';
  return { flag: reason === 'registry_only' ? 'BLOCKED' : 'NR', reason };
}

export interface RequestFacts {
  readonly method: string;
  /** Path without the query string, already normalised by the HTTP layer. */
  readonly path: string;
  /** Raw query string without `?`, or '' */
  readonly query: string;
  /** Host part of the authority, lower case, no port, no trailing dot. */
  readonly host: string;
  /** Authority as sent (for `authority` matches). */
  readonly authority: string;
  readonly scheme: string;
  readonly port: number;
  /** Lower-case header name -> first value. */
  header(name: string): string | undefined;
  readonly sourceNamespace?: string;
  readonly sourceLabels?: Readonly<Record<string, string>>;
}

export function selectVirtualHost(table: CompiledRouteTable, host: string): CompiledVirtualHost | undefined {
  return table.hosts.lookup(host);
}

function matchString(m: CompiledStringMatcher, v: string): boolean {
  if (m.exact !== undefined) return v === m.exact;
  if (m.prefix !== undefined) return v.startsWith(m.prefix);
  if (m.regex !== undefined) return m.regex.test(v);
  return true; // an empty matcher: presence is enough
}

function queryParam(query: string, name: string): string | undefined {
  if (query === '') return undefined;
  for (const pair of query.split('&')) {
    const eq = pair.indexOf('=');
    const k = eq < 0 ? pair : pair.slice(0, eq);
    if (k === name) return eq < 0 ? '' : pair.slice(eq + 1);
  }
  return undefined;
}

export function routeMatches(r: CompiledRoute, req: RequestFacts): boolean {
  const m = r.route.match;
  if (m.port !== undefined && m.port !== req.port) return false;
  if (r.path && !matchString(r.path, r.ignoreCase ? req.path.toLowerCase() : req.path)) return false;
  if (r.method && !matchString(r.method, req.method)) return false;
  if (r.authority && !matchString(r.authority, req.authority)) return false;
  if (r.scheme && !matchString(r.scheme, req.scheme)) return false;
  for (const h of r.headers) {
    const v = req.header(h.name);
    const ok = v !== undefined && matchString(h.match, v);
    if (ok === h.invert) return false;
  }
  for (const q of r.queryParams) {
    const v = queryParam(req.query, q.name);
    if (v === undefined || !matchString(q.match, v)) return false;
  }
  if (m.sourceNamespace !== undefined && m.sourceNamespace !== req.sourceNamespace) return false;
  if (m.sourceLabels) {
    const labels = req.sourceLabels ?? {};
    for (const k in m.sourceLabels) if (labels[k] !== m.sourceLabels[k]) return false;
  }
  return true;
}

/** First matching route in order, as Envoy and Istio evaluate them. */
export function selectRoute(vh: CompiledVirtualHost, req: RequestFacts): CompiledRoute | undefined {
  for (const r of vh.routes) if (routeMatches(r, req)) return r;
  return undefined;
}

/** Weighted choice; `random` in [0, 1). Zero-weight entries are never picked unless all are zero. */
export function pickWeighted(clusters: readonly WeightedCluster[], random: number): WeightedCluster | undefined {
  if (clusters.length <= 1) return clusters[0];
  let total = 0;
  for (const c of clusters) total += c.weight;
  if (total <= 0) return clusters[0];
  let x = random * total;
  for (const c of clusters) {
    if (c.weight <= 0) continue;
    if (x < c.weight) return c;
    x -= c.weight;
  }
  return clusters[clusters.length - 1];
}

// ---------------------------------------------------------------------------------------------
// Explicit proxy (CONNECT) decisions

export interface AclEntry {
  readonly deny: boolean;
  readonly pattern: string;
}

/**
 * OpenShift http-proxy egress router list (EGRESS_HTTP_PROXY_DESTINATION): the first entry that
 * matches decides. A name pattern (`*`, `*.example.com`, `example.com`) matches the requested
 * host name; an IP or CIDR entry matches the requested IP literal or, for a name, the address it
 * resolved to (`ip`). Returns the deciding entry, or undefined (no match: denied).
 */
export function aclDecide(acl: readonly AclEntry[], host: string, ip: string | undefined): AclEntry | undefined {
  const addr: Ip | undefined = ip !== undefined ? parseIp(ip) : parseIp(host);
  for (const e of acl) {
    const p = e.pattern;
    if (isAddressPattern(p)) {
      if (!addr) continue;
      if (addressPatternContains(p, addr)) return e;
    } else if (hostMatches(p, host)) {
      return e;
    }
  }
  return undefined;
}

/** ACL entries that name addresses (IP or CIDR), for the SSRF exemption of explicitly listed destinations. */
export function isAddressPattern(p: string): boolean {
  return p.includes('/') ? cidr(p) !== undefined : parseIp(p) !== undefined;
}

function addressPatternContains(p: string, addr: Ip): boolean {
  if (p.includes('/')) {
    const c = cidr(p);
    return c !== undefined && cidrContains(c, addr);
  }
  const ip = parseIp(p);
  return ip !== undefined && ipEquals(ip, addr);
}

/** Whether any IP/CIDR entry that allows (deny=false) contains `ip`. */
export function aclAllowsAddress(acl: readonly AclEntry[], ip: string): boolean {
  const addr = parseIp(ip);
  if (!addr) return false;
  for (const e of acl) {
    if (e.deny || !isAddressPattern(e.pattern)) continue;
    if (addressPatternContains(e.pattern, addr)) return true;
  }
  return false;
}

/** The reason a report-only proxy logs for traffic that enforcement would refuse. */
export const WOULD_DENY_REASON = 'would_deny_registry';

export type ExplicitProxyDecision =
  | {
      readonly allowed: true;
      readonly cluster?: Cluster;
      readonly why: string;
      /** Report-only mode let through what enforcement would refuse with this reason. */
      readonly wouldDeny?: string;
    }
  | { readonly allowed: false; readonly status: number; readonly reason: string; readonly why: string; readonly flag?: 'NR' | 'BLOCKED' };

/**
 * Registry-mode CONNECT decision (explicit_proxy filter without `acl`): the port must be one of
 * `connectPorts` and the snapshot must carry a cluster for host:port (CompiledSnapshot.registryCluster).
 * For ACL mode (egress router http-proxy) call `aclDecide` after resolving the name.
 */
export function selectExplicitProxyTarget(
  snapshot: { registryCluster(host: string, port: number): Cluster | undefined },
  connectPorts: readonly number[],
  host: string,
  port: number,
  reportOnly?: ReportOnly,
): ExplicitProxyDecision {
  if (!connectPorts.includes(port)) {
    return { allowed: false, status: 403, reason: 'connect_port_not_allowed', why: `CONNECT port ${port} is not one of the allowed ports ${connectPorts.join(',')}` };
  }
  const cluster = snapshot.registryCluster(host, port);
  if (!cluster) {
    const why = `no ServiceEntry declares ${host}:${port}`;
    if (reportOnly !== undefined) return reportOnlyPass(host, port, reportOnly, 'connect_not_in_registry', why);
    return { allowed: false, status: 403, reason: 'connect_not_in_registry', why };
  }
  return { allowed: true, cluster, why: `registry entry ${cluster.name} (${cluster.description ?? cluster.serviceHost})` };
}

const TLS_PORT_PROTOCOLS = new Set(['TLS', 'HTTPS']);

/** Connect timeout of explicit-proxy destinations that have no cluster of their own (ACL mode). */
export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;

/** What a CONNECT host:port on an explicit proxy decides (before the cluster manager dials). */
export type ConnectDecision =
  | {
      readonly allowed: true;
      readonly cluster: string | Cluster;
      /** What ORIGINAL_DST dials: the checked address in ACL mode, else the host. */
      readonly requestedHost: string;
      /** ACL IP/CIDR allow entries that exempt the address from the SSRF guard. */
      readonly allowAddresses?: string[];
      /** Whether the tunnel must carry TLS (a TLS/HTTPS registry port). */
      readonly tlsRequired: boolean;
      readonly routeName?: string;
      readonly cause: Cluster | undefined;
      /** Report-only mode let through what enforcement would refuse with this reason. */
      readonly wouldDeny?: string;
    }
  | { readonly allowed: false; readonly status: number; readonly flag: 'NR' | 'BLOCKED'; readonly reason: string; readonly why: string };

/**
 * The CONNECT decision of an explicit_proxy filter, shared by the data plane and `trace`. ACL mode
 * (egress router http-proxy): the port must be allowed, then the first matching entry decides on
 * the name and `ip` (the address the name resolved to, or the literal; the caller resolves).
 * Registry mode: selectExplicitProxyTarget. A port outside the allowed list is a policy refusal
 * (BLOCKED) in both modes; a host:port no ServiceEntry declares is NR (no route).
 */
export function decideConnect(
  filter: { readonly acl?: readonly AclEntry[]; readonly connectPorts: readonly number[]; readonly sourceAddress?: string; readonly reportOnly?: boolean },
  snapshot: { registryCluster(host: string, port: number): Cluster | undefined },
  host: string,
  port: number,
  ip: string | undefined,
  connectTimeoutMs: number,
): ConnectDecision {
  if (!filter.connectPorts.includes(port)) return { allowed: false, status: 403, flag: 'BLOCKED', reason: 'connect_port_not_allowed', why: `CONNECT port ${port} is not one of the allowed ports ${filter.connectPorts.join(',')}` };
  const acl = filter.acl;
  if (acl === undefined) {
    const d = selectExplicitProxyTarget(snapshot, filter.connectPorts, host, port, filter.reportOnly === true ? { sourceAddress: filter.sourceAddress } : undefined);
    if (!d.allowed) return { allowed: false, status: d.status, flag: d.flag ?? 'NR', reason: d.reason, why: d.why };
    const c = d.cluster!;
    // Report-only: the ad-hoc cluster itself is dialed; a CONNECT tunnel is TLS by convention, its SNI is not checked.
    if (d.wouldDeny !== undefined) return { allowed: true, cluster: c, requestedHost: host, tlsRequired: false, cause: c, wouldDeny: d.wouldDeny };
    return { allowed: true, cluster: c.name, requestedHost: host, tlsRequired: TLS_PORT_PROTOCOLS.has(c.protocol.toUpperCase()), cause: c };
  }
  const entry = aclDecide(acl, host, ip);
  if (!entry) return { allowed: false, status: 403, flag: 'BLOCKED', reason: 'acl_no_match', why: `${host} (${ip ?? 'no address'}) matches no EGRESS_HTTP_PROXY_DESTINATION entry` };
  if (entry.deny) return { allowed: false, status: 403, flag: 'BLOCKED', reason: 'acl_denied', why: `${host} (${ip ?? 'no address'}) denied by "!${entry.pattern}"` };
  return {
    allowed: true,
    cluster: aclCluster(host, port, filter.sourceAddress, connectTimeoutMs),
    requestedHost: ip ?? host,
    ...(ip !== undefined && aclAllowsAddress(acl, ip) ? { allowAddresses: [ip] } : {}),
    tlsRequired: false,
    routeName: `acl:${entry.pattern}`,
    cause: undefined,
  };
}

/**
 * Registry-mode decision for an absolute-form request (`GET http://host[:port]/...`) on an explicit
 * proxy (`acl` absent): the snapshot must carry a cluster for host:port (port: the target's, else
 * 80 for http / 443 for https). `connectPorts` does not apply: nothing is tunneled, the request is
 * proxied as HTTP. A plain-HTTP request must never leave in clear text where the registry (or the
 * client, with `https://`) says TLS: an `https://` target or a TLS/HTTPS registry port is allowed
 * only when the cluster originates TLS (DestinationRule `tls`), else `proxy_tls_not_originated`.
 * `host` must be normalized. Same call in the HTTP engine and in `trace`.
 */
export function selectExplicitProxyHttpTarget(
  snapshot: { registryCluster(host: string, port: number): Cluster | undefined },
  scheme: string,
  host: string,
  port: number,
  reportOnly?: ReportOnly,
): ExplicitProxyDecision {
  const cluster = snapshot.registryCluster(host, port);
  if (!cluster) {
    const why = `no ServiceEntry declares ${host}:${port}`;
    // Plain HTTP only: an https:// target would need TLS origination, which only a registry entry configures.
    if (reportOnly !== undefined && scheme === 'http') return reportOnlyPass(host, port, reportOnly, 'proxy_not_in_registry', why);
    return { allowed: false, status: 403, flag: 'NR', reason: 'proxy_not_in_registry', why };
  }
  if ((scheme === 'https' || TLS_PORT_PROTOCOLS.has(cluster.protocol.toUpperCase())) && cluster.tls === undefined) {
    const what = scheme === 'https' ? `an https:// target` : `port ${port} (${cluster.protocol})`;
    return { allowed: false, status: 403, flag: 'BLOCKED', reason: 'proxy_tls_not_originated', why: `${what} of ${host} needs TLS, and ${cluster.name} does not originate it (use CONNECT, or a DestinationRule with tls)` };
  }
  return { allowed: true, cluster, why: `registry entry ${cluster.name} (${cluster.description ?? cluster.serviceHost})` };
}

/**
 * The ad-hoc cluster of an ACL-mode (egress router http-proxy) destination: ORIGINAL_DST to the
 * address the ACL checked (dial it as requestedHost), bound to the router's EGRESS_SOURCE. One name
 * per host:port, so HTTP keep-alive pools never mix destinations.
 */
export function aclCluster(host: string, port: number, sourceAddress: string | undefined, connectTimeoutMs = 10_000): Cluster {
  return {
    name: `explicit_proxy|${port}||${host}`,
    type: 'ORIGINAL_DST',
    serviceHost: '*',
    port,
    protocol: 'TCP',
    connectTimeoutMs,
    lbPolicy: 'PASSTHROUGH',
    ...(sourceAddress !== undefined ? { sourceAddress } : {}),
    explicitAddresses: false,
    meshExternal: true,
  };
}

/** Report-only mode of a registry-mode explicit proxy: where the forwarded traffic leaves from. */
export interface ReportOnly {
  readonly sourceAddress: string | undefined;
}

/**
 * What ALLOW_ANY would do with a destination outside the registry: an ad-hoc ORIGINAL_DST cluster to
 * the requested host (resolved by DNS, then checked by the SSRF guard like any name from a client),
 * from the filter's source address. The decision says which denial it stands in for.
 */
function reportOnlyPass(host: string, port: number, r: ReportOnly, deniedAs: string, why: string): ExplicitProxyDecision {
  const cluster: Cluster = { ...aclCluster(host, port, r.sourceAddress), name: `report_only|${port}||${host}`, serviceHost: host, description: 'report-only: outside the registry, passed as ALLOW_ANY would' };
  return { allowed: true, cluster, wouldDeny: deniedAs, why: `${why}; report-only mode passes it (logged as ${WOULD_DENY_REASON}, enforcement would answer 403 ${deniedAs})` };
}
