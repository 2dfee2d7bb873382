/**
 * Envoy v3 bootstrap `static_resources` (as in Envoy's quick-start config) -> snapshot listeners, route
 * tables and clusters, so `tollgate run -f envoy.yaml` serves what Envoy would.
 */
import { parseDurationMs } from '../../config/schema/dsl.js';
import type { EnvoyBootstrapModel } from '../../model/build.js';
import type { Cluster, ClusterType, Endpoint, FilterChain, Listener, Route, RouteConfig, StringMatcher } from '../types.js';
import { DEFAULT_CONNECT_TIMEOUT_MS, type ClusterSet } from './clusters.js';
import { TCP_IDLE_TIMEOUT_MS } from './gateway.js';
import { originOf } from './origin.js';

type Json = Record<string, unknown>;
const obj = (v: unknown): Json => (v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Json) : {});
const list = (v: unknown): Json[] => (Array.isArray(v) ? (v as Json[]) : []);
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const num = (v: unknown): number | undefined => (typeof v === 'number' ? v : undefined);

const HCM = 'envoy.filters.network.http_connection_manager';
const TCP_PROXY = 'envoy.filters.network.tcp_proxy';

export function generateEnvoy(envoy: EnvoyBootstrapModel, clusters: ClusterSet): { listeners: Listener[]; routes: RouteConfig[] } {
  const listeners: Listener[] = [];
  const routes: RouteConfig[] = [];
  for (const { value, resource, index } of envoy.listeners) {
    const sa = obj(obj(value['address'])['socket_address']);
    const origin = originOf(resource, ['static_resources', 'listeners', index]);
    const chains: FilterChain[] = [];
    list(value['filter_chains']).forEach((fc, ci) => {
      const match = obj(fc['filter_chain_match']);
      const serverNames = list(match['server_names']) as unknown as string[];
      for (const f of list(fc['filters'])) {
        const name = str(f['name']);
        const cfg = obj(f['typed_config']);
        if (name === HCM) {
          const rc = obj(cfg['route_config']);
          const routeName = str(rc['name']) ?? `${str(value['name'])}_${ci}`;
          routes.push(routeConfigOf(routeName, rc));
          chains.push({
            name: `${str(value['name'])}:${ci}`,
            match: serverNames.length > 0 ? { serverNames } : {},
            filter: { type: 'http', statPrefix: str(cfg['stat_prefix']) ?? routeName, routeConfigName: routeName, accessLog: list(cfg['access_log']).length > 0 },
            origin,
          });
        } else if (name === TCP_PROXY) {
          const cluster = str(cfg['cluster']) ?? '';
          chains.push({
            name: `${str(value['name'])}:${ci}`,
            match: serverNames.length > 0 ? { serverNames, transportProtocol: 'tls' } : {},
            filter: { type: 'tcp', statPrefix: str(cfg['stat_prefix']) ?? cluster, clusters: [{ name: cluster, weight: 100 }], idleTimeoutMs: TCP_IDLE_TIMEOUT_MS },
            origin,
          });
        }
      }
    });
    listeners.push({ name: str(value['name']) ?? `listener_${index}`, address: str(sa['address']) ?? '0.0.0.0', port: num(sa['port_value']) ?? 0, filterChains: chains, origin });
  }
  for (const { value, resource, index } of envoy.clusters) {
    const { cluster, endpoints } = clusterOf(value, originOf(resource, ['static_resources', 'clusters', index]));
    clusters.addRaw(cluster, endpoints);
  }
  return { listeners, routes };
}

function matcher(m: Json): StringMatcher | undefined {
  if (str(m['exact']) !== undefined) return { exact: str(m['exact']) ?? '' };
  if (str(m['prefix']) !== undefined) return { prefix: str(m['prefix']) ?? '' };
  const re = str(obj(m['safe_regex'])['regex']);
  return re !== undefined ? { regex: re } : undefined;
}

function routeConfigOf(name: string, rc: Json): RouteConfig {
  return {
    name,
    virtualHosts: list(rc['virtual_hosts']).map((vh) => ({
      name: str(vh['name']) ?? '',
      domains: list(vh['domains']) as unknown as string[],
      routes: list(vh['routes']).map((r, i): Route => {
        const m = obj(r['match']);
        const path = str(m['path']) !== undefined ? { exact: str(m['path']) ?? '' } : str(m['prefix']) !== undefined ? { prefix: str(m['prefix']) ?? '' } : str(obj(m['safe_regex'])['regex']) !== undefined ? { regex: str(obj(m['safe_regex'])['regex']) ?? '' } : undefined;
        const headers = list(m['headers']).map((h) => ({ name: (str(h['name']) ?? '').toLowerCase(), match: matcher(obj(h['string_match'])) ?? (str(h['exact_match']) !== undefined ? { exact: str(h['exact_match']) ?? '' } : {}) }));
        const dr = obj(r['direct_response']);
        const ra = obj(r['route']);
        const weighted = list(obj(ra['weighted_clusters'])['clusters']);
        const timeout = str(ra['timeout']);
        const timeoutMs = timeout ? parseDurationMs(timeout) : undefined;
        return {
          name: str(r['name']) ?? `${str(vh['name'])}:${i}`,
          match: { ...(path ? { path } : {}), ...(headers.length > 0 ? { headers } : {}) },
          action:
            Object.keys(dr).length > 0
              ? { type: 'direct', status: num(dr['status']) ?? 200, body: str(obj(dr['body'])['inline_string']) ?? '' }
              : {
                  type: 'forward',
                  clusters: weighted.length > 0 ? weighted.map((w) => ({ name: str(w['name']) ?? '', weight: num(w['weight']) ?? 0 })) : [{ name: str(ra['cluster']) ?? '', weight: 100 }],
                  ...(str(ra['host_rewrite_literal']) ? { hostRewrite: str(ra['host_rewrite_literal']) ?? '' } : {}),
                  ...(str(ra['prefix_rewrite']) !== undefined ? { pathRewrite: { prefix: str(ra['prefix_rewrite']) ?? '' } } : {}),
                  ...(timeoutMs !== undefined ? { timeoutMs } : {}),
                },
        };
      }),
    })),
  };
}

function clusterOf(c: Json, origin: Cluster['origin'] & object): { cluster: Cluster; endpoints: Endpoint[] } {
  const type = (str(c['type']) ?? 'STATIC') as ClusterType | 'EDS';
  const endpoints: Endpoint[] = [];
  for (const group of list(obj(c['load_assignment'])['endpoints'])) {
    for (const lb of list(group['lb_endpoints'])) {
      const sa = obj(obj(obj(lb['endpoint'])['address'])['socket_address']);
      endpoints.push({ address: str(sa['address']) ?? '', port: num(sa['port_value']) ?? 0, weight: num(lb['load_balancing_weight']) ?? 1 });
    }
  }
  const ts = obj(c['transport_socket']);
  const tlsCfg = obj(ts['typed_config']);
  const isTls = str(ts['name']) === 'envoy.transport_sockets.tls' || (str(tlsCfg['@type']) ?? '').includes('UpstreamTlsContext');
  const sni = str(tlsCfg['sni']);
  const source = str(obj(obj(c['upstream_bind_config'])['source_address'])['address']);
  const family = str(c['dns_lookup_family']);
  const timeout = str(c['connect_timeout']);
  const first = endpoints[0];
  const lb = str(c['lb_policy']);
  return {
    cluster: {
      name: str(c['name']) ?? '',
      type: type === 'EDS' ? 'STATIC' : type,
      serviceHost: first?.address ?? '',
      port: first?.port ?? 0,
      protocol: isTls ? 'TLS' : 'TCP',
      connectTimeoutMs: (timeout ? parseDurationMs(timeout) : undefined) ?? DEFAULT_CONNECT_TIMEOUT_MS,
      lbPolicy: lb === 'LEAST_REQUEST' || lb === 'RANDOM' ? lb : 'ROUND_ROBIN',
      ...(family === 'V4_ONLY' || family === 'V6_ONLY' ? { dnsLookupFamily: family } : {}),
      ...(isTls ? { tls: { mode: 'SIMPLE' as const, ...(sni ? { sni } : {}) } } : {}),
      ...(source ? { sourceAddress: source } : {}),
      explicitAddresses: type === 'STATIC',
      origin,
      description: `Envoy bootstrap cluster ${str(c['name'])}`,
    },
    endpoints,
  };
}
