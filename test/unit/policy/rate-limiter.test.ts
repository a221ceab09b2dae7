import { describe, expect, it } from 'vitest';
import { type RateLimitRule, rateLimitSchema } from '../../../src/policy/limit-rules.js';
import { isRateRefusal, type RateGrant, rateLimiter } from '../../../src/policy/rate-limiter.js';
import { MemoryState } from '../../../src/state/memory-state.js';
import { ManualClock } from '../../../src/time/manual-clock.js';

const rule = (input: Record<string, unknown>): RateLimitRule => rateLimitSchema.parse(input);
const keyLimit = rule({ scope: { key: 'web' }, requestsPerMinute: 60, tokensPerMinute: 10_000 });
const routeLimit = rule({ scope: { route: 'chat' }, requestsPerMinute: 2 });

function setup() {
  const clock = new ManualClock(Date.parse('2026-03-14T10:00:00.000Z'));
  const limiter = rateLimiter({ state: new MemoryState(), now: () => clock.now() });
  const grant = async (rules: RateLimitRule[], tokens: number): Promise<RateGrant> => {
    const result = await limiter.admit(rules, tokens);
    if (isRateRefusal(result))
      throw new Error(`refused by ${result.kind} of ${JSON.stringify(result.rule.scope)}`);
    return result;
  };
  return { clock, limiter, grant };
}

describe('rate limiter', () => {
  it('takes a request and its tokens from every bucket, and shows the tightest of each kind', async () => {
    const { grant } = setup();
    const first = await grant([keyLimit, routeLimit], 1500);
    expect(first.quotas).toEqual({
      requests: { limit: 2, remaining: 1, resetMs: 30_000 },
      tokens: { limit: 10_000, remaining: 8500, resetMs: 9000 },
    });
  });

  it('refuses with the limit that ran out and when it will have room again', async () => {
    const { clock, limiter, grant } = setup();
    await grant([keyLimit, routeLimit], 10);
    await grant([keyLimit, routeLimit], 10);
    clock.advance(10_000);
    const refused = await limiter.admit([keyLimit, routeLimit], 10);
    expect(refused).toMatchObject({
      rule: routeLimit,
      kind: 'requests',
      limit: 2,
      requested: 1,
      retryAfterMs: 20_000,
      quotas: { requests: { limit: 2, remaining: 0, resetMs: 50_000 } },
    });
    clock.advance(20_000);
    await grant([keyLimit, routeLimit], 10);
  });

  it('refuses a request whose tokens alone pass a tokens-per-minute limit, without a retry time', async () => {
    const { limiter, grant } = setup();
    expect(await limiter.admit([keyLimit], 10_001)).toEqual({
      rule: keyLimit,
      kind: 'tokens',
      limit: 10_000,
      requested: 10_001,
      retryAfterMs: null,
      quotas: {},
    });
    // Nothing was taken.
    expect((await grant([keyLimit], 10_000)).quotas.requests?.remaining).toBe(59);
  });

  it('corrects the token estimate with the actual count: unused tokens come back, extra ones are charged', async () => {
    const { limiter, grant } = setup();
    const a = await grant([keyLimit], 6000);
    await limiter.correct(a, 1000);
    expect((await grant([keyLimit], 1)).quotas.tokens?.remaining).toBe(8999);
    const b = await grant([keyLimit], 1000);
    await limiter.correct(b, 9000);
    // 10,001 tokens used of 10,000 a minute: the next token fits once 2 tokens' time (12 ms) has passed.
    expect(await limiter.admit([keyLimit], 1)).toMatchObject({ kind: 'tokens', retryAfterMs: 12 });
  });

  it('gives everything back for a request that was not sent after all', async () => {
    const { limiter, grant } = setup();
    const a = await grant([keyLimit, routeLimit], 4000);
    await grant([routeLimit], 0);
    await limiter.refund(a);
    const b = await grant([keyLimit, routeLimit], 0);
    expect(b.quotas).toEqual({
      requests: { limit: 2, remaining: 0, resetMs: 60_000 },
      tokens: { limit: 10_000, remaining: 10_000, resetMs: 0 },
    });
  });

  it('admits everything when no rate limit applies', async () => {
    const { grant } = setup();
    expect(await grant([], 1_000_000)).toEqual({ takes: [], kinds: [], tokens: 1_000_000, quotas: {} });
  });
});
