import type { WideEvent } from '../../src/events/wide-event.js';
import { sampleEvent } from './event-store-contract.js';

/** The first seeded event's time; events follow one per second for ten minutes. */
export const SEED_START_MS = Date.parse('2026-03-01T12:00:00.000Z');
export const SEED_COUNT = 600;
export const SEED_END_MS = SEED_START_MS + SEED_COUNT * 1000;
export const SEED_KEYS = ['alpha', 'beta', 'gamma'] as const;

/**
 * 600 requests with known spreads: three keys in turn (two teams), two routes, 5% 503s (some
 * shed), 1 in 15 a 429, latencies spread over 50–949 ms, first-token times on streams, costs
 * (1 in 25 unpriced), cache hits on the chat route only, and a `feature` tag on most.
 */
export function seededEvents(): WideEvent[] {
  return Array.from({ length: SEED_COUNT }, (_, i) => {
    const route = Math.floor(i / 3) % 2 === 0 ? 'chat' : 'search';
    const status = i % 20 === 0 ? 503 : i % 15 === 0 ? 429 : 200;
    const totalMs = 50 + ((i * 37) % 900) + 0.25;
    const stream = i % 3 === 0;
    const model = route === 'chat' ? 'gpt-4o-mini' : 'claude-haiku';
    const key = SEED_KEYS[i % 3] as string;
    const input = 100 + (i % 50);
    const output = 20 + (i % 30);
    return sampleEvent(i, {
      keyName: key,
      keyId: `key_${key}`,
      team: key === 'gamma' ? 'ads' : 'search',
      org: 'acme',
      route,
      model,
      provider: route === 'chat' ? 'openai' : 'anthropic',
      target: route === 'chat' ? 'openai/gpt-4o-mini' : 'anthropic/claude-haiku',
      requestedModel: route,
      status,
      errorCode: status === 200 ? null : 'upstream_error',
      errorMessage: status === 200 ? null : 'the upstream failed',
      stream,
      timings: { totalMs, firstTokenMs: stream ? totalMs / 4 : null, upstreamMs: totalMs - 5 },
      tokens: { input, output, cachedInput: 0, cacheWrite: 0, reasoning: 0 },
      costUsd: i % 25 === 0 ? null : (input * 0.15 + output * 0.6) / 1_000_000,
      cacheStatus: route === 'search' ? null : i % 5 === 0 ? 'hit' : i % 7 === 0 ? 'semantic_hit' : 'miss',
      tags: i % 10 === 9 ? {} : { feature: i % 2 === 0 ? 'autocomplete' : 'summary' },
      errorClass: status === 503 ? 'upstream' : status === 429 ? 'rate_limited' : null,
      shed: status === 503 && i % 40 === 0,
      priority: i % 4 === 0 ? 'high' : 'normal',
    });
  });
}

/** quantile_cont: linear interpolation between the closest ranks, as DuckDB computes it. */
export function exactQuantile(values: readonly number[], q: number): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const position = q * (sorted.length - 1);
  const low = Math.floor(position);
  const high = Math.ceil(position);
  const a = sorted[low] as number;
  const b = sorted[high] as number;
  return a + (b - a) * (position - low);
}

export const sum = (values: readonly number[]): number => values.reduce((total, value) => total + value, 0);
