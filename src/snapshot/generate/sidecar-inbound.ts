/**
 * A sidecar's inbound side: the virtual inbound listener (15006) that Istio's capture rules send
 * every connection for the pod to. One filter chain per port of the Services that select this
 * workload, matched on the original destination port (the container port the caller dialed),
 * forwarding to the app at that same address from 127.0.0.6 — Istio's inbound source address,
 * which the capture rules let through so the forwarded connection is not captured again. Any other
 * port passes through to the app unchanged (InboundPassthroughCluster), logged.
 *
 * Each chain carries the port's effective PeerAuthentication mode (peer-authn.ts): STRICT and
 * PERMISSIVE chains terminate mesh mTLS, PERMISSIVE and DISABLE ones serve plaintext. A port
 * declared only in `portLevelMtls` (no Service port) gets its own passthrough chain so the mode
 * applies to it too.
 */
import type { Model } from '../../model/build.js';
import type { RegistryService } from '../../model/registry.js';
import { labelsMatch } from '../../model/selectors.js';
import { INBOUND_PASSTHROUGH_CLUSTER, inboundClusterName } from '../names.js';
import type { Cluster, FilterChain, Listener, ProxyIdentity, RouteConfig } from '../types.js';
import { DEFAULT_CONNECT_TIMEOUT_MS, type ClusterSet } from './clusters.js';
import { TCP_IDLE_TIMEOUT_MS } from './gateway.js';
import { originOf } from './origin.js';
import { chainMtls, effectivePeerAuthn, modeAtPort } from './peer-authn.js';

export const VIRTUAL_INBOUND_PORT = 15006;
/** Source of the sidecar's connections to its own app (Istio's InboundPassthroughBindIpv4). */
export const INBOUND_SOURCE_ADDRESS = '127.0.0.6';
const HTTP = new Set(['HTTP', 'HTTP2', 'GRPC']);

/** Kubernetes Services in the proxy's namespace whose selector matches its labels. */
export function servicesOfWorkload(model: Model, proxy: ProxyIdentity): RegistryService[] {
  return model.registry.services.filter((s) => {
    const sel = s.kubernetes?.selector;
    return s.namespace === proxy.namespace && sel !== undefined && Object.keys(sel).length > 0 && labelsMatch(sel, proxy.labels);
  });
}

function inboundCluster(name: string, serviceHost: string, port: number, protocol: string, description: string): Cluster {
  return {
    name,
    type: 'ORIGINAL_DST',
    serviceHost,
    port,
    protocol,
    connectTimeoutMs: DEFAULT_CONNECT_TIMEOUT_MS,
    lbPolicy: 'PASSTHROUGH',
    sourceAddress: INBOUND_SOURCE_ADDRESS,
    // The original destination of an inbound capture is this pod's own address, not a name a
    // client chose: the SSRF guard has nothing to check there.
    explicitAddresses: true,
    description,
  };
}

export function generateSidecarInbound(model: Model, proxy: ProxyIdentity, clusters: ClusterSet): { listener: Listener; routes: RouteConfig[] } {
  const peerAuthn = effectivePeerAuthn(model, proxy.namespace, proxy.labels);
  const chains: FilterChain[] = [];
  const routes: RouteConfig[] = [];
  const seen = new Set<number>();
  for (const s of servicesOfWorkload(model, proxy)) {
    for (const p of s.ports) {
      const target = p.targetPort ?? p.number;
      if (seen.has(target)) continue;
      seen.add(target);
      const name = inboundClusterName(target);
      clusters.addRaw(inboundCluster(name, s.host, target, p.protocol, `inbound: Service ${s.resource.name}.${s.namespace} port ${p.number} -> this workload's port ${target}, from ${INBOUND_SOURCE_ADDRESS}`), []);
      const origin = originOf(s.resource);
      if (HTTP.has(p.protocol)) {
        routes.push({ name, virtualHosts: [{ name: `inbound|http|${target}`, domains: ['*'], routes: [{ name: 'default', match: {}, action: { type: 'forward', clusters: [{ name, weight: 100 }] } }], origin }] });
        chains.push({ name, match: { destinationPort: target }, filter: { type: 'http', statPrefix: name, routeConfigName: name, accessLog: true }, ...chainMtls(modeAtPort(peerAuthn, target)), origin });
      } else {
        chains.push({ name, match: { destinationPort: target }, filter: { type: 'tcp', statPrefix: name, clusters: [{ name, weight: 100 }], idleTimeoutMs: TCP_IDLE_TIMEOUT_MS }, ...chainMtls(modeAtPort(peerAuthn, target)), origin });
      }
    }
  }
  clusters.addRaw(inboundCluster(INBOUND_PASSTHROUGH_CLUSTER, INBOUND_PASSTHROUGH_CLUSTER, 0, 'TCP', `inbound connections to a port no Service of this workload declares go to the app as they are, from ${INBOUND_SOURCE_ADDRESS}`), []);
  const passthroughTcp = { type: 'tcp', statPrefix: INBOUND_PASSTHROUGH_CLUSTER, clusters: [{ name: INBOUND_PASSTHROUGH_CLUSTER, weight: 100 }], idleTimeoutMs: TCP_IDLE_TIMEOUT_MS } as const;
  for (const [port, mode] of [...peerAuthn.ports].sort(([a], [b]) => a - b)) {
    if (!seen.has(port)) chains.push({ name: `${INBOUND_PASSTHROUGH_CLUSTER}|${port}`, match: { destinationPort: port }, filter: passthroughTcp, ...chainMtls(mode) });
  }
  const passthrough: FilterChain = {
    name: INBOUND_PASSTHROUGH_CLUSTER,
    match: {},
    filter: passthroughTcp,
    ...chainMtls(peerAuthn.mode),
  };
  return { listener: { name: 'virtualInbound', address: '0.0.0.0', port: VIRTUAL_INBOUND_PORT, inboundCapture: true, filterChains: chains, defaultFilterChain: passthrough }, routes };
}
