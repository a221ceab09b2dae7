import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createLimitAlgorithm, limitAlgorithmSchema } from '../../../src/flow/limit-algorithms.js';
import { createRng } from '../../../src/sim/rng.js';

const build = (input: unknown) => createLimitAlgorithm(limitAlgorithmSchema.parse(input), createRng(1).next);

describe('limitAlgorithmSchema and createLimitAlgorithm', () => {
  it('defaults to Gradient2, with every option filled in', () => {
    const spec = limitAlgorithmSchema.parse({});
    expect(spec).toMatchObject({
      algorithm: 'gradient2',
      initialLimit: 10,
      tolerance: 1.25,
      queueSize: 2,
      longWindow: 600,
      slowStart: true,
    });
    expect(build({}).name).toBe('gradient2');
  });

  it('builds each algorithm by name, starting at its initial limit', () => {
    // Gradient2 starts small and finds the capacity by slow start; the others start at 20.
    for (const [algorithm, initial] of [
      ['gradient2', 10],
      ['vegas', 20],
      ['aimd', 20],
      ['fixed', 20],
    ] as const) {
      const limit = build({ algorithm });
      expect(limit.name).toBe(algorithm);
      expect(limit.limit).toBe(initial);
    }
    expect(build({ algorithm: 'aimd', initialLimit: 5 }).limit).toBe(5);
  });

  it('keeps a fixed limit whatever the samples say', () => {
    const fixed = build({ algorithm: 'fixed', limit: 7 });
    expect(fixed.update({ latencyMs: 60_000, inflight: 7, atLimit: true, dropped: true, at: 1 })).toBe(7);
    expect(fixed.update({ latencyMs: 1, inflight: 7, atLimit: true, dropped: false, at: 2 })).toBe(7);
    expect(fixed.limit).toBe(7);
  });

  it('rejects an unknown algorithm, options of another algorithm, and crossed bounds, naming the field', () => {
    const issues = (input: unknown) =>
      limitAlgorithmSchema
        .safeParse(input)
        .error?.issues.map((issue) => [issue.path.join('.'), issue.message]);
    expect(issues({ algorithm: 'bbr' })).toEqual([['algorithm', expect.stringContaining("'gradient2'")]]);
    expect(issues({ algorithm: 'vegas', tolerance: 2 })).toEqual([['', 'Unrecognized key: "tolerance"']]);
    expect(issues({ minLimit: 10, maxLimit: 5 })).toEqual([
      ['minLimit', 'minLimit must not be greater than maxLimit'],
    ]);
    expect(issues({ algorithm: 'aimd', backoffRatio: 1 })?.[0]?.[0]).toBe('backoffRatio');
  });

  it('can be written out as JSON Schema, for editors of the configuration file', () => {
    const schema = z.toJSONSchema(limitAlgorithmSchema, { io: 'input' }) as { oneOf?: unknown[] };
    expect(schema.oneOf).toHaveLength(4);
  });
});
