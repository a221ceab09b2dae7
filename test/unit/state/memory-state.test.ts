import { describe, expect, it } from 'vitest';
import { MemoryState } from '../../../src/state/memory-state.js';
import { describeSharedStateContract } from '../../support/shared-state-contract.js';

describeSharedStateContract('memory', async () => new MemoryState());

describe('memory state answers', () => {
  it('at once, with values rather than promises, so admission takes no promise round', () => {
    const state = new MemoryState();
    const now = Date.parse('2026-03-14T10:00:00.000Z');
    expect(
      state.reserve('a', [{ counter: 'c', amount: 5, limit: 10, expiresAt: null }], now + 1000, now),
    ).toEqual({
      ok: true,
    });
    expect(state.take([{ bucket: 'b', limit: 10, periodMs: 60_000, amount: 1 }], now)).toMatchObject({
      ok: true,
      buckets: [{ remaining: 9 }],
    });
    expect(state.settle('a', [{ counter: 'c', amount: 3, expiresAt: null }], now)).toEqual([
      { before: 0, after: 3 },
    ]);
    expect(state.balances(['c'], now)).toEqual([{ spent: 3, reserved: 0 }]);
  });
});

describe('memory state settlement', () => {
  const now = Date.parse('2026-03-14T10:00:00.000Z');

  it('charges the counters its hold was on, or the ones that replaced them once they expired', () => {
    const state = new MemoryState();
    // A hold on a counter whose period ends in a second, and one on a counter that stays.
    state.reserve(
      'a',
      [
        { counter: 'day', amount: 5, limit: 100, expiresAt: now + 1000 },
        { counter: 'month', amount: 5, limit: 100, expiresAt: null },
      ],
      now + 60_000,
      now,
    );
    // Past its expiry another request's hold forgets the day counter and makes a new one.
    state.reserve(
      'b',
      [{ counter: 'day', amount: 7, limit: 100, expiresAt: now + 90_000 }],
      now + 60_000,
      now + 1500,
    );
    // The first request settles with a clock behind the second's (another timer, a clock stepped back):
    // its hold still points at the forgotten counter, which must not take the spend.
    expect(
      state.settle(
        'a',
        [
          { counter: 'day', amount: 3, expiresAt: now + 90_000 },
          { counter: 'month', amount: 3, expiresAt: null },
        ],
        now + 900,
      ),
    ).toEqual([
      { before: 0, after: 3 },
      { before: 0, after: 3 },
    ]);
    expect(state.balances(['day', 'month'], now + 900)).toEqual([
      { spent: 3, reserved: 7 },
      { spent: 3, reserved: 0 },
    ]);
    // A settlement whose charges name other counters than its hold was on charges those.
    state.reserve(
      'c',
      [{ counter: 'month', amount: 4, limit: 100, expiresAt: null }],
      now + 60_000,
      now + 1000,
    );
    state.settle('c', [{ counter: 'other', amount: 2, expiresAt: null }], now + 1000);
    expect(state.balances(['month', 'other'], now + 1000)).toEqual([
      { spent: 3, reserved: 0 },
      { spent: 2, reserved: 0 },
    ]);
  });
});

describe('memory state snapshot', () => {
  const now = Date.parse('2026-03-14T10:00:00.000Z');
  const dayEnd = Date.parse('2026-03-15T00:00:00.000Z');

  it('keeps settled spend of live counters, not holds, and not counters whose period is over', async () => {
    const state = new MemoryState();
    await state.settle('a', [{ counter: 'month', amount: 40, expiresAt: null }], now);
    await state.settle('b', [{ counter: 'day', amount: 7, expiresAt: dayEnd }], now);
    await state.reserve(
      'c',
      [{ counter: 'month', amount: 30, limit: 100, expiresAt: null }],
      now + 60_000,
      now,
    );
    expect(state.snapshot(now)).toEqual({
      month: { spent: 40, expiresAt: null },
      day: { spent: 7, expiresAt: dayEnd },
    });
    expect(state.snapshot(dayEnd)).toEqual({ month: { spent: 40, expiresAt: null } });

    const restored = new MemoryState();
    restored.restore(state.snapshot(now), now);
    expect(await restored.balances(['month', 'day'], now)).toEqual([
      { spent: 40, reserved: 0 },
      { spent: 7, reserved: 0 },
    ]);
    const late = new MemoryState();
    late.restore(state.snapshot(now), dayEnd);
    expect(await late.balances(['day'], dayEnd)).toEqual([{ spent: 0, reserved: 0 }]);
  });
});
