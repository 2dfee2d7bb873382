/**
 * Event-loop lag (p99 per scrape interval) without a timer that wakes an idle process.
 *
 * `monitorEventLoopDelay` samples with a libuv timer of its own: at its 20 ms resolution that is
 * 50 wake-ups a second in a proxy with nothing to do, in every pod. Here the samples come from
 * timers that run anyway: the sweepers (HTTP engines, L4 tunnels) report how late each tick ran
 * (every 50 ms while they have something to watch), and one unref'd probe a second covers an idle
 * process.
 */
import { createHistogram, performance, type RecordableHistogram } from 'node:perf_hooks';

const PROBE_MS = 1000;

export class LoopLag {
  private readonly histogram: RecordableHistogram = createHistogram();
  private probe: NodeJS.Timeout | undefined;
  private probeDue = 0;

  /** A timer due at `dueMs` (performance.now() clock) ran now: records how late. */
  late(dueMs: number): void {
    const lateMs = performance.now() - dueMs;
    // The histogram takes integers >= 1 (nanoseconds here).
    this.histogram.record(lateMs > 0 ? Math.max(1, Math.round(lateMs * 1e6)) : 1);
  }

  /** Starts the once-a-second probe (unref'd: it never keeps the process alive). */
  enable(): void {
    if (this.probe === undefined) this.armProbe();
  }

  disable(): void {
    if (this.probe !== undefined) clearTimeout(this.probe);
    this.probe = undefined;
  }

  /** p99 in milliseconds since the last call (0 without samples), then starts a new interval. */
  takeP99Ms(): number {
    const p99 = this.histogram.count === 0 ? 0 : this.histogram.percentile(99) / 1e6;
    this.histogram.reset();
    return p99;
  }

  private armProbe(): void {
    this.probeDue = performance.now() + PROBE_MS;
    this.probe = setTimeout(this.onProbe, PROBE_MS);
    this.probe.unref();
  }

  private readonly onProbe = (): void => {
    this.late(this.probeDue);
    this.armProbe();
  };
}

/** One per process: the loop is per process, and every sweeper reports into it. */
export const loopLag = new LoopLag();
