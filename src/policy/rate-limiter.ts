import {
  andThen,
  type BucketState,
  type BucketTake,
  type Maybe,
  type SharedState,
  type Taken,
} from '../state/shared-state.js';
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
  /** What each take counts: the settlement corrects the tokens ones. */
  kinds: readonly RateKind[];
  /** Tokens each token bucket holds for the request: the prompt estimate plus the max output, until corrected. */
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

/** Answers at once on the memory state, after a round trip on Redis (SharedState). */
export interface RateLimiter {
  /** Takes one request and `tokens` from every bucket of `rules`, all or none. */
  admit(rules: readonly RateLimitRule[], tokens: number): Maybe<RateGrant | RateRefusal>;
  /**
   * Replaces the tokens the grant holds (its estimate, or what an earlier correction left)
   * with `actualTokens`.
   */
  correct(grant: RateGrant, actualTokens: number): Maybe<void>;
  /** Gives back everything the grant took: the request was not sent after all. */
  refund(grant: RateGrant): Maybe<void>;
  /** The grant's buckets as they are now, taking nothing: the headers after a correction. */
  quotas(grant: RateGrant): Maybe<Partial<Record<RateKind, RateQuota>>>;
}

const minute = 60_000;

export function isRateRefusal(value: RateGrant | RateRefusal): value is RateRefusal {
  return 'retryAfterMs' in value;
}

/** What admitting under one list of rules takes, worked out once per list. */
interface Shape {
  /** Per take: its rule, kind and bucket, and the take itself when every request takes the same (one request). */
  owners: { rule: RateLimitRule; kind: RateKind; take?: BucketTake; bucket: string; limit: number }[];
  /** Each owner's kind, in order: shared by every grant of this list of rules. */
  kinds: RateKind[];
  /** The rules with a tokens limit, which a request of more tokens than that can never pass. */
  tokenRules: RateLimitRule[];
}

/** Requests and tokens per minute per key, team and route, as GCRA buckets on SharedState. */
export function rateLimiter(options: { state: SharedState; now: () => number }): RateLimiter {
  const { state } = options;
  // Bucket names and the one-request takes are made once per list of rules (the policy hands
  // out the same list for the same subject), not on every request.
  const shapes = new WeakMap<readonly RateLimitRule[], Shape>();
  const shapeOf = (rules: readonly RateLimitRule[]): Shape => {
    let shape = shapes.get(rules);
    if (shape !== undefined) return shape;
    shape = { owners: [], kinds: [], tokenRules: [] };
    for (const rule of rules) {
      const [kind, name] = scopeParts(rule.scope);
      const prefix = `rate:${kind}:${encodeURIComponent(name)}`;
      if (rule.requestsPerMinute !== undefined) {
        const take = {
          bucket: `${prefix}:requests`,
          limit: rule.requestsPerMinute,
          periodMs: minute,
          amount: 1,
        };
        shape.owners.push({ rule, kind: 'requests', take, bucket: take.bucket, limit: take.limit });
        shape.kinds.push('requests');
      }
      if (rule.tokensPerMinute !== undefined) {
        shape.owners.push({ rule, kind: 'tokens', bucket: `${prefix}:tokens`, limit: rule.tokensPerMinute });
        shape.kinds.push('tokens');
        shape.tokenRules.push(rule);
      }
    }
    shapes.set(rules, shape);
    return shape;
  };
  return {
    admit(rules, tokens) {
      const { owners, kinds, tokenRules } = shapeOf(rules);
      for (const rule of tokenRules) {
        const limit = rule.tokensPerMinute as number;
        // No wait would make room: say so rather than refuse with a Retry-After that lies.
        if (tokens > limit)
          return { rule, kind: 'tokens', limit, requested: tokens, retryAfterMs: null, quotas: {} };
      }
      const takes: BucketTake[] = new Array(owners.length);
      for (let i = 0; i < owners.length; i++) {
        const owner = owners[i] as Shape['owners'][number];
        takes[i] = owner.take ?? {
          bucket: owner.bucket,
          limit: owner.limit,
          periodMs: minute,
          amount: tokens,
        };
      }
      if (takes.length === 0) return { takes, kinds, tokens, quotas: {} };
      const taken = state.take(takes, options.now());
      // The memory state answers at once: no closure to make for a promise.
      if (taken instanceof Promise) return taken.then((t) => answer(owners, kinds, takes, tokens, t));
      return answer(owners, kinds, takes, tokens, taken);
    },

    correct(grant, actualTokens) {
      const delta = actualTokens - grant.tokens;
      if (delta === 0) return;
      const { takes, kinds } = grant;
      let count = 0;
      for (const kind of kinds) if (kind === 'tokens') count++;
      if (count === 0) return;
      const adjusts: BucketTake[] = new Array(count);
      let n = 0;
      for (let i = 0; i < takes.length; i++) {
        if (kinds[i] !== 'tokens') continue;
        const t = takes[i] as BucketTake;
        adjusts[n++] = { bucket: t.bucket, limit: t.limit, periodMs: t.periodMs, amount: delta };
      }
      grant.tokens = actualTokens;
      return state.adjust(adjusts, options.now());
    },

    quotas(grant) {
      if (grant.takes.length === 0) return {};
      const looks = grant.takes.map((t) => ({ ...t, amount: 0 }));
      return andThen(state.take(looks, options.now()), (taken) =>
        tightest(looks, grant.kinds, taken.buckets),
      );
    },

    refund(grant) {
      if (grant.takes.length === 0) return;
      return state.adjust(
        grant.takes.map((t, i) => ({
          ...t,
          amount: grant.kinds[i] === 'tokens' ? -grant.tokens : -t.amount,
        })),
        options.now(),
      );
    },
  };
}

/** The grant, or the refusal, of what the state answered to `takes`. */
function answer(
  owners: Shape['owners'],
  kinds: readonly RateKind[],
  takes: BucketTake[],
  tokens: number,
  taken: Taken,
): RateGrant | RateRefusal {
  const quotas = tightest(takes, kinds, taken.buckets);
  if (taken.ok) return { takes, kinds, tokens, quotas };
  const owner = owners[taken.refused] as Shape['owners'][number];
  const take = takes[taken.refused] as BucketTake;
  return {
    rule: owner.rule,
    kind: owner.kind,
    limit: take.limit,
    requested: take.amount,
    retryAfterMs: taken.retryAfterMs,
    quotas,
  };
}

/**
 * Per kind, the bucket with the fewest units left (ties: the smaller limit). Two locals, not a
 * store under a computed key: that store was megamorphic in V8, for every request with a limit.
 */
function tightest(
  takes: readonly BucketTake[],
  kinds: readonly RateKind[],
  buckets: readonly BucketState[],
): Partial<Record<RateKind, RateQuota>> {
  let requests: RateQuota | undefined;
  let tokens: RateQuota | undefined;
  for (let i = 0; i < takes.length; i++) {
    const take = takes[i] as BucketTake;
    const bucket = buckets[i] as BucketState;
    const current = kinds[i] === 'requests' ? requests : tokens;
    if (
      !current ||
      bucket.remaining < current.remaining ||
      (bucket.remaining === current.remaining && take.limit < current.limit)
    ) {
      const quota = { limit: take.limit, remaining: bucket.remaining, resetMs: bucket.resetMs };
      if (kinds[i] === 'requests') requests = quota;
      else tokens = quota;
    }
  }
  if (requests && tokens) return { requests, tokens };
  if (requests) return { requests };
  return tokens ? { tokens } : {};
}
