/**
 * One try of a request upstream: pick an endpoint (ClusterManager: LB, SSRF guard, source
 * address), take a pooled connection or dial one, then relay the connection's response events to
 * its owner. A retry is a new attempt; a cancelled attempt ignores whatever arrives late (a dial
 * that completes after the request ended gives its fresh connection back to the pool).
 */
import type { ChooseResult, UpstreamRequest as UpstreamPick } from '../../upstream/cluster-manager.js';
import type { UpstreamFailure } from '../../upstream/failure.js';
import type { HttpParseError } from '../errors.js';
import type { ResponseHead } from '../head.js';
import type { EngineContext } from '../stream-api.js';
import type { DialResult, UpstreamChannel, UpstreamFailureKind, UpstreamUser } from '../upstream-pool.js';

/** What an attempt reports to (router/upstream-request.ts). */
export interface AttemptOwner {
  connectFailed(a: UpstreamAttempt, f: UpstreamFailure): void;
  connected(a: UpstreamAttempt, c: UpstreamChannel): void;
  head(a: UpstreamAttempt, h: ResponseHead): void;
  body(b: Buffer): void;
  /** The chunked body as received (after passChunkedBody); `dataBytes` of `bytes` are data. */
  chunkedBody(bytes: Buffer, dataBytes: number): void;
  trailers(t: string[]): void;
  readDone(a: UpstreamAttempt): void;
  complete(a: UpstreamAttempt): void;
  upgrade(a: UpstreamAttempt, rest: Buffer): void;
  failed(a: UpstreamAttempt, kind: UpstreamFailureKind, detail: string, err: HttpParseError | undefined): void;
  drain(): void;
  /** The response body handed on may still be queued downstream (UpstreamUser.bodyQueued). */
  bodyQueued(): boolean;
}

function internalFailure(err: unknown): UpstreamFailure {
  return { flag: 'UF', reason: 'internal_error', detail: String(err), retryable: false };
}

export class UpstreamAttempt implements UpstreamUser {
  conn: UpstreamChannel | null = null;
  /** The connection had carried requests before this one. */
  reused = false;
  /** The upstream socket is paused because the downstream is full. */
  paused = false;
  private cancelled = false;

  constructor(
    private readonly owner: AttemptOwner,
    private readonly engine: EngineContext,
    private readonly method: string,
  ) {}

  start(pick: UpstreamPick): void {
    const clusters = this.engine.services.clusters;
    const r = clusters.chooseSync(pick);
    if (r !== undefined) {
      this.onChosen(r);
      return;
    }
    clusters.choose(pick).then(
      (res) => this.onChosen(res),
      (err: unknown) => this.onChosen({ ok: false, failure: internalFailure(err) }),
    );
  }

  /** Starts on a connection the request already has (UpstreamAffinity): no endpoint choice. */
  startOn(c: UpstreamChannel): void {
    this.attach(c);
  }

  private onChosen(r: ChooseResult): void {
    if (this.cancelled) return;
    if (!r.ok) {
      this.owner.connectFailed(this, r.failure);
      return;
    }
    const pool = this.engine.pool;
    const key = pool.keyOf(r.target);
    if (r.target.cluster.http2 === true) {
      const s = pool.h2.acquire(r.target, key);
      if (!(s instanceof Promise)) this.attach(s);
      else s.then((d) => this.onDialed(d), (err: unknown) => this.onDialed({ ok: false, failure: internalFailure(err) }));
      return;
    }
    const c = pool.take(key);
    if (c !== undefined) {
      this.attach(c);
      return;
    }
    pool.dial(r.target, key, undefined).then(
      (d) => this.onDialed(d),
      (err: unknown) => this.onDialed({ ok: false, failure: internalFailure(err) }),
    );
  }

  private onDialed(d: DialResult): void {
    if (!d.ok) {
      if (!this.cancelled) this.owner.connectFailed(this, d.failure);
      return;
    }
    if (this.cancelled) {
      d.conn.release(true); // fresh and unused: keep it for the next request
      return;
    }
    this.attach(d.conn);
  }

  private attach(c: UpstreamChannel): void {
    this.conn = c;
    this.reused = c.served > 0;
    c.attach(this, this.method);
    this.owner.connected(this, c);
  }

  /** Ends this attempt; its connection (if any) is destroyed, never reused after a failure. */
  cancel(): void {
    this.cancelled = true;
    const c = this.conn;
    this.conn = null;
    if (c !== null) c.destroy();
  }

  /** The response completed: the connection goes back to the pool when it can carry another request. */
  release(keepAlive: boolean): void {
    const c = this.conn;
    this.conn = null;
    if (c === null) return;
    if (this.paused) {
      this.paused = false;
      c.resume();
    }
    c.release(keepAlive && !c.dead);
  }

  pause(): void {
    if (this.paused || this.conn === null) return;
    this.paused = true;
    this.conn.pause();
  }

  resume(): void {
    if (!this.paused || this.conn === null) return;
    this.paused = false;
    this.conn.resume();
  }

  // UpstreamUser: relayed to the owner unless this attempt was cancelled

  onUpstreamHead(h: ResponseHead): void {
    if (!this.cancelled) this.owner.head(this, h);
  }
  onUpstreamBody(b: Buffer): void {
    if (!this.cancelled) this.owner.body(b);
  }
  onUpstreamChunked(bytes: Buffer, dataBytes: number): void {
    if (!this.cancelled) this.owner.chunkedBody(bytes, dataBytes);
  }
  onUpstreamTrailers(t: string[]): void {
    if (!this.cancelled) this.owner.trailers(t);
  }
  onUpstreamReadDone(): void {
    if (!this.cancelled) this.owner.readDone(this);
  }
  onUpstreamComplete(): void {
    if (!this.cancelled) this.owner.complete(this);
  }
  onUpstreamUpgrade(rest: Buffer): void {
    if (!this.cancelled) this.owner.upgrade(this, rest);
  }
  onUpstreamFailure(kind: UpstreamFailureKind, detail: string, err: HttpParseError | undefined): void {
    this.conn = null;
    if (!this.cancelled) this.owner.failed(this, kind, detail, err);
  }
  onUpstreamDrain(): void {
    if (!this.cancelled) this.owner.drain();
  }
  bodyQueued(): boolean {
    return this.owner.bodyQueued();
  }
}
