/**
 * The retry state of one request across its upstream attempts: the route's compiled policy, the
 * tries made, the endpoints to avoid next, and the request body kept so it can be sent again
 * (retry.ts has the policy semantics). A request is retried only when it can be replayed: no body
 * consumed yet, or a complete body that was kept (<= maxReplayBodyBytes).
 */
import type { CompiledRetry } from '../retry.js';

export class RetryState {
  /** Attempts started, including the first. */
  tries = 0;
  /** A reused pooled connection the server had closed was retried once (not counted in tries). */
  staleRetried = false;
  /** Endpoints that failed this request: the next pick prefers another. */
  exclude: string[] | undefined = undefined;
  /** Body kept for a replay; null for a bodyless request. */
  readonly replay: Buffer[] | null;
  private replayBytes = 0;
  private replayable = true;
  /** Body bytes written on the current attempt. */
  bodyBytesSent = 0;

  constructor(
    readonly policy: CompiledRetry,
    bodyless: boolean,
    private readonly maxReplayBytes: number,
  ) {
    this.replay = bodyless ? null : [];
  }

  /** Keeps a body chunk for a replay while the body fits. */
  keep(chunk: Buffer): void {
    const r = this.replay;
    if (r === null || !this.replayable) return;
    if (this.replayBytes + chunk.length <= this.maxReplayBytes) {
      r.push(chunk);
      this.replayBytes += chunk.length;
    } else {
      this.replayable = false;
      r.length = 0;
    }
  }

  /** Whether the request can be sent again: nothing of the body consumed yet, or all of it kept. */
  canReplay(bytesReceived: number, requestComplete: boolean): boolean {
    if (this.bodyBytesSent === 0 && bytesReceived === 0) return true;
    return this.replayable && requestComplete;
  }

  /** Another attempt is within the policy's tries. */
  get triesLeft(): boolean {
    return this.tries < this.policy.maxTries;
  }

  avoid(host: string | null | undefined): void {
    if (host !== null && host !== undefined) (this.exclude ??= []).push(host);
  }
}
