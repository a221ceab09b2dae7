import { z } from 'zod';
import { createLatencyProbe } from './latency-probe.js';
import type { LimitAlgorithm, LimitSample } from './limit.js';

export const vegasOptionsSchema = z.strictObject({
  initialLimit: z.int().min(1).default(20).describe('The limit before the first sample.'),
  minLimit: z.int().min(1).default(1),
  maxLimit: z.int().min(1).default(1000),
  probeMultiplier: z
    .number()
    .positive()
    .default(30)
    .describe(
      'The no-load latency is re-learned about every probeMultiplier × limit samples (as many round trips), jittered 50–100% so that limiters do not probe in step.',
    ),
  probeSamples: z
    .int()
    .min(1)
    .default(20)
    .describe(
      'Samples averaged on each side of a probe. With 10, ±10% latency noise fooled probes into a ratchet in 2 of 24 simulated 50,000-sample runs; with 20, in none of 540.',
    ),
  backoffRatio: z
    .number()
    .gt(0)
    .lt(1)
    .default(0.9)
    .describe('The limit is multiplied by this on a dropped request, at most once per window of requests.'),
});

export type VegasOptions = z.infer<typeof vegasOptionsSchema>;

/**
 * TCP Vegas for request concurrency: the target's queue is estimated as
 * `limit × (1 − noLoadLatency / latency)` and the limit is steered to keep it between
 * `alpha = 3·log10(limit)` and `beta = 6·log10(limit)` requests: enough to keep the target busy, short
 * enough that nobody waits long.
 *
 * The no-load latency is the minimum latency seen. It only goes down by itself, so a target that
 * became slower for good (a bigger model revision, longer prompts) would leave it stale: Vegas would
 * read the whole latency as queue and starve the target. Hence Netflix's periodic probe, which
 * re-learns it from the next sample. It does not drain the limit to a minimum to see an empty target,
 * as Netflix's Gradient (v1) and Envoy's adaptive concurrency do: every request beyond the drained
 * limit is rejected for a round trip, a burst of errors at every probe.
 *
 * A bare reset has its own failure, which the tests reproduce: a target that is always saturated
 * never shows its no-load latency, so the next sample includes the queue Vegas keeps on purpose.
 * Taken as the no-load latency, it lets Vegas add another alpha to beta requests of queue, and each
 * probe ratchets latency up until the clients run out (in the simulation: 6× capacity, 3× the
 * no-load latency). So the re-learned latency is adopted only if the probe's experiment shows that
 * the target is not queueing (see `createLatencyProbe`).
 */
export function createVegas(
  options: z.input<typeof vegasOptionsSchema> = {},
  random: () => number = Math.random,
): LimitAlgorithm {
  const o = vegasOptionsSchema.parse(options);
  const clamp = (x: number) => Math.min(o.maxLimit, Math.max(o.minLimit, x));
  const probe = createLatencyProbe(o.probeSamples);
  let estimate = clamp(o.initialLimit);
  let noLoad = 0;
  let untilProbe = 0;
  let backoffWindow = 0;
  const scheduleProbe = () => {
    untilProbe = Math.ceil(o.probeMultiplier * estimate * (0.5 + random() / 2));
  };
  scheduleProbe();
  const current = () => clamp(Math.floor(probe.running ? probe.limit : estimate));

  return {
    name: 'vegas',
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
      if (noLoad === 0 || sample.latencyMs < noLoad) noLoad = sample.latencyMs;
      if (probe.running) {
        const verdict = probe.observe(sample);
        if (verdict?.queueing === false) noLoad = verdict.minLatencyMs;
        return current();
      }
      // Below half the limit, the limit is not what shapes latency: learn nothing (this is the fix
      // for Netflix's upward drift of app-limited limits).
      if (sample.inflight * 2 < estimate) return current();
      if (--untilProbe <= 0) {
        scheduleProbe();
        probe.start(estimate);
        return current();
      }
      const log = Math.max(1, Math.log10(estimate));
      const queue = estimate * (1 - noLoad / sample.latencyMs);
      // Steps are per round trip (about `estimate` samples): a sample reports the queue as it was a
      // round trip ago, and Netflix's per-sample steps overshoot the alpha–beta band many times over
      // within that round trip (the limit swings 7–90 around a capacity of 20 in the simulation).
      const perSample = 1 / estimate;
      if (queue <= log) estimate = clamp(estimate + 6 * log * perSample);
      else if (queue < 3 * log) estimate = clamp(estimate + log * perSample);
      // Far above beta (a generous initial limit, lost capacity), shed half the excess per round trip.
      else if (queue > 6 * log) estimate = clamp(estimate - Math.max(log, (queue - 6 * log) / 2) * perSample);
      return current();
    },
  };
}
