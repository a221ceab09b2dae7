import type { Clock, Timer } from '../time/clock.js';

/**
 * Runs a pass (rollups, then retention) every `intervalMs` on `clock`: the next pass is set
 * when the previous one ends, so passes never overlap, and a failed pass is reported and tried
 * again at the next tick.
 */
export interface MaintenanceJob {
  /** Resolves when the pass in progress, if any, has ended; no pass starts after. */
  stop(): Promise<void>;
}

/** Timers that never keep the process alive on their own. */
const backgroundClock: Clock = {
  now: () => performance.now(),
  setTimer(ms, fn) {
    const handle = setTimeout(fn, Math.max(0, ms));
    handle.unref();
    return { cancel: () => clearTimeout(handle) };
  },
};

export function startMaintenanceJob(options: {
  /** Default: the system's timers, unref'd. */
  clock?: Clock;
  intervalMs: number;
  pass: () => Promise<void>;
  onError: (error: unknown) => void;
  /** The first pass runs after this long (default: at once). */
  firstDelayMs?: number;
}): MaintenanceJob {
  let stopped = false;
  let timer: Timer | undefined;
  let running: Promise<void> | undefined;

  const schedule = (ms: number) => {
    if (stopped) return;
    timer = (options.clock ?? backgroundClock).setTimer(ms, () => {
      timer = undefined;
      running = options
        .pass()
        .catch(options.onError)
        .finally(() => {
          running = undefined;
          schedule(options.intervalMs);
        });
    });
  };
  schedule(options.firstDelayMs ?? 0);

  return {
    async stop() {
      stopped = true;
      timer?.cancel();
      await running;
    },
  };
}
