/**
 * Snapshot -> runtime matchers, compiled once per snapshot (regexes built, host tables indexed).
 * The data plane and `trace` both route through these objects, so they can never disagree.
 */
import { HostMatcher, normalizeHostPattern } from '../../net/hostname.js';
import type { Cluster, EndpointSet, FilterChain, Listener, Route, RouteConfig, Snapshot, StringMatcher, VirtualHost } from '../../snapshot/types.js';

export interface CompiledStringMatcher {
  readonly exact?: string;
  readonly prefix?: string;
  readonly regex?: RegExp;
}

export interface CompiledRoute {
  readonly route: Route;
  readonly path?: CompiledStringMatcher;
  readonly ignoreCase: boolean;
  readonly method?: CompiledStringMatcher;
  readonly authority?: CompiledStringMatcher;
  readonly scheme?: CompiledStringMatcher;
  readonly headers: readonly { readonly name: string; readonly match: CompiledStringMatcher; readonly invert: boolean }[];
  readonly queryParams: readonly { readonly name: string; readonly match: CompiledStringMatcher }[];
}

export interface CompiledVirtualHost {
  readonly vhost: VirtualHost;
  readonly routes: readonly CompiledRoute[];
}

export interface CompiledRouteTable {
  readonly config: RouteConfig;
  readonly hosts: HostMatcher<CompiledVirtualHost>;
}

export interface CompiledListener {
  readonly listener: Listener;
  /** True when some chain matches on SNI or needs to know whether the client speaks TLS. */
  readonly needsTlsInspector: boolean;
  /**
   * The inspector runs only to tell mesh mTLS from plaintext (no chain matches on SNI or transport):
   * a client that stays silent is a server-first protocol and goes on as plaintext after a short
   * wait, as Envoy's `continue_on_listener_filters_timeout` lets it.
   */
  readonly mtlsDetectionOnly: boolean;
  readonly needsDestination: boolean;
  readonly needsDestinationPort: boolean;
  /** The listener's only chain when it matches every connection (no criteria, no default chain): nothing to select. */
  readonly onlyChain: FilterChain | undefined;
  /**
   * Chain choices already made, by SNI (select.ts), when the choice depends only on the SNI and
   * whether the client spoke TLS (no chain matches a destination address or port).
   */
  readonly choicesBySni: Map<string, { readonly chain: FilterChain | undefined; readonly why: string }> | undefined;
}

/**
 * Key of a part the data plane builds from a snapshot when it is applied (HTTP filter chains, TLS
 * contexts): typed, so `part()` needs no cast at the call site. Parts are attached before the
 * snapshot serves its first connection, and a throw while building them rejects the snapshot.
 */
export class SnapshotPart<T> {
  declare readonly type: T;
  constructor(readonly name: string) {}
}

export class CompiledSnapshot {
  readonly snapshot: Snapshot;
  private readonly parts = new Map<SnapshotPart<unknown>, unknown>();
  readonly listeners: ReadonlyMap<string, CompiledListener>;
  readonly routeTables: ReadonlyMap<string, CompiledRouteTable>;
  readonly clusters: ReadonlyMap<string, Cluster>;
  readonly endpoints: ReadonlyMap<string, EndpointSet>;

  constructor(snapshot: Snapshot) {
    this.snapshot = snapshot;
    this.listeners = new Map(snapshot.listeners.map((l) => [l.name, compileListener(l)]));
    this.routeTables = new Map(snapshot.routes.map((r) => [r.name, compileRouteTable(r)]));
    this.clusters = new Map(snapshot.clusters.map((c) => [c.name, c]));
    this.endpoints = new Map(snapshot.endpoints.map((e) => [e.clusterName, e]));
  }

  /** Attaches a part built at apply time (see SnapshotPart). */
  attach<T>(key: SnapshotPart<T>, value: T): void {
    this.parts.set(key, value);
  }

  part<T>(key: SnapshotPart<T>): T | undefined {
    return this.parts.get(key) as T | undefined;
  }

  private registryIndex: Map<number, HostMatcher<Cluster>> | undefined;

  /**
   * The registry entry for host:port, as the snapshot carries it: the subset-less cluster whose
   * `serviceHost` pattern matches `host` (exact over longest wildcard over `*`) and whose `port`
   * is `port`. Used by the explicit proxy (CONNECT) registry check. `host` must be normalized.
   * Built once per snapshot on first use.
   */
  registryCluster(host: string, port: number): Cluster | undefined {
    let idx = this.registryIndex;
    if (idx === undefined) {
      idx = buildRegistryIndex(this.snapshot.clusters);
      this.registryIndex = idx;
    }
    return idx.get(port)?.lookup(host);
  }

  /** The listener bound to a port (and address, when several listeners share the port). */
  listenerForPort(port: number, address?: string): CompiledListener | undefined {
    let anyAddress: CompiledListener | undefined;
    for (const l of this.listeners.values()) {
      if (l.listener.port !== port || l.listener.useOriginalDst || l.listener.inboundCapture) continue;
      if (address !== undefined && l.listener.address === address) return l;
      if (l.listener.address === '0.0.0.0' || l.listener.address === '::') anyAddress ??= l;
      else if (address === undefined) anyAddress ??= l;
    }
    return anyAddress;
  }
}

function buildRegistryIndex(clusters: readonly Cluster[]): Map<number, HostMatcher<Cluster>> {
  const byPort = new Map<number, [string, Cluster][]>();
  for (const c of clusters) {
    if (c.port <= 0 || c.serviceHost === '' || isSubsetCluster(c.name)) continue;
    if (!normalizeHostPattern(c.serviceHost).ok) continue;
    const list = byPort.get(c.port) ?? [];
    list.push([c.serviceHost, c]);
    byPort.set(c.port, list);
  }
  const out = new Map<number, HostMatcher<Cluster>>();
  for (const [port, entries] of byPort) out.set(port, new HostMatcher(entries));
  return out;
}

/** `outbound|443|v1|host` carries a subset; the registry view uses the subset-less cluster. */
function isSubsetCluster(name: string): boolean {
  const parts = name.split('|');
  return parts.length === 4 && parts[2] !== '';
}

function compileListener(l: Listener): CompiledListener {
  const chains = [...l.filterChains, ...(l.defaultFilterChain ? [l.defaultFilterChain] : [])];
  return {
    listener: l,
    needsTlsInspector: chains.some((c) => (c.match.serverNames?.length ?? 0) > 0 || c.match.transportProtocol !== undefined || c.mtls !== undefined),
    mtlsDetectionOnly: chains.some((c) => c.mtls !== undefined) && !chains.some((c) => (c.match.serverNames?.length ?? 0) > 0 || c.match.transportProtocol !== undefined),
    needsDestination: chains.some((c) => (c.match.destinationPrefixes?.length ?? 0) > 0),
    needsDestinationPort: chains.some((c) => c.match.destinationPort !== undefined),
    onlyChain: chains.length === 1 && l.defaultFilterChain === undefined && matchesAnything(chains[0]!) ? chains[0] : undefined,
    choicesBySni: chains.some((c) => (c.match.destinationPrefixes?.length ?? 0) > 0 || c.match.destinationPort !== undefined) ? undefined : new Map(),
  };
}

function matchesAnything(c: FilterChain): boolean {
  const m = c.match;
  return (m.serverNames?.length ?? 0) === 0 && m.transportProtocol === undefined && (m.destinationPrefixes?.length ?? 0) === 0 && m.destinationPort === undefined;
}

/** Istio/Envoy regexes (RE2) match the whole value, not a substring. */
export function compileMatcher(m: StringMatcher | undefined, ignoreCase = false): CompiledStringMatcher | undefined {
  if (!m) return undefined;
  if (m.exact !== undefined) return { exact: ignoreCase ? m.exact.toLowerCase() : m.exact };
  if (m.prefix !== undefined) return { prefix: ignoreCase ? m.prefix.toLowerCase() : m.prefix };
  if (m.regex !== undefined) return { regex: new RegExp(`^(?:${m.regex})$`, ignoreCase ? 'i' : '') };
  return {};
}

/** Most routes match no header or query parameter: one empty list for all of them. */
const NONE: readonly never[] = [];

function compileRoute(route: Route): CompiledRoute {
  const ignoreCase = route.match.ignoreCase === true;
  const path = compileMatcher(route.match.path, ignoreCase);
  const method = compileMatcher(route.match.method);
  const authority = compileMatcher(route.match.authority);
  const scheme = compileMatcher(route.match.scheme);
  return {
    route,
    ...(path ? { path } : {}),
    ignoreCase,
    ...(method ? { method } : {}),
    ...(authority ? { authority } : {}),
    ...(scheme ? { scheme } : {}),
    headers: route.match.headers === undefined ? NONE : route.match.headers.map((h) => ({ name: h.name, match: compileMatcher(h.match) ?? {}, invert: h.invert === true })),
    queryParams: route.match.queryParams === undefined ? NONE : route.match.queryParams.map((q) => ({ name: q.name, match: compileMatcher(q.match) ?? {} })),
  };
}

/** Envoy accepts `host:port` domains; Tollgate matches on the host and checks ports with `match.port`. */
function domainHost(d: string): string {
  if (d.startsWith('[')) return d.slice(0, d.indexOf(']') + 1).toLowerCase();
  const colon = d.lastIndexOf(':');
  return (colon > 0 && /^\d+$/.test(d.slice(colon + 1)) ? d.slice(0, colon) : d).toLowerCase();
}

function compileRouteTable(config: RouteConfig): CompiledRouteTable {
  const entries: [string, CompiledVirtualHost][] = [];
  for (const vhost of config.virtualHosts) {
    const compiled: CompiledVirtualHost = { vhost, routes: vhost.routes.map(compileRoute) };
    const seen = new Set<string>();
    for (const d of vhost.domains) {
      const normalized = normalizeHostPattern(domainHost(d));
      // config/ rejects unsupported domains; a snapshot from elsewhere must still never throw here.
      if (!normalized.ok) continue;
      const h = normalized.pattern;
      if (seen.has(h)) continue;
      seen.add(h);
      entries.push([h, compiled]);
    }
  }
  return { config, hosts: new HostMatcher(entries) };
}

export type { FilterChain };
