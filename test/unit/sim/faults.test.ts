import { describe, expect, it } from 'vitest';
import { FaultTimeline, faultSchema } from '../../../src/sim/faults.js';
import { createRng } from '../../../src/sim/rng.js';

const parse = (input: unknown) => faultSchema.parse(input);

describe('FaultTimeline', () => {
  it('applies a fault only inside its window', () => {
    const timeline = new FaultTimeline(createRng(1));
    timeline.add([parse({ kind: 'latency', multiplier: 4, from: '10s', to: '20s' })], 1000);
    expect(timeline.effectFor('m', 10_999).latencyMultiplier).toBe(1);
    expect(timeline.effectFor('m', 11_000).latencyMultiplier).toBe(4);
    expect(timeline.effectFor('m', 20_999).latencyMultiplier).toBe(4);
    expect(timeline.effectFor('m', 21_000).latencyMultiplier).toBe(1);
  });

  it('limits a fault to the models it names', () => {
    const timeline = new FaultTimeline(createRng(1));
    timeline.add([parse({ kind: 'error', status: 503, models: ['a'] })], 0);
    expect(timeline.effectFor('a', 0).errorStatus).toBe(503);
    expect(timeline.effectFor('b', 0).errorStatus).toBeUndefined();
  });

  it('fires a fault at its rate, reproducibly for a seed', () => {
    const count = (seed: number) => {
      const timeline = new FaultTimeline(createRng(seed));
      timeline.add([parse({ kind: 'error', status: 500, rate: 0.3 })], 0);
      return Array.from({ length: 1000 }, () => timeline.effectFor('m', 0).errorStatus).filter(Boolean)
        .length;
    };
    expect(count(5)).toBe(count(5));
    expect(count(5)).toBeGreaterThan(240);
    expect(count(5)).toBeLessThan(360);
  });

  it('combines faults of different kinds and keeps the earliest cut', () => {
    const timeline = new FaultTimeline(createRng(1));
    timeline.add(
      [
        parse({ kind: 'latency', multiplier: 2 }),
        parse({ kind: 'latency', multiplier: 3 }),
        parse({ kind: 'cut', afterTokens: 9 }),
        parse({ kind: 'cut', afterTokens: 4 }),
        parse({ kind: 'slow-first-byte', delayMs: '1.5s' }),
        parse({ kind: 'hang' }),
      ],
      0,
    );
    expect(timeline.effectFor('m', 0)).toEqual({
      latencyMultiplier: 6,
      cutAfterTokens: 4,
      slowFirstByteMs: 1500,
      hang: true,
    });
  });

  it('removes one fault by id, or all', () => {
    const timeline = new FaultTimeline(createRng(1));
    const [first] = timeline.add([parse({ kind: 'hang' }), parse({ kind: 'latency', multiplier: 2 })], 0);
    expect(timeline.remove(first!)).toBe(true);
    expect(timeline.effectFor('m', 0).hang).toBe(false);
    expect(timeline.remove('nope')).toBe(false);
    timeline.clear();
    expect(timeline.effectFor('m', 0).latencyMultiplier).toBe(1);
  });

  it('rejects an unknown kind or a bad duration with a message naming the field', () => {
    expect(faultSchema.safeParse({ kind: 'explode' }).success).toBe(false);
    const bad = faultSchema.safeParse({ kind: 'latency', multiplier: 2, from: 'soon' });
    expect(bad.success).toBe(false);
    expect(bad.error?.issues[0]?.path).toEqual(['from']);
    expect(bad.error?.issues[0]?.message).toMatch(/invalid duration/);
  });
});
