/**
 * One coarse timer for the data plane's timeouts: every HTTP timeout (header, idle, stream idle,
 * route, per-try, pool idle; one sweeper per HTTP engine) and the idle timeout of L4 tunnels (one
 * for all tunnels, tcp/pipe.ts).
 *
 * Arming a Node timer per request (setTimeout + clearTimeout) costs more than the rest of the
 * bookkeeping of a keep-alive request; a deadline is a number instead, and one interval per engine
 * checks them every TICK_MS. `now` is a coarse clock (the last tick's Date.now()) that the hot path
 * reads for deadlines and "last activity" stamps without calling Date.now() per request. A stamp can
 * be up to one tick old when taken, and a deadline is checked up to one tick after it passes, so a
 * timeout fires within one tick of its configured length, either side (about 50 ms, more while the
 * event loop lags): fine for timeouts of seconds, not a precise timer.
 * Each tick also reports how late it ran to the event-loop lag metric (no timer of its own).
 */
import { performance } from 'node:perf_hooks';
import { loopLag } from './observe/loop-lag.js';

export const TICK_MS = 50;

export interface Sweepable {
  /** Called every tick with the current time; returns nothing, closes what expired. */
  sweep(now: number): void;
}

export class Sweeper {
  now = Date.now();
  private readonly items = new Set<Sweepable>();
  private timer: NodeJS.Timeout | undefined;
  private tickDue = 0;

  add(s: Sweepable): void {
    this.items.add(s);
    if (this.timer === undefined) {
      this.now = Date.now();
      this.tickDue = performance.now() + TICK_MS;
      this.timer = setInterval(this.tick, TICK_MS);
      this.timer.unref();
    }
  }

  delete(s: Sweepable): void {
    this.items.delete(s);
    if (this.items.size === 0 && this.timer !== undefined) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }

  get size(): number {
    return this.items.size;
  }

  private readonly tick = (): void => {
    loopLag.late(this.tickDue);
    // Node schedules an interval's next run from the start of this one.
    this.tickDue = performance.now() + TICK_MS;
    const now = Date.now();
    this.now = now;
    for (const s of this.items) s.sweep(now);
  };
}
