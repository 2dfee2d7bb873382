/**
 * AuthorizationPolicies -> the per-proxy list the data plane evaluates. A policy applies to a
 * proxy as in Istio: in the root namespace (istio-system) without a selector, to every workload;
 * in the root namespace with a selector, to matching workloads of any namespace; elsewhere, to the
 * workloads of its own namespace (all of them, or those its selector matches). Policies using
 * `targetRef(s)` attach to Gateway API objects Tollgate does not serve: they select nothing here
 * (analyze reports them).
 */
import type { Resource } from '../../config/decode.js';
import { labelsMatch } from '../../model/selectors.js';
import type { Model } from '../../model/build.js';
import { DEFAULT_HTTP_FILTERS, type AuthzCondition, type AuthzOperation, type AuthzOperationField, type AuthzPolicy, type AuthzRule, type AuthzSource, type AuthzSourceField, type FilterChain, type HttpFilterConfig, type Listener, type ProxyIdentity } from '../types.js';
import { originOf } from './origin.js';

export const MESH_ROOT_NAMESPACE = 'istio-system';
export const DRY_RUN_ANNOTATIONS = ['istio.io/dry-run', 'tollgate.io/dry-run'] as const;

export interface AuthorizationPolicySpecShape {
  readonly selector?: { readonly matchLabels?: Readonly<Record<string, string>> };
  readonly targetRef?: unknown;
  readonly targetRefs?: readonly unknown[];
  readonly action?: 'ALLOW' | 'DENY' | 'AUDIT' | 'CUSTOM';
  readonly rules?: readonly unknown[];
}

export function authorizationPolicies(model: Model): Resource<AuthorizationPolicySpecShape>[] {
  return model.resources.filter((r) => r.kind === 'AuthorizationPolicy') as Resource<AuthorizationPolicySpecShape>[];
}

/** Whether policy `r` applies to a workload in `namespace` with `labels`. */
export function policyApplies(r: Resource<AuthorizationPolicySpecShape>, namespace: string, labels: Readonly<Record<string, string>>): boolean {
  const spec = r.spec ?? {};
  if (spec.targetRef !== undefined || spec.targetRefs !== undefined) return false;
  if (r.namespace !== MESH_ROOT_NAMESPACE && r.namespace !== namespace) return false;
  return spec.selector === undefined || labelsMatch(spec.selector.matchLabels ?? {}, labels);
}

export function isDryRun(r: Resource): boolean {
  return DRY_RUN_ANNOTATIONS.some((a) => r.annotations[a] === 'true');
}

export function authorizationFor(model: Model, proxy: ProxyIdentity): AuthzPolicy[] {
  return authorizationPolicies(model)
    .filter((r) => policyApplies(r, proxy.namespace, proxy.labels))
    .sort((a, b) => (a.namespace === b.namespace ? (a.name < b.name ? -1 : 1) : a.namespace < b.namespace ? -1 : 1))
    .map(compilePolicy);
}

export function compilePolicy(r: Resource<AuthorizationPolicySpecShape>): AuthzPolicy {
  const spec = r.spec ?? {};
  return {
    name: r.name,
    namespace: r.namespace,
    action: spec.action ?? 'ALLOW',
    dryRun: isDryRun(r),
    ...(spec.rules !== undefined ? { rules: spec.rules.map(compileRule) } : {}),
    origin: originOf(r),
  };
}

const SOURCE_FIELDS: readonly AuthzSourceField[] = ['principals', 'notPrincipals', 'requestPrincipals', 'notRequestPrincipals', 'namespaces', 'notNamespaces', 'ipBlocks', 'notIpBlocks', 'remoteIpBlocks', 'notRemoteIpBlocks'];
const OPERATION_FIELDS: readonly AuthzOperationField[] = ['hosts', 'notHosts', 'ports', 'notPorts', 'methods', 'notMethods', 'paths', 'notPaths'];

function compileRule(raw: unknown): AuthzRule {
  const r = record(raw);
  const from = list(r['from'])?.map((f) => pick<AuthzSourceField>(record(record(f)['source']), SOURCE_FIELDS) as AuthzSource);
  const to = list(r['to'])?.map((t) => pick<AuthzOperationField>(record(record(t)['operation']), OPERATION_FIELDS) as AuthzOperation);
  const when = list(r['when'])?.map((c): AuthzCondition => {
    const o = record(c);
    const values = strings(o['values']);
    const notValues = strings(o['notValues']);
    return { key: String(o['key'] ?? ''), ...(values ? { values } : {}), ...(notValues ? { notValues } : {}) };
  });
  return { ...(from ? { from } : {}), ...(to ? { to } : {}), ...(when ? { when } : {}) };
}

function pick<K extends string>(o: Record<string, unknown>, keys: readonly K[]): Partial<Record<K, readonly string[]>> {
  const out: Partial<Record<K, readonly string[]>> = {};
  for (const k of keys) {
    const v = strings(o[k]);
    if (v !== undefined) out[k] = v;
  }
  return out;
}

function record(v: unknown): Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
}
function list(v: unknown): unknown[] | undefined {
  return Array.isArray(v) ? v : undefined;
}
/** YAML may give ports as numbers: every value is compared as text, as Istio does. */
function strings(v: unknown): string[] | undefined {
  return Array.isArray(v) ? v.map((x) => String(x)) : undefined;
}

/**
 * Puts the rbac HTTP filter first in every HTTP chain of the proxy's listeners (Istio's order:
 * authorization before fault injection and routing). Without policies the chains stay as they
 * are, so a proxy no policy selects does not run the filter at all.
 */
export function withAuthorizationFilter(listeners: readonly Listener[], policies: readonly AuthzPolicy[]): Listener[] {
  if (policies.length === 0) return [...listeners];
  const rbac: HttpFilterConfig = { name: 'rbac', config: { policies } };
  const chain = (c: FilterChain): FilterChain => {
    const f = c.filter;
    if (f.type !== 'http' && f.type !== 'explicit_proxy') return c;
    return { ...c, filter: { ...f, httpFilters: [rbac, ...(f.httpFilters ?? DEFAULT_HTTP_FILTERS)] } };
  };
  return listeners.map((l) => ({ ...l, filterChains: l.filterChains.map(chain), ...(l.defaultFilterChain !== undefined ? { defaultFilterChain: chain(l.defaultFilterChain) } : {}) }));
}
