import type { LimitSample } from './limit.js';

/** What a probe learned about latency at the limit it started from. */
export interface ProbeVerdict {
  /** Latency moved along with concurrency: the target was queueing, its latency is not a no-load latency. */
  queueing: boolean;
  meanLatencyMs: number;
  minLatencyMs: number;
}

/**
 * Which way a probe moves the limit. `raise`: by a fifth (at least 1); a queue then grows for
 * everybody while it lasts. `lower`: by about a seventh (at least 1); a queue shrinks, and a target
 * with none loses that share of its concurrency while it lasts, which a gateway with its own
 * admission queue absorbs as a short wait.
 */
export type ProbeDirection = 'raise' | 'lower';

/**
 * An experiment that tells a no-load latency from a queue, without draining the limit. It holds the
 * limit and averages `samples` requests; then moves the limit (see `ProbeDirection`) and averages
 * `samples` requests started at the moved limit. A queue grows and shrinks with concurrency, a
 * no-load latency does not: latency that moved by a quarter as much as concurrency, or more, means
 * queueing. A quarter rather than a half because the two mistakes differ: a false "queueing" only
 * postpones learning to the next probe, a false "not queueing" is the ratchet all over again. If
 * the samples do not come from the moved limit within four round trips (the clients want no more
 * than the limit they had), there is no verdict.
 * While it runs, the limit algorithm holds still and lets the probe set the limit.
 */
export function createLatencyProbe(samples: number, direction: ProbeDirection = 'raise') {
  let phase: 'idle' | 'before' | 'after' = 'idle';
  let held = 0;
  let moved = 0;
  let patience = 0;
  /** Answers still to come from requests started before the move. */
  let stale = 0;
  let before = { count: 0, latency: 0, inflight: 0, min: Number.POSITIVE_INFINITY };
  let after = { count: 0, latency: 0, inflight: 0 };
  return {
    get running() {
      return phase !== 'idle';
    },
    /** The limit the experiment holds. */
    get limit() {
      return phase === 'after' ? moved : held;
    },
    start(limit: number) {
      held = Math.floor(limit);
      moved =
        direction === 'raise'
          ? Math.max(held + 1, Math.round(held * 1.2))
          : Math.min(held - 1, Math.round(held * 0.85));
      // A limit of 1 cannot be lowered: nothing to learn.
      phase = moved >= 1 ? 'before' : 'idle';
      before = { count: 0, latency: 0, inflight: 0, min: Number.POSITIVE_INFINITY };
      after = { count: 0, latency: 0, inflight: 0 };
    },
    stop() {
      phase = 'idle';
    },
    observe(sample: LimitSample): ProbeVerdict | undefined {
      if (phase === 'before') {
        before.count++;
        before.latency += sample.latencyMs;
        before.inflight += sample.inflight;
        before.min = Math.min(before.min, sample.latencyMs);
        if (before.count === samples) {
          phase = 'after';
          // Four round trips to get there, then the samples themselves.
          patience = 4 * Math.max(held, moved) + samples;
          // After a move down, answers still show the old queue for a while: those of the `held`
          // requests in flight at the move (one may have started at a lull, so concurrency does
          // not tell them apart), then those of the requests that queued behind them.
          stale = direction === 'lower' ? held + moved : 0;
        }
        return undefined;
      }
      if (phase !== 'after') return undefined;
      if (--patience < 0) {
        phase = 'idle';
        return undefined;
      }
      // Only requests started at the moved limit count.
      if (stale > 0) {
        stale--;
        return undefined;
      }
      if (direction === 'raise' ? sample.inflight < moved : sample.inflight > moved) return undefined;
      after.count++;
      after.latency += sample.latencyMs;
      after.inflight += sample.inflight;
      if (after.count < samples) return undefined;
      phase = 'idle';
      // Both as growth from the smaller concurrency to the larger, so the quarter means the same.
      const [low, high] = direction === 'raise' ? [before, after] : [after, before];
      const latencyGrowth = (high.latency * low.count) / (low.latency * high.count) - 1;
      const inflightGrowth = (high.inflight * low.count) / (low.inflight * high.count) - 1;
      return {
        queueing: latencyGrowth >= inflightGrowth / 4,
        meanLatencyMs: before.latency / before.count,
        minLatencyMs: before.min,
      };
    },
  };
}
