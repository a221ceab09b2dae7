import {
  andThen,
  type CounterCharge,
  type CounterHold,
  type Maybe,
  type Reserved,
  type SharedState,
} from '../state/shared-state.js';
import { type PeriodWindow, periodAt } from './budget-period.js';
import { type BudgetRule, scopeParts } from './limit-rules.js';

/** What a request may spend (worst case, before) or spent (after). `usd` null: no price known. */
export interface Spend {
  usd: number | null;
  tokens: number;
}

export type BudgetUnit = 'usd' | 'tokens';

/** One limit of one budget in one period, on its counter. The limit is in counter units. */
export interface BudgetLine {
  rule: BudgetRule;
  unit: BudgetUnit;
  window: PeriodWindow;
  counter: string;
  limit: number;
  expiresAt: number | null;
}

/**
 * A list of budget rules in one period: its lines, and the counters a request holds room on.
 * Made once per list and period (the policy hands a subject the same list on every request)
 * and shared by every hold made under it.
 */
export interface BudgetPlan {
  /** The plan holds while from <= now < until: within every rule's current period. */
  from: number;
  until: number;
  lines: BudgetLine[];
  /** One line per counter (budgets on the same spend share one, under the lower limit): what holds and settles. */
  counters: BudgetLine[];
  counterNames: string[];
  /** Whether a line has a soft limit, so the settlement looks for one crossed. */
  softLimits: boolean;
}

/**
 * Room held on every budget of a request until it settles or releases: the plan's counters,
 * each holding `usd` or `tokens` (counter units). A request in flight keeps no more than this.
 */
export interface BudgetHold {
  id: string;
  plan: BudgetPlan;
  usd: number;
  tokens: number;
}

/** Why a request may not be sent: the budget, and its numbers in dollars or tokens. */
export interface BudgetRefusal {
  rule: BudgetRule;
  unit: BudgetUnit;
  window: PeriodWindow;
  limit: number;
  spent: number;
  /** Held by other requests in flight. */
  reserved: number;
  /** The most this request could spend. */
  requested: number;
}

/** A budget's settled spend reached its soft limit with this settlement (exactly once per period). */
export interface SoftLimitCrossing {
  rule: BudgetRule;
  unit: BudgetUnit;
  window: PeriodWindow;
  limit: number;
  softLimit: number;
  spent: number;
}

export interface BudgetStatus {
  rule: BudgetRule;
  window: PeriodWindow;
  usd?: { limit: number; spent: number; reserved: number };
  tokens?: { limit: number; spent: number; reserved: number };
}

export interface LedgerOptions {
  state: SharedState;
  /** Epoch milliseconds: periods are calendar days and months in UTC. */
  now: () => number;
  /** How long a hold lives unless settled: longer than any request may take. */
  holdTtlMs: number;
  onSoftLimit: (crossing: SoftLimitCrossing) => void;
}

/** Answers at once on the memory state, after a round trip on Redis (SharedState). */
export interface Ledger {
  /** Holds the worst case on every budget, all or none. */
  reserve(id: string, rules: readonly BudgetRule[], worst: Spend): Maybe<BudgetHold | BudgetRefusal>;
  /** Spends what the request actually cost and frees the rest of its hold. */
  settle(hold: BudgetHold, actual: Spend): Maybe<void>;
  /** Frees the hold: the request spent nothing. */
  release(hold: BudgetHold): Maybe<void>;
  status(rules: readonly BudgetRule[]): Promise<BudgetStatus[]>;
}

// Dollars are counted in nano-dollars: integers, so every sum is exact on every node.
const nanos = 1e9;
// A counter outlives its period by a day, so a request admitted just before midnight still
// settles on the day it was admitted, and the last day stays readable.
const counterGraceMs = 86_400_000;

const nothing = () => undefined;

/** A rule's counters in one period. */
interface RuleCounters {
  window: PeriodWindow;
  /** The window's end; infinity for total. */
  until: number;
  usd: string;
  tokens: string;
  expiresAt: number | null;
}

export function isBudgetRefusal(value: BudgetHold | BudgetRefusal): value is BudgetRefusal {
  return 'requested' in value;
}

/**
 * Budgets on SharedState: reserve the worst case before the upstream call, settle the actual
 * spend after (the difference goes back), release on failure. A request is refused when its
 * worst case does not fit beside the settled spend and the holds of requests in flight, so
 * spend passes a limit only by what requests cost beyond their own worst-case estimate.
 */
export function budgetLedger(options: LedgerOptions): Ledger {
  const { state } = options;
  // A rule's window and counter names change once a day or month: they are made once per
  // period, not on every request.
  const named = new WeakMap<BudgetRule, RuleCounters>();

  const countersOfRule = (rule: BudgetRule, now: number): RuleCounters => {
    const known = named.get(rule);
    if (known && (known.window.startsAt === null || (now >= known.window.startsAt && now < known.until)))
      return known;
    const window = periodAt(rule.period, now);
    const [kind, name] = scopeParts(rule.scope);
    const counter = (unit: BudgetUnit) =>
      `spend:${kind}:${encodeURIComponent(name)}:${unit}:${rule.period}:${window.id}`;
    const made: RuleCounters = {
      window,
      until: window.resetsAt ?? Number.POSITIVE_INFINITY,
      usd: counter('usd'),
      tokens: counter('tokens'),
      expiresAt: window.resetsAt === null ? null : window.resetsAt + counterGraceMs,
    };
    named.set(rule, made);
    return made;
  };

  // A list of rules gets the same lines, counters and limits on every request of a period: the
  // policy hands out one list per subject, so they are worked out once per list and period.
  const plans = new WeakMap<readonly BudgetRule[], BudgetPlan>();

  const planOf = (rules: readonly BudgetRule[], now: number): BudgetPlan => {
    const known = plans.get(rules);
    if (known !== undefined && now >= known.from && now < known.until) return known;
    const plan: BudgetPlan = {
      from: Number.NEGATIVE_INFINITY,
      until: Number.POSITIVE_INFINITY,
      lines: [],
      counters: [],
      counterNames: [],
      softLimits: false,
    };
    for (const rule of rules) {
      const { window, until, expiresAt, usd, tokens } = countersOfRule(rule, now);
      if (window.startsAt !== null && window.startsAt > plan.from) plan.from = window.startsAt;
      if (until < plan.until) plan.until = until;
      if (rule.softLimitPct !== undefined) plan.softLimits = true;
      if (rule.limitUsd !== undefined) {
        const limit = Math.round(rule.limitUsd * nanos);
        plan.lines.push({ rule, unit: 'usd', window, counter: usd, limit, expiresAt });
      }
      if (rule.limitTokens !== undefined)
        plan.lines.push({
          rule,
          unit: 'tokens',
          window,
          counter: tokens,
          limit: rule.limitTokens,
          expiresAt,
        });
    }
    // One entry per counter: two budgets on the same spend share it, under the lower limit.
    const byCounter = new Map<string, BudgetLine>();
    for (const line of plan.lines) {
      const seen = byCounter.get(line.counter);
      if (seen === undefined || line.limit < seen.limit) byCounter.set(line.counter, line);
    }
    plan.counters = [...byCounter.values()];
    plan.counterNames = [...byCounter.keys()];
    plans.set(rules, plan);
    return plan;
  };

  const human = (line: BudgetLine, n: number) => (line.unit === 'usd' ? n / nanos : n);

  const holdOrRefusal = (
    id: string,
    plan: BudgetPlan,
    usd: number,
    tokens: number,
    reserved: Reserved,
  ): BudgetHold | BudgetRefusal => {
    if (reserved.ok) return { id, plan, usd, tokens };
    const line = plan.counters[reserved.refused] as BudgetLine;
    return {
      rule: line.rule,
      unit: line.unit,
      window: line.window,
      limit: human(line, line.limit),
      spent: human(line, reserved.balance.spent),
      reserved: human(line, reserved.balance.reserved),
      requested: human(line, line.unit === 'usd' ? usd : tokens),
    };
  };

  return {
    reserve(id, rules, worst) {
      const now = options.now();
      const plan = planOf(rules, now);
      // An unknown price still takes the smallest step, so a spent budget refuses it too.
      const usd = worst.usd === null ? 1 : Math.max(1, Math.ceil(worst.usd * nanos));
      const tokens = Math.max(1, Math.ceil(worst.tokens));
      const { counters } = plan;
      // Sized first: an array grown by push gets a backing store of 16 or more, per request.
      const holds: CounterHold[] = new Array(counters.length);
      for (let i = 0; i < counters.length; i++) {
        const line = counters[i] as BudgetLine;
        holds[i] = {
          counter: line.counter,
          amount: line.unit === 'usd' ? usd : tokens,
          limit: line.limit,
          expiresAt: line.expiresAt,
        };
      }
      const reserved = state.reserve(id, holds, now + options.holdTtlMs, now);
      // The memory state answers at once: no closure to make for a promise.
      if (reserved instanceof Promise) return reserved.then((r) => holdOrRefusal(id, plan, usd, tokens, r));
      return holdOrRefusal(id, plan, usd, tokens, reserved);
    },

    settle(hold, actual) {
      const { counters, lines, softLimits } = hold.plan;
      const usd = Math.round((actual.usd ?? 0) * nanos);
      const tokens = Math.round(actual.tokens);
      const charges: CounterCharge[] = new Array(counters.length);
      for (let i = 0; i < counters.length; i++) {
        const line = counters[i] as BudgetLine;
        charges[i] = {
          counter: line.counter,
          amount: line.unit === 'usd' ? usd : tokens,
          expiresAt: line.expiresAt,
        };
      }
      const done = state.settle(hold.id, charges, options.now());
      // Most budgets have no soft limit: nothing to look at in what the settlement returns.
      if (!softLimits) return done instanceof Promise ? done.then(nothing) : undefined;
      return andThen(done, (settled) => {
        for (const line of lines) {
          if (line.rule.softLimitPct === undefined) continue;
          const result = settled[counters.findIndex((c) => c.counter === line.counter)];
          if (!result) continue;
          const soft = (line.limit * line.rule.softLimitPct) / 100;
          if (result.before < soft && result.after >= soft) {
            options.onSoftLimit({
              rule: line.rule,
              unit: line.unit,
              window: line.window,
              limit: human(line, line.limit),
              softLimit: human(line, soft),
              spent: human(line, result.after),
            });
          }
        }
      });
    },

    release(hold) {
      return state.release(hold.id, hold.plan.counterNames, options.now());
    },

    async status(rules) {
      const now = options.now();
      const { lines } = planOf(rules, now);
      const balances = await state.balances(
        lines.map((line) => line.counter),
        now,
      );
      return rules.map((rule) => {
        const status: BudgetStatus = { rule, window: periodAt(rule.period, now) };
        lines.forEach((line, i) => {
          if (line.rule !== rule) return;
          const balance = balances[i] ?? { spent: 0, reserved: 0 };
          status[line.unit] = {
            limit: human(line, line.limit),
            spent: human(line, balance.spent),
            reserved: human(line, balance.reserved),
          };
        });
        return status;
      });
    },
  };
}
