/**
 * Watching `-f` paths for changes, with no config code behind it: `run --watch` uses this in the
 * serving process and builds each new snapshot elsewhere (see cli/snapshot-loader.ts).
 */
import { statSync, watch, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';

/**
 * Quiet-period debounce with a ceiling: `fire` runs `quietMs` after the last `poke()`, but never
 * later than `maxMs` after the first poke of a burst.
 */
export class Debouncer {
  private timer: NodeJS.Timeout | undefined;
  private burstStartedAt = 0;

  constructor(private readonly quietMs: number, private readonly maxMs: number, private readonly fire: () => void) {}

  poke(): void {
    const now = Date.now();
    if (this.timer) clearTimeout(this.timer);
    else this.burstStartedAt = now;
    const wait = Math.max(0, Math.min(this.quietMs, this.burstStartedAt + this.maxMs - now));
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.fire();
    }, wait);
  }

  cancel(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }
}

export interface PathWatch {
  close(): void;
}

/**
 * Watches every path (directories recursively, '-' skipped); a burst of events calls `onChange`
 * once, `debounceMs` after the last event and at the latest `maxDebounceMs` after the first.
 */
export function watchPaths(paths: readonly string[], timing: { readonly debounceMs: number; readonly maxDebounceMs: number }, onChange: () => void): PathWatch {
  const debouncer = new Debouncer(timing.debounceMs, timing.maxDebounceMs, onChange);
  const watchers: FSWatcher[] = [];
  const schedule = (): void => debouncer.poke();
  for (const p of paths) {
    if (p === '-') continue;
    try {
      if (statSync(p).isDirectory()) {
        watchers.push(watch(p, { recursive: true, persistent: false }, schedule));
      } else {
        // Editors save by writing a new file and renaming it over the old one, which ends a
        // watch on the file itself: watch its directory and pick out its name. A Kubernetes
        // ConfigMap volume updates by swapping the `..data` symlink (the file itself is a
        // symlink through it that never changes): those `..`-names count too.
        const name = basename(p);
        watchers.push(watch(dirname(p), { persistent: false }, (_e, f) => {
          if (f === null || f === name || f.startsWith('..')) schedule();
        }));
      }
    } catch {
      // A path that disappears is reported by the next reload; keep watching the others.
    }
  }
  return {
    close() {
      debouncer.cancel();
      for (const w of watchers) w.close();
    },
  };
}
