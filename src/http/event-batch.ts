import { type ApiError, apiError } from './api-error.js';

/** One event of a batch as parsed, or why its NDJSON line is not JSON; `line` is 1-based (NDJSON only). */
export type BatchItem = { value: unknown; line?: number } | { invalid: string; line: number };

/**
 * Splits a POST /v1/events body into its events: a JSON array (or one JSON object), or NDJSON
 * (one JSON object per line, blank lines ignored). A JSON body that does not parse is refused
 * whole; in NDJSON each line stands alone, so one bad line costs only that event.
 */
export function parseEventBatch(
  body: string,
  format: 'json' | 'ndjson',
  maxEvents: number,
): { items: BatchItem[] } | { error: ApiError } {
  let items: BatchItem[];
  if (format === 'json') {
    let parsed: unknown;
    try {
      parsed = JSON.parse(body);
    } catch (error) {
      return {
        error: apiError(
          'invalid_request',
          400,
          `The body is not JSON (${(error as Error).message}): send a JSON array of events, or NDJSON with Content-Type: application/x-ndjson.`,
          { code: 'invalid_json' },
        ),
      };
    }
    if (typeof parsed !== 'object' || parsed === null) {
      return {
        error: apiError(
          'invalid_request',
          400,
          'The body must be a JSON array of events (or one event object).',
          { code: 'invalid_batch' },
        ),
      };
    }
    items = Array.isArray(parsed) ? parsed.map((value) => ({ value })) : [{ value: parsed }];
  } else {
    items = [];
    const lines = body.split('\n');
    for (let i = 0; i < lines.length; i++) {
      const text = lines[i]!.trim();
      if (text === '') continue;
      if (items.length >= maxEvents) return { error: tooMany(maxEvents) };
      try {
        items.push({ value: JSON.parse(text), line: i + 1 });
      } catch (error) {
        items.push({ invalid: `line ${i + 1} is not JSON: ${(error as Error).message}`, line: i + 1 });
      }
    }
  }
  if (items.length === 0) {
    return {
      error: apiError('invalid_request', 400, 'The batch is empty: send at least one event.', {
        code: 'empty_batch',
      }),
    };
  }
  if (items.length > maxEvents) return { error: tooMany(maxEvents) };
  return { items };
}

function tooMany(maxEvents: number): ApiError {
  return apiError(
    'too_large',
    413,
    `The batch has more than ${maxEvents} events (events.ingest.maxBatchEvents): split it into smaller batches.`,
    { code: 'batch_too_large' },
  );
}
