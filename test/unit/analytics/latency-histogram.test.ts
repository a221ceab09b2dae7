import { describe, expect, it } from 'vitest';
import {
  bucketIndex,
  HISTOGRAM_BUCKETS,
  histogramQuantile,
} from '../../../src/analytics/latency-histogram.js';
import { exactQuantile } from '../../support/analytics-seed.js';

/** A seeded generator (mulberry32), so the sample is the same on every run. */
function random(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

function histogram(values: readonly number[]): number[] {
  const counts = Array<number>(HISTOGRAM_BUCKETS).fill(0);
  for (const value of values) counts[bucketIndex(value)] = (counts[bucketIndex(value)] as number) + 1;
  return counts;
}

describe('the rollup latency histogram', () => {
  it('puts each value in a bucket a quarter doubling wide, from 1 ms to 2^20 ms', () => {
    expect(bucketIndex(0)).toBe(0);
    expect(bucketIndex(0.999)).toBe(0);
    expect(bucketIndex(1)).toBe(1);
    expect(bucketIndex(2)).toBe(5);
    expect(bucketIndex(1000)).toBe(40);
    expect(bucketIndex(2 ** 20 - 1)).toBe(80);
    expect(bucketIndex(2 ** 20)).toBe(81);
    expect(bucketIndex(1e9)).toBe(81);
  });

  it('has no percentile without values', () => {
    expect(histogramQuantile(Array(HISTOGRAM_BUCKETS).fill(0), 0.5)).toBeNull();
  });

  it('estimates percentiles of a skewed (log-normal) latency sample within one bucket, p50 to p99 within 2.5%', () => {
    const next = random(42);
    // Box–Muller: latencies around 400 ms with a long tail, as model calls have.
    const values = Array.from({ length: 20_000 }, () => {
      const normal = Math.sqrt(-2 * Math.log(1 - next())) * Math.cos(2 * Math.PI * next());
      return Math.exp(Math.log(400) + 0.8 * normal);
    });
    const counts = histogram(values);
    for (const q of [0.5, 0.9, 0.95, 0.99]) {
      const exact = exactQuantile(values, q) as number;
      const estimate = histogramQuantile(counts, q) as number;
      expect(Math.abs(estimate / exact - 1)).toBeLessThan(0.025);
    }
    // The far tail rests on a few requests (20 of 20 000 here): still inside one bucket.
    const tail = histogramQuantile(counts, 0.999) as number;
    expect(Math.abs(tail / (exactQuantile(values, 0.999) as number) - 1)).toBeLessThan(2 ** 0.25 - 1);
  });

  it('never misses by more than one bucket, even for a single value', () => {
    for (const value of [0.4, 1, 3.7, 95, 1234.5, 99_999]) {
      const estimate = histogramQuantile(histogram([value]), 0.5) as number;
      if (value < 1) expect(estimate).toBeLessThan(1);
      else expect(Math.abs(estimate / value - 1)).toBeLessThan(2 ** 0.25 - 1);
    }
  });

  it('reports the lower bound of the overflow bucket for the slowest requests', () => {
    expect(histogramQuantile(histogram([5_000_000, 6_000_000]), 0.99)).toBe(2 ** 20);
  });
});
