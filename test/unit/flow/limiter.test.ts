import { describe, expect, it } from 'vitest';
import type { LimitAlgorithm, LimitSample } from '../../../src/flow/limit.js';
import { Limiter, type LimiterOptions, type Permit, ShedError } from '../../../src/flow/limiter.js';
import type { Priority } from '../../../src/flow/priority.js';
import { ManualClock } from '../../../src/time/manual-clock.js';

/** A fixed limit that remembers what it was taught. */
function fixedLimit(limit: number): LimitAlgorithm & { samples: LimitSample[] } {
  const samples: LimitSample[] = [];
  return {
    name: 'test',
    limit,
    samples,
    update(sample) {
      samples.push(sample);
      return limit;
    },
  };
}

/** Follows a pending acquire so tests can look at its outcome without awaiting it. */
interface Tracked {
  label: string;
  permit?: Permit;
  error?: ShedError;
}

function track(label: string, pending: Promise<Permit>, log?: string[]): Tracked {
  const tracked: Tracked = { label };
  pending.then(
    (permit) => {
      tracked.permit = permit;
      log?.push(label);
    },
    (error: ShedError) => {
      tracked.error = error;
    },
  );
  return tracked;
}

/** Lets promise callbacks run. */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

function setup(limit: number, options: Partial<LimiterOptions> = {}) {
  const clock = new ManualClock();
  const algorithm = fixedLimit(limit);
  const limiter = new Limiter({ target: 'sim/sim-fast', algorithm, ...options }, clock);
  const acquire = (priority: Priority, deadlineAt = Number.POSITIVE_INFINITY, signal?: AbortSignal) =>
    limiter.acquire({ priority, deadlineAt, signal });
  return { clock, algorithm, limiter, acquire };
}

const everyShareFull = { critical: 1, high: 1, normal: 1, low: 1, batch: 1 };

describe('Limiter', () => {
  it('admits at once while fewer than the limit are in flight, then queues', async () => {
    const { limiter, acquire } = setup(2);
    const a = track('a', acquire('normal'));
    const b = track('b', acquire('normal'));
    const c = track('c', acquire('normal'));
    await settle();
    expect([a.permit?.queuedMs, b.permit?.queuedMs, c.permit]).toEqual([0, 0, undefined]);
    expect(limiter.snapshot()).toMatchObject({ limit: 2, inflight: 2, queued: 1, admitted: 2 });
  });

  it('orders waiters by priority then deadline', async () => {
    const { acquire } = setup(1);
    const holder = await acquire('normal');
    const admitted: string[] = [];
    const waiters = [
      track('low, 30s', acquire('low', 30_000), admitted),
      track('normal, 50s', acquire('normal', 50_000), admitted),
      track('normal, 20s', acquire('normal', 20_000), admitted),
      track('critical, 60s', acquire('critical', 60_000), admitted),
      track('normal, 20s, later', acquire('normal', 20_000), admitted),
    ];
    holder.success(10);
    for (let i = 0; i < waiters.length; i++) {
      await settle();
      waiters.find((w) => w.label === admitted.at(-1))?.permit?.success(10);
    }
    await settle();
    expect(admitted).toEqual([
      'critical, 60s',
      'normal, 20s',
      'normal, 20s, later',
      'normal, 50s',
      'low, 30s',
    ]);
  });

  it('sheds lowest priority first when the queue is full', async () => {
    const { limiter, acquire } = setup(1, { maxQueue: 4, queueShare: everyShareFull });
    await acquire('normal');
    const queued = [
      track('normal', acquire('normal', 60_000)),
      track('low, 50s', acquire('low', 50_000)),
      track('batch', acquire('batch', 60_000)),
      track('low, 40s', acquire('low', 40_000)),
    ];
    const high = track('high', acquire('high', 60_000));
    await settle();
    expect(queued[2]?.error).toMatchObject({ reason: 'queue_full', priority: 'batch' });
    expect(queued[2]?.error?.message).toBe(
      "Shed: a higher-priority request took this batch-priority request's place in the full queue for " +
        'sim/sim-fast (4 waiting, limit 1). Retry after 1s.',
    );

    const normal = track('normal 2', acquire('normal', 60_000));
    await settle();
    // Among the lowest priority, the latest deadline goes.
    expect(queued[1]?.error).toMatchObject({ reason: 'queue_full', priority: 'low' });
    expect(queued[3]?.error).toBeUndefined();

    // Nothing queued is below an arriving low-priority request: the arrival is the one shed.
    const late = acquire('low', 60_000);
    await expect(late).rejects.toBeInstanceOf(ShedError);
    await expect(late).rejects.toMatchObject({
      reason: 'queue_full',
      priority: 'low',
      status: 503,
      retryAfterMs: 1_000,
      message:
        'Shed: the queue for sim/sim-fast is full (4 waiting, limit 1); lower-priority traffic is shed first. ' +
        'Retry after 1s.',
    });
    expect([queued[0], queued[3], high, normal].map((w) => w?.error)).toEqual([
      undefined,
      undefined,
      undefined,
      undefined,
    ]);
    expect(limiter.snapshot()).toMatchObject({
      queued: 4,
      queuedByPriority: { critical: 0, high: 1, normal: 2, low: 1, batch: 0 },
      shedByPriority: { critical: 0, high: 0, normal: 0, low: 2, batch: 1 },
    });
  });

  it('lets lower priorities fill only their share of the queue, so they are shed first as it grows', async () => {
    // maxQueue 8 with the default shares: batch may find 2 waiting, low 4, normal 6, high and critical 8.
    const { limiter, acquire } = setup(1, { maxQueue: 8 });
    await acquire('normal');
    track('batch 1', acquire('batch', 60_000));
    track('batch 2', acquire('batch', 60_000));
    const third = acquire('batch', 60_000);
    await expect(third).rejects.toMatchObject({
      reason: 'queue_full',
      priority: 'batch',
      // One of the two waiting must leave before a batch request may join: one release, ~1 s cold.
      retryAfterMs: 1_000,
      message:
        'Shed: the queue for sim/sim-fast holds as many as batch-priority traffic may fill ' +
        '(2 waiting, limit 1; batch may fill 2 of 8 places); lower-priority traffic is shed first. Retry after 1s.',
    });
    for (let i = 0; i < 4; i++) track(`normal ${i}`, acquire('normal', 60_000));
    // Six waiting: a normal request may join only by displacing a batch one.
    const displacing = track('normal 5', acquire('normal', 60_000));
    await settle();
    expect(displacing.error).toBeUndefined();
    expect(limiter.snapshot().queuedByPriority).toMatchObject({ normal: 5, batch: 1 });
    expect(limiter.snapshot().shedByPriority).toMatchObject({ batch: 2 });
  });

  it('sheds at once when the predicted wait exceeds the deadline', async () => {
    // Cold start: one permit held ~1 s at limit 1 predicts one admission per second.
    const { clock, limiter, acquire } = setup(1, { initialHoldMs: 1_000 });
    await acquire('normal');
    const hopeless = acquire('normal', 500);
    await expect(hopeless).rejects.toMatchObject({
      reason: 'deadline',
      priority: 'normal',
      retryAfterMs: 500,
      message:
        'Shed: sim/sim-fast would start this request in about 1.0s (0 waiting, limit 1), after its deadline ' +
        'in 0.5s; allow more time or retry after 1s.',
    });
    const fits = track('fits', acquire('normal', 1_500));
    const behindIt = acquire('normal', 1_500);
    await expect(behindIt).rejects.toMatchObject({ reason: 'deadline' });
    await settle();
    expect(fits.error).toBeUndefined();
    expect(limiter.snapshot()).toMatchObject({ queued: 1, shedByPriority: { normal: 2 } });
    expect(clock.now()).toBe(0);
  });

  it('predicts the wait from the measured admission throughput, and sees a stalled target at once', async () => {
    // Waits bounded by deadlines alone: the queue-delay target would shed these waiters first.
    const { clock, acquire } = setup(1, { initialHoldMs: 1_000, delayTarget: 0 });
    let current = await acquire('normal');
    const waiters = Array.from({ length: 23 }, (_, i) => track(`w${i}`, acquire('high')));
    // The target turns out to serve one request every 100 ms.
    for (let i = 0; i < 20; i++) {
      clock.advance(100);
      current.success(100);
      await settle();
      current = waiters[i]!.permit!;
    }
    // Three waiting ahead: about 4 × 110 ms until a new request starts (at first it was 1 s per admission).
    const fits = track('fits', acquire('normal', clock.now() + 500));
    await settle();
    expect(fits.error).toBeUndefined();

    // Nothing released for 400 ms: with four ahead, the open gap alone predicts 5 × 400 ms.
    clock.advance(400);
    const stalled = track('stalled', acquire('normal', clock.now() + 1_500));
    await settle();
    expect(stalled.error).toMatchObject({ reason: 'deadline' });
    expect(fits.error).toBeUndefined();
  });

  describe('queue-delay target (CoDel)', () => {
    /**
     * Limit 1, and one permit already held for 100 ms: the hold time is known, so the delay target
     * is 10 ms (0.1 × 100) and the queue stands once it has not emptied for 100 ms. Returns the
     * permit now held, taken at 100 ms.
     */
    async function measured(options: Partial<LimiterOptions> = {}) {
      const harness = setup(1, {
        initialHoldMs: 100,
        maxQueue: 10,
        queueShare: everyShareFull,
        // The floors (50 ms, 100 ms) are above this target's fractions of its hold time; their own test is below.
        delayTargetMinMs: 0,
        delayIntervalMinMs: 0,
        ...options,
      });
      const first = await harness.acquire('normal');
      harness.clock.advance(100);
      first.success(1);
      return { ...harness, holder: await harness.acquire('normal') };
    }

    it('lets a burst wait past the target while the queue drains within the interval', async () => {
      const { clock, limiter, acquire, holder } = await measured();
      const burst = (['normal', 'low', 'batch'] as const).map((p) => track(p, acquire(p)));
      let current = holder;
      for (const waiter of burst) {
        clock.advance(20);
        current.success(1);
        await settle();
        current = waiter.permit!;
      }
      expect(burst.map((w) => [w.error, w.permit?.queuedMs])).toEqual([
        [undefined, 20],
        [undefined, 40],
        [undefined, 60],
      ]);
      expect(limiter.snapshot().shedByPriority).toEqual({
        critical: 0,
        high: 0,
        normal: 0,
        low: 0,
        batch: 0,
      });
    });

    it('serves a burst that takes many intervals to drain: a queue that only drains is not standing', async () => {
      const { clock, limiter, acquire, holder } = await measured({ maxQueue: 20 });
      const burst = Array.from({ length: 20 }, (_, i) => track(`w${i}`, acquire('normal')));
      // One permit back every 50 ms: the burst drains over 1 s, ten times the interval.
      let current = holder;
      for (const waiter of burst) {
        clock.advance(50);
        current.success(1);
        await settle();
        current = waiter.permit!;
      }
      expect(burst.filter((w) => w.error)).toEqual([]);
      expect(burst.at(-1)?.permit?.queuedMs).toBe(1_000);
      expect(limiter.snapshot().shedByPriority.normal).toBe(0);
    });

    it('once the queue has stood for the interval, sheds whoever waited or would wait past the target; critical waits', async () => {
      const { clock, limiter, acquire, holder } = await measured();
      // From 100 ms the target serves one request at a time while arrivals keep its queue at three.
      const high = track('high', acquire('high'));
      const normal = track('normal', acquire('normal'));
      const batch = track('batch', acquire('batch'));
      clock.advance(50);
      const first = track('first', acquire('critical'));
      await settle();
      // Nothing has been served yet: a queue that has not moved is not judged (requests that
      // started together finish together).
      expect([high, normal, batch, first].map((w) => w.error)).toEqual([
        undefined,
        undefined,
        undefined,
        undefined,
      ]);
      clock.advance(10);
      holder.success(1);
      await settle();
      expect(first.permit?.queuedMs).toBe(10);
      // 170 ms: an interval with one served; its queue of three is the length to compare with.
      clock.advance(10);
      const early = track('early', acquire('normal'));
      clock.advance(30);
      first.permit!.success(1);
      await settle();
      expect(high.permit?.queuedMs).toBe(100);
      // 230 ms: another interval with one served, and the queue is no shorter (three): standing.
      // The waiters past the target go, lowest priority first, and an arrival that would wait
      // longer than the target is refused; critical waits.
      clock.advance(30);
      const critical = track('critical', acquire('critical'));
      const late = track('late', acquire('normal'));
      await settle();
      expect(batch.error).toMatchObject({ reason: 'queue_delay', priority: 'batch', status: 503 });
      expect(batch.error?.message).toContain(
        'Shed: this batch-priority request waited 130 ms in the queue for sim/sim-fast, which has been standing for',
      );
      expect(normal.error).toMatchObject({ reason: 'queue_delay', priority: 'normal' });
      expect(early.error).toMatchObject({ reason: 'queue_delay', priority: 'normal' });
      expect(late.error).toMatchObject({ reason: 'queue_delay', priority: 'normal' });
      expect(late.error?.message).toContain('a normal-priority request would wait about');
      expect(critical.error).toBeUndefined();
      expect(limiter.snapshot()).toMatchObject({
        queued: 1,
        queuedByPriority: { critical: 1, high: 0, normal: 0, low: 0, batch: 0 },
        shedByPriority: { critical: 0, high: 0, normal: 3, low: 0, batch: 1 },
      });
      high.permit!.success(1);
      await settle();
      expect(critical.permit?.queuedMs).toBe(0);
    });

    it('does not count a queue as standing while the limit grows to absorb it (slow start)', async () => {
      const clock = new ManualClock();
      let limit = 1;
      const doubling: LimitAlgorithm = {
        name: 'test',
        get limit() {
          return limit;
        },
        update() {
          limit = Math.min(2 * limit, 64);
          return limit;
        },
      };
      const limiter = new Limiter(
        { target: 'sim/sim-fast', algorithm: doubling, initialHoldMs: 60, queueShare: everyShareFull },
        clock,
      );
      const acquire = (priority: Priority) =>
        limiter.acquire({ priority, deadlineAt: Number.POSITIVE_INFINITY });
      let held = [await acquire('normal')];
      const burst = Array.from({ length: 30 }, (_, i) => track(`w${i}`, acquire('batch')));
      // Every 60 ms all permits come back and the limit doubles: the queue stands for 240 ms, four
      // hold times, and drains only as the limit catches up with it.
      for (let round = 0; round < 5; round++) {
        clock.advance(60);
        for (const permit of held) permit.success(1);
        await settle();
        held = burst.flatMap((w) => (w.permit && !held.includes(w.permit) ? [w.permit] : []));
      }
      expect(burst.filter((w) => w.error)).toEqual([]);
      expect(burst.every((w) => w.permit)).toBe(true);
    });

    it('stops shedding for delay once the queue has been empty for the interval', async () => {
      const { clock, acquire, holder } = await measured();
      // One at a time, with arrivals keeping one waiting: standing at 230 ms.
      const n1 = track('n1', acquire('normal'));
      const n2 = track('n2', acquire('normal'));
      clock.advance(60);
      holder.success(1);
      await settle();
      clock.advance(10);
      const n3 = track('n3', acquire('normal'));
      clock.advance(30);
      n1.permit!.success(1);
      await settle();
      clock.advance(30);
      // Shedding n3 empties the queue at 230 ms, which is no relief yet.
      const during = track('during', acquire('normal'));
      await settle();
      expect(n3.error).toMatchObject({ reason: 'queue_delay' });
      expect(during.error).toMatchObject({ reason: 'queue_delay' });

      // Empty from 230 ms to 290 ms: more than an interval. Waits are bounded by deadlines again.
      clock.advance(60);
      const after = track('after', acquire('normal'));
      clock.advance(100);
      n2.permit!.success(1);
      await settle();
      expect(after.error).toBeUndefined();
      expect(after.permit?.queuedMs).toBe(100);
    });

    it('sheds nothing for delay before a permit has been released: until then the hold time is a guess', async () => {
      const { clock, limiter, acquire } = setup(1, { initialHoldMs: 100 });
      await acquire('normal');
      const waiters = [track('normal', acquire('normal')), track('batch', acquire('batch'))];
      clock.advance(5_000);
      const arrival = track('arrival', acquire('low'));
      await settle();
      expect([...waiters, arrival].map((w) => w.error)).toEqual([undefined, undefined, undefined]);
      expect(limiter.snapshot().queued).toBe(3);
    });

    it('never sheds a wait under the floors, however fast the target: 50 ms, not a tenth of its hold time', async () => {
      const { clock, acquire, holder } = await measured({
        initialHoldMs: 10,
        delayTargetMinMs: 50,
        delayIntervalMinMs: 100,
      });
      // Hold times of 30 to 50 ms: the fractions alone would be a target of 3 to 5 ms and an
      // interval of 15 to 25 ms. One served at a time, with arrivals keeping the queue up.
      const normal = track('normal', acquire('normal'));
      const batch = track('batch', acquire('batch'));
      clock.advance(50);
      holder.success(1);
      await settle();
      clock.advance(60);
      const first = track('first', acquire('low'));
      clock.advance(40);
      normal.permit!.success(1);
      await settle();
      clock.advance(30);
      const second = track('second', acquire('low'));
      clock.advance(40);
      // 320 ms: two intervals of 100 ms, each with one served, and the queue no shorter: standing.
      const critical = track('critical', acquire('critical'));
      await settle();
      expect(batch.error?.reason).toBe('queue_delay');
      expect(batch.error?.message).toContain('beyond the queue-delay target of 50 ms');
      // Waited 40 ms: more than a tenth of the hold time, less than the floor.
      expect(second.error).toBeUndefined();
      expect(critical.error).toBeUndefined();
      first.permit!.success(1);
    });

    it('with a delay target of 0, a standing queue is bounded by deadlines and its length alone', async () => {
      const { clock, acquire, holder } = await measured({ delayTarget: 0 });
      const waiter = track('waiter', acquire('batch'));
      clock.advance(1_000);
      const arrival = track('arrival', acquire('batch'));
      holder.success(1);
      await settle();
      expect(waiter.permit?.queuedMs).toBe(1_000);
      expect(arrival.error).toBeUndefined();
    });
  });

  it('a queued request whose deadline passes leaves the queue', async () => {
    const { clock, limiter, acquire } = setup(1);
    await acquire('normal');
    const waiter = track('waiter', acquire('high', 5_000));
    clock.advance(4_999);
    await settle();
    expect(waiter.error).toBeUndefined();
    clock.advance(1);
    await settle();
    expect(waiter.error).toMatchObject({ reason: 'deadline', priority: 'high', retryAfterMs: 1_000 });
    expect(waiter.error?.message).toBe(
      'Shed: the deadline passed after 5.0s in the queue for sim/sim-fast (0 waiting, limit 1). Retry after 1s.',
    );
    expect(limiter.snapshot()).toMatchObject({ queued: 0, shedByPriority: { high: 1 } });
  });

  it('a queued request whose client disconnects leaves the queue', async () => {
    const { clock, limiter, acquire } = setup(1);
    const holder = await acquire('normal');
    const client = new AbortController();
    const waiter = track('waiter', acquire('normal', 30_000, client.signal));
    const next = track('next', acquire('normal', 30_000));
    client.abort();
    await settle();
    expect(waiter.error).toMatchObject({ reason: 'cancelled', status: 499, code: 'client_closed_request' });
    expect(limiter.snapshot()).toMatchObject({ queued: 1, cancelled: 1, shedByPriority: { normal: 0 } });
    holder.success(10);
    await settle();
    expect(next.permit).toBeDefined();
    expect(waiter.permit).toBeUndefined();
    // Its deadline timer went with it.
    expect(clock.pending).toBe(0);
  });

  it('refuses a request whose client has already gone, even with a free slot', async () => {
    const { limiter, acquire } = setup(1);
    await expect(acquire('normal', 30_000, AbortSignal.abort())).rejects.toMatchObject({
      reason: 'cancelled',
    });
    expect(limiter.snapshot()).toMatchObject({ inflight: 0, admitted: 0 });
  });

  it('a permit released twice counts once', async () => {
    const { algorithm, limiter, acquire } = setup(1);
    const permit = await acquire('normal');
    const first = track('first', acquire('normal'));
    const second = track('second', acquire('normal'));
    permit.success(10);
    permit.success(10);
    permit.dropped();
    permit.ignore();
    await settle();
    expect(algorithm.samples).toHaveLength(1);
    expect(first.permit).toBeDefined();
    expect(second.permit).toBeUndefined();
    expect(limiter.snapshot()).toMatchObject({ inflight: 1, queued: 1, dropped: 0, admitted: 2 });
  });

  it('dropped permits feed the algorithm as drops', async () => {
    const { clock, algorithm, limiter, acquire } = setup(4);
    const first = await acquire('normal');
    const second = await acquire('normal');
    const third = await acquire('normal');
    clock.advance(300);
    second.dropped();
    first.success(120);
    third.ignore();
    expect(algorithm.samples).toEqual([
      { latencyMs: 300, inflight: 2, atLimit: false, dropped: true, at: 300 },
      { latencyMs: 120, inflight: 1, atLimit: false, dropped: false, at: 300 },
    ]);
    expect(limiter.snapshot()).toMatchObject({ inflight: 0, dropped: 1, admitted: 3 });
  });

  it('admits as many waiters as a raised limit allows', async () => {
    const clock = new ManualClock();
    let limit = 1;
    const growing: LimitAlgorithm = {
      name: 'test',
      get limit() {
        return limit;
      },
      update() {
        limit = 3;
        return limit;
      },
    };
    const limiter = new Limiter({ target: 'sim/sim-fast', algorithm: growing }, clock);
    const holder = await limiter.acquire({ priority: 'normal', deadlineAt: Number.POSITIVE_INFINITY });
    const waiters = [1, 2, 3].map((i) =>
      track(`w${i}`, limiter.acquire({ priority: 'normal', deadlineAt: Number.POSITIVE_INFINITY })),
    );
    holder.success(10);
    await settle();
    expect(waiters.map((w) => w.permit !== undefined)).toEqual([true, true, true]);
    expect(limiter.snapshot()).toMatchObject({ limit: 3, inflight: 3, queued: 0 });
  });
});
