/**
 * One error type for the whole project. Every error carries a stable code (`TG_*`, listed in
 * docs/errors.md), where it came from, and whether retrying could help. The data plane never
 * throws across an event boundary: it converts these into responses and access-log reasons.
 */
export type ErrorSource = 'downstream' | 'upstream' | 'internal' | 'config';

export class TollgateError extends Error {
  readonly code: string;
  readonly source: ErrorSource;
  readonly retryable: boolean;

  constructor(code: string, message: string, opts: { source?: ErrorSource; retryable?: boolean; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'TollgateError';
    this.code = code;
    this.source = opts.source ?? 'internal';
    this.retryable = opts.retryable ?? false;
  }
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
