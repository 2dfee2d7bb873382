/**
 * AuthorizationPolicy on HTTP (Envoy's envoy.filters.http.rbac): the policies that select this
 * proxy, evaluated per request with dataplane/authz (the evaluator the TCP proxy and `trace` use).
 * A denial is a local reply — 403 `RBAC: access denied`, reason rbac_denied, the policy and rule in
 * the detail — and is counted; a dry-run policy that would deny is logged as rbac_dry_run_denied.
 *
 * The snapshot generator puts this filter first in a listener's chain, and only when policies select
 * the proxy (Istio places RBAC before fault injection and the router): a denial skips faults, rate
 * limits and mirrors, and a proxy without policies does not run it at all. It acts on every route,
 * and on requests no route matched (Istio authorizes inbound requests before routing).
 *
 * It reads the request as the router normalised it from the stream's own decision (path, host,
 * authority, headers), so it may run after a filter that pauses the request (a fault delay), even
 * with other streams of the connection routed meanwhile.
 */
import type { AuthzPolicy } from '../../../snapshot/types.js';
import { authorizeHttp } from '../../authz/apply.js';
import { CONTINUE, STOP, type HttpFilterFactory } from '../filter.js';

export const RBAC_FILTER = 'rbac';

/** The filter's config: the AuthorizationPolicies that select this proxy, in evaluation order. */
export interface RbacConfig {
  readonly policies: readonly AuthzPolicy[];
}

const ACTIONS = ['ALLOW', 'DENY', 'AUDIT', 'CUSTOM'];

/** Validates the config (it arrives as snapshot JSON). */
function toRbacConfig(raw: unknown): RbacConfig {
  const policies = (raw as { policies?: unknown } | null | undefined)?.policies;
  if (!Array.isArray(policies)) throw new Error(`want {policies: [...]}, got ${JSON.stringify(raw)}`);
  for (const p of policies as unknown[]) {
    const o = p as Partial<Record<keyof AuthzPolicy, unknown>> | null;
    if (o === null || typeof o !== 'object' || typeof o.name !== 'string' || typeof o.namespace !== 'string' || !ACTIONS.includes(o.action as string) || typeof o.dryRun !== 'boolean' || (o.rules !== undefined && !Array.isArray(o.rules))) {
      throw new Error(`invalid policy ${JSON.stringify(p)}: want {name, namespace, action: ALLOW|DENY|AUDIT|CUSTOM, dryRun, rules?}`);
    }
  }
  return { policies: policies as AuthzPolicy[] };
}

export const rbacFilter: HttpFilterFactory<RbacConfig, RbacConfig> = {
  name: RBAC_FILTER,
  compile: toRbacConfig,
  forRoute: (config) => config,
  create: () => ({
    onRequestHeaders(s, config) {
      const conn = s.downstream;
      const verdict = authorizeHttp(config.policies, conn.authz, s.decision);
      if (verdict === undefined) return CONTINUE;
      conn.engine.services.metrics.authorized(verdict);
      if (verdict.allowed) return CONTINUE;
      const d = s.decision;
      s.sendLocalReply(d.status, d.flag, d.reason, d.detail, undefined, d.body);
      return STOP;
    },
  }),
  explain: ({ policies }) => `${policies.map((p) => `${p.action}${p.dryRun ? ' (dry-run)' : ''} ${p.namespace}/${p.name}`).join(', ')}; CUSTOM, then DENY, then ALLOW (denied: 403 rbac_denied)`,
};
