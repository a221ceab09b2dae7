import { type Priority, priorities } from '../flow/priority.js';
import type { Clock, Timer } from '../time/clock.js';

/** What one target's flow state looks like at one instant (a slice of FlowState.snapshot()). */
export interface FlowSample {
  target: string;
  limit: number;
  inflight: number;
  queued: number;
  /** Cumulative since the target's limiter was created. */
  shedByPriority: Record<Priority, number>;
  breaker: string;
  latencyMs: number | null;
}

/** Columnar series aligned to `t`, ready for a chart; `null` where a target did not exist yet (or any more). */
export interface FlowHistoryView {
  intervalMs: number;
  /** Epoch milliseconds of each sample. */
  t: number[];
  targets: Array<{
    target: string;
    limit: Array<number | null>;
    inflight: Array<number | null>;
    queued: Array<number | null>;
    /** Requests shed in the interval ending at each `t` (not cumulative), per priority. */
    shed: Record<Priority, Array<number | null>>;
    breaker: Array<string | null>;
    latencyMs: Array<number | null>;
  }>;
}

export interface FlowHistory {
  /** The samples of the last `seconds`, oldest first. */
  read(seconds: number): FlowHistoryView;
  stop(): void;
}

export interface FlowHistoryOptions {
  sample: () => FlowSample[];
  clock: Clock;
  /** Epoch milliseconds, for the chart's time axis (Clock.now() is only good for differences). */
  wallTime?: () => number;
  intervalMs?: number;
  /** Samples kept; the oldest is forgotten first. */
  capacity?: number;
}

interface Tick {
  t: number;
  /** Like FlowSample, with shed counts turned into this interval's increments. */
  targets: Map<string, FlowSample>;
}

export const flowHistoryDefaults = { intervalMs: 2_000, capacity: 450 } as const;

/**
 * A memory ring of flow-state samples taken every 2 s (15 minutes by default), so the console
 * can chart limits, queues and shedding over time without an external metrics store.
 */
export function recordFlowHistory(options: FlowHistoryOptions): FlowHistory {
  const intervalMs = options.intervalMs ?? flowHistoryDefaults.intervalMs;
  const capacity = options.capacity ?? flowHistoryDefaults.capacity;
  const wallTime = options.wallTime ?? Date.now;
  const ticks: Tick[] = [];
  /** Each target's cumulative shed counts at the previous tick. */
  let previousShed = new Map<string, Record<Priority, number>>();
  let timer: Timer | undefined;

  const take = () => {
    const targets = new Map<string, FlowSample>();
    const cumulative = new Map<string, Record<Priority, number>>();
    for (const sample of options.sample()) {
      const before = previousShed.get(sample.target);
      const shedByPriority = { ...sample.shedByPriority };
      for (const p of priorities) {
        const was = before?.[p] ?? 0;
        // A count that went down belongs to a limiter rebuilt by a reload: it counts from zero.
        shedByPriority[p] =
          sample.shedByPriority[p] >= was ? sample.shedByPriority[p] - was : sample.shedByPriority[p];
      }
      cumulative.set(sample.target, sample.shedByPriority);
      targets.set(sample.target, { ...sample, shedByPriority });
    }
    previousShed = cumulative;
    if (ticks.length >= capacity) ticks.shift();
    ticks.push({ t: wallTime(), targets });
    timer = options.clock.setTimer(intervalMs, take);
  };
  take();

  return {
    read(seconds) {
      const since = wallTime() - seconds * 1000;
      const window = ticks.filter((tick) => tick.t > since);
      const ids = [...new Set(window.flatMap((tick) => [...tick.targets.keys()]))].sort();
      const column = <T>(id: string, pick: (s: FlowSample) => T): Array<T | null> =>
        window.map((tick) => {
          const sample = tick.targets.get(id);
          return sample ? pick(sample) : null;
        });
      return {
        intervalMs,
        t: window.map((tick) => tick.t),
        targets: ids.map((id) => ({
          target: id,
          limit: column(id, (s) => s.limit),
          inflight: column(id, (s) => s.inflight),
          queued: column(id, (s) => s.queued),
          shed: Object.fromEntries(
            priorities.map((p) => [p, column(id, (s) => s.shedByPriority[p])]),
          ) as Record<Priority, Array<number | null>>,
          breaker: column(id, (s) => s.breaker),
          latencyMs: column(id, (s) => s.latencyMs),
        })),
      };
    },
    stop() {
      timer?.cancel();
    },
  };
}
