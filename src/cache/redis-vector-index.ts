import type { Redis } from 'ioredis';
import { similarity, type VectorIndex } from './vector-index.js';

/**
 * Adds one vector and keeps the scope within its cap, atomically. KEYS: the scope's hash
 * (entry key → expiry and vector) and its sorted set (entry key by expiry). ARGV: entry key,
 * packed vector, expiry, now, cap, milliseconds the scope must live.
 */
const addScript = `
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[4])
for _, key in ipairs(expired) do redis.call('HDEL', KEYS[1], key) end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[4])
local excess = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[5])
if excess > 0 then
  local oldest = redis.call('ZPOPMIN', KEYS[2], excess)
  for i = 1, #oldest, 2 do redis.call('HDEL', KEYS[1], oldest[i]) end
end
local ttl = tonumber(ARGV[6])
if redis.call('PTTL', KEYS[1]) < ttl then
  redis.call('PEXPIRE', KEYS[1], ttl)
  redis.call('PEXPIRE', KEYS[2], ttl)
end
`;

/**
 * Vectors in Redis, one hash per scope, shared by every gateway. A lookup reads the scope's whole
 * hash and compares in the gateway (Redis has no vector search without modules): it moves
 * `vectors in scope × (dimensions × 4 + 8)` bytes, which `maxVectors` (per scope) bounds. Each
 * vector is stored with its expiry; expired ones are skipped on reads and removed on writes, and a
 * scope nobody adds to expires with its last entry.
 */
export class RedisVectorIndex implements VectorIndex {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly maxVectors: number,
    private readonly now: () => number = Date.now,
  ) {}

  async add(scope: string, key: string, vector: Float32Array, expiresAt: number): Promise<void> {
    const now = this.now();
    const ttlMs = Math.ceil(expiresAt - now);
    if (ttlMs <= 0) return;
    await this.redis.eval(
      addScript,
      2,
      this.vectorsKey(scope),
      this.expiriesKey(scope),
      key,
      pack(vector, expiresAt),
      expiresAt,
      now,
      this.maxVectors,
      ttlMs,
    );
  }

  async nearest(
    scope: string,
    vector: Float32Array,
  ): Promise<{ key: string; similarity: number } | undefined> {
    const stored = await this.redis.hgetallBuffer(this.vectorsKey(scope));
    const now = this.now();
    let best: { key: string; similarity: number } | undefined;
    for (const [key, packed] of Object.entries(stored)) {
      const unpacked = unpack(packed);
      if (!unpacked || unpacked.expiresAt <= now) continue;
      const score = similarity(vector, unpacked.vector);
      if (!best || score > best.similarity) best = { key, similarity: score };
    }
    return best;
  }

  async remove(scope: string, key: string): Promise<void> {
    await this.redis.multi().hdel(this.vectorsKey(scope), key).zrem(this.expiriesKey(scope), key).exec();
  }

  private vectorsKey(scope: string): string {
    return `${this.prefix}v:${scope}`;
  }

  private expiriesKey(scope: string): string {
    return `${this.prefix}x:${scope}`;
  }
}

/** Expiry as a little-endian float64, then the vector as little-endian float32s: the same bytes on every gateway. */
function pack(vector: Float32Array, expiresAt: number): Buffer {
  const packed = Buffer.allocUnsafe(8 + vector.length * 4);
  packed.writeDoubleLE(expiresAt, 0);
  for (let i = 0; i < vector.length; i++) packed.writeFloatLE(vector[i] as number, 8 + i * 4);
  return packed;
}

function unpack(packed: Buffer): { expiresAt: number; vector: Float32Array } | undefined {
  if (packed.length < 8 || (packed.length - 8) % 4 !== 0) return undefined;
  const vector = new Float32Array((packed.length - 8) / 4);
  for (let i = 0; i < vector.length; i++) vector[i] = packed.readFloatLE(8 + i * 4);
  return { expiresAt: packed.readDoubleLE(0), vector };
}
