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
