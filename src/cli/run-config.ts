/**
 * `tollgate run` config step: files -> snapshot for this proxy's identity, plus the explicit-proxy
 * listener that `--explicit-proxy HOST:PORT` adds (with one cluster per registry host:port, so the
 * data plane's registry check reads only the snapshot).
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Diagnostic } from '../config/diagnostics.js';
import { identityFrom } from './common.js';
import { decodeResources } from '../config/decode.js';
import { loadPaths } from '../config/load.js';
import { buildModel, type Model } from '../model/build.js';
import { visibleTo } from '../model/selectors.js';
import { buildSnapshot, versionOf } from '../snapshot/build.js';
import { ClusterSet } from '../snapshot/generate/clusters.js';
import type { Cluster, EndpointSet, Listener, ProxyIdentity, Snapshot } from '../snapshot/types.js';

export interface ExplicitProxySpec {
  readonly address: string;
  readonly port: number;
  readonly connectPorts: readonly number[];
  readonly sourceAddress?: string;
}

export interface SnapshotLoad {
  readonly snapshot: Snapshot | undefined;
  readonly proxy: ProxyIdentity | undefined;
  readonly diagnostics: readonly Diagnostic[];
  readonly files: readonly string[];
}

/** Identity flags as given; missing labels/namespace are inferred from the config (cli/common.ts identityFrom). */
export interface IdentityFlags {
  readonly role?: string;
  readonly namespace?: string;
  readonly labels?: string;
  readonly name?: string;
}

export function loadSnapshot(paths: readonly string[], identity: IdentityFlags, explicitProxy?: ExplicitProxySpec, note: (s: string) => void = () => {}): SnapshotLoad {
  const loaded = loadPaths(paths);
  const decoded = decodeResources(loaded.documents);
  const diagnostics: Diagnostic[] = [...loaded.diagnostics, ...decoded.diagnostics];
  if (diagnostics.some((d) => d.severity === 'error')) return { snapshot: undefined, proxy: undefined, diagnostics, files: loaded.files };
  const model = buildModel(decoded.resources);
  diagnostics.push(...model.diagnostics);
  if (model.diagnostics.some((d) => d.severity === 'error')) return { snapshot: undefined, proxy: undefined, diagnostics, files: loaded.files };
  const proxy = identityFrom(identity, model, note);
  let snapshot = buildSnapshot(model, proxy);
  if (explicitProxy) snapshot = withExplicitProxy(model, snapshot, proxy, explicitProxy);
  return { snapshot, proxy, diagnostics, files: loaded.files };
}

/** Adds the explicit-proxy listener and the registry's clusters (subset-less, one per host:port). */
export function withExplicitProxy(model: Model, snapshot: Snapshot, proxy: ProxyIdentity, spec: ExplicitProxySpec): Snapshot {
  const set = new ClusterSet(model, proxy.namespace);
  for (const s of model.registry.services) {
    if (!visibleTo(s.exportTo, s.namespace, proxy.namespace)) continue;
    for (const p of s.ports) set.forDestination(s.host, p.number, undefined, p.number);
  }
  const clusters = new Map<string, Cluster>(snapshot.clusters.map((c) => [c.name, c]));
  const endpoints = new Map<string, EndpointSet>(snapshot.endpoints.map((e) => [e.clusterName, e]));
  for (const [name, c] of set.clusters) if (!clusters.has(name)) clusters.set(name, c);
  for (const [name, e] of set.endpoints) if (!endpoints.has(name)) endpoints.set(name, e);
  const listener: Listener = {
    name: `explicit_proxy_${spec.port}`,
    address: spec.address,
    port: spec.port,
    filterChains: [
      {
        name: 'explicit-proxy',
        match: {},
        filter: { type: 'explicit_proxy', statPrefix: 'explicit_proxy', connectPorts: [...spec.connectPorts], ...(spec.sourceAddress ? { sourceAddress: spec.sourceAddress } : {}) },
      },
    ],
  };
  const byName = <T extends { name: string }>(a: T, b: T): number => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
  const body = {
    proxy: snapshot.proxy,
    listeners: [...snapshot.listeners.filter((l) => !(l.port === spec.port && l.address === spec.address)), listener].sort(byName),
    routes: snapshot.routes,
    clusters: [...clusters.values()].sort(byName),
    endpoints: [...endpoints.values()].sort((a, b) => (a.clusterName < b.clusterName ? -1 : a.clusterName > b.clusterName ? 1 : 0)),
    policy: snapshot.policy,
    ...(snapshot.admin ? { admin: snapshot.admin } : {}),
  };
  return { version: versionOf(body), ...body };
}

/** examples/default next to the package root (works from src/ via tsx and from dist/src/). */
export function defaultConfigDir(): string | undefined {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const candidate = join(dir, 'examples', 'default');
    if (existsSync(join(dir, 'package.json')) && existsSync(candidate)) return candidate;
    dir = dirname(dir);
  }
  return undefined;
}
