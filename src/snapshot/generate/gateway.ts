/**
 * Gateway proxies (ingress and egress): the Gateways whose selector matches the proxy's labels give
 * the listeners; the VirtualServices bound to those Gateways give the routes, as istiod does.
 */
import { tlsParameters } from './tls-settings.js';
import type { GatewayModel, Model, ServerModel, VirtualServiceModel } from '../../model/build.js';
import { hostMatches, patternsOverlap } from '../../net/hostname.js';
import { labelsMatch, resolveHost } from '../../model/selectors.js';
import { gatewayRouteName, listenerName } from '../names.js';
import type { DownstreamTls, FilterChain, HttpFilterConfig, Listener, ProxyIdentity, Route, RouteConfig, VirtualHost, WeightedCluster } from '../types.js';
import { DEFAULT_HTTP_FILTERS } from '../types.js';
import type { ClusterSet } from './clusters.js';
import { httpRoutesOf } from './http-routes.js';
import { originOf } from './origin.js';

export const TCP_IDLE_TIMEOUT_MS = 3_600_000; // Envoy's tcp_proxy default: 1 hour

export interface GatewayOutput {
  readonly listeners: Listener[];
  readonly routes: RouteConfig[];
}

const HTTP_PROTOCOLS = new Set(['HTTP', 'HTTP2', 'GRPC']);

export function gatewaysFor(model: Model, proxy: ProxyIdentity): GatewayModel[] {
  return model.gateways.filter((g) => Object.keys(g.selector).length === 0 || labelsMatch(g.selector, proxy.labels));
}

interface PortGroup {
  readonly port: number;
  readonly bind: string;
  readonly servers: { gw: GatewayModel; server: ServerModel }[];
}

export function generateGateway(model: Model, proxy: ProxyIdentity, clusters: ClusterSet): GatewayOutput {
  const groups = new Map<string, PortGroup>();
  for (const gw of gatewaysFor(model, proxy)) {
    for (const server of gw.servers) {
      const bind = server.server.bind ?? '0.0.0.0';
      const key = listenerName(bind, server.server.port.number);
      const g = groups.get(key) ?? { port: server.server.port.number, bind, servers: [] };
      g.servers.push({ gw, server });
      groups.set(key, g);
    }
  }
  const listeners: Listener[] = [];
  const routes: RouteConfig[] = [];
  for (const g of [...groups.values()].sort((a, b) => a.port - b.port)) {
    const chains: FilterChain[] = [];
    const http = g.servers.filter(({ server }) => HTTP_PROTOCOLS.has(server.protocol) || (isTerminated(server) && server.protocol === 'HTTPS'));
    const plainHttp = http.filter(({ server }) => !isTerminated(server));
    if (plainHttp.length > 0) {
      const routeName = gatewayRouteName(g.port);
      routes.push(httpRouteConfig(model, routeName, plainHttp, g.port, clusters));
      chains.push({ name: `${routeName}`, match: {}, filter: { type: 'http', statPrefix: routeName, routeConfigName: routeName, accessLog: true, httpFilters: httpFiltersOf(plainHttp.map(({ gw }) => gw)) } });
    }
    for (const { gw, server } of http.filter(({ server }) => isTerminated(server))) {
      // Istio's name (https.<port>.<port name>.<gateway>.<namespace>): one per server, so several
      // HTTPS servers of one Gateway on a port keep their own routes; the index tells apart equal port names.
      const portName = server.server.port.name ?? `server-${server.index}`;
      const base = `https.${g.port}.${portName}.${gw.resource.name}.${gw.resource.namespace}`;
      const routeName = routes.some((r) => r.name === base) ? `${base}.${server.index}` : base;
      routes.push(httpRouteConfig(model, routeName, [{ gw, server }], g.port, clusters));
      const tls = server.server.tls;
      chains.push({
        name: routeName,
        match: { transportProtocol: 'tls', serverNames: server.hosts.map((h) => h.host).filter((h) => h !== '*') },
        filter: { type: 'http', statPrefix: routeName, routeConfigName: routeName, accessLog: true, httpFilters: httpFiltersOf([gw]) },
        // ISTIO_MUTUAL: the proxy's workload certificate, and the client must be a mesh workload.
        ...(tls?.mode === 'ISTIO_MUTUAL' ? { mtls: 'STRICT' as const } : { tls: downstreamTls(proxy, server) }),
        origin: originOf(gw.resource, ['spec', 'servers', server.index]),
      });
    }
    const passthrough = g.servers.filter(({ server }) => (server.protocol === 'HTTPS' || server.protocol === 'TLS') && !isTerminated(server));
    chains.push(...passthroughChains(model, passthrough, g.port, clusters));
    const tcp = g.servers.filter(({ server }) => (server.protocol === 'TCP' || server.protocol === 'MONGO') && !isTerminated(server));
    chains.push(...tcpChains(model, tcp, g.port, clusters));
    const meshL4 = g.servers.filter(({ server }) => (server.protocol === 'TLS' || server.protocol === 'TCP') && server.server.tls?.mode === 'ISTIO_MUTUAL');
    for (const s of meshL4) chains.push(...meshTcpChains(model, s, g.port, clusters));
    const first = g.servers[0];
    listeners.push({
      name: listenerName(g.bind, g.port),
      address: g.bind,
      port: g.port,
      filterChains: chains,
      ...(passthrough.length > 0 || tcp.length > 0 || meshL4.length > 0
        ? { defaultFilterChain: { name: 'deny', match: {}, filter: { type: 'deny', reason: passthrough.length > 0 || meshL4.length > 0 ? 'sni_not_routed' : 'no_tcp_route', detail: passthrough.length > 0 || meshL4.length > 0 ? `no tls route on port ${g.port} matches this SNI` : `no tcp route on port ${g.port}` } } }
        : {}),
      ...(first ? { origin: originOf(first.gw.resource, ['spec', 'servers', first.server.index]) } : {}),
    });
  }
  return { listeners, routes };
}

function downstreamTls(proxy: ProxyIdentity, server: ServerModel): DownstreamTls {
  const tls = server.server.tls;
  return {
    mode: tls?.mode === 'MUTUAL' || tls?.mode === 'OPTIONAL_MUTUAL' ? tls.mode : 'SIMPLE',
    ...(tls?.serverCertificate ? { serverCertificate: tls.serverCertificate } : {}),
    ...(tls?.privateKey ? { privateKey: tls.privateKey } : {}),
    ...(tls?.caCertificates ? { caCertificates: tls.caCertificates } : {}),
    // As Istio: a gateway reads credentialName Secrets from its own namespace, not the Gateway's.
    ...(tls?.credentialName ? { credentialName: gatewayCredential(proxy, tls.credentialName) } : {}),
    ...(tls?.subjectAltNames && tls.subjectAltNames.length > 0 ? { subjectAltNames: tls.subjectAltNames } : {}),
    ...tlsParameters(tls),
  };
}

/** Gateway annotation for the add_response_header HTTP filter: `name: value`. */
export const RESPONSE_HEADER_ANNOTATION = 'tollgate.io/response-header';

/**
 * The HTTP filters of a Gateway listener: the default chain, plus add_response_header before the
 * router when a Gateway on it carries tollgate.io/response-header (the first one, by name, wins).
 * The filter validates the value when the snapshot is applied.
 */
function httpFiltersOf(gws: readonly GatewayModel[]): readonly HttpFilterConfig[] {
  const annotated = [...gws].sort((a, b) => (a.key < b.key ? -1 : 1)).find((g) => g.resource.annotations?.[RESPONSE_HEADER_ANNOTATION] !== undefined);
  const text = annotated?.resource.annotations?.[RESPONSE_HEADER_ANNOTATION];
  if (text === undefined) return DEFAULT_HTTP_FILTERS;
  const colon = text.indexOf(':');
  const config = { name: colon < 0 ? text.trim() : text.slice(0, colon).trim(), value: colon < 0 ? '' : text.slice(colon + 1).trim() };
  return [...DEFAULT_HTTP_FILTERS.slice(0, -1), { name: 'add_response_header', config }, DEFAULT_HTTP_FILTERS[DEFAULT_HTTP_FILTERS.length - 1]!];
}

/** The Secret ("namespace/name") a gateway proxy serves for `credentialName`: the proxy's namespace. */
export function gatewayCredential(proxy: Pick<ProxyIdentity, 'namespace'>, credentialName: string): string {
  return `${proxy.namespace}/${credentialName}`;
}

export function isTerminated(server: ServerModel): boolean {
  const mode = server.server.tls?.mode;
  return mode === 'SIMPLE' || mode === 'MUTUAL' || mode === 'ISTIO_MUTUAL' || mode === 'OPTIONAL_MUTUAL';
}

/** VirtualServices bound to `gw` whose hosts intersect the server's hosts (namespace-qualified hosts honoured). */
export function boundVirtualServices(model: Model, gw: GatewayModel, server: ServerModel): { vs: VirtualServiceModel; hosts: string[] }[] {
  const out: { vs: VirtualServiceModel; hosts: string[] }[] = [];
  for (const vs of model.virtualServices) {
    if (!vs.gateways.includes(gw.key)) continue;
    const hosts = new Set<string>();
    for (const sh of server.hosts) {
      if (sh.namespace !== '*' && sh.namespace !== vs.resource.namespace) continue;
      for (const h of vs.hosts) {
        if (!patternsOverlap(sh.host, h)) continue;
        // The more specific of the two names becomes the virtual host.
        hosts.add(hostMatches(sh.host, h) ? h : sh.host);
      }
    }
    if (hosts.size > 0) out.push({ vs, hosts: [...hosts].sort() });
  }
  return out;
}

function httpRouteConfig(model: Model, name: string, servers: { gw: GatewayModel; server: ServerModel }[], port: number, clusters: ClusterSet): RouteConfig {
  const vhosts = new Map<string, { routes: Route[]; vs: VirtualServiceModel; redirect: boolean }>();
  for (const { gw, server } of servers) {
    const redirect = server.server.tls?.httpsRedirect === true;
    for (const { vs, hosts } of boundVirtualServices(model, gw, server)) {
      const routes = redirect ? [] : httpRoutesOf({ vs, clusters, port, gateway: gw.key });
      for (const h of hosts) {
        const reachable = routes.filter((r) => authorityCanMatch(r, h));
        const existing = vhosts.get(h);
        if (existing) existing.routes.push(...reachable);
        else vhosts.set(h, { routes: reachable, vs, redirect });
      }
    }
  }
  const virtualHosts: VirtualHost[] = [...vhosts.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([host, v]) => ({
      name: `${host}:${port}`,
      domains: [host],
      routes: v.redirect ? [{ name: `${v.vs.key}:https-redirect`, match: {}, action: { type: 'redirect', status: 301, scheme: 'https' } }] : v.routes,
      origin: originOf(v.vs.resource),
    }));
  return { name, virtualHosts };
}

/**
 * A route whose `authority` match can never match requests for this virtual host's name is left
 * out of it. Istio copies every route of a VirtualService into every host's virtual host; with one
 * route per host (the usual egress-gateway layout, one authority match per route) that makes route tables quadratic in the number of hosts.
 */
function authorityCanMatch(r: Route, vhostHost: string): boolean {
  const a = r.match.authority;
  if (!a || vhostHost.startsWith('*')) return true;
  const strip = (s: string) => s.toLowerCase().replace(/:\d+$/, '');
  if (a.exact !== undefined) return strip(a.exact) === vhostHost;
  if (a.prefix !== undefined) return vhostHost.startsWith(a.prefix.toLowerCase()) || a.prefix.toLowerCase().startsWith(vhostHost);
  return true;
}

function l4Destinations(vs: VirtualServiceModel, route: { route?: readonly { destination: { host: string; subset?: string; port?: { number?: number } }; weight?: number }[] }, port: number, clusters: ClusterSet): WeightedCluster[] {
  const dests = route.route ?? [];
  return dests.map((d) => ({
    name: clusters.forDestination(resolveHost(d.destination.host, vs.resource.namespace), d.destination.port?.number, d.destination.subset, port),
    weight: d.weight ?? (dests.length === 1 ? 100 : 0),
  }));
}

function passthroughChains(model: Model, servers: { gw: GatewayModel; server: ServerModel }[], port: number, clusters: ClusterSet): FilterChain[] {
  const chains: FilterChain[] = [];
  const seen = new Set<string>();
  for (const { gw, server } of servers) {
    for (const { vs } of boundVirtualServices(model, gw, server)) {
      (vs.spec.tls ?? []).forEach((tr, ti) => {
        for (const m of tr.match ?? []) {
          if (m.port !== undefined && m.port !== port) continue;
          if (m.gateways && m.gateways.length > 0 && !m.gateways.some((g) => (g.includes('/') ? g : `${vs.resource.namespace}/${g}`) === gw.key)) continue;
          const snis = (m.sniHosts ?? []).filter((sni) => server.hosts.some((sh) => patternsOverlap(sh.host, sni))).filter((sni) => !seen.has(sni));
          if (snis.length === 0) continue;
          snis.forEach((s) => seen.add(s));
          const name = `${vs.key}:tls:${ti}`;
          chains.push({
            name,
            match: { transportProtocol: 'tls', serverNames: snis },
            filter: { type: 'tcp', statPrefix: name, clusters: l4Destinations(vs, tr, port, clusters), idleTimeoutMs: TCP_IDLE_TIMEOUT_MS, routeName: name },
            origin: originOf(vs.resource, ['spec', 'tls', ti]),
          });
        }
      });
    }
  }
  return chains;
}

/**
 * A TLS or TCP Gateway server with tls.mode ISTIO_MUTUAL (Istio's egress gateway for HTTPS traffic
 * with mTLS from the sidecars): mesh mTLS is terminated (STRICT), matched by the server's hosts as
 * SNI, and what is inside — the app's own TLS — goes where the VirtualService's tcp route says, as
 * istiod builds it. The caller's identity is then known to AuthorizationPolicy and to EgressIP.
 */
function meshTcpChains(model: Model, s: { gw: GatewayModel; server: ServerModel }, port: number, clusters: ClusterSet): FilterChain[] {
  const names = s.server.hosts.map((h) => h.host).filter((h) => h !== '*');
  return tcpChains(model, [s], port, clusters).map((c) => ({
    ...c,
    name: `${c.name}:mtls.${s.gw.resource.namespace}.${s.gw.resource.name}.${s.server.index}`,
    match: { transportProtocol: 'tls', ...(s.server.protocol === 'TLS' && names.length > 0 ? { serverNames: names } : {}) },
    mtls: 'STRICT' as const,
  }));
}

function tcpChains(model: Model, servers: { gw: GatewayModel; server: ServerModel }[], port: number, clusters: ClusterSet): FilterChain[] {
  for (const { gw, server } of servers) {
    for (const { vs } of boundVirtualServices(model, gw, server)) {
      const tcp = vs.spec.tcp ?? [];
      for (let ti = 0; ti < tcp.length; ti++) {
        const tr = tcp[ti];
        if (!tr) continue;
        const matches = tr.match && tr.match.length > 0 ? tr.match : [{}];
        if (!matches.some((m) => m.port === undefined || m.port === port)) continue;
        const name = `${vs.key}:tcp:${ti}`;
        const origin = originOf(vs.resource, ['spec', 'tcp', ti]);
        return [{ name, match: {}, filter: { type: 'tcp', statPrefix: name, clusters: l4Destinations(vs, tr, port, clusters), idleTimeoutMs: TCP_IDLE_TIMEOUT_MS, routeName: name }, origin }];
      }
    }
  }
  return [];
}
