import { Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import type { Call } from '../../../src/gateway/call.js';
import { GatewayMetrics } from '../../../src/http/metrics.js';

const call = (totalMs: number, overrides: Partial<Call> = {}): Call => ({
  id: 'id',
  receivedAt: 0,
  startedAt: 0,
  wire: 'openai',
  operation: 'chat',
  stream: false,
  principal: { keyName: null },
  requestedModel: 'fast',
  route: 'fast',
  attempts: [
    {
      target: 'sim/fast',
      provider: 'sim',
      model: 'fast',
      startMs: 0,
      outcome: 'ok',
      reason: 'first',
      cost: 5e6,
    },
  ],
  status: 200,
  totalMs,
  usage: { inputTokens: 3, outputTokens: 4, cachedInputTokens: 0, cacheWriteTokens: 0, reasoningTokens: 0 },
  ...overrides,
});

const lines = (text: string, name: string) => text.split('\n').filter((line) => line.includes(name));

describe('GatewayMetrics', () => {
  it('exposes request durations exactly as a prom-client Histogram fed the same values', async () => {
    const metrics = new GatewayMetrics();
    const registry = new Registry();
    const reference = new Histogram({
      name: 'sluice_request_duration_seconds',
      help: 'Time from request received to response complete.',
      labelNames: ['route', 'target', 'operation'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
      registers: [registry],
    });
    for (const seconds of [0.001, 0.005, 0.0051, 0.3, 1, 200]) {
      metrics.observe(call(seconds * 1000));
      reference.labels('fast', 'sim/fast', 'chat').observe(seconds);
    }
    const name = 'sluice_request_duration_seconds';
    expect(lines(await metrics.registry.metrics(), name)).toEqual(lines(await registry.metrics(), name));
  });

  it('sums requests, tokens, attempts and cost by their labels', async () => {
    const metrics = new GatewayMetrics();
    metrics.observe(call(10));
    metrics.observe(call(20));
    metrics.observe(call(5, { route: undefined, attempts: [], status: 404, usage: undefined }));
    const text = await metrics.registry.metrics();
    expect(text).toContain(
      'sluice_requests_total{route="fast",target="sim/fast",operation="chat",status="200"} 2',
    );
    expect(text).toContain('sluice_requests_total{route="",target="",operation="chat",status="404"} 1');
    expect(text).toContain('sluice_tokens_total{route="fast",target="sim/fast",kind="input"} 6');
    expect(text).toContain('sluice_tokens_total{route="fast",target="sim/fast",kind="output"} 8');
    expect(text).not.toContain('kind="reasoning"');
    expect(text).toContain('sluice_upstream_attempts_total{target="sim/fast",reason="first",outcome="ok"} 2');
    expect(text).toContain('sluice_cost_usd_total{route="fast",target="sim/fast"} 0.00001');
  });
});
