import { describe, expect, it } from 'vitest';
import { Deployment, type SequenceSpec } from '../../../src/sim/deployment.js';
import { ManualClock } from '../../../src/time/manual-clock.js';

const timing = {
  slots: 2,
  queueLimit: 10,
  prefillBaseMs: 10,
  prefillMsPerToken: 0.1,
  decodeMsPerToken: 5,
  batchSlowdown: 0.2,
  outputTokens: { mean: 4, spread: 0 },
};

const spec = (decodeSteps = 4, promptTokens = 100): SequenceSpec => ({
  promptTokens,
  decodeSteps,
  latencyMultiplier: 1,
  extraFirstTokenMs: 0,
});

interface Trace {
  startedAt?: number;
  tokens: number[];
  finishedAt?: number;
}

function submit(deployment: Deployment, s: SequenceSpec): Trace {
  const trace: Trace = { tokens: [] };
  const admission = deployment.submit(s, {
    onStart: (at) => {
      trace.startedAt = at;
    },
    onToken: (_index, at) => trace.tokens.push(at),
    onFinish: (at) => {
      trace.finishedAt = at;
    },
  });
  if (!admission.admitted) throw new Error('not admitted');
  return trace;
}

describe('Deployment (continuous batching)', () => {
  it('queues requests beyond its slots, so later ones wait exactly one service time per wave', () => {
    const clock = new ManualClock();
    const deployment = new Deployment(timing, clock);
    const traces = Array.from({ length: 6 }, () => submit(deployment, spec()));
    expect(deployment.busy).toBe(2);
    expect(deployment.queued).toBe(4);
    clock.runAll();

    const prefill = 10 + 0.1 * 100; // 20 ms
    const tokenWithTwoBusy = 5 * (1 + 0.2 * (2 - 1)); // 6 ms
    const service = prefill + 3 * tokenWithTwoBusy; // 38 ms: first token, then three more
    const ttft = traces.map((t) => t.tokens[0]);
    expect(ttft).toEqual([0, 0, 1, 1, 2, 2].map((wave) => wave * service + prefill));
    expect(traces.map((t) => t.startedAt)).toEqual([0, 0, 1, 1, 2, 2].map((wave) => wave * service));
    expect(traces[0]?.tokens).toEqual([20, 26, 32, 38]);
    expect(traces.every((t) => t.tokens.length === 4)).toBe(true);
    expect(deployment.busy).toBe(0);
  });

  it('decodes each token more slowly as more slots are busy', () => {
    const clock = new ManualClock();
    const alone = new Deployment(timing, clock);
    const single = submit(alone, spec());
    clock.runAll();
    expect(single.finishedAt).toBe(20 + 3 * 5);

    const clock2 = new ManualClock();
    const shared = new Deployment(timing, clock2);
    const pair = [submit(shared, spec()), submit(shared, spec())];
    clock2.runAll();
    expect(pair.map((t) => t.finishedAt)).toEqual([38, 38]);
  });

  it('speeds the remaining sequence up as soon as a batch-mate finishes', () => {
    const clock = new ManualClock();
    const deployment = new Deployment(timing, clock);
    const short = submit(deployment, spec(2));
    const long = submit(deployment, spec(4));
    clock.runAll();
    expect(short.tokens).toEqual([20, 26]);
    // The long one's second token was scheduled while both were busy (6 ms); after the short one left, 5 ms.
    expect(long.tokens).toEqual([20, 26, 31, 36]);
  });

  it('grows time to first token with the prompt length (prefill)', () => {
    const clock = new ManualClock();
    const deployment = new Deployment(timing, clock);
    const short = submit(deployment, spec(1, 100));
    const long = submit(deployment, spec(1, 10_000));
    clock.runAll();
    expect(short.tokens[0]).toBe(20);
    expect(long.tokens[0]).toBe(10 + 0.1 * 10_000);
  });

  it('rejects beyond the queue bound with a retry-after from the predicted wait', () => {
    const clock = new ManualClock();
    const deployment = new Deployment({ ...timing, queueLimit: 1 }, clock);
    submit(deployment, spec());
    submit(deployment, spec());
    submit(deployment, spec());
    const rejected = deployment.submit(spec(), { onToken: () => {}, onFinish: () => {} });
    expect(rejected.admitted).toBe(false);
    if (!rejected.admitted) expect(rejected.retryAfterMs).toBeGreaterThanOrEqual(1000);
  });

  it('lets a cancelled request leave the queue, and a cancelled running one free its slot', () => {
    const clock = new ManualClock();
    const deployment = new Deployment(timing, clock);
    const first = deployment.submit(spec(), { onToken: () => {}, onFinish: () => {} });
    submit(deployment, spec());
    const queued = deployment.submit(spec(), { onToken: () => {}, onFinish: () => {} });
    const waiting = submit(deployment, spec());
    expect(deployment.queued).toBe(2);
    if (queued.admitted) queued.sequence.cancel();
    expect(deployment.queued).toBe(1);
    if (first.admitted) first.sequence.cancel();
    expect(deployment.busy).toBe(2);
    expect(deployment.queued).toBe(0);
    expect(waiting.startedAt).toBe(0);
    clock.runAll();
    expect(waiting.finishedAt).toBe(38);
  });

  it('scales prefill and decode by a latency multiplier and adds a slow first byte', () => {
    const clock = new ManualClock();
    const deployment = new Deployment(timing, clock);
    const slowed = submit(deployment, { ...spec(2), latencyMultiplier: 3, extraFirstTokenMs: 100 });
    clock.runAll();
    expect(slowed.tokens).toEqual([3 * 20 + 100, 3 * 20 + 100 + 3 * 5]);
  });

  it('finishes a sequence with no decode steps after its prefill (embeddings)', () => {
    const clock = new ManualClock();
    const deployment = new Deployment(timing, clock);
    const trace = submit(deployment, spec(0));
    clock.runAll();
    expect(trace.tokens).toEqual([]);
    expect(trace.finishedAt).toBe(20);
  });
});
