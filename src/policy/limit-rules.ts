import { z } from 'zod';

/**
 * Budgets and rate limits, declared once: sluice.yaml's `budgets:` and `rateLimits:` lists
 * use these schemas, and so can any other source of rules (docs/keys-and-budgets.md).
 */

const name = z.string().min(1);

export const budgetScopeSchema = z
  .union([
    z.strictObject({ org: name }),
    z.strictObject({ team: name }),
    z.strictObject({ key: name.describe('An API key’s name.') }),
  ])
  .describe('Whose spend counts: one org, one team or one API key, e.g. { team: search }.');

export const rateLimitScopeSchema = z
  .union([
    z.strictObject({ key: name.describe('An API key’s name.') }),
    z.strictObject({ team: name }),
    z.strictObject({ route: name.describe('A route: every caller of it together.') }),
  ])
  .describe('Whose requests count: one API key, one team, or one route, e.g. { route: chat }.');

export const budgetPeriods = ['day', 'month', 'total'] as const;

/** A budget's fields before the check that it limits something: PATCH bodies derive from them. */
export const budgetFields = z.strictObject({
  name: z
    .string()
    .min(1)
    .regex(/^[A-Za-z0-9_.-]+$/, 'letters, digits, ".", "_" and "-"')
    .describe('Named in 402 errors, logs, metrics and webhooks.'),
  scope: budgetScopeSchema,
  period: z
    .enum(budgetPeriods)
    .default('month')
    .describe('day and month start at 00:00 UTC; total never resets.'),
  limitUsd: z
    .number()
    .positive()
    .max(9_000_000)
    .optional()
    .describe('Hard limit in US dollars: a request that could pass it gets 402.'),
  limitTokens: z
    .int()
    .min(1)
    .optional()
    .describe('Hard limit in tokens (prompt + output): a request that could pass it gets 402.'),
  softLimitPct: z
    .number()
    .min(1)
    .max(100)
    .optional()
    .describe('Percent of each limit whose crossing is logged, counted and sent to the webhook.'),
  webhook: z.url().optional().describe('Receives a POST (JSON) when the soft limit is crossed.'),
});

export const budgetSchema = budgetFields.refine(
  (b) => b.limitUsd !== undefined || b.limitTokens !== undefined,
  {
    message: 'a budget needs limitUsd, limitTokens or both',
    path: ['limitUsd'],
  },
);

export const rateLimitSchema = z
  .strictObject({
    scope: rateLimitScopeSchema,
    requestsPerMinute: z.int().min(1).optional(),
    tokensPerMinute: z
      .int()
      .min(1)
      .optional()
      .describe('Prompt + max output tokens are taken on admission, corrected to the actual count after.'),
  })
  .refine((r) => r.requestsPerMinute !== undefined || r.tokensPerMinute !== undefined, {
    message: 'a rate limit needs requestsPerMinute, tokensPerMinute or both',
    path: ['requestsPerMinute'],
  });

export type BudgetRule = z.infer<typeof budgetSchema>;
export type BudgetScope = BudgetRule['scope'];
export type BudgetPeriod = BudgetRule['period'];
export type RateLimitRule = z.infer<typeof rateLimitSchema>;
export type RateLimitScope = RateLimitRule['scope'];

/** A scope as its kind and name: { team: 'search' } → ['team', 'search']. */
export function scopeParts(scope: BudgetScope | RateLimitScope): [kind: string, name: string] {
  const [kind, value] = Object.entries(scope)[0] as [string, string];
  return [kind, value];
}

/** "team 'search'", for messages. */
export function describeScope(scope: BudgetScope | RateLimitScope): string {
  const [kind, value] = scopeParts(scope);
  return `${kind} '${value}'`;
}
