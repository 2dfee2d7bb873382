/**
 * Routing checks: what istioctl analyze would say, plus each failure of an egress gateway built one
 * object at a time (the missing object is named). Each check reads the Model only.
 */
import type { L4Route } from '../config/types.js';
import type { GatewayModel, Model, VirtualServiceModel } from '../model/build.js';
import { patternsOverlap } from '../net/hostname.js';
import type { RegistryService } from '../model/registry.js';
import { labelsMatch, resolveHost } from '../model/selectors.js';
import { findDestinationRule } from '../snapshot/generate/clusters.js';
import { boundVirtualServices } from '../snapshot/generate/gateway.js';
import { dnsAutoAllocate } from './checks-istio.js';
import type { Check, Finder } from './context.js';

const HTTP = new Set(['HTTP', 'HTTP2', 'GRPC']);

interface DestRef {
  readonly vs: VirtualServiceModel;
  readonly path: (string | number)[];
  readonly kind: 'http' | 'tls' | 'tcp';
  readonly host: string;
  readonly port?: number;
  readonly subset?: string;
  readonly matchPort?: number;
}

/** Every destination named in every VirtualService, with the path of its YAML node. */
function destinations(model: Model): DestRef[] {
  const out: DestRef[] = [];
  for (const vs of model.virtualServices) {
    const ns = vs.resource.namespace;
    (vs.spec.http ?? []).forEach((r, i) =>
      (r.route ?? []).forEach((d, j) => {
        const matchPort = r.match?.find((m) => m.port !== undefined)?.port;
        out.push({ vs, path: ['spec', 'http', i, 'route', j, 'destination'], kind: 'http', host: resolveHost(d.destination.host, ns), ...(d.destination.port?.number !== undefined ? { port: d.destination.port.number } : {}), ...(d.destination.subset ? { subset: d.destination.subset } : {}), ...(matchPort !== undefined ? { matchPort } : {}) });
      }),
    );
    for (const kind of ['tls', 'tcp'] as const) {
      ((vs.spec[kind] ?? []) as readonly L4Route[]).forEach((r, i) =>
        (r.route ?? []).forEach((d, j) => {
          const matchPort = r.match?.find((m) => m.port !== undefined)?.port;
          out.push({ vs, path: ['spec', kind, i, 'route', j, 'destination'], kind, host: resolveHost(d.destination.host, ns), ...(d.destination.port?.number !== undefined ? { port: d.destination.port.number } : {}), ...(d.destination.subset ? { subset: d.destination.subset } : {}), ...(matchPort !== undefined ? { matchPort } : {}) });
        }),
      );
    }
  }
  return out;
}

function portsText(s: RegistryService): string {
  return s.ports.map((p) => `${p.number}/${p.protocol}`).join(', ') || 'no ports';
}

/** VirtualService destination host not in the registry; destination port the service does not declare. */
export const destinationInRegistry: Check = (f) => {
  for (const d of destinations(f.model)) {
    const services = f.model.registry.lookup(d.host, d.vs.resource.namespace);
    const where = `${d.kind} route destination ${d.host}`;
    if (services.length === 0) {
      const protocol = d.kind === 'http' ? 'HTTP' : d.kind === 'tls' ? 'TLS' : 'TCP';
      const port = d.port ?? d.matchPort ?? (d.kind === 'tls' ? 443 : 80);
      const k8s = /^([^.]+)\.([^.]+)\.svc\.cluster\.local$/.exec(d.host);
      const fix = k8s
        ? `add Service ${k8s[1]} in namespace ${k8s[2]} (port ${port}) with its endpoints — for an egress gateway, its Deployment and Service — or fix the host`
        : `add a ServiceEntry with hosts [${d.host}] and port ${port}/${protocol}`;
      f.report('error', 'TG_DEST_NOT_IN_REGISTRY', d.vs.resource, [...d.path, 'host'], `${where} is not in the registry: requests routed here get 503 (NC, no cluster)`, fix);
      continue;
    }
    if (d.port !== undefined && !services.some((s) => s.ports.some((p) => p.number === d.port))) {
      f.report('error', 'TG_DEST_PORT_NOT_DECLARED', d.vs.resource, [...d.path, 'port'], `${where} port ${d.port}: ${services[0]?.resource.ref.kind} ${services[0]?.resource.name} declares ${services[0] ? portsText(services[0]) : 'no ports'}`, `add port ${d.port} to ${services[0]?.resource.ref.kind} ${services[0]?.resource.name}, or route to a declared port`);
    }
  }
};

/** Route destinations with a subset that no DestinationRule defines (e.g. a mesh route to the gateway's subset with the DestinationRule left out). */
export const subsetsDefined: Check = (f) => {
  for (const d of destinations(f.model)) {
    if (!d.subset) continue;
    const dr = findDestinationRule(f.model, d.host, d.vs.resource.namespace);
    if (!dr) {
      f.report('error', 'TG_SUBSET_NO_DESTINATIONRULE', d.vs.resource, [...d.path, 'subset'], `${d.kind} route destination ${d.host} subset "${d.subset}": no DestinationRule for ${d.host}, so the subset does not exist (503 NC)`, `add a DestinationRule with host: ${d.host} and subsets: [{name: ${d.subset}}]`);
    } else if (!dr.spec.subsets?.some((s) => s.name === d.subset)) {
      f.report('error', 'TG_SUBSET_NOT_FOUND', d.vs.resource, [...d.path, 'subset'], `${d.kind} route destination ${d.host} subset "${d.subset}" is not defined by DestinationRule ${dr.resource.name}.${dr.resource.namespace} (it defines: ${(dr.spec.subsets ?? []).map((s) => s.name).join(', ') || 'none'})`, `add subset ${d.subset} to DestinationRule ${dr.resource.name}`);
    }
  }
};

/** VirtualServices naming Gateways that do not exist. */
export const gatewayRefsExist: Check = (f) => {
  const keys = new Set(f.model.gateways.map((g) => g.key));
  const gatewayApi = new Set(f.model.resources.filter((r) => r.kind === 'GatewayAPIGateway').map((r) => `${r.namespace}/${r.name}`));
  for (const vs of f.model.virtualServices) {
    (vs.spec.gateways ?? []).forEach((g, i) => {
      const key = vs.gateways[i];
      if (key === undefined || key === 'mesh' || keys.has(key)) return;
      if (gatewayApi.has(key)) {
        f.report('warning', 'TG_GATEWAY_API_BINDING', vs.resource, ['spec', 'gateways', i], `gateway "${g}" is a Gateway API Gateway (gateway.networking.k8s.io): Istio can bind a VirtualService to it, Tollgate does not yet, so these routes are not applied there`, 'route through an HTTPRoute, or an Istio Gateway (networking.istio.io) with the same listeners');
        return;
      }
      f.report('error', 'TG_GATEWAY_NOT_FOUND', vs.resource, ['spec', 'gateways', i], `gateway "${g}" (${key}) does not exist; this VirtualService's routes are not applied to any gateway`, `create Gateway ${key.split('/')[1]} in namespace ${key.split('/')[0]}, or fix the name (use namespace/name for a Gateway in another namespace)`);
    });
  }
};

/** Gateways whose selector matches no workload in the config (no proxy would run them). */
export const gatewaySelectsWorkload: Check = (f) => {
  for (const g of f.model.gateways) {
    if (Object.keys(g.selector).length === 0) continue;
    if (f.model.workloads.some((w) => labelsMatch(g.selector, w.labels))) continue;
    const sel = Object.entries(g.selector).map(([k, v]) => `${k}=${v}`).join(',');
    f.report('warning', 'TG_GATEWAY_NO_WORKLOAD', g.resource, ['spec', 'selector'], `selector ${sel} matches no Pod or Deployment in the config; only a gateway proxy started with --labels ${sel} will serve it`, `include the gateway's Deployment (pod labels ${sel}) in the config, or check the selector`);
  }
};

/** Gateway servers with hosts that no VirtualService binds (404 route_not_found / SNI closed). */
export const gatewayServersBound: Check = (f) => {
  for (const g of f.model.gateways) {
    for (const s of g.servers) {
      if (s.server.tls?.mode === 'AUTO_PASSTHROUGH') continue; // TG_GATEWAY_AUTO_PASSTHROUGH
      const bound = boundVirtualServices(f.model, g, s);
      const passthrough = s.server.tls?.mode === 'PASSTHROUGH';
      const l4 = passthrough || s.protocol === 'TCP' || s.protocol === 'TLS';
      const kind = passthrough || s.protocol === 'TLS' ? 'tls' : s.protocol === 'TCP' ? 'tcp' : 'http';
      for (const h of s.hosts) {
        const serving = bound.filter(({ vs, hosts }) => hosts.some((x) => patternsOverlap(x, h.host)) && (l4 ? (kind === 'tls' ? (vs.spec.tls ?? []).some((r) => (r.match ?? []).some((m) => (m.port === undefined || m.port === s.server.port.number) && (m.sniHosts ?? []).some((sni) => patternsOverlap(sni, h.host)))) : (vs.spec.tcp ?? []).length > 0) : (vs.spec.http ?? []).length > 0));
        if (serving.length > 0) continue;
        const symptom = kind === 'http' ? '404 Not Found (route_not_found)' : 'the connection is closed (no tls route for this SNI)';
        f.report('warning', 'TG_GATEWAY_HOST_NOT_ROUTED', g.resource, ['spec', 'servers', s.index, 'hosts'], `server port ${s.server.port.number}/${s.protocol}${passthrough ? ' PASSTHROUGH' : ''} host ${h.host}: no VirtualService bound to this Gateway has a ${kind} route for it; requests get ${symptom}`, `add a VirtualService with hosts [${h.host}], gateways [${g.resource.name}] and a ${kind} route${kind === 'tls' ? ` matching port ${s.server.port.number} and sniHosts [${h.host}]` : ''}`);
      }
    }
  }
};

/** Kubernetes Services that front a gateway workload (selector shared with a Gateway, or istio=*gateway pods). */
function gatewayServiceSelector(model: Model, host: string): Record<string, string> | undefined {
  const svc = model.registry.lookup(host).find((s) => s.kubernetes);
  const sel = svc?.kubernetes?.selector;
  if (!sel) return undefined;
  const looksLikeGateway = model.gateways.some((g) => Object.keys(g.selector).length > 0 && labelsMatch(g.selector, sel)) || Object.entries(sel).some(([k, v]) => k === 'istio' && v.endsWith('gateway'));
  return looksLikeGateway ? { ...sel } : undefined;
}

/** A mesh route sends traffic to a gateway Service, but no Gateway has a server on that port (Istio answers 503 on HTTP, resets TLS). */
export const meshRoutesReachGatewayServer: Check = (f) => {
  for (const d of destinations(f.model)) {
    if (!d.vs.gateways.includes('mesh')) continue;
    const sel = gatewayServiceSelector(f.model, d.host);
    if (!sel) continue;
    const svc = f.model.registry.lookup(d.host).find((s) => s.kubernetes);
    const port = d.port ?? d.matchPort ?? (svc?.ports.length === 1 ? svc.ports[0]?.number : undefined) ?? (d.kind === 'tls' ? 443 : 80);
    const svcPort = svc?.ports.find((p) => p.number === port);
    const target = svcPort?.targetPort ?? port;
    const gws = f.model.gateways.filter((g) => labelsMatch(g.selector, sel));
    const hasServer = gws.some((g) => g.servers.some((s) => s.server.port.number === port || s.server.port.number === target || s.server.port.targetPort === target));
    if (hasServer) continue;
    const selText = Object.entries(sel).map(([k, v]) => `${k}: ${v}`).join(', ');
    const symptom = d.kind === 'http' ? '503 Service Unavailable from the sidecar' : 'connection reset by peer';
    const hosts = (d.vs.spec.hosts ?? []).join(', ');
    f.report('error', 'TG_GATEWAY_NO_SERVER', d.vs.resource, [...d.path, 'host'], `mesh ${d.kind} route sends ${hosts} to ${d.host} port ${port}, but no Gateway selecting {${selText}} has a server on port ${port}: ${symptom}`, `add a Gateway with selector {${selText}} and a server on port ${port} (${d.kind === 'http' ? 'HTTP' : 'HTTPS with tls.mode PASSTHROUGH'}) for hosts [${hosts}]`);
  }
};

/** mesh VirtualService routes for host:ports the registry does not declare: the sidecar has no listener for them. */
export const meshRoutesDeclared: Check = (f) => {
  for (const vs of f.model.virtualServices) {
    if (!vs.gateways.includes('mesh')) continue;
    (vs.spec.tls ?? []).forEach((r, i) => {
      (r.match ?? []).forEach((m, mi) => {
        for (const sni of m.sniHosts ?? []) {
          const host = resolveHost(sni, vs.resource.namespace);
          const services = f.model.registry.lookup(host, vs.resource.namespace);
          const port = m.port ?? 443;
          if (services.some((s) => s.ports.some((p) => p.number === port && !HTTP.has(p.protocol)))) continue;
          f.report('warning', 'TG_MESH_ROUTE_NOT_IN_REGISTRY', vs.resource, ['spec', 'tls', i, 'match', mi], `tls route for ${host}:${port}: no ServiceEntry declares ${host} port ${port} (TLS/HTTPS), so sidecars have no listener for it and this route never applies. Istio (ALLOW_ANY) sends such HTTPS straight out, bypassing the egress gateway; Tollgate (REGISTRY_ONLY) blocks it`, `add port ${port} with protocol TLS to a ServiceEntry for ${host}`);
        }
      });
    });
    if ((vs.spec.http ?? []).length > 0) {
      for (const host of vs.hosts) {
        const services = f.model.registry.lookup(host, vs.resource.namespace);
        if (services.some((s) => s.ports.some((p) => HTTP.has(p.protocol)))) continue;
        if (services.length === 0 && host.endsWith('.svc.cluster.local')) continue; // reported by destination checks
        f.report('warning', 'TG_MESH_ROUTE_NOT_IN_REGISTRY', vs.resource, ['spec', 'hosts'], `http routes for ${host}: no ServiceEntry or Service declares an HTTP port for ${host}, so sidecars have no HTTP listener for it and REGISTRY_ONLY blocks the request before this route applies (Istio's ALLOW_ANY would send it straight out)`, `add a ServiceEntry with hosts [${host}] and port 80/HTTP`);
      }
    }
  }
};

/** HTTP to a host goes through the egress gateway, HTTPS to the same host does not (only port 80 is routed there). */
export const httpsBypassesGateway: Check = (f) => {
  for (const vs of f.model.virtualServices) {
    if (!vs.gateways.includes('mesh')) continue;
    const viaGateway = (vs.spec.http ?? []).some((r) => (r.route ?? []).some((d) => gatewayServiceSelector(f.model, resolveHost(d.destination.host, vs.resource.namespace)) !== undefined));
    if (!viaGateway) continue;
    for (const host of vs.hosts) {
      const tlsRouted = f.model.virtualServices.some((o) => o.gateways.includes('mesh') && (o.spec.tls ?? []).some((r) => (r.match ?? []).some((m) => (m.sniHosts ?? []).some((s) => patternsOverlap(s, host)))));
      if (tlsRouted) continue;
      f.report('warning', 'TG_HTTPS_BYPASSES_GATEWAY', vs.resource, ['spec', 'hosts'], `HTTP to ${host} is routed through the egress gateway, but HTTPS (443) to ${host} is not: a redirect to https:// leaves the mesh directly (Istio) or is blocked (Tollgate)`, `add port 443/TLS for ${host} to its ServiceEntry, a tls route (match port 443, sniHosts [${host}]) to this VirtualService, and a PASSTHROUGH server on the egress Gateway`);
    }
  }
};

/** Gateway-looking workloads with no Gateway at all (the gateway is installed, nothing routes to it yet). */
export const gatewayWorkloadsUsed: Check = (f) => {
  for (const w of f.model.workloads) {
    const istio = w.labels['istio'];
    if (!istio?.endsWith('gateway')) continue;
    if (f.model.gateways.some((g) => labelsMatch(g.selector, w.labels))) continue;
    f.report('info', 'TG_GATEWAY_WORKLOAD_UNUSED', w.resource, ['metadata'], `${w.kind} ${w.name} runs a gateway (istio=${istio}) but no Gateway selects it, so no traffic is routed through it`, `add a Gateway with selector {istio: ${istio}} and a VirtualService bound to it`);
  }
};

/** Several TCP ServiceEntries on one port without `addresses` cannot be told apart by a sidecar. */
export const tcpPortCollisions: Check = (f) => {
  const byPort = new Map<number, RegistryService[]>();
  for (const s of f.model.registry.services) {
    if (s.resource.kind !== 'ServiceEntry') continue;
    for (const p of s.ports) {
      if (p.protocol !== 'TCP' && p.protocol !== 'MONGO') continue;
      const list = byPort.get(p.number) ?? [];
      if (!list.includes(s)) list.push(s);
      byPort.set(p.number, list);
    }
  }
  // With DNS auto-allocation Istio gives each such host its own address, so Istio itself is fine;
  // Tollgate does not allocate, so the collision stays, but it is a warning about Tollgate, not invalid config.
  const autoAllocated = dnsAutoAllocate(f);
  for (const [port, list] of byPort) {
    const bare = list.filter((s) => s.addresses.length === 0);
    if (list.length < 2 || bare.length === 0) continue;
    for (const s of bare) {
      const others = list.filter((o) => o !== s).map((o) => `${o.resource.name} (${o.host})`).join(', ');
      if (autoAllocated) {
        f.report('warning', 'TG_TCP_PORT_COLLISION', s.resource, ['spec', 'addresses'], `TCP port ${port} of ${s.host} has no addresses, and ${others} also use TCP port ${port}: the mesh config turns on DNS auto-allocation, which gives Istio's sidecars one address per host, but Tollgate does not allocate addresses, so its sidecar cannot tell them apart`, `add spec.addresses to ${s.resource.name}`);
        continue;
      }
      f.report('error', 'TG_TCP_PORT_COLLISION', s.resource, ['spec', 'addresses'], `TCP port ${port} of ${s.host} has no addresses, and ${others} also use TCP port ${port}: a sidecar cannot tell them apart (the destination IP is all it sees)`, `add spec.addresses (the destination IPs or CIDRs) to ${s.resource.name}`);
    }
  }
};

export function gatewayLabelText(g: GatewayModel): string {
  return Object.entries(g.selector).map(([k, v]) => `${k}=${v}`).join(',');
}

export type { Finder };

/**
 * A path rule under NONE or BASE can be bypassed: `//admin` is not `/admin` to the proxy, but it is
 * to a server behind that merges slashes (nginx does). One warning per route that matches on uri.
 */
export const pathNormalizationWeak: Check = (f) => {
  const level = f.model.mesh.pathNormalization;
  if (level !== 'NONE' && level !== 'BASE') return;
  const where = f.model.mesh.source ? ` (${f.model.mesh.source.file}:${f.model.mesh.source.line})` : '';
  for (const vs of f.model.virtualServices) {
    (vs.spec.http ?? []).forEach((r, i) => {
      const j = (r.match ?? []).findIndex((m) => m.uri !== undefined);
      if (j < 0) return;
      const what = r.directResponse !== undefined ? 'answers a path directly (a deny?)' : r.redirect !== undefined ? 'redirects by path' : 'routes by path';
      f.report('warning', 'TG_PATH_NORMALIZATION_WEAK', vs.resource, ['spec', 'http', i, 'match', j, 'uri'], `http route ${i} ${what} under pathNormalization ${level}${where}: "//x", and under NONE "/a/../x" or "%2e", reach a server that normalises them as /x without matching this rule`, 'set pathNormalization.normalization: MERGE_SLASHES (or DECODE_AND_MERGE_SLASHES) in the istio ConfigMap');
    });
  }
};
