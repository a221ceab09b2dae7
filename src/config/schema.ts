import { z } from 'zod';
import { eventTypeProblems } from '../events/event-types.js';
import { redactionPatternNames } from '../events/redaction.js';
import { limitAlgorithmSchema } from '../flow/limit-algorithms.js';
import { defaultDelay } from '../flow/limiter.js';
import { priorities } from '../flow/priority.js';
import { budgetSchema, rateLimitSchema } from '../policy/limit-rules.js';
import { modelPriceSchema } from '../policy/model-price.js';

/**
 * sluice.yaml, declared once: validation with precise messages, the TypeScript types,
 * and the JSON Schema for editors (`sluice config schema`). docs/configuration.md
 * documents every field.
 */

const ms = (description: string) => z.int().min(0).describe(description);

const providerBase = {
  baseUrl: z
    .url()
    .optional()
    .describe('Override the provider’s API address (proxies, regions, compatible servers).'),
  headers: z
    .record(z.string(), z.string())
    .optional()
    .describe('Extra headers sent on every upstream request.'),
  maxConnections: z.int().min(1).default(256).describe('Connection pool size towards this provider.'),
};

export const providerSchema = z.discriminatedUnion('type', [
  z.strictObject({
    type: z.literal('openai'),
    apiKey: z
      .string()
      .min(1)
      .describe('OpenAI API key; write ${OPENAI_API_KEY} to read it from the environment.'),
    organization: z.string().optional(),
    ...providerBase,
  }),
  z.strictObject({
    type: z.literal('openai-compatible'),
    baseUrl: z
      .url()
      .describe('The server’s /v1 address, e.g. http://localhost:8000/v1 (vLLM, Ollama, llama.cpp).'),
    apiKey: z.string().optional(),
    headers: providerBase.headers,
    maxConnections: providerBase.maxConnections,
  }),
  z.strictObject({
    type: z.literal('anthropic'),
    apiKey: z.string().min(1).describe('Anthropic API key, e.g. ${ANTHROPIC_API_KEY}.'),
    version: z.string().default('2023-06-01').describe('The anthropic-version header.'),
    ...providerBase,
  }),
  z.strictObject({
    type: z.literal('gemini'),
    apiKey: z.string().min(1).describe('Google AI Studio API key, e.g. ${GEMINI_API_KEY}.'),
    ...providerBase,
  }),
  z.strictObject({
    type: z.literal('azure-openai'),
    endpoint: z.url().describe('The resource endpoint, e.g. https://my-resource.openai.azure.com.'),
    apiKey: z.string().min(1),
    apiVersion: z.string().default('2024-10-21'),
    deployments: z
      .record(z.string(), z.string())
      .default({})
      .describe('Model name → deployment name; a model not listed is used as the deployment name.'),
    headers: providerBase.headers,
    maxConnections: providerBase.maxConnections,
  }),
  z.strictObject({
    type: z.literal('sim'),
    baseUrl: z.url().optional().describe('A running `sluice sim`; absent: Sluice starts one in-process.'),
    headers: providerBase.headers,
    maxConnections: providerBase.maxConnections,
  }),
]);

export type ProviderConfig = z.infer<typeof providerSchema>;

export const targetSchema = z.strictObject({
  provider: z.string().min(1).describe('A key of `providers`.'),
  model: z.string().min(1).describe('The provider’s model id.'),
  weight: z.number().min(0).default(1).describe('Share of traffic among the route’s targets.'),
  params: z
    .record(z.string(), z.unknown())
    .optional()
    .describe('Request fields set on every call to this target (e.g. temperature), overriding the client’s.'),
  limit: limitAlgorithmSchema
    .optional()
    .describe('This target’s concurrency limit algorithm, overriding flow.limit (docs/flow-control.md).'),
  price: modelPriceSchema
    .optional()
    .describe(
      'This target’s price in USD per million tokens, overriding `prices:` and the built-in catalog.',
    ),
});

export type TargetConfig = z.infer<typeof targetSchema>;

export const timeoutsSchema = z.strictObject({
  connectMs: ms('Time to open a connection to the provider.').default(5_000),
  firstTokenMs: ms(
    'Streams only: time until the first event arrives (queueing, prefill and hidden reasoning included).',
  ).default(60_000),
  totalMs: ms('Time for the whole attempt, stream included.').default(600_000),
});

export const retriesSchema = z.strictObject({
  attempts: z.int().min(0).max(10).default(2).describe('Retries of one target after its first try.'),
  baseDelayMs: ms('First backoff ceiling; doubles per retry (full jitter).').default(200),
  maxDelayMs: ms('Backoff ceiling.').default(5_000),
  maxRetryAfterMs: ms(
    'Longest Retry-After the gateway waits for; longer ones move on to a fallback.',
  ).default(10_000),
});

export const routeCacheSchema = z.strictObject({
  mode: z
    .enum(['exact', 'semantic'])
    .default('exact')
    .describe(
      'exact: the same request gets the stored answer; semantic: also a request whose last user message means the same (docs/caching.md).',
    ),
  ttlMs: z.int().min(1).default(3_600_000).describe('How long an answer may be served from the cache.'),
  scope: z
    .enum(['route', 'key'])
    .default('route')
    .describe('route: every key allowed on the route shares its entries; key: each API key has its own.'),
  embeddingRoute: z
    .string()
    .min(1)
    .optional()
    .describe('semantic: the route (of this gateway) that embeds the last user message.'),
  threshold: z
    .number()
    .min(0.5)
    .max(1)
    .default(0.95)
    .describe('semantic: the least cosine similarity between two messages that counts as the same question.'),
  embeddingTimeoutMs: z
    .int()
    .min(1)
    .default(2_000)
    .describe('semantic: a slower embedding counts as a miss and the request goes upstream.'),
});

export type RouteCacheConfig = z.infer<typeof routeCacheSchema>;

export const routeSchema = z.strictObject({
  description: z.string().optional(),
  targets: z.array(targetSchema).min(1).describe('Where traffic goes, split by weight.'),
  fallbacks: z
    .array(targetSchema)
    .default([])
    .describe('Tried in order when the chosen target fails for good (after its retries).'),
  timeouts: timeoutsSchema.default(timeoutsSchema.parse({})),
  retries: retriesSchema.default(retriesSchema.parse({})),
  balancer: z
    .enum(['p2c-peak-ewma', 'weighted-random', 'least-inflight'])
    .optional()
    .describe(
      'How the first target is picked; default p2c-peak-ewma when all weights are equal, else weighted-random.',
    ),
  hedge: z
    .strictObject({
      delayMs: z
        .int()
        .min(1)
        .optional()
        .describe('Send the hedge after this long; absent: the target’s p95 latency.'),
    })
    .optional()
    .describe(
      'Opt-in: when the first attempt is slow, send a second one to the next target; first answer wins.',
    ),
  cache: routeCacheSchema
    .optional()
    .describe('Opt-in: answer repeated chat requests from the response cache (docs/caching.md).'),
});

export type RouteConfig = z.infer<typeof routeSchema>;

export const apiKeySchema = z.strictObject({
  name: z.string().min(1).describe('Shown in logs and events instead of the key.'),
  key: z
    .string()
    .min(16)
    .describe('The secret clients send as a Bearer token or x-api-key; e.g. ${APP_KEY}.'),
  routes: z.array(z.string()).optional().describe('Routes this key may use; absent: all.'),
  priority: z
    .enum(priorities)
    .default('normal')
    .describe('Priority of this key’s requests unless they send x-sluice-priority.'),
  team: z
    .string()
    .min(1)
    .optional()
    .describe('The team this key belongs to: its budgets and rate limits apply.'),
  org: z.string().min(1).optional().describe('The org this key belongs to: its budgets apply.'),
});

export const flowSchema = z.strictObject({
  enabled: z
    .boolean()
    .default(true)
    .describe('Adaptive limits, admission queues, retry budget and breakers.'),
  // Gradient2 from a small limit: slow start finds the capacity within a few round trips, where a
  // generous start (100) floods a small model's own queue, in which priorities mean nothing.
  limit: limitAlgorithmSchema
    .default(limitAlgorithmSchema.parse({ algorithm: 'gradient2' }))
    .describe('The concurrency limit algorithm of every target (gradient2, vegas, aimd, fixed).'),
  queue: z
    .strictObject({
      maxQueue: z.int().min(0).default(1000).describe('Requests that may wait for one target.'),
      shares: z
        .partialRecord(z.enum(priorities), z.number().min(0).max(1))
        .default({})
        .describe(
          'Fraction of the queue each priority may fill (default critical 1, high 1, normal 0.8, low 0.5, batch 0.25).',
        ),
      delayTarget: z
        .number()
        .min(0)
        .default(defaultDelay.target)
        .describe(
          'Queue-delay target, as a fraction of the time a request holds its permit (CoDel): once the queue has stood for delayInterval, a request that waited, or would wait, longer is shed, lowest priority first. 0: only deadlines and maxQueue bound waits.',
        ),
      delayInterval: z
        .number()
        .positive()
        .default(defaultDelay.interval)
        .describe(
          'How long the queue must stand (in hold times) before the delay target applies: shorter bursts just wait.',
        ),
      delayExempt: z
        .array(z.enum(priorities))
        .default([...defaultDelay.exempt])
        .describe('Priorities the delay target never sheds: they wait until their deadline.'),
      delayTargetMinMs: z
        .number()
        .min(0)
        .default(defaultDelay.targetMinMs)
        .describe(
          'Floor of the queue-delay target in ms: against a fast target (a few ms per request) a fraction of its hold time is a wait nobody notices.',
        ),
      delayIntervalMinMs: z
        .number()
        .min(0)
        .default(defaultDelay.intervalMinMs)
        .describe(
          'Floor of delayInterval in ms, so a short burst against a fast target is not a standing queue.',
        ),
    })
    .default({
      maxQueue: 1000,
      shares: {},
      delayTarget: defaultDelay.target,
      delayInterval: defaultDelay.interval,
      delayExempt: [...defaultDelay.exempt],
      delayTargetMinMs: defaultDelay.targetMinMs,
      delayIntervalMinMs: defaultDelay.intervalMinMs,
    }),
  retryBudget: z
    .strictObject({
      ratio: z
        .number()
        .min(0)
        .max(1)
        .default(0.1)
        .describe('Retries, hedges and fallbacks per request, at most.'),
      minPerSecond: z.number().min(0).default(10).describe('Retries always allowed per second, per route.'),
    })
    .default({ ratio: 0.1, minPerSecond: 10 }),
  breaker: z
    .strictObject({
      enabled: z.boolean().default(true),
      windowMs: z.int().min(100).default(10_000),
      minRequests: z.int().min(1).default(20),
      failureRate: z.number().min(0).max(1).default(0.5),
      openMs: z.int().min(1).default(5_000),
      halfOpenProbes: z.int().min(1).default(3),
    })
    .default({
      enabled: true,
      windowMs: 10_000,
      minRequests: 20,
      failureRate: 0.5,
      openMs: 5_000,
      halfOpenProbes: 3,
    }),
});

export type FlowConfig = z.infer<typeof flowSchema>;

function regexProblem(source: string, flags: string): string | undefined {
  let regex: RegExp;
  try {
    regex = new RegExp(source, flags);
  } catch (error) {
    return `not a valid regular expression: ${(error as Error).message}`;
  }
  return regex.test('') ? 'matches the empty string, so it would mark every position' : undefined;
}

export const redactionRuleSchema = z.union(
  [
    z.enum(redactionPatternNames),
    z
      .strictObject({
        name: z
          .string()
          .regex(/^[a-z0-9][a-z0-9-]*$/, 'lower-case letters, digits and -')
          .describe('Shown in the marker that replaces a match: [REDACTED:<name>].'),
        regex: z.string().min(1).describe('A JavaScript regular expression; every match is replaced.'),
        flags: z
          .string()
          .regex(/^[imsu]*$/, 'only the flags i, m, s and u')
          .default('')
          .describe('Regular expression flags besides g (always on): i, m, s, u.'),
      })
      .superRefine((rule, ctx) => {
        const problem = regexProblem(rule.regex, rule.flags);
        if (problem) ctx.addIssue({ code: 'custom', path: ['regex'], message: problem });
      }),
  ],
  {
    error: (issue) =>
      typeof issue.input === 'string'
        ? `unknown pattern "${issue.input}": the built-in ones are ${redactionPatternNames.join(', ')}`
        : undefined,
  },
);

export type RedactionRule = z.infer<typeof redactionRuleSchema>;

/** A derived field's value, computed from other fields: a small, safe expression set, never code. */
export type DeriveExpression =
  | string
  | number
  | boolean
  | { literal: string | number | boolean }
  | { concat: DeriveExpression[] }
  | { lower: DeriveExpression }
  | { upper: DeriveExpression }
  | { round: DeriveExpression; digits?: number }
  | { multiply: [DeriveExpression, number] }
  | { divide: [DeriveExpression, number] }
  | { now: true }
  | { length: DeriveExpression };

const fieldNamePattern = /^[A-Za-z_][A-Za-z0-9_]*$/;

export const deriveExpressionSchema: z.ZodType<DeriveExpression> = z
  .lazy(() =>
    z.union([
      z.string().regex(fieldNamePattern, 'a field name'),
      z.number(),
      z.boolean(),
      z.strictObject({ literal: z.union([z.string(), z.number(), z.boolean()]) }),
      z.strictObject({ concat: z.array(deriveExpressionSchema).min(1) }),
      z.strictObject({ lower: deriveExpressionSchema }),
      z.strictObject({ upper: deriveExpressionSchema }),
      z.strictObject({ round: deriveExpressionSchema, digits: z.int().min(0).max(10).optional() }),
      z.strictObject({ multiply: z.tuple([deriveExpressionSchema, z.number()]) }),
      z.strictObject({ divide: z.tuple([deriveExpressionSchema, z.number().refine((n) => n !== 0)]) }),
      z.strictObject({ now: z.literal(true) }),
      z.strictObject({ length: deriveExpressionSchema }),
    ]),
  )
  .describe(
    'A field name, a number or boolean, {literal}, {concat: [..]}, {lower}, {upper}, {round, digits?}, {multiply: [expr, n]}, {divide: [expr, n]}, {now: true} or {length}.',
  );

export const eventFieldTypes = ['string', 'number', 'integer', 'boolean', 'enum', 'timestamp'] as const;

export const eventFieldSchema = z.strictObject({
  type: z.enum(eventFieldTypes).describe('timestamp: ISO 8601 with a zone, or epoch milliseconds.'),
  required: z.boolean().default(false).describe('An event without it is rejected.'),
  values: z.array(z.string().min(1)).min(1).optional().describe('enum: the allowed values.'),
  from: z
    .string()
    .regex(/^[^.\s]+(\.[^.\s]+)*$/, 'a dotted path such as user.id')
    .optional()
    .describe('Where the value is in the incoming event, e.g. user.id; default: the field’s own name.'),
  derive: deriveExpressionSchema.optional().describe('Computed from other (non-derived) fields.'),
});

export type EventFieldConfig = z.infer<typeof eventFieldSchema>;

export const eventTypeSchema = z
  .strictObject({
    description: z.string().optional(),
    requestId: z
      .enum(['required', 'optional', 'forbidden'])
      .default('optional')
      .describe('Whether events of this type point at a request (its x-sluice-request-id).'),
    unknownFields: z
      .enum(['reject', 'drop'])
      .default('reject')
      .describe('What to do with a top-level field no declared field reads.'),
    fields: z
      .record(z.string().regex(fieldNamePattern, 'letters, digits and _'), eventFieldSchema)
      .default({}),
    redact: z
      .strictObject({
        fields: z.array(z.string()).default([]).describe('Fields whose value is replaced by [REDACTED].'),
        patterns: z
          .array(redactionRuleSchema)
          .default([])
          .describe('Patterns removed from every text field.'),
      })
      .default({ fields: [], patterns: [] }),
  })
  .superRefine((type, ctx) => {
    for (const { path, message } of eventTypeProblems(type)) ctx.addIssue({ code: 'custom', path, message });
  });

export type EventTypeConfig = z.infer<typeof eventTypeSchema>;

/** A size as DuckDB reads it: a number, then KB, MB… (powers of 1000) or KiB, MiB… (of 1024). */
const SIZE = /^(\d+(?:\.\d+)?)\s*([KMGT])(i?)B$/i;

/** Bytes in a size that matches `SIZE`; NaN for anything else. */
function sizeBytes(size: string): number {
  const match = SIZE.exec(size);
  if (!match) return Number.NaN;
  const power = 'KMGT'.indexOf((match[2] as string).toUpperCase()) + 1;
  return Number(match[1]) * (match[3] ? 1024 : 1000) ** power;
}

export const eventsSchema = z
  .strictObject({
    sink: z
      .enum(['duckdb', 'clickhouse', 'jsonl', 'stdout', 'none'])
      .default('duckdb')
      .describe('Where the wide event of each request goes (docs/analytics.md).'),
    worker: z
      .boolean()
      .default(true)
      .describe(
        "With duckdb and clickhouse: spool and store events on a worker thread, off the gateway's event loop (docs/analytics.md).",
      ),
    path: z
      .string()
      .optional()
      .describe(
        'The DuckDB file (default <dataDir>/events.duckdb) or JSONL file (default <dataDir>/events.jsonl).',
      ),
    clickhouse: z
      .strictObject({
        url: z.url().describe('ClickHouse HTTP address, e.g. http://clickhouse:8123.'),
        database: z
          .string()
          .regex(/^[A-Za-z_][A-Za-z0-9_]*$/)
          .default('sluice'),
        username: z.string().optional(),
        password: z.string().optional().describe('e.g. ${CLICKHOUSE_PASSWORD}.'),
      })
      .optional()
      .describe('Required when sink is clickhouse.'),
    duckdb: z
      .strictObject({
        memoryLimit: z
          .string()
          .regex(SIZE, 'a size such as 512MiB or 2GB')
          .refine(
            // Not a size at all is the regex's to say.
            (size) => !SIZE.test(size) || sizeBytes(size) >= 64 * 1_048_576,
            'at least 64MiB: a batch of events is appended in memory',
          )
          .default('1GiB')
          .describe(
            "What DuckDB may hold in memory: its cache of the file's blocks, the rows not yet checkpointed and queries' working memory. Beyond it, it evicts blocks, spills to disk or fails the query. DuckDB's own default is 80% of the machine's memory.",
          ),
      })
      .default({ memoryLimit: '1GiB' })
      .describe('The embedded store (sink: duckdb).'),
    spool: z
      .strictObject({
        dir: z.string().optional().describe('Default <dataDir>/spool.'),
        maxBytes: z.int().min(1_048_576).default(1_073_741_824).describe('Disk budget of the spool.'),
        onFull: z
          .enum(['drop-newest', 'drop-oldest'])
          .default('drop-newest')
          .describe('What to lose when the budget is spent; either is logged loudly and counted.'),
        commitIntervalMs: z
          .int()
          .min(1)
          .max(1_000)
          .default(50)
          .describe('Wide events are written and fdatasynced together this often: what a crash can lose.'),
      })
      .default({ maxBytes: 1_073_741_824, onFull: 'drop-newest', commitIntervalMs: 50 })
      .describe('The append-only spool that makes DuckDB and ClickHouse sinks lose nothing.'),
    types: z
      .record(z.string().regex(/^[A-Za-z][A-Za-z0-9_.-]*$/, 'letters, digits, _, . and -'), eventTypeSchema)
      .default({})
      .describe('Custom event types other systems may send to POST /v1/events (docs/analytics.md).'),
    ingest: z
      .strictObject({
        maxBatchEvents: z.int().min(1).max(100_000).default(1000).describe('Events per POST /v1/events.'),
        maxBodyBytes: z
          .int()
          .min(1024)
          .default(1_048_576)
          .describe('Bytes per POST /v1/events; larger bodies get 413. Read at start.'),
      })
      .default({ maxBatchEvents: 1000, maxBodyBytes: 1_048_576 }),
    bodies: z
      .strictObject({
        enabled: z.boolean().default(false).describe('Keep request and response bodies on the wide event.'),
        maxBytes: z.int().min(256).default(65_536).describe('Each body is cut to this many bytes.'),
        redact: z
          .array(redactionRuleSchema)
          .default([...redactionPatternNames])
          .describe('Removed before the event is spooled; default: every built-in pattern.'),
      })
      .default({ enabled: false, maxBytes: 65_536, redact: [...redactionPatternNames] }),
    retention: z
      .strictObject({
        rawDays: z
          .int()
          .min(0)
          .default(30)
          .describe('Days raw events are kept (DuckDB, ClickHouse); 0 keeps them forever.'),
        rollupDays: z
          .int()
          .min(0)
          .default(400)
          .describe('Days the per-minute rollups are kept; 0 keeps them forever.'),
      })
      .default({ rawDays: 30, rollupDays: 400 })
      .describe('How long stored events and rollups are kept (docs/analytics.md, "Retention and rollups").'),
    rollups: z
      .strictObject({
        enabled: z
          .boolean()
          .default(true)
          .describe('Build per-minute rollups and let long-range queries read them.'),
        intervalMs: z
          .int()
          .min(1_000)
          .default(60_000)
          .describe('How often the rollup and retention job runs.'),
        settleMs: ms('A minute is rolled up once it ended this long ago, so late events are in it.').default(
          120_000,
        ),
        minRangeMs: ms(
          'Queries over at least this range (with a step of whole minutes) read the rollups…',
        ).default(21_600_000),
        minCompression: z
          .number()
          .min(1)
          .default(4)
          .describe(
            '…when each rollup row there stands for at least this many events (else raw events are faster).',
          ),
      })
      .default({
        enabled: true,
        intervalMs: 60_000,
        settleMs: 120_000,
        minRangeMs: 21_600_000,
        minCompression: 4,
      }),
    queries: z
      .strictObject({
        timeoutMs: z
          .int()
          .min(100)
          .default(30_000)
          .describe('An analytics or SQL query running longer is cancelled.'),
        maxRows: z.int().min(1).max(1_000_000).default(10_000).describe('Most rows POST /api/sql returns.'),
      })
      .default({ timeoutMs: 30_000, maxRows: 10_000 }),
  })
  .refine((events) => events.sink !== 'clickhouse' || events.clickhouse !== undefined, {
    message: 'sink clickhouse needs events.clickhouse.url',
    path: ['clickhouse'],
  });

export const cacheSchema = z
  .strictObject({
    store: z
      .enum(['memory', 'redis'])
      .default('memory')
      .describe('memory: this process only; redis: shared by every gateway pointed at the same Redis.'),
    maxBytes: z
      .int()
      .min(1024)
      .default(268_435_456)
      .describe('memory: the byte budget of stored answers; the least recently used go first.'),
    maxEntryBytes: z.int().min(1).default(1_048_576).describe('Larger answers are not stored.'),
    redisUrl: z
      .url({ protocol: /^rediss?$/ })
      .optional()
      .describe('Required when store is redis, e.g. redis://redis:6379 or ${REDIS_URL}.'),
    keyPrefix: z.string().default('sluice:cache:').describe('redis: prefix of every key the cache writes.'),
    timeoutMs: ms('redis: a slower lookup counts as a miss.').default(250),
    maxVectors: z
      .int()
      .min(1)
      .default(10_000)
      .describe('Semantic index cap: memory, vectors in all; redis, vectors per scope. The oldest go first.'),
  })
  .refine((cache) => cache.store !== 'redis' || cache.redisUrl !== undefined, {
    message: 'store redis needs cache.redisUrl',
    path: ['redisUrl'],
  });

export type CacheConfig = z.infer<typeof cacheSchema>;

export const storeSchema = z
  .discriminatedUnion('type', [
    z.strictObject({
      type: z.literal('sqlite'),
      path: z.string().min(1).optional().describe('The database file; default <dataDir>/control.db.'),
    }),
    z.strictObject({
      type: z.literal('postgres'),
      url: z
        .url({ protocol: /^postgres(ql)?$/ })
        .describe('postgres://user:password@host:5432/database; e.g. ${SLUICE_DATABASE_URL}.'),
      maxConnections: z.int().min(1).default(10).describe('Connection pool size.'),
    }),
  ])
  .describe('Where keys, teams, orgs and budgets live (docs/keys-and-budgets.md).');

// Shaped like `cache` (store, redisUrl, keyPrefix, timeoutMs): one Redis may serve both.
export const stateSchema = z
  .strictObject({
    store: z
      .enum(['memory', 'redis'])
      .default('memory')
      .describe('Where budget spend and rate-limit counters live: memory (one node) or redis (every node).'),
    redisUrl: z
      .url({ protocol: /^rediss?$/ })
      .optional()
      .describe('Required when store is redis, e.g. redis://redis:6379 or ${REDIS_URL}.'),
    keyPrefix: z
      .string()
      .default('sluice:limits:')
      .describe('redis: prefix of every key budgets and rate limits write.'),
    timeoutMs: z
      .int()
      .min(1)
      .default(1000)
      .describe('redis: a slower command fails, and the request it serves gets 503.'),
    flushMs: z
      .int()
      .min(100)
      .default(5000)
      .describe(
        'memory: how often settled spend is written to <dataDir>/spend.json (a crash loses at most this much).',
      ),
  })
  .refine((state) => state.store !== 'redis' || state.redisUrl !== undefined, {
    message: 'store redis needs state.redisUrl',
    path: ['redisUrl'],
  });

export type StateConfig = z.infer<typeof stateSchema>;

export const sluiceConfigSchema = z.strictObject({
  server: z
    .strictObject({
      host: z.string().default('127.0.0.1'),
      port: z.int().min(0).max(65_535).default(7878),
      region: z
        .string()
        .min(1)
        .optional()
        .describe('This gateway’s region, recorded on every wide event (e.g. eu-west).'),
      bodyLimitBytes: z
        .int()
        .min(1024)
        .default(10 * 1024 * 1024)
        .describe('Larger request bodies get 413.'),
      headerLimitBytes: z
        .int()
        .min(1024)
        .default(16 * 1024)
        .describe('Larger request headers get 431.'),
      requestTimeoutMs: ms('A client request that takes longer is cut.').default(600_000),
      shutdownGraceMs: ms('On SIGTERM, how long in-flight requests and streams may finish.').default(30_000),
    })
    .default({
      host: '127.0.0.1',
      port: 7878,
      bodyLimitBytes: 10 * 1024 * 1024,
      headerLimitBytes: 16 * 1024,
      requestTimeoutMs: 600_000,
      shutdownGraceMs: 30_000,
    }),
  dataDir: z.string().default('.sluice').describe('Where embedded storage lives.'),
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  auth: z
    .strictObject({
      adminKey: z
        .string()
        .min(16)
        .optional()
        .describe('Required for /admin routes; e.g. ${SLUICE_ADMIN_KEY}.'),
      apiKeys: z
        .array(apiKeySchema)
        .default([])
        .describe('Keys for the client API; none here and none in the control store: the API is open.'),
      keyRefreshMs: z
        .int()
        .min(100)
        .default(5_000)
        .describe(
          'How often virtual keys and budgets are reloaded from the control store (changes made on other nodes).',
        ),
    })
    .default({ apiKeys: [], keyRefreshMs: 5_000 }),
  providers: z.record(z.string().regex(/^[a-zA-Z0-9_-]+$/), providerSchema).default({}),
  routes: z.record(z.string().min(1), routeSchema).default({}),
  directModels: z
    .boolean()
    .default(false)
    .describe('Let clients name "provider/model" directly, besides routes.'),
  prices: z
    .record(z.string().regex(/^[a-zA-Z0-9_-]+\/.+$/, 'a "provider/model" key'), modelPriceSchema)
    .default({})
    .describe(
      'Prices in USD per million tokens by "provider/model", overriding the built-in catalog (docs/keys-and-budgets.md).',
    ),
  flow: flowSchema.default(flowSchema.parse({})).describe('Flow control (docs/flow-control.md).'),
  events: eventsSchema.default(eventsSchema.parse({})),
  cache: cacheSchema
    .default(cacheSchema.parse({}))
    .describe('Where the response cache keeps answers; routes opt in with routes.<name>.cache.'),
  store: storeSchema.default({ type: 'sqlite' }),
  budgets: z
    .array(budgetSchema)
    .default([])
    .describe('USD and token budgets per org, team or key (docs/keys-and-budgets.md).'),
  rateLimits: z
    .array(rateLimitSchema)
    .default([])
    .describe('Requests and tokens per minute per key, team or route (docs/keys-and-budgets.md).'),
  state: stateSchema
    .default(stateSchema.parse({}))
    .describe('Where budget and rate-limit counters live (docs/keys-and-budgets.md).'),
});

export type SluiceConfig = z.infer<typeof sluiceConfigSchema>;
export type SluiceConfigInput = z.input<typeof sluiceConfigSchema>;
