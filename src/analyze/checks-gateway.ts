/**
 * Gateway checks that istioctl analyze also makes (gateway.* analyzers): the gateway Service exposes
 * each server port, credential Secrets exist and hold a usable certificate, Gateways selecting the
 * same proxies do not claim the same port and hosts, and one certificate is not served by several
 * Gateways. Each finding carries Istio's code (istio-codes.ts).
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import type { Resource } from '../config/decode.js';
import type { GatewayModel, ServerModel } from '../model/build.js';
import { labelsMatch } from '../model/selectors.js';
import type { Workload } from '../model/workloads.js';
import { patternsOverlap } from '../net/hostname.js';
import { secretValue } from '../snapshot/secrets.js';
import type { Check, Finder } from './context.js';

function selectorText(sel: Readonly<Record<string, string>>): string {
  return Object.entries(sel).map(([k, v]) => `${k}=${v}`).join(',');
}

/** Workloads a Gateway's selector picks (a Gateway with no selector picks none: it applies to every gateway proxy). */
function gatewayWorkloads(f: Finder, g: GatewayModel): Workload[] {
  if (Object.keys(g.selector).length === 0) return [];
  return f.model.workloads.filter((w) => labelsMatch(g.selector, w.labels));
}

/** Gateway server ports that no Kubernetes Service in front of the gateway pods exposes (as port or targetPort). */
export const gatewayPortsOnService: Check = (f) => {
  for (const g of f.model.gateways) {
    const pods = gatewayWorkloads(f, g);
    if (pods.length === 0) continue; // TG_GATEWAY_NO_WORKLOAD
    const services = f.model.registry.services.filter((s) => {
      const sel = s.kubernetes?.selector;
      return sel !== undefined && Object.keys(sel).length > 0 && s.namespace !== undefined && pods.some((w) => w.namespace === s.namespace && labelsMatch(sel, w.labels));
    });
    if (services.length === 0) continue; // no Service in the config: the port cannot be checked
    const exposed = new Set<number>();
    for (const s of services) {
      for (const p of s.ports) {
        exposed.add(p.number);
        if (p.targetPort !== undefined) exposed.add(p.targetPort);
      }
    }
    for (const s of g.servers) {
      const port = s.server.port.number;
      if (exposed.has(port)) continue;
      f.report('warning', 'TG_GATEWAY_PORT_NOT_IN_SERVICE', g.resource, ['spec', 'servers', s.index, 'port', 'number'], `server port ${port} is not a port or targetPort of the gateway's Service (${services.map((x) => x.resource.name).join(', ')}, selecting ${selectorText(g.selector)}): clients that reach the gateway through that Service cannot use it`, `add port ${port} (or a port with targetPort ${port}) to Service ${services[0]?.resource.name}, or use one of its ports: ${[...exposed].sort((a, b) => a - b).join(', ')}`);
    }
  }
};

/** Why a TLS Secret cannot serve as a gateway credential, or undefined when it can. */
export function credentialProblem(secret: Resource, now: Date): string | undefined {
  const cert = secretValue(secret, ['tls.crt', 'cert']);
  const key = secretValue(secret, ['tls.key', 'key']);
  if (cert === undefined || key === undefined) {
    const present = Object.keys({ ...((secret.body['data'] as object | undefined) ?? {}), ...((secret.body['stringData'] as object | undefined) ?? {}) });
    return `has no certificate and key under tls.crt/tls.key (or cert/key); its keys are: ${present.join(', ') || 'none'}`;
  }
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(cert);
  } catch {
    return 'tls.crt is not a PEM certificate';
  }
  try {
    createPrivateKey(key);
  } catch {
    return 'tls.key is not a PEM private key';
  }
  if (Date.parse(x509.validTo) < now.getTime()) return `its certificate expired on ${x509.validTo}`;
  if (Date.parse(x509.validFrom) > now.getTime()) return `its certificate is not valid before ${x509.validFrom}`;
  if (!x509.checkPrivateKey(createPrivateKey(key))) return 'tls.key does not match the certificate in tls.crt';
  return undefined;
}

/**
 * Gateway credentialName: the Secret exists where the gateway proxy reads it and holds a usable
 * certificate and key (plus a CA for MUTUAL/OPTIONAL_MUTUAL). As Istio, a gateway proxy reads the
 * Secret from its own namespace (snapshot/generate/gateway.ts gatewayCredential): the namespaces of
 * the pods the Gateway selects; with no pod in the config, the Gateway's namespace (the namespace
 * `tollgate run` then assumes for the proxy). A Secret found only beside the Gateway is named, so
 * the difference is visible rather than a silent handshake failure.
 */
export const gatewaySecrets: Check = (f) => {
  const byKey = new Map(f.model.secrets.map((s) => [`${s.namespace}/${s.name}`, s]));
  const now = new Date();
  for (const g of f.model.gateways) {
    const pods = gatewayWorkloads(f, g);
    if (Object.keys(g.selector).length > 0 && pods.length === 0) continue; // TG_GATEWAY_NO_WORKLOAD says why
    const proxyNamespaces = pods.length > 0 ? [...new Set(pods.map((w) => w.namespace))].sort() : [g.resource.namespace];
    for (const s of g.servers) {
      const tls = s.server.tls;
      const name = tls?.credentialName;
      if (!name || tls === undefined) continue;
      const path = ['spec', 'servers', s.index, 'tls', 'credentialName'];
      const port = s.server.port.number;
      for (const ns of proxyNamespaces) {
        const secret = byKey.get(`${ns}/${name}`);
        if (!secret) {
          const beside = ns !== g.resource.namespace && byKey.has(`${g.resource.namespace}/${name}`);
          if (beside) {
            f.report('error', 'TG_GATEWAY_SECRET_NAMESPACE', g.resource, path, `credentialName ${name}: the Secret is in the Gateway's namespace ${g.resource.namespace}, but a gateway proxy reads it from its own namespace ${ns} (as Istio does): TLS handshakes on port ${port} fail there`, `create Secret ${name} in namespace ${ns}`);
          } else {
            f.report('error', 'TG_GATEWAY_SECRET_NOT_FOUND', g.resource, path, `credentialName ${name}: Secret ${ns}/${name} (the gateway proxy's namespace) is not in the config; TLS handshakes on port ${port} fail`, `add Secret ${name} (type kubernetes.io/tls, keys tls.crt and tls.key) in namespace ${ns}`);
          }
          continue;
        }
        const problem = credentialProblem(secret, now) ?? (tls.mode === 'MUTUAL' || tls.mode === 'OPTIONAL_MUTUAL' ? clientCaProblem(secret, byKey.get(`${ns}/${name}-cacert`), tls.caCertificates) : undefined);
        if (problem !== undefined) {
          f.report('error', 'TG_GATEWAY_SECRET_INVALID', g.resource, path, `credentialName ${name}: Secret ${ns}/${name} ${problem}; TLS handshakes on port ${port} fail`, `put a valid PEM certificate chain in tls.crt and its private key in tls.key of Secret ${ns}/${name}${tls.mode === 'MUTUAL' || tls.mode === 'OPTIONAL_MUTUAL' ? `, and the client CA in ca.crt (or in Secret ${name}-cacert)` : ''}`);
        }
      }
    }
  }
};

/** MUTUAL/OPTIONAL_MUTUAL: the client CA (ca.crt or cacert, else the `<name>-cacert` Secret) is there and parses. */
function clientCaProblem(secret: Resource, caSecret: Resource | undefined, caFile: string | undefined): string | undefined {
  const ca = secretValue(secret, ['ca.crt', 'cacert']) ?? (caSecret !== undefined ? secretValue(caSecret, ['cacert', 'ca.crt']) : undefined);
  if (ca === undefined) return caFile !== undefined ? undefined : `has no client CA for tls.mode MUTUAL (no ca.crt or cacert, and no Secret ${secret.name}-cacert): the proxy refuses the snapshot`;
  try {
    new X509Certificate(ca);
  } catch {
    return `has a client CA (ca.crt/cacert) that is not a PEM certificate`;
  }
  return undefined;
}

/** `a` applies wherever `b` does: a's labels are a subset of b's (Istio's "sub-selector"). */
function subSelector(a: Readonly<Record<string, string>>, b: Readonly<Record<string, string>>): boolean {
  return Object.entries(a).every(([k, v]) => b[k] === v);
}

/** Whether two Gateways can be served by one proxy: a workload both select, or one selector inside the other. */
function shareProxies(f: Finder, a: GatewayModel, b: GatewayModel): boolean {
  const wa = gatewayWorkloads(f, a);
  if (wa.some((w) => labelsMatch(b.selector, w.labels))) return true;
  return subSelector(a.selector, b.selector) || subSelector(b.selector, a.selector);
}

function serverHostsOverlap(a: ServerModel, b: ServerModel): string | undefined {
  for (const x of a.hosts) for (const y of b.hosts) if (patternsOverlap(x.host, y.host)) return x.host.length >= y.host.length ? x.host : y.host;
  return undefined;
}

/** Two Gateways on the same proxies with a server on the same port for overlapping hosts: which one applies is undefined. */
export const conflictingGateways: Check = (f) => {
  const gws = f.model.gateways;
  for (const g of gws) {
    const clashes: string[] = [];
    let first: ServerModel | undefined;
    for (const other of gws) {
      if (other === g || !shareProxies(f, g, other)) continue;
      for (const s of g.servers) {
        const o = other.servers.find((x) => x.server.port.number === s.server.port.number && serverHostsOverlap(s, x) !== undefined);
        if (!o) continue;
        clashes.push(`${other.key} (port ${s.server.port.number}, host ${serverHostsOverlap(s, o)})`);
        first ??= s;
        break;
      }
    }
    if (!first) continue;
    f.report('error', 'TG_GATEWAY_CONFLICT', g.resource, ['spec', 'servers', first.index], `server port ${first.server.port.number} overlaps servers of Gateway(s) ${clashes.join(', ')} on the same gateway proxies (selector ${selectorText(g.selector)}): which server's TLS and routes apply is undefined`, 'merge the servers into one Gateway, or give them distinct hosts or ports');
  }
};

function certificateOf(s: ServerModel): string | undefined {
  const tls = s.server.tls;
  if (!tls || (tls.mode !== 'SIMPLE' && tls.mode !== 'MUTUAL' && tls.mode !== 'OPTIONAL_MUTUAL')) return undefined;
  // Istio compares credential names, not namespaces: proxies read the Secret from their own namespace.
  if (tls.credentialName) return `secret ${tls.credentialName}`;
  if (tls.serverCertificate) return `file ${tls.serverCertificate}`;
  return undefined;
}

/**
 * One certificate in several Gateways on the same proxies: a client that reuses an HTTP/2
 * connection for another host of the certificate reaches the other server's routes or gets 404.
 */
export const duplicateCertificates: Check = (f) => {
  const gws = f.model.gateways;
  for (const g of gws) {
    const certs = new Set(g.servers.map((s) => certificateOf(s)).filter((c): c is string => c !== undefined));
    if (certs.size === 0) continue;
    const others = gws.filter((o) => o !== g && subSelector(g.selector, o.selector) && o.servers.some((s) => { const c = certificateOf(s); return c !== undefined && certs.has(c); }));
    if (others.length === 0) continue;
    const cert = [...certs].find((c) => others.some((o) => o.servers.some((s) => certificateOf(s) === c)));
    f.report('warning', 'TG_GATEWAY_DUPLICATE_CERT', g.resource, ['spec', 'servers'], `the certificate (${cert}) is also served by Gateway(s) ${others.map((o) => o.key).join(', ')} on the same proxies: a client reusing an HTTP/2 connection for another of its hosts can get 404`, 'serve each certificate from one Gateway (one server listing all its hosts)');
  }
};

/** AUTO_PASSTHROUGH (Istio's multi-network east-west gateway: the SNI names the cluster) is accepted, not implemented. */
export const autoPassthroughServers: Check = (f) => {
  for (const g of f.model.gateways) {
    for (const s of g.servers) {
      if (s.server.tls?.mode !== 'AUTO_PASSTHROUGH') continue;
      f.report('warning', 'TG_GATEWAY_AUTO_PASSTHROUGH', g.resource, ['spec', 'servers', s.index, 'tls', 'mode'], `server port ${s.server.port.number}: tls.mode AUTO_PASSTHROUGH (routing by an SNI that names an outbound cluster, for multi-network meshes) is valid Istio but not supported by Tollgate; Tollgate serves it as PASSTHROUGH, which needs tls routes from a bound VirtualService`, 'use tls.mode PASSTHROUGH with a VirtualService tls route per host, or keep Istio\'s east-west gateway for multi-network traffic');
    }
  }
};
