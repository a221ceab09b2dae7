import { type BudgetRule, type RateLimitRule, scopeParts } from './limit-rules.js';

/** Who is asking, as budgets and rate limits see it. */
export interface Subject {
  /** The API key's name; null when the API is open. */
  key: string | null;
  team?: string | null;
  org?: string | null;
}

export interface ApplicableLimits {
  budgets: readonly BudgetRule[];
  rateLimits: readonly RateLimitRule[];
}

/**
 * Where budgets and rate limits come from: sluice.yaml (configPolicy), merged with the control
 * store's budgets (withStoredBudgets).
 * `limitsFor` runs on every request, so an implementation answers from memory.
 */
export interface PolicySource {
  /** The budgets of the subject's key, team and org; the rate limits of its key, team and the route. */
  limitsFor(subject: Subject, route: string): ApplicableLimits;
  /** Every budget, for the admin status page. */
  budgets(): readonly BudgetRule[];
}

const none: ApplicableLimits = { budgets: [], rateLimits: [] };

/** The rules of sluice.yaml, indexed by scope once so a request only does map lookups. */
export function configPolicy(rules: {
  budgets: readonly BudgetRule[];
  rateLimits: readonly RateLimitRule[];
}): PolicySource {
  const budgets = index(rules.budgets);
  const rateLimits = index(rules.rateLimits);
  const empty = rules.budgets.length === 0 && rules.rateLimits.length === 0;
  const at = <T>(map: Map<string, T[]>, kind: string, name: string | null | undefined): T[] =>
    name == null ? [] : (map.get(`${kind}:${name}`) ?? []);
  return {
    limitsFor(subject, route) {
      if (empty) return none;
      return {
        budgets: [
          ...at(budgets, 'key', subject.key),
          ...at(budgets, 'team', subject.team),
          ...at(budgets, 'org', subject.org),
        ],
        rateLimits: [
          ...at(rateLimits, 'key', subject.key),
          ...at(rateLimits, 'team', subject.team),
          ...at(rateLimits, 'route', route),
        ],
      };
    },
    budgets: () => rules.budgets,
  };
}

function index<T extends { scope: BudgetRule['scope'] | RateLimitRule['scope'] }>(
  rules: readonly T[],
): Map<string, T[]> {
  const map = new Map<string, T[]>();
  for (const rule of rules) {
    const [kind, name] = scopeParts(rule.scope);
    const key = `${kind}:${name}`;
    map.set(key, [...(map.get(key) ?? []), rule]);
  }
  return map;
}

/**
 * The config's rules plus the control store's budgets (`stored()`: the ones loaded last, from
 * memory). A subject's budgets from both apply; budgets on the same scope, unit and period
 * share one spend counter (ledger.ts), so a limit is a view over spend, not its owner.
 */
export function withStoredBudgets(config: PolicySource, stored: () => PolicySource): PolicySource {
  return {
    limitsFor(subject, route) {
      const own = config.limitsFor(subject, route);
      const more = stored().limitsFor(subject, route).budgets;
      return more.length === 0 ? own : { budgets: [...own.budgets, ...more], rateLimits: own.rateLimits };
    },
    budgets: () => [...config.budgets(), ...stored().budgets()],
  };
}
