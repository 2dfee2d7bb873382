/** Checks on egress routers, EgressIPs, DestinationRules, Kubernetes objects and Envoy bootstraps. */
import { KINDS } from '../config/kinds.js';
import type { DestinationRuleSpec, HttpRoute, L4Route } from '../config/types.js';
import { selectorMatches } from '../model/selectors.js';
import { routerServicePorts } from '../snapshot/generate/router.js';
import { EXPLICIT_PROXY_ANNOTATION, explicitProxyFromGateway, OUTBOUND_MODE_ANNOTATION, outboundModeOf } from '../snapshot/generate/explicit-proxy.js';
import { LOCAL_RATE_LIMIT_ANNOTATION, parseLocalRateLimit } from '../config/rate-limit.js';
import type { Resource } from '../config/decode.js';
import type { Path } from '../config/load.js';
import type { Check } from './context.js';

export const egressRouters: Check = (f) => {
  for (const r of f.model.egressRouters) {
    const dep = r.resource;
    if (r.replicas !== 1) {
      f.report('error', 'TG_ROUTER_REPLICAS', dep, ['spec', 'replicas'], `egress router has replicas: ${r.replicas}; EGRESS_SOURCE ${r.source ?? ''} is a single address and can be held by one pod only`, 'set replicas: 1 (use a second router with its own EGRESS_SOURCE for redundancy)');
    }
    for (const rule of r.datapath === 'userspace' ? r.rules.filter((x) => x.protocol === 'udp') : []) {
      f.report('warning', 'TG_ROUTER_UDP', dep, ['spec'], `EGRESS_DESTINATION line ${rule.pos.line} forwards udp port ${rule.port}; the userspace relay forwards TCP only, so this rule is not served`, 'remove the udp rule, or use the kernel datapath (the default in init mode), which forwards UDP');
    }
    if (!r.source && r.mode !== 'http-proxy') {
      f.report('error', 'TG_ROUTER_NO_SOURCE', dep, ['spec', 'template', 'spec'], 'egress router has no EGRESS_SOURCE: connections would leave from the node\'s address, which defeats the fixed source IP', 'set EGRESS_SOURCE to the IP the destination allows');
    }
    const ports = routerServicePorts(f.model, r);
    const uncovered = ports.filter((p) => !r.rules.some((x) => x.port === p));
    if (r.mode !== 'http-proxy') {
      const summary = r.rules.map((x) => `${x.port}->${x.destination}:${x.destinationPort}`).join(', ') || 'none';
      f.report('info', 'TG_ROUTER_SUMMARY', dep, ['metadata', 'name'], `egress router (${r.mode} mode, ${r.datapath} datapath): source ${r.source ?? 'unset'}, rules ${summary}; ${r.fallback ? `fallback ${r.fallback.destination} for any other port` : 'no fallback line: other ports are refused'}${uncovered.length > 0 ? `; Service ports without a rule: ${uncovered.join(', ')}` : ''}`, 'tollgate run --role router serves these rules; trace tcp://<router>:<port> shows one');
    }
  }
};

/**
 * A caller gets a namespace's egress IP when the proxy can tell it comes from that namespace: by
 * its pod IP (a Pod in the config) or by the namespace its mesh certificate proves on a Gateway
 * server that terminates ISTIO_MUTUAL. A namespace neither can attribute is never served the address.
 */
export const egressIps: Check = (f) => {
  const mtlsGateway = f.model.gateways.some((g) => g.servers.some((s) => s.server.tls?.mode === 'ISTIO_MUTUAL'));
  const withPodIps = new Set(f.model.workloads.filter((w) => w.ip).map((w) => w.namespace));
  const unseen = (r: Resource, path: Path, namespaces: readonly string[]): void => {
    if (mtlsGateway) return;
    const lost = namespaces.filter((ns) => !withPodIps.has(ns));
    if (lost.length === 0) return;
    f.report('warning', 'TG_EGRESSIP_NAMESPACE_UNSEEN', r, path, `namespace ${lost.join(', ')}: no Pod of it has an IP in the config and no Gateway server terminates ISTIO_MUTUAL, so no connection can be attributed to it and it never leaves from this egress IP`, 'add a Gateway server with tls.mode ISTIO_MUTUAL for its callers (the certificate proves the namespace), or include its Pods');
  };
  for (const e of f.model.egressIps) {
    const namespaces = [...f.model.namespaces.entries()].filter(([, labels]) => selectorMatches(e.spec.namespaceSelector, labels));
    if (namespaces.length === 0) {
      f.report('warning', 'TG_EGRESSIP_NO_NAMESPACE', e, ['spec', 'namespaceSelector'], 'namespaceSelector matches no Namespace in the config, so no caller gets this egress IP', 'include the Namespace objects with their labels, or fix the selector');
    }
    unseen(e, ['spec', 'namespaceSelector'], namespaces.map(([ns]) => ns));
  }
  for (const n of f.model.netNamespaces) if (n.egressIPs.length > 0) unseen(n.resource, ['egressIPs'], [n.namespace]);
};

function weightsOf(routes: readonly (HttpRoute | L4Route)[] | undefined): { index: number; sum: number; n: number }[] {
  return (routes ?? []).map((r, index) => ({ index, sum: (r.route ?? []).reduce((a, d) => a + (d.weight ?? 0), 0), n: (r.route ?? []).length })).filter((x) => x.n > 1);
}

export const routeWeights: Check = (f) => {
  for (const vs of f.model.virtualServices) {
    for (const kind of ['http', 'tls', 'tcp'] as const) {
      for (const w of weightsOf(vs.spec[kind])) {
        if (w.sum === 100) continue;
        f.report('error', 'TG_WEIGHTS_NOT_100', vs.resource, ['spec', kind, w.index, 'route'], `${kind} route ${w.index} splits over ${w.n} destinations whose weights sum to ${w.sum}, not 100`, 'make the weights add up to 100');
      }
    }
  }
};

export const destinationRules: Check = (f) => {
  const secrets = new Set(f.model.secrets.map((s) => `${s.namespace}/${s.name}`));
  for (const dr of f.model.destinationRules) {
    if (f.model.registry.lookup(dr.host).length === 0) {
      f.report('warning', 'TG_DR_HOST_NOT_IN_REGISTRY', dr.resource, ['spec', 'host'], `host ${dr.host} is not in the registry; this DestinationRule applies to nothing`, `add a ServiceEntry for ${dr.host}, or fix the host`);
    }
    const spec: DestinationRuleSpec = dr.spec;
    const policies = [
      { tp: spec.trafficPolicy, path: ['spec', 'trafficPolicy'] as (string | number)[] },
      ...(spec.subsets ?? []).map((s, i) => ({ tp: s.trafficPolicy, path: ['spec', 'subsets', i, 'trafficPolicy'] as (string | number)[] })),
    ];
    for (const { tp, path } of policies) {
      const tls = tp?.tls;
      if (!tls) continue;
      if (tls.mode === 'MUTUAL' && !tls.credentialName && !(tls.clientCertificate && tls.privateKey)) {
        f.report('error', 'TG_DR_MUTUAL_NO_CERT', dr.resource, [...path, 'tls'], 'tls.mode MUTUAL without client certificate material (clientCertificate + privateKey, or credentialName)', 'add credentialName pointing at a Secret with tls.crt and tls.key, or clientCertificate and privateKey files');
      }
      if (tls.credentialName) {
        const key = tls.credentialName.includes('/') ? tls.credentialName : `${dr.resource.namespace}/${tls.credentialName}`;
        if (!secrets.has(key)) {
          f.report('error', 'TG_DR_SECRET_NOT_FOUND', dr.resource, [...path, 'tls', 'credentialName'], `credentialName ${key} names a Secret that is not in the config`, `add Secret ${key} with tls.crt, tls.key and ca.crt`);
        }
      }
    }
    (spec.subsets ?? []).forEach((s, i) => {
      if (!s.labels) return;
      const svc = f.model.registry.lookup(dr.host)[0];
      if (!svc || svc.endpoints.length === 0) return;
      if (svc.endpoints.some((e) => Object.entries(s.labels ?? {}).every(([k, v]) => e.labels[k] === v))) return;
      f.report('warning', 'TG_SUBSET_NO_ENDPOINTS', dr.resource, ['spec', 'subsets', i, 'labels'], `subset ${s.name} selects no endpoint of ${dr.host}: requests to it get 503 (UH)`, 'fix the subset labels or the endpoint labels');
    });
  }
};

export const kubernetesObjects: Check = (f) => {
  for (const s of f.model.registry.services) {
    const k = s.kubernetes;
    if (!k || k.type === 'ExternalName') continue;
    if (s.endpoints.length === 0 && k.selector && Object.keys(k.selector).length > 0) {
      const who = k.selectedWorkloads.length > 0 ? `selects ${k.selectedWorkloads.join(', ')}, but no Pod in the config has status.podIP and there is no Endpoints/EndpointSlice` : 'selects no workload in the config';
      f.report('info', 'TG_SERVICE_NO_ENDPOINTS', s.resource, ['spec', 'selector'], `${s.host} ${who}; proxies route to it but find no endpoint (503 UH) until the control plane sees its endpoints`, 'add an Endpoints/EndpointSlice object, or Pods with status.podIP, when running from files');
    }
    if (k.externalTrafficPolicy === 'Local' && (k.type === 'NodePort' || k.type === 'LoadBalancer')) {
      f.report('info', 'TG_SERVICE_SOURCE_IP', s.resource, ['spec', 'externalTrafficPolicy'], `externalTrafficPolicy: Local keeps the client source IP but only nodes running a pod answer (${k.type}); Tollgate gateways see the real client address and log it as downstream_remote_address`, 'nothing to fix; for the egress direction use a fixed source address (tollgate.io/source-address or EgressIP)');
    }
  }
  for (const w of f.model.workloads) {
    if (w.kind !== 'Pod') continue;
    const aliases = (w.resource.spec as { hostAliases?: { ip: string; hostnames?: string[] }[] }).hostAliases ?? [];
    aliases.forEach((a, i) => {
      f.report('info', 'TG_POD_HOSTALIASES', w.resource, ['spec', 'hostAliases', i], `hostAliases pins ${(a.hostnames ?? []).join(', ')} to ${a.ip} in /etc/hosts: those names skip DNS, and an egress gateway routing by Host still needs a ServiceEntry for them`, `declare ${(a.hostnames ?? []).join(', ')} in a ServiceEntry (resolution STATIC with endpoint ${a.ip}) instead of hostAliases`);
    });
  }
};

export const envoyBootstrap: Check = (f) => {
  const admin = f.model.envoy?.admin;
  if (admin && (admin.address === '0.0.0.0' || admin.address === '::')) {
    f.report('warning', 'TG_ADMIN_EXPOSED', admin.resource, ['admin', 'address'], `admin interface on ${admin.address}:${admin.port} is reachable from other hosts (config_dump, logging level, shutdown)`, 'bind admin to 127.0.0.1');
  }
  for (const l of f.model.envoy?.listeners ?? []) {
    const name = String(l.value['name'] ?? '');
    f.report('info', 'TG_ENVOY_LISTENER', l.resource, ['static_resources', 'listeners', l.index], `Envoy listener ${name} is served by tollgate run as written (role-independent)`, 'tollgate trace -f <file> http://host:<port>/ shows its route');
  }
};

export const recognisedKinds: Check = (f) => {
  for (const r of f.model.resources) {
    // These have their own checks (checks-security.ts): what is enforced and what is an error.
    if (KINDS[r.kind].support !== 'recognised' || r.kind === 'AuthorizationPolicy' || r.kind === 'PeerAuthentication') continue;
    f.report('info', 'TG_KIND_NOT_ENFORCED', r, ['kind'], `${r.ref.kind} is validated but not enforced by Tollgate yet`, 'see docs/config.md for what each kind does today');
  }
};

export const explicitProxyAnnotations: Check = (f) => {
  for (const g of f.model.gateways) {
    const spec = explicitProxyFromGateway(g);
    const mode = outboundModeOf(g);
    if (typeof mode === 'object') {
      f.report('error', 'TG_OUTBOUND_MODE_ANNOTATION', g.resource, ['metadata', 'annotations', OUTBOUND_MODE_ANNOTATION], `${mode.error}; the gateway enforces the registry`, `write ${OUTBOUND_MODE_ANNOTATION}: report (pass and log) or enforce`);
    } else if (mode === 'report') {
      f.report(spec === undefined ? 'warning' : 'info', 'TG_OUTBOUND_MODE_REPORT', g.resource, ['metadata', 'annotations', OUTBOUND_MODE_ANNOTATION],
        spec === undefined
          ? `report-only mode applies to the explicit proxy, and this Gateway has none: its servers still refuse hosts outside the registry`
          : `report-only: the explicit proxy passes hosts outside the registry and logs them as would_deny_registry (not enforcing)`,
        spec === undefined ? `add ${EXPLICIT_PROXY_ANNOTATION}: "3128"` : 'collect with tollgate suggest, then remove the annotation to enforce');
    }
    if (spec === undefined) continue;
    if ('error' in spec) {
      f.report('error', 'TG_EXPLICIT_PROXY_ANNOTATION', g.resource, ['metadata', 'annotations'], spec.error, `write e.g. ${EXPLICIT_PROXY_ANNOTATION}: "3128"`);
    } else {
      f.report('info', 'TG_EXPLICIT_PROXY', g.resource, ['metadata', 'annotations'], `gateway proxies selected by this Gateway also serve an explicit proxy (CONNECT / absolute-form) on ${spec.address}:${spec.port}, CONNECT to ports ${spec.connectPorts.join(', ')} of registry hosts only`, 'clients use HTTPS_PROXY=http://<gateway>:' + spec.port);
    }
  }
};

/** `tollgate.io/local-rate-limit` on VirtualServices (config/rate-limit.ts). */
export const localRateLimitAnnotations: Check = (f) => {
  for (const vs of f.model.virtualServices) {
    const v = vs.resource.annotations[LOCAL_RATE_LIMIT_ANNOTATION];
    if (v === undefined) continue;
    const spec = parseLocalRateLimit(v);
    if ('error' in spec) {
      f.report('error', 'TG_RATE_LIMIT_ANNOTATION', vs.resource, ['metadata', 'annotations', LOCAL_RATE_LIMIT_ANNOTATION], `${spec.error}; the VirtualService's routes are NOT rate limited`, `write e.g. ${LOCAL_RATE_LIMIT_ANNOTATION}: "100/s" or "100/s burst=200"`);
    } else if ((vs.resource.spec.http ?? []).length === 0) {
      f.report('warning', 'TG_RATE_LIMIT_NO_HTTP', vs.resource, ['metadata', 'annotations', LOCAL_RATE_LIMIT_ANNOTATION], `${LOCAL_RATE_LIMIT_ANNOTATION} applies to http routes only; this VirtualService has none (tls/tcp routes are not limited)`, 'remove the annotation, or move it to the VirtualService with the http routes');
    }
  }
};
