/**
 * Time as a dependency. Every mechanism that waits or measures takes a Clock, so tests
 * drive it with a ManualClock and assert exact times instead of wall-clock thresholds.
 */
export interface Clock {
  /** Milliseconds; only differences are meaningful. */
  now(): number;
  /** Runs `fn` once after `ms`; the returned handle cancels it. */
  setTimer(ms: number, fn: () => void): Timer;
}

export interface Timer {
  cancel(): void;
}

export const systemClock: Clock = {
  now: () => performance.now(),
  setTimer(ms, fn) {
    // Node clamps a 0 ms timeout to 1 ms; "now" means the next turn of the event loop.
    if (ms <= 0) {
      const immediate = setImmediate(fn);
      return { cancel: () => clearImmediate(immediate) };
    }
    const handle = setTimeout(fn, ms);
    return { cancel: () => clearTimeout(handle) };
  },
};
