import { join } from 'node:path';
import type { FastifyBaseLogger } from 'fastify';
import type { SluiceConfig } from '../config/schema.js';
import { type ApiError, apiError } from '../http/api-error.js';
import type { GatewayMetrics } from '../http/metrics.js';
import { rateLimitHeaders, resetDuration } from '../http/rate-limit-headers.js';
import {
  type BudgetHold,
  type BudgetRefusal,
  type BudgetStatus,
  budgetLedger,
  isBudgetRefusal,
  type Ledger,
  type SoftLimitCrossing,
  type Spend,
} from '../policy/ledger.js';
import { type BudgetRule, describeScope, scopeParts } from '../policy/limit-rules.js';
import type { ApplicableLimits, PolicySource } from '../policy/policy-source.js';
import {
  isRateRefusal,
  type RateGrant,
  type RateLimiter,
  type RateRefusal,
  rateLimiter,
} from '../policy/rate-limiter.js';
import { postJson } from '../policy/webhook.js';
import { redisState } from '../state/redis-state.js';
import { andThen, type Maybe, type SharedState } from '../state/shared-state.js';
import { memoryStateWithSpendFile } from '../state/spend-file.js';
import type { Call } from './call.js';
import type { Plan } from './resolve.js';
import { type TokenEstimate, type TokenEstimator, worstCaseUsd } from './worst-case.js';

/** What the admit stage took for a call, to be settled when it finishes. */
export interface Admission {
  hold?: BudgetHold;
  grant?: RateGrant;
  /** The worst case that was reserved. */
  worst: Spend;
}

export interface LimitsOptions {
  config: SluiceConfig;
  metrics: GatewayMetrics;
  logger: FastifyBaseLogger;
  /** Epoch milliseconds; budget periods are UTC calendar days and months. */
  now?: () => number;
}

/** A webhook that has not answered by then is abandoned (and logged): it never holds a request. */
const webhookTimeoutMs = 5_000;
/** Holds outlive the longest request by this much before they lapse. */
const holdMarginMs = 60_000;

/**
 * The admit stage's budgets and rate limits, and the settle stage that ends what admit took.
 * Admission takes rate-limit units and reserves budget in one round trip to the shared state
 * (none on the memory state, which answers at once); when either refuses, the other is given
 * back before the client hears 402 or 429.
 */
export class Limits {
  private readonly state: SharedState;
  private readonly ledger: Ledger;
  private readonly limiter: RateLimiter;
  private readonly pending = new Set<Promise<void>>();
  private readonly unpricedRoutes = new Set<string>();
  private readonly now: () => number;

  constructor(private readonly options: LimitsOptions) {
    const { config, logger } = options;
    this.now = options.now ?? Date.now;
    this.state = openSharedState(config, logger, this.now);
    this.ledger = budgetLedger({
      state: this.state,
      now: this.now,
      holdTtlMs: config.server.requestTimeoutMs + holdMarginMs,
      onSoftLimit: (crossing) => this.softLimitCrossed(crossing),
    });
    this.limiter = rateLimiter({ state: this.state, now: this.now });
  }

  /**
   * Reserves the call's worst case on its budgets and takes its rate-limit units; an ApiError
   * refuses it. `tokens` is only called when a limit applies. Admission reserves a bound on the
   * prompt's tokens first (its bytes); the tokenizer counts the prompt only when that bound is
   * refused, or leaves a tokens-per-minute limit too little room for another such request, so no
   * request is refused that its exact count would fit. On the memory state this answers at once.
   */
  admit(
    call: Call,
    plan: Plan,
    policy: PolicySource,
    tokens: () => TokenEstimator,
  ): Maybe<ApiError | undefined> {
    const limits = policy.limitsFor(call.principal, plan.route.name);
    // Most requests of most gateways: nothing to count, no round trip.
    if (limits.budgets.length === 0 && limits.rateLimits.length === 0) return undefined;
    const estimator = tokens();
    const first = this.take(call, plan, limits, estimator.bound);
    // On the memory state the first answer is a value: no closure, no promise.
    if (first instanceof Promise)
      return first.then((taking) => this.onBound(call, plan, limits, estimator, taking));
    return this.onBound(call, plan, limits, estimator, first);
  }

  /** What admission does with its answer on the bound: done, refused, or asks the exact count. */
  private onBound(
    call: Call,
    plan: Plan,
    limits: ApplicableLimits,
    estimator: TokenEstimator,
    first: Taking,
  ): Maybe<ApiError | undefined> {
    if (first.admitted) return this.roomLeft(call, estimator);
    if (first.budget === undefined && first.rate?.kind !== 'tokens') return this.refuse(call, first);
    // Refused on the bound: the exact count decides.
    const { bound } = estimator;
    return estimator.exact().then((exact) => {
      if (exact.input >= bound.input) return this.refuse(call, first);
      return andThen(this.take(call, plan, limits, exact), (second) =>
        second.admitted ? undefined : this.refuse(call, second),
      );
    });
  }

  /**
   * Admitted on the bound: when a tokens-per-minute limit has less room left than this request
   * took, the bound's excess would refuse the next one, so it is counted and given back now.
   */
  private roomLeft(call: Call, estimator: TokenEstimator): Maybe<undefined> {
    const admission = call.admission as Admission;
    const grant = admission.grant;
    const quota = grant?.quotas.tokens;
    if (!grant || !quota || quota.remaining >= grant.tokens) return undefined;
    return estimator
      .exact()
      .then(async (exact) => {
        const tokens = exact.input + exact.output;
        if (tokens >= grant.tokens) return;
        admission.worst = { ...admission.worst, tokens };
        await this.limiter.correct(grant, tokens);
        // The response's x-ratelimit-* headers are made from these (src/http/gateway-routes.ts).
        grant.quotas = await this.limiter.quotas(grant);
      })
      .then(
        () => undefined,
        // The bound stays taken: only room for others is lost, and the settlement corrects it.
        (error: Error) => {
          this.options.logger.error({ reqId: call.id, err: error.message }, 'rate-limit correction failed');
          return undefined;
        },
      );
  }

  /** Takes the rate-limit units and reserves the budgets for `tokens`; what one side took goes back when the other refuses. */
  private take(call: Call, plan: Plan, limits: ApplicableLimits, tokens: TokenEstimate): Maybe<Taking> {
    let needsUsd = false;
    for (const budget of limits.budgets) if (budget.limitUsd !== undefined) needsUsd = true;
    const worst: Spend = {
      tokens: tokens.input + tokens.output,
      usd: needsUsd ? worstCaseUsd(plan, tokens) : null,
    };
    if (needsUsd && worst.usd === null) this.warnUnpriced(plan.route.name);
    // Answers and failures as plain values: the memory state's usual answer allocates no wrapper.
    let rate: Maybe<RateGrant | RateRefusal | Failure>;
    try {
      rate = this.limiter.admit(limits.rateLimits, worst.tokens);
    } catch (error) {
      rate = new Failure(error);
    }
    let budget: Maybe<BudgetHold | BudgetRefusal | Failure> | undefined;
    if (limits.budgets.length > 0) {
      try {
        budget = this.ledger.reserve(call.id, limits.budgets, worst);
      } catch (error) {
        budget = new Failure(error);
      }
    }
    if (rate instanceof Promise || budget instanceof Promise)
      return Promise.all([
        failureOf<RateGrant | RateRefusal>(rate),
        failureOf<BudgetHold | BudgetRefusal | undefined>(budget),
      ]).then(([r, b]) => this.decide(call, worst, r, b));
    return this.decide(call, worst, rate, budget);
  }

  private decide(
    call: Call,
    worst: Spend,
    rate: RateGrant | RateRefusal | Failure,
    budget: BudgetHold | BudgetRefusal | Failure | undefined,
  ): Maybe<Taking> {
    const grant = rate instanceof Failure || isRateRefusal(rate) ? undefined : rate;
    const hold =
      budget === undefined || budget instanceof Failure || isBudgetRefusal(budget) ? undefined : budget;
    let taking: Refused;
    if (rate instanceof Failure) taking = { admitted: false, error: rate.error };
    else if (budget instanceof Failure) taking = { admitted: false, error: budget.error };
    else if (budget !== undefined && hold === undefined)
      taking = { admitted: false, budget: budget as BudgetRefusal };
    else if (grant === undefined) taking = { admitted: false, rate: rate as RateRefusal };
    else {
      call.admission = { hold, grant, worst };
      return admitted;
    }
    // Whatever one side took goes back before the client hears the other side's refusal.
    const returned: Maybe<unknown>[] = [];
    if (grant) returned.push(attempt(() => this.limiter.refund(grant)));
    if (hold) returned.push(attempt(() => this.ledger.release(hold)));
    if (returned.some((r) => r instanceof Promise)) return Promise.all(returned).then(() => taking);
    return taking;
  }

  private refuse(call: Call, taking: Refused): ApiError {
    if (taking.error !== undefined) {
      this.options.logger.error(
        { reqId: call.id, err: (taking.error as Error).message },
        'budgets and rate limits unavailable',
      );
      return limitsUnavailable();
    }
    if (taking.budget) {
      this.options.metrics.limitRefused('budget', taking.budget.rule.name);
      return budgetExceeded(taking.budget, this.now());
    }
    const refusal = taking.rate as RateRefusal;
    this.options.metrics.limitRefused('rate', scopeParts(refusal.rule.scope).join(':'));
    return rateLimited(refusal);
  }

  /**
   * Ends what admit took: what every attempt was billed for (metered by the dispatch stage,
   * retries and lost hedges included) replaces the reservation. A call no attempt was billed
   * for releases everything. On Redis it runs in the background; on the memory state at once.
   */
  settle(call: Call): void {
    const admission = call.admission;
    if (!admission) return;
    let settled: Maybe<unknown>;
    try {
      settled = this.settleNow(call, admission);
    } catch (error) {
      this.settlementFailed(call, admission, error as Error);
      return;
    }
    if (!(settled instanceof Promise)) return;
    const work = settled.then(
      () => undefined,
      (error: Error) => this.settlementFailed(call, admission, error),
    );
    this.pending.add(work);
    void work.finally(() => this.pending.delete(work));
  }

  /** Each budget with its current period's spend. */
  async status(rules: readonly BudgetRule[]): Promise<BudgetStatus[]> {
    return this.ledger.status(rules);
  }

  /** Waits for settlements under way, then closes the shared state (saving spend, or leaving Redis). */
  async close(): Promise<void> {
    await Promise.allSettled([...this.pending]);
    await this.state.close();
  }

  private settlementFailed(call: Call, admission: Admission, error: Error): void {
    this.options.logger.error(
      { reqId: call.id, err: error.message, tokens: admission.worst.tokens },
      'budget settlement failed: this request’s spend is not counted',
    );
  }

  private settleNow(call: Call, admission: Admission): Maybe<unknown> {
    const { hold, grant } = admission;
    let tokens = 0;
    let billed = false;
    for (const attempt of call.attempts) {
      if (!attempt.usage) continue;
      billed = true;
      tokens += attempt.usage.inputTokens + attempt.usage.outputTokens;
    }
    // The settle stage priced the call just before; null is a price it does not know.
    const budget =
      hold &&
      (billed ? this.ledger.settle(hold, { tokens, usd: call.costUsd ?? null }) : this.ledger.release(hold));
    const rate = grant && this.limiter.correct(grant, tokens);
    return budget instanceof Promise || rate instanceof Promise ? Promise.all([budget, rate]) : undefined;
  }

  private softLimitCrossed(crossing: SoftLimitCrossing): void {
    const { rule, window, unit } = crossing;
    const notice = {
      type: 'budget.soft_limit_crossed',
      budget: rule.name,
      scope: rule.scope,
      period: rule.period,
      periodStart: isoOrNull(window.startsAt),
      resetsAt: isoOrNull(window.resetsAt),
      unit,
      limit: crossing.limit,
      softLimit: crossing.softLimit,
      spent: crossing.spent,
      at: new Date(this.now()).toISOString(),
    };
    const { logger, metrics } = this.options;
    logger.warn(notice, `budget '${rule.name}' crossed its soft limit`);
    metrics.softLimitCrossed(rule.name, unit);
    // The URL is not logged: webhook URLs often carry their secret in the path.
    if (rule.webhook) {
      postJson(rule.webhook, notice, webhookTimeoutMs).catch((error: Error) =>
        logger.warn({ budget: rule.name, err: error.message }, 'budget webhook failed'),
      );
    }
  }

  private warnUnpriced(route: string): void {
    if (this.unpricedRoutes.has(route)) return;
    this.unpricedRoutes.add(route);
    this.options.logger.warn(
      { route },
      'a USD budget applies to this route but its price is unknown: its requests count no dollars',
    );
  }
}

function openSharedState(config: SluiceConfig, logger: FastifyBaseLogger, now: () => number): SharedState {
  const { state } = config;
  if (state.store === 'redis' && state.redisUrl)
    return redisState({ url: state.redisUrl, keyPrefix: state.keyPrefix, timeoutMs: state.timeoutMs });
  return memoryStateWithSpendFile({
    file: join(config.dataDir, 'spend.json'),
    everyMs: config.state.flushMs,
    now,
    onError: (error) => logger.error({ err: error.message }, 'could not save budget spend; will try again'),
  });
}

/** What one side of admission failed with (the shared state threw or rejected). */
class Failure {
  constructor(readonly error: unknown) {}
}

/** A promise's rejection as a Failure; values pass as they are. */
function failureOf<T>(value: Maybe<T | Failure>): Maybe<T | Failure> {
  return value instanceof Promise ? value.then(undefined, (error: unknown) => new Failure(error)) : value;
}

/** Runs `run`, its throw and its promise's rejection as a Failure: giving back must not fail the refusal. */
function attempt<T>(run: () => Maybe<T>): Maybe<T | Failure> {
  try {
    return failureOf(run());
  } catch (error) {
    return new Failure(error);
  }
}

/** Why admission refused: the shared state failed, a budget or a rate limit. */
type Refused = { admitted: false; error?: unknown; budget?: BudgetRefusal; rate?: RateRefusal };
type Taking = { admitted: true } | Refused;
const admitted: Taking = { admitted: true };

const isoOrNull = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

function budgetExceeded(refusal: BudgetRefusal, now: number): ApiError {
  const { rule, unit, window } = refusal;
  const amount = (n: number) => (unit === 'usd' ? usd(n) : `${n} tokens`);
  const resets =
    window.resetsAt === null
      ? 'This budget never resets: ask an admin to raise it.'
      : `It resets at ${new Date(window.resetsAt).toISOString()}.`;
  const left = refusal.limit - refusal.spent;
  // Requests in flight usually cost less than their hold: then a retry soon may fit.
  const inFlight = left > 0 && refusal.requested <= left;
  const hint =
    left <= 0
      ? ''
      : inFlight
        ? ' It fits once requests in flight settle: retry shortly.'
        : ' Lower max_tokens (or shorten the prompt) to fit what is left.';
  const message =
    `Budget '${rule.name}' of ${describeScope(rule.scope)} (${rule.period}) cannot cover this request: ` +
    `${amount(refusal.spent)} of ${amount(refusal.limit)} spent, ${amount(refusal.reserved)} held by requests in flight, ` +
    `and this request could cost up to ${amount(refusal.requested)}.${hint} ${resets}`;
  const headers: Record<string, string> = {};
  if (inFlight) headers['retry-after'] = '1';
  else if (window.resetsAt !== null)
    headers['retry-after'] = String(Math.max(1, Math.ceil((window.resetsAt - now) / 1000)));
  return apiError('budget', 402, message, {
    code: 'budget_exceeded',
    headers,
    details: {
      budget: {
        name: rule.name,
        scope: rule.scope,
        period: rule.period,
        unit,
        limit: refusal.limit,
        spent: refusal.spent,
        reserved: refusal.reserved,
        requested: refusal.requested,
        resetsAt: isoOrNull(window.resetsAt),
      },
    },
  });
}

function rateLimited(refusal: RateRefusal): ApiError {
  const { rule, kind, limit, requested, retryAfterMs } = refusal;
  const scope = describeScope(rule.scope);
  const headers = rateLimitHeaders(refusal.quotas);
  let message: string;
  if (retryAfterMs === null) {
    message =
      `Request too large for the limit of ${limit} tokens per minute of ${scope}: it may use ${requested} ` +
      '(prompt plus max_tokens). Lower max_tokens or shorten the prompt.';
  } else {
    message = `Rate limit of ${limit} ${kind} per minute of ${scope} reached: retry in ${resetDuration(retryAfterMs)}.`;
    headers['retry-after'] = String(Math.max(1, Math.ceil(retryAfterMs / 1000)));
    headers['retry-after-ms'] = String(Math.ceil(retryAfterMs));
  }
  return apiError('rate_limit', 429, message, {
    code: 'rate_limit_exceeded',
    headers,
    details: { rate_limit: { scope: rule.scope, kind, limit, requested, retryAfterMs } },
  });
}

function limitsUnavailable(): ApiError {
  return apiError(
    'overloaded',
    503,
    'Budgets and rate limits cannot be checked right now (their shared state did not answer), so the request was not sent. Retry shortly.',
    { code: 'limits_unavailable', headers: { 'retry-after': '1' } },
  );
}

function usd(n: number): string {
  return `$${n >= 1 ? n.toFixed(2) : Number(n.toPrecision(3)).toString()}`;
}
