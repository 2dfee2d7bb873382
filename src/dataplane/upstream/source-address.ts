/**
 * Which source address an upstream connection binds, and whether that address exists here.
 *
 * Precedence (docs/source-address.md), first that applies wins:
 *   1. cluster.sourceAddress      — ServiceEntry annotation tollgate.io/source-address, or the
 *                                   egress router's EGRESS_SOURCE (router role clusters)
 *   1b. cluster.sourceAddressPool — ServiceEntry annotation tollgate.io/source-address-pool: the
 *                                   first address of this replica's share that is assigned here
 *   2. filter source address      — explicit_proxy.sourceAddress (http-proxy egress router's EGRESS_SOURCE)
 *   3. caller-namespace EgressIP  — policy.egressIps: the namespace a mesh caller's certificate
 *                                   proves, else the downstream IP is one of callerIps ->
 *                                   the first of sourceAddresses that is local
 *   4. --source-address           — proxy-wide default
 *   5. OS default                 — no bind
 * A chosen address (1-4) that is not assigned on this host fails the connection closed
 * (UF source_address_unavailable); there is never a fallback to a later rule.
 */
import { networkInterfaces } from 'node:os';
import { parseIp, formatIp, type Ip } from '../../net/ip.js';
import type { Cluster, EgressIpRule, Snapshot } from '../../snapshot/types.js';

export interface SourceChoice {
  /** Address to bind; undefined = let the OS choose. */
  readonly address: string | undefined;
  readonly why: string;
  /** Set when the chosen address is not local: the caller must fail closed with this detail. */
  readonly unavailable?: string;
}

const OS_DEFAULT: SourceChoice = Object.freeze({ address: undefined, why: 'os-default' });

/**
 * Index of policy.egressIps by caller IP and by caller namespace, compiled once per snapshot.
 *
 * A caller on a mesh mTLS connection has a namespace its certificate proves: that, not its address,
 * selects the rule — a pod-selecting rule whose caller IPs include the address when that pod is in
 * the proven namespace, else a rule for the whole namespace (no podSelector: a certificate proves a
 * namespace and service account, not pod labels). Other callers are known by their address only.
 */
export class EgressIpIndex {
  private readonly byCaller = new Map<string, EgressIpRule>();
  private readonly byNamespace = new Map<string, EgressIpRule>();
  constructor(rules: readonly EgressIpRule[]) {
    for (const r of rules) {
      for (const ip of r.callerIps) if (!this.byCaller.has(canon(ip))) this.byCaller.set(canon(ip), r);
      if (r.podSelected !== true) for (const ns of r.namespaces) if (!this.byNamespace.has(ns)) this.byNamespace.set(ns, r);
    }
  }
  /** Some rule selects callers by address (else a caller's address never matters here). */
  get hasCallerIps(): boolean {
    return this.byCaller.size > 0;
  }
  /** `peerNamespace`: the namespace a verified mesh certificate proved for this caller. */
  ruleFor(callerIp: string | undefined, peerNamespace?: string): EgressIpRule | undefined {
    if (peerNamespace !== undefined) {
      const byIp = this.ipRule(callerIp);
      if (byIp !== undefined && byIp.callerNamespaces[canon(callerIp!)] === peerNamespace) return byIp;
      return this.byNamespace.get(peerNamespace);
    }
    return this.ipRule(callerIp);
  }
  namespaceOf(callerIp: string | undefined): string | undefined {
    const r = this.ipRule(callerIp);
    return r && callerIp !== undefined ? r.callerNamespaces[canon(callerIp)] ?? r.callerNamespaces[callerIp] : undefined;
  }
  private ipRule(callerIp: string | undefined): EgressIpRule | undefined {
    if (callerIp === undefined || this.byCaller.size === 0) return undefined;
    return this.byCaller.get(canon(callerIp));
  }
}

function canon(ip: string): string {
  // Downstream addresses of an IPv4 client on a dual-stack socket look like ::ffff:10.0.0.1.
  const s = ip.startsWith('::ffff:') && ip.includes('.') ? ip.slice(7) : ip;
  const p = parseIp(s);
  return p ? formatIp(p) : s;
}

/**
 * Local-address check. Any 127.0.0.0/8 address is local on Linux; other addresses must be
 * assigned to an interface. The interface list is cached and re-read on a miss at most once per
 * `refreshMs`, so addresses added at run time are picked up without a syscall per connection.
 */
export class LocalAddresses {
  private set = new Set<string>();
  private readAt = -Infinity;
  constructor(private readonly refreshMs = 1000, private readonly now: () => number = Date.now) {}

  isLocal(address: string): boolean {
    const ip = parseIp(address);
    if (!ip) return false;
    if (isLoopback(ip)) return true;
    const key = formatIp(ip);
    if (this.set.has(key)) return true;
    const t = this.now();
    if (t - this.readAt >= this.refreshMs) {
      this.reload();
      this.readAt = t;
      return this.set.has(key);
    }
    return false;
  }

  private reload(): void {
    const s = new Set<string>();
    for (const list of Object.values(networkInterfaces())) {
      for (const a of list ?? []) {
        const ip = parseIp(a.address.split('%')[0] ?? '');
        if (ip) s.add(formatIp(ip));
      }
    }
    this.set = s;
  }
}

function isLoopback(ip: Ip): boolean {
  if (ip.family === 4) return ip.value >>> 24 === 127;
  return ip.w0 === 0 && ip.w1 === 0 && ip.w2 === 0 && ip.w3 === 1;
}

/** A source address the snapshot may bind that this host does not have. */
export interface SourceAddressProblem {
  readonly address: string;
  readonly usedBy: readonly string[];
}

export interface SourcePolicyInput {
  readonly cluster: Cluster;
  readonly filterSourceAddress?: string | undefined;
  readonly downstreamIp?: string | undefined;
  /** The caller's namespace as its verified mesh certificate proves it (mTLS connections only). */
  readonly peerNamespace?: string | undefined;
}

export class SourceAddressPolicy {
  constructor(
    private readonly defaultAddress: string | undefined,
    private readonly isLocal: (ip: string) => boolean,
  ) {}

  choose(input: SourcePolicyInput, egressIps: EgressIpIndex): SourceChoice {
    const c = input.cluster.sourceAddress;
    if (c !== undefined) return this.check(c, `cluster.sourceAddress (${input.cluster.name})`);
    const pool = input.cluster.sourceAddressPool;
    if (pool !== undefined) {
      const why = `source-address-pool (${input.cluster.name})`;
      for (const a of pool) if (this.isLocal(a)) return { address: a, why };
      const detail = pool.length === 0 ? 'this replica may use none of the pool\'s addresses (node placement)' : `none of the pool addresses this replica may use (${pool.join(', ')}) is assigned on this host`;
      return { address: pool[0], why, unavailable: detail };
    }
    if (input.filterSourceAddress !== undefined) return this.check(input.filterSourceAddress, 'filter sourceAddress (EGRESS_SOURCE)');
    const rule = egressIps.ruleFor(input.downstreamIp, input.peerNamespace);
    if (rule) {
      const why = input.peerNamespace === undefined ? `egressip:${rule.name}` : `egressip:${rule.name} (mTLS peer namespace ${input.peerNamespace})`;
      for (const a of rule.sourceAddresses) if (this.isLocal(a)) return { address: a, why };
      return { address: rule.sourceAddresses[0], why, unavailable: `none of EgressIP ${rule.name}'s addresses (${rule.sourceAddresses.join(', ')}) is assigned on this host` };
    }
    if (this.defaultAddress !== undefined) return this.check(this.defaultAddress, '--source-address');
    return OS_DEFAULT;
  }

  /**
   * The source addresses a snapshot may bind that are not assigned on this host, each with what
   * uses it — checked when the snapshot is applied, to be reported (connections that need one still
   * fail closed one by one). Addresses the proxy assigns itself (snapshot.managedAddresses: floating
   * pool addresses, the egress router's EGRESS_SOURCE in kernel mode) are not problems.
   */
  missingAt(snapshot: Snapshot): SourceAddressProblem[] {
    const managed = new Set((snapshot.managedAddresses ?? []).map((m) => m.address));
    const users = new Map<string, string[]>();
    const need = (address: string, user: string): void => {
      if (managed.has(address) || this.isLocal(address)) return;
      const list = users.get(address) ?? [];
      if (!list.includes(user)) list.push(user);
      users.set(address, list);
    };
    for (const c of snapshot.clusters) {
      if (c.sourceAddress !== undefined) need(c.sourceAddress, `cluster ${c.name}`);
      else if (c.sourceAddressPool !== undefined && c.sourceAddressPool.length > 0 && !c.sourceAddressPool.some((a) => managed.has(a) || this.isLocal(a))) {
        for (const a of c.sourceAddressPool) need(a, `cluster ${c.name} (pool)`);
      }
    }
    for (const l of snapshot.listeners) {
      for (const fc of [...l.filterChains, ...(l.defaultFilterChain ? [l.defaultFilterChain] : [])]) {
        if (fc.filter.type === 'explicit_proxy' && fc.filter.sourceAddress !== undefined) need(fc.filter.sourceAddress, `listener ${l.name} explicit proxy`);
      }
    }
    for (const r of snapshot.policy.egressIps) {
      if (!r.sourceAddresses.some((a) => managed.has(a) || this.isLocal(a))) for (const a of r.sourceAddresses) need(a, `EgressIP ${r.name}`);
    }
    if (this.defaultAddress !== undefined) need(this.defaultAddress, '--source-address');
    return [...users].map(([address, usedBy]) => ({ address, usedBy }));
  }

  private check(address: string, why: string): SourceChoice {
    if (this.isLocal(address)) return { address, why };
    return { address, why, unavailable: `source address ${address} (${why}) is not assigned on this host` };
  }
}
