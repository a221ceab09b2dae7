import { describe, expect, it } from 'vitest';
import { createGradient2 } from '../../../src/flow/gradient2.js';
import { createRng } from '../../../src/sim/rng.js';
import { runSimulatedGateway, type SimulatedRun } from './simulated-gateway.js';

/**
 * The overload benchmark's targets (docs/benchmarks.md, "Overload"), checked on a fake clock:
 * every time here is simulated time, so these are specifications, not timing claims about the
 * machine running them.
 */
const seconds = (s: number) => s * 1_000;
const slots = 16;

/** 0.5× → 3× → 0.5× the model's capacity, 10 s each, 20% critical, 50% normal, 30% batch. */
const benchmarkSteps = [
  { load: 0.5, ms: seconds(10) },
  { load: 3, ms: seconds(10) },
  { load: 0.5, ms: seconds(10) },
];

/** Several tests read the same run: it is simulated once. */
function once(run: () => Promise<SimulatedRun>): () => Promise<SimulatedRun> {
  let result: Promise<SimulatedRun> | undefined;
  return () => {
    result ??= run();
    return result;
  };
}

const defaults = () => createGradient2({}, createRng(11).next);

const benchmark = once(() => runSimulatedGateway({ algorithm: defaults(), steps: benchmarkSteps }));

/** Per-answer latency noise: each answer is slower or faster by a log-normal factor (σ 0.15). */
function jitter(seed: number): (at: number) => number {
  const rng = createRng(seed);
  return () => Math.exp(0.15 * Math.sqrt(-2 * Math.log(1 - rng.next())) * Math.cos(2 * Math.PI * rng.next()));
}

/** A model busy with other work now and then: 40% slower for 0.5 to 3 s, then as fast for as long. */
function contention(seed: number): (at: number) => number {
  const rng = createRng(seed);
  const changes: number[] = [];
  for (let at = 0; at < seconds(60); at += 500 + 2_500 * rng.next()) changes.push(at);
  return (at) => (changes.findLastIndex((change) => change <= at) % 2 === 0 ? 1 : 1.4);
}

describe('flow control in front of an overloaded model (default settings)', () => {
  it('at 3× its capacity: keeps it busy, latency within 1.5× uncontended, every critical request served, batch shed first', async () => {
    const run = await benchmark();
    const overload = run.step(1);
    expect(overload.goodput).toBeGreaterThanOrEqual(0.95);
    expect(overload.p99).toBeLessThanOrEqual(1.5);
    expect(overload.succeeded.critical).toBeGreaterThanOrEqual(0.999);
    expect(overload.succeeded.batch).toBeLessThan(overload.succeeded.normal!);
    // The queue stays in the gateway, where priorities count: only a few requests wait at the model.
    const during = run.upstreamQueued.filter((s) => s.at > seconds(11) && s.at <= seconds(20));
    const meanQueued = during.reduce((sum, s) => sum + s.queued, 0) / during.length;
    expect(meanQueued).toBeLessThanOrEqual(0.5 * slots);
  });

  it('settles within 2 simulated seconds of each step: the limit and the p99 latency', async () => {
    const run = await benchmark();
    for (const step of [1, 2]) {
      expect(run.step(step).limitSettledMs).toBeLessThanOrEqual(seconds(2));
      expect(run.step(step).p99SettledMs).toBeLessThanOrEqual(seconds(2));
    }
    // Settled near the model's slots, with a little headroom, not at a queue.
    expect(run.step(1).finalLimit).toBeGreaterThanOrEqual(slots);
    expect(run.step(1).finalLimit).toBeLessThanOrEqual(1.25 * slots + 4);
  });

  it('sheds nothing at half the capacity, whatever the starting limit', async () => {
    const run = await benchmark();
    for (const step of [0, 2]) {
      expect(run.step(step).succeeded).toEqual({ critical: 1, normal: 1, batch: 1 });
    }
  });

  it('slow start takes a limit of 2 to the model’s slots within 2 simulated seconds, overshooting about twofold at most', async () => {
    const run = await runSimulatedGateway({
      algorithm: createGradient2({ initialLimit: 2 }, createRng(11).next),
      steps: [{ load: 3, ms: seconds(6) }],
    });
    const at = (ms: number) => run.limits.find((s) => s.at >= ms)!.limit;
    expect(at(seconds(2))).toBeGreaterThanOrEqual(slots);
    expect(Math.max(...run.limits.map((s) => s.limit))).toBeLessThanOrEqual(2.25 * slots);
    expect(run.step(0).finalLimit).toBeGreaterThanOrEqual(slots);
    expect(run.step(0).finalLimit).toBeLessThanOrEqual(1.25 * slots + 4);
  });

  it('follows the model down to half its slots and back up, settling within 2 simulated seconds each time', async () => {
    const run = await runSimulatedGateway({
      algorithm: defaults(),
      steps: [
        { load: 1.5, ms: seconds(10) },
        { load: 1.5, ms: seconds(10), slots: slots / 2 },
        { load: 1.5, ms: seconds(10), slots },
      ],
    });
    const halved = run.step(1);
    expect(halved.limitSettledMs).toBeLessThanOrEqual(seconds(2));
    expect(halved.finalLimit).toBeGreaterThanOrEqual(slots / 2);
    expect(halved.finalLimit).toBeLessThanOrEqual(1.25 * (slots / 2) + 4);
    expect(halved.goodput).toBeGreaterThanOrEqual(0.95);
    const restored = run.step(2);
    expect(restored.limitSettledMs).toBeLessThanOrEqual(seconds(2));
    expect(restored.finalLimit).toBeGreaterThanOrEqual(slots);
    expect(restored.goodput).toBeGreaterThanOrEqual(0.95);
  });
});

describe('flow control in front of a model whose latency is noisy', () => {
  const noisyRun = (slowdown: (at: number) => number, tolerance?: number) =>
    runSimulatedGateway({
      algorithm: createGradient2({ tolerance }, createRng(11).next),
      steps: benchmarkSteps,
      slowdown,
    });

  it('keeps the model busy at 3× its capacity when each answer’s latency varies: noise is not a queue', async () => {
    const overload = (await noisyRun(jitter(7))).step(1);
    expect(overload.goodput).toBeGreaterThanOrEqual(0.95);
    expect(overload.succeeded.critical).toBeGreaterThanOrEqual(0.999);
  });

  it('keeps the model about as busy as it can be when it is 40% slower for seconds at a time', async () => {
    // Slower half the time, it can answer about 1 / 1.2 of its capacity.
    const overload = (await noisyRun(contention(7))).step(1);
    expect(overload.goodput).toBeGreaterThanOrEqual(0.75);
    expect(overload.succeeded.critical).toBeGreaterThanOrEqual(0.999);
  });

  it('would be caught by that check with no tolerance: each slow spell cuts the limit below the slots', async () => {
    expect((await noisyRun(contention(7), 1)).step(1).goodput).toBeLessThan(0.6);
  });
});
