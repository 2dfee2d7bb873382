/**
 * Reads the first bytes of a connection until the TLS inspector has decided (Envoy's
 * tls_inspector listener filter): ClientHello complete, not TLS, malformed, too large, or the
 * client stayed silent past the timeout. The bytes are kept and pushed back on the socket
 * (unshift) by the caller, so the filter that takes the connection sees them as fresh data.
 *
 * Buffering: the common case (the hello in the first read) inspects the read buffer itself, with
 * no copy. A hello split across reads is gathered into one buffer that doubles as needed; the
 * inspector's own cap (2 x maxHelloBytes of records) bounds it.
 */
import type { Socket } from 'node:net';
import { inspectClientHello, type ClientHelloInfo, type InspectResult } from './tls-inspector.js';

export type PeekResult =
  | { readonly kind: 'hello'; readonly hello: ClientHelloInfo; readonly bytes: Buffer }
  | { readonly kind: 'not_tls'; readonly bytes: Buffer; readonly reason: string }
  | { readonly kind: 'error'; readonly code: string; readonly reason: string; readonly bytes: Buffer }
  | { readonly kind: 'timeout'; readonly bytes: Buffer }
  | { readonly kind: 'closed'; readonly bytes: Buffer };

export interface PeekOptions {
  readonly timeoutMs: number;
  readonly maxHelloBytes: number;
}

/**
 * Starts reading `socket` (which must be paused) and calls `done` exactly once. On return of
 * `done` the socket is paused again and no listener of ours remains on it.
 */
export function peekClientHello(socket: Socket, opts: PeekOptions, done: (r: PeekResult) => void): void {
  new Peeker(socket, opts, done).start();
}

const EMPTY = Buffer.alloc(0);

class Peeker {
  private buf: Buffer = EMPTY;
  private len = 0;
  private finished = false;
  /** buf is our own allocation (not a read buffer handed to us by the socket). */
  private owned = false;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly socket: Socket, private readonly opts: PeekOptions, private readonly done: (r: PeekResult) => void) {}

  start(): void {
    const s = this.socket;
    s.on('data', this.onData);
    s.on('end', this.onEnd);
    s.on('close', this.onEnd);
    s.on('error', this.onError);
    this.timer = setTimeout(this.onTimeout, this.opts.timeoutMs);
    s.resume();
  }

  private bytes(): Buffer {
    return this.len === this.buf.length ? this.buf : this.buf.subarray(0, this.len);
  }

  private finish(r: PeekResult): void {
    if (this.finished) return;
    this.finished = true;
    clearTimeout(this.timer);
    const s = this.socket;
    s.pause();
    s.removeListener('data', this.onData);
    s.removeListener('end', this.onEnd);
    s.removeListener('close', this.onEnd);
    s.removeListener('error', this.onError);
    this.done(r);
  }

  private readonly onData = (chunk: Buffer): void => {
    if (this.finished) return;
    if (this.len === 0) {
      this.buf = chunk;
      this.len = chunk.length;
    } else {
      const need = this.len + chunk.length;
      if (need > this.buf.length || !this.owned) {
        const grown = Buffer.allocUnsafe(Math.max(need, this.len * 2, 4096));
        this.buf.copy(grown, 0, 0, this.len);
        this.buf = grown;
        this.owned = true;
      }
      chunk.copy(this.buf, this.len);
      this.len = need;
    }
    const b = this.bytes();
    const r: InspectResult = inspectClientHello(b, { maxHelloBytes: this.opts.maxHelloBytes });
    if (r.state === 'need-more') return;
    if (r.state === 'done') this.finish({ kind: 'hello', hello: r, bytes: b });
    else if (r.code === 'TG_TLS_NOT_TLS') this.finish({ kind: 'not_tls', bytes: b, reason: r.reason });
    else this.finish({ kind: 'error', code: r.code, reason: r.reason, bytes: b });
  };

  private readonly onEnd = (): void => {
    this.finish({ kind: 'closed', bytes: this.bytes() });
  };

  private readonly onError = (): void => {
    this.finish({ kind: 'closed', bytes: this.bytes() });
  };

  private readonly onTimeout = (): void => {
    this.finish({ kind: 'timeout', bytes: this.bytes() });
  };
}

/** Stable snake_case reasons for inspector outcomes (docs/errors.md). */
export function inspectorReason(code: string): string {
  switch (code) {
    case 'TG_TLS_NOT_TLS':
      return 'tls_not_tls';
    case 'TG_TLS_NOT_CLIENT_HELLO':
      return 'tls_not_client_hello';
    case 'TG_TLS_BAD_SNI':
      return 'tls_bad_sni';
    case 'TG_TLS_HELLO_TOO_LARGE':
      return 'tls_hello_too_large';
    default:
      return 'tls_malformed';
  }
}
