/**
 * Sidecar proxies: outbound listeners for the registry visible from the proxy's namespace, with
 * `mesh` VirtualServices overriding the default route of the hosts they name, a virtual outbound
 * listener (15001) for captured traffic, and REGISTRY_ONLY / ALLOW_ANY as the last word.
 */
import type { Resource } from '../../config/decode.js';
import type { SidecarSpec } from '../../config/types.js';
import type { Model, VirtualServiceModel } from '../../model/build.js';
import { hostMatches, patternsOverlap } from '../../net/hostname.js';
import type { RegistryService } from '../../model/registry.js';
import { labelsMatch, resolveHost, visibleTo } from '../../model/selectors.js';
import { BLACKHOLE_CLUSTER, PASSTHROUGH_CLUSTER, listenerName } from '../names.js';
import type { FilterChain, Listener, ProxyIdentity, ProxyPolicy, Route, RouteConfig, VirtualHost } from '../types.js';
import { DEFAULT_HTTP_FILTERS } from '../types.js';
import { DEFAULT_CONNECT_TIMEOUT_MS, type ClusterSet } from './clusters.js';
import { TCP_IDLE_TIMEOUT_MS } from './gateway.js';
import { httpRoutesOf, DEFAULT_RETRIES } from './http-routes.js';
import { originOf } from './origin.js';
import { generateSidecarInbound } from './sidecar-inbound.js';

const HTTP = new Set(['HTTP', 'HTTP2', 'GRPC']);
const TLS = new Set(['HTTPS', 'TLS']);
export const VIRTUAL_OUTBOUND_PORT = 15001;

/** The Sidecar resource that applies to a proxy: workload-selected, else its namespace's default, else the root namespace's. */
function sidecarFor(model: Model, proxy: ProxyIdentity): Resource<SidecarSpec> | undefined {
  const own = model.sidecars.filter((s) => s.namespace === proxy.namespace);
  const selected = own.find((s) => s.spec.workloadSelector?.labels && labelsMatch(s.spec.workloadSelector.labels, proxy.labels));
  const nsDefault = own.find((s) => !s.spec.workloadSelector);
  const root = model.sidecars.find((s) => s.namespace === 'istio-system' && !s.spec.workloadSelector);
  return selected ?? nsDefault ?? root;
}

export function outboundPolicyFor(model: Model, proxy: ProxyIdentity): ProxyPolicy['outboundTrafficPolicy'] {
  return sidecarFor(model, proxy)?.spec.outboundTrafficPolicy?.mode ?? 'REGISTRY_ONLY';
}

/**
 * Sidecar `egress[].hosts` ("namespace/dnsName"): the services a proxy may reach. Namespace `*`
 * is any, `.` the proxy's own, `~` none; dnsName `*`, `*.suffix` or exact. No egress section:
 * everything visible.
 */
export function egressScopeAllows(model: Model, proxy: ProxyIdentity, service: RegistryService): boolean {
  const egress = sidecarFor(model, proxy)?.spec.egress;
  if (!egress || egress.length === 0) return true;
  for (const e of egress) {
    for (const entry of e.hosts) {
      const slash = entry.indexOf('/');
      const ns = slash < 0 ? '*' : entry.slice(0, slash);
      const name = slash < 0 ? entry : entry.slice(slash + 1);
      if (ns === '~') continue;
      if (ns !== '*' && (ns === '.' ? proxy.namespace : ns) !== service.namespace) continue;
      if (name === '*' || hostMatches(name.toLowerCase(), service.host)) return true;
    }
  }
  return false;
}

const isL4 = (protocol: string): boolean => !HTTP.has(protocol);

export function generateSidecar(model: Model, proxy: ProxyIdentity, clusters: ClusterSet, policy: ProxyPolicy['outboundTrafficPolicy']): { listeners: Listener[]; routes: RouteConfig[] } {
  const visible = model.registry.services.filter((s) => visibleTo(s.exportTo, s.namespace, proxy.namespace) && egressScopeAllows(model, proxy, s));
  const meshVs = model.virtualServices.filter((vs) => vs.gateways.includes('mesh') && visibleTo(vs.spec.exportTo, vs.resource.namespace, proxy.namespace));

  const httpPorts = new Map<number, Map<string, VirtualHost>>();
  const tlsPorts = new Map<number, FilterChain[]>();
  const tcpPorts = new Map<number, FilterChain[]>();
  for (const s of visible) {
    for (const p of s.ports) {
      if (HTTP.has(p.protocol)) {
        const vhosts = httpPorts.get(p.number) ?? new Map<string, VirtualHost>();
        httpPorts.set(p.number, vhosts);
        if (!vhosts.has(s.host)) vhosts.set(s.host, defaultVhost(s, p.number, clusters, proxy.namespace));
      } else if (TLS.has(p.protocol)) {
        const chains = tlsPorts.get(p.number) ?? [];
        tlsPorts.set(p.number, chains);
        const name = clusters.forDestination(s.host, p.number, undefined, p.number);
        const filter = { type: 'tcp' as const, statPrefix: name, clusters: [{ name, weight: 100 }], idleTimeoutMs: TCP_IDLE_TIMEOUT_MS };
        chains.push({ name: `${s.host}:${p.number}`, match: { transportProtocol: 'tls', serverNames: [s.host] }, filter, origin: originOf(s.resource) });
        // A Kubernetes Service is also reached by its ClusterIP, whatever the SNI (absent, or a short
        // name the client resolved through its search domains), as Istio's per-address chains do.
        if (s.kubernetes && s.addresses.length > 0) chains.push({ name: `${s.host}:${p.number}:address`, match: { destinationPrefixes: s.addresses }, filter, origin: originOf(s.resource) });
      } else {
        const chains = tcpPorts.get(p.number) ?? [];
        tcpPorts.set(p.number, chains);
        const name = clusters.forDestination(s.host, p.number, undefined, p.number);
        chains.push({
          name: `${s.host}:${p.number}`,
          match: s.addresses.length > 0 ? { destinationPrefixes: s.addresses } : {},
          filter: { type: 'tcp', statPrefix: name, clusters: [{ name, weight: 100 }], idleTimeoutMs: TCP_IDLE_TIMEOUT_MS },
          origin: originOf(s.resource),
        });
      }
    }
  }

  // mesh VirtualServices: HTTP routes replace the default route of their hosts on every HTTP port
  // they apply to; TLS/TCP routes replace the chains of the SNI/port they match.
  for (const vs of meshVs) {
    for (const [port, vhosts] of httpPorts) {
      const routes = httpRoutesOf({ vs, clusters, port, gateway: 'mesh' });
      if (routes.length === 0) continue;
      for (const host of vs.hosts) vhosts.set(host, { name: `${host}:${port}`, domains: domainsOf(host, model.registry.lookup(host)[0], proxy.namespace), routes, origin: originOf(vs.resource) });
    }
    applyMeshTls(model, vs, tlsPorts, clusters);
  }

  const listeners: Listener[] = [];
  const routes: RouteConfig[] = [];
  for (const [port, vhosts] of httpPorts) {
    const name = String(port);
    routes.push({ name, virtualHosts: [...[...vhosts.values()].sort((a, b) => (a.name < b.name ? -1 : 1)), catchAllVhost(policy, port)] });
    listeners.push({ name: listenerName('0.0.0.0', port), address: '0.0.0.0', port, bindToPort: false, filterChains: [{ name, match: {}, filter: { type: 'http', statPrefix: name, routeConfigName: name, accessLog: true, httpFilters: DEFAULT_HTTP_FILTERS } }] });
  }
  for (const [port, chains] of tlsPorts) {
    if (httpPorts.has(port)) continue;
    listeners.push({ name: listenerName('0.0.0.0', port), address: '0.0.0.0', port, bindToPort: false, filterChains: chains, defaultFilterChain: catchAllChain(policy) });
  }
  for (const [port, chains] of tcpPorts) {
    if (httpPorts.has(port) || tlsPorts.has(port)) continue;
    listeners.push({ name: listenerName('0.0.0.0', port), address: '0.0.0.0', port, bindToPort: false, filterChains: chains, defaultFilterChain: catchAllChain(policy) });
  }
  listeners.push({ name: 'virtualOutbound', address: '0.0.0.0', port: VIRTUAL_OUTBOUND_PORT, useOriginalDst: true, filterChains: [], defaultFilterChain: catchAllChain(policy) });
  const inbound = generateSidecarInbound(model, proxy, clusters);
  listeners.push(inbound.listener);
  routes.push(...inbound.routes);
  if (policy === 'ALLOW_ANY') {
    clusters.addRaw({ name: PASSTHROUGH_CLUSTER, type: 'ORIGINAL_DST', serviceHost: '*', port: 0, protocol: 'TCP', connectTimeoutMs: DEFAULT_CONNECT_TIMEOUT_MS, lbPolicy: 'PASSTHROUGH', explicitAddresses: false, meshExternal: true, description: 'ALLOW_ANY: traffic outside the registry goes to the address the client asked for' }, []);
  }
  return { listeners, routes };
}

function domainsOf(host: string, service: RegistryService | undefined, proxyNamespace: string): string[] {
  if (service?.kubernetes) {
    // Kubernetes short names, as resolv.conf search domains let clients use them: the bare name
    // only from the Service's own namespace (the first search domain there).
    const [name, ns] = host.split('.');
    return [host, ...(ns === proxyNamespace && name ? [name] : []), `${name}.${ns}`, `${name}.${ns}.svc`, ...(service.addresses.length > 0 ? service.addresses : [])];
  }
  return [host];
}

function defaultVhost(s: RegistryService, port: number, clusters: ClusterSet, proxyNamespace: string): VirtualHost {
  const cluster = clusters.forDestination(s.host, port, undefined, port);
  const route: Route = { name: 'default', match: {}, action: { type: 'forward', clusters: [{ name: cluster, weight: 100 }], retries: DEFAULT_RETRIES } };
  return { name: `${s.host}:${port}`, domains: domainsOf(s.host, s, proxyNamespace), routes: [route], origin: originOf(s.resource) };
}

function catchAllVhost(policy: ProxyPolicy['outboundTrafficPolicy'], port: number): VirtualHost {
  if (policy === 'ALLOW_ANY') {
    return { name: 'allow_any', domains: ['*'], routes: [{ name: 'allow_any', match: {}, action: { type: 'forward', clusters: [{ name: PASSTHROUGH_CLUSTER, weight: 100 }] } }] };
  }
  return {
    name: 'block_all',
    domains: ['*'],
    routes: [{ name: 'block_all', match: {}, action: { type: 'direct', status: 502, body: '', flag: 'BLOCKED', reason: `registry_only: host is not in the registry for port ${port}` } }],
  };
}

function catchAllChain(policy: ProxyPolicy['outboundTrafficPolicy']): FilterChain {
  return policy === 'ALLOW_ANY'
    ? { name: 'allow_any', match: {}, filter: { type: 'tcp', statPrefix: PASSTHROUGH_CLUSTER, clusters: [{ name: PASSTHROUGH_CLUSTER, weight: 100 }], idleTimeoutMs: TCP_IDLE_TIMEOUT_MS } }
    : { name: 'block_all', match: {}, filter: { type: 'deny', reason: 'registry_only', detail: `destination is not in the registry (outbound policy REGISTRY_ONLY; ${BLACKHOLE_CLUSTER})` } };
}

/**
 * A mesh `tls` route applies only to SNI hosts the registry declares on that port (TLS/HTTPS):
 * Istio builds sidecar TLS chains per service, so a route for an undeclared host:port is never
 * used: the request still gets a 200, but straight out, not through the egress gateway.
 */
function applyMeshTls(model: Model, vs: VirtualServiceModel, tlsPorts: Map<number, FilterChain[]>, clusters: ClusterSet): void {
  (vs.spec.tls ?? []).forEach((tr, ti) => {
    for (const m of tr.match ?? []) {
      const ports = m.port !== undefined ? [m.port] : [...tlsPorts.keys()];
      for (const port of ports) {
        const chains = tlsPorts.get(port);
        if (!chains) continue; // no listener: the registry does not declare this port, so Istio would not apply the route either
        const snis = (m.sniHosts ?? []).filter((sni) => {
          const found = model.registry.lookupPort(resolveHost(sni, vs.resource.namespace), port);
          return found !== undefined && isL4(found.port.protocol);
        });
        if (snis.length === 0) continue;
        const dests = tr.route ?? [];
        const wc = dests.map((d) => ({ name: clusters.forDestination(resolveHost(d.destination.host, vs.resource.namespace), d.destination.port?.number, d.destination.subset, port), weight: d.weight ?? (dests.length === 1 ? 100 : 0) }));
        const origin = originOf(vs.resource, ['spec', 'tls', ti]);
        const name = `${vs.key}:tls:${ti}`;
        // Remove the default chains these SNIs had; the VirtualService's route replaces them.
        for (let i = chains.length - 1; i >= 0; i--) {
          const c = chains[i];
          if (c?.match.serverNames?.every((sn) => snis.some((s) => patternsOverlap(s, sn)))) chains.splice(i, 1);
        }
        chains.unshift({ name, match: { transportProtocol: 'tls', serverNames: snis }, filter: { type: 'tcp', statPrefix: name, clusters: wc, idleTimeoutMs: TCP_IDLE_TIMEOUT_MS, routeName: name }, origin });
      }
    }
  });
}
