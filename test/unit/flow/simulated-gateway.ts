import type { LimitAlgorithm } from '../../../src/flow/limit.js';
import { Limiter, type LimiterOptions, type Permit, ShedError } from '../../../src/flow/limiter.js';
import type { Priority } from '../../../src/flow/priority.js';
import { Deployment } from '../../../src/sim/deployment.js';
import { createRng } from '../../../src/sim/rng.js';
import { ManualClock } from '../../../src/time/manual-clock.js';

/**
 * The overload benchmark (bench/overload) on a fake clock: open-loop clients send streaming
 * requests through one target's real Limiter (its limit algorithm and admission queue) to the
 * simulator's real Deployment, everything driven by a ManualClock, so a run of 30 simulated
 * seconds takes a fraction of a real one and gives the same figures every time.
 *
 * As in the gateway (src/gateway/dispatch.ts), the algorithm learns the attempt's time per
 * output token, a client that gives up cancels its upstream request and releases its permit
 * with `ignore()`, and the deadline sent is the client's timeout less the longest uncontended
 * answer.
 */
export interface SimulatedGatewayOptions {
  algorithm: LimitAlgorithm;
  limiter?: Partial<Omit<LimiterOptions, 'algorithm' | 'target'>>;
  /** The upstream: `slots` sequences at once, each 40 ms of prefill then 8 ms per token, 20 to 60 tokens. Default 16. */
  slots?: number;
  /**
   * Offered load of each step, as a multiple of the initial capacity, and its length; `slots`
   * changes the upstream's slots when the step begins (a provider losing or gaining capacity).
   */
  steps: Array<{ load: number; ms: number; slots?: number }>;
  mix?: Partial<Record<Priority, number>>;
  /**
   * How much slower than usual the upstream serves a request started at `at` (1: as usual), e.g.
   * noise or a provider busy with other work. Default 1.
   */
  slowdown?: (at: number) => number;
  /** The client gives up after this long (ms); default 10× the longest uncontended answer. */
  timeoutMs?: number;
  seed?: number;
}

/** What happened to one request. */
export interface RequestRecord {
  priority: Priority;
  step: number;
  sentAt: number;
  endedAt: number;
  outcome: 'ok' | 'shed' | 'timeout';
  queuedMs: number;
}

export interface StepFigures {
  /** Successful answers that ended in the step, per second, as a fraction of the step's capacity. */
  goodput: number;
  /** p99 latency of the successful requests sent in the step, in uncontended p99s. */
  p99: number;
  /** Share of each priority's requests sent in the step that succeeded. */
  succeeded: Partial<Record<Priority, number>>;
  /**
   * When (ms after the step began) the limit settled: after it, every sample of the step stays
   * within ±20% of the step's final value, the mean of its last 2 s (as bench/overload measures).
   */
  limitSettledMs: number;
  finalLimit: number;
  /** The same for the p99 latency of the successful requests sent in the last second, every 250 ms. */
  p99SettledMs: number;
}

export interface SimulatedRun {
  records: RequestRecord[];
  /** The limit every 250 ms. */
  limits: Array<{ at: number; limit: number }>;
  /** Requests the simulator held in its own queue, where priorities mean nothing, every 250 ms. */
  upstreamQueued: Array<{ at: number; queued: number }>;
  /** Answers per second at the initial slots. */
  capacityPerSecond: number;
  uncontendedP99Ms: number;
  step(index: number): StepFigures;
}

const prefillMs = 40;
const tokenMs = 8;
const meanTokens = 40;

export async function runSimulatedGateway(options: SimulatedGatewayOptions): Promise<SimulatedRun> {
  const clock = new ManualClock();
  const rng = createRng(options.seed ?? 1);
  const slots = options.slots ?? 16;
  const profile = {
    slots,
    queueLimit: 100_000,
    prefillBaseMs: prefillMs,
    prefillMsPerToken: 0,
    decodeMsPerToken: tokenMs,
    batchSlowdown: 0,
    outputTokens: { mean: meanTokens, spread: 0.5 },
  };
  const upstream = new Deployment(profile, clock);
  const limiter = new Limiter(
    { target: 'sim/overload', algorithm: options.algorithm, ...options.limiter },
    clock,
  );
  // The mean answer: prefill, then a token every 8 ms after the first.
  const meanServiceMs = prefillMs + tokenMs * (meanTokens - 1);
  const capacityPerSecond = (slots * 1000) / meanServiceMs;
  const uncontendedP99Ms = prefillMs + tokenMs * (Math.round(meanTokens * 1.5) - 1);
  const timeoutMs = options.timeoutMs ?? 10 * uncontendedP99Ms;
  const deadlineMs = timeoutMs - uncontendedP99Ms;
  const mix = Object.entries(options.mix ?? { critical: 0.2, normal: 0.5, batch: 0.3 }) as Array<
    [Priority, number]
  >;
  const pickPriority = (): Priority => {
    let x = rng.next();
    for (const [priority, share] of mix) {
      x -= share;
      if (x < 0) return priority;
    }
    return mix.at(-1)![0];
  };

  const records: RequestRecord[] = [];
  const limits: SimulatedRun['limits'] = [];
  const upstreamQueued: SimulatedRun['upstreamQueued'] = [];
  const bounds: Array<{ from: number; to: number; slots: number }> = [];
  let open = 0;

  const send = (step: number) => {
    const sentAt = clock.now();
    const priority = pickPriority();
    const tokens = Math.max(1, Math.round(meanTokens * (1 + 0.5 * (2 * rng.next() - 1))));
    const client = new AbortController();
    const record: RequestRecord = {
      priority,
      step,
      sentAt,
      endedAt: sentAt,
      outcome: 'timeout',
      queuedMs: 0,
    };
    open++;
    let ended = false;
    const end = (outcome: RequestRecord['outcome']) => {
      if (ended) return;
      ended = true;
      record.outcome = outcome;
      record.endedAt = clock.now();
      records.push(record);
      open--;
      timer.cancel();
    };
    let cancelUpstream = () => {};
    const timer = clock.setTimer(timeoutMs, () => {
      cancelUpstream();
      client.abort();
      end('timeout');
    });
    limiter.acquire({ priority, deadlineAt: sentAt + deadlineMs, signal: client.signal }).then(
      (permit: Permit) => {
        if (client.signal.aborted) {
          permit.ignore();
          return;
        }
        record.queuedMs = permit.queuedMs;
        const startedAt = clock.now();
        const admission = upstream.submit(
          {
            promptTokens: 10,
            decodeSteps: tokens,
            latencyMultiplier: options.slowdown?.(startedAt) ?? 1,
            extraFirstTokenMs: 0,
          },
          {
            onToken: () => {},
            onFinish: (at) => {
              permit.success((at - startedAt) / (tokens + 1));
              end('ok');
            },
          },
        );
        if (!admission.admitted) throw new Error('the simulated upstream refused a request');
        cancelUpstream = () => {
          admission.sequence.cancel();
          permit.ignore();
        };
      },
      (error: unknown) => {
        if (!(error instanceof ShedError)) throw error;
        if (error.reason !== 'cancelled') end('shed');
      },
    );
  };

  // Arrivals, fixed in advance: Poisson at each step's rate.
  let at = 0;
  let stepSlots = slots;
  options.steps.forEach(({ load, ms, slots: changed }, step) => {
    const end = at + ms;
    if (changed !== undefined) {
      stepSlots = changed;
      clock.setTimer(at, () => {
        profile.slots = changed;
      });
    }
    bounds.push({ from: at, to: end, slots: stepSlots });
    const rate = (load * capacityPerSecond) / 1000;
    let next = at;
    for (;;) {
      next += -Math.log(1 - rng.next()) / rate;
      if (next >= end) break;
      clock.setTimer(next, () => send(step));
    }
    at = end;
  });
  const totalMs = at;
  for (let t = 0; t <= totalMs; t += 250) {
    clock.setTimer(t, () => {
      limits.push({ at: t, limit: limiter.limit });
      upstreamQueued.push({ at: t, queued: upstream.queued });
    });
  }

  // Promise callbacks (a granted permit) run between timer events, as they would in the gateway.
  const flush = () => new Promise<void>((resolve) => setImmediate(resolve));
  for (let t = 0; t < totalMs || open > 0; t++) {
    clock.advanceTo(t);
    await flush();
    if (t > totalMs + 2 * timeoutMs) throw new Error(`${open} requests never ended`);
  }

  return {
    records,
    limits,
    upstreamQueued,
    capacityPerSecond,
    uncontendedP99Ms,
    step(index) {
      const { from, to, slots: stepSlots } = bounds[index]!;
      const sent = records.filter((r) => r.step === index);
      const ok = sent.filter((r) => r.outcome === 'ok');
      const ended = records.filter((r) => r.outcome === 'ok' && r.endedAt >= from && r.endedAt < to);
      const succeeded: StepFigures['succeeded'] = {};
      for (const [priority] of mix) {
        const mine = sent.filter((r) => r.priority === priority);
        succeeded[priority] = mine.filter((r) => r.outcome === 'ok').length / mine.length;
      }
      const limit = settling(
        limits.map((s) => ({ at: s.at, value: s.limit })),
        from,
        to,
      );
      const p99s: Array<{ at: number; value: number }> = [];
      for (let t = from + 250; t <= to; t += 250) {
        const window = records
          .filter((r) => r.outcome === 'ok' && r.sentAt > t - 1_000 && r.sentAt <= t)
          .map((r) => r.endedAt - r.sentAt);
        p99s.push({ at: t, value: percentile(window, 0.99) });
      }
      const p99 = settling(p99s, from, to);
      return {
        goodput: ended.length / ((to - from) / 1000) / ((capacityPerSecond * stepSlots) / slots),
        p99:
          percentile(
            ok.map((r) => r.endedAt - r.sentAt),
            0.99,
          ) / uncontendedP99Ms,
        succeeded,
        limitSettledMs: limit.settledMs,
        finalLimit: limit.final,
        p99SettledMs: p99.settledMs,
      };
    },
  };
}

/** When a series settled within ±20% of its mean over the last 2 s of [from, to]; NaN values count as outside. */
function settling(series: Array<{ at: number; value: number }>, from: number, to: number) {
  const inStep = series.filter((s) => s.at > from && s.at <= to);
  const tail = inStep.filter((s) => s.at > to - 2_000);
  const final = tail.reduce((sum, s) => sum + s.value, 0) / tail.length;
  let settledAt = from;
  for (const s of inStep) if (!(Math.abs(s.value - final) <= 0.2 * final)) settledAt = s.at;
  // The first sample of the step after the last one outside, 250 ms later.
  return { final, settledMs: settledAt - from + 250 };
}

function percentile(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] ?? Number.NaN;
}
