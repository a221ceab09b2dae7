import { describe, expect, it } from 'vitest';
import { createAimd } from '../../../src/flow/aimd.js';
import { createGradient2 } from '../../../src/flow/gradient2.js';
import type { LimitAlgorithm, LimitSample } from '../../../src/flow/limit.js';
import { createVegas } from '../../../src/flow/vegas.js';
import { createRng } from '../../../src/sim/rng.js';
import { type SampleRecord, type Simulation, simulate } from './simulated-server.js';

/** Concurrent requests the simulated target serves without queueing. */
const capacity = 20;
/** Its no-load latency, ms. */
const base = 1_000;

interface Bounds {
  initialLimit?: number;
  minLimit?: number;
  maxLimit?: number;
}

const adaptive: Record<string, (bounds?: Bounds) => LimitAlgorithm> = {
  gradient2: (bounds) => createGradient2(bounds, createRng(11).next),
  vegas: (bounds) => createVegas(bounds, createRng(11).next),
  // AIMD sees latency only through its threshold, which must sit above the no-load latency.
  aimd: (bounds) => createAimd({ timeoutMs: 1.5 * base, ...bounds }),
};

const mean = (values: number[]) => values.reduce((sum, value) => sum + value, 0) / values.length;
const limits = (records: SampleRecord[]) => records.map((record) => record.limit);
const meanLatency = (records: SampleRecord[]) => mean(records.map((record) => record.latencyMs));

/** A target of `capacity` slots with `clients` clients that always want to send. */
function overload(algorithm: LimitAlgorithm, clients = 3 * capacity): Simulation {
  return simulate(algorithm, { capacity, baseLatencyMs: base, clients, seed: 5 });
}

/** Feeds samples straight to the algorithm; returns the limit after each. */
function feed(algorithm: LimitAlgorithm, count: number, sample: (at: number) => LimitSample): number[] {
  const seen: number[] = [];
  for (let i = 1; i <= count; i++) seen.push(algorithm.update(sample(i * 100)));
  return seen;
}

describe.each(Object.keys(adaptive))('%s limit', (name) => {
  const create = adaptive[name]!;

  it('admits about the capacity of an overloaded target and keeps latency within twice its no-load latency', () => {
    const sim = overload(create());
    sim.run(3_000);
    const steady = sim.run(10_000);
    expect(Math.min(...limits(steady))).toBeGreaterThanOrEqual(0.6 * capacity);
    expect(Math.max(...limits(steady))).toBeLessThanOrEqual(2 * capacity);
    expect(meanLatency(steady)).toBeLessThanOrEqual(2 * base);
  });

  it('comes down from a generous initial limit (the gateway starts at 100) within a few round trips', () => {
    const sim = overload(create({ initialLimit: 100 }));
    sim.run(1_500);
    const steady = sim.run(5_000);
    expect(Math.max(...limits(steady))).toBeLessThanOrEqual(2 * capacity);
    expect(meanLatency(steady)).toBeLessThanOrEqual(2 * base);
  });

  it('settles near the new capacity when the target loses half of it', () => {
    const sim = overload(create());
    sim.run(3_000);
    sim.setCapacity(capacity / 2);
    sim.run(4_000);
    const steady = sim.run(5_000);
    expect(Math.min(...limits(steady))).toBeGreaterThanOrEqual(0.6 * (capacity / 2));
    expect(Math.max(...limits(steady))).toBeLessThanOrEqual(2 * (capacity / 2));
    expect(meanLatency(steady)).toBeLessThanOrEqual(2 * base);
  });

  it('settles near the new capacity when the target doubles it', () => {
    const sim = overload(create());
    sim.run(3_000);
    sim.setCapacity(2 * capacity);
    sim.setClients(6 * capacity);
    sim.run(8_000);
    const steady = sim.run(5_000);
    expect(Math.min(...limits(steady))).toBeGreaterThanOrEqual(0.6 * (2 * capacity));
    expect(Math.max(...limits(steady))).toBeLessThanOrEqual(2 * (2 * capacity));
    expect(meanLatency(steady)).toBeLessThanOrEqual(2 * base);
  });

  it('does not drift upwards under steady overload over 50,000 samples', () => {
    const sim = overload(create(), 2 * capacity);
    sim.run(5_000);
    const converged = mean(limits(sim.run(5_000)));
    sim.run(35_000);
    const end = sim.run(5_000);
    expect(mean(limits(end))).toBeLessThanOrEqual(1.15 * converged);
    expect(meanLatency(end)).toBeLessThanOrEqual(2 * base);
  });

  it('shrinks, and never grows, while every request times out', () => {
    const algorithm = create();
    overload(algorithm).run(3_000);
    const before = algorithm.limit;
    const seen = feed(algorithm, 2_000, (at) => ({
      latencyMs: 30_000,
      inflight: before,
      atLimit: true,
      dropped: true,
      at,
    }));
    expect(seen.some((limit, i) => limit > (i === 0 ? before : seen[i - 1]!))).toBe(false);
    expect(seen.at(-1)).toBe(1);
  });

  it('takes no latency from dropped requests: fast failures neither raise the limit nor skew it later', () => {
    const algorithm = create();
    const sim = overload(algorithm);
    sim.run(3_000);
    const before = algorithm.limit;
    const seen = feed(algorithm, 2_000, (at) => ({
      latencyMs: 0.1,
      inflight: before,
      atLimit: true,
      dropped: true,
      at,
    }));
    expect(Math.max(...seen)).toBeLessThanOrEqual(before);
    sim.run(5_000);
    const after = sim.run(5_000);
    expect(Math.min(...limits(after))).toBeGreaterThanOrEqual(0.6 * capacity);
    expect(Math.max(...limits(after))).toBeLessThanOrEqual(2 * capacity);
    expect(meanLatency(after)).toBeLessThanOrEqual(2 * base);
  });

  it('keeps the limit a whole number within [minLimit, maxLimit] whatever the samples', () => {
    const algorithm = create({ initialLimit: 500, minLimit: 3, maxLimit: 40 });
    expect(algorithm.limit).toBe(40);
    const rng = createRng(3);
    for (let i = 1; i <= 20_000; i++) {
      const limit = algorithm.update({
        latencyMs: 10 ** (rng.next() * 6 - 1),
        inflight: rng.int(1, 200),
        atLimit: rng.next() < 0.5,
        dropped: rng.next() < 0.2,
        at: i * 10,
      });
      expect(limit).toBe(algorithm.limit);
      expect(Number.isInteger(limit)).toBe(true);
      expect(limit).toBeGreaterThanOrEqual(3);
      expect(limit).toBeLessThanOrEqual(40);
    }
  });

  it('stays within its bounds under overload and when the target is tiny', () => {
    const capped = create({ minLimit: 2, maxLimit: 15 });
    expect(Math.max(...limits(overload(capped).run(5_000)))).toBe(15);
    const floored = create({ minLimit: 8, maxLimit: 100 });
    const tiny = simulate(floored, { capacity: 1, baseLatencyMs: base, clients: 30, seed: 5 });
    expect(Math.min(...limits(tiny.run(5_000)))).toBe(8);
  });

  it('does not grow without bound when clients offer far less than the capacity', () => {
    const idle = simulate(create(), { capacity, baseLatencyMs: base, clients: capacity / 4, seed: 5 });
    expect(Math.max(...limits(idle.run(20_000)))).toBeLessThanOrEqual(20);
    // Starting below the offered load, it grows to serve it, and stops at twice the concurrency used.
    const clients = capacity / 2;
    const small = simulate(create({ initialLimit: 2 }), { capacity, baseLatencyMs: base, clients, seed: 5 });
    const records = small.run(20_000);
    expect(Math.max(...limits(records))).toBeLessThanOrEqual(2 * clients + 1);
    expect(records.at(-1)!.limit).toBeGreaterThanOrEqual(clients);
  });
});

describe.each(['gradient2', 'vegas'])('%s limit, when the target gets slower for good', (name) => {
  const create = adaptive[name]!;

  it('re-learns the higher no-load latency while saturated, instead of starving the target', () => {
    const sim = overload(create());
    sim.run(3_000);
    sim.setBaseLatency(2 * base);
    sim.run(15_000);
    const steady = sim.run(5_000);
    expect(Math.min(...limits(steady))).toBeGreaterThanOrEqual(0.6 * capacity);
    expect(Math.max(...limits(steady))).toBeLessThanOrEqual(2 * capacity);
    expect(meanLatency(steady)).toBeLessThanOrEqual(2 * (2 * base));
  });
});

describe('vegas limit probing for the no-load latency', () => {
  /** Rejections in each window of 250 samples, in a mild open-loop overload (arrivals 1.2× what the target serves). */
  function rejectionsPerWindow(algorithm: LimitAlgorithm): number[] {
    const sim = simulate(algorithm, { capacity, baseLatencyMs: base, offeredLoad: 1.2, seed: 5 });
    sim.run(5_000);
    const records = sim.run(30_000);
    const perWindow: number[] = [];
    for (let i = 0; i + 250 <= records.length; i += 250) {
      perWindow.push(records.slice(i, i + 250).reduce((sum, record) => sum + record.rejectedBefore, 0));
    }
    return perWindow;
  }
  const bursty = (perWindow: number[]) => {
    const median = [...perWindow].sort((a, b) => a - b)[perWindow.length >> 1]!;
    return Math.max(...perWindow) >= 3 * median + 10;
  };

  it('causes no bursts of rejections: no window of samples has many more than a typical one', () => {
    const perWindow = rejectionsPerWindow(adaptive.vegas!());
    expect(mean(perWindow)).toBeGreaterThan(0);
    expect(bursty(perWindow)).toBe(false);
  });

  it('would be caught by that check if it drained the limit, as Netflix Gradient (v1) and Envoy probe', () => {
    expect(bursty(rejectionsPerWindow(drainingProbes(adaptive.vegas!())))).toBe(true);
  });
});

/**
 * The probe this design avoids: every 30 × limit samples, hold the limit at 3 until 20 requests have
 * run on an empty target.
 */
function drainingProbes(algorithm: LimitAlgorithm): LimitAlgorithm {
  let untilDrain = 30 * algorithm.limit;
  let toMeasure = 0;
  const drained: LimitAlgorithm = {
    name: 'draining',
    get limit() {
      return toMeasure > 0 ? 3 : algorithm.limit;
    },
    update(sample) {
      algorithm.update(sample);
      if (toMeasure > 0 && sample.inflight <= 3) toMeasure--;
      else if (toMeasure === 0 && --untilDrain <= 0) {
        toMeasure = 20;
        untilDrain = 30 * algorithm.limit;
      }
      return drained.limit;
    },
  };
  return drained;
}
