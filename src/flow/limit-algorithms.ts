import { z } from 'zod';
import { aimdOptionsSchema, createAimd } from './aimd.js';
import { createFixedLimit, fixedLimitOptionsSchema } from './fixed-limit.js';
import { createGradient2, gradient2OptionsSchema } from './gradient2.js';
import type { LimitAlgorithm } from './limit.js';
import { createVegas, vegasOptionsSchema } from './vegas.js';

/**
 * How a target's concurrency limit is chosen, as written in configuration: `algorithm` and that
 * algorithm's options, every option defaulted. Without `algorithm`, Gradient2.
 */
export const limitAlgorithmSchema = z
  .discriminatedUnion('algorithm', [
    gradient2OptionsSchema.extend({ algorithm: z.literal('gradient2').default('gradient2') }),
    vegasOptionsSchema.extend({ algorithm: z.literal('vegas') }),
    aimdOptionsSchema.extend({ algorithm: z.literal('aimd') }),
    fixedLimitOptionsSchema.extend({ algorithm: z.literal('fixed') }),
  ])
  .refine((spec) => spec.algorithm === 'fixed' || spec.minLimit <= spec.maxLimit, {
    message: 'minLimit must not be greater than maxLimit',
    path: ['minLimit'],
  });

export type LimitAlgorithmSpec = z.infer<typeof limitAlgorithmSchema>;

/** Builds the algorithm a parsed spec names; `random` only jitters probes, so tests pass a seeded one. */
export function createLimitAlgorithm(
  spec: LimitAlgorithmSpec,
  random: () => number = Math.random,
): LimitAlgorithm {
  switch (spec.algorithm) {
    case 'gradient2': {
      const { algorithm: _, ...options } = spec;
      return createGradient2(options, random);
    }
    case 'vegas': {
      const { algorithm: _, ...options } = spec;
      return createVegas(options, random);
    }
    case 'aimd': {
      const { algorithm: _, ...options } = spec;
      return createAimd(options);
    }
    case 'fixed': {
      const { algorithm: _, ...options } = spec;
      return createFixedLimit(options);
    }
  }
}
