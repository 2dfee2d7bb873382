/** TLS settings the data plane cannot enforce are errors: on Gateway servers (a snapshot with them is rejected) and on DestinationRules for tcp/tls routes. */
import { isTerminated } from '../snapshot/generate/gateway.js';
import { tlsParameters } from '../snapshot/generate/tls-settings.js';
import type { Path } from '../config/load.js';
import type { ClientTls, DestinationRuleSpec } from '../config/types.js';
import { resolveHost } from '../model/selectors.js';
import type { Check } from './context.js';

export const gatewayTlsSettings: Check = (f) => {
  for (const g of f.model.gateways) {
    for (const s of g.servers) {
      if (!isTerminated(s)) continue;
      const p = tlsParameters(s.server.tls);
      if (p.unsupported !== undefined) {
        f.report('error', 'TG_GATEWAY_TLS_UNSUPPORTED', g.resource, ['spec', 'servers', s.index, 'tls'], `server ${s.index} (port ${s.server.port.number}): ${p.unsupported}; a proxy refuses a snapshot with this server (it does not start, or keeps its previous config)`, 'use OpenSSL cipher names (openssl ciphers -v), one per entry, and minProtocolVersion <= maxProtocolVersion; give MUTUAL a CA; drop the fields named as not supported');
      }
    }
  }
};

/**
 * The TCP proxy originates only mesh mTLS (ISTIO_MUTUAL). A DestinationRule asking for SIMPLE or
 * MUTUAL TLS on a port a tcp or tls route sends to would be ignored there: those connections would
 * leave without the TLS the rule asks for, so that is an error. HTTP routes do originate it.
 */
export const l4TlsOrigination: Check = (f) => {
  const l4 = new Map<string, { ports: Set<number>; anyPort: boolean; subsets: Set<string> }>();
  for (const vs of f.model.virtualServices) {
    for (const r of [...(vs.spec.tcp ?? []), ...(vs.spec.tls ?? [])]) {
      const matchPorts = (r.match ?? []).map((m) => m.port);
      for (const d of r.route ?? []) {
        const host = resolveHost(d.destination.host, vs.resource.namespace);
        const e = l4.get(host) ?? { ports: new Set<number>(), anyPort: false, subsets: new Set<string>() };
        l4.set(host, e);
        const ports = d.destination.port?.number !== undefined ? [d.destination.port.number] : matchPorts;
        if (ports.length === 0 || ports.some((p) => p === undefined)) e.anyPort = true;
        for (const p of ports) if (p !== undefined) e.ports.add(p);
        if (d.destination.subset !== undefined) e.subsets.add(d.destination.subset);
      }
    }
  }
  const originated = (tls: ClientTls | undefined): boolean => tls?.mode === 'SIMPLE' || tls?.mode === 'MUTUAL';
  for (const dr of f.model.destinationRules) {
    const used = l4.get(dr.host);
    if (used === undefined) continue;
    const spec: DestinationRuleSpec = dr.spec;
    const found: Path[] = [];
    if (originated(spec.trafficPolicy?.tls)) found.push(['spec', 'trafficPolicy', 'tls', 'mode']);
    (spec.trafficPolicy?.portLevelSettings ?? []).forEach((p, i) => {
      const port = p.port?.number;
      if (originated(p.tls) && port !== undefined && (used.anyPort || used.ports.has(port))) found.push(['spec', 'trafficPolicy', 'portLevelSettings', i, 'tls', 'mode']);
    });
    (spec.subsets ?? []).forEach((s, i) => {
      if (originated(s.trafficPolicy?.tls) && used.subsets.has(s.name)) found.push(['spec', 'subsets', i, 'trafficPolicy', 'tls', 'mode']);
    });
    for (const at of found) {
      f.report('error', 'TG_L4_TLS_ORIGINATION', dr.resource, at, `SIMPLE/MUTUAL TLS origination is NOT applied to tcp/tls routes to ${dr.host}: the TCP proxy originates only ISTIO_MUTUAL, so those connections leave without the TLS this rule asks for (HTTP routes do originate it)`, 'route the traffic as HTTP so the proxy originates TLS, or let the client speak TLS itself (a tls route with SNI passthrough) and drop the tls setting for that port');
    }
  }
};
