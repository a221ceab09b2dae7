import { describe, expect, it } from 'vitest';
import {
  type BalancerCandidate,
  leastInflight,
  PeakEwma,
  p2cPeakEwma,
  weightedRandom,
} from '../../../src/flow/balancer.js';
import { ManualClock } from '../../../src/time/manual-clock.js';

/** A seeded generator (mulberry32): the same draws on every run. */
function seeded(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

/** Returns the given draws in turn. */
function draws(...values: number[]): () => number {
  let i = 0;
  return () => values[i++ % values.length]!;
}

interface TestCandidate extends BalancerCandidate {
  busy: number;
}

function candidate(id: string, weight = 1): TestCandidate {
  const c: TestCandidate = {
    id,
    weight,
    busy: 0,
    inflight: () => c.busy,
    latency: new PeakEwma(10_000),
  };
  return c;
}

function counts(pick: () => BalancerCandidate, n: number): Record<string, number> {
  const seen: Record<string, number> = {};
  for (let i = 0; i < n; i++) {
    const id = pick().id;
    seen[id] = (seen[id] ?? 0) + 1;
  }
  return seen;
}

describe('PeakEwma', () => {
  it('is undefined until it has a sample', () => {
    expect(new PeakEwma().value(0)).toBeUndefined();
  });

  it('reacts at once to a spike and decays after', () => {
    const ewma = new PeakEwma(10_000);
    for (let t = 0; t <= 10_000; t += 1_000) ewma.observe(100, t);
    expect(ewma.value(10_000)).toBe(100);
    ewma.observe(2_000, 10_500);
    expect(ewma.value(10_500)).toBe(2_000);

    const after: number[] = [];
    for (let t = 11_500; t <= 40_500; t += 1_000) {
      ewma.observe(100, t);
      after.push(ewma.value(t)!);
    }
    // One second later the spike still dominates; each further second removes ~10 % of the excess.
    expect(after[0]).toBeCloseTo(100 + 1_900 * Math.exp(-0.1), 6);
    expect(after.every((v, i) => i === 0 || v < after[i - 1]!)).toBe(true);
    expect(after.at(-1)).toBeCloseTo(100 + 1_900 * Math.exp(-3), 6);
  });

  it('weighs a lower sample by the time since the previous one', () => {
    const quick = new PeakEwma(10_000);
    quick.observe(1_000, 0);
    quick.observe(100, 100);
    const slow = new PeakEwma(10_000);
    slow.observe(1_000, 0);
    slow.observe(100, 10_000);
    expect(quick.value(100)).toBeCloseTo(1_000 - 900 * (1 - Math.exp(-0.01)), 6);
    expect(slow.value(10_000)).toBeCloseTo(100 + 900 * Math.exp(-1), 6);
  });

  it('decays toward zero while no sample arrives, so an idle target is tried again', () => {
    const ewma = new PeakEwma(10_000);
    ewma.observe(5_000, 0);
    expect(ewma.value(10_000)).toBeCloseTo(5_000 * Math.exp(-1), 6);
    expect(ewma.value(30_000)).toBeCloseTo(5_000 * Math.exp(-3), 6);
  });
});

describe('weightedRandom', () => {
  it('picks each candidate in proportion to its weight', () => {
    const targets = [candidate('a', 1), candidate('b', 3)];
    const pick = draws(0, 0.2, 0.25, 0.6, 0.99);
    const picked = Array.from({ length: 5 }, () => weightedRandom.pick(targets, pick).id);
    expect(picked).toEqual(['a', 'a', 'b', 'b', 'b']);
  });

  it('never picks a zero-weight candidate, unless every weight is zero', () => {
    const random = seeded(1);
    expect(counts(() => weightedRandom.pick([candidate('a', 0), candidate('b', 1)], random), 1_000)).toEqual({
      b: 1_000,
    });
    const even = counts(() => weightedRandom.pick([candidate('a', 0), candidate('b', 0)], random), 1_000);
    expect(even.a! + even.b!).toBe(1_000);
    expect(even.a).toBeGreaterThan(400);
  });

  it('refuses an empty candidate list', () => {
    expect(() => weightedRandom.pick([], Math.random)).toThrow(RangeError);
  });
});

describe('leastInflight', () => {
  it('picks the fewest requests in flight per unit of weight, ties at random', () => {
    const [a, b, c] = [candidate('a', 1), candidate('b', 2), candidate('c', 1)];
    a.busy = 1;
    b.busy = 3; // (3 + 1) / 2 = 2 per unit of weight, as a
    c.busy = 4;
    const random = seeded(3);
    const seen = counts(() => leastInflight.pick([a, b, c], random), 1_000);
    expect(seen.c).toBeUndefined();
    expect(seen.a).toBeGreaterThan(400);
    expect(seen.b).toBeGreaterThan(400);
    a.busy = 0;
    expect(leastInflight.pick([a, b, c], random).id).toBe('a');
  });
});

describe('p2cPeakEwma', () => {
  function setup() {
    const clock = new ManualClock();
    const balancer = p2cPeakEwma(clock);
    const fast = candidate('fast');
    const slow = candidate('slow');
    fast.latency.observe(100, 0);
    slow.latency.observe(1_000, 0);
    return { clock, balancer, fast, slow };
  }

  it('prefers the faster of two', () => {
    const { balancer, fast, slow } = setup();
    const random = seeded(42);
    expect(counts(() => balancer.pick([fast, slow], random), 1_000)).toEqual({ fast: 1_000 });
  });

  it('still explores: the slower one wins once the faster is busy enough to cost more', () => {
    const { balancer, fast, slow } = setup();
    fast.busy = 9; // 100 × 10 = 1000: a tie keeps the first draw
    expect(balancer.pick([fast, slow], draws(0, 0)).id).toBe('fast');
    fast.busy = 10; // 100 × 11 > 1000 × 1
    const random = seeded(42);
    expect(counts(() => balancer.pick([fast, slow], random), 100)).toEqual({ slow: 100 });
  });

  it('tries an unmeasured target when it is less busy than the one it is drawn against', () => {
    const { balancer, fast } = setup();
    const fresh = candidate('fresh');
    fast.busy = 1;
    expect(balancer.pick([fast, fresh], draws(0, 0)).id).toBe('fresh');
    fresh.busy = 2;
    expect(balancer.pick([fast, fresh], draws(0, 0)).id).toBe('fast');
  });

  it('tries a target again once it has been idle long enough for its estimate to decay', () => {
    const { clock, balancer, fast, slow } = setup();
    slow.latency.observe(5_000, 0);
    fast.busy = 2;
    expect(balancer.pick([fast, slow], draws(0, 0)).id).toBe('fast');
    // Only the fast one keeps getting traffic, and so samples.
    for (let t = 1_000; t <= 30_000; t += 1_000) {
      clock.advanceTo(t);
      fast.latency.observe(100, t);
    }
    // slow: 5000 × e^-3 ≈ 249 < fast: 100 × 3
    expect(balancer.pick([fast, slow], draws(0, 0)).id).toBe('slow');
  });

  it('compares two distinct candidates, drawn by weight', () => {
    const { balancer } = setup();
    const [a, b, c] = [candidate('a', 1), candidate('b', 1), candidate('c', 2)];
    a.latency.observe(500, 0);
    b.latency.observe(100, 0);
    c.latency.observe(300, 0);
    // First draw 0 → a; the second draws from b and c only: 0 → b, which is cheaper.
    expect(balancer.pick([a, b, c], draws(0, 0)).id).toBe('b');
    // First draw 0.99 → c; second from a and b: 0.99 → b.
    expect(balancer.pick([a, b, c], draws(0.99, 0.99)).id).toBe('b');
    // First 0.99 → c; second 0 → a: c is cheaper.
    expect(balancer.pick([a, b, c], draws(0.99, 0)).id).toBe('c');
    expect(balancer.pick([a], draws(0.5)).id).toBe('a');
  });
});
