/**
 * The Istio objects that send one external destination through an egress gateway, built from one
 * intent (host, port, TLS mode). These are the objects users otherwise write by hand and get wrong
 * one at a time (503 without the gateway server, 404 without the bound route, 503 without the
 * ServiceEntry, HTTPS bypassing the gateway without the tls route):
 *
 *   ServiceEntry          the host in the registry, with the ports traffic uses
 *   Gateway               the gateway's server for the port the mesh sends to
 *   VirtualService mesh   sidecars: send the host to the gateway's Service (subset)
 *   VirtualService gw     gateway: send the host out to the destination
 *   DestinationRule gw    the subset the mesh route names
 *   DestinationRule host  (TLS origination) the gateway speaks TLS to the partner, trusting its CA,
 *                         presenting a client certificate when asked
 *
 * Pure: same intent, same objects, same order. `tollgate gen egress` prints them; `suggest
 * --via-gateway` builds them for every observed host.
 */

import { parseIp } from '../net/ip.js';

export type TlsMode = 'none' | 'passthrough' | 'originate';

export interface EgressIntent {
  readonly host: string;
  /** Destination port; default 80 (none) or 443 (passthrough, originate). */
  readonly port?: number;
  readonly tls: TlsMode;
  /** Gateway pod labels (Gateway.spec.selector). */
  readonly gatewaySelector: Readonly<Record<string, string>>;
  /** The gateway's Kubernetes Service, short name; it lives in `namespace`. */
  readonly gatewayService: string;
  /** Namespace of every generated object (the gateway's). */
  readonly namespace: string;
  /** Gateway object name (VirtualServices bind to it). */
  readonly gatewayName: string;
  readonly sourceAddress?: string;
  /** CA that signs the partner's certificate: a file path (contains '/') or a Secret name. */
  readonly caCert?: string;
  /** Secret holding the client certificate and key the partner asks for (mutual TLS). */
  readonly clientCert?: string;
}

export type KubeObject = {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata: { readonly name: string; readonly namespace: string; readonly annotations?: Readonly<Record<string, string>> };
  readonly spec: Readonly<Record<string, unknown>>;
};

export const SUBSET = 'egress';
const NET = 'networking.istio.io/v1';

/** A DNS-1123 name for objects of this host: `api.example.com` -> `api-example-com`, `*.x.io` -> `wildcard-x-io`. */
export function objectName(host: string): string {
  const s = host.toLowerCase().replace(/^\*\./, 'wildcard.').replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '');
  return (s || 'host').slice(0, 63).replace(/-+$/, '');
}

export function defaultPort(tls: TlsMode): number {
  return tls === 'none' ? 80 : 443;
}

/** Checks an intent before building; returns the problem as a sentence, or undefined. */
export function intentProblem(i: EgressIntent): string | undefined {
  const port = i.port ?? defaultPort(i.tls);
  if (!/^(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$/.test(i.host)) return `--host "${i.host}" is not a DNS name (e.g. api.example.com)`;
  if (!Number.isInteger(port) || port < 1 || port > 65535) return `--port ${port} is not a port number`;
  if (i.tls === 'originate' && i.host.startsWith('*.')) return 'TLS origination needs one host name (the SNI and the certificate check name it), not a wildcard';
  if (i.tls !== 'originate' && (i.caCert !== undefined || i.clientCert !== undefined)) return '--ca-cert and --client-cert apply to --tls originate only (with passthrough the application itself speaks TLS to the partner)';
  if (i.caCert !== undefined && i.clientCert !== undefined && !i.caCert.includes('/') && i.caCert !== i.clientCert) {
    return 'a DestinationRule names one credential Secret: put the CA into the client certificate Secret (key ca.crt) and pass the same name to --ca-cert, or pass the CA as a file path';
  }
  if (i.sourceAddress !== undefined && parseIp(i.sourceAddress) === undefined) return `--source-address "${i.sourceAddress}" is not an IP address`;
  if (Object.keys(i.gatewaySelector).length === 0) return '--gateway-selector needs at least one k=v label';
  return undefined;
}

export function egressObjects(i: EgressIntent): KubeObject[] {
  const problem = intentProblem(i);
  if (problem !== undefined) throw new Error(problem);
  const port = i.port ?? defaultPort(i.tls);
  const name = objectName(i.host);
  const meta = (suffix: string, annotations?: Record<string, string>) => ({
    name: `${name}${suffix}`,
    namespace: i.namespace,
    ...(annotations && Object.keys(annotations).length > 0 ? { annotations } : {}),
  });
  const gwHost = `${i.gatewayService}.${i.namespace}.svc.cluster.local`;
  const tls = i.tls === 'passthrough';
  // What the mesh sends to the gateway: TLS on 443 for passthrough, plain HTTP on 80 otherwise
  // (with origination the application speaks HTTP and the gateway adds TLS).
  const gwPort = tls ? 443 : 80;
  const sePorts =
    i.tls === 'none' ? [{ number: port, name: `http-${port}`, protocol: 'HTTP' }]
    : i.tls === 'passthrough' ? [{ number: port, name: `tls-${port}`, protocol: 'TLS' }]
    : [{ number: 80, name: 'http-80', protocol: 'HTTP' }, { number: port, name: `https-${port}`, protocol: 'HTTPS' }];
  const wildcard = i.host.startsWith('*.');
  const serviceEntry: KubeObject = {
    apiVersion: NET,
    kind: 'ServiceEntry',
    metadata: meta('', i.sourceAddress !== undefined ? { 'tollgate.io/source-address': i.sourceAddress } : undefined),
    spec: { hosts: [i.host], ports: dedupePorts(sePorts), location: 'MESH_EXTERNAL', resolution: wildcard ? 'NONE' : 'DNS' },
  };
  const gateway: KubeObject = {
    apiVersion: NET,
    kind: 'Gateway',
    metadata: { name: i.gatewayName, namespace: i.namespace },
    spec: {
      selector: { ...i.gatewaySelector },
      servers: [tls ? { port: { number: 443, name: 'tls-443', protocol: 'TLS' }, hosts: [i.host], tls: { mode: 'PASSTHROUGH' } } : { port: { number: 80, name: 'http-80', protocol: 'HTTP' }, hosts: [i.host] }],
    },
  };
  const toGateway = { host: gwHost, subset: SUBSET, port: { number: gwPort } };
  const meshVs: KubeObject = {
    apiVersion: NET,
    kind: 'VirtualService',
    metadata: meta('-via-egress'),
    spec: tls
      ? { hosts: [i.host], gateways: ['mesh'], tls: [{ match: [{ port, sniHosts: [i.host] }], route: [{ destination: toGateway }] }] }
      : { hosts: [i.host], gateways: ['mesh'], http: [{ route: [{ destination: toGateway }] }] },
  };
  const out = { host: i.host, port: { number: port } };
  const gatewayVs: KubeObject = {
    apiVersion: NET,
    kind: 'VirtualService',
    metadata: meta('-from-egress'),
    spec: tls
      ? { hosts: [i.host], gateways: [i.gatewayName], tls: [{ match: [{ port: 443, sniHosts: [i.host] }], route: [{ destination: out }] }] }
      : { hosts: [i.host], gateways: [i.gatewayName], http: [{ route: [{ destination: out }] }] },
  };
  const subsetRule: KubeObject = {
    apiVersion: NET,
    kind: 'DestinationRule',
    metadata: { name: `${i.gatewayService}-${SUBSET}`, namespace: i.namespace },
    spec: { host: gwHost, subsets: [{ name: SUBSET }] },
  };
  const objects = [serviceEntry, gateway, meshVs, gatewayVs, subsetRule];
  if (i.tls === 'originate') objects.push(originationRule(i, name, port));
  return objects;
}

function originationRule(i: EgressIntent, name: string, port: number): KubeObject {
  const tls: Record<string, unknown> = { mode: i.clientCert !== undefined ? 'MUTUAL' : 'SIMPLE', sni: i.host };
  if (i.clientCert !== undefined) tls['credentialName'] = i.clientCert;
  if (i.caCert !== undefined) {
    if (i.caCert.includes('/')) tls['caCertificates'] = i.caCert;
    else tls['credentialName'] = i.caCert;
  }
  return {
    apiVersion: NET,
    kind: 'DestinationRule',
    metadata: { name: `${name}-tls`, namespace: i.namespace },
    spec: { host: i.host, trafficPolicy: { portLevelSettings: [{ port: { number: port }, tls }] } },
  };
}

function dedupePorts<P extends { number: number }>(ports: P[]): P[] {
  const seen = new Set<number>();
  return ports.filter((p) => (seen.has(p.number) ? false : (seen.add(p.number), true)));
}

/** Merges objects that share kind/namespace/name (one Gateway for many hosts): servers and hosts are unioned. */
export function mergeGateways(objects: readonly KubeObject[]): KubeObject[] {
  const out: KubeObject[] = [];
  const byKey = new Map<string, number>();
  for (const o of objects) {
    const key = `${o.kind}/${o.metadata.namespace}/${o.metadata.name}`;
    const at = byKey.get(key);
    if (at === undefined) {
      byKey.set(key, out.length);
      out.push(o);
      continue;
    }
    const prev = out[at]!;
    if (o.kind !== 'Gateway') continue; // identical subset DestinationRules: keep one
    const servers = [...(prev.spec['servers'] as ServerLike[])];
    for (const s of o.spec['servers'] as ServerLike[]) {
      const same = servers.findIndex((x) => x.port.number === s.port.number);
      if (same < 0) servers.push(s);
      else {
        const x = servers[same]!;
        servers[same] = { ...x, hosts: [...new Set([...x.hosts, ...s.hosts])].sort() };
      }
    }
    servers.sort((a, b) => a.port.number - b.port.number);
    out[at] = { ...prev, spec: { ...prev.spec, servers } };
  }
  return out;
}

interface ServerLike {
  readonly port: { readonly number: number };
  readonly hosts: readonly string[];
}
