/**
 * Bidirectional splice of two connected sockets (TCP proxy, TLS passthrough, CONNECT tunnels).
 *
 * - Reads: 'data' events at first; at the first bulk read a plain TCP socket is adopted into one
 *   that reads into reused buffers (user-buffer.ts: no allocation per chunk). TLS stays on 'data'.
 *   An upstream the tunnel's owner opens itself can read that way from its first byte
 *   (upstreamReader(): no adoption, and no 64 KiB read buffer allocated per read before it).
 * - Backpressure: while a write is queued (not yet taken by the kernel) the source stops reading,
 *   so memory per tunnel is bounded by one chunk per direction.
 * - Half-close: FIN from one side ends the other side's write half (both sockets are
 *   allowHalfOpen); the tunnel is done when both sockets have closed.
 * - Reset: an error (ECONNRESET, ...) on one side resets the other (resetAndDestroy: RST, not FIN),
 *   so a client never mistakes an aborted upstream for a clean end of stream.
 * - Idle timeout: no bytes read in either direction for the timeout destroys both sockets. One
 *   coarse sweeper checks every open tunnel's byte counters every TICK_MS (50 ms) instead of a
 *   timer per socket refreshed per chunk. Activity is stamped with the tick that first sees it, so
 *   a tunnel closes between the timeout and two ticks (100 ms) after it, never before; a tick
 *   costs a comparison per open tunnel.
 * No promise or closure per chunk: the handlers are bound once per tunnel.
 */
import type { OnReadOpts, Socket } from 'node:net';
import { Sweeper, type Sweepable } from '../sweeper.js';
import { adoptSocket, canAdopt, Flow } from './user-buffer.js';

/** The idle clock of every tunnel of the process (see the module comment). */
const IDLE_SWEEPER = new Sweeper();

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
  /** The upstream socket was opened with this reader's `onread`: it already reads through `flow`. */
  readonly upstreamReader?: UpstreamReader;
  /**
   * Bytes already read from the downstream (the ClientHello the TLS inspector read): written
   * upstream ahead of anything read later, and counted as read from the downstream.
   */
  readonly initial?: Buffer | undefined;
}

export interface UpstreamReader {
  readonly flow: Flow;
  /** For the upstream socket's options (net.connect({ onread })). */
  readonly onread: OnReadOpts;
}

function noop(): void {}

/** A reader for an upstream socket not opened yet (see PipeOptions.upstreamReader). */
export function upstreamReader(): UpstreamReader {
  const flow = new Flow(noop);
  flow.adopted = true;
  return { flow, onread: { buffer: flow.nextBuffer, callback: flow.onRead } };
}

export class Tunnel implements Sweepable {
  private readonly fromDown = new Flow((f) => this.adoptSoon(f));
  private readonly fromUp: Flow;
  private down: Socket;
  private up: Socket;
  private outcome: PipeOutcome = 'closed';
  private detail: string | undefined;
  private closedDown = false;
  private closedUp = false;
  private finished = false;
  /** Bytes moved both ways at the last sweep that saw a change (-1: the first sweep stamps the start), and when. */
  private seenBytes = -1;
  private activeAt = 0;

  constructor(down: Socket, up: Socket, private readonly opts: PipeOptions) {
    this.fromUp = opts.upstreamReader?.flow ?? new Flow((f) => this.adoptSoon(f));
    this.down = down;
    this.up = up;
    this.fromDown.src = down;
    this.fromDown.dst = up;
    this.fromUp.src = up;
    this.fromUp.dst = down;
    this.watchDown(down);
    this.watchUp(up);
    down.on('data', this.fromDown.onData);
    if (!this.fromUp.adopted) up.on('data', this.fromUp.onData);
    if (opts.idleTimeoutMs > 0) {
      // A timeout an earlier owner set on the socket (a head timeout) no longer applies.
      if (down.timeout) down.setTimeout(0);
      IDLE_SWEEPER.add(this);
    }
    if (opts.initial !== undefined && opts.initial.length > 0) this.fromDown.forwardUnread(opts.initial);
    if (down.destroyed) this.onDownClose();
    if (up.destroyed) this.onUpClose();
    down.resume();
    up.resume();
  }

  /** Bytes read from the downstream and written upstream. */
  get bytesFromDownstream(): number {
    return this.fromDown.bytes;
  }

  /** Bytes read from the upstream and written downstream. */
  get bytesFromUpstream(): number {
    return this.fromUp.bytes;
  }

  private watchDown(s: Socket): void {
    s.on('end', this.onDownEnd);
    s.on('error', this.onDownError);
    s.on('close', this.onDownClose);
  }

  private watchUp(s: Socket): void {
    s.on('end', this.onUpEnd);
    s.on('error', this.onUpError);
    s.on('close', this.onUpClose);
  }

  /** A bulk read on a flow's source: move that socket to reused buffers (user-buffer.ts) on the next tick. */
  private adoptSoon(flow: Flow): void {
    if (this.finished || flow.adopting || !canAdopt(flow.src)) return;
    flow.adopting = true;
    flow.src.pause();
    process.nextTick(this.adopt, flow);
  }

  private readonly adopt = (flow: Flow): void => {
    flow.adopting = false;
    const old = flow.src;
    const isDown = flow === this.fromDown;
    const writer = isDown ? this.fromUp : this.fromDown;
    const unread: Buffer[] = [];
    // Bytes still queued on the old socket's write side belong to it: try again at the next bulk read.
    const s = this.finished || writer.waiting ? undefined : adoptSocket(old, flow, unread);
    if (s === undefined) {
      if (!flow.waiting && !old.destroyed) old.resume();
      return;
    }
    old.removeListener('data', flow.onData);
    if (isDown) {
      old.removeListener('end', this.onDownEnd);
      old.removeListener('error', this.onDownError);
      old.removeListener('close', this.onDownClose);
      this.down = s;
      this.watchDown(s);
    } else {
      old.removeListener('end', this.onUpEnd);
      old.removeListener('error', this.onUpError);
      old.removeListener('close', this.onUpClose);
      this.up = s;
      this.watchUp(s);
    }
    flow.src = s;
    writer.dst = s;
    flow.adopted = true;
    for (const c of unread) flow.forwardUnread(c);
  };

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

  /** Sweeper tick: bytes moved since the last one renew the tunnel; none for the idle timeout end it. */
  sweep(now: number): void {
    const moved = this.fromDown.bytes + this.fromUp.bytes;
    if (moved !== this.seenBytes) {
      this.seenBytes = moved;
      this.activeAt = now;
    } else if (now - this.activeAt >= this.opts.idleTimeoutMs) {
      IDLE_SWEEPER.delete(this);
      this.setOutcome('idle_timeout', `no data for ${this.opts.idleTimeoutMs} ms`);
      this.down.destroy();
      this.up.destroy();
    }
  }

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
    if (this.opts.idleTimeoutMs > 0) IDLE_SWEEPER.delete(this);
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
