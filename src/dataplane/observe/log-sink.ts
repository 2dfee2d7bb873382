/**
 * Where access-log lines go, bounded so that logging can never hurt serving: a reader that is slow,
 * paused or gone, or a disk that is full, costs log lines (dropped and counted by reason), never
 * memory without bound, a blocked event loop, or a crash.
 *
 * - `StreamSink`: a Node stream (stdout on a pipe or terminal). Bytes the stream has not written yet
 *   are capped at `maxBufferBytes`; past that, lines are dropped (`buffer_full`). A stream error
 *   (EPIPE: the reader exited) closes the sink; later lines are dropped (`sink_closed`).
 * - `FileSink`: a file (or stdout redirected to a file), written with asynchronous `fs.write`, one
 *   write in flight and at most `maxBufferBytes` queued. A failed write (ENOSPC, EIO) drops that
 *   chunk (`write_error`) and the next chunk is tried again, so logging resumes once space is
 *   freed. `reopen()` (SIGUSR1, after logrotate moved the file) switches to a fresh file at the
 *   same path between two writes.
 */
import { closeSync, fstatSync, openSync, write as fsWrite, writeSync } from 'node:fs';
import type { Writable } from 'node:stream';

export type LogDropReason = 'buffer_full' | 'write_error' | 'sink_closed';

export interface LogSink {
  write(chunk: string): void;
  /** Best effort, synchronous, never throws (process exit). */
  flushSync(): void;
  /** Reopens the file at the same path (file sinks); a no-op elsewhere. */
  reopen(): void;
}

export type DropCounter = (reason: LogDropReason, lines: number) => void;

export const DEFAULT_LOG_BUFFER_BYTES = 4 * 1024 * 1024;

export function countLines(chunk: string): number {
  let n = 0;
  for (let i = chunk.indexOf('\n'); i >= 0; i = chunk.indexOf('\n', i + 1)) n++;
  return n === 0 && chunk.length > 0 ? 1 : n;
}

/** Streams that failed (one listener per stream, however many sinks share it). */
const failedStreams = new WeakMap<Writable, boolean>();

function guardStream(stream: Writable): void {
  if (failedStreams.has(stream)) return;
  failedStreams.set(stream, false);
  // Without a listener, EPIPE from a vanished reader is an uncaught exception.
  stream.on('error', () => failedStreams.set(stream, true));
}

export class StreamSink implements LogSink {
  constructor(private readonly stream: Writable, private readonly maxBufferBytes: number, private readonly dropped: DropCounter) {
    guardStream(stream);
  }

  write(chunk: string): void {
    if (failedStreams.get(this.stream) === true || this.stream.destroyed) {
      this.dropped('sink_closed', countLines(chunk));
      return;
    }
    if (this.stream.writableLength + chunk.length > this.maxBufferBytes) {
      this.dropped('buffer_full', countLines(chunk));
      return;
    }
    this.stream.write(chunk);
  }

  flushSync(): void {}

  reopen(): void {}
}

export class FileSink implements LogSink {
  private queue: string[] = [];
  private queuedBytes = 0;
  private writing = false;
  private reopenWanted = false;

  /** `path` undefined: an inherited descriptor (stdout), never reopened. */
  private constructor(private fd: number, private readonly path: string | undefined, private readonly maxBufferBytes: number, private readonly dropped: DropCounter) {}

  static open(path: string, maxBufferBytes: number, dropped: DropCounter): FileSink {
    return new FileSink(openSync(path, 'a', 0o640), path, maxBufferBytes, dropped);
  }

  static fromDescriptor(fd: number, maxBufferBytes: number, dropped: DropCounter): FileSink {
    return new FileSink(fd, undefined, maxBufferBytes, dropped);
  }

  write(chunk: string): void {
    if (this.queuedBytes + chunk.length > this.maxBufferBytes) {
      this.dropped('buffer_full', countLines(chunk));
      return;
    }
    this.queue.push(chunk);
    this.queuedBytes += chunk.length;
    unflushed.add(this);
    if (!this.writing) this.next();
  }

  reopen(): void {
    if (this.path === undefined) return;
    this.reopenWanted = true;
    if (!this.writing) this.swapFile();
  }

  flushSync(): void {
    unflushed.delete(this);
    const rest = this.queue.join('');
    this.queue = [];
    this.queuedBytes = 0;
    if (rest === '') return;
    try {
      writeSync(this.fd, rest);
    } catch {
      this.dropped('write_error', countLines(rest));
    }
  }

  private swapFile(): void {
    this.reopenWanted = false;
    if (this.path === undefined) return;
    try {
      const fresh = openSync(this.path, 'a', 0o640);
      const old = this.fd;
      this.fd = fresh;
      closeSync(old);
    } catch {
      // Keep writing to the old file: losing the log entirely would be worse than a late rotate.
    }
  }

  private next(): void {
    if (this.reopenWanted) this.swapFile();
    if (this.queue.length === 0) {
      this.writing = false;
      unflushed.delete(this);
      return;
    }
    this.writing = true;
    const text = this.queue.length === 1 ? this.queue[0]! : this.queue.join('');
    this.queue = [];
    this.queuedBytes = 0;
    this.writeText(text);
  }

  /**
   * The text goes to fs.write as a string, which Node encodes straight into memory of its own: a
   * Buffer made first (Buffer.from) costs an allocation and a pass more over every line.
   */
  private writeText(text: string): void {
    fsWrite(this.fd, text, null, 'utf8', (err, written) => {
      if (err) {
        this.dropped('write_error', countLines(text));
        this.next();
      } else if (written < Buffer.byteLength(text, 'utf8')) {
        // A short write (a file system filling up): the rest goes on as bytes.
        this.writeAll(Buffer.from(text, 'utf8'), written);
      } else {
        this.next();
      }
    });
  }

  private writeAll(buf: Buffer, offset: number): void {
    fsWrite(this.fd, buf, offset, buf.length - offset, null, (err, written) => {
      if (err) {
        // Count only the lines that did not make it whole.
        this.dropped('write_error', countLines(buf.subarray(offset).toString('utf8')));
        this.next();
      } else if (offset + written < buf.length) {
        this.writeAll(buf, offset + written);
      } else {
        this.next();
      }
    });
  }
}

/** File sinks with lines queued or in flight: written synchronously on process exit. */
const unflushed = new Set<FileSink>();
process.on('exit', () => {
  for (const sink of unflushed) sink.flushSync();
});

/** stdout as a sink: a file when stdout is redirected to one, else the stream. */
export function stdoutSink(maxBufferBytes: number, dropped: DropCounter): LogSink {
  let isFile = false;
  try {
    isFile = fstatSync(1).isFile();
  } catch {
    isFile = false;
  }
  return isFile ? FileSink.fromDescriptor(1, maxBufferBytes, dropped) : new StreamSink(process.stdout, maxBufferBytes, dropped);
}
