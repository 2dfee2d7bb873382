/**
 * Local rate limit (VirtualService annotation `tollgate.io/local-rate-limit`, Envoy's
 * envoy.filters.http.local_ratelimit): the route's `typedPerFilterConfig.local_ratelimit` (or its
 * virtual host's) is a token bucket; over it -> 429, flag RL, reason rate_limited, with Envoy's
 * x-ratelimit-* and retry-after headers. The buckets (rate-limit.ts) belong to the engine, keyed by
 * route name, so a reload that keeps a route's limit keeps its bucket.
 */
import type { LocalRateLimit, Route, VirtualHost } from '../../../snapshot/types.js';
import { CONTINUE, STOP, perFilterConfig, type HttpFilterFactory } from '../filter.js';
import { LocalRateLimiter } from '../rate-limit.js';

export const LOCAL_RATE_LIMIT = 'local_ratelimit';

interface RouteLimit {
  readonly routeName: string;
  readonly limit: LocalRateLimit;
}

/** Validates a per-route bucket (it arrives as snapshot JSON). */
export function toLocalRateLimit(raw: unknown): LocalRateLimit {
  const o = raw as Partial<Record<keyof LocalRateLimit, unknown>> | null;
  const ok = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v) && v > 0;
  if (o === null || typeof o !== 'object' || !ok(o.tokensPerFill) || !ok(o.fillIntervalMs) || !ok(o.maxTokens)) {
    throw new Error(`${LOCAL_RATE_LIMIT}: want {tokensPerFill, fillIntervalMs, maxTokens} (positive numbers), got ${JSON.stringify(raw)}`);
  }
  return { tokensPerFill: o.tokensPerFill, fillIntervalMs: o.fillIntervalMs, maxTokens: o.maxTokens };
}

/** The bucket a route (or its virtual host) configures, if any (also what `trace` shows). */
export function routeRateLimit(route: Route, vhost: VirtualHost | undefined): LocalRateLimit | undefined {
  const raw = perFilterConfig(LOCAL_RATE_LIMIT, route, vhost);
  return raw === undefined ? undefined : toLocalRateLimit(raw);
}

export const localRateLimitFilter: HttpFilterFactory<undefined, RouteLimit, LocalRateLimiter> = {
  name: LOCAL_RATE_LIMIT,
  compile: () => undefined,
  forRoute: (_c, route, vhost) => {
    const limit = route === undefined ? undefined : routeRateLimit(route, vhost);
    return limit === undefined || route === undefined ? undefined : { routeName: route.name, limit };
  },
  shared: (now) => new LocalRateLimiter(now),
  create: (_c, { shared: limiter }) => ({
    onRequestHeaders(s, rl) {
      const waitMs = limiter.take(rl.routeName, rl.limit);
      if (waitMs < 0) return CONTINUE;
      const { limit } = rl;
      const reset = String(Math.max(1, Math.ceil(waitMs / 1000)));
      s.sendLocalReply(429, 'RL', 'rate_limited', `route ${rl.routeName}: local rate limit ${limit.tokensPerFill} per ${limit.fillIntervalMs} ms, burst ${limit.maxTokens}`, [
        'x-ratelimit-limit',
        String(limit.maxTokens),
        'x-ratelimit-remaining',
        '0',
        'x-ratelimit-reset',
        reset,
        'retry-after',
        reset,
      ]);
      return STOP;
    },
  }),
  explain: (rl) => `local rate limit ${rl.limit.tokensPerFill} per ${rl.limit.fillIntervalMs} ms, burst ${rl.limit.maxTokens} (over it: 429 RL rate_limited)`,
};
