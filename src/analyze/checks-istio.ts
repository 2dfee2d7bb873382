/**
 * Checks istioctl analyze also makes on VirtualServices, DestinationRules, ServiceEntries, Sidecars
 * and Services (virtualservice.*, destinationrule.*, serviceentry.*, sidecar.*, service.* analyzers),
 * reported with Tollgate's codes and Istio's (istio-codes.ts).
 */
import type { HttpMatch, L4Route, ServiceSpecPort, TrafficPolicy } from '../config/types.js';
import type { VirtualServiceModel } from '../model/build.js';
import { MESH_CONFIGMAP } from '../model/mesh-config.js';
import { protocolOfServicePort } from '../model/registry.js';
import { labelsMatch, resolveHost } from '../model/selectors.js';
import { patternsOverlap } from '../net/hostname.js';
import { isPartialWildcard } from '../config/schema/istio.js';
import type { Check } from './context.js';

/** Namespaces a resource is visible in: undefined means every namespace. */
function visibleIn(exportTo: readonly string[] | undefined, ns: string): Set<string> | undefined {
  if (!exportTo || exportTo.length === 0 || exportTo.includes('*')) return undefined;
  return new Set(exportTo.map((e) => (e === '.' ? ns : e)));
}

function visibilityOverlaps(a: Set<string> | undefined, b: Set<string> | undefined): boolean {
  if (a === undefined || b === undefined) return true;
  return [...a].some((x) => b.has(x));
}

/** Two VirtualServices for the same host on the mesh gateway: sidecars use one of them, which one is undefined. */
export const meshHostConflicts: Check = (f) => {
  const mesh = f.model.virtualServices.filter((vs) => vs.gateways.includes('mesh'));
  for (const vs of mesh) {
    const seen = visibleIn(vs.resource.spec.exportTo, vs.resource.namespace);
    const clashes: { other: VirtualServiceModel; host: string }[] = [];
    for (const other of mesh) {
      if (other === vs || !visibilityOverlaps(seen, visibleIn(other.resource.spec.exportTo, other.resource.namespace))) continue;
      const host = vs.hosts.find((h) => other.hosts.some((o) => patternsOverlap(h, o)));
      if (host !== undefined) clashes.push({ other, host });
    }
    const first = clashes[0];
    if (!first) continue;
    f.report('error', 'TG_VS_MESH_HOST_CONFLICT', vs.resource, ['spec', 'hosts'], `host ${first.host} is also routed on the mesh gateway by VirtualService ${clashes.map((c) => c.other.key).join(', ')}: sidecars apply only one of them, and which one is undefined`, 'merge the VirtualServices for this host into one, or narrow them with exportTo');
  }
};

/** A Gateway server host pattern (`ns/host`, `./host`, `*\/host`) as seen from a VirtualService's namespace. */
function serverHostApplies(hostNs: string, gatewayNs: string, vsNs: string): boolean {
  return hostNs === '*' || hostNs === '' || hostNs === vsNs || (hostNs === '.' && gatewayNs === vsNs);
}

/**
 * Gateways bound to a VirtualService that serve none of its hosts (the binding does nothing there),
 * and hosts that none of its Gateways serve (their routes are used on no gateway).
 */
export const vsHostsInGateways: Check = (f) => {
  const byKey = new Map(f.model.gateways.map((g) => [g.key, g]));
  for (const vs of f.model.virtualServices) {
    const bound = vs.gateways.map((key, i) => ({ key, i, g: byKey.get(key) })).filter((x): x is { key: string; i: number; g: NonNullable<typeof x.g> } => x.g !== undefined);
    if (bound.length === 0) continue;
    const servedBy = bound.map((b) => ({ ...b, hosts: b.g.servers.flatMap((s) => s.hosts.filter((h) => serverHostApplies(h.namespace, b.g.resource.namespace, vs.resource.namespace)).map((h) => h.host)) }));
    for (const b of servedBy) {
      if (vs.hosts.some((h) => b.hosts.some((gh) => patternsOverlap(gh, h)))) continue;
      f.report('warning', 'TG_VS_HOST_NOT_IN_GATEWAY', vs.resource, ['spec', 'gateways', b.i], `none of the hosts ${vs.hosts.join(', ')} is served by Gateway ${b.key} (its servers accept ${[...new Set(b.hosts)].join(', ') || 'no host visible to this namespace'}): this VirtualService's routes are not used on that gateway`, `add the hosts to a server of Gateway ${b.key}, or remove it from spec.gateways`);
    }
    const served = servedBy.flatMap((b) => b.hosts);
    const unserved = vs.hosts.filter((h) => !served.some((gh) => patternsOverlap(gh, h)));
    if (unserved.length === 0 || unserved.length === vs.hosts.length) continue; // all unserved: reported above per gateway
    f.report('warning', 'TG_VS_HOST_UNSERVED', vs.resource, ['spec', 'hosts'], `host(s) ${unserved.join(', ')} are served by none of its Gateways (${bound.map((b) => b.key).join(', ')}): the routes for them are not used on any gateway`, `add ${unserved.join(', ')} to a server of one of its Gateways, or remove them from spec.hosts`);
  }
};

/**
 * A route to a Service with several ports and no destination port: Istio's analyzer calls it
 * ambiguous; Tollgate (like Envoy under Istio) uses the port the request arrived on (clusters.ts).
 */
export const destinationPortRequired: Check = (f) => {
  for (const vs of f.model.virtualServices) {
    const ns = vs.resource.namespace;
    const kinds = ['http', 'tcp', 'tls'] as const;
    for (const kind of kinds) {
      ((vs.spec[kind] ?? []) as readonly L4Route[]).forEach((r, i) => {
        (r.route ?? []).forEach((d, j) => {
          if (d.destination.port?.number !== undefined) return;
          const host = resolveHost(d.destination.host, ns);
          const svc = f.model.registry.lookup(host, ns).find((s) => s.host === host);
          if (!svc || svc.ports.length < 2) return;
          f.report('info', 'TG_DEST_PORT_REQUIRED', vs.resource, ['spec', kind, i, 'route', j, 'destination'], `${kind} route destination ${host} names no port, and ${svc.resource.ref.kind} ${svc.resource.name} has ${svc.ports.length} (${svc.ports.map((p) => p.number).join(', ')}): the port the request arrived on is used`, `add destination.port.number (one of ${svc.ports.map((p) => p.number).join(', ')}) to make the choice explicit`);
        });
      });
    }
  }
};

/** Mirror destinations must exist too: mirrored copies of requests to an unknown host are dropped. */
export const mirrorDestinations: Check = (f) => {
  for (const vs of f.model.virtualServices) {
    const ns = vs.resource.namespace;
    (vs.spec.http ?? []).forEach((r, i) => {
      const mirrors = [
        ...(r.mirror ? [{ host: r.mirror.host, path: ['spec', 'http', i, 'mirror', 'host'] }] : []),
        ...(r.mirrors ?? []).map((m, k) => ({ host: m.destination.host, path: ['spec', 'http', i, 'mirrors', k, 'destination', 'host'] })),
      ];
      for (const m of mirrors) {
        const host = resolveHost(m.host, ns);
        if (f.model.registry.lookup(host, ns).length > 0) continue;
        f.report('error', 'TG_MIRROR_NOT_IN_REGISTRY', vs.resource, m.path, `http route ${i} mirrors to ${host}, which is not in the registry: the copies are dropped`, `add a ServiceEntry or Service for ${host}, or fix the mirror host`);
      }
    });
  }
};

function tlsWithoutCa(tp: TrafficPolicy['tls'] | undefined, hasWorkloadSelector: boolean): boolean {
  if (!tp || (tp.mode !== 'SIMPLE' && tp.mode !== 'MUTUAL')) return false;
  if (tp.caCertificates || tp.insecureSkipVerify) return false;
  // A credentialName Secret brings its CA (ca.crt) when the rule is scoped to gateway workloads.
  return !(tp.credentialName && hasWorkloadSelector);
}

/** TLS origination with no CA to verify the server against: Tollgate falls back to the system trust store. */
export const originationCaCertificates: Check = (f) => {
  for (const dr of f.model.destinationRules) {
    const hasSelector = dr.spec.workloadSelector !== undefined;
    const policies = [{ tp: dr.spec.trafficPolicy, path: ['spec', 'trafficPolicy'] as (string | number)[], subset: '' }, ...(dr.spec.subsets ?? []).map((s, i) => ({ tp: s.trafficPolicy, path: ['spec', 'subsets', i, 'trafficPolicy'] as (string | number)[], subset: ` subset ${s.name}` }))];
    for (const { tp, path, subset } of policies) {
      if (tlsWithoutCa(tp?.tls, hasSelector)) {
        f.report('warning', 'TG_DR_TLS_NO_CA', dr.resource, [...path, 'tls'], `tls.mode ${tp?.tls?.mode} for ${dr.host}${subset} sets no caCertificates: the server certificate is checked against the system trust store only, not against a CA you chose`, 'set tls.caCertificates (or credentialName with a ca.crt) to the CA that signs the server certificate');
      }
      (tp?.portLevelSettings ?? []).forEach((pl, k) => {
        if (!tlsWithoutCa(pl.tls, hasSelector)) return;
        f.report('warning', 'TG_DR_PORT_TLS_NO_CA', dr.resource, [...path, 'portLevelSettings', k, 'tls'], `tls.mode ${pl.tls?.mode} for ${dr.host}${subset} port ${pl.port?.number ?? '?'} sets no caCertificates: the server certificate is checked against the system trust store only`, 'set tls.caCertificates for this port');
      });
    }
  }
};

/**
 * Whether the mesh config turns on DNS address auto-allocation (Istio's ISTIO_META_DNS_AUTO_ALLOCATE
 * in defaultConfig.proxyMetadata): in a MeshConfig document, or in the `mesh` key of ConfigMap istio.
 */
export function dnsAutoAllocate(f: Parameters<Check>[0]): boolean {
  return f.model.resources.some((r) => {
    if (r.kind === 'MeshConfig') return /"ISTIO_META_DNS_AUTO_ALLOCATE":"true"/.test(JSON.stringify(r.spec));
    if (r.kind !== 'ConfigMap' || r.name !== MESH_CONFIGMAP.name || r.namespace !== MESH_CONFIGMAP.namespace) return false;
    const mesh = (r.body['data'] as Record<string, unknown> | undefined)?.[MESH_CONFIGMAP.key];
    return typeof mesh === 'string' && /ISTIO_META_DNS_AUTO_ALLOCATE['"]?\s*:\s*['"]?true/.test(mesh);
  });
}

/** TCP (or unset) ServiceEntry ports with no addresses: a sidecar can only tell such services apart by destination IP. */
export const serviceEntryAddresses: Check = (f) => {
  if (dnsAutoAllocate(f)) return;
  for (const r of f.model.resources) {
    if (r.kind !== 'ServiceEntry') continue;
    const spec = r.spec as { addresses?: readonly string[]; ports?: readonly { number: number; protocol?: string }[] };
    const status = r.body['status'] as { addresses?: readonly unknown[] } | undefined;
    if ((spec.addresses ?? []).length > 0 || (status?.addresses ?? []).length > 0) continue;
    const tcp = (spec.ports ?? []).filter((p) => !p.protocol || p.protocol.toUpperCase() === 'TCP');
    if (tcp.length === 0) continue;
    f.report('warning', 'TG_SE_ADDRESSES_REQUIRED', r, ['spec', 'ports'], `port(s) ${tcp.map((p) => p.number).join(', ')} are TCP (or have no protocol) and the ServiceEntry has no addresses: a sidecar sees only the destination IP, so it cannot tell this service from others on the same port`, 'add spec.addresses, or give the ports an HTTP/TLS protocol');
  }
};

/** Sidecars: one default (no workloadSelector) per namespace; selectors that select something, and not the same pod twice. */
export const sidecarSelectors: Check = (f) => {
  const byNs = new Map<string, typeof f.model.sidecars[number][]>();
  for (const s of f.model.sidecars) byNs.set(s.namespace, [...(byNs.get(s.namespace) ?? []), s]);
  for (const [ns, sidecars] of byNs) {
    const defaults = sidecars.filter((s) => !s.spec.workloadSelector?.labels || Object.keys(s.spec.workloadSelector.labels).length === 0);
    if (defaults.length > 1) {
      for (const s of defaults) f.report('error', 'TG_SIDECAR_MULTIPLE_DEFAULTS', s, ['spec'], `Sidecars ${defaults.map((d) => d.name).join(', ')} in namespace ${ns} have no workloadSelector: which one applies to the namespace is undefined`, 'keep one Sidecar without workloadSelector per namespace');
    }
    const pods = f.model.workloads.filter((w) => w.namespace === ns);
    for (const s of sidecars) {
      const sel = s.spec.workloadSelector?.labels;
      if (!sel || Object.keys(sel).length === 0) continue;
      const selected = pods.filter((w) => labelsMatch(sel, w.labels));
      if (selected.length === 0) {
        f.report('warning', 'TG_SIDECAR_NO_WORKLOAD', s, ['spec', 'workloadSelector'], `workloadSelector ${Object.entries(sel).map(([k, v]) => `${k}=${v}`).join(',')} selects no Pod or Deployment in namespace ${ns}`, 'fix the labels, or include the workload in the config');
        continue;
      }
      const rivals = sidecars.filter((o) => o !== s && o.spec.workloadSelector?.labels && Object.keys(o.spec.workloadSelector.labels).length > 0 && selected.some((w) => labelsMatch(o.spec.workloadSelector?.labels ?? {}, w.labels)));
      if (rivals.length === 0) continue;
      const pod = selected.find((w) => rivals.some((o) => labelsMatch(o.spec.workloadSelector?.labels ?? {}, w.labels)));
      f.report('error', 'TG_SIDECAR_SELECTOR_CONFLICT', s, ['spec', 'workloadSelector'], `selects ${pod?.kind} ${pod?.name}, which Sidecar(s) ${rivals.map((o) => o.name).join(', ')} also select: which one applies is undefined`, 'make the workloadSelectors select disjoint workloads');
    }
  }
};

const SYSTEM_NAMESPACES = new Set(['istio-system', 'kube-system', 'kube-public', 'kube-node-lease', 'local-path-storage']);
const PORT_NAME_PROTOCOLS = new Set(['http', 'http2', 'https', 'grpc', 'grpc-web', 'tls', 'tcp', 'mongo', 'h2c', 'udp', 'mysql', 'redis']);

/**
 * appProtocol wins over the port name (Istio's protocol selection). When one of them says HTTP/2
 * (GRPC, HTTP2) and the other a different protocol, the upstream protocol is not the one a reader
 * of the name expects: gRPC sent as HTTP/1.1 fails, and so does HTTP/2 to an HTTP/1.1-only server.
 */
function http2Disagreement(p: ServiceSpecPort): string | undefined {
  if (p.appProtocol === undefined || p.name === undefined) return undefined;
  const byName = protocolOfServicePort({ port: p.port, name: p.name });
  const declared = protocolOfServicePort(p);
  const prefix = p.name.toLowerCase().split('-')[0] ?? '';
  if (!PORT_NAME_PROTOCOLS.has(prefix) || byName === declared) return undefined;
  const h2 = (x: string): boolean => x === 'GRPC' || x === 'HTTP2';
  if (!h2(byName) && !h2(declared)) return undefined;
  const wire = h2(declared) ? 'HTTP/2' : declared === 'HTTP' ? 'HTTP/1.1' : declared;
  return `port ${p.port} is named "${p.name}" (${byName}) but appProtocol "${p.appProtocol}" declares ${declared}: appProtocol wins, so requests to this port go upstream as ${wire}`;
}

/** Service port names decide the protocol (http-, tls-, grpc-...): a port without one is plain TCP to Tollgate. */
export const servicePortNames: Check = (f) => {
  for (const svc of f.model.kubernetesServices) {
    if (SYSTEM_NAMESPACES.has(svc.namespace)) continue;
    const external = svc.spec.type === 'ExternalName';
    (svc.spec.ports ?? []).forEach((p, i) => {
      const prefix = (p.name ?? '').toLowerCase().split('-')[0] ?? '';
      const named = p.appProtocol !== undefined || PORT_NAME_PROTOCOLS.has(prefix);
      if (external) {
        if (named && protocolOfServicePort(p) !== 'TCP') return;
        f.report('warning', 'TG_EXTERNALNAME_PORT_NAME', svc, ['spec', 'ports', i], `ExternalName Service port ${p.port}${p.name ? ` (${p.name})` : ''} has no HTTP/TLS protocol prefix: TCP to an ExternalName Service is not forwarded by host, so connections on this port may not reach ${svc.spec.externalName ?? 'the external name'}`, 'name the port after its protocol (https-..., http-..., tls-...), or set appProtocol');
        return;
      }
      const conflict = http2Disagreement(p);
      if (conflict !== undefined) f.report('warning', 'TG_SERVICE_PORT_PROTOCOL_CONFLICT', svc, ['spec', 'ports', i], conflict, 'make the port name prefix and appProtocol name the same protocol (grpc-... with appProtocol grpc, http-... with appProtocol http)');
      if (named) return;
      f.report('info', 'TG_SERVICE_PORT_PROTOCOL', svc, ['spec', 'ports', i], `port ${p.port}${p.name ? ` name "${p.name}"` : ' (unnamed)'} does not follow <protocol>[-<suffix>] and has no appProtocol: Tollgate treats it as TCP (Istio would sniff the protocol)`, `name it http-..., grpc-..., tls-... or tcp-..., or set appProtocol`);
    });
  }
};

function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v !== null && typeof v === 'object') return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`).join(',')}}`;
  return JSON.stringify(v);
}

/** An earlier match that every request of `later` also matches: same fields, and a uri prefix that covers later's. */
function covers(earlier: Record<string, unknown>, later: Record<string, unknown>): boolean {
  if (canonical(earlier) === canonical(later)) return true;
  const eu = earlier['uri'] as HttpMatch['uri'] | undefined;
  const lu = later['uri'] as HttpMatch['uri'] | undefined;
  if (eu?.prefix === undefined || lu?.prefix === undefined || !lu.prefix.startsWith(eu.prefix)) return false;
  return Object.entries(earlier).every(([k, v]) => k === 'uri' || k === 'name' || canonical(later[k]) === canonical(v));
}

/** Rules after a catch-all, and matches an earlier match already takes: never used (first match wins). */
export const ruleReachability: Check = (f) => {
  for (const vs of f.model.virtualServices) {
    for (const kind of ['http', 'tcp', 'tls'] as const) {
      const rules = (vs.spec[kind] ?? []) as readonly { match?: readonly Record<string, unknown>[] }[];
      const earlier: { rule: number; match: Record<string, unknown> }[] = [];
      let catchAll: number | undefined;
      rules.forEach((r, i) => {
        const path = ['spec', kind, i];
        if (catchAll !== undefined) {
          f.report('warning', 'TG_VS_RULE_UNREACHABLE', vs.resource, path, `${kind} rule ${i} is never used: rule ${catchAll} before it has no match and takes every request`, 'move the rule without match to the end');
          return;
        }
        const matches = (r.match ?? []).map((m) => Object.fromEntries(Object.entries(m).filter(([k]) => k !== 'name')));
        if (matches.length === 0) {
          catchAll = i;
          return;
        }
        let dead = 0;
        matches.forEach((m, k) => {
          const prior = earlier.find((e) => covers(e.match, m));
          if (prior) {
            dead++;
            f.report('info', 'TG_VS_MATCH_INEFFECTIVE', vs.resource, [...path, 'match', k], `${kind} rule ${i} match ${k} is never used: rule ${prior.rule}'s match takes the same requests first`, 'remove the match, or move it before the broader one');
          }
          earlier.push({ rule: i, match: m });
        });
        if (dead === matches.length) {
          f.report('warning', 'TG_VS_RULE_UNREACHABLE', vs.resource, path, `${kind} rule ${i} is never used: every one of its matches is taken by an earlier rule`, 'remove the rule or reorder the rules');
        }
      });
    }
  }
};

/** `*x` hosts: valid Istio (any host ending in `x`), but outside the wildcards Tollgate matches. */
export const partialWildcardHosts: Check = (f) => {
  for (const r of f.model.resources) {
    if (r.kind !== 'ServiceEntry' && r.kind !== 'VirtualService' && r.kind !== 'DestinationRule') continue;
    const spec = r.spec as { hosts?: readonly string[]; host?: string };
    const hosts = r.kind === 'DestinationRule' ? [spec.host ?? ''] : (spec.hosts ?? []);
    hosts.forEach((h, i) => {
      if (!isPartialWildcard(h)) return;
      f.report('warning', 'TG_HOST_PARTIAL_WILDCARD', r, r.kind === 'DestinationRule' ? ['spec', 'host'] : ['spec', 'hosts', i], `host "${h}": Istio matches every host ending in "${h.slice(1)}"; Tollgate matches only "*" and "*.suffix" wildcards, so this host matches nothing`, `write "*.${h.slice(1)}" (subdomains) or list the hosts`);
    });
  }
};
