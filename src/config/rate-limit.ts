/**
 * `tollgate.io/local-rate-limit` on a VirtualService: a local (per gateway process) token bucket
 * for every http route of that VirtualService (docs/traffic-management.md "Local rate limiting").
 *
 *   "100/s"              100 requests per second, burst 100
 *   "100/s burst=200"    refills 100 tokens per second, holds at most 200
 *   "6000/m", "10/10s", "1000/h"
 *
 * Parsed here once (the config edge): the snapshot generator puts the result on every Route, and
 * analyze reports a bad value with its file:line (TG_RATE_LIMIT_ANNOTATION).
 */
export const LOCAL_RATE_LIMIT_ANNOTATION = 'tollgate.io/local-rate-limit';

/** Envoy's local_ratelimit token_bucket, with the interval in ms. */
export interface LocalRateLimitSpec {
  /** Tokens added per fill interval (the sustained rate). */
  readonly tokensPerFill: number;
  readonly fillIntervalMs: number;
  /** Bucket size (burst); also the initial content. */
  readonly maxTokens: number;
}

const UNIT_MS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
const SYNTAX = /^(\d{1,9})\s*\/\s*(\d{1,6})?\s*(ms|s|m|h)(?:\s+burst\s*=\s*(\d{1,9}))?$/;

/** The limit an annotation value asks for, or an error naming the bad value. */
export function parseLocalRateLimit(value: string): LocalRateLimitSpec | { error: string } {
  const m = SYNTAX.exec(value.trim());
  if (m === null) return { error: `${LOCAL_RATE_LIMIT_ANNOTATION}: "${value}" is not N/UNIT [burst=M] (UNIT ms, s, m or h, optionally with a count: 10s)` };
  const tokens = Number(m[1]);
  const per = m[2] === undefined ? 1 : Number(m[2]);
  const fillIntervalMs = per * UNIT_MS[m[3]!]!;
  const maxTokens = m[4] === undefined ? tokens : Number(m[4]);
  if (tokens < 1) return { error: `${LOCAL_RATE_LIMIT_ANNOTATION}: "${value}": the rate must be at least 1 request per interval (to block a route, use a directResponse)` };
  if (fillIntervalMs < 50) return { error: `${LOCAL_RATE_LIMIT_ANNOTATION}: "${value}": the interval must be at least 50ms (Envoy's minimum fill interval)` };
  if (maxTokens < tokens) return { error: `${LOCAL_RATE_LIMIT_ANNOTATION}: "${value}": burst=${maxTokens} is below the rate ${tokens}; the burst is the bucket size and must be >= the rate` };
  return { tokensPerFill: tokens, fillIntervalMs, maxTokens };
}

/** The limit of a resource's annotations: undefined when absent or invalid (analyze reports the latter). */
export function localRateLimitOf(annotations: Readonly<Record<string, string>>): LocalRateLimitSpec | undefined {
  const v = annotations[LOCAL_RATE_LIMIT_ANNOTATION];
  if (v === undefined) return undefined;
  const r = parseLocalRateLimit(v);
  return 'error' in r ? undefined : r;
}
