/**
 * V8 heap settings of the serving process (`tollgate run`), whose memory is multiplied by one
 * proxy per pod.
 *
 * - The young generation stays at V8's initial size (1 MB semi-spaces). By default V8 doubles it
 *   under allocation up to 16 MB semi-spaces (32 MB of pages the process keeps): the snapshot
 *   apply at start-up and a burst of requests both grow it, and it never shrinks while the proxy
 *   is busy. `--max-semi-space-size` is read only when the heap is created (a command-line flag);
 *   the growth factor is read at every growth, so setting it here, before the first request, is
 *   what caps the young generation without a launcher.
 * - After a snapshot is applied, one full collection: the parse and compile garbage of a large
 *   snapshot sits in old-space pages that V8 would only collect on a later allocation-driven
 *   collection, so RSS kept the apply's peak for as long as the proxy was idle. The collection
 *   frees them and V8 returns the empty pages to the system.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** A snapshot burst (control-plane pushes, file edits) collects once, this long after the last apply. */
const COLLECT_AFTER_APPLY_MS = 200;

let fullCollection: (() => void) | undefined;
let scheduled: NodeJS.Timeout | undefined;

/** Called once at `run` start, before any snapshot is received or request served. */
export function tuneHeapForServing(): void {
  setFlagsFromString('--semi-space-growth-factor=1');
  // `--expose-gc` set at run time gives contexts created afterwards a `gc` function; the main
  // context's globals stay as they are.
  setFlagsFromString('--expose-gc');
  const gc: unknown = runInNewContext('typeof gc === "function" ? gc : undefined');
  if (typeof gc === 'function') fullCollection = gc as () => void;
}

/** After a snapshot is applied: one full collection, off the apply's own turn and coalesced. */
export function collectAfterApply(): void {
  if (fullCollection === undefined) return;
  if (scheduled !== undefined) clearTimeout(scheduled);
  scheduled = setTimeout(() => {
    scheduled = undefined;
    fullCollection?.();
  }, COLLECT_AFTER_APPLY_MS);
  scheduled.unref();
}
