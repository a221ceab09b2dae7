import type { BucketState, BucketTake, SharedState } from '../state/shared-state.js';
import { type RateLimitRule, scopeParts } from './limit-rules.js';

export type RateKind = 'requests' | 'tokens';

/** The tightest limit of one kind, as the x-ratelimit-* headers show it. */
export interface RateQuota {
  limit: number;
  remaining: number;
  resetMs: number;
}

/** Units a request took: kept to correct the tokens after, or to give everything back. */
export interface RateGrant {
  takes: BucketTake[];
  /** Tokens taken from each token bucket: the prompt estimate plus the max output. */
  tokens: number;
  quotas: Partial<Record<RateKind, RateQuota>>;
}

export interface RateRefusal {
  rule: RateLimitRule;
  kind: RateKind;
  limit: number;
  /** Units the request asked for. */
  requested: number;
  /** Until there is room; null: never, the request alone is over the limit. */
  retryAfterMs: number | null;
  quotas: Partial<Record<RateKind, RateQuota>>;
}

export interface RateLimiter {
  /** Takes one request and `tokens` from every bucket of `rules`, all or none. */
  admit(rules: readonly RateLimitRule[], tokens: number): Promise<RateGrant | RateRefusal>;
  /** Replaces the token estimate with the actual count. */
  correct(grant: RateGrant, actualTokens: number): Promise<void>;
  /** Gives back everything the grant took: the request was not sent after all. */
  refund(grant: RateGrant): Promise<void>;
}

const minute = 60_000;

export function isRateRefusal(value: RateGrant | RateRefusal): value is RateRefusal {
  return 'retryAfterMs' in value;
}

/** Requests and tokens per minute per key, team and route, as GCRA buckets on SharedState. */
export function rateLimiter(options: { state: SharedState; now: () => number }): RateLimiter {
  const { state } = options;
  return {
    async admit(rules, tokens) {
      const takes: BucketTake[] = [];
      const owners: { rule: RateLimitRule; kind: RateKind }[] = [];
      for (const rule of rules) {
        const [kind, name] = scopeParts(rule.scope);
        const bucket = `rate:${kind}:${encodeURIComponent(name)}`;
        if (rule.requestsPerMinute !== undefined) {
          takes.push({
            bucket: `${bucket}:requests`,
            limit: rule.requestsPerMinute,
            periodMs: minute,
            amount: 1,
          });
          owners.push({ rule, kind: 'requests' });
        }
        if (rule.tokensPerMinute !== undefined) {
          if (tokens > rule.tokensPerMinute) {
            // No wait would make room: say so rather than refuse with a Retry-After that lies.
            return {
              rule,
              kind: 'tokens',
              limit: rule.tokensPerMinute,
              requested: tokens,
              retryAfterMs: null,
              quotas: {},
            };
          }
          takes.push({
            bucket: `${bucket}:tokens`,
            limit: rule.tokensPerMinute,
            periodMs: minute,
            amount: tokens,
          });
          owners.push({ rule, kind: 'tokens' });
        }
      }
      if (takes.length === 0) return { takes, tokens, quotas: {} };
      const taken = await state.take(takes, options.now());
      const quotas = tightest(takes, owners, taken.buckets);
      if (taken.ok) return { takes, tokens, quotas };
      const owner = owners[taken.refused] as { rule: RateLimitRule; kind: RateKind };
      const take = takes[taken.refused] as BucketTake;
      return {
        rule: owner.rule,
        kind: owner.kind,
        limit: take.limit,
        requested: take.amount,
        retryAfterMs: taken.retryAfterMs,
        quotas,
      };
    },

    async correct(grant, actualTokens) {
      const delta = actualTokens - grant.tokens;
      const tokenTakes = grant.takes.filter((t) => t.bucket.endsWith(':tokens'));
      if (delta === 0 || tokenTakes.length === 0) return;
      await state.adjust(
        tokenTakes.map((t) => ({ ...t, amount: delta })),
        options.now(),
      );
    },

    async refund(grant) {
      if (grant.takes.length === 0) return;
      await state.adjust(
        grant.takes.map((t) => ({ ...t, amount: -t.amount })),
        options.now(),
      );
    },
  };
}

/** Per kind, the bucket with the fewest units left (ties: the smaller limit). */
function tightest(
  takes: readonly BucketTake[],
  owners: readonly { kind: RateKind }[],
  buckets: readonly BucketState[],
): Partial<Record<RateKind, RateQuota>> {
  const quotas: Partial<Record<RateKind, RateQuota>> = {};
  takes.forEach((take, i) => {
    const { kind } = owners[i] as { kind: RateKind };
    const bucket = buckets[i] as BucketState;
    const current = quotas[kind];
    if (
      !current ||
      bucket.remaining < current.remaining ||
      (bucket.remaining === current.remaining && take.limit < current.limit)
    ) {
      quotas[kind] = { limit: take.limit, remaining: bucket.remaining, resetMs: bucket.resetMs };
    }
  });
  return quotas;
}
