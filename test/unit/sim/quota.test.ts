import { describe, expect, it } from 'vitest';
import { formatResetDuration, Quota } from '../../../src/sim/quota.js';

describe('Quota', () => {
  it('allows requests up to the per-minute limit, then refuses with the wait until one is free', () => {
    const quota = new Quota({ requestsPerMinute: 2 }, 0);
    expect(quota.take(10, 0).allowed).toBe(true);
    const second = quota.take(10, 0);
    expect(second.allowed).toBe(true);
    expect(second.state.requests).toEqual({ limit: 2, remaining: 0, resetMs: 60_000 });
    const third = quota.take(10, 0);
    expect(third).toMatchObject({ allowed: false, exhausted: 'requests', retryAfterMs: 30_000 });
    expect(quota.take(10, 30_000).allowed).toBe(true);
  });

  it('meters tokens separately and names the allowance that ran out', () => {
    const quota = new Quota({ requestsPerMinute: 100, tokensPerMinute: 1000 }, 0);
    expect(quota.take(800, 0).allowed).toBe(true);
    const refused = quota.take(400, 0);
    expect(refused).toMatchObject({ allowed: false, exhausted: 'tokens' });
    if (!refused.allowed) expect(refused.retryAfterMs).toBe(12_000);
    expect(refused.state.tokens?.remaining).toBe(200);
  });

  it('refills continuously', () => {
    const quota = new Quota({ tokensPerMinute: 600 }, 0);
    quota.take(600, 0);
    expect(quota.take(100, 5_000).allowed).toBe(false);
    expect(quota.take(100, 10_000).allowed).toBe(true);
  });
});

describe('formatResetDuration', () => {
  it('writes durations the way OpenAI rate-limit headers do', () => {
    expect(formatResetDuration(20)).toBe('20ms');
    expect(formatResetDuration(1000)).toBe('1s');
    expect(formatResetDuration(1500)).toBe('1.5s');
    expect(formatResetDuration(360_000)).toBe('6m0s');
  });
});
