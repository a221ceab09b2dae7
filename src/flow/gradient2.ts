import { z } from 'zod';
import type { LimitAlgorithm, LimitSample } from './limit.js';
import { createLatencyProbe } from './vegas.js';

export const gradient2OptionsSchema = z.strictObject({
  initialLimit: z.int().min(1).default(20).describe('The limit before the first sample.'),
  minLimit: z.int().min(1).default(1),
  maxLimit: z.int().min(1).default(1000),
  tolerance: z
    .number()
    .min(1)
    .default(1.25)
    .describe(
      'How much slower than its baseline latency may get before the limit shrinks. The steady state is a limit of about tolerance × capacity + queueSize, so latency of about baseline × (tolerance + queueSize / capacity): Netflix’s 1.5 puts a 10-slot target at 1.9× its no-load latency, 1.25 at 1.65×.',
    ),
  longWindow: z.int().min(1).default(600).describe('Samples averaged by the long-term latency.'),
  shortWindow: z.int().min(1).default(10).describe('Samples averaged by the short-term latency.'),
  queueSize: z
    .number()
    .min(0)
    .default(4)
    .describe(
      'Headroom added to the limit while latency is within tolerance: with smoothing 0.2, about +0.8 a round trip. The steady state is where the gradient is 1 − queueSize / limit.',
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
});

export type Gradient2Options = z.infer<typeof gradient2OptionsSchema>;

/**
 * Netflix's Gradient2: the limit follows `gradient = tolerance × baseline / shortTermLatency`, the
 * ratio of latency as it normally is to latency right now, clamped to [0.5, 1], plus `queueSize` of
 * headroom to find more capacity. Three changes from Netflix concurrency-limits, each reproduced by the
 * tests:
 *
 * - Netflix's baseline is the long-term average itself. Against a target that is saturated for good,
 *   the average soon includes the queue, the gradient is 1 again, and the limit climbs a little more;
 *   the average follows, and so on: latency ratchets up until the clients run out (in the simulation:
 *   6× capacity, 3× the no-load latency, within 2,000 samples). Not growing when app-limited only
 *   stops this at twice the offered concurrency. Here the baseline follows the long-term average down
 *   at once, but up only when a probe shows that the higher latency is not a queue
 *   (`createLatencyProbe`).
 * - Netflix applies `smoothing` per sample, so per round trip the limit moves `limit` times as far;
 *   with a round trip of lag it swings 10–60 around a capacity of 20 even with a perfect baseline.
 *   Here a round trip's worth of samples moves it `smoothing` of the way.
 * - Netflix ignores drops and averages their latency: fast 429s look like a fast target, timeouts
 *   like a steady one, and both let the limit grow. Here a drop backs off and is not a latency.
 */
export function createGradient2(
  options: z.input<typeof gradient2OptionsSchema> = {},
  random: () => number = Math.random,
): LimitAlgorithm {
  const o = gradient2OptionsSchema.parse(options);
  const clamp = (x: number) => Math.min(o.maxLimit, Math.max(o.minLimit, x));
  const long = createAverage(o.longWindow);
  const short = createAverage(o.shortWindow);
  const probe = createLatencyProbe(o.probeSamples);
  let estimate = clamp(o.initialLimit);
  let baseline = Number.POSITIVE_INFINITY;
  let untilProbe = 0;
  let backoffWindow = 0;
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
      if (sample.dropped) {
        // A drop says nothing about latency: back off once per window of requests, learn nothing.
        probe.stop();
        if (backoffWindow <= 0) {
          backoffWindow = Math.floor(estimate);
          estimate = clamp(estimate * o.backoffRatio);
        }
        return current();
      }
      const shortTerm = short.add(sample.latencyMs);
      let longTerm = long.add(sample.latencyMs);
      // After a long overload the average is far above current latency: let it catch up quickly.
      if (longTerm / shortTerm > 2) longTerm = long.scale(0.95);
      baseline = Math.min(baseline, longTerm);
      if (probe.running) {
        const verdict = probe.observe(sample);
        if (verdict?.queueing === false) baseline = verdict.meanLatencyMs;
        return current();
      }
      // Below half the limit, the limit is not what shapes latency: learn nothing (Netflix's fix
      // for its upward drift of app-limited limits).
      if (sample.inflight * 2 < estimate) return current();
      // Latency has been above the baseline for a while: is that a queue, or the target's new normal?
      if (--untilProbe <= 0 && longTerm > baseline * 1.05) {
        scheduleProbe();
        probe.start(estimate);
        return current();
      }
      const gradient = Math.max(0.5, Math.min(1, (o.tolerance * baseline) / shortTerm));
      const target = estimate * gradient + o.queueSize;
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
  };
}
