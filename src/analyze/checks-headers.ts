/**
 * VirtualService header matches on fields the proxy removes before routing
 * (src/dataplane/http/header-hygiene.ts): a name with `_` (dropped by default) and, on a
 * gateway, a client's `x-envoy-*`. Such a match never sees the field: `headers` never matches,
 * `withoutHeaders` always does — likely not what the author meant.
 */
import type { Check } from './context.js';

export const droppedHeaderMatches: Check = (f) => {
  for (const vs of f.model.virtualServices) {
    const onGateway = vs.gateways.some((g) => g !== 'mesh');
    (vs.spec.http ?? []).forEach((r, i) =>
      (r.match ?? []).forEach((m, mi) => {
        for (const field of ['headers', 'withoutHeaders'] as const) {
          for (const name of Object.keys(m[field] ?? {})) {
            const why = name.includes('_')
              ? 'names with "_" are dropped before routing (--headers-with-underscores drop, the default)'
              : onGateway && name.toLowerCase().startsWith('x-envoy-')
                ? 'a client\'s x-envoy-* fields are dropped at a gateway before routing'
                : undefined;
            if (why === undefined) continue;
            const effect = field === 'headers' ? 'this match never applies' : 'this condition always holds';
            f.report('warning', 'TG_HEADER_MATCH_DROPPED', vs.resource, ['spec', 'http', i, 'match', mi, field, name], `${field}.${name}: ${why}, so ${effect}`, 'match on a name with "-" (the client must send that), or run the proxy with --headers-with-underscores allow');
          }
        }
      }),
    );
  }
};
