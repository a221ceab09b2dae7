import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BudgetDirectory, budgetRule } from '../../../src/policy/budget-directory.js';
import { configPolicy, withStoredBudgets } from '../../../src/policy/policy-source.js';
import type { ControlStore } from '../../../src/store/control-store.js';
import { ManualClock } from '../../../src/time/manual-clock.js';
import { budget } from '../../support/control-store-contract.js';
import { openTwoNodes, type TwoNodes } from '../../support/two-nodes.js';

const REFRESH_MS = 5_000;

let nodes: TwoNodes;
let store: ControlStore;
let otherNode: ControlStore;
let clock: ManualClock;
let errors: unknown[];
let directory: BudgetDirectory;

beforeEach(async () => {
  nodes = await openTwoNodes('sluice-budgets-');
  ({ store, otherNode } = nodes);
  clock = new ManualClock(0);
  errors = [];
  directory = new BudgetDirectory({
    store,
    refreshMs: REFRESH_MS,
    clock,
    onRefreshError: (error) => errors.push(error),
  });
});

afterEach(async () => {
  directory.stop();
  await directory.settled();
  await nodes.close();
});

const names = (rules: readonly { name: string }[]) => rules.map((r) => r.name);

describe('BudgetDirectory', () => {
  it('reads a stored budget as the rule sluice.yaml would declare, leaving out what is unset', () => {
    expect(budgetRule(budget(1, { softLimitPct: null, webhook: 'https://hooks.example.com/x' }))).toEqual({
      name: 'budget-1',
      scope: { team: 'team-1' },
      period: 'month',
      limitUsd: 250.5,
      webhook: 'https://hooks.example.com/x',
    });
  });

  it('answers from what it loaded, and sees another node’s writes at its next periodic reload', async () => {
    await store.budgets.insert(budget(1, { scope: 'key', scopeName: 'web' }));
    await directory.start();
    expect(names(directory.policy().limitsFor({ keyName: 'web' }, 'chat').budgets)).toEqual(['budget-1']);
    expect(directory.record('budget-1')?.id).toBe('budget_1');

    await otherNode.budgets.insert(budget(2, { scope: 'org', scopeName: 'acme' }));
    await otherNode.budgets.delete('budget_1');
    expect(names(directory.policy().budgets())).toEqual(['budget-1']);
    clock.advance(REFRESH_MS);
    await directory.settled();
    expect(names(directory.policy().budgets())).toEqual(['budget-2']);
    expect(directory.policy().limitsFor({ keyName: 'web', org: 'acme' }, 'chat').budgets).toHaveLength(1);
    expect(directory.record('budget-1')).toBeUndefined();
  });

  it('keeps the budgets it has when the store fails, and reports the failure', async () => {
    await store.budgets.insert(budget(1));
    await directory.start();
    await store.close();
    clock.advance(REFRESH_MS);
    await directory.settled();
    expect(errors).toHaveLength(1);
    expect(names(directory.policy().budgets())).toEqual(['budget-1']);
    await store.open();
  });

  it('a refresh asked for during a reload runs after it, so it sees a write made before the ask', async () => {
    await directory.start();
    const first = directory.refresh();
    await store.budgets.insert(budget(1));
    await Promise.all([first, directory.refresh()]);
    expect(names(directory.policy().budgets())).toEqual(['budget-1']);
  });
});

describe('withStoredBudgets', () => {
  it('applies the config’s budgets and rate limits and the store’s budgets together', async () => {
    const config = configPolicy({
      budgets: [{ name: 'file', scope: { team: 'team-1' }, period: 'day', limitUsd: 1 }],
      rateLimits: [{ scope: { route: 'chat' }, requestsPerMinute: 10 }],
    });
    await store.budgets.insert(budget(1));
    await directory.start();
    const policy = withStoredBudgets(config, () => directory.policy());
    const limits = policy.limitsFor({ keyName: 'k', team: 'team-1' }, 'chat');
    expect(names(limits.budgets)).toEqual(['file', 'budget-1']);
    expect(limits.rateLimits).toHaveLength(1);
    expect(names(policy.budgets())).toEqual(['file', 'budget-1']);
    expect(policy.limitsFor({ keyName: 'k', team: 'other' }, 'embed')).toEqual({
      budgets: [],
      rateLimits: [],
    });
  });
});
