import { z } from 'zod';
import { createLatencyProbe } from './latency-probe.js';
import type { LimitAlgorithm, LimitSample } from './limit.js';

export const gradient2OptionsSchema = z.strictObject({
  initialLimit: z
    .int()
    .min(1)
    .default(10)
    .describe(
      'The limit before the first sample. Slow start doubles it every round trip while latency is flat and requests wait, so a small start costs a few round trips; a large one floods a small target’s own queue, where priorities mean nothing.',
    ),
  minLimit: z.int().min(1).default(1),
  maxLimit: z.int().min(1).default(1000),
  tolerance: z
    .number()
    .min(1)
    .default(1.25)
    .describe(
      'How much slower than its baseline latency may get before the limit shrinks. Under overload the limit settles at about tolerance × capacity + queueSize, so latency at about baseline × (tolerance + queueSize / capacity). Below about 1.2 the latency noise of a real provider reads as a queue, and the limit falls short of the capacity.',
    ),
  longWindow: z.int().min(1).default(600).describe('Samples averaged by the long-term latency.'),
  shortWindow: z.int().min(1).default(10).describe('Samples averaged by the short-term latency.'),
  queueSize: z
    .number()
    .min(0)
    .default(2)
    .describe(
      'Headroom added to the limit while latency is within tolerance: with smoothing 0.2, about +0.4 a round trip. The steady state is where the gradient is 1 − queueSize / limit.',
    ),
  smoothing: z
    .number()
    .gt(0)
    .max(1)
    .default(0.2)
    .describe('The fraction of the way to the new limit taken per round trip (about limit samples).'),
  backoffRatio: z
    .number()
    .gt(0)
    .lt(1)
    .default(0.9)
    .describe('The limit is multiplied by this on a dropped request, at most once per window of requests.'),
  probeMultiplier: z
    .number()
    .positive()
    .default(30)
    .describe('A higher baseline is checked about every probeMultiplier × limit samples, jittered 50–100%.'),
  probeSamples: z.int().min(1).default(20).describe('Samples averaged on each side of a baseline check.'),
  slowStart: z
    .boolean()
    .default(true)
    .describe(
      'Until latency first grows beyond tolerance, a drop, or a round trip in which nobody waits, add 1 to the limit per answer while requests wait: it doubles every round trip, like TCP slow start. Afterwards it grows this way only while latency stays within half the tolerance, by at most a quarter a round trip.',
    ),
  cutBelow: z
    .number()
    .gt(0)
    .max(1)
    .default(0.9)
    .describe(
      'When the gradient falls to this or below (a queue well beyond queueSize), the limit is cut at once to concurrency × gradient + queueSize, at most once per round trip, instead of smoothly.',
    ),
});

export type Gradient2Options = z.infer<typeof gradient2OptionsSchema>;

/**
 * Netflix's Gradient2: the limit follows `gradient = tolerance × baseline / shortTermLatency`, the
 * ratio of latency as it normally is to latency right now, clamped to [0.5, 1], plus `queueSize` of
 * headroom to find more capacity. Changes from Netflix concurrency-limits, each reproduced by the
 * tests (test/unit/flow/limits.test.ts, overload.test.ts):
 *
 * - Netflix's baseline is the long-term average itself. Against a target that is saturated for good,
 *   the average soon includes the queue, the gradient is 1 again, and the limit climbs a little more;
 *   the average follows, and so on: latency ratchets up until the clients run out (in the simulation:
 *   6× capacity, 3× the no-load latency, within 2,000 samples). Not growing when app-limited only
 *   stops this at twice the offered concurrency. Here the baseline follows the long-term average down
 *   at once, but up only when two probes in a row show that the higher latency is not a queue
 *   (`createLatencyProbe`, which lowers the limit for a moment rather than raising it).
 * - Netflix applies `smoothing` per sample, so per round trip the limit moves `limit` times as far;
 *   with a round trip of lag it swings 10–60 around a capacity of 20 even with a perfect baseline.
 *   Here a round trip's worth of samples moves it `smoothing` of the way.
 * - Netflix ignores drops and averages their latency: fast 429s look like a fast target, timeouts
 *   like a steady one, and both let the limit grow. Here a drop backs off and is not a latency.
 * - Netflix starts at a guess and moves by `smoothing` either way, so a guess far above capacity
 *   keeps a queue at the target for many round trips (from 100 against 16 slots: 5 s and more).
 *   Here the limit starts small and grows like TCP slow start while latency is flat, and a queue
 *   beyond `queueSize` is cut at once, by Little's law, once per round trip (`cutBelow`).
 * - The limit grows only on answers that found others waiting for a permit: demand that never
 *   reaches the limit says nothing about a higher one.
 */
export function createGradient2(
  options: z.input<typeof gradient2OptionsSchema> = {},
  random: () => number = Math.random,
): LimitAlgorithm {
  const o = gradient2OptionsSchema.parse(options);
  const clamp = (x: number) => Math.min(o.maxLimit, Math.max(o.minLimit, x));
  const long = createAverage(o.longWindow);
  const short = createAverage(o.shortWindow);
  // The concurrency the short-term latency was measured at.
  const shortInflight = createAverage(o.shortWindow);
  const probe = createLatencyProbe(o.probeSamples, 'lower');
  let estimate = clamp(o.initialLimit);
  let baseline = Number.POSITIVE_INFINITY;
  let untilProbe = 0;
  /** A probe found no queue: the next one, soon, decides. */
  let confirming = false;
  let backoffWindow = 0;
  /** Answers still to come from requests admitted before the last cut. */
  let cutWindow = 0;
  let slowStart = o.slowStart;
  /** Answers in a row that found nobody waiting for a permit. */
  let unused = 0;
  const scheduleProbe = () => {
    untilProbe = Math.ceil(o.probeMultiplier * estimate * (0.5 + random() / 2));
  };
  scheduleProbe();
  const current = () => clamp(Math.floor(probe.running ? probe.limit : estimate));

  return {
    name: 'gradient2',
    get limit() {
      return current();
    },
    update(sample: LimitSample) {
      backoffWindow--;
      cutWindow--;
      if (sample.dropped) {
        // A drop says nothing about latency: back off once per window of requests, learn nothing.
        probe.stop();
        slowStart = false;
        if (backoffWindow <= 0) {
          backoffWindow = Math.floor(estimate);
          estimate = clamp(estimate * o.backoffRatio);
        }
        return current();
      }
      const shortTerm = short.add(sample.latencyMs);
      const concurrency = shortInflight.add(sample.inflight);
      let longTerm = long.add(sample.latencyMs);
      // After a long overload the average is far above current latency: let it catch up quickly.
      if (longTerm / shortTerm > 2) longTerm = long.scale(0.95);
      // The first few samples are too few to average: one fast answer would set the baseline for good.
      if (long.count >= o.shortWindow) baseline = Math.min(baseline, longTerm);
      if (probe.running) {
        const verdict = probe.observe(sample);
        if (verdict?.queueing === false && confirming) {
          baseline = verdict.meanLatencyMs;
          confirming = false;
        } else if (verdict?.queueing === false) {
          // One mistaken verdict would raise latency for good (the ratchet): ask again soon.
          confirming = true;
          untilProbe = Math.ceil(2 * estimate);
        } else if (verdict) confirming = false;
        return current();
      }
      // Below half the limit, the limit is not what shapes latency: learn nothing (Netflix's fix
      // for its upward drift of app-limited limits).
      if (sample.inflight * 2 < estimate) return current();
      // Latency has been above the baseline for a while: is that a queue, or the target's new normal?
      if (!slowStart && --untilProbe <= 0 && longTerm > baseline * 1.05) {
        scheduleProbe();
        probe.start(estimate);
        return current();
      }
      const gradient = Math.max(0.5, Math.min(1, (o.tolerance * baseline) / shortTerm));
      const target = estimate * gradient + o.queueSize;
      if (target < estimate) {
        slowStart = false;
        if (gradient > o.cutBelow) {
          estimate = clamp(estimate + ((target - estimate) * o.smoothing) / estimate);
        } else if (cutWindow <= 0) {
          // A queue well beyond queueSize. Cut at once to what the target serves within tolerance,
          // from the concurrency this latency was measured at (Little's law; the limit may have
          // moved since), then wait for the answers of requests admitted before the cut: they
          // still show the old queue.
          cutWindow = Math.floor(estimate);
          estimate = clamp(Math.min(estimate, concurrency * gradient + o.queueSize));
        }
        return current();
      }
      if (!sample.atLimit) {
        // Demand does not reach the limit: nothing says a higher one would be used. A round trip
        // of that ends slow start: the limit has caught up with demand.
        if (++unused >= estimate) slowStart = false;
        return current();
      }
      unused = 0;
      const flat = shortTerm <= baseline * (1 + (o.tolerance - 1) / 2);
      if ((slowStart || flat) && sample.latencyMs <= o.tolerance * baseline) {
        // Latency is flat and requests wait: one more per such answer, as TCP slow start does,
        // but never past `reach` times the concurrency this answer was served at. News of a
        // queue takes a round trip to arrive, and doubling every round trip overshoots by as
        // much: once demand has been met, growth slows to a quarter per round trip.
        const reach = Math.max(sample.inflight + 1, sample.inflight * (slowStart ? 2 : 1.25));
        estimate = clamp(Math.max(estimate, Math.min(estimate + 1, reach)));
        return current();
      }
      estimate = clamp(estimate + ((target - estimate) * o.smoothing) / estimate);
      return current();
    },
  };
}

/** An exponentially weighted average that is the plain average until it has seen about `window / 2` samples. */
function createAverage(window: number) {
  const weight = 2 / (window + 1);
  let value = 0;
  let count = 0;
  return {
    add(x: number): number {
      count++;
      value += (x - value) * Math.max(weight, 1 / count);
      return value;
    },
    scale(factor: number): number {
      value *= factor;
      return value;
    },
    get count(): number {
      return count;
    },
  };
}
