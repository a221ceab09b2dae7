import { z } from 'zod';
import type { LimitAlgorithm, LimitSample } from './limit.js';

export const aimdOptionsSchema = z.strictObject({
  initialLimit: z.int().min(1).default(20).describe('The limit before the first sample.'),
  minLimit: z.int().min(1).default(1),
  maxLimit: z.int().min(1).default(1000),
  timeoutMs: z
    .number()
    .positive()
    .default(5000)
    .describe(
      'Latency above this counts as congestion, like a drop. 5 s of time to first token means the provider is queueing us.',
    ),
  increase: z.number().positive().default(1).describe('Added to the limit per round trip of fast samples.'),
  backoffRatio: z
    .number()
    .gt(0)
    .lt(1)
    .default(0.9)
    .describe('The limit is multiplied by this on congestion, at most once per window of requests.'),
});

export type AimdOptions = z.infer<typeof aimdOptionsSchema>;

/**
 * Additive increase, multiplicative decrease: TCP Reno's rule, with latency above `timeoutMs` as
 * a loss. Paced like TCP rather than like Netflix's AIMDLimit, which adds 1 per sample (doubling the
 * limit every round trip) and multiplies by 0.9 per slow sample: a whole round trip of samples then
 * reports the same overshoot, and the limit collapses (it swings 1–57 around a capacity of 20 in the
 * simulation). Here the limit grows by `increase` per round trip (about `limit` samples) and backs
 * off once per window of requests: the `limit` samples after a backoff were mostly started before it
 * and carry no news.
 */
export function createAimd(options: z.input<typeof aimdOptionsSchema> = {}): LimitAlgorithm {
  const o = aimdOptionsSchema.parse(options);
  const clamp = (x: number) => Math.min(o.maxLimit, Math.max(o.minLimit, x));
  let estimate = clamp(o.initialLimit);
  let backoffWindow = 0;
  return {
    name: 'aimd',
    get limit() {
      return Math.floor(estimate);
    },
    update(sample: LimitSample) {
      backoffWindow--;
      if (sample.dropped || sample.latencyMs > o.timeoutMs) {
        if (backoffWindow <= 0) {
          backoffWindow = Math.floor(estimate);
          estimate = clamp(estimate * o.backoffRatio);
        }
      } else if (sample.inflight * 2 >= estimate) {
        // Below half the limit we learn nothing about a higher one: growing would drift upwards.
        estimate = clamp(estimate + o.increase / estimate);
      }
      return Math.floor(estimate);
    },
  };
}
