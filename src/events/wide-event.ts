import { z } from 'zod';

/**
 * The wide event: one row per request with everything needed to explain its latency, cost and
 * outcome. Declared once; the analytics pipeline stores it, the console reads it.
 */
export const wideEventSchema = z.object({
  schemaVersion: z.literal(1),
  id: z.string(),
  time: z.string().describe('ISO time the request was received.'),
  operation: z.enum(['chat', 'embeddings']),
  wire: z.enum(['openai', 'anthropic']).describe('The client’s API style.'),
  stream: z.boolean(),
  keyName: z.string().nullable(),
  requestedModel: z.string(),
  route: z.string().nullable(),
  target: z.string().nullable().describe('"provider/model" that answered, or the last one tried.'),
  provider: z.string().nullable(),
  model: z.string().nullable(),
  status: z.number().int(),
  errorCode: z.string().nullable(),
  errorMessage: z.string().nullable(),
  clientAborted: z.boolean(),
  timings: z.object({
    totalMs: z.number(),
    firstTokenMs: z.number().nullable(),
  }),
  tokens: z.object({
    input: z.number().int(),
    output: z.number().int(),
    cachedInput: z.number().int(),
    cacheWrite: z.number().int(),
    reasoning: z.number().int(),
  }),
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
    }),
  ),
  retries: z.number().int(),
  fallbacks: z.number().int(),
  hedges: z.number().int(),
  priority: z.string().nullable(),
  queuedMs: z.number().describe('Time spent in admission queues, all attempts.'),
  shed: z.boolean().describe('The gateway refused the request to protect a target (flow control).'),
});

export type WideEvent = z.infer<typeof wideEventSchema>;
