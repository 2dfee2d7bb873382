/**
 * Bidirectional splice of two connected sockets (TCP proxy, TLS passthrough, CONNECT tunnels).
 *
 * - Backpressure: a write that returns false pauses the source until the destination drains;
 *   memory per tunnel is bounded by the sockets' highWaterMarks.
 * - Half-close: FIN from one side ends the other side's write half (both sockets are
 *   allowHalfOpen); the tunnel is done when both sockets have closed.
 * - Reset: an error (ECONNRESET, ...) on one side resets the other (resetAndDestroy: RST, not FIN),
 *   so a client never mistakes an aborted upstream for a clean end of stream.
 * - Idle timeout: the downstream socket's timer, which both directions refresh (reads from the
 *   downstream and writes to it); on expiry both sockets are destroyed.
 * No promise or closure per chunk: the handlers are bound once per tunnel.
 */
import type { Socket } from 'node:net';

export type PipeOutcome = 'closed' | 'idle_timeout' | 'downstream_reset' | 'upstream_reset' | 'aborted';

export interface PipeResult {
  readonly outcome: PipeOutcome;
  /** Bytes read from the downstream and written upstream (access log bytes_received). */
  readonly bytesFromDownstream: number;
  /** Bytes read from the upstream and written downstream (access log bytes_sent). */
  readonly bytesFromUpstream: number;
  readonly detail?: string;
}

export interface PipeOptions {
  /** 0 = no idle timeout. */
  readonly idleTimeoutMs: number;
  readonly onEnd: (r: PipeResult) => void;
}

export class Tunnel {
  bytesFromDownstream = 0;
  bytesFromUpstream = 0;
  private outcome: PipeOutcome = 'closed';
  private detail: string | undefined;
  private closedDown = false;
  private closedUp = false;
  private finished = false;

  constructor(private readonly down: Socket, private readonly up: Socket, private readonly opts: PipeOptions) {
    down.on('data', this.onDownData);
    up.on('data', this.onUpData);
    down.on('drain', this.onDownDrain);
    up.on('drain', this.onUpDrain);
    down.on('end', this.onDownEnd);
    up.on('end', this.onUpEnd);
    down.on('error', this.onDownError);
    up.on('error', this.onUpError);
    down.on('close', this.onDownClose);
    up.on('close', this.onUpClose);
    if (opts.idleTimeoutMs > 0) {
      down.setTimeout(opts.idleTimeoutMs);
      down.on('timeout', this.onTimeout);
    }
    if (down.destroyed) this.onDownClose();
    if (up.destroyed) this.onUpClose();
    down.resume();
    up.resume();
  }

  /** Ends the tunnel now (drain timeout, shutdown). */
  abort(detail: string): void {
    if (this.finished) return;
    this.setOutcome('aborted', detail);
    this.down.destroy();
    this.up.destroy();
  }

  private setOutcome(o: PipeOutcome, detail?: string): void {
    if (this.outcome === 'closed') {
      this.outcome = o;
      this.detail = detail;
    }
  }

  private readonly onDownData = (chunk: Buffer): void => {
    this.bytesFromDownstream += chunk.length;
    if (!this.up.write(chunk)) this.down.pause();
  };

  private readonly onUpData = (chunk: Buffer): void => {
    this.bytesFromUpstream += chunk.length;
    if (!this.down.write(chunk)) this.up.pause();
  };

  private readonly onUpDrain = (): void => {
    this.down.resume();
  };

  private readonly onDownDrain = (): void => {
    this.up.resume();
  };

  private readonly onDownEnd = (): void => {
    if (!this.up.destroyed) this.up.end();
  };

  private readonly onUpEnd = (): void => {
    if (!this.down.destroyed) this.down.end();
  };

  private readonly onDownError = (err: NodeJS.ErrnoException): void => {
    this.setOutcome('downstream_reset', `downstream ${err.code ?? err.message}`);
    resetSocket(this.up);
  };

  private readonly onUpError = (err: NodeJS.ErrnoException): void => {
    this.setOutcome('upstream_reset', `upstream ${err.code ?? err.message}`);
    resetSocket(this.down);
  };

  private readonly onTimeout = (): void => {
    this.setOutcome('idle_timeout', `no data for ${this.opts.idleTimeoutMs} ms`);
    this.down.destroy();
    this.up.destroy();
  };

  private readonly onDownClose = (): void => {
    if (this.closedDown) return;
    this.closedDown = true;
    // The downstream is gone; whatever the upstream still sends has nowhere to go.
    if (!this.up.destroyed && !this.up.writableEnded) this.up.end();
    // A clean downstream close implies the upstream already ended (we only end the downstream
    // after the upstream's FIN); otherwise the downstream went away abruptly: drop the upstream.
    if (!this.up.destroyed && !this.up.readableEnded) this.up.destroy();
    this.maybeFinish();
  };

  private readonly onUpClose = (): void => {
    if (this.closedUp) return;
    this.closedUp = true;
    if (!this.down.destroyed && !this.down.writableEnded) this.down.end();
    if (!this.down.destroyed && !this.down.readableEnded) resetSocket(this.down);
    this.maybeFinish();
  };

  private maybeFinish(): void {
    if (this.finished || !this.closedDown || !this.closedUp) return;
    this.finished = true;
    this.down.setTimeout(0);
    this.opts.onEnd({
      outcome: this.outcome,
      bytesFromDownstream: this.bytesFromDownstream,
      bytesFromUpstream: this.bytesFromUpstream,
      ...(this.detail !== undefined ? { detail: this.detail } : {}),
    });
  }
}

/** Closes with RST when possible (propagates an abort), else destroys. */
export function resetSocket(s: Socket): void {
  if (s.destroyed) return;
  const r = (s as Socket & { resetAndDestroy?: () => Socket }).resetAndDestroy;
  if (typeof r === 'function' && (s as Socket & { _handle?: unknown })._handle) r.call(s);
  else s.destroy();
}
