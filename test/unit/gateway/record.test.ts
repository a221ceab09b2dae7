import { describe, expect, it } from 'vitest';
import type { Call } from '../../../src/gateway/call.js';
import { errorClass, wideEvent } from '../../../src/gateway/record.js';
import { apiError } from '../../../src/http/api-error.js';

function call(overrides: Partial<Call> = {}): Call {
  return {
    id: 'req-1',
    receivedAt: Date.parse('2026-11-29T10:00:00.000Z'),
    startedAt: 0,
    wire: 'openai',
    operation: 'chat',
    stream: false,
    principal: { keyName: 'svc', keyId: 'key_1', team: 'search', org: 'acme' },
    requestedModel: 'chat',
    route: 'chat',
    routeVersion: 'abc123',
    attempts: [
      {
        target: 'sim/a',
        provider: 'sim',
        model: 'a',
        startMs: 1,
        durationMs: 50,
        queuedMs: 5,
        status: 200,
        outcome: 'ok',
        reason: 'first',
      },
    ],
    status: 200,
    totalMs: 52,
    ...overrides,
  };
}

describe('wideEvent: a finished call becomes one row', () => {
  it('carries the principal, the version tuple, labels, cost and cache status', () => {
    const event = wideEvent(
      call({
        labels: {
          tags: { feature: 'x' },
          traceId: 't1',
          promptId: 'p',
          promptVersion: '3',
          retrievalIndexHash: 'i',
        },
        costUsd: 0.0012,
        cacheStatus: 'miss',
      }),
      'eu-west',
    );
    expect(event).toMatchObject({
      schemaVersion: 2,
      keyId: 'key_1',
      team: 'search',
      org: 'acme',
      region: 'eu-west',
      routeVersion: 'abc123',
      promptId: 'p',
      promptVersion: '3',
      retrievalIndexHash: 'i',
      traceId: 't1',
      tags: { feature: 'x' },
      costUsd: 0.0012,
      cacheStatus: 'miss',
      errorClass: null,
      timings: { totalMs: 52, upstreamMs: 45 },
    });
  });

  it('records an unpriced call as null cost, never 0', () => {
    expect(wideEvent(call()).costUsd).toBeNull();
  });

  it('names the shed reason when every attempt was shed', () => {
    const event = wideEvent(
      call({
        status: 429,
        error: apiError('rate_limit', 429, 'shed', { code: 'shed_deadline' }),
        attempts: [
          { target: 'sim/a', provider: 'sim', model: 'a', startMs: 0, outcome: 'shed', reason: 'first' },
        ],
      }),
    );
    expect(event).toMatchObject({
      shed: true,
      shedReason: 'deadline',
      errorClass: 'shed',
      timings: { upstreamMs: null },
    });
  });

  it('counts retries, fallbacks and hedges, sums their queueing and prices each attempt', () => {
    const attempt = { provider: 'sim', model: 'a', startMs: 0, status: 502, outcome: 'error' } as const;
    const event = wideEvent(
      call({
        status: 200,
        attempts: [
          { ...attempt, target: 'sim/a', reason: 'first', queuedMs: 1.004, cost: null },
          { ...attempt, target: 'sim/a', reason: 'retry', queuedMs: 2, outcome: 'shed' },
          { ...attempt, target: 'sim/b', reason: 'fallback', cost: 2_500_000, priceVersion: 'v7' },
          {
            ...attempt,
            target: 'sim/b',
            reason: 'hedge',
            status: 200,
            outcome: 'ok',
            queuedMs: 0.5,
            usage: {
              inputTokens: 3,
              outputTokens: 4,
              cachedInputTokens: 0,
              cacheWriteTokens: 0,
              reasoningTokens: 0,
              estimated: true,
            },
          },
        ],
      }),
    );
    expect(event).toMatchObject({
      retries: 1,
      fallbacks: 1,
      hedges: 1,
      queuedMs: 3.5,
      shed: false,
      target: 'sim/b',
    });
    expect(event.attempts.map((a) => a.reason)).toEqual(['first', 'retry', 'fallback', 'hedge']);
    // Absent, not undefined: the spooled JSON and the stored row only carry what an attempt has.
    expect(event.attempts[0]).toEqual({
      target: 'sim/a',
      reason: 'first',
      outcome: 'error',
      status: 502,
      startMs: 0,
      durationMs: null,
      firstByteMs: null,
      queuedMs: 1,
      error: null,
      costUsd: null,
    });
    expect(Object.keys(event.attempts[1]!)).not.toContain('costUsd');
    expect(event.attempts[2]).toMatchObject({ costUsd: 0.0000025, priceVersion: 'v7' });
    expect(event.attempts[3]).toMatchObject({ usageEstimated: true });
    expect(Object.keys(event.attempts[3]!)).not.toContain('priceVersion');
  });

  it('is not shed when one attempt was tried', () => {
    const event = wideEvent(
      call({
        status: 503,
        error: apiError('server_error', 503, 'down', { code: 'upstream_error' }),
        attempts: [
          { target: 'sim/a', provider: 'sim', model: 'a', startMs: 0, outcome: 'shed', reason: 'first' },
          { target: 'sim/b', provider: 'sim', model: 'b', startMs: 1, outcome: 'error', reason: 'fallback' },
        ],
      }),
    );
    expect(event).toMatchObject({ shed: false, shedReason: null, errorClass: 'upstream', fallbacks: 1 });
  });
});

describe('errorClass: who should act on a failure', () => {
  it.each([
    [400, 'missing_required_parameter', 'client'],
    [401, 'invalid_api_key', 'auth'],
    [403, 'route_not_allowed', 'auth'],
    [402, 'budget_exceeded', 'budget'],
    [429, 'rate_limit_exceeded', 'rate_limited'],
    [429, 'shed_queue_full', 'shed'],
    [502, 'upstream_error', 'upstream'],
    [503, 'circuit_open', 'upstream'],
    [504, 'upstream_timeout', 'timeout'],
    [500, null, 'internal'],
  ] as const)('%i %s is %s', (status, code, expected) => {
    expect(
      errorClass(status, apiError('server_error', status, 'x', { code: code ?? undefined }), false),
    ).toBe(expected);
  });

  it('calls a request the client abandoned client_aborted, whatever else failed', () => {
    expect(errorClass(502, apiError('server_error', 502, 'x', { code: 'upstream_error' }), true)).toBe(
      'client_aborted',
    );
  });
});
