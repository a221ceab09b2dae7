import { Redis } from 'ioredis';
import type { CacheConfig } from '../config/schema.js';
import type { ChatCompletionRequest } from '../http/wire/openai-chat.js';
import type { ChatCompletion } from '../providers/canonical.js';
import { exactKey, type Owner, semanticScope } from './cache-key.js';
import type { CachePolicy } from './cache-policy.js';
import { MemoryStore } from './memory-store.js';
import { MemoryVectorIndex } from './memory-vector-index.js';
import { RedisStore } from './redis-store.js';
import { RedisVectorIndex } from './redis-vector-index.js';
import type { ResponseStore, StoreStats } from './response-store.js';
import { semanticQuery } from './semantic-query.js';
import type { VectorIndex } from './vector-index.js';

/** A stored answer, as it is serialised into a store. */
export interface CachedAnswer {
  completion: ChatCompletion;
  /** Epoch milliseconds. */
  storedAt: number;
  expiresAt: number;
  /** The target that produced it. */
  target: string;
}

/** One request's question to the cache. */
export interface CacheAsk {
  policy: CachePolicy;
  request: ChatCompletionRequest;
  owner: Owner;
  /** False when the client sent `Cache-Control: no-cache`: go upstream, then store. */
  read: boolean;
  /** False when the client sent `Cache-Control: no-store`: never store this answer. */
  write: boolean;
  /** Semantic mode: embeds text through the embedding route; undefined when it failed or took too long. */
  embed(text: string): Promise<Float32Array | undefined>;
}

export type CacheLookup =
  | { status: 'hit'; answer: CachedAnswer }
  | { status: 'semantic_hit'; answer: CachedAnswer; similarity: number }
  /** `fill` stores the completion the upstream gives, if it may be cached; absent with no-store. */
  | { status: 'miss'; fill?: (completion: ChatCompletion, target: string) => void };

export interface CacheCounters {
  /** Store or index operations that failed (Redis down, timeouts): each counted a miss. */
  errors: { lookup: number; fill: number };
}

const answerVersion = 1;

/**
 * The cache stage: looks a request up (exactly, then by meaning when the route says so) and
 * fills the cache from complete answers. A failing store never fails a request: it counts as a
 * miss, is counted, and is reported through `onError`.
 */
export class ResponseCache {
  readonly counters: CacheCounters = { errors: { lookup: 0, fill: 0 } };

  constructor(
    private readonly store: ResponseStore & { stats?(): StoreStats },
    private readonly index: VectorIndex,
    private readonly options: {
      maxEntryBytes: number;
      now: () => number;
      onError: (error: unknown, operation: 'lookup' | 'fill') => void;
      close?: () => Promise<void>;
    },
  ) {}

  /** Undefined when the request may not be cached at all (see `cacheable`). */
  async lookup(ask: CacheAsk): Promise<CacheLookup | undefined> {
    if (!cacheable(ask.request) || !(ask.read || ask.write)) return undefined;
    const { policy } = ask;
    const key = exactKey(policy, ask.owner, ask.request);
    if (ask.read) {
      const answer = await this.read(key);
      if (answer) return { status: 'hit', answer };
    }
    let semantic: { scope: string; vector: Float32Array } | undefined;
    const query = policy.embedding ? semanticQuery(ask.request) : undefined;
    if (policy.embedding && query) {
      const vector = await ask.embed(query.text);
      if (vector) {
        const scope = semanticScope(
          { ...policy, embedding: policy.embedding },
          ask.owner,
          ask.request,
          query.context,
        );
        semantic = { scope, vector };
        if (ask.read) {
          const found = await this.nearest(scope, vector, policy.settings.threshold);
          if (found) return { status: 'semantic_hit', ...found };
        }
      }
    }
    if (!ask.write) return { status: 'miss' };
    return {
      status: 'miss',
      fill: (completion, target) => this.fill(key, semantic, completion, target, policy.settings.ttlMs),
    };
  }

  stats(): StoreStats | undefined {
    return this.store.stats?.();
  }

  async close(): Promise<void> {
    await this.options.close?.();
  }

  private async read(key: string): Promise<CachedAnswer | undefined> {
    try {
      return decodeAnswer(await this.store.get(key));
    } catch (error) {
      this.counters.errors.lookup++;
      this.options.onError(error, 'lookup');
      return undefined;
    }
  }

  private async nearest(
    scope: string,
    vector: Float32Array,
    threshold: number,
  ): Promise<{ answer: CachedAnswer; similarity: number } | undefined> {
    try {
      const near = await this.index.nearest(scope, vector);
      if (!near || near.similarity < threshold) return undefined;
      const answer = await this.read(near.key);
      // The entry went first (evicted, expired): its vector points nowhere now.
      if (!answer) void this.index.remove(scope, near.key).catch(() => {});
      return answer && { answer, similarity: near.similarity };
    } catch (error) {
      this.counters.errors.lookup++;
      this.options.onError(error, 'lookup');
      return undefined;
    }
  }

  private fill(
    key: string,
    semantic: { scope: string; vector: Float32Array } | undefined,
    completion: ChatCompletion,
    target: string,
    ttlMs: number,
  ): void {
    if (!complete(completion)) return;
    const storedAt = this.options.now();
    const expiresAt = storedAt + ttlMs;
    const text = JSON.stringify({ v: answerVersion, completion, storedAt, expiresAt, target });
    if (Buffer.byteLength(text) > this.options.maxEntryBytes) return;
    // The vector goes in after its entry, so a semantic lookup never finds a vector without one.
    this.store
      .set(key, text, expiresAt)
      .then(() => semantic && this.index.add(semantic.scope, key, semantic.vector, expiresAt))
      .catch((error: unknown) => {
        this.counters.errors.fill++;
        this.options.onError(error, 'fill');
      });
  }
}

/**
 * Requests whose answer the cache cannot hold faithfully: several choices (`n` > 1) and
 * log probabilities (a stream's per-token logprobs are not reassembled).
 */
function cacheable(request: ChatCompletionRequest): boolean {
  if ((request.n ?? 1) !== 1) return false;
  const extra = request as { logprobs?: unknown; top_logprobs?: unknown };
  return !extra.logprobs && !extra.top_logprobs;
}

/** Only whole answers are stored: one choice that ended on its own, at its length limit or in tool calls. */
function complete(completion: ChatCompletion): boolean {
  const [choice, ...more] = completion.choices;
  if (!choice || more.length > 0) return false;
  return (
    choice.finish_reason === 'stop' ||
    choice.finish_reason === 'length' ||
    choice.finish_reason === 'tool_calls'
  );
}

function decodeAnswer(text: string | undefined): CachedAnswer | undefined {
  if (text === undefined) return undefined;
  const parsed = JSON.parse(text) as Partial<CachedAnswer> & { v?: unknown };
  // Another version of Sluice may share the Redis: an entry it wrote differently is a miss.
  if (parsed.v !== answerVersion || !parsed.completion || !Array.isArray(parsed.completion.choices))
    return undefined;
  return parsed as CachedAnswer;
}

/** The cache a config describes: its store, its semantic index and, for Redis, the one connection both use. */
export function openResponseCache(
  config: CacheConfig,
  options: {
    now: () => number;
    onError: (error: unknown, operation: 'lookup' | 'fill' | 'connection') => void;
  },
): ResponseCache {
  const { now, onError } = options;
  const common = { maxEntryBytes: config.maxEntryBytes, now, onError };
  if (config.store === 'memory' || !config.redisUrl) {
    return new ResponseCache(
      new MemoryStore(config.maxBytes, now),
      new MemoryVectorIndex(config.maxVectors, now),
      common,
    );
  }
  const redis = new Redis(config.redisUrl, {
    lazyConnect: true,
    // A lookup waits for Redis at most this long; then it is a miss and the request goes upstream.
    ...(config.timeoutMs > 0 && { commandTimeout: config.timeoutMs }),
    maxRetriesPerRequest: 1,
  });
  // Reported once per outage, not on every reconnection attempt.
  let down = false;
  redis.on('error', (error: unknown) => {
    if (!down) onError(error, 'connection');
    down = true;
  });
  redis.on('ready', () => {
    down = false;
  });
  return new ResponseCache(
    new RedisStore(redis, config.keyPrefix, now),
    new RedisVectorIndex(redis, config.keyPrefix, config.maxVectors, now),
    {
      ...common,
      close: async () => {
        // Never connected (lazyConnect) or already gone: QUIT would only open a connection.
        if (redis.status === 'wait' || redis.status === 'end') return redis.disconnect();
        await redis.quit().catch(() => redis.disconnect());
      },
    },
  );
}
