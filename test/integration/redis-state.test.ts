import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { redisState } from '../../src/state/redis-state.js';
import { type RunningServer, redisCommand, startRedis } from '../support/servers.js';
import { describeSharedStateContract } from '../support/shared-state-contract.js';

let redis: RunningServer;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(() => redis?.stop());

// Every test gets its own key prefix: one server, no state shared between tests.
const open = (prefix = `test:${randomUUID()}:`) =>
  redisState({ url: redis.url, keyPrefix: prefix, timeoutMs: 2_000 });

describeSharedStateContract('redis', async () => open());

describe('redis state keys', () => {
  it('puts every key under the prefix and lets a counter go when its period is over', async () => {
    const prefix = `test:${randomUUID()}:`;
    const state = open(prefix);
    onTestFinished(() => state.close());
    const periodEnd = Date.now() + 3_600_000;
    await state.reserve(
      'r',
      [{ counter: 'day', amount: 5, limit: 10, expiresAt: periodEnd }],
      Date.now() + 60_000,
      Date.now(),
    );
    const ttl = Number(await redisCommand(redis.port, 'PTTL', `${prefix}day`));
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(3_600_000);
    expect(Number(await redisCommand(redis.port, 'PTTL', `${prefix}day:holds`))).toBeGreaterThan(0);
    expect(await redisCommand(redis.port, 'EXISTS', 'day')).toBe('0');
  });

  it('refuses, rather than waits, when Redis does not answer', async () => {
    const state = redisState({ url: 'redis://127.0.0.1:1', keyPrefix: 'x:', timeoutMs: 200 });
    onTestFinished(() => state.close());
    await expect(
      state.take([{ bucket: 'b', limit: 1, periodMs: 60_000, amount: 1 }], Date.now()),
    ).rejects.toThrow();
  });
});
