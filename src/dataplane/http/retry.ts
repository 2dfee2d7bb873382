/**
 * Route retry policy, compiled once per route when the snapshot is applied (filters/router.ts).
 *
 * retryOn (Envoy x-envoy-retry-on semantics, HTTP/1.1 subset):
 *   connect-failure          choose/dial failed with a retryable failure (refused, timeout, DNS)
 *   reset                    the upstream connection reset/closed before the response head
 *   5xx                      any 5xx response, plus connect failures and resets
 *   gateway-error            502, 503, 504 responses, plus connect failures
 *   retriable-status-codes   503 (the code Istio configures by default)
 *   refused-stream           HTTP/2 REFUSED_STREAM; for HTTP/1.1: a reused keep-alive connection
 *                            closed before any response byte (the request was never processed)
 *   cancelled, deadline-exceeded, internal, resource-exhausted, unavailable
 *                            gRPC requests whose response head carries that grpc-status (a
 *                            trailers-only response: the call failed before any message)
 * A request is retried only when it can be replayed: no body, or a body that is complete and
 * was kept in memory (<= maxReplayBodyBytes). Another endpoint is preferred (`exclude`).
 */
import { GRPC_RETRY_ON } from '../../shared/grpc-status.js';
import type { RetryPolicy } from '../../snapshot/types.js';

export interface CompiledRetry {
  /** Total tries including the first. */
  readonly maxTries: number;
  readonly connectFailure: boolean;
  readonly reset: boolean;
  readonly refusedStream: boolean;
  readonly perTryTimeoutMs: number;
  /** Whether a response status is retried. */
  statusRetried(status: number): boolean;
  /** gRPC statuses retried (from the gRPC conditions), null when none is. */
  readonly grpcRetried: ReadonlySet<number> | null;
}

const NONE: CompiledRetry = { maxTries: 1, connectFailure: false, reset: false, refusedStream: false, perTryTimeoutMs: 0, statusRetried: () => false, grpcRetried: null };

export function compileRetry(p: RetryPolicy | undefined): CompiledRetry {
  if (p === undefined || p.attempts <= 0) return NONE;
  const on = new Set(p.retryOn.map((s) => s.trim().toLowerCase()));
  const x5xx = on.has('5xx');
  const gw = on.has('gateway-error');
  const r503 = on.has('retriable-status-codes');
  const grpc = new Set<number>();
  for (const c of on) if (GRPC_RETRY_ON[c] !== undefined) grpc.add(GRPC_RETRY_ON[c]);
  return {
    grpcRetried: grpc.size > 0 ? grpc : null,
    maxTries: 1 + p.attempts,
    connectFailure: on.has('connect-failure') || x5xx || gw,
    reset: on.has('reset') || x5xx,
    refusedStream: on.has('refused-stream') || on.has('reset') || x5xx,
    perTryTimeoutMs: p.perTryTimeoutMs ?? 0,
    statusRetried: (status: number): boolean => (x5xx && status >= 500) || (gw && (status === 502 || status === 503 || status === 504)) || (r503 && status === 503),
  };
}

const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);

export function isIdempotent(method: string): boolean {
  return IDEMPOTENT.has(method);
}
