/**
 * Bidirectional splice of two connected sockets (TCP proxy, TLS passthrough, CONNECT tunnels).
 *
 * - Reads: plain TCP sockets are adopted into sockets that read into reused buffers (see
 *   user-buffer.ts: no allocation per chunk); others (TLS) use 'data' events.
 * - Backpressure: while a write is queued (not yet taken by the kernel) the source stops reading,
 *   so memory per tunnel is bounded by one chunk per direction.
 * - Half-close: FIN from one side ends the other side's write half (both sockets are
 *   allowHalfOpen); the tunnel is done when both sockets have closed.
 * - Reset: an error (ECONNRESET, ...) on one side resets the other (resetAndDestroy: RST, not FIN),
 *   so a client never mistakes an aborted upstream for a clean end of stream.
 * - Idle timeout: the downstream socket's timer, which both directions refresh (reads from the
 *   downstream and writes to it); on expiry both sockets are destroyed.
 * No promise or closure per chunk: the handlers are bound once per tunnel.
 */
import type { Socket } from 'node:net';
import { adoptSocket, Flow } from './user-buffer.js';

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
  private readonly fromDown = new Flow();
  private readonly fromUp = new Flow();
  private readonly down: Socket;
  private readonly up: Socket;
  private outcome: PipeOutcome = 'closed';
  private detail: string | undefined;
  private closedDown = false;
  private closedUp = false;
  private finished = false;

  constructor(down: Socket, up: Socket, private readonly opts: PipeOptions) {
    const unreadDown: Buffer[] = [];
    const unreadUp: Buffer[] = [];
    const newDown = adoptSocket(down, this.fromDown, unreadDown);
    const newUp = adoptSocket(up, this.fromUp, unreadUp);
    this.down = newDown ?? down;
    this.up = newUp ?? up;
    this.fromDown.src = this.down;
    this.fromDown.dst = this.up;
    this.fromUp.src = this.up;
    this.fromUp.dst = this.down;
    this.down.on('end', this.onDownEnd);
    this.up.on('end', this.onUpEnd);
    this.down.on('error', this.onDownError);
    this.up.on('error', this.onUpError);
    this.down.on('close', this.onDownClose);
    this.up.on('close', this.onUpClose);
    if (opts.idleTimeoutMs > 0) {
      this.down.setTimeout(opts.idleTimeoutMs);
      this.down.on('timeout', this.onTimeout);
    }
    // What the old sockets had read before the tunnel (a ClientHello pushed back) goes first.
    for (const c of unreadDown) this.fromDown.forwardUnread(c);
    for (const c of unreadUp) this.fromUp.forwardUnread(c);
    this.fromDown.readSource(newDown !== undefined);
    this.fromUp.readSource(newUp !== undefined);
    if (this.down.destroyed) this.onDownClose();
    if (this.up.destroyed) this.onUpClose();
    if (newDown === undefined) this.down.resume();
    if (newUp === undefined) this.up.resume();
  }

  /** Bytes read from the downstream and written upstream. */
  get bytesFromDownstream(): number {
    return this.fromDown.bytes;
  }

  /** Bytes read from the upstream and written downstream. */
  get bytesFromUpstream(): number {
    return this.fromUp.bytes;
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
