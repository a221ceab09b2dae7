import { describe, expect, it } from 'vitest';
import { budgetSchema, rateLimitSchema } from '../../../src/policy/limit-rules.js';
import { configPolicy, withStoredBudgets } from '../../../src/policy/policy-source.js';

const budgets = [
  { name: 'web', scope: { key: 'web' }, limitUsd: 10 },
  { name: 'search', scope: { team: 'search' }, limitUsd: 100 },
  { name: 'acme', scope: { org: 'acme' }, period: 'total', limitTokens: 1_000_000 },
  { name: 'other', scope: { key: 'batch' }, limitUsd: 1 },
].map((b) => budgetSchema.parse(b));
const rateLimits = [
  { scope: { key: 'web' }, requestsPerMinute: 60 },
  { scope: { team: 'search' }, tokensPerMinute: 100_000 },
  { scope: { route: 'chat' }, requestsPerMinute: 1000 },
  { scope: { route: 'cheap' }, requestsPerMinute: 10 },
].map((r) => rateLimitSchema.parse(r));

describe('config policy source', () => {
  const policy = configPolicy({ budgets, rateLimits });

  it('applies the budgets of the key, its team and its org, and the rate limits of the key, team and route', () => {
    const limits = policy.limitsFor({ keyName: 'web', team: 'search', org: 'acme' }, 'chat');
    expect(limits.budgets.map((b) => b.name)).toEqual(['web', 'search', 'acme']);
    expect(limits.rateLimits.map((r) => r.scope)).toEqual([
      { key: 'web' },
      { team: 'search' },
      { route: 'chat' },
    ]);
  });

  it('hands a subject the same lists from request to request, whether from one scope or several', () => {
    const subject = { keyName: 'web', team: 'search', org: 'acme' };
    const first = policy.limitsFor(subject, 'chat');
    const again = policy.limitsFor({ ...subject }, 'chat');
    expect(again.budgets).toBe(first.budgets);
    expect(again.rateLimits).toBe(first.rateLimits);
    const keyOnly = policy.limitsFor({ keyName: 'batch' }, 'other');
    expect(keyOnly.budgets.map((b) => b.name)).toEqual(['other']);
    expect(policy.limitsFor({ keyName: 'batch' }, 'other').budgets).toBe(keyOnly.budgets);
    // Another route is another list.
    expect(policy.limitsFor(subject, 'cheap').rateLimits.map((r) => r.scope)).toEqual([
      { key: 'web' },
      { team: 'search' },
      { route: 'cheap' },
    ]);
  });

  it('applies only route limits to an anonymous caller, and nothing when no rule matches', () => {
    expect(policy.limitsFor({ keyName: null }, 'cheap')).toEqual({
      budgets: [],
      rateLimits: [rateLimits[3]],
    });
    expect(policy.limitsFor({ keyName: 'nobody' }, 'other')).toEqual({ budgets: [], rateLimits: [] });
  });

  it('lists every budget for status pages', () => {
    expect(policy.budgets()).toEqual(budgets);
  });
});

describe('config policy with the control store’s budgets', () => {
  const stored = [{ name: 'web-stored', scope: { key: 'web' }, limitTokens: 500 }].map((b) =>
    budgetSchema.parse(b),
  );
  let current = configPolicy({ budgets: stored, rateLimits: [] });
  const policy = withStoredBudgets(configPolicy({ budgets, rateLimits }), () => current);

  it('applies both, as one list that stays the same from request to request until the store reloads', () => {
    const subject = { keyName: 'web', team: 'search', org: 'acme' };
    const first = policy.limitsFor(subject, 'chat');
    expect(first.budgets.map((b) => b.name)).toEqual(['web', 'search', 'acme', 'web-stored']);
    expect(policy.limitsFor({ ...subject }, 'chat').budgets).toBe(first.budgets);
    current = configPolicy({ budgets: [], rateLimits: [] });
    expect(policy.limitsFor(subject, 'chat').budgets.map((b) => b.name)).toEqual(['web', 'search', 'acme']);
    current = configPolicy({ budgets: stored, rateLimits: [] });
    const reloaded = policy.limitsFor(subject, 'chat');
    expect(reloaded.budgets.map((b) => b.name)).toEqual(['web', 'search', 'acme', 'web-stored']);
    expect(reloaded.budgets).not.toBe(first.budgets);
  });
});

describe('budget and rate-limit rules', () => {
  it('need at least one limit, and budget periods default to a month', () => {
    expect(budgetSchema.safeParse({ name: 'x', scope: { key: 'k' } }).success).toBe(false);
    expect(rateLimitSchema.safeParse({ scope: { key: 'k' } }).success).toBe(false);
    expect(budgetSchema.parse({ name: 'x', scope: { key: 'k' }, limitUsd: 5 }).period).toBe('month');
  });

  it('take exactly one scope', () => {
    expect(budgetSchema.safeParse({ name: 'x', scope: { key: 'k', team: 't' }, limitUsd: 1 }).success).toBe(
      false,
    );
    expect(rateLimitSchema.safeParse({ scope: { org: 'o' }, requestsPerMinute: 1 }).success).toBe(false);
  });
});
