import { describe, expect, it } from 'vitest';
import {
  type BudgetHold,
  type BudgetRefusal,
  budgetLedger,
  isBudgetRefusal,
  type SoftLimitCrossing,
} from '../../../src/policy/ledger.js';
import { type BudgetRule, budgetSchema } from '../../../src/policy/limit-rules.js';
import { MemoryState } from '../../../src/state/memory-state.js';
import { ManualClock } from '../../../src/time/manual-clock.js';

const budget = (input: Record<string, unknown>): BudgetRule => budgetSchema.parse(input);
const monthly = budget({ name: 'web-monthly', scope: { key: 'web' }, period: 'month', limitUsd: 1 });
const holdTtlMs = 600_000;

function setup(start = '2026-03-14T10:00:00.000Z') {
  const clock = new ManualClock(Date.parse(start));
  const state = new MemoryState();
  const crossings: SoftLimitCrossing[] = [];
  const ledger = budgetLedger({
    state,
    now: () => clock.now(),
    holdTtlMs,
    onSoftLimit: (crossing) => crossings.push(crossing),
  });
  const hold = async (id: string, rules: BudgetRule[], usd: number | null, tokens = 100) => {
    const result = await ledger.reserve(id, rules, { usd, tokens });
    if (isBudgetRefusal(result)) throw new Error(`expected a hold, got a refusal of ${result.rule.name}`);
    return result;
  };
  const refusal = async (id: string, rules: BudgetRule[], usd: number | null, tokens = 100) => {
    const result = await ledger.reserve(id, rules, { usd, tokens });
    if (!isBudgetRefusal(result)) throw new Error('expected a refusal, got a hold');
    return result;
  };
  return { clock, state, ledger, crossings, hold, refusal };
}

describe('budget ledger', () => {
  it('holds each request’s worst case and refuses the one whose worst case no longer fits', async () => {
    const { ledger, hold, refusal } = setup();
    await hold('a', [monthly], 0.5);
    await hold('b', [monthly], 0.3);
    const refused: BudgetRefusal = await refusal('c', [monthly], 0.25);
    expect(refused).toEqual({
      rule: monthly,
      unit: 'usd',
      window: {
        id: '2026-03',
        startsAt: Date.parse('2026-03-01T00:00:00Z'),
        resetsAt: Date.parse('2026-04-01T00:00:00Z'),
      },
      limit: 1,
      spent: 0,
      reserved: 0.8,
      requested: 0.25,
    });
    expect((await ledger.status([monthly]))[0]?.usd).toEqual({ limit: 1, spent: 0, reserved: 0.8 });
  });

  it('settles the actual cost and hands the rest of the hold back', async () => {
    const { ledger, hold } = setup();
    const a = await hold('a', [monthly], 0.5);
    await ledger.settle(a, { usd: 0.123456789, tokens: 40 });
    expect((await ledger.status([monthly]))[0]?.usd).toEqual({ limit: 1, spent: 0.123456789, reserved: 0 });
    await hold('b', [monthly], 0.876543211);
  });

  it('releases a failed request’s hold without spending anything', async () => {
    const { ledger, hold } = setup();
    const a = await hold('a', [monthly], 0.9);
    await ledger.release(a);
    expect((await ledger.status([monthly]))[0]?.usd).toEqual({ limit: 1, spent: 0, reserved: 0 });
  });

  it('holds on the key’s, team’s and org’s budgets together or on none of them', async () => {
    const { ledger, hold, refusal } = setup();
    const key = budget({ name: 'key', scope: { key: 'web' }, limitUsd: 10 });
    const team = budget({ name: 'team', scope: { team: 'search' }, limitTokens: 1000 });
    const org = budget({ name: 'org', scope: { org: 'acme' }, limitUsd: 100, limitTokens: 1_000_000 });
    await hold('a', [key, team, org], 1, 900);
    const refused = await refusal('b', [key, team, org], 1, 200);
    expect(refused).toMatchObject({ rule: team, unit: 'tokens', limit: 1000, reserved: 900, requested: 200 });
    const status = await ledger.status([key, team, org]);
    expect(status.map((s) => [s.usd?.reserved, s.tokens?.reserved])).toEqual([
      [1, undefined],
      [undefined, 900],
      [1, 900],
    ]);
  });

  it('refuses a request that alone could cost more than the whole budget', async () => {
    const { refusal } = setup();
    expect(await refusal('big', [monthly], 1.5)).toMatchObject({ spent: 0, reserved: 0, requested: 1.5 });
  });

  it('counts spend of unpriced requests as zero dollars, yet refuses them once the budget is spent', async () => {
    const { ledger, hold, refusal } = setup();
    const unpriced = await hold('u', [monthly], null);
    await ledger.settle(unpriced, { usd: null, tokens: 500 });
    const priced = await hold('p', [monthly], 1);
    await ledger.settle(priced, { usd: 1, tokens: 10 });
    expect((await ledger.status([monthly]))[0]?.usd?.spent).toBe(1);
    await refusal('u2', [monthly], null);
  });

  it('starts a day budget afresh at 00:00 UTC, with the request admitted before midnight settling on its own day', async () => {
    const { clock, ledger, hold, refusal } = setup('2026-03-14T23:59:00.000Z');
    const daily = budget({ name: 'daily', scope: { team: 'search' }, period: 'day', limitTokens: 1000 });
    const late = await hold('late', [daily], null, 900);
    await refusal('x', [daily], null, 200);
    clock.advanceTo(Date.parse('2026-03-15T00:00:00.000Z'));
    await ledger.settle(late, { usd: null, tokens: 800 });
    const [today] = await ledger.status([daily]);
    expect(today).toMatchObject({ window: { id: '2026-03-15' }, tokens: { spent: 0, reserved: 0 } });
    await hold('y', [daily], null, 1000);
  });

  it('starts a month budget afresh on the 1st, and never resets a total budget', async () => {
    const { clock, ledger, hold, refusal } = setup('2026-03-31T23:00:00.000Z');
    const total = budget({ name: 'lifetime', scope: { key: 'web' }, period: 'total', limitUsd: 2 });
    await ledger.settle(await hold('a', [monthly, total], 1), { usd: 1, tokens: 1 });
    await refusal('b', [monthly], 0.01);
    clock.advanceTo(Date.parse('2026-04-01T00:00:00.000Z'));
    await ledger.settle(await hold('c', [monthly, total], 1), { usd: 1, tokens: 1 });
    const refused = await refusal('d', [monthly, total], 0.01);
    expect(refused).toMatchObject({ rule: { name: 'web-monthly' }, window: { id: '2026-04' } });
    clock.advanceTo(Date.parse('2026-05-01T00:00:00.000Z'));
    expect(await refusal('e', [monthly, total], 0.01)).toMatchObject({
      rule: { name: 'lifetime' },
      spent: 2,
      window: { resetsAt: null },
    });
  });

  it('lets the hold of a request that never settles (a crashed node) lapse after the hold TTL', async () => {
    const { clock, hold, refusal } = setup();
    await hold('crashed', [monthly], 0.9);
    clock.advance(holdTtlMs - 1);
    await refusal('a', [monthly], 0.5);
    clock.advance(1);
    await hold('b', [monthly], 0.5);
  });

  it('crosses the soft limit once per period, when settled spend reaches it, never on a hold', async () => {
    const { clock, ledger, hold, crossings } = setup('2026-03-31T12:00:00.000Z');
    const soft = budget({ ...monthly, softLimitPct: 50, webhook: 'http://127.0.0.1:9/hook' });
    const big = await hold('a', [soft], 0.9);
    expect(crossings).toEqual([]);
    await ledger.settle(big, { usd: 0.3, tokens: 1 });
    expect(crossings).toEqual([]);
    await ledger.settle(await hold('b', [soft], 0.3), { usd: 0.2, tokens: 1 });
    await ledger.settle(await hold('c', [soft], 0.3), { usd: 0.2, tokens: 1 });
    expect(crossings).toEqual([
      {
        rule: soft,
        unit: 'usd',
        window: expect.objectContaining({ id: '2026-03' }),
        limit: 1,
        softLimit: 0.5,
        spent: 0.5,
      },
    ]);
    clock.advanceTo(Date.parse('2026-04-02T00:00:00.000Z'));
    await ledger.settle(await hold('d', [soft], 0.6), { usd: 0.6, tokens: 1 });
    expect(crossings.map((c) => c.window.id)).toEqual(['2026-03', '2026-04']);
  });

  it('passes a limit only by what requests cost beyond their own worst case', async () => {
    const { ledger, hold } = setup();
    const holds: BudgetHold[] = [];
    for (let i = 0; i < 4; i++) holds.push(await hold(`r${i}`, [monthly], 0.25));
    // The estimate was too low for two of them (say, the prompt had more tokens than guessed).
    const actual = [0.25, 0.3, 0.2, 0.35];
    await Promise.all(holds.map((h, i) => ledger.settle(h, { usd: actual[i] as number, tokens: 1 })));
    const spent = (await ledger.status([monthly]))[0]?.usd?.spent as number;
    const excess = actual.reduce((sum, a) => sum + Math.max(0, a - 0.25), 0);
    expect(spent).toBeCloseTo(1.1, 9);
    expect(spent).toBeLessThanOrEqual(1 + excess + 1e-9);
  });

  it('under many concurrent requests never holds more than the limit, and spends exactly what was settled', async () => {
    const { ledger } = setup();
    const costs = Array.from({ length: 300 }, (_, i) => 0.001 + (i % 7) * 0.0013);
    let settled = 0;
    await Promise.all(
      costs.map(async (cost, i) => {
        const result = await ledger.reserve(`r${i}`, [monthly], { usd: 0.01, tokens: 1 });
        if (isBudgetRefusal(result)) return;
        const [status] = await ledger.status([monthly]);
        expect((status?.usd?.spent ?? 0) + (status?.usd?.reserved ?? 0)).toBeLessThanOrEqual(1 + 1e-9);
        await ledger.settle(result, { usd: cost, tokens: 1 });
        settled += Math.round(cost * 1e9);
      }),
    );
    const [status] = await ledger.status([monthly]);
    expect(status?.usd?.spent).toBe(settled / 1e9);
    expect(status?.usd?.spent).toBeLessThanOrEqual(1);
  });
});
