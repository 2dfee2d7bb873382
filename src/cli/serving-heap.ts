/**
 * V8 heap settings of the serving process (`tollgate run`), whose memory is multiplied by one
 * proxy per pod.
 *
 * - Start-up: the young generation stays at V8's initial size (1 MB semi-spaces) until the first
 *   snapshot is applied. Loading the data plane's modules and receiving and compiling a large
 *   snapshot are a burst of allocation with a high survival rate, which makes V8 double the young
 *   generation up to 16 MB semi-spaces (32 MB of pages the process keeps while it is idle). After
 *   the first apply the growth factor is V8's default again, so a proxy under sustained load gets
 *   the young generation that keeps its CPU per request low (held at 1 MB, 64 KiB responses cost
 *   measurably more CPU). `--max-semi-space-size` is read only when the heap is created (a
 *   command-line flag); the growth factor is read at every growth, which is why it is the knob.
 * - After each snapshot apply, one full collection, compacting: the garbage of receiving and
 *   compiling a large snapshot sits in old-space pages that V8 would collect only on a later
 *   allocation-driven collection, so RSS kept the apply's peak for as long as the proxy was idle.
 *   The collection frees them, moves what survives out of partly used pages, and V8 returns the
 *   empty pages to the system.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** A snapshot burst (control-plane pushes, file edits) collects once, this long after the last apply. */
const COLLECT_AFTER_APPLY_MS = 200;
/** V8's own `--semi-space-growth-factor`. */
const V8_DEFAULT_GROWTH_FACTOR = 2;

let fullCollection: (() => void) | undefined;
let scheduled: NodeJS.Timeout | undefined;
let youngGrowthHeld = false;

/** Called once when `run` starts, before the data plane's modules are loaded. */
export function tuneHeapForServing(): void {
  setFlagsFromString('--semi-space-growth-factor=1');
  youngGrowthHeld = true;
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
    // Compacting: V8 compacts only pages it judges fragmented enough, and leaves the rest of the
    // apply's half-empty old-space pages resident for as long as the proxy runs.
    setFlagsFromString('--compact-on-every-full-gc');
    fullCollection?.();
    setFlagsFromString('--no-compact-on-every-full-gc');
    if (youngGrowthHeld) {
      youngGrowthHeld = false;
      setFlagsFromString(`--semi-space-growth-factor=${V8_DEFAULT_GROWTH_FACTOR}`);
    }
  }, COLLECT_AFTER_APPLY_MS);
  scheduled.unref();
}
