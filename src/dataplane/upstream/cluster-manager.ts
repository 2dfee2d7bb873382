/**
 * Cluster manager: from a cluster name (plus what the client asked for) to a connected upstream
 * socket, or a typed failure. The one place where destinations are resolved, checked (SSRF guard,
 * self-connect), load balanced and bound to a source address — for the TCP proxy, the CONNECT
 * tunnel and the HTTP engine alike.
 *
 * choose():  cluster (NC) -> candidate addresses (STATIC as written; STRICT_DNS every A record of
 *            every endpoint; LOGICAL_DNS the first; ORIGINAL_DST the requested host) (UH, DF)
 *            -> SSRF guard for addresses that came from DNS or from the client (BLOCKED ssrf_denied)
 *            -> self-connect guard (BLOCKED self_connect) -> LB -> source address (UF
 *            source_address_unavailable). Returns the checked IP: dial() connects to exactly it.
 * dial():    connect to target.ip from localAddress (connect.ts: no port reserved at bind), connect
 *            timeout (UF upstream_connect_timeout).
 *
 * State that outlives snapshots lives here: DNS cache, round-robin cursors, active counts.
 */
import type { WorkloadIdentitySource } from '../../shared/workload-identity.js';
import { Socket, type OnReadOpts } from 'node:net';
import { hostMatches, normalizeHost } from '../../net/hostname.js';
import { classifyIp, ENTRY_ALLOWABLE_CLASSES, parseCidr, parseIp, SsrfGuard, type Cidr, cidrContains, type Ip, type IpClass } from '../../net/ip.js';
import { SnapshotPart, type CompiledSnapshot } from '../route/compile.js';
import type { Cluster } from '../../snapshot/types.js';
import type { DataPlaneMetrics } from '../observe/istio-metrics.js';
import { DnsCache, type DnsFamily } from './dns.js';
import { openUpstreamSocket } from './connect.js';
import { connectErrorFailure, failure, type UpstreamFailure } from './failure.js';
import { pickEndpoint, type LbState } from './lb.js';
import { CircuitBreakers } from './circuit-breaker.js';
import { pickByHash } from './hash-lb.js';
import { OutlierDetector, type EjectionView } from './outlier.js';
import { UpstreamTlsContexts } from './tls-context.js';
import { EgressIpIndex, LocalAddresses, SourceAddressPolicy, type SourceAddressProblem } from './source-address.js';

export interface UpstreamRequest {
  /** Cluster name from a route / tcp filter, or an ad-hoc cluster (explicit proxy ACL mode). */
  readonly cluster: string | Cluster;
  /** Host the client asked for (SNI, CONNECT host, Host), normalized. Used by ORIGINAL_DST. */
  readonly requestedHost?: string | undefined;
  /** Port the client asked for; ORIGINAL_DST clusters with port 0 use it. */
  readonly requestedPort?: number | undefined;
  /** A captured connection's original destination: ORIGINAL_DST clusters dial it (as Envoy does). */
  readonly originalDestination?: { readonly ip: string; readonly port: number } | undefined;
  /** Downstream peer IP: selects the caller-namespace EgressIP. */
  readonly downstreamIp?: string | undefined;
  /** The namespace a mesh mTLS caller's certificate proved: selects the EgressIP before the IP does. */
  readonly peerNamespace?: string | undefined;
  /** Filter-level source address (explicit_proxy.sourceAddress). */
  readonly filterSourceAddress?: string | undefined;
  /** "ip:port" endpoints already tried (retries): skipped when others remain. */
  readonly exclude?: readonly string[] | undefined;
  readonly connectTimeoutMs?: number | undefined;
  /** Extra CIDRs whose addresses are allowed for this request (ACL IP/CIDR entries). */
  readonly allowAddresses?: readonly string[] | undefined;
  /**
   * The snapshot the downstream connection runs on. Cluster names and endpoints are looked up in
   * it, so a keep-alive connection accepted before a reload keeps working on its own snapshot even
   * when the new one no longer has its cluster. Absent: the running snapshot.
   */
  readonly snapshot?: CompiledSnapshot | undefined;
  /** Consistent-hash key (hash-lb.ts hashKeyOf): picks the endpoint by rendezvous hashing. */
  readonly hashKey?: string | undefined;
}

export interface UpstreamTarget {
  readonly cluster: Cluster;
  readonly ip: string;
  readonly port: number;
  readonly hostname?: string;
  readonly localAddress?: string;
  readonly sourceWhy: string;
  readonly poolKey: string;
}

export type ChooseResult = { readonly ok: true; readonly target: UpstreamTarget } | { readonly ok: false; readonly failure: UpstreamFailure };
export type ConnectResult =
  | { readonly ok: true; readonly socket: Socket; readonly target: UpstreamTarget; readonly localAddress: string; readonly localPort: number; readonly release: () => void }
  | { readonly ok: false; readonly failure: UpstreamFailure };

/** ConnectResult without the local address (connectThen, dialThen). */
export type DialResult =
  | { readonly ok: true; readonly socket: Socket; readonly target: UpstreamTarget; readonly release: () => void }
  | { readonly ok: false; readonly failure: UpstreamFailure };

export interface ClusterManagerOptions {
  readonly dnsServers?: readonly string[];
  readonly dnsTimeoutMs?: number;
  readonly dnsTries?: number;
  readonly dnsMinTtlSec?: number;
  readonly dnsMaxTtlSec?: number;
  readonly dnsMaxStaleSec?: number;
  readonly dnsNegativeTtlSec?: number;
  readonly allowCidrs?: readonly Cidr[];
  readonly defaultSourceAddress?: string;
  readonly isLocalAddress?: (ip: string) => boolean;
  readonly metrics?: DataPlaneMetrics;
  readonly random?: () => number;
  /** The proxy's mesh identity, for ISTIO_MUTUAL clusters. */
  readonly identity?: WorkloadIdentitySource;
}

export interface ClusterStatus {
  readonly name: string;
  readonly type: string;
  readonly serviceHost: string;
  readonly port: number;
  readonly sourceAddress?: string;
  readonly sourceAddressPool?: readonly string[];
  readonly explicitAddresses: boolean;
  readonly endpoints: readonly { readonly address: string; readonly port: number; readonly weight: number; readonly resolved?: readonly string[]; readonly ttlLeftSec?: number }[];
  readonly active: Readonly<Record<string, number>>;
  /** Outlier detection state per endpoint (clusters with outlierDetection). */
  readonly outliers?: readonly EjectionView[];
  /** Requests in flight / waiting (clusters with connectionPool limits). */
  readonly requests?: { readonly active: number; readonly pending: number };
}

/** The address lists of a cluster that exempt answers from the SSRF guard. */
type AddressList = 'allowedAddresses' | 'allowPrivateAddresses';

/**
 * What the hot path needs of a snapshot's clusters, built for each cluster on its first use and kept
 * with the snapshot: a registry of thousands of entries mostly serves a few of them, and a table
 * built for every cluster at apply cost about 0.4 KB per entry. Only the snapshot's own clusters
 * are kept; an ad-hoc one (explicit-proxy ACL) is parsed at each use.
 */
class ClusterTables {
  /**
   * A cluster's address list as CIDRs, by list: ServiceEntry `addresses` (SSRF guard exemptions)
   * and `tollgate.io/allow-private-addresses`.
   */
  private readonly cidrs = { allowedAddresses: new Map<Cluster, readonly Cidr[]>(), allowPrivateAddresses: new Map<Cluster, readonly Cidr[]>() };
  /** Candidates of STATIC clusters whose endpoints are all IPs (they never change within a snapshot); null: some endpoint is a name. */
  private readonly staticCandidates = new Map<Cluster, Candidate[] | null>();

  constructor(private readonly snapshot: CompiledSnapshot) {}

  cidrsOf(c: Cluster, list: AddressList): readonly Cidr[] {
    const table = this.cidrs[list];
    return table.get(c) ?? this.remember(table, c, allowedCidrsOf(c[list] ?? []));
  }

  /** undefined: not a STATIC cluster of this snapshot whose endpoints are all IPs. */
  staticCandidatesOf(c: Cluster): Candidate[] | undefined {
    let built = this.staticCandidates.get(c);
    if (built === undefined) {
      if (!this.owns(c)) return undefined;
      built = staticCandidatesOf(c, this.snapshot);
      this.staticCandidates.set(c, built);
    }
    return built ?? undefined;
  }

  private owns(c: Cluster): boolean {
    return this.snapshot.clusters.get(c.name) === c;
  }

  private remember<V>(table: Map<Cluster, V>, c: Cluster, value: V): V {
    if (this.owns(c)) table.set(c, value);
    return value;
  }
}

const CLUSTER_TABLES = new SnapshotPart<ClusterTables>('cluster address tables');

function allowedCidrsOf(list: readonly string[]): Cidr[] {
  return list.map((s) => parseCidr(s.includes('/') ? s : s.includes(':') ? `${s}/128` : `${s}/32`)).filter((x): x is Cidr => x !== undefined);
}

function staticCandidatesOf(c: Cluster, s: CompiledSnapshot): Candidate[] | null {
  if (c.type !== 'STATIC') return null;
  const out: Candidate[] = [];
  for (const e of s.endpoints.get(c.name)?.endpoints ?? []) {
    const parsed = parseIp(e.address);
    if (!parsed) return null;
    out.push({ ip: e.address, port: e.port, key: key(e.address, e.port), weight: e.weight, explicit: c.explicitAddresses, parsed });
  }
  return out;
}

interface Candidate {
  readonly ip: string;
  readonly port: number;
  readonly key: string;
  readonly weight: number;
  readonly hostname?: string;
  /** Written in config: exempt from the SSRF guard. */
  readonly explicit: boolean;
  /** The parsed address, when known at creation (cached STATIC candidates). */
  readonly parsed?: Ip;
}

const EMPTY: readonly string[] = [];

function key(ip: string, port: number): string {
  return ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`;
}

export class ClusterManager implements LbState {
  readonly dns: DnsCache;
  /** Traffic policy state that outlives snapshots (docs/traffic-management.md). */
  readonly outliers = new OutlierDetector();
  readonly breakers = new CircuitBreakers();
  /** Upstream TLS contexts; secrets of the latest snapshot (credentialName), file rotation. */
  readonly tls: UpstreamTlsContexts;
  private snap: CompiledSnapshot | undefined;
  private egress = new EgressIpIndex([]);
  private readonly guard: SsrfGuard;
  private readonly sources: SourceAddressPolicy;
  private readonly local: (ip: string) => boolean;
  private readonly metrics: DataPlaneMetrics | undefined;
  private readonly random: () => number;
  private readonly cursors = new Map<string, number>();
  private readonly activeCounts = new Map<string, Map<string, number>>();
  /** port -> the addresses bound on it ('*' = a wildcard address: every local address). */
  private selfPorts: ReadonlyMap<number, ReadonlySet<string>> = new Map();

  constructor(opts: ClusterManagerOptions = {}) {
    const metrics = opts.metrics;
    this.tls = new UpstreamTlsContexts(Date.now, opts.identity);
    this.dns = new DnsCache({
      ...(opts.dnsServers ? { servers: opts.dnsServers } : {}),
      ...(opts.dnsTimeoutMs !== undefined ? { timeoutMs: opts.dnsTimeoutMs } : {}),
      ...(opts.dnsTries !== undefined ? { tries: opts.dnsTries } : {}),
      ...(opts.dnsMinTtlSec !== undefined ? { minTtlSec: opts.dnsMinTtlSec } : {}),
      ...(opts.dnsMaxTtlSec !== undefined ? { maxTtlSec: opts.dnsMaxTtlSec } : {}),
      ...(opts.dnsMaxStaleSec !== undefined ? { maxStaleSec: opts.dnsMaxStaleSec } : {}),
      ...(opts.dnsNegativeTtlSec !== undefined ? { negativeTtlSec: opts.dnsNegativeTtlSec } : {}),
      ...(metrics ? { onQuery: (r: 'ok' | 'error') => metrics.dnsQueries.labels(r).inc(), onStale: () => metrics.dnsStaleAnswers.labels().inc() } : {}),
    });
    this.guard = new SsrfGuard(opts.allowCidrs ?? []);
    const la = new LocalAddresses();
    this.local = opts.isLocalAddress ?? ((ip) => la.isLocal(ip));
    this.sources = new SourceAddressPolicy(opts.defaultSourceAddress, this.local);
    this.metrics = opts.metrics;
    this.random = opts.random ?? Math.random;
  }

  /** Builds what a snapshot about to be applied needs here (upstream TLS contexts); throws when it cannot (the snapshot is rejected). */
  prepare(s: CompiledSnapshot): void {
    this.tls.prepare(s.snapshot);
    s.attach(CLUSTER_TABLES, new ClusterTables(s));
  }

  /** Source addresses the snapshot may bind that are not assigned here (apply-time report). */
  missingSourceAddresses(s: CompiledSnapshot): SourceAddressProblem[] {
    return this.sources.missingAt(s.snapshot);
  }

  setSnapshot(s: CompiledSnapshot): void {
    this.snap = s;
    this.tls.update(s.snapshot.secrets);
    this.egress = new EgressIpIndex(s.snapshot.policy.egressIps);
  }

  get snapshot(): CompiledSnapshot | undefined {
    return this.snap;
  }

  /** Ports this process listens on (data plane + admin): never dialed on a local address. */
  /**
   * Listening sockets of this process (data plane + admin): never dialed. A bare port means every
   * local address; `{address, port}` only that address (a test upstream on 127.0.0.2:P is not this
   * proxy's 127.0.0.1:P).
   */
  setSelfPorts(ports: Iterable<number | { readonly address: string; readonly port: number }>): void {
    const m = new Map<number, Set<string>>();
    for (const p of ports) {
      const port = typeof p === 'number' ? p : p.port;
      const addr = typeof p === 'number' || p.address === '0.0.0.0' || p.address === '::' ? '*' : p.address;
      const set = m.get(port) ?? new Set<string>();
      set.add(addr);
      m.set(port, set);
    }
    this.selfPorts = m;
  }

  /** EgressIP rules select callers by address: only then does a caller's address choose anything here. */
  get callersByAddress(): boolean {
    return this.egress.hasCallerIps;
  }

  /** Caller namespace for a downstream IP (EgressIP callers), for metrics and logs. */
  callerNamespace(ip: string | undefined): string | undefined {
    return this.egress.namespaceOf(ip);
  }

  // LbState
  cursor(cluster: string): number {
    return this.cursors.get(cluster) ?? 0;
  }
  advance(cluster: string): void {
    this.cursors.set(cluster, (this.cursors.get(cluster) ?? 0) + 1);
  }
  active(cluster: string, k: string): number {
    return this.activeCounts.get(cluster)?.get(k) ?? 0;
  }

  async connect(req: UpstreamRequest): Promise<ConnectResult> {
    const c = await this.choose(req);
    if (!c.ok) return c;
    return this.dial(c.target, req.connectTimeoutMs);
  }

  async choose(req: UpstreamRequest): Promise<ChooseResult> {
    const fast = this.chooseSync(req);
    if (fast !== undefined) return fast;
    // chooseSync only defers when the cluster exists and a DNS answer is not cached.
    const cluster = this.clusterOf(req)!;
    const cands = await this.candidates(cluster, req);
    if (!Array.isArray(cands)) return this.fail(cands);
    return this.pick(cluster, cands, req);
  }

  /**
   * HTTP engine fast path (added for src/dataplane/http/): the same decision as choose(), without
   * a promise, whenever no DNS query is needed (STATIC endpoints, IP literals, names with a cached
   * answer). Returns undefined when it would have to wait for DNS: call choose() then.
   */
  chooseSync(req: UpstreamRequest): ChooseResult | undefined {
    const cluster = this.clusterOf(req);
    if (!cluster) {
      const name = typeof req.cluster === 'string' ? req.cluster : req.cluster.name;
      return this.fail(failure('NC', 'cluster_not_found', `cluster ${name} is not in the running snapshot`, false, { cluster: name }));
    }
    const cands = this.candidatesSync(cluster, req);
    if (cands === undefined) return undefined;
    if (!Array.isArray(cands)) return this.fail(cands);
    return this.pick(cluster, cands, req);
  }

  private clusterOf(req: UpstreamRequest): Cluster | undefined {
    return typeof req.cluster === 'string' ? (req.snapshot ?? this.snap)?.clusters.get(req.cluster) : req.cluster;
  }

  /** The part of choose() after the candidate addresses are known (guards, LB, source address). */
  private pick(cluster: Cluster, cands: Candidate[], req: UpstreamRequest): ChooseResult {
    if (cands.length === 0) return this.fail(failure('UH', 'no_healthy_upstream', `cluster ${cluster.name} has no endpoints`, false, { cluster: cluster.name }));

    // SSRF and self-connect guards.
    let allowed: Candidate[] = cands;
    let denied: UpstreamFailure | undefined;
    for (const cand of cands) {
      const why = this.deniedWhy(cluster, cand, req.allowAddresses);
      if (why === undefined) continue;
      denied ??= why;
      allowed = allowed.filter((x) => x !== cand);
    }
    if (allowed.length === 0) return this.fail(denied ?? failure('UH', 'no_healthy_upstream', `cluster ${cluster.name}: no usable address`, false, { cluster: cluster.name }));

    let pool: readonly Candidate[] = allowed;
    if (cluster.outlierDetection !== undefined) {
      // Ejected endpoints (outlier.ts) are skipped; all ejected -> UH.
      this.outliers.noteHostCount(cluster.name, pool.length);
      const now = Date.now();
      const healthy = pool.filter((c) => !this.outliers.isEjected(cluster.name, c.key, now));
      if (healthy.length === 0) return this.fail(failure('UH', 'no_healthy_upstream', `cluster ${cluster.name}: all ${pool.length} endpoint(s) are ejected by outlier detection`, true, { cluster: cluster.name }));
      pool = healthy;
    }
    const ex = req.exclude;
    if (ex && ex.length > 0 && pool.length > 1) {
      const rest = pool.filter((c) => !ex.includes(c.key));
      if (rest.length > 0) pool = rest;
    }
    const chosen = (req.hashKey !== undefined ? pickByHash(pool, req.hashKey) : undefined) ?? pickEndpoint(cluster.lbPolicy, cluster.name, pool, this, this.random)!;

    const src = this.sources.choose({ cluster, filterSourceAddress: req.filterSourceAddress, downstreamIp: req.downstreamIp, peerNamespace: req.peerNamespace }, this.egress);
    if (src.unavailable !== undefined) {
      return this.fail(failure('UF', 'source_address_unavailable', src.unavailable, false, { cluster: cluster.name, upstreamHost: chosen.key, ...(src.address !== undefined ? { upstreamLocalAddress: src.address } : {}) }));
    }
    const target: UpstreamTarget = {
      cluster,
      ip: chosen.ip,
      port: chosen.port,
      ...(chosen.hostname !== undefined ? { hostname: chosen.hostname } : {}),
      ...(src.address !== undefined ? { localAddress: src.address } : {}),
      sourceWhy: src.why,
      poolKey: `${cluster.name}|${chosen.key}|${src.address ?? ''}`,
    };
    return { ok: true, target };
  }

  /** `onread`: the socket reads into the caller's buffers (net's onread) instead of emitting 'data'. */
  dial(target: UpstreamTarget, connectTimeoutMs?: number, onread?: OnReadOpts): Promise<ConnectResult> {
    return new Promise((resolve) => {
      this.dialThen(target, connectTimeoutMs, onread, (r) => resolve(r.ok ? { ...r, localAddress: r.socket.localAddress ?? '', localPort: r.socket.localPort ?? 0 } : r));
    });
  }

  /**
   * connect() without promises, for paths that open a connection per downstream connection (the
   * TCP proxy): `done` is called exactly once, synchronously when the outcome is known at once (a
   * failed choice or bind). The local address is not read here: it costs a system call, and only
   * an access-log line needs it. `onread`: see openUpstreamSocket.
   */
  connectThen(req: UpstreamRequest, done: (r: DialResult) => void, onread?: OnReadOpts): void {
    const fast = this.chooseSync(req);
    if (fast === undefined) {
      this.choose(req).then(
        (c) => (c.ok ? this.dialThen(c.target, req.connectTimeoutMs, onread, done) : done(c)),
        (err: unknown) => done({ ok: false, failure: failure('UF', 'internal_error', String(err), false) }),
      );
    } else if (fast.ok) this.dialThen(fast.target, req.connectTimeoutMs, onread, done);
    else done(fast);
  }

  /** dial() with a callback (see connectThen). */
  dialThen(target: UpstreamTarget, connectTimeoutMs: number | undefined, onread: OnReadOpts | undefined, done: (r: DialResult) => void): void {
    const timeout = connectTimeoutMs ?? target.cluster.connectTimeoutMs;
    const cname = target.cluster.name;
    const hostKey = key(target.ip, target.port);
    const opened = openUpstreamSocket(target, onread);
    if (!(opened instanceof Socket)) {
      done(this.fail(connectErrorFailure(opened, cname, hostKey, target.localAddress)));
      return;
    }
    const sock = opened;
    let settled = false;
    const onTimeout = (): void => {
      if (settled) return;
      settled = true;
      sock.destroy();
      done(this.fail(failure('UF', 'upstream_connect_timeout', `no connection to ${hostKey} within ${timeout} ms`, true, { cluster: cname, upstreamHost: hostKey, ...(target.localAddress !== undefined ? { upstreamLocalAddress: target.localAddress } : {}) })));
    };
    const timer = setTimeout(onTimeout, timeout);
    const onError = (err: NodeJS.ErrnoException): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      sock.removeListener('connect', onConnect);
      sock.destroy();
      done(this.fail(connectErrorFailure(err, cname, hostKey, target.localAddress)));
    };
    const onConnect = (): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      sock.removeListener('error', onError);
      const release = this.track(cname, hostKey);
      sock.once('close', release);
      done({ ok: true, socket: sock, target, release });
    };
    // Plain listeners removed by hand: once() would wrap each in another closure.
    sock.on('error', onError);
    sock.on('connect', onConnect);
  }

  /**
   * Outcome of one request to an endpoint, for outlier detection: the response status, or 0 for a
   * local-origin failure (connect/TLS failure, reset before the response). No-op for clusters
   * without outlierDetection.
   */
  reportOutcome(cluster: Cluster | undefined, host: string | null | undefined, status: number): void {
    if (cluster === undefined || cluster.outlierDetection === undefined || host === null || host === undefined) return;
    this.outliers.report(cluster, host, status);
  }

  describe(): ClusterStatus[] {
    const s = this.snap;
    if (!s) return [];
    const out: ClusterStatus[] = [];
    for (const c of s.clusters.values()) {
      const eps = s.endpoints.get(c.name)?.endpoints ?? [];
      const fam = c.dnsLookupFamily ?? 'V4_ONLY';
      const dnsView = this.dns.entries();
      out.push({
        name: c.name,
        type: c.type,
        serviceHost: c.serviceHost,
        port: c.port,
        ...(c.sourceAddress ? { sourceAddress: c.sourceAddress } : {}),
        ...(c.sourceAddressPool ? { sourceAddressPool: c.sourceAddressPool } : {}),
        explicitAddresses: c.explicitAddresses,
        endpoints: eps.map((e) => {
          const d = parseIp(e.address) ? undefined : dnsView.find((v) => v.name === e.address && v.family === fam);
          return { address: e.address, port: e.port, weight: e.weight, ...(d ? { resolved: d.addresses, ttlLeftSec: d.ttlLeftSec } : {}) };
        }),
        active: Object.fromEntries(this.activeCounts.get(c.name) ?? []),
        ...(c.outlierDetection ? { outliers: this.outliers.describe(c.name) } : {}),
        ...(c.connectionPool ? { requests: this.breakers.describe(c.name) ?? { active: 0, pending: 0, retries: 0 } } : {}),
      });
    }
    return out;
  }

  // ---------------------------------------------------------------------------------------

  private fail(f: UpstreamFailure): { ok: false; failure: UpstreamFailure } {
    if (this.metrics && f.cluster !== undefined) this.metrics.upstreamConnectFailures.labels(f.cluster, f.reason).inc();
    return { ok: false, failure: f };
  }

  private track(cluster: string, k: string): () => void {
    let m = this.activeCounts.get(cluster);
    if (!m) {
      m = new Map();
      this.activeCounts.set(cluster, m);
    }
    m.set(k, (m.get(k) ?? 0) + 1);
    const g = this.metrics?.upstreamActive.labels(cluster);
    g?.inc();
    let released = false;
    return () => {
      if (released) return;
      released = true;
      g?.dec();
      const mm = this.activeCounts.get(cluster);
      if (!mm) return;
      const n = (mm.get(k) ?? 1) - 1;
      if (n <= 0) mm.delete(k);
      else mm.set(k, n);
      if (mm.size === 0) this.activeCounts.delete(cluster);
    };
  }

  private deniedWhy(cluster: Cluster, c: Candidate, extra: readonly string[] | undefined): UpstreamFailure | undefined {
    const ip = c.parsed ?? parseIp(c.ip);
    if (!ip) return failure('UH', 'bad_endpoint_address', `endpoint ${c.ip} is not an IP address`, false, { cluster: cluster.name });
    const self = this.selfPorts.get(c.port);
    if (self && (isUnspecified(ip) || (self.has('*') ? this.local(c.ip) : self.has(c.ip)))) {
      return failure('BLOCKED', 'self_connect', `${c.key} is this proxy's own listener`, false, { cluster: cluster.name, upstreamHost: c.key });
    }
    if (c.explicit) return undefined;
    if (this.inAddressList(cluster, 'allowedAddresses', ip) || (extra && extra.length > 0 && inList(extra, ip))) return undefined;
    const v = this.guard.check(ip);
    if (v.allowed) return undefined;
    const cls = classifyIp(ip);
    if (ENTRY_ALLOWABLE_CLASSES.has(cls) && this.inAddressList(cluster, 'allowPrivateAddresses', ip)) return undefined;
    return failure('BLOCKED', 'ssrf_denied', `${c.hostname ? c.hostname + ' -> ' : ''}${v.reason}; ${howToAllow(cluster, c.ip, cls)}`, false, { cluster: cluster.name, upstreamHost: c.key });
  }

  /** Whether `ip` is in one of the cluster's address lists (CIDRs or bare addresses). */
  private inAddressList(cluster: Cluster, list: AddressList, ip: Ip): boolean {
    const entries = cluster[list];
    if (entries === undefined || entries.length === 0) return false;
    const cidrs = this.snap?.part(CLUSTER_TABLES)?.cidrsOf(cluster, list) ?? allowedCidrsOf(entries);
    for (const c of cidrs) if (cidrContains(c, ip)) return true;
    return false;
  }

  /** candidates() without waiting: undefined when a name has no fresh cached answer. */
  private candidatesSync(cluster: Cluster, req: UpstreamRequest): Candidate[] | UpstreamFailure | undefined {
    const fam: DnsFamily = cluster.dnsLookupFamily ?? 'V4_ONLY';
    if (cluster.type === 'ORIGINAL_DST') {
      const od = req.originalDestination;
      if (od !== undefined) return [{ ip: od.ip, port: od.port, key: key(od.ip, od.port), weight: 1, explicit: cluster.explicitAddresses }];
      const host = req.requestedHost;
      const port = cluster.port > 0 ? cluster.port : req.requestedPort ?? 0;
      if (host === undefined || host === '' || port <= 0) return undefined; // the async path reports these
      if (parseIp(host)) return [{ ip: host, port, key: key(host, port), weight: 1, explicit: false }];
      if (cluster.serviceHost !== '*' && !hostMatches(cluster.serviceHost, host)) return undefined;
      const addrs = this.dns.peek(host, fam);
      if (addrs === undefined) return undefined;
      return addrs.map((ip) => ({ ip, port, key: key(ip, port), weight: 1, hostname: host, explicit: false }));
    }
    const snap = req.snapshot ?? this.snap;
    if (cluster.type === 'STATIC') {
      const built = snap?.part(CLUSTER_TABLES)?.staticCandidatesOf(cluster);
      if (built !== undefined) return built;
    }
    const eps = snap?.endpoints.get(cluster.name)?.endpoints ?? [];
    const out: Candidate[] = [];
    for (const e of eps) {
      const parsed = parseIp(e.address);
      if (parsed) {
        out.push({ ip: e.address, port: e.port, key: key(e.address, e.port), weight: e.weight, explicit: cluster.explicitAddresses || cluster.type !== 'STATIC', parsed });
        continue;
      }
      const n = normalizeHost(e.address);
      const name = n.ok ? n.host : e.address;
      const addrs = this.dns.peek(name, fam);
      if (addrs === undefined) return undefined;
      const list = cluster.type === 'LOGICAL_DNS' ? addrs.slice(0, 1) : addrs;
      for (const ip of list) out.push({ ip, port: e.port, key: key(ip, e.port), weight: e.weight, hostname: name, explicit: false });
      if (cluster.type === 'LOGICAL_DNS' && out.length > 0) break;
    }
    return out;
  }

  private async candidates(cluster: Cluster, req: UpstreamRequest): Promise<Candidate[] | UpstreamFailure> {
    const fam: DnsFamily = cluster.dnsLookupFamily ?? 'V4_ONLY';
    if (cluster.type === 'ORIGINAL_DST') {
      const od = req.originalDestination;
      if (od !== undefined) return [{ ip: od.ip, port: od.port, key: key(od.ip, od.port), weight: 1, explicit: cluster.explicitAddresses }];
      const host = req.requestedHost;
      const port = cluster.port > 0 ? cluster.port : req.requestedPort ?? 0;
      if (host === undefined || host === '') return failure('UH', 'original_dst_no_host', `cluster ${cluster.name} forwards to the requested host, but the client named none`, false, { cluster: cluster.name });
      if (port <= 0) return failure('UH', 'original_dst_no_port', `cluster ${cluster.name}: no destination port`, false, { cluster: cluster.name });
      const ip = parseIp(host);
      if (ip) return [{ ip: host, port, key: key(host, port), weight: 1, explicit: false }];
      if (cluster.serviceHost !== '*' && !hostMatches(cluster.serviceHost, host)) {
        return failure('BLOCKED', 'original_dst_host_mismatch', `${host} is not covered by ${cluster.serviceHost}`, false, { cluster: cluster.name });
      }
      return this.resolveName(cluster, host, port, 1, fam, false);
    }
    const eps = (req.snapshot ?? this.snap)?.endpoints.get(cluster.name)?.endpoints ?? [];
    const out: Candidate[] = [];
    for (const e of eps) {
      if (parseIp(e.address)) {
        out.push({ ip: e.address, port: e.port, key: key(e.address, e.port), weight: e.weight, explicit: cluster.explicitAddresses || cluster.type !== 'STATIC' });
        continue;
      }
      const n = normalizeHost(e.address);
      const name = n.ok ? n.host : e.address;
      const r = await this.resolveName(cluster, name, e.port, e.weight, fam, cluster.type === 'LOGICAL_DNS');
      if (!Array.isArray(r)) {
        if (eps.length === 1) return r;
        continue;
      }
      out.push(...r);
      if (cluster.type === 'LOGICAL_DNS' && out.length > 0) break;
    }
    return out;
  }

  private async resolveName(cluster: Cluster, name: string, port: number, weight: number, fam: DnsFamily, firstOnly: boolean): Promise<Candidate[] | UpstreamFailure> {
    const cached = this.dns.peek(name, fam);
    let addrs: readonly string[] = cached ?? EMPTY;
    if (!cached) {
      const r = await this.dns.resolve(name, fam);
      if (!r.ok) return failure('DF', 'dns_resolution_failed', r.message, true, { cluster: cluster.name });
      addrs = r.addresses;
    }
    const list = firstOnly ? addrs.slice(0, 1) : addrs;
    return list.map((ip) => ({ ip, port, key: key(ip, port), weight, hostname: name, explicit: false }));
  }
}

function isUnspecified(ip: Ip): boolean {
  return ip.family === 4 ? ip.value === 0 : ip.w0 === 0 && ip.w1 === 0 && ip.w2 === 0 && ip.w3 === 0;
}

function inList(list: readonly string[], ip: Ip): boolean {
  for (const s of list) {
    const c = parseCidr(s.includes('/') ? s : s.includes(':') ? `${s}/128` : `${s}/32`);
    if (c && cidrContains(c, ip)) return true;
  }
  return false;
}

/**
 * The second half of an ssrf_denied detail: what would allow the address. A private or CGNAT answer
 * for a ServiceEntry host: the entry's own annotation (narrow: that host only); anything else: the
 * proxy's --allow-cidr (operator-wide), since no entry may open loopback or metadata addresses.
 */
function howToAllow(cluster: Cluster, ip: string, cls: IpClass): string {
  const o = cluster.origin;
  if (ENTRY_ALLOWABLE_CLASSES.has(cls) && o !== undefined && o.kind === 'ServiceEntry') {
    const listed = cluster.allowPrivateAddresses;
    const now = listed !== undefined && listed.length > 0 ? ` (it lists ${listed.join(', ')})` : '';
    return `if ${cluster.serviceHost} really lives there, annotate ServiceEntry ${o.namespace}/${o.name} with tollgate.io/allow-private-addresses: "${ip}" (or its range)${now}`;
  }
  return `only the proxy's --allow-cidr ${ip} allows a ${cls} address`;
}

