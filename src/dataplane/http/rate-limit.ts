/**
 * The token buckets of local rate limiting (filters/local-rate-limit.ts; VirtualService annotation
 * `tollgate.io/local-rate-limit`, parsed by config/rate-limit.ts into the route's
 * typedPerFilterConfig). One token bucket per route name, owned by the engine — outside the snapshot, so a reload that keeps a route's limit keeps its bucket (a
 * changed limit starts a full bucket). Per process: with `--workers N` each worker has its own
 * buckets (as Envoy's local rate limit is per Envoy).
 *
 * The bucket refills continuously (tokensPerFill / fillIntervalMs per ms, computed at the check;
 * Envoy adds tokens in steps at each fill interval): O(1) per request, one Map lookup, no timer.
 * Over the limit -> 429, flag RL, reason rate_limited, with Envoy's draft-03 headers
 * x-ratelimit-limit (bucket size), x-ratelimit-remaining (0), x-ratelimit-reset (seconds until a
 * token is back) and retry-after (same).
 */
import type { LocalRateLimit } from '../../snapshot/types.js';

interface Bucket {
  limit: LocalRateLimit;
  tokens: number;
  last: number;
}

export class LocalRateLimiter {
  private readonly buckets = new Map<string, Bucket>();

  constructor(private readonly now: () => number = performance.now.bind(performance)) {}

  /** Takes a token for `routeName`. Returns -1 when allowed, else the ms until the next token. */
  take(routeName: string, limit: LocalRateLimit): number {
    const now = this.now();
    let b = this.buckets.get(routeName);
    if (b === undefined || !sameLimit(b.limit, limit)) {
      b = { limit, tokens: limit.maxTokens, last: now };
      this.buckets.set(routeName, b);
    } else {
      b.limit = limit; // a new snapshot's (equal) object
      const elapsed = now - b.last;
      if (elapsed > 0) {
        const t = b.tokens + (elapsed * limit.tokensPerFill) / limit.fillIntervalMs;
        b.tokens = t > limit.maxTokens ? limit.maxTokens : t;
        b.last = now;
      }
    }
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return -1;
    }
    return ((1 - b.tokens) * limit.fillIntervalMs) / limit.tokensPerFill;
  }

  /** Buckets kept (admin / tests). */
  get size(): number {
    return this.buckets.size;
  }
}

function sameLimit(a: LocalRateLimit, b: LocalRateLimit): boolean {
  return a === b || (a.tokensPerFill === b.tokensPerFill && a.fillIntervalMs === b.fillIntervalMs && a.maxTokens === b.maxTokens);
}
