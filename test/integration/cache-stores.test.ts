import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { MemoryStore } from '../../src/cache/memory-store.js';
import { MemoryVectorIndex } from '../../src/cache/memory-vector-index.js';
import { RedisStore } from '../../src/cache/redis-store.js';
import { RedisVectorIndex } from '../../src/cache/redis-vector-index.js';
import { ManualClock } from '../../src/time/manual-clock.js';
import {
  describeResponseStoreContract,
  describeVectorIndexContract,
  direction,
  epoch,
} from '../support/cache-store-contract.js';
import type { RunningServer } from '../support/process.js';
import { redisCommand, startRedis } from '../support/redis.js';

let redis: RunningServer;
let prefixes = 0;

beforeAll(async () => {
  redis = await startRedis();
});
afterAll(() => redis?.stop());

/** A client on the test's Redis, and a prefix no other test uses; cleanup deletes its keys. */
async function redisClient(): Promise<{ client: Redis; prefix: string; cleanup(): Promise<void> }> {
  const client = new Redis(redis.url);
  const prefix = `test${++prefixes}:`;
  return {
    client,
    prefix,
    cleanup: async () => {
      const keys = await client.keys(`${prefix}*`);
      if (keys.length > 0) await client.del(...keys);
      await client.quit();
    },
  };
}

describeResponseStoreContract('memory', async (now) => ({
  it: new MemoryStore(1_000_000, now),
  cleanup: async () => {},
}));

describeResponseStoreContract('redis', async (now) => {
  const { client, prefix, cleanup } = await redisClient();
  return { it: new RedisStore(client, prefix, now), cleanup };
});

describeVectorIndexContract('memory', async (now, maxVectors) => ({
  it: new MemoryVectorIndex(maxVectors, now),
  cleanup: async () => {},
}));

describeVectorIndexContract('redis', async (now, maxVectors) => {
  const { client, prefix, cleanup } = await redisClient();
  return { it: new RedisVectorIndex(client, prefix, maxVectors, now), cleanup };
});

describe('redis response store', () => {
  it('lets Redis expire the entry itself, after its time to live', async () => {
    const { client, prefix, cleanup } = await redisClient();
    onTestFinished(cleanup);
    const clock = new ManualClock(epoch);
    const store = new RedisStore(client, prefix, () => clock.now());
    await store.set('k', 'v', epoch + 60_000);
    const ttl = Number(await redisCommand(redis.port, 'PTTL', `${prefix}e:k`));
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(60_000);
  });

  it('keeps gateways with different key prefixes apart on one Redis', async () => {
    const one = await redisClient();
    const two = await redisClient();
    onTestFinished(async () => {
      await Promise.all([one.cleanup(), two.cleanup()]);
    });
    await new RedisStore(one.client, one.prefix).set('k', 'one', Date.now() + 60_000);
    expect(await new RedisStore(two.client, two.prefix).get('k')).toBeUndefined();
    expect(await new RedisStore(one.client, one.prefix).get('k')).toBe('one');
  });
});

describe('redis vector index', () => {
  it('caps each scope on its own, and lets an idle scope expire with its last vector', async () => {
    const { client, prefix, cleanup } = await redisClient();
    onTestFinished(cleanup);
    const clock = new ManualClock(epoch);
    const index = new RedisVectorIndex(client, prefix, 1, () => clock.now());
    await index.add('one', 'a', direction(0), epoch + 30_000);
    await index.add('two', 'b', direction(1), epoch + 60_000);
    expect((await index.nearest('one', direction(0)))?.key).toBe('a');
    expect((await index.nearest('two', direction(1)))?.key).toBe('b');
    const ttl = Number(await redisCommand(redis.port, 'PTTL', `${prefix}v:two`));
    expect(ttl).toBeGreaterThan(30_000);
    expect(ttl).toBeLessThanOrEqual(60_000);
  });
});
