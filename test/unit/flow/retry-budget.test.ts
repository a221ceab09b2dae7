import { describe, expect, it } from 'vitest';
import { RetryBudget } from '../../../src/flow/retry-budget.js';
import { ManualClock } from '../../../src/time/manual-clock.js';

function withdrawUntilRefused(budget: RetryBudget): number {
  let granted = 0;
  while (budget.tryWithdraw()) granted++;
  return granted;
}

describe('RetryBudget', () => {
  it('allows ratio × first attempts as extra attempts', () => {
    const budget = new RetryBudget({ ratio: 0.1, minPerSecond: 0 }, new ManualClock());
    for (let i = 0; i < 20; i++) budget.deposit();
    expect(budget.snapshot().balance).toBe(2);
    expect(withdrawUntilRefused(budget)).toBe(2);
    expect(budget.snapshot()).toEqual({ balance: 0, withdrawn: 2, refused: 1 });
  });

  it('keeps fractional deposits exact: ten deposits of 0.1 make one token', () => {
    const budget = new RetryBudget({ ratio: 0.1, minPerSecond: 0 }, new ManualClock());
    for (let i = 0; i < 9; i++) budget.deposit();
    expect(budget.tryWithdraw()).toBe(false);
    budget.deposit();
    expect(budget.tryWithdraw()).toBe(true);
  });

  it('always allows minPerSecond extra attempts each second, without deposits', () => {
    const clock = new ManualClock();
    const budget = new RetryBudget({ minPerSecond: 5 }, clock);
    expect(withdrawUntilRefused(budget)).toBe(5);
    clock.advance(999);
    expect(budget.tryWithdraw()).toBe(false);
    clock.advance(1);
    expect(withdrawUntilRefused(budget)).toBe(5);
  });

  it('spreads a fractional floor over the seconds', () => {
    const clock = new ManualClock();
    const budget = new RetryBudget({ minPerSecond: 0.5 }, clock);
    const perSecond: number[] = [];
    for (let s = 0; s < 4; s++) {
      perSecond.push(withdrawUntilRefused(budget));
      clock.advance(1_000);
    }
    expect(perSecond).toEqual([0, 1, 0, 1]);
  });

  it('lets deposits expire after ttl', () => {
    const clock = new ManualClock();
    const budget = new RetryBudget({ ratio: 0.1, minPerSecond: 0, ttlMs: 10_000 }, clock);
    for (let i = 0; i < 20; i++) budget.deposit();
    clock.advanceTo(9_999);
    expect(budget.tryWithdraw()).toBe(true);
    clock.advanceTo(10_000);
    expect(budget.tryWithdraw()).toBe(false);
    expect(budget.snapshot().balance).toBe(0);
  });

  describe('under a fully failing upstream, extra load ≤ ratio × requests + minPerSecond × seconds', () => {
    const seconds = 60;
    for (const perSecond of [1, 20, 100, 1_000]) {
      it(`over ${seconds} s at ${perSecond} requests per second, each retrying until refused`, () => {
        const clock = new ManualClock();
        const budget = new RetryBudget({ ratio: 0.1, minPerSecond: 5, ttlMs: 10_000 }, clock);
        const requests = seconds * perSecond;
        let extra = 0;
        for (let i = 0; i < requests; i++) {
          clock.advanceTo((i * 1_000) / perSecond);
          budget.deposit();
          // Every attempt fails, so the caller retries for as long as the budget lets it.
          extra += withdrawUntilRefused(budget);
        }
        const bound = 0.1 * requests + 5 * seconds;
        expect(extra).toBeLessThanOrEqual(bound);
        // The budget is a bound, not a block: nearly all of it is usable.
        expect(extra).toBeGreaterThanOrEqual(bound - 1);
        expect(budget.snapshot().withdrawn).toBe(extra);
      });
    }
  });
});
