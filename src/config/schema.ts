import { z } from 'zod';
import { limitAlgorithmSchema } from '../flow/limit-algorithms.js';
import { priorities } from '../flow/priority.js';

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
});

export const flowSchema = z.strictObject({
  enabled: z
    .boolean()
    .default(true)
    .describe('Adaptive limits, admission queues, retry budget and breakers.'),
  // A gateway starts generous (100 in flight per target) and lets the algorithm find the real capacity.
  limit: limitAlgorithmSchema
    .default(limitAlgorithmSchema.parse({ algorithm: 'gradient2', initialLimit: 100 }))
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
    })
    .default({ maxQueue: 1000, shares: {} }),
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

export const eventsSchema = z
  .strictObject({
    sink: z
      .enum(['duckdb', 'clickhouse', 'jsonl', 'stdout', 'none'])
      .default('duckdb')
      .describe('Where the wide event of each request goes (docs/analytics.md).'),
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
    spool: z
      .strictObject({
        dir: z.string().optional().describe('Default <dataDir>/spool.'),
        maxBytes: z.int().min(1_048_576).default(1_073_741_824).describe('Disk budget of the spool.'),
        onFull: z
          .enum(['drop-newest', 'drop-oldest'])
          .default('drop-newest')
          .describe('What to lose when the budget is spent; either is logged loudly and counted.'),
      })
      .default({ maxBytes: 1_073_741_824, onFull: 'drop-newest' })
      .describe('The append-only spool that makes DuckDB and ClickHouse sinks lose nothing.'),
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
      apiKeys: z.array(apiKeySchema).default([]).describe('Keys for the client API; none: the API is open.'),
    })
    .default({ apiKeys: [] }),
  providers: z.record(z.string().regex(/^[a-zA-Z0-9_-]+$/), providerSchema).default({}),
  routes: z.record(z.string().min(1), routeSchema).default({}),
  directModels: z
    .boolean()
    .default(false)
    .describe('Let clients name "provider/model" directly, besides routes.'),
  flow: flowSchema.default(flowSchema.parse({})).describe('Flow control (docs/flow-control.md).'),
  events: eventsSchema.default(eventsSchema.parse({})),
});

export type SluiceConfig = z.infer<typeof sluiceConfigSchema>;
export type SluiceConfigInput = z.input<typeof sluiceConfigSchema>;
