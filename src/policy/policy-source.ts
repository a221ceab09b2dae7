import { type BudgetRule, type RateLimitRule, scopeParts } from './limit-rules.js';

/**
 * Who is asking, as budgets and rate limits see it: the caller's principal (src/gateway/call.ts)
 * as it is. Its limits are remembered by the object, which is never changed once made (a reload
 * makes new principals).
 */
export interface Subject {
  /** The API key's name; null when the API is open. */
  readonly keyName: string | null;
  readonly team?: string | null;
  readonly org?: string | null;
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

/**
 * The rules of sluice.yaml, indexed by scope once so a request only does map lookups. A subject
 * whose rules all come from one scope (the usual case) gets that scope's own list, not a copy.
 */
export function configPolicy(rules: {
  budgets: readonly BudgetRule[];
  rateLimits: readonly RateLimitRule[];
}): PolicySource {
  const budgets = index(rules.budgets);
  const rateLimits = index(rules.rateLimits);
  const empty = rules.budgets.length === 0 && rules.rateLimits.length === 0;
  const joinedBudgets = joiner<BudgetRule>();
  const joinedRateLimits = joiner<RateLimitRule>();
  // A subject's limits per route, looked up in the index once: a request then pays one
  // WeakMap and one Map lookup, not a dozen.
  const known = new WeakMap<Subject, Map<string, ApplicableLimits>>();
  return {
    limitsFor(subject, route) {
      if (empty) return none;
      let byRoute = known.get(subject);
      const remembered = byRoute?.get(route);
      if (remembered !== undefined) return remembered;
      const limits: ApplicableLimits = {
        budgets: joinedBudgets(
          at(budgets, 'key', subject.keyName),
          at(budgets, 'team', subject.team),
          at(budgets, 'org', subject.org),
        ),
        rateLimits: joinedRateLimits(
          at(rateLimits, 'key', subject.keyName),
          at(rateLimits, 'team', subject.team),
          at(rateLimits, 'route', route),
        ),
      };
      if (byRoute === undefined) {
        byRoute = new Map();
        known.set(subject, byRoute);
      }
      byRoute.set(route, limits);
      return limits;
    },
    budgets: () => rules.budgets,
  };
}

/** Rules by scope kind, then by name. */
type ScopeIndex<T> = Map<string, Map<string, readonly T[]>>;

const noRules: readonly never[] = [];

function at<T>(index: ScopeIndex<T>, kind: string, name: string | null | undefined): readonly T[] {
  return name == null ? noRules : (index.get(kind)?.get(name) ?? noRules);
}

type Lists<T> = WeakMap<readonly T[], WeakMap<readonly T[], WeakMap<readonly T[], readonly T[]>>>;

/**
 * Joins three scopes' lists, always into the same list for the same three: a subject's rules
 * are one list from request to request, which the rate limiter works out once (rate-limiter.ts).
 */
function joiner<T>(): (a: readonly T[], b: readonly T[], c: readonly T[]) => readonly T[] {
  const made: Lists<T> = new WeakMap();
  return (a, b, c) => {
    if (b.length === 0 && c.length === 0) return a;
    if (a.length === 0 && c.length === 0) return b;
    if (a.length === 0 && b.length === 0) return c;
    let byB = made.get(a);
    if (!byB) {
      byB = new WeakMap();
      made.set(a, byB);
    }
    let byC = byB.get(b);
    if (!byC) {
      byC = new WeakMap();
      byB.set(b, byC);
    }
    let list = byC.get(c);
    if (!list) {
      list = [...a, ...b, ...c];
      byC.set(c, list);
    }
    return list;
  };
}

function index<T extends { scope: BudgetRule['scope'] | RateLimitRule['scope'] }>(
  rules: readonly T[],
): ScopeIndex<T> {
  const map: ScopeIndex<T> = new Map();
  for (const rule of rules) {
    const [kind, name] = scopeParts(rule.scope);
    let byName = map.get(kind);
    if (!byName) {
      byName = new Map();
      map.set(kind, byName);
    }
    byName.set(name, [...(byName.get(name) ?? []), rule]);
  }
  return map;
}

/**
 * The config's rules plus the control store's budgets (`stored()`: the ones loaded last, from
 * memory). A subject's budgets from both apply; budgets on the same scope, unit and period
 * share one spend counter (ledger.ts), so a limit is a view over spend, not its owner.
 */
export function withStoredBudgets(config: PolicySource, stored: () => PolicySource): PolicySource {
  // The same list for the same two, as configPolicy does: the ledger works a list out once.
  const joined = joiner<BudgetRule>();
  return {
    limitsFor(subject, route) {
      const own = config.limitsFor(subject, route);
      const more = stored().limitsFor(subject, route).budgets;
      return more.length === 0
        ? own
        : { budgets: joined(own.budgets, more, noRules), rateLimits: own.rateLimits };
    },
    budgets: () => [...config.budgets(), ...stored().budgets()],
  };
}
