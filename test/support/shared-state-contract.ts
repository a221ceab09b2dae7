import { describe, expect, it, onTestFinished } from 'vitest';
import type { BucketTake, CounterHold, SharedState } from '../../src/state/shared-state.js';

const minute = 60_000;
/**
 * The time every test starts at. The state is told the time and never reads a clock, but
 * Redis drops keys by its own clock, so the tests live near the real present.
 */
const t0 = Math.ceil(Date.now() / minute) * minute;

const hold = (
  counter: string,
  amount: number,
  limit: number,
  expiresAt: number | null = null,
): CounterHold => ({
  counter,
  amount,
  limit,
  expiresAt,
});
const perMinute = (bucket: string, limit: number, amount = 1): BucketTake => ({
  bucket,
  limit,
  periodMs: minute,
  amount,
});

/**
 * The behaviour every SharedState must have, memory and Redis alike. `open` gives a fresh,
 * empty state for each test.
 */
export function describeSharedStateContract(name: string, open: () => Promise<SharedState>): void {
  const fresh = async () => {
    const state = await open();
    onTestFinished(() => state.close());
    return state;
  };

  describe(`${name} shared state: budget counters`, () => {
    it('holds amounts within the limit and refuses the one that would pass it', async () => {
      const state = await fresh();
      expect(await state.reserve('a', [hold('c', 60, 100)], t0 + minute, t0)).toEqual({ ok: true });
      expect(await state.reserve('b', [hold('c', 40, 100)], t0 + minute, t0)).toEqual({ ok: true });
      expect(await state.reserve('x', [hold('c', 1, 100)], t0 + minute, t0)).toEqual({
        ok: false,
        refused: 0,
        balance: { spent: 0, reserved: 100 },
      });
      expect(await state.balances(['c'], t0)).toEqual([{ spent: 0, reserved: 100 }]);
    });

    it('holds on every counter or on none, and names the first counter that refused', async () => {
      const state = await fresh();
      await state.settle('earlier', [{ counter: 'team', amount: 95, expiresAt: null }], t0);
      const refused = await state.reserve(
        'r',
        [hold('key', 10, 1000), hold('team', 10, 100)],
        t0 + minute,
        t0,
      );
      expect(refused).toEqual({ ok: false, refused: 1, balance: { spent: 95, reserved: 0 } });
      expect(await state.balances(['key', 'team'], t0)).toEqual([
        { spent: 0, reserved: 0 },
        { spent: 95, reserved: 0 },
      ]);
    });

    it('settles actual spend in place of the hold and reports spend before and after', async () => {
      const state = await fresh();
      await state.reserve('r1', [hold('usd', 500, 1000), hold('tokens', 70, 100)], t0 + minute, t0);
      const settled = await state.settle(
        'r1',
        [
          { counter: 'usd', amount: 120, expiresAt: null },
          { counter: 'tokens', amount: 30, expiresAt: null },
        ],
        t0 + 10,
      );
      expect(settled).toEqual([
        { before: 0, after: 120 },
        { before: 0, after: 30 },
      ]);
      expect(await state.balances(['usd', 'tokens'], t0 + 10)).toEqual([
        { spent: 120, reserved: 0 },
        { spent: 30, reserved: 0 },
      ]);
      // The room the hold freed is there for the next request.
      expect(await state.reserve('r2', [hold('tokens', 70, 100)], t0 + minute, t0 + 20)).toEqual({
        ok: true,
      });
    });

    it('releases a hold without spending anything', async () => {
      const state = await fresh();
      await state.reserve('r', [hold('c', 80, 100)], t0 + minute, t0);
      await state.release('r', ['c'], t0 + 5);
      expect(await state.balances(['c'], t0 + 5)).toEqual([{ spent: 0, reserved: 0 }]);
      // Releasing twice, or a hold never made, changes nothing.
      await state.release('r', ['c'], t0 + 6);
      await state.release('never', ['c', 'other'], t0 + 6);
      expect(await state.balances(['c'], t0 + 6)).toEqual([{ spent: 0, reserved: 0 }]);
    });

    it('ends a hold on every counter it holds, released or lapsed, and leaves other holds alone', async () => {
      // 's' lapses after 'q', made later: each hold lapses at its own expiry, whatever the order.
      const state = await fresh();
      await state.reserve('r', [hold('a', 10, 100), hold('b', 20, 100)], t0 + minute, t0);
      await state.reserve('s', [hold('b', 5, 100)], t0 + 2 * minute, t0);
      await state.release('r', ['a', 'b'], t0 + 1);
      expect(await state.balances(['a', 'b'], t0 + 1)).toEqual([
        { spent: 0, reserved: 0 },
        { spent: 0, reserved: 5 },
      ]);
      await state.reserve('q', [hold('a', 30, 100), hold('b', 30, 100)], t0 + minute, t0 + 2);
      expect(await state.balances(['a', 'b'], t0 + 2)).toEqual([
        { spent: 0, reserved: 30 },
        { spent: 0, reserved: 35 },
      ]);
      expect(await state.balances(['b', 'a'], t0 + minute)).toEqual([
        { spent: 0, reserved: 5 },
        { spent: 0, reserved: 0 },
      ]);
    });

    it('lets a hold that is never settled lapse at its expiry (a node crashed mid-request)', async () => {
      const state = await fresh();
      await state.reserve('crashed', [hold('c', 90, 100)], t0 + minute, t0);
      expect(
        await state.reserve('early', [hold('c', 20, 100)], t0 + 2 * minute, t0 + minute - 1),
      ).toMatchObject({
        ok: false,
      });
      expect(await state.reserve('later', [hold('c', 20, 100)], t0 + 2 * minute, t0 + minute)).toEqual({
        ok: true,
      });
      expect(await state.balances(['c'], t0 + minute)).toEqual([{ spent: 0, reserved: 20 }]);
    });

    it('lets each hold lapse at its own expiry, after earlier holds were settled', async () => {
      const state = await fresh();
      await state.reserve('first', [hold('c', 10, 100)], t0 + minute, t0);
      await state.settle('first', [{ counter: 'c', amount: 5, expiresAt: null }], t0 + 1);
      await state.reserve('second', [hold('c', 30, 100)], t0 + 2 * minute, t0 + minute / 2);
      // Past the first hold's expiry, the second still holds its room; past its own, it is gone.
      expect(await state.balances(['c'], t0 + minute + 1)).toEqual([{ spent: 5, reserved: 30 }]);
      expect(
        await state.reserve('third', [hold('c', 70, 100)], t0 + 3 * minute, t0 + minute + 1),
      ).toMatchObject({ ok: false });
      expect(await state.reserve('third', [hold('c', 70, 100)], t0 + 3 * minute, t0 + 2 * minute)).toEqual({
        ok: true,
      });
      expect(await state.balances(['c'], t0 + 2 * minute)).toEqual([{ spent: 5, reserved: 70 }]);
    });

    it('still counts the spend of a request that settles after its hold lapsed', async () => {
      const state = await fresh();
      await state.reserve('slow', [hold('c', 50, 100)], t0 + minute, t0);
      await state.settle('slow', [{ counter: 'c', amount: 40, expiresAt: null }], t0 + 2 * minute);
      expect(await state.balances(['c'], t0 + 2 * minute)).toEqual([{ spent: 40, reserved: 0 }]);
    });

    it('never lets concurrent holds on one counter pass its limit', async () => {
      const state = await fresh();
      const results = await Promise.all(
        Array.from({ length: 200 }, (_, i) => state.reserve(`r${i}`, [hold('c', 3, 100)], t0 + minute, t0)),
      );
      expect(results.filter((r) => r.ok)).toHaveLength(33);
      expect(await state.balances(['c'], t0)).toEqual([{ spent: 0, reserved: 99 }]);
    });

    it('adds up concurrent settlements exactly', async () => {
      const state = await fresh();
      const amounts = Array.from({ length: 300 }, (_, i) => 1_000_000_007 + i * 13);
      await Promise.all(
        amounts.map((amount, i) => state.settle(`r${i}`, [{ counter: 'c', amount, expiresAt: null }], t0)),
      );
      const [balance] = await state.balances(['c'], t0);
      expect(balance?.spent).toBe(amounts.reduce((a, b) => a + b, 0));
    });

    it('reads untouched counters as zero', async () => {
      const state = await fresh();
      expect(await state.balances(['a', 'b'], t0)).toEqual([
        { spent: 0, reserved: 0 },
        { spent: 0, reserved: 0 },
      ]);
    });
  });

  describe(`${name} shared state: rate-limit buckets (GCRA)`, () => {
    it('lets a full bucket hand out its whole limit at once, then refuses until one interval refills', async () => {
      const state = await fresh();
      const takes = [];
      for (let i = 0; i < 6; i++) takes.push(await state.take([perMinute('b', 6)], t0));
      expect(takes.map((t) => t.ok)).toEqual([true, true, true, true, true, true]);
      expect(takes.map((t) => t.buckets[0]?.remaining)).toEqual([5, 4, 3, 2, 1, 0]);
      expect(takes[5]?.buckets[0]?.resetMs).toBe(minute);

      const refused = await state.take([perMinute('b', 6)], t0 + 1000);
      expect(refused).toEqual({
        ok: false,
        refused: 0,
        retryAfterMs: 9000,
        buckets: [{ remaining: 0, resetMs: minute - 1000 }],
      });
      expect((await state.take([perMinute('b', 6)], t0 + 10_000)).ok).toBe(true);
      expect((await state.take([perMinute('b', 6)], t0 + 10_000)).ok).toBe(false);
    });

    it('refills continuously: half a period gives back half the limit', async () => {
      const state = await fresh();
      await state.take([perMinute('tokens', 1000, 1000)], t0);
      expect(await state.take([perMinute('tokens', 1000, 501)], t0 + 30_000)).toMatchObject({
        ok: false,
        retryAfterMs: 60,
      });
      expect(await state.take([perMinute('tokens', 1000, 500)], t0 + 30_000)).toEqual({
        ok: true,
        buckets: [{ remaining: 0, resetMs: minute }],
      });
    });

    it('takes from every bucket or from none', async () => {
      const state = await fresh();
      await state.take([perMinute('route', 2)], t0);
      await state.take([perMinute('route', 2)], t0);
      const refused = await state.take([perMinute('key', 10), perMinute('route', 2)], t0);
      expect(refused).toMatchObject({ ok: false, refused: 1 });
      expect(refused.buckets[0]).toEqual({ remaining: 10, resetMs: 0 });
      const next = await state.take([perMinute('key', 10)], t0);
      expect(next.buckets[0]?.remaining).toBe(9);
    });

    it('corrects a take with the actual amount: gives back or charges more, never refusing', async () => {
      const state = await fresh();
      await state.take([perMinute('t', 600, 500)], t0);
      await state.adjust([perMinute('t', 600, -400)], t0);
      expect((await state.take([perMinute('t', 600, 500)], t0)).buckets[0]?.remaining).toBe(0);
      await state.adjust([perMinute('t', 600, 300)], t0);
      const refused = await state.take([perMinute('t', 600, 1)], t0);
      expect(refused).toMatchObject({ ok: false, retryAfterMs: 30_100 });
      // Giving back more than was ever taken leaves a full bucket, not more than full.
      await state.adjust([perMinute('t', 600, -10_000)], t0);
      expect((await state.take([perMinute('t', 600, 1)], t0)).buckets[0]?.remaining).toBe(599);
      await state.adjust([perMinute('untouched', 600, -5)], t0);
      expect((await state.take([perMinute('untouched', 600, 1)], t0)).buckets[0]?.remaining).toBe(599);
    });

    it('hands out exactly the limit to concurrent takers', async () => {
      const state = await fresh();
      const results = await Promise.all(
        Array.from({ length: 120 }, () => state.take([perMinute('b', 50)], t0)),
      );
      expect(results.filter((r) => r.ok)).toHaveLength(50);
    });

    it('rounds intervals the same way for limits that do not divide the period', async () => {
      const state = await fresh();
      const first = await state.take([perMinute('odd', 7, 3)], t0);
      expect(first).toEqual({ ok: true, buckets: [{ remaining: 3, resetMs: 25_714.286 }] });
      const refused = await state.take([perMinute('odd', 7, 5)], t0 + 1);
      expect(refused).toMatchObject({ ok: false, retryAfterMs: 8570.429 });
    });
  });
}
