/**
 * Observed egress -> the ServiceEntries (and, via a gateway, the objects of `gen egress`) that
 * admit exactly that traffic. Pure and deterministic: the same observations give the same YAML,
 * whatever order they arrive in (objects sorted by name, ports by number, evidence aggregated).
 *
 * One ServiceEntry per external host with the ports and protocols seen (HTTP by Host, TLS by SNI or
 * CONNECT, TCP by address); more than `wildcardThreshold` distinct subdomains of one parent domain
 * become one `*.parent` entry (resolution NONE: the requested name is resolved when used).
 */
import { parseIp } from '../net/ip.js';
import { egressObjects, mergeGateways, objectName, SUBSET, type KubeObject } from './egress.js';
import type { Authored } from './render.js';

export type SeenProtocol = 'HTTP' | 'TLS' | 'TCP';

/** One destination host:port/protocol as observed (access log, admin /observed). */
export interface Seen {
  readonly host: string;
  readonly port: number;
  readonly protocol: SeenProtocol;
  readonly count: number;
  readonly firstSeen: string;
  readonly lastSeen: string;
  /** Calling namespaces (admin) or caller addresses (access log: it has no namespace). */
  readonly callers: readonly string[];
}

export interface SuggestOptions {
  readonly namespace: string;
  /** Objects of `gen egress` for every HTTP and TLS destination, through this Gateway. */
  readonly viaGateway?: { readonly name: string; readonly selector: Readonly<Record<string, string>>; readonly service: string };
  /** More distinct subdomains of one parent than this -> one wildcard entry (0 = never). */
  readonly wildcardThreshold: number;
}

interface HostEvidence {
  host: string;
  readonly ports: Map<number, SeenProtocol>;
  count: number;
  firstSeen: string;
  lastSeen: string;
  readonly callers: Set<string>;
  readonly members: Set<string>;
}

const PROTOCOL_RANK: Record<SeenProtocol, number> = { TCP: 0, TLS: 1, HTTP: 2 };

/** Aggregates observations per host, folding subdomains into wildcards past the threshold. */
export function aggregate(seen: readonly Seen[], wildcardThreshold: number): HostEvidence[] {
  const byHost = new Map<string, HostEvidence>();
  const add = (key: string, s: Seen): void => {
    let e = byHost.get(key);
    if (e === undefined) {
      e = { host: key, ports: new Map(), count: 0, firstSeen: s.firstSeen, lastSeen: s.lastSeen, callers: new Set(), members: new Set() };
      byHost.set(key, e);
    }
    const prev = e.ports.get(s.port);
    // One protocol per port: the most specific seen (HTTP > TLS > TCP) — a port can carry only one.
    if (prev === undefined || PROTOCOL_RANK[s.protocol] > PROTOCOL_RANK[prev]) e.ports.set(s.port, s.protocol);
    e.count += s.count;
    if (s.firstSeen < e.firstSeen) e.firstSeen = s.firstSeen;
    if (s.lastSeen > e.lastSeen) e.lastSeen = s.lastSeen;
    for (const c of s.callers) e.callers.add(c);
    e.members.add(s.host);
  };
  const wildcards = wildcardParents(seen, wildcardThreshold);
  for (const s of seen) {
    const parent = parentOf(s.host);
    add(parent !== undefined && wildcards.has(parent) ? `*.${parent}` : s.host, s);
  }
  return [...byHost.values()].sort((a, b) => (a.host < b.host ? -1 : a.host > b.host ? 1 : 0));
}

function parentOf(host: string): string | undefined {
  if (parseIp(host) !== undefined) return undefined;
  const dot = host.indexOf('.');
  const parent = dot < 0 ? '' : host.slice(dot + 1);
  return parent.includes('.') ? parent : undefined; // never *.com
}

function wildcardParents(seen: readonly Seen[], threshold: number): Set<string> {
  const out = new Set<string>();
  if (threshold <= 0) return out;
  const children = new Map<string, Set<string>>();
  for (const s of seen) {
    const p = parentOf(s.host);
    if (p === undefined) continue;
    let set = children.get(p);
    if (set === undefined) children.set(p, (set = new Set()));
    set.add(s.host);
  }
  for (const [p, set] of children) if (set.size > threshold) out.add(p);
  return out;
}

function evidenceLines(e: HostEvidence): string[] {
  const ports = [...e.ports.entries()].sort((a, b) => a[0] - b[0]).map(([n, p]) => `${n}/${p}`).join(', ');
  const lines = [`observed ${e.host}: ${e.count} request(s)/connection(s) on ${ports}, first ${e.firstSeen}, last ${e.lastSeen}`];
  lines.push(`callers: ${[...e.callers].sort().join(', ') || 'unknown'}`);
  if (e.host.startsWith('*.')) lines.push(`wildcard for ${e.members.size} subdomains: ${[...e.members].sort().slice(0, 10).join(', ')}${e.members.size > 10 ? ', ...' : ''}`);
  return lines;
}

function serviceEntry(e: HostEvidence, namespace: string): KubeObject {
  const ports = [...e.ports.entries()].sort((a, b) => a[0] - b[0]).map(([number, protocol]) => ({ number, name: `${protocol.toLowerCase()}-${number}`, protocol }));
  const ip = parseIp(e.host) !== undefined;
  if (ip) {
    // TCP (or anything) by address: Istio needs a host name; the address is what matches.
    return {
      apiVersion: 'networking.istio.io/v1',
      kind: 'ServiceEntry',
      metadata: { name: `address-${objectName(e.host)}`, namespace },
      spec: { hosts: [`${objectName(e.host)}.address.external`], addresses: [e.host], ports, location: 'MESH_EXTERNAL', resolution: 'STATIC', endpoints: [{ address: e.host }] },
    };
  }
  return {
    apiVersion: 'networking.istio.io/v1',
    kind: 'ServiceEntry',
    metadata: { name: objectName(e.host), namespace },
    spec: { hosts: [e.host], ports, location: 'MESH_EXTERNAL', resolution: e.host.startsWith('*.') ? 'NONE' : 'DNS' },
  };
}

/** The objects to apply, each with its evidence comment, sorted by kind then name. */
export function suggest(seen: readonly Seen[], o: SuggestOptions): Authored[] {
  const items: Authored[] = [];
  const gatewayObjects: KubeObject[] = [];
  for (const e of aggregate(seen, o.wildcardThreshold)) {
    const se = serviceEntry(e, o.namespace);
    items.push({ object: se, comment: evidenceLines(e) });
    if (o.viaGateway === undefined || parseIp(e.host) !== undefined) continue;
    for (const [port, protocol] of [...e.ports.entries()].sort((a, b) => a[0] - b[0])) {
      if (protocol === 'TCP') continue; // a gateway routes TCP by port alone: one destination per port, written by hand
      const objs = egressObjects({
        host: e.host, port, tls: protocol === 'HTTP' ? 'none' : 'passthrough', namespace: o.namespace,
        gatewayName: o.viaGateway.name, gatewaySelector: o.viaGateway.selector, gatewayService: o.viaGateway.service,
      });
      gatewayObjects.push(...objs.filter((x) => x.kind !== 'ServiceEntry'));
    }
  }
  for (const object of mergeRoutes(mergeGateways(gatewayObjects))) {
    const comment = object.kind === 'DestinationRule' ? [`subset ${SUBSET} of the gateway's Service, named by the mesh VirtualServices`] : undefined;
    items.push(comment ? { object, comment } : { object });
  }
  const order: Record<string, number> = { ServiceEntry: 0, Gateway: 1, VirtualService: 2, DestinationRule: 3 };
  return items.sort((a, b) => (order[a.object.kind] ?? 9) - (order[b.object.kind] ?? 9) || (a.object.metadata.name < b.object.metadata.name ? -1 : a.object.metadata.name > b.object.metadata.name ? 1 : 0));
}

/** VirtualServices of one host seen on several ports: one object with all their http and tls routes. */
function mergeRoutes(objects: readonly KubeObject[]): KubeObject[] {
  const out: KubeObject[] = [];
  const at = new Map<string, number>();
  for (const o of objects) {
    const key = `${o.kind}/${o.metadata.namespace}/${o.metadata.name}`;
    const i = at.get(key);
    if (o.kind !== 'VirtualService' || i === undefined) {
      if (i === undefined) {
        at.set(key, out.length);
        out.push(o);
      }
      continue;
    }
    const prev = out[i]!;
    const spec: Record<string, unknown> = { ...prev.spec };
    for (const section of ['http', 'tls'] as const) {
      const both = [...((prev.spec[section] as unknown[] | undefined) ?? []), ...((o.spec[section] as unknown[] | undefined) ?? [])];
      if (both.length > 0) spec[section] = both;
    }
    out[i] = { ...prev, spec };
  }
  return out;
}
