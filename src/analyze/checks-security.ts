/**
 * AuthorizationPolicy and PeerAuthentication. Secure by default: whatever a policy
 * asks that Tollgate cannot enforce (JWTs, an external authorizer, STRICT on a workload without a
 * sidecar) is an error, so a user never reads exit 0 as protection they do not have. Peer identity
 * (principals, namespaces) comes from mesh mTLS and is enforced.
 */
import type { Resource } from '../config/decode.js';
import type { Path } from '../config/load.js';
import { parseCidr } from '../net/ip.js';
import { labelsMatch } from '../model/selectors.js';
import { authorizationPolicies, compilePolicy, MESH_ROOT_NAMESPACE, policyApplies } from '../snapshot/generate/authz.js';
import { effectivePeerAuthn, peerAuthentications } from '../snapshot/generate/peer-authn.js';
import { runsSidecar } from '../model/workloads.js';
import type { AuthzPolicy } from '../snapshot/types.js';
import { ruleNeedsHttp } from '../dataplane/authz/evaluate.js';
import type { Check, Finder } from './context.js';

/** Istio's principal form: `<trust-domain>/ns/<namespace>/sa/<service-account>`, or a `*` prefix/suffix pattern. */
function principalProblem(v: string): string | undefined {
  if (v.startsWith('spiffe://')) return 'principals are written without the spiffe:// scheme (cluster.local/ns/NS/sa/SA); with it they never match';
  if (v === '*' || v.startsWith('*') || v.endsWith('*')) return undefined;
  return /^[^/]+\/ns\/[^/]+\/sa\/[^/]+$/.test(v) ? undefined : 'not a principal (<trust-domain>/ns/<namespace>/sa/<service-account>); it matches no mesh peer';
}

export const authorizationPolicyChecks: Check = (f) => {
  for (const r of authorizationPolicies(f.model)) {
    const p = compilePolicy(r);
    const spec = r.spec ?? {};
    if (spec.targetRef !== undefined || spec.targetRefs !== undefined) {
      f.report('error', 'TG_AUTHZ_TARGET_REF', r, ['spec', spec.targetRef !== undefined ? 'targetRef' : 'targetRefs'], 'targetRef/targetRefs attach a policy to Gateway API objects, which Tollgate does not serve: this policy is NOT enforced anywhere', 'use spec.selector with the workload labels of the gateway or sidecar');
    }
    if (p.action === 'CUSTOM') {
      f.report('error', 'TG_AUTHZ_CUSTOM', r, ['spec', 'action'], 'action CUSTOM (an external authorizer) is not supported: requests matching its rules are denied (fail closed), never sent to the provider', 'use ALLOW/DENY rules, or run the external authorizer in front of Tollgate');
    }
    if (p.action === 'ALLOW' && (p.rules === undefined || p.rules.length === 0)) {
      f.report('warning', 'TG_AUTHZ_ALLOW_NOTHING', r, p.rules === undefined ? ['metadata', 'name'] : ['spec', 'rules'], 'ALLOW policy without rules allows nothing: every request to the workloads it selects is denied (403 RBAC: access denied)', 'if a deny-all is meant, keep it; otherwise add rules (rules: [{}] allows everything)');
    }
    const selector = spec.selector?.matchLabels;
    // A selector equal to a Gateway's picks that gateway's proxy (TG_GATEWAY_NO_WORKLOAD already speaks for a missing Deployment).
    const selectsGateway = selector !== undefined && f.model.gateways.some((g) => Object.keys(g.selector).length > 0 && labelsMatch(selector, g.selector));
    if (selector !== undefined && !selectsGateway && spec.targetRef === undefined && spec.targetRefs === undefined && !f.model.workloads.some((w) => policyApplies(r, w.namespace, w.labels))) {
      const where = r.namespace === MESH_ROOT_NAMESPACE ? 'any namespace' : `namespace ${r.namespace}`;
      const sel = Object.entries(selector).map(([k, v]) => `${k}=${v}`).join(',');
      f.report('warning', 'TG_AUTHZ_SELECTS_NOTHING', r, ['spec', 'selector'], `selector ${sel} matches no Pod, Deployment or Gateway of ${where} in the config: only a proxy started with --labels ${sel} enforces this policy`, 'fix the labels, or include the workload (Deployment, Pod) in the config');
    }
    checkRules(f, r, p);
  }
};

function checkRules(f: Finder, r: Resource, p: AuthzPolicy): void {
  const rules = p.rules ?? [];
  const consequence = p.action === 'ALLOW' ? 'the rule never allows' : `the ${p.action} rule is weaker than written`;
  rules.forEach((rule, i) => {
    if (p.action !== 'ALLOW' && ruleNeedsHttp(rule)) {
      f.report('info', 'TG_AUTHZ_HTTP_FIELDS_ON_TCP', r, ['spec', 'rules', i], `on TCP and TLS-passthrough listeners this ${p.action} rule's HTTP-only fields (hosts, methods, paths, request.* conditions) are ignored, as in Istio: it matches every connection its other fields match`, 'add operation.ports with the HTTP ports to keep it off TCP listeners');
    }
    (rule.from ?? []).forEach((from, j) => {
      const at = (k: string): Path => ['spec', 'rules', i, 'from', j, 'source', k];
      for (const k of ['principals', 'notPrincipals'] as const) {
        (from[k] ?? []).forEach((v, n) => {
          const why = principalProblem(v);
          if (why !== undefined) f.report('error', 'TG_AUTHZ_PRINCIPAL_FORMAT', r, [...at(k), n], `source.${k} "${v}": ${why}, so ${consequence}`, 'write cluster.local/ns/<namespace>/sa/<service-account>');
        });
      }
      for (const k of ['requestPrincipals', 'notRequestPrincipals'] as const) {
        if (from[k] !== undefined) f.report('error', 'TG_AUTHZ_REQUEST_PRINCIPALS', r, at(k), `source.${k} is NOT enforced: Tollgate does not validate JWTs (RequestAuthentication), so no request has a request principal and ${consequence}`, 'validate tokens in the application or in front of Tollgate');
      }
      for (const k of ['ipBlocks', 'notIpBlocks', 'remoteIpBlocks', 'notRemoteIpBlocks'] as const) {
        (from[k] ?? []).forEach((b, n) => {
          if (parseCidr(b) === undefined) f.report('error', 'TG_AUTHZ_BAD_VALUE', r, [...at(k), n], `source.${k} "${b}" is not an IP address or CIDR; it matches nothing`, 'write e.g. 10.0.0.0/8 or 192.0.2.7');
        });
      }
    });
    (rule.to ?? []).forEach((to, j) => {
      const at = (k: string): Path => ['spec', 'rules', i, 'to', j, 'operation', k];
      for (const k of ['ports', 'notPorts'] as const) {
        (to[k] ?? []).forEach((v, n) => {
          if (!/^\d{1,5}$/.test(v) || Number(v) < 1 || Number(v) > 65535) f.report('error', 'TG_AUTHZ_BAD_VALUE', r, [...at(k), n], `operation.${k} "${v}" is not a port number; it matches nothing`, 'write the destination port as a number, e.g. "8080"');
        });
      }
      for (const k of ['paths', 'notPaths'] as const) {
        (to[k] ?? []).forEach((v, n) => {
          if (v.includes('{')) f.report('error', 'TG_AUTHZ_BAD_VALUE', r, [...at(k), n], `operation.${k} "${v}" uses a path template ({*} / {**}), which Tollgate does not support; it is compared literally`, 'use an exact path, a prefix (/api/*) or a suffix (*.js)');
        });
      }
    });
    (rule.when ?? []).forEach((c, j) => checkCondition(f, r, ['spec', 'rules', i, 'when', j], c.key, c.values === undefined && c.notValues === undefined, consequence));
  });
}

function checkCondition(f: Finder, r: Resource, at: Path, key: string, noValues: boolean, consequence: string): void {
  if (noValues) f.report('error', 'TG_AUTHZ_BAD_VALUE', r, at, `condition ${key} has neither values nor notValues (Istio rejects it)`, 'add values or notValues');
  if (key.startsWith('request.auth.')) {
    f.report('error', 'TG_AUTHZ_REQUEST_PRINCIPALS', r, [...at, 'key'], `condition ${key} is NOT enforced: Tollgate does not validate JWTs, so ${consequence}`, 'validate tokens in the application or in front of Tollgate');
  } else if (!SUPPORTED_KEYS.has(key) && !/^request\.headers\[.+\]$/.test(key)) {
    f.report('error', 'TG_AUTHZ_CONDITION_KEY', r, [...at, 'key'], `condition key ${key} is not supported: it matches nothing, so ${consequence}`, `use one of request.headers[<name>], ${[...SUPPORTED_KEYS].join(', ')}`);
  }
}

const SUPPORTED_KEYS: ReadonlySet<string> = new Set(['source.ip', 'remote.ip', 'destination.ip', 'destination.port', 'connection.sni', 'source.principal', 'source.namespace']);

/**
 * PeerAuthentication is enforced by the sidecar's inbound listener: STRICT refuses plaintext.
 * What cannot hold: STRICT on a workload that runs no sidecar (nothing terminates its traffic), and
 * a more specific DISABLE that silently reopens plaintext under a STRICT namespace or mesh policy.
 */
export const peerAuthenticationChecks: Check = (f) => {
  const namespaceLabels = new Map(f.model.resources.filter((r) => r.kind === 'Namespace').map((r) => [r.name, r.labels]));
  for (const r of peerAuthentications(f.model)) {
    const spec = r.spec ?? {};
    const selector = spec.selector?.matchLabels;
    const scoped = f.model.workloads.filter((w) => (r.namespace === MESH_ROOT_NAMESPACE && selector === undefined) || (w.namespace === r.namespace && (selector === undefined || labelsMatch(selector, w.labels))));
    const strict = spec.mtls?.mode === 'STRICT' || Object.values(spec.portLevelMtls ?? {}).some((v) => v.mode === 'STRICT');
    if (strict) {
      for (const w of scoped) {
        if (!runsSidecar(w, namespaceLabels.get(w.namespace))) f.report('error', 'TG_PEERAUTHN_NO_SIDECAR', r, ['spec'], `mTLS STRICT is NOT enforced for ${w.kind} ${w.namespace}/${w.name}: it runs no sidecar, so it accepts plaintext from anyone`, 'inject the sidecar (namespace label istio-injection=enabled or tollgate inject), or do not rely on STRICT for it');
      }
    }
    if (selector !== undefined && scoped.length === 0) {
      f.report('warning', 'TG_PEERAUTHN_SELECTS_NOTHING', r, ['spec', 'selector'], `selector matches no Pod or Deployment of namespace ${r.namespace} in the config`, 'fix the labels, or include the workload in the config');
    }
    const disabled: Path[] = [];
    if (spec.mtls?.mode === 'DISABLE') disabled.push(['spec', 'mtls', 'mode']);
    for (const [port, v] of Object.entries(spec.portLevelMtls ?? {})) if (v.mode === 'DISABLE') disabled.push(['spec', 'portLevelMtls', port, 'mode']);
    for (const at of disabled) {
      const parent = selector !== undefined ? [...scoped.map((w) => effectivePeerAuthn(f.model, w.namespace, {}).mode)] : r.namespace !== MESH_ROOT_NAMESPACE ? [effectivePeerAuthn(f.model, MESH_ROOT_NAMESPACE, {}).mode] : [];
      const overridden = parent.includes('STRICT');
      f.report(overridden ? 'warning' : 'info', overridden ? 'TG_PEERAUTHN_DISABLE_OVERRIDES_STRICT' : 'TG_PEERAUTHN_PLAINTEXT', r, at, overridden ? 'DISABLE here overrides a STRICT namespace or mesh policy: this traffic is plaintext and unauthenticated' : 'mTLS DISABLE: this traffic is plaintext and callers have no identity', overridden ? 'keep it only for callers outside the mesh (an ingress-facing port), and restrict them with an AuthorizationPolicy on ipBlocks' : 'nothing to do if plaintext is meant');
    }
  }
};
