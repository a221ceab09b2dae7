import { z } from 'zod';
import type { LimitAlgorithm } from './limit.js';

export const fixedLimitOptionsSchema = z.strictObject({
  limit: z.int().min(1).default(20).describe('The limit, whatever the samples say.'),
});

export type FixedLimitOptions = z.infer<typeof fixedLimitOptionsSchema>;

/** A constant limit: for a target whose capacity is known and reserved, and as a baseline in benchmarks. */
export function createFixedLimit(options: z.input<typeof fixedLimitOptionsSchema> = {}): LimitAlgorithm {
  const { limit } = fixedLimitOptionsSchema.parse(options);
  return { name: 'fixed', limit, update: () => limit };
}
