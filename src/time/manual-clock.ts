import type { Clock, Timer } from './clock.js';

interface Scheduled {
  at: number;
  seq: number;
  fn: () => void;
  cancelled: boolean;
}

/** A clock that moves only when told to; timers fire in time order, ties in creation order. */
export class ManualClock implements Clock {
  private time: number;
  private seq = 0;
  private queue: Scheduled[] = [];

  constructor(start = 0) {
    this.time = start;
  }

  now(): number {
    return this.time;
  }

  setTimer(ms: number, fn: () => void): Timer {
    const entry: Scheduled = { at: this.time + Math.max(0, ms), seq: this.seq++, fn, cancelled: false };
    this.queue.push(entry);
    return {
      cancel: () => {
        entry.cancelled = true;
      },
    };
  }

  /** Timers not yet fired or cancelled. */
  get pending(): number {
    return this.queue.filter((e) => !e.cancelled).length;
  }

  /** Moves time forward by `ms`, firing every timer that falls due (including ones set by fired timers). */
  advance(ms: number): void {
    this.advanceTo(this.time + ms);
  }

  advanceTo(target: number): void {
    for (;;) {
      const next = this.earliest();
      if (!next || next.at > target) break;
      this.queue.splice(this.queue.indexOf(next), 1);
      this.time = next.at;
      next.fn();
    }
    this.time = Math.max(this.time, target);
  }

  /** Fires timers one by one until none are left; returns the time reached. */
  runAll(limit = 1_000_000): number {
    for (let i = 0; i < limit; i++) {
      const next = this.earliest();
      if (!next) return this.time;
      this.advanceTo(next.at);
    }
    throw new Error(`ManualClock.runAll: more than ${limit} timers, a timer probably re-arms itself forever`);
  }

  private earliest(): Scheduled | undefined {
    let best: Scheduled | undefined;
    for (const e of this.queue) {
      if (e.cancelled) continue;
      if (!best || e.at < best.at || (e.at === best.at && e.seq < best.seq)) best = e;
    }
    this.queue = this.queue.filter((e) => !e.cancelled);
    return best;
  }
}
