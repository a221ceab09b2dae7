import { Redis } from 'ioredis';
import type {
  Balance,
  BucketState,
  BucketTake,
  CounterCharge,
  CounterHold,
  Reserved,
  Settled,
  SharedState,
  Taken,
} from './shared-state.js';

export interface RedisStateOptions {
  /** redis://[user:password@]host:port[/db] */
  url: string;
  /** Put before every key, so several gateways (or other apps) can share one Redis. */
  keyPrefix: string;
  /** A command that takes longer fails, and the request it serves is refused (503). */
  timeoutMs: number;
}

/*
 * A budget counter is three keys: a hash {spent, reserved}, a sorted set of hold ids scored by
 * lapse time, and a hash of hold id → amount. Every script first drops the counter's lapsed
 * holds (a node that crashed never settles), so `reserved` only counts holds still alive.
 * Scripts run atomically, so all-or-none across counters holds across every node.
 */
const purge = `
local function purge(counter, holds, amounts, now)
  local lapsed = redis.call('ZRANGEBYSCORE', holds, '-inf', now, 'LIMIT', 0, 256)
  for _, id in ipairs(lapsed) do
    local amount = tonumber(redis.call('HGET', amounts, id) or '0')
    redis.call('HINCRBY', counter, 'reserved', -amount)
    redis.call('HDEL', amounts, id)
    redis.call('ZREM', holds, id)
  end
end
local function expire(counter, holds, amounts, at)
  if at ~= '' then
    redis.call('PEXPIREAT', counter, at)
    redis.call('PEXPIREAT', holds, at)
    redis.call('PEXPIREAT', amounts, at)
  end
end
local function drop(counter, holds, amounts, id)
  local amount = redis.call('HGET', amounts, id)
  if amount then
    redis.call('HINCRBY', counter, 'reserved', -tonumber(amount))
    redis.call('HDEL', amounts, id)
    redis.call('ZREM', holds, id)
  end
end
`;

// KEYS: 3 per counter. ARGV: hold, now, holdExpiresAt, then per counter: amount, limit, expiresAt.
const reserveScript = `${purge}
local hold, now, lapse = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local n = #KEYS / 3
for i = 1, n do
  local c, h, a = KEYS[3 * i - 2], KEYS[3 * i - 1], KEYS[3 * i]
  purge(c, h, a, now)
  local b = redis.call('HMGET', c, 'spent', 'reserved')
  local spent, reserved = tonumber(b[1] or '0'), tonumber(b[2] or '0')
  local amount, limit = tonumber(ARGV[3 * i + 1]), tonumber(ARGV[3 * i + 2])
  if spent + reserved + amount > limit then return {i - 1, spent, reserved} end
end
for i = 1, n do
  local c, h, a = KEYS[3 * i - 2], KEYS[3 * i - 1], KEYS[3 * i]
  redis.call('HINCRBY', c, 'reserved', ARGV[3 * i + 1])
  redis.call('ZADD', h, lapse, hold)
  redis.call('HSET', a, hold, ARGV[3 * i + 1])
  expire(c, h, a, ARGV[3 * i + 3])
end
return {-1}
`;

// KEYS: 3 per counter. ARGV: hold, now, then per counter: amount, expiresAt.
const settleScript = `${purge}
local hold, now = ARGV[1], tonumber(ARGV[2])
local out = {}
for i = 1, #KEYS / 3 do
  local c, h, a = KEYS[3 * i - 2], KEYS[3 * i - 1], KEYS[3 * i]
  purge(c, h, a, now)
  drop(c, h, a, hold)
  local before = tonumber(redis.call('HGET', c, 'spent') or '0')
  local after = redis.call('HINCRBY', c, 'spent', ARGV[2 * i + 1])
  expire(c, h, a, ARGV[2 * i + 2])
  out[2 * i - 1] = before
  out[2 * i] = after
end
return out
`;

// KEYS: 3 per counter. ARGV: hold, now.
const releaseScript = `${purge}
for i = 1, #KEYS / 3 do
  local c, h, a = KEYS[3 * i - 2], KEYS[3 * i - 1], KEYS[3 * i]
  purge(c, h, a, tonumber(ARGV[2]))
  drop(c, h, a, ARGV[1])
end
return 0
`;

// KEYS: 3 per counter. ARGV: now.
const balancesScript = `${purge}
local out = {}
for i = 1, #KEYS / 3 do
  local c, h, a = KEYS[3 * i - 2], KEYS[3 * i - 1], KEYS[3 * i]
  purge(c, h, a, tonumber(ARGV[1]))
  local b = redis.call('HMGET', c, 'spent', 'reserved')
  out[2 * i - 1] = tonumber(b[1] or '0')
  out[2 * i] = tonumber(b[2] or '0')
end
return out
`;

/*
 * GCRA, the same arithmetic as gcra.ts (integer microseconds, intervals rounded up per take).
 * A bucket is one string key holding its TAT; it expires once the bucket would be full anyway.
 */
const gcra = `
local function tatOf(key, nowUs)
  local tat = tonumber(redis.call('GET', key) or '0')
  if tat < nowUs then return nowUs end
  return tat
end
local function store(key, tat, nowUs)
  redis.call('SET', key, string.format('%d', tat), 'PX', math.ceil((tat - nowUs) / 1000) + 1000)
end
local function remaining(used, limit, period)
  return math.max(0, math.floor(((period - used) * limit) / period))
end
`;

// KEYS: buckets. ARGV: nowUs, then per bucket: limit, periodUs, amount.
// Reply: retryAfterUs, then remaining and resetUs per bucket, then the refused index (-1: none).
const takeScript = `${gcra}
local nowUs = tonumber(ARGV[1])
local n = #KEYS
local base, nexts, refused, retryAfter = {}, {}, -1, 0
for i = 1, n do
  local limit, period, amount = tonumber(ARGV[3 * i - 1]), tonumber(ARGV[3 * i]), tonumber(ARGV[3 * i + 1])
  base[i] = tatOf(KEYS[i], nowUs)
  nexts[i] = base[i] + math.ceil((amount * period) / limit)
  if refused == -1 and nexts[i] - nowUs > period then
    refused = i - 1
    retryAfter = nexts[i] - period - nowUs
  end
end
local out = {retryAfter}
for i = 1, n do
  local limit, period = tonumber(ARGV[3 * i - 1]), tonumber(ARGV[3 * i])
  -- Refused: nothing is taken, so every bucket reports what it holds now.
  local tat = nexts[i]
  if refused ~= -1 then tat = base[i] else store(KEYS[i], tat, nowUs) end
  out[2 * i] = remaining(tat - nowUs, limit, period)
  out[2 * i + 1] = tat - nowUs
end
out[2 * n + 2] = refused
return out
`;

// KEYS: buckets. ARGV: nowUs, then per bucket: limit, periodUs, amount (< 0 gives back).
const adjustScript = `${gcra}
local nowUs = tonumber(ARGV[1])
for i = 1, #KEYS do
  local limit, period, amount = tonumber(ARGV[3 * i - 1]), tonumber(ARGV[3 * i]), tonumber(ARGV[3 * i + 1])
  local exists = redis.call('EXISTS', KEYS[i]) == 1
  if exists or amount > 0 then
    local base = tatOf(KEYS[i], nowUs)
    if amount >= 0 then
      store(KEYS[i], base + math.ceil((amount * period) / limit), nowUs)
    else
      store(KEYS[i], math.max(nowUs, base - math.floor((-amount * period) / limit)), nowUs)
    end
  end
end
return 0
`;

type Script = (...args: (string | number)[]) => Promise<unknown>;

interface ScriptedRedis extends Redis {
  sluiceReserve: Script;
  sluiceSettle: Script;
  sluiceRelease: Script;
  sluiceBalances: Script;
  sluiceTake: Script;
  sluiceAdjust: Script;
}

/**
 * SharedState for a cluster of gateways: every decision is one Lua script in Redis, so it is
 * atomic across nodes. Commands issued in the same tick share one write (auto-pipelining), so a
 * request that both takes rate-limit units and reserves budget waits on one round trip.
 */
export function redisState(options: RedisStateOptions): SharedState {
  const redis = new Redis(options.url, {
    keyPrefix: options.keyPrefix,
    enableAutoPipelining: true,
    commandTimeout: options.timeoutMs,
    // Fail fast while Redis is away: the request is refused (503) rather than left waiting.
    maxRetriesPerRequest: 1,
    lazyConnect: false,
  }) as ScriptedRedis;
  // Errors reach the callers of each command; this only keeps a lost connection from crashing the process.
  redis.on('error', () => {});
  const define = (name: string, lua: string) => redis.defineCommand(name, { lua });
  define('sluiceReserve', reserveScript);
  define('sluiceSettle', settleScript);
  define('sluiceRelease', releaseScript);
  define('sluiceBalances', balancesScript);
  define('sluiceTake', takeScript);
  define('sluiceAdjust', adjustScript);

  const keysOf = (counters: readonly string[]) =>
    counters.flatMap((c) => [`${c}`, `${c}:holds`, `${c}:amounts`]);
  const expiry = (at: number | null) => (at === null ? '' : String(Math.ceil(at)));

  return {
    async reserve(hold, counters, holdExpiresAt, now): Promise<Reserved> {
      if (counters.length === 0) return { ok: true };
      const keys = keysOf(counters.map((c) => c.counter));
      const args = counters.flatMap((c: CounterHold) => [c.amount, c.limit, expiry(c.expiresAt)]);
      const reply = (await redis.sluiceReserve(
        keys.length,
        ...keys,
        hold,
        now,
        holdExpiresAt,
        ...args,
      )) as number[];
      const [refused, spent, reserved] = reply as [number, number?, number?];
      if (refused === -1) return { ok: true };
      return { ok: false, refused, balance: { spent: spent ?? 0, reserved: reserved ?? 0 } };
    },
    async settle(hold, charges, now): Promise<Settled[]> {
      if (charges.length === 0) return [];
      const keys = keysOf(charges.map((c) => c.counter));
      const args = charges.flatMap((c: CounterCharge) => [c.amount, expiry(c.expiresAt)]);
      const reply = (await redis.sluiceSettle(keys.length, ...keys, hold, now, ...args)) as number[];
      return charges.map((_, i) => ({ before: Number(reply[2 * i]), after: Number(reply[2 * i + 1]) }));
    },
    async release(hold, counters, now) {
      if (counters.length === 0) return;
      const keys = keysOf(counters);
      await redis.sluiceRelease(keys.length, ...keys, hold, now);
    },
    async balances(counters, now): Promise<Balance[]> {
      if (counters.length === 0) return [];
      const keys = keysOf(counters);
      const reply = (await redis.sluiceBalances(keys.length, ...keys, now)) as number[];
      return counters.map((_, i) => ({ spent: Number(reply[2 * i]), reserved: Number(reply[2 * i + 1]) }));
    },
    async take(takes, now): Promise<Taken> {
      if (takes.length === 0) return { ok: true, buckets: [] };
      const reply = (await redis.sluiceTake(takes.length, ...bucketArgs(takes, now))) as number[];
      const buckets: BucketState[] = takes.map((_, i) => ({
        remaining: Number(reply[2 * i + 1]),
        resetMs: Number(reply[2 * i + 2]) / 1000,
      }));
      const refused = Number(reply[2 * takes.length + 1]);
      if (refused === -1) return { ok: true, buckets };
      return { ok: false, refused, retryAfterMs: Number(reply[0]) / 1000, buckets };
    },
    async adjust(takes, now) {
      if (takes.length === 0) return;
      await redis.sluiceAdjust(takes.length, ...bucketArgs(takes, now));
    },
    async close() {
      await redis.quit().catch(() => redis.disconnect());
    },
  };
}

function bucketArgs(takes: readonly BucketTake[], now: number): (string | number)[] {
  return [
    ...takes.map((t) => t.bucket),
    Math.round(now * 1000),
    ...takes.flatMap((t) => [t.limit, t.periodMs * 1000, t.amount]),
  ];
}
