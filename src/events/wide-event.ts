import { z } from 'zod';

export const errorClasses = [
  'client',
  'auth',
  'rate_limited',
  'budget',
  'shed',
  'upstream',
  'timeout',
  'client_aborted',
  'internal',
] as const;
export type ErrorClass = (typeof errorClasses)[number];

/**
 * The wide event: one row per request with everything needed to explain its latency, cost and
 * outcome. Declared once; the analytics pipeline stores it, the console reads it.
 */
export const WIDE_EVENT_VERSION = 2;

/** Version 2 added the principal's team and org, the version tuple, cost, cache, tags and bodies. */
export const wideEventSchema = z.object({
  schemaVersion: z
    .int()
    .min(1)
    .max(WIDE_EVENT_VERSION)
    .describe('The schema version the event was written with; fields added later read as null.'),
  id: z.string(),
  traceId: z.string().nullable().describe('W3C trace id from `traceparent`, or `x-sluice-trace-id`.'),
  time: z.string().describe('ISO time the request was received.'),
  operation: z.enum(['chat', 'embeddings']),
  wire: z.enum(['openai', 'anthropic']).describe('The client’s API style.'),
  stream: z.boolean(),
  keyName: z.string().nullable(),
  keyId: z.string().nullable().describe('The virtual key’s id (stable across renames and rotations).'),
  team: z.string().nullable(),
  org: z.string().nullable(),
  requestedModel: z.string(),
  route: z.string().nullable(),
  target: z.string().nullable().describe('"provider/model" that answered, or the last one tried.'),
  provider: z.string().nullable(),
  model: z.string().nullable(),
  region: z.string().nullable().describe('The gateway’s region (server.region).'),
  routeVersion: z.string().nullable().describe('Digest of the route’s definition when the request ran.'),
  promptId: z.string().nullable().describe('From `x-sluice-prompt-id`.'),
  promptVersion: z.string().nullable().describe('From `x-sluice-prompt-version`.'),
  retrievalIndexHash: z.string().nullable().describe('From `x-sluice-retrieval-index`.'),
  status: z.number().int(),
  errorClass: z
    .enum(errorClasses)
    .nullable()
    .describe('What kind of failure, for breakdowns; null on success.'),
  errorCode: z.string().nullable(),
  errorMessage: z.string().nullable(),
  clientAborted: z.boolean(),
  timings: z.object({
    totalMs: z.number(),
    firstTokenMs: z.number().nullable(),
    upstreamMs: z.number().nullable().describe('Duration of the attempt that answered (or the last one).'),
  }),
  tokens: z.object({
    input: z.number().int(),
    output: z.number().int(),
    cachedInput: z.number().int(),
    cacheWrite: z.number().int(),
    reasoning: z.number().int(),
  }),
  costUsd: z.number().nullable().describe('Cost of every billable attempt; null when a price is unknown.'),
  cacheStatus: z
    .enum(['hit', 'miss', 'semantic_hit'])
    .nullable()
    .describe('Null when the route has no cache.'),
  attempts: z.array(
    z.object({
      target: z.string(),
      reason: z.enum(['first', 'retry', 'fallback', 'hedge']),
      outcome: z.enum(['pending', 'ok', 'error', 'timeout', 'aborted', 'shed', 'skipped']),
      queuedMs: z.number().nullable(),
      status: z.number().int().nullable(),
      startMs: z.number(),
      durationMs: z.number().nullable(),
      firstByteMs: z.number().nullable(),
      error: z.string().nullable(),
      costUsd: z
        .number()
        .nullable()
        .optional()
        .describe(
          'This attempt’s cost, when it used tokens (a cancelled hedge that streamed still costs); null: no known price.',
        ),
      priceVersion: z
        .string()
        .optional()
        .describe('The price catalog version that priced it, or "config" (sluice.yaml).'),
      usageEstimated: z
        .boolean()
        .optional()
        .describe(
          'The provider reported no usage (a cut or cancelled stream): Sluice’s tokenizer counted it.',
        ),
    }),
  ),
  retries: z.number().int(),
  fallbacks: z.number().int(),
  hedges: z.number().int(),
  priority: z.string().nullable(),
  queuedMs: z.number().describe('Time spent in admission queues, all attempts.'),
  shed: z.boolean().describe('The gateway refused the request to protect a target (flow control).'),
  shedReason: z.string().nullable().describe('Why it was shed: `queue_full` or `deadline`.'),
  tags: z.record(z.string(), z.string()).describe('From `x-sluice-tags: team=search,feature=autocomplete`.'),
  requestBody: z.string().nullable().describe('Only when events.bodies is enabled: capped and redacted.'),
  responseBody: z.string().nullable(),
});

export type WideEvent = z.infer<typeof wideEventSchema>;
