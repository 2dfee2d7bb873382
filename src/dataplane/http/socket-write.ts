/**
 * Writes to a downstream HTTP/1.1 socket, answering the question the response path asks: are
 * bytes still queued (stop reading the upstream until 'drain'), or did the kernel take them all?
 *
 * Several pieces (a response head and a body chunk) go out in one writev: cork(), write() each,
 * uncork(). A write() inside cork() answers before anything is written — false once the corked
 * bytes pass Writable's 16 KiB high-water mark — although uncork() then hands everything to the
 * kernel at once and writableLength is 0. Pausing the upstream on that answer stopped and
 * restarted its reads (a pause, a resume and two epoll_ctl system calls) for every 64 KiB response.
 *
 * The 'drain' that Writable still emits after such a write is harmless: it resumes an upstream
 * that was not paused. When bytes stay queued, write() said false (needDrain is set), so a 'drain'
 * is sure to follow.
 */
import type { Socket } from 'node:net';

/** false: bytes of this or an earlier write are still queued in the socket ('drain' follows). */
export function writeOut(s: Socket, data: string | Buffer): boolean {
  if (s.destroyed) return true;
  const ok = typeof data === 'string' ? s.write(data, 'latin1') : s.write(data);
  return ok || s.writableLength === 0;
}

/** Several pieces in one writev system call (strings are latin1); same answer as writeOut. */
export function writevOut(s: Socket, parts: readonly (string | Buffer)[]): boolean {
  if (s.destroyed) return true;
  s.cork();
  let ok = true;
  for (const p of parts) ok = typeof p === 'string' ? s.write(p, 'latin1') : s.write(p);
  s.uncork();
  return ok || s.writableLength === 0;
}
