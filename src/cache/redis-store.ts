import type { Redis } from 'ioredis';
import type { ResponseStore } from './response-store.js';

/**
 * Cached answers in Redis, shared by every gateway pointed at it. Redis expires each key itself
 * (SET ... PX); the expiry is also written in front of the value, so a read checks it against the
 * gateway's clock like the memory store does. Redis bounds its memory with its own `maxmemory`
 * and eviction policy (docs/caching.md).
 */
export class RedisStore implements ResponseStore {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly now: () => number = Date.now,
  ) {}

  async get(key: string): Promise<string | undefined> {
    const stored = await this.redis.get(this.entryKey(key));
    if (stored === null) return undefined;
    const newline = stored.indexOf('\n');
    const expiresAt = Number(stored.slice(0, newline));
    if (newline < 0 || !(expiresAt > this.now())) return undefined;
    return stored.slice(newline + 1);
  }

  async set(key: string, value: string, expiresAt: number): Promise<void> {
    const ttlMs = Math.ceil(expiresAt - this.now());
    if (ttlMs <= 0) return;
    await this.redis.set(this.entryKey(key), `${expiresAt}\n${value}`, 'PX', ttlMs);
  }

  async delete(key: string): Promise<void> {
    await this.redis.del(this.entryKey(key));
  }

  private entryKey(key: string): string {
    return `${this.prefix}e:${key}`;
  }
}
