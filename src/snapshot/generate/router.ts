/**
 * The OpenShift egress router role: one TCP listener per EGRESS_DESTINATION rule,
 * the fallback IP for the other ports of the router's Service, EGRESS_SOURCE bound on every
 * upstream connection. http-proxy mode becomes an explicit proxy with the router's allow/deny list.
 */
import type { Model } from '../../model/build.js';
import type { EgressRouter } from '../../model/egress-router.js';
import { labelsMatch } from '../../model/selectors.js';
import { clusterName, listenerName } from '../names.js';
import type { Listener, Origin, ProxyIdentity, RouterKernelPlan } from '../types.js';
import { DEFAULT_CONNECT_TIMEOUT_MS, type ClusterSet } from './clusters.js';
import { TCP_IDLE_TIMEOUT_MS } from './gateway.js';
import { originOf } from './origin.js';

export const HTTP_PROXY_PORT = 8080; // the port OpenShift's http-proxy egress router listens on

export function routerFor(model: Model, proxy: ProxyIdentity): EgressRouter | undefined {
  const inNs = model.egressRouters.filter((r) => r.namespace === proxy.namespace);
  return (
    inNs.find((r) => r.name === proxy.name) ??
    inNs.find((r) => Object.keys(r.podLabels).length > 0 && Object.keys(proxy.labels).length > 0 && labelsMatch(r.podLabels, proxy.labels)) ??
    (inNs.length === 1 && Object.keys(proxy.labels).length === 0 && !proxy.name ? inNs[0] : undefined)
  );
}

/** Ports of the Services that select the router's pods. */
export function routerServicePorts(model: Model, router: EgressRouter): number[] {
  const ports = new Set<number>();
  for (const svc of model.kubernetesServices) {
    if (svc.namespace !== router.namespace || !svc.spec.selector || Object.keys(svc.spec.selector).length === 0) continue;
    if (!labelsMatch(svc.spec.selector, router.podLabels)) continue;
    for (const p of svc.spec.ports ?? []) ports.add(typeof p.targetPort === 'number' ? p.targetPort : p.port);
  }
  return [...ports].sort((a, b) => a - b);
}

/** Kernel (init) mode: the nftables plan instead of listeners. */
export function routerKernelPlan(model: Model, proxy: ProxyIdentity): RouterKernelPlan | undefined {
  const router = routerFor(model, proxy);
  if (!router || router.datapath !== 'kernel' || !router.source) return undefined;
  return {
    source: router.source,
    ...(router.sourcePrefix !== undefined ? { sourcePrefix: router.sourcePrefix } : {}),
    ...(router.gateway ? { gateway: router.gateway } : {}),
    rules: router.rules.map((r) => ({ name: `${r.port}/${r.protocol}->${r.destination}:${r.destinationPort}`, port: r.port, protocol: r.protocol, destination: r.destination, destinationPort: r.destinationPort, line: r.pos.line })),
    ...(router.fallback ? { fallback: { name: `fallback->${router.fallback.destination}`, destination: router.fallback.destination, line: router.fallback.pos.line } } : {}),
    origin: originOf(router.resource),
  };
}

export function generateRouter(model: Model, proxy: ProxyIdentity, clusters: ClusterSet): Listener[] {
  const router = routerFor(model, proxy);
  if (!router || router.datapath === 'kernel') return [];
  const origin = originOf(router.resource);
  if (router.mode === 'http-proxy') {
    return [
      {
        name: listenerName('0.0.0.0', HTTP_PROXY_PORT),
        address: '0.0.0.0',
        port: HTTP_PROXY_PORT,
        filterChains: [
          {
            name: 'http-proxy',
            match: {},
            filter: { type: 'explicit_proxy', statPrefix: 'egress_http_proxy', acl: router.httpProxyRules.map((r) => ({ deny: r.deny, pattern: r.pattern })), connectPorts: [443], ...(router.source ? { sourceAddress: router.source } : {}) },
          },
        ],
        origin,
      },
    ];
  }
  const listeners: Listener[] = [];
  const covered = new Set<number>();
  const addForward = (port: number, ip: string, dport: number, why: string, o: Origin): void => {
    const name = clusterName(dport, undefined, ip);
    clusters.addRaw(
      {
        name,
        type: 'STATIC',
        serviceHost: ip,
        port: dport,
        protocol: 'TCP',
        connectTimeoutMs: DEFAULT_CONNECT_TIMEOUT_MS,
        lbPolicy: 'ROUND_ROBIN',
        ...(router.source ? { sourceAddress: router.source } : {}),
        explicitAddresses: true,
        origin: o,
        description: why,
      },
      [{ address: ip, port: dport, weight: 1 }],
    );
    listeners.push({
      name: listenerName('0.0.0.0', port),
      address: '0.0.0.0',
      port,
      filterChains: [{ name: `router:${port}`, match: {}, filter: { type: 'tcp', statPrefix: name, clusters: [{ name, weight: 100 }], idleTimeoutMs: TCP_IDLE_TIMEOUT_MS, routeName: why }, origin: o }],
      origin: o,
    });
  };
  for (const rule of router.rules) {
    if (rule.protocol !== 'tcp') continue; // udp rules are reported by analyze; the data plane is TCP only
    covered.add(rule.port);
    addForward(rule.port, rule.destination, rule.destinationPort, `EGRESS_DESTINATION line ${rule.pos.line}: ${rule.port} tcp ${rule.destination} ${rule.destinationPort}`, { ...origin, line: rule.pos.line });
  }
  for (const port of routerServicePorts(model, router)) {
    if (covered.has(port)) continue;
    if (router.fallback) {
      addForward(port, router.fallback.destination, port, `EGRESS_DESTINATION fallback (line ${router.fallback.pos.line}): any other port to ${router.fallback.destination}`, { ...origin, line: router.fallback.pos.line });
    } else {
      listeners.push({
        name: listenerName('0.0.0.0', port),
        address: '0.0.0.0',
        port,
        filterChains: [],
        defaultFilterChain: { name: 'router:no-rule', match: {}, filter: { type: 'deny', reason: 'router_no_rule', detail: `port ${port} has no EGRESS_DESTINATION rule and there is no fallback line` } },
        origin,
      });
    }
  }
  return listeners.sort((a, b) => a.port - b.port);
}
