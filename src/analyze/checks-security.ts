/**
 * AuthorizationPolicy, PeerAuthentication and ISTIO_MUTUAL. Secure by default: whatever a policy
 * asks that Tollgate cannot enforce yet (anything that needs a peer identity from mTLS, JWTs or an
 * external authorizer) is an error, so a user never reads exit 0 as protection they do not have.
 */
import type { Resource } from '../config/decode.js';
import type { Path } from '../config/load.js';
import type { ClientTls, DestinationRuleSpec } from '../config/types.js';
import { parseCidr } from '../net/ip.js';
import { labelsMatch } from '../model/selectors.js';
import { authorizationPolicies, compilePolicy, MESH_ROOT_NAMESPACE, policyApplies } from '../snapshot/generate/authz.js';
import type { AuthzPolicy } from '../snapshot/types.js';
import { ruleNeedsHttp } from '../dataplane/authz/evaluate.js';
import type { Check, Finder } from './context.js';

const NO_MTLS = 'Tollgate does not run mTLS yet, so a peer has no authenticated identity';

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
        if (from[k] !== undefined) f.report('error', 'TG_AUTHZ_PRINCIPALS', r, at(k), `source.${k} is NOT enforced: ${NO_MTLS} (principals never match, notPrincipals always do), so ${consequence}`, 'match on ipBlocks/remoteIpBlocks until mesh mTLS exists');
      }
      for (const k of ['namespaces', 'notNamespaces'] as const) {
        if (from[k] !== undefined) f.report('error', 'TG_AUTHZ_NAMESPACES', r, at(k), `source.${k} is NOT enforced: the source namespace comes from the peer's mTLS certificate and ${NO_MTLS} (namespaces never match, notNamespaces always do), so ${consequence}`, 'match on the namespace\'s pod CIDR with ipBlocks until mesh mTLS exists');
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
  if (key === 'source.principal') {
    f.report('error', 'TG_AUTHZ_PRINCIPALS', r, [...at, 'key'], `condition source.principal is NOT enforced: ${NO_MTLS}, so ${consequence}`, 'use source.ip / remote.ip until mesh mTLS exists');
  } else if (key === 'source.namespace') {
    f.report('error', 'TG_AUTHZ_NAMESPACES', r, [...at, 'key'], `condition source.namespace is NOT enforced: ${NO_MTLS}, so ${consequence}`, 'use source.ip with the namespace\'s pod CIDR until mesh mTLS exists');
  } else if (key.startsWith('request.auth.')) {
    f.report('error', 'TG_AUTHZ_REQUEST_PRINCIPALS', r, [...at, 'key'], `condition ${key} is NOT enforced: Tollgate does not validate JWTs, so ${consequence}`, 'validate tokens in the application or in front of Tollgate');
  } else if (!SUPPORTED_KEYS.has(key) && !/^request\.headers\[.+\]$/.test(key)) {
    f.report('error', 'TG_AUTHZ_CONDITION_KEY', r, [...at, 'key'], `condition key ${key} is not supported: it matches nothing, so ${consequence}`, `use one of request.headers[<name>], ${[...SUPPORTED_KEYS].join(', ')}`);
  }
}

const SUPPORTED_KEYS: ReadonlySet<string> = new Set(['source.ip', 'remote.ip', 'destination.ip', 'destination.port', 'connection.sni']);

export const peerAuthenticationChecks: Check = (f) => {
  for (const r of f.model.resources) {
    if (r.kind !== 'PeerAuthentication') continue;
    const spec = (r.spec ?? {}) as { mtls?: { mode?: string }; portLevelMtls?: Record<string, { mode?: string }> };
    const strict: Path[] = [];
    if (spec.mtls?.mode === 'STRICT') strict.push(['spec', 'mtls', 'mode']);
    for (const [port, v] of Object.entries(spec.portLevelMtls ?? {})) if (v.mode === 'STRICT') strict.push(['spec', 'portLevelMtls', port, 'mode']);
    for (const at of strict) {
      f.report('error', 'TG_PEERAUTHN_STRICT', r, at, 'mTLS mode STRICT is NOT enforced: Tollgate does not run mTLS yet, so plaintext connections are accepted', 'restrict callers with an AuthorizationPolicy on ipBlocks meanwhile');
    }
    if (strict.length === 0) {
      // DISABLE and PERMISSIVE promise no protection: accepting plaintext is what Tollgate does.
      f.report('info', 'TG_PEERAUTHN_PLAINTEXT', r, ['spec'], 'PeerAuthentication without STRICT: connections are plaintext, which is what Tollgate serves today', 'nothing to do');
    }
  }
};

export const istioMutualChecks: Check = (f) => {
  for (const dr of f.model.destinationRules) {
    const spec: DestinationRuleSpec = dr.spec;
    const found: Path[] = [];
    const check = (tls: ClientTls | undefined, at: Path): void => {
      if (tls?.mode === 'ISTIO_MUTUAL') found.push([...at, 'tls', 'mode']);
    };
    check(spec.trafficPolicy?.tls, ['spec', 'trafficPolicy']);
    (spec.trafficPolicy?.portLevelSettings ?? []).forEach((p, i) => check(p.tls, ['spec', 'trafficPolicy', 'portLevelSettings', i]));
    (spec.subsets ?? []).forEach((s, i) => check(s.trafficPolicy?.tls, ['spec', 'subsets', i, 'trafficPolicy']));
    for (const at of found) {
      f.report('error', 'TG_DR_ISTIO_MUTUAL', dr.resource, at, 'tls.mode ISTIO_MUTUAL needs mesh workload certificates, which Tollgate does not issue yet: the connection is plain MUTUAL TLS with whatever certificate files the rule names, and the peer\'s identity is not verified', 'use MUTUAL with clientCertificate/privateKey/caCertificates (or credentialName) and subjectAltNames');
    }
  }
};
