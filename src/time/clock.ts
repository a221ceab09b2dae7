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
    const handle = setTimeout(fn, Math.max(0, ms));
    return { cancel: () => clearTimeout(handle) };
  },
};
