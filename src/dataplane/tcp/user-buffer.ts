/**
 * Reads of a plain TCP socket into buffers the tunnel controls (net's `onread` option) instead of
 * 'data' events. With 'data', Node allocates a fresh 64 KiB ArrayBuffer for every read; a tunnel
 * moving a gigabyte makes ~16,000 of them, and the garbage collector's work (scavenges, and in a
 * process with a larger heap, full mark-compacts) grows with them. Here a read lands in:
 *
 * - one process-wide 64 KiB buffer, from which the bytes are copied out at once (a small read:
 *   the copy comes from Node's 8 KiB pool); sharing is safe because nothing keeps a reference to it
 *   past the callback;
 * - the flow's own 64 KiB buffer once a read shows a bulk stream (>= 16 KiB), written out as is and
 *   reused for the next read; the flow stops reading while a write of it is still queued (the
 *   kernel holds a pointer into the buffer), and gives the buffer up after a run of small reads.
 *
 * So an idle or chatty tunnel holds no read buffer, and a bulk one exactly one per direction.
 * A connection starts on 'data' events; its first bulk read moves it here (the Tunnel adopts the
 * socket then), so a short connection pays for no extra socket object.
 *
 * Node has no `onread` option for accepted sockets: adoptSocket() moves the socket's handle into a
 * new net.Socket created with one. The old object stays as the listener's and the connection
 * pool's view of the connection: destroying either destroys the other, so their 'close'
 * bookkeeping (connection counts, budgets, gauges) still runs exactly once.
 *
 * readIntoBuffers() gives an accepted socket the same reads without a second socket object: it
 * sets on the socket the three fields the constructor's `onread` option sets (see its comment).
 */
import { Socket, type SocketConstructorOpts } from 'node:net';
import { isTlsSocket } from '../../shared/lazy-builtins.js';

const READ_SIZE = 64 * 1024;
/** A read at least this large means a bulk stream: the flow gets its own buffer. */
const BULK_READ = 16 * 1024;
/** A read below this after bulk is small; SMALL_READS of them in a row: the stream went chatty. */
const SMALL_READ = 4 * 1024;
/**
 * Responses end in a short read (the last TLS record, the tail of a body) before the next bulk one:
 * giving the buffer up at the first short read would allocate a new one per response.
 */
const SMALL_READS = 16;
const SHARED = Buffer.allocUnsafeSlow(READ_SIZE);

/**
 * Where the reads of one reader (a tunnel direction, an upstream HTTP connection) land: the shared
 * buffer while reads are small, the reader's own buffer once one is bulk (see the module comment).
 * The owner passes `nextBuffer` as net's onread.buffer and turns each read into a chunk with take().
 */
export class ReadBuffers {
  /** `ownSize`: the reader's own buffer (a larger one takes a whole response, head and body, in one read). */
  constructor(private readonly ownSize = READ_SIZE) {}

  private own: Buffer | undefined;
  private next: Buffer = SHARED;
  private smallReads = 0;
  /** The last chunk take() returned lies in this reader's own buffer (not a copy). */
  lastOwn = false;

  /** onread.buffer: where the next read goes (called after every read). */
  readonly nextBuffer = (): Buffer => this.next;

  /**
   * The bytes of a read of `n` into `buf`, as a Buffer the caller may hand on: a copy when the read
   * went to the shared buffer, else a view of the own buffer, which the next read overwrites — so
   * it must be written out (or copied) before reading goes on, or handed over with dropOwn().
   */
  take(n: number, buf: Uint8Array): Buffer {
    if (buf === SHARED) {
      this.lastOwn = false;
      const chunk = Buffer.allocUnsafe(n);
      SHARED.copy(chunk, 0, 0, n);
      if (n >= BULK_READ) this.next = this.own ??= Buffer.allocUnsafeSlow(this.ownSize);
      return chunk;
    }
    this.lastOwn = true;
    const chunk = n === buf.length ? (buf as Buffer) : (buf as Buffer).subarray(0, n);
    if (n >= SMALL_READ) this.smallReads = 0;
    else if (++this.smallReads >= SMALL_READS) {
      // A queued write of `chunk` keeps the old buffer alive on its own; the next read goes elsewhere.
      this.next = SHARED;
      this.own = undefined;
      this.smallReads = 0;
    }
    return chunk;
  }

  /** The last chunk from the own buffer may still be referenced (a write of it is queued): the next read gets a new one. */
  dropOwn(): void {
    if (this.next === SHARED) return;
    this.next = this.own = Buffer.allocUnsafeSlow(this.ownSize);
  }
}

/** One direction of a tunnel: reads from `src`, writes to `dst`. */
export class Flow {
  bytes = 0;
  src!: Socket;
  dst!: Socket;
  /** src reads through onread (adopted) rather than 'data' events. */
  adopted = false;
  /** An adoption is scheduled (see Tunnel). */
  adopting = false;
  /** Reading stopped until `dst` has written everything queued. */
  waiting = false;
  private readonly reads = new ReadBuffers();

  /** `onBulk`: a bulk read arrived through 'data' events (the tunnel may adopt the source then). */
  constructor(private readonly onBulk: (flow: Flow) => void) {}

  /** onread.buffer: where the next read goes (called after every read). */
  readonly nextBuffer = this.reads.nextBuffer;

  /**
   * onread.callback: `false` stops reading (the handle's readStop) until onWritten resumes it — so
   * the own buffer is never overwritten while a write of it is queued.
   */
  readonly onRead = (n: number, buf: Uint8Array): boolean => {
    this.bytes += n;
    return this.forward(this.reads.take(n, buf));
  };

  /** The 'data' path: every connection starts on it, and sockets that cannot be adopted (TLS) stay. */
  readonly onData = (chunk: Buffer): void => {
    this.bytes += chunk.length;
    if (!this.forward(chunk)) this.src.pause();
    if (chunk.length >= BULK_READ && !this.adopted) this.onBulk(this);
  };

  /**
   * Bytes read from the source before this flow read it (before an adoption, or by the TLS
   * inspector), written ahead of any new read.
   */
  forwardUnread(chunk: Buffer): void {
    this.bytes += chunk.length;
    this.dst.write(chunk);
  }

  private forward(chunk: Buffer): boolean {
    this.dst.write(chunk, this.onWritten);
    // Written synchronously (the common case on a socket with room in its send buffer): go on reading.
    if (this.dst.writableLength === 0) return true;
    this.waiting = true;
    return false;
  }

  private readonly onWritten = (err?: Error | null): void => {
    if (!this.waiting || err || this.dst.writableLength > 0) return;
    this.waiting = false;
    if (this.src.destroyed || this.adopting) return;
    // An adopted socket stopped at the handle (onread returned false): restart the handle's reads.
    if (this.adopted) (this.src as Socket & { _read(n: number): void })._read(READ_SIZE);
    else this.src.resume();
  };
}

interface HandleOwner {
  _handle?: { useUserBuffer?: unknown } | null;
  _readableState?: { ended?: boolean };
}

/** A plain TCP socket whose handle can read into our buffers (not TLS, not a pipe or a stream wrapper, not already reading into buffers). */
export function canAdopt(s: Socket): boolean {
  const handle = (s as Socket & HandleOwner)._handle;
  return !isTlsSocket(s) && handle !== null && handle !== undefined && typeof handle.useUserBuffer === 'function' && !readsIntoBuffers(s);
}

/**
 * The keys of net.Socket's fields for the `onread` option (Node 20's lib/net.js): kBuffer (the
 * buffer, or `true` until the first one is generated), kBufferCb (the callback) and kBufferGen
 * (the buffer function). Every Socket has them as own symbol properties, null without `onread`;
 * lib/internal/stream_base_commons.js onStreamRead() hands a read to kBufferCb whenever kBuffer is
 * set, and Socket#pause/resume/read stop and start the handle's reads for such a socket. Found by
 * their descriptions on the first socket seen; undefined (and the 'data' path kept) when a Node
 * release names or shapes them differently.
 */
interface OnreadKeys {
  readonly buffer: symbol;
  readonly callback: symbol;
  readonly gen: symbol;
}
let onreadKeys: OnreadKeys | null | undefined;

function keysOf(s: Socket): OnreadKeys | undefined {
  if (onreadKeys === undefined) {
    const syms = Object.getOwnPropertySymbols(s);
    const find = (d: string): symbol | undefined => syms.find((k) => k.description === d);
    const buffer = find('kBuffer');
    const callback = find('kBufferCb');
    const gen = find('kBufferGen');
    onreadKeys = buffer !== undefined && callback !== undefined && gen !== undefined ? { buffer, callback, gen } : null;
  }
  if (onreadKeys === null) return undefined;
  const k = onreadKeys;
  return Object.hasOwn(s, k.buffer) && Object.hasOwn(s, k.callback) && Object.hasOwn(s, k.gen) ? k : undefined;
}

/** `s` already reads through onread (constructed with it, or switched by readIntoBuffers). */
export function readsIntoBuffers(s: Socket): boolean {
  const k = keysOf(s);
  return k !== undefined && (s as unknown as Record<symbol, unknown>)[k.buffer] != null;
}

/**
 * Switches a connected plain-TCP socket from 'data' events to net's `onread` reads, as if it had
 * been created with `{ onread }`: from the next read on, bytes go to `onread.callback` (in the
 * buffer `onread.buffer()` returns) and no longer through the socket's Readable side; its end of
 * stream still arrives as 'end'. Returns false, changing nothing, when it cannot: not canAdopt(),
 * bytes already buffered in the Readable side, ended or destroyed, or fields not as expected
 * (keysOf). The switch cannot be undone: the handle keeps reading into user buffers, so a later
 * owner of the socket (an upgrade tunnel) must be fed from the callback.
 */
export function readIntoBuffers(s: Socket, onread: { readonly buffer: () => Buffer; readonly callback: (n: number, buf: Uint8Array) => boolean }): boolean {
  const o = s as Socket & HandleOwner;
  const handle = o._handle as ({ useUserBuffer?: (b: Uint8Array) => void } | null | undefined);
  if (handle === null || handle === undefined || typeof handle.useUserBuffer !== 'function' || isTlsSocket(s)) return false;
  if (s.connecting || s.destroyed || s.readableLength > 0 || o._readableState?.ended === true) return false;
  const k = keysOf(s);
  if (k === undefined) return false;
  const f = s as unknown as Record<symbol, unknown>;
  if (f[k.buffer] !== null || f[k.callback] !== null || f[k.gen] !== null) return false;
  const first = onread.buffer();
  f[k.gen] = onread.buffer;
  f[k.callback] = onread.callback;
  f[k.buffer] = first;
  handle.useUserBuffer(first);
  return true;
}

/**
 * Moves `old`'s handle into a socket that reads through `flow` (see the module comment). Returns
 * undefined, leaving `old` untouched, when it cannot now: not canAdopt(), not connected yet,
 * already ended or destroyed, or with bytes still queued to write. `unread` gets what `old` had
 * already read and not delivered: it must go out before anything the new socket reads.
 */
export function adoptSocket(old: Socket, flow: Flow, unread: Buffer[]): Socket | undefined {
  const o = old as Socket & HandleOwner;
  const handle = o._handle;
  const ended = (): boolean => o._readableState?.ended === true;
  if (!canAdopt(old) || !handle) return undefined;
  if (old.connecting || old.destroyed || old.writableLength > 0 || ended()) return undefined;
  for (let c: Buffer | null = old.read() as Buffer | null; c !== null; c = old.read() as Buffer | null) unread.push(c);
  // read() may have met the end of the stream in the buffer: the old socket keeps it, so keep the old socket.
  if (ended()) {
    for (const c of unread.splice(0)) old.unshift(c);
    return undefined;
  }
  old.setTimeout(0);
  o._handle = null;
  const opts = { handle, allowHalfOpen: true, onread: { buffer: flow.nextBuffer, callback: flow.onRead } };
  const s = new Socket(opts as SocketConstructorOpts);
  s.once('close', () => old.destroy());
  old.once('close', () => s.destroy());
  return s;
}
