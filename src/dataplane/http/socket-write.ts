/**
 * Writes to a downstream HTTP/1.1 socket, answering the question the response path asks: are
 * bytes still queued (stop reading the upstream until the writer calls back), or did the kernel
 * take them all?
 *
 * A plain-TCP socket is written through its handle (the libuv stream under net.Socket), as
 * net.Socket's own _write does it but without the Writable around it: no per-write state record,
 * callback, or after-write tick, and the write request object is reused while writes complete
 * synchronously (the common case: the kernel takes a response at once). A write the kernel did not
 * take at once stays queued in libuv, which keeps the order of writes on the handle; the writer
 * counts it and calls `onDrained` when the last one completed. A socket that cannot be written
 * that way (TLS, a handle without these methods, Node internals shaped differently) or whose
 * Writable still holds bytes (an earlier write through it) is written through net.Socket, whose
 * 'drain' then reports the end of the backpressure.
 *
 * Several pieces (a response head and a body chunk) go out in one writev. Through net.Socket that
 * is cork(), write() each, uncork(): a write() inside cork() answers before anything is written —
 * false once the corked bytes pass Writable's 16 KiB high-water mark — although uncork() then hands
 * everything to the kernel at once and writableLength is 0, so the answer is taken from
 * writableLength instead.
 */
import type { Socket } from 'node:net';
import { isTlsSocket } from '../../shared/lazy-builtins.js';
import { getSystemErrorName } from 'node:util';

/** Node's write request object (stream_wrap WriteWrap); `oncomplete` is called with `this` = the request. */
interface WriteReq {
  handle: StreamHandle | null;
  oncomplete: ((this: WriteReq, status: number) => void) | null;
  /** Kept alive while libuv holds a pointer into it (an asynchronous write). */
  buffer: unknown;
  async: boolean;
  bytes: number;
  callback: null;
}

/** The methods of a libuv stream handle (TCPWrap) used here. */
interface StreamHandle {
  writeBuffer(req: WriteReq, b: Buffer): number;
  writeLatin1String(req: WriteReq, s: string): number;
  writev(req: WriteReq, chunks: readonly (string | Buffer)[], allBuffers: boolean): number;
}

interface StreamWrapBinding {
  readonly WriteWrap: new () => WriteReq;
  readonly streamBaseState: Int32Array;
  readonly kLastWriteWasAsync: number;
}

/** What a write through the handle needs from Node's stream_wrap binding; null when it is not there as expected. */
let binding: StreamWrapBinding | null | undefined;

function streamWrap(): StreamWrapBinding | null {
  if (binding !== undefined) return binding;
  binding = null;
  try {
    const b = (process as unknown as { binding(name: string): Partial<StreamWrapBinding> }).binding('stream_wrap');
    if (typeof b.WriteWrap === 'function' && b.streamBaseState instanceof Int32Array && typeof b.kLastWriteWasAsync === 'number' && b.kLastWriteWasAsync < b.streamBaseState.length) {
      binding = b as StreamWrapBinding;
    }
  } catch {
    // no process.binding (a future Node release): writes stay on net.Socket
  }
  return binding;
}

/** The socket's handle when it can be written directly (plain TCP, methods present), else null. */
function directHandle(s: Socket): StreamHandle | null {
  if (isTlsSocket(s) || streamWrap() === null) return null;
  const h = (s as Socket & { _handle?: Partial<StreamHandle> | null })._handle;
  if (h === null || h === undefined) return null;
  return typeof h.writeBuffer === 'function' && typeof h.writeLatin1String === 'function' && typeof h.writev === 'function' ? (h as StreamHandle) : null;
}

export class SocketWriter {
  /** The handle written directly; null: every write goes through net.Socket. */
  private readonly handle: StreamHandle | null;
  /** Direct writes libuv still holds (they complete in order). */
  private pending = 0;
  /** A request object no write holds: reused by the next direct write. */
  private spare: WriteReq | null = null;

  constructor(
    private readonly socket: Socket,
    /** The last queued direct write completed: the response may be read on. */
    private readonly onDrained: () => void,
  ) {
    this.handle = directHandle(socket);
  }

  /** Writes go through the socket's handle (see the module comment). */
  get direct(): boolean {
    return this.handle !== null;
  }

  /** Bytes written may still be referenced: queued, not yet taken by the kernel. */
  get queued(): boolean {
    return this.pending > 0 || this.socket.writableLength > 0;
  }

  /** false: bytes of this or an earlier write are still queued (onDrained or 'drain' follows). */
  write(data: string | Buffer): boolean {
    const s = this.socket;
    if (!this.mayWriteDirect(s)) {
      if (s.destroyed) return true;
      const ok = typeof data === 'string' ? s.write(data, 'latin1') : s.write(data);
      return ok || s.writableLength === 0;
    }
    const req = this.request();
    const err = typeof data === 'string' ? this.handle!.writeLatin1String(req, data) : this.handle!.writeBuffer(req, data);
    return this.dispatched(req, err, data);
  }

  /** Several pieces in one writev system call (strings are latin1); same answer as write(). */
  writev(parts: readonly (string | Buffer)[]): boolean {
    const s = this.socket;
    if (!this.mayWriteDirect(s)) {
      if (s.destroyed) return true;
      s.cork();
      let ok = true;
      for (const p of parts) ok = typeof p === 'string' ? s.write(p, 'latin1') : s.write(p);
      s.uncork();
      return ok || s.writableLength === 0;
    }
    let allBuffers = true;
    for (let i = 0; i < parts.length; i++) if (typeof parts[i] === 'string') allBuffers = false;
    let chunks: readonly (string | Buffer)[] = parts;
    if (!allBuffers) {
      // The handle's writev takes (chunk, encoding) pairs when some chunk is a string.
      const pairs: (string | Buffer)[] = new Array<string | Buffer>(parts.length * 2);
      for (let i = 0; i < parts.length; i++) {
        pairs[2 * i] = parts[i]!;
        pairs[2 * i + 1] = 'latin1';
      }
      chunks = pairs;
    }
    const req = this.request();
    return this.dispatched(req, this.handle!.writev(req, chunks, allBuffers), chunks);
  }

  /**
   * Direct only while the Writable holds nothing: a write through it may still be waiting there,
   * and a direct write would overtake it. The handle must still be the socket's: destroy() drops it.
   */
  private mayWriteDirect(s: Socket): boolean {
    return this.handle !== null && (s as Socket & { _handle?: unknown })._handle === this.handle && s.writableLength === 0;
  }

  private request(): WriteReq {
    const spare = this.spare;
    if (spare !== null) {
      this.spare = null;
      return spare;
    }
    const req = new (streamWrap()!.WriteWrap)();
    req.handle = this.handle;
    req.oncomplete = null;
    req.buffer = null;
    req.async = false;
    req.bytes = 0;
    req.callback = null;
    return req;
  }

  /** After the handle took a write: done (the request is reused), queued (counted until oncomplete), or failed. */
  private dispatched(req: WriteReq, err: number, data: unknown): boolean {
    if (err !== 0) {
      this.spare = req;
      this.fail(err);
      return true;
    }
    const b = binding!;
    if (b.streamBaseState[b.kLastWriteWasAsync] === 0) {
      this.spare = req;
      return true;
    }
    // libuv holds the request (and a pointer into `data`) until the kernel has taken the rest.
    req.async = true;
    req.buffer = data;
    req.oncomplete = this.completer;
    this.pending++;
    return false;
  }

  private readonly completer = this.onComplete.bind(this);

  private onComplete(status: number): void {
    this.pending--;
    const s = this.socket;
    if (status < 0) {
      this.fail(status);
      return;
    }
    if (this.pending === 0 && !s.destroyed && s.writableLength === 0) this.onDrained();
  }

  /** As net.Socket does on a failed write: the socket is destroyed with the error ('error', then 'close'). */
  private fail(status: number): void {
    const s = this.socket;
    if (s.destroyed) return;
    const code = getSystemErrorName(status);
    s.destroy(Object.assign(new Error(`write ${code}`), { code, errno: status, syscall: 'write' }));
  }
}
