/**
 * Source address pools: the sets of addresses that traffic may leave from, and which gateway
 * replica may use which of them.
 *
 * Three inputs give a pool:
 * - a ServiceEntry's `tollgate.io/source-address-pool` annotation (a list and/or ranges), with
 *   `tollgate.io/source-address-mode: pool|floating` beside it;
 * - a k8s.ovn.org/v1 EgressIP with several `egressIPs`;
 * - an OpenShift SDN NetNamespace's `egressIPs` (a namespace's addresses, in order). OpenShift puts
 *   each such address on exactly one node at a time, so these pools are floating.
 *
 * Placement: an OpenShift SDN HostSubnet's `egressIPs` lists the addresses its node (`host`) may
 * host. When any HostSubnet lists an address of a pool, a replica may use only the addresses its own
 * node's HostSubnet lists (the replica knows its node from NODE_NAME). Without HostSubnets every
 * replica may use every address of the pool.
 */
import { isIP } from 'node:net';
import type { Diagnostic } from '../config/diagnostics.js';
import type { Resource } from '../config/decode.js';
import type { EgressIpSpec, HostSubnetBody, NetNamespaceBody } from '../config/types.js';
import { formatIp, parseIp } from '../net/ip.js';

export const SOURCE_ADDRESS_POOL_ANNOTATION = 'tollgate.io/source-address-pool';
export const SOURCE_ADDRESS_MODE_ANNOTATION = 'tollgate.io/source-address-mode';
/** More addresses than this in one pool is almost certainly a typo in a range. */
export const MAX_POOL_ADDRESSES = 256;

export type SourceAddressMode = 'pool' | 'floating';

export interface HostSubnetModel {
  readonly resource: Resource;
  readonly name: string;
  /** The node this subnet belongs to (HostSubnet.host, else its name). */
  readonly host: string;
  readonly hostIP?: string;
  readonly egressIPs: readonly string[];
}

export interface NetNamespaceModel {
  readonly resource: Resource;
  /** The namespace (netname, else the object's name). */
  readonly namespace: string;
  readonly egressIPs: readonly string[];
}

export interface SourcePool {
  /** `ServiceEntry ns/name`, `EgressIP name`, `NetNamespace name`. */
  readonly label: string;
  readonly resource: Resource;
  readonly mode: SourceAddressMode;
  /** Every address, in the order the config gives them. Empty when the annotation was invalid. */
  readonly addresses: readonly string[];
  /** Address -> nodes whose HostSubnet lists it (absent: no HostSubnet constrains it). */
  readonly placement: Readonly<Record<string, readonly string[]>>;
}

export function hostSubnetsOf(resources: readonly Resource[]): HostSubnetModel[] {
  return resources
    .filter((r) => r.kind === 'HostSubnet')
    .map((r) => {
      const b = r.body as HostSubnetBody;
      return { resource: r, name: r.name, host: b.host ?? r.name, ...(b.hostIP ? { hostIP: b.hostIP } : {}), egressIPs: (b.egressIPs ?? []).map(canonical) };
    });
}

export function netNamespacesOf(resources: readonly Resource[]): NetNamespaceModel[] {
  return resources
    .filter((r) => r.kind === 'NetNamespace')
    .map((r) => {
      const b = r.body as NetNamespaceBody;
      return { resource: r, namespace: b.netname ?? r.name, egressIPs: (b.egressIPs ?? []).map(canonical) };
    });
}

function canonical(address: string): string {
  const p = parseIp(address);
  return p ? formatIp(p) : address;
}

/**
 * Parses `192.0.2.10, 192.0.2.11` and/or `192.0.2.20-192.0.2.23` (commas or spaces between items;
 * a range is two addresses of one family, the second not below the first).
 */
export function parseAddressPool(text: string): { addresses: string[] } | { error: string } {
  const out: string[] = [];
  const items = text.split(/[\s,]+/).filter((x) => x !== '');
  if (items.length === 0) return { error: 'the pool is empty' };
  for (const item of items) {
    const dash = item.indexOf('-');
    if (dash < 0) {
      if (isIP(item) === 0) return { error: `"${item}" is not an IP address` };
      out.push(canonical(item));
    } else {
      const range = expandRange(item.slice(0, dash), item.slice(dash + 1), MAX_POOL_ADDRESSES - out.length);
      if ('error' in range) return { error: `range "${item}": ${range.error}` };
      out.push(...range.addresses);
    }
    if (out.length > MAX_POOL_ADDRESSES) return { error: `more than ${MAX_POOL_ADDRESSES} addresses` };
  }
  const dup = out.find((a, i) => out.indexOf(a) !== i);
  if (dup) return { error: `${dup} is listed twice` };
  return { addresses: out };
}

function expandRange(fromText: string, toText: string, room: number): { addresses: string[] } | { error: string } {
  const from = parseIp(fromText);
  const to = parseIp(toText);
  if (!from || !to) return { error: 'both ends must be IP addresses' };
  if (from.family !== to.family) return { error: 'both ends must be of one address family' };
  const addresses: string[] = [];
  if (from.family === 4 && to.family === 4) {
    if (to.value < from.value) return { error: 'the end is below the start' };
    if (to.value - from.value + 1 > room) return { error: `more than ${MAX_POOL_ADDRESSES} addresses` };
    for (let v = from.value; v <= to.value; v++) addresses.push(formatIp({ family: 4, value: v >>> 0 }));
    return { addresses };
  }
  if (from.family === 6 && to.family === 6) {
    if (from.w0 !== to.w0 || from.w1 !== to.w1 || from.w2 !== to.w2) return { error: 'an IPv6 range may differ only in its last 32 bits' };
    if (to.w3 < from.w3) return { error: 'the end is below the start' };
    if (to.w3 - from.w3 + 1 > room) return { error: `more than ${MAX_POOL_ADDRESSES} addresses` };
    for (let v = from.w3; v <= to.w3; v++) addresses.push(formatIp({ ...from, w3: v >>> 0 }));
    return { addresses };
  }
  return { error: 'bad range' };
}

/** Address -> nodes whose HostSubnet lists it. */
function placementOf(addresses: readonly string[], hostSubnets: readonly HostSubnetModel[]): Record<string, string[]> {
  const placement: Record<string, string[]> = {};
  for (const a of addresses) {
    const nodes = hostSubnets.filter((h) => h.egressIPs.includes(a)).map((h) => h.host).sort();
    if (nodes.length > 0) placement[a] = nodes;
  }
  return placement;
}

/**
 * Pools from ServiceEntry annotations, EgressIPs and NetNamespaces. A bad annotation gives a pool
 * with no addresses (connections through it fail closed) and an error diagnostic.
 */
export function buildSourcePools(
  serviceEntries: readonly Resource[],
  egressIps: readonly Resource<EgressIpSpec>[],
  netNamespaces: readonly NetNamespaceModel[],
  hostSubnets: readonly HostSubnetModel[],
  out: Diagnostic[],
): SourcePool[] {
  const pools: SourcePool[] = [];
  const diag = (r: Resource, annotation: string, message: string, hint: string): void => {
    out.push({ severity: 'error', code: 'TG_SOURCE_POOL_BAD', message, resource: r.ref, pos: { file: r.doc.file, line: r.doc.lineOf(['metadata', 'annotations', annotation]) }, hint });
  };
  for (const se of serviceEntries) {
    const text = se.annotations[SOURCE_ADDRESS_POOL_ANNOTATION];
    const modeText = se.annotations[SOURCE_ADDRESS_MODE_ANNOTATION];
    if (text === undefined) {
      if (modeText !== undefined) diag(se, SOURCE_ADDRESS_MODE_ANNOTATION, `${SOURCE_ADDRESS_MODE_ANNOTATION} without ${SOURCE_ADDRESS_POOL_ANNOTATION}`, `add ${SOURCE_ADDRESS_POOL_ANNOTATION}: "<ip>, <ip>" or "<first>-<last>"`);
      continue;
    }
    let mode: SourceAddressMode = 'pool';
    if (modeText === 'floating' || modeText === 'pool') mode = modeText;
    else if (modeText !== undefined) diag(se, SOURCE_ADDRESS_MODE_ANNOTATION, `${SOURCE_ADDRESS_MODE_ANNOTATION}: "${modeText}" is not pool or floating`, 'use pool (every replica uses its own addresses) or floating (one replica holds each address)');
    const parsed = parseAddressPool(text);
    if ('error' in parsed) diag(se, SOURCE_ADDRESS_POOL_ANNOTATION, `${SOURCE_ADDRESS_POOL_ANNOTATION}: ${parsed.error}; connections to these hosts fail closed`, 'write "192.0.2.10, 192.0.2.11" or "192.0.2.10-192.0.2.13"');
    const addresses = 'error' in parsed ? [] : parsed.addresses;
    pools.push({ label: `ServiceEntry ${se.namespace}/${se.name}`, resource: se, mode, addresses, placement: placementOf(addresses, hostSubnets) });
  }
  for (const e of egressIps) {
    const addresses = e.spec.egressIPs.map(canonical);
    pools.push({ label: `EgressIP ${e.name}`, resource: e, mode: 'pool', addresses, placement: placementOf(addresses, hostSubnets) });
  }
  for (const n of netNamespaces) {
    if (n.egressIPs.length === 0) continue;
    pools.push({ label: `NetNamespace ${n.namespace}`, resource: n.resource, mode: 'floating', addresses: n.egressIPs, placement: placementOf(n.egressIPs, hostSubnets) });
  }
  return pools;
}

/**
 * The addresses of a pool that a replica on `node` may use, in pool order. When HostSubnets place
 * any address of the pool, only the ones placed on this node; a replica that does not know its node
 * then gets none (it cannot prove where it runs). Unplaced pools are usable everywhere.
 */
export function usableAddresses(pool: SourcePool, node: string | undefined): string[] {
  if (Object.keys(pool.placement).length === 0) return [...pool.addresses];
  if (node === undefined) return [];
  return pool.addresses.filter((a) => pool.placement[a]?.includes(node));
}

/** Lease name for a floating address (a Kubernetes object name: lower case, digits and dashes). */
export function leaseNameOf(address: string): string {
  return `tollgate-source-${address.toLowerCase().replace(/[.:]/g, '-')}`;
}
