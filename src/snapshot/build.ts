/**
 * (Model, proxy identity) -> Snapshot. Pure and deterministic: the same inputs give byte-identical
 * JSON, and the version is a hash of that JSON, so "did anything change for this proxy" is a
 * string comparison.
 */
import { createHash } from 'node:crypto';
import type { Model } from '../model/build.js';
import { egressIpRules } from './egress-ip.js';
import { ClusterSet } from './generate/clusters.js';
import { generateEnvoy } from './generate/envoy.js';
import { explicitProxyFromGateway, generateExplicitProxy, outboundModeOf, type ExplicitProxySpec } from './generate/explicit-proxy.js';
import { gatewaysFor, generateGateway } from './generate/gateway.js';
import { generateRouter, routerKernelPlan } from './generate/router.js';
import { generateSidecar, outboundPolicyFor } from './generate/sidecar.js';
import { resolveSecrets } from './secrets.js';
import { leaseNameOf, type SourcePool } from '../model/source-pools.js';
import { originOf } from './generate/origin.js';
import { authorizationFor, withAuthorizationFilter } from './generate/authz.js';
import type { EgressIpRule, Listener, ManagedAddress, ProxyIdentity, RouteConfig, Snapshot } from './types.js';

export interface SnapshotOptions {
  /** `tollgate run --explicit-proxy`: an explicit proxy listener whatever the config says. */
  readonly explicitProxy?: ExplicitProxySpec;
  /** `tollgate run --report-only`: pass and log destinations outside the registry. */
  readonly reportOnly?: boolean;
  /**
   * Only Secrets of this namespace are resolved into the snapshot (the control plane passes the
   * namespace the proxy authenticated as: a Gateway or DestinationRule elsewhere cannot pull another
   * namespace's keys into it). Unset: every named Secret (local files, one trusted operator).
   */
  readonly secretNamespace?: string;
}

export function buildSnapshot(model: Model, proxy: ProxyIdentity, options: SnapshotOptions = {}): Snapshot {
  const clusters = new ClusterSet(model, proxy.namespace, proxy.nodeName);
  const listeners: Listener[] = [];
  const routes: RouteConfig[] = [];
  const outboundTrafficPolicy = proxy.role === 'sidecar' ? outboundPolicyFor(model, proxy) : 'REGISTRY_ONLY';

  if (proxy.role === 'gateway') {
    const g = generateGateway(model, proxy, clusters);
    listeners.push(...g.listeners);
    routes.push(...g.routes);
  } else if (proxy.role === 'sidecar') {
    const s = generateSidecar(model, proxy, clusters, outboundTrafficPolicy);
    listeners.push(...s.listeners);
    routes.push(...s.routes);
  } else {
    listeners.push(...generateRouter(model, proxy, clusters));
  }
  const routerKernel = proxy.role === 'router' ? routerKernelPlan(model, proxy) : undefined;
  // Explicit proxy: from the flag, else from the annotation of a Gateway this proxy runs.
  const explicit = options.explicitProxy ?? (proxy.role === 'gateway' ? gatewaysFor(model, proxy).map(explicitProxyFromGateway).find((x): x is ExplicitProxySpec => x !== undefined && !('error' in x)) : undefined);
  const reportOnly = options.reportOnly === true || (proxy.role === 'gateway' && gatewaysFor(model, proxy).some((g) => outboundModeOf(g) === 'report'));
  if (explicit) {
    const l = generateExplicitProxy(model, proxy, clusters, reportOnly ? { ...explicit, reportOnly } : explicit);
    const clash = listeners.findIndex((x) => x.port === l.port && x.address === l.address);
    if (clash >= 0) listeners.splice(clash, 1);
    listeners.push(l);
  }
  // An Envoy bootstrap in the config is this proxy's static config, whatever its role.
  if (model.envoy) {
    const e = generateEnvoy(model.envoy, clusters);
    listeners.push(...e.listeners);
    routes.push(...e.routes);
  }

  // Secrets named by credentialName (clusters' upstream TLS, listeners' downstream TLS): SDS-like.
  const credentialNames: string[] = [];
  for (const c of clusters.clusters.values()) if (c.tls?.credentialName) credentialNames.push(c.tls.credentialName);
  for (const l of listeners) for (const fc of l.filterChains) if (fc.tls?.credentialName) credentialNames.push(fc.tls.credentialName);
  const allowed = options.secretNamespace === undefined ? credentialNames : credentialNames.filter((n) => n.startsWith(`${options.secretNamespace}/`));
  const secrets = allowed.length > 0 ? resolveSecrets(model.secrets, allowed) : [];

  const egressIps = egressIpRules(model, proxy);
  const authorization = authorizationFor(model, proxy);
  const managedAddresses = managedAddressesOf(model, clusters, egressIps);
  if (routerKernel) managedAddresses.unshift({ address: routerKernel.source, managedBy: 'router', source: `Deployment ${routerKernel.origin?.namespace ?? ''}/${routerKernel.origin?.name ?? ''}`, ...(routerKernel.origin ? { origin: routerKernel.origin } : {}) });

  const byName = <T extends { name: string }>(a: T, b: T): number => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
  const body = {
    proxy: { role: proxy.role, namespace: proxy.namespace, name: proxy.name, labels: sortKeys(proxy.labels), ...(proxy.nodeName ? { nodeName: proxy.nodeName } : {}) },
    listeners: withAuthorizationFilter(listeners, authorization).sort(byName),
    routes: [...routes].sort(byName),
    clusters: [...clusters.clusters.values()].sort(byName),
    endpoints: [...clusters.endpoints.values()].sort((a, b) => (a.clusterName < b.clusterName ? -1 : a.clusterName > b.clusterName ? 1 : 0)),
    policy: { outboundTrafficPolicy, ...(reportOnly ? { outboundMode: 'report' as const } : {}), egressIps, ...(model.mesh.pathNormalization !== undefined ? { pathNormalization: model.mesh.pathNormalization } : {}), ...(model.mesh.gatewayForwardClientCertDetails !== undefined && proxy.role === 'gateway' ? { forwardClientCertDetails: model.mesh.gatewayForwardClientCertDetails } : {}), ...(authorization.length > 0 ? { authorization } : {}) },
    ...(model.envoy?.admin ? { admin: { address: model.envoy.admin.address, port: model.envoy.admin.port } } : {}),
    ...(secrets.length > 0 ? { secrets } : {}),
    ...(managedAddresses.length > 0 ? { managedAddresses } : {}),
    ...(routerKernel ? { routerKernel } : {}),
  };
  return { version: versionOf(body), ...body };
}

/** Floating addresses of the pools this proxy's clusters and caller namespaces use (NetNamespaces are floating). */
function managedAddressesOf(model: Model, clusters: ClusterSet, egressIps: readonly EgressIpRule[]): ManagedAddress[] {
  const byAddress = new Map<string, ManagedAddress>();
  const add = (address: string, pool: SourcePool): void => {
    if (!byAddress.has(address)) byAddress.set(address, { address, managedBy: 'floating', lease: leaseNameOf(address), source: pool.label, origin: originOf(pool.resource) });
  };
  for (const [address, pool] of clusters.floating) add(address, pool);
  for (const rule of egressIps) {
    // Only NetNamespace rules are floating; their rule name is the pool's label.
    const pool = model.sourcePools.find((p) => p.mode === 'floating' && p.label === rule.name);
    if (pool) for (const a of rule.sourceAddresses) add(a, pool);
  }
  return [...byAddress.values()].sort((a, b) => (a.address < b.address ? -1 : 1));
}

function sortKeys(m: Readonly<Record<string, string>>): Record<string, string> {
  return Object.fromEntries(Object.entries(m).sort(([a], [b]) => (a < b ? -1 : 1)));
}

export function versionOf(body: unknown): string {
  return createHash('sha256').update(JSON.stringify(body)).digest('hex').slice(0, 16);
}
