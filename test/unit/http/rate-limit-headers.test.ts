import { describe, expect, it } from 'vitest';
import {
  addRateLimitHeaders,
  rateLimitHeaders,
  resetDuration,
} from '../../../src/http/rate-limit-headers.js';

describe('rate-limit headers', () => {
  it('give the tightest limit of each kind as OpenAI does', () => {
    expect(
      rateLimitHeaders({
        requests: { limit: 10_000_000, remaining: 9_999_999, resetMs: 0.006 },
        tokens: { limit: 10_000_000_000, remaining: 9_999_995_870, resetMs: 1_500 },
      }),
    ).toEqual({
      'x-ratelimit-limit-requests': '10000000',
      'x-ratelimit-remaining-requests': '9999999',
      'x-ratelimit-reset-requests': '1ms',
      'x-ratelimit-limit-tokens': '10000000000',
      'x-ratelimit-remaining-tokens': '9999995870',
      'x-ratelimit-reset-tokens': '1.5s',
    });
  });

  it('give only the kinds that are limited, and each limit with its own numbers', () => {
    expect(rateLimitHeaders({ tokens: { limit: 1000, remaining: 0, resetMs: 61_000 } })).toEqual({
      'x-ratelimit-limit-tokens': '1000',
      'x-ratelimit-remaining-tokens': '0',
      'x-ratelimit-reset-tokens': '1m1s',
    });
    expect(rateLimitHeaders({ requests: { limit: 60, remaining: 59, resetMs: 1000 } })).toEqual({
      'x-ratelimit-limit-requests': '60',
      'x-ratelimit-remaining-requests': '59',
      'x-ratelimit-reset-requests': '1s',
    });
    // Another limit of the same kind is printed as itself, not as the one before.
    expect(rateLimitHeaders({ requests: { limit: 61, remaining: 0, resetMs: 0 } })).toMatchObject({
      'x-ratelimit-limit-requests': '61',
      'x-ratelimit-reset-requests': '0s',
    });
    expect(rateLimitHeaders({})).toEqual({});
  });

  it('go into an answer’s other headers, the same as made on their own', () => {
    const quotas = {
      requests: { limit: 60, remaining: 12, resetMs: 48_000 },
      tokens: { limit: 90_000, remaining: 1_234, resetMs: 250 },
    };
    const headers: Record<string, string> = { 'x-sluice-request-id': 'r1', 'x-sluice-cost-usd': '0.0001' };
    expect(addRateLimitHeaders(headers, quotas)).toBe(headers);
    expect(headers).toEqual({
      'x-sluice-request-id': 'r1',
      'x-sluice-cost-usd': '0.0001',
      ...rateLimitHeaders(quotas),
    });
    expect(headers['x-ratelimit-reset-requests']).toBe('48s');
    expect(headers['x-ratelimit-reset-tokens']).toBe('250ms');
    expect(addRateLimitHeaders({ a: 'b' }, {})).toEqual({ a: 'b' });
  });

  it('write durations as Go does', () => {
    expect(resetDuration(20)).toBe('20ms');
    expect(resetDuration(6 * 60_000)).toBe('6m0s');
    expect(resetDuration(3_723_000)).toBe('1h2m3s');
  });
});
