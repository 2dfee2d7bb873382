/**
 * The explicit forward proxy (`HTTPS_PROXY=http://gateway:3128`): a listener that serves CONNECT
 * and absolute-form requests against the registry, plus one cluster per registry host:port so the
 * data plane's check reads only the snapshot. Enabled by `tollgate run --explicit-proxy HOST:PORT`
 * or, for a gateway running from Kubernetes config, by annotations on its Gateway:
 *   tollgate.io/explicit-proxy: "3128" | "0.0.0.0:3128"
 *   tollgate.io/explicit-proxy-connect-ports: "443,8443"   (default 443)
 */
import type { GatewayModel, Model } from '../../model/build.js';
import { visibleTo } from '../../model/selectors.js';
import type { Listener, ProxyIdentity } from '../types.js';
import type { ClusterSet } from './clusters.js';

export const EXPLICIT_PROXY_ANNOTATION = 'tollgate.io/explicit-proxy';
export const CONNECT_PORTS_ANNOTATION = 'tollgate.io/explicit-proxy-connect-ports';
/**
 * `report` on a Gateway: its explicit proxy passes destinations outside the registry (as ALLOW_ANY
 * would) and logs each as would_deny_registry; `enforce` (the default) refuses them.
 */
export const OUTBOUND_MODE_ANNOTATION = 'tollgate.io/outbound-mode';

export interface ExplicitProxySpec {
  readonly address: string;
  readonly port: number;
  readonly connectPorts: readonly number[];
  readonly sourceAddress?: string;
  /** Pass and log destinations outside the registry instead of refusing them. */
  readonly reportOnly?: boolean;
}

/** The spec a Gateway's annotations ask for, or an error message naming the bad value. */
export function explicitProxyFromGateway(g: GatewayModel): ExplicitProxySpec | { error: string } | undefined {
  const v = g.resource.annotations[EXPLICIT_PROXY_ANNOTATION];
  if (v === undefined) return undefined;
  const m = /^(?:(\d{1,3}(?:\.\d{1,3}){3}|\[[0-9a-fA-F:]+\]):)?(\d{1,5})$/.exec(v.trim());
  const port = Number(m?.[2]);
  if (!m || port < 1 || port > 65535) return { error: `${EXPLICIT_PROXY_ANNOTATION}: "${v}" is not PORT or ADDRESS:PORT` };
  const portsText = g.resource.annotations[CONNECT_PORTS_ANNOTATION] ?? '443';
  const connectPorts = portsText.split(',').map((p) => Number(p.trim()));
  if (connectPorts.some((p) => !Number.isInteger(p) || p < 1 || p > 65535)) return { error: `${CONNECT_PORTS_ANNOTATION}: "${portsText}" is not a list of ports` };
  return { address: (m[1] ?? '0.0.0.0').replace(/^\[|\]$/g, ''), port, connectPorts };
}

export function generateExplicitProxy(model: Model, proxy: ProxyIdentity, clusters: ClusterSet, spec: ExplicitProxySpec): Listener {
  for (const s of model.registry.services) {
    if (!visibleTo(s.exportTo, s.namespace, proxy.namespace)) continue;
    for (const p of s.ports) clusters.forDestination(s.host, p.number, undefined, p.number);
  }
  return {
    name: `explicit_proxy_${spec.port}`,
    address: spec.address,
    port: spec.port,
    filterChains: [
      {
        name: 'explicit-proxy',
        match: {},
        filter: { type: 'explicit_proxy', statPrefix: 'explicit_proxy', connectPorts: [...spec.connectPorts], ...(spec.sourceAddress ? { sourceAddress: spec.sourceAddress } : {}), ...(spec.reportOnly ? { reportOnly: true } : {}) },
      },
    ],
  };
}

/** The outbound mode a Gateway's annotation asks for, or an error message naming the bad value. */
export function outboundModeOf(g: GatewayModel): 'report' | 'enforce' | { error: string } {
  const v = g.resource.annotations[OUTBOUND_MODE_ANNOTATION];
  if (v === undefined || v.trim() === 'enforce') return 'enforce';
  if (v.trim() === 'report') return 'report';
  return { error: `${OUTBOUND_MODE_ANNOTATION}: "${v}" is neither "report" nor "enforce"` };
}
