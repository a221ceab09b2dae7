import { z } from 'zod';
import { type ApiError, apiError } from '../http/api-error.js';
import { type Dimension, parseDimension, statusClasses } from './dimensions.js';
import { metricNames } from './metrics.js';
import { isTimeText, parseDuration, parseTime } from './time-range.js';

/**
 * The analytics query model, declared once: the HTTP API parses query strings into it, the CLI
 * builds it from flags, and the compiler turns it into SQL.
 */

const time = z
  .string()
  .refine(isTimeText, 'expected an ISO time, "now", a time relative to now like -1h or now-15m, or epoch ms');

const step = z
  .string()
  .refine(
    (text) => text === 'auto' || parseDuration(text) !== undefined,
    'expected "auto" or a duration like 10s, 1m, 5m, 1h',
  );

const metricList = z.array(z.enum(metricNames)).min(1);

const selection = {
  from: time.default('-1h'),
  to: time.default('now'),
  filters: z
    .record(z.string(), z.array(z.string()).min(1))
    .default({})
    .describe('Dimension → values; an event matches when its value is one of them (IN).'),
  errorsOnly: z.boolean().default(false).describe('Only requests that ended with status ≥ 400.'),
};

export const timeseriesQuerySchema = z.strictObject({
  ...selection,
  step: step.default('auto'),
  metrics: metricList.default(['requests']),
  groupBy: z.string().optional(),
  limit: z.int().min(1).max(100).default(8).describe('Most groups returned, by requests.'),
});

export const breakdownQuerySchema = z.strictObject({
  ...selection,
  by: z.string(),
  metrics: metricList.default(['requests']),
  limit: z.int().min(1).max(1000).default(20),
});

export const summaryQuerySchema = z.strictObject({
  ...selection,
  metrics: metricList.default(['requests']),
});

export const requestsQuerySchema = z.strictObject({
  ...selection,
  from: time.default('-24h'),
  limit: z.int().min(1).max(500).default(50),
  cursor: z.string().optional().describe('nextCursor of the previous page.'),
});

export type TimeseriesQuery = z.input<typeof timeseriesQuerySchema>;
export type BreakdownQuery = z.input<typeof breakdownQuerySchema>;
export type SummaryQuery = z.input<typeof summaryQuerySchema>;
export type RequestsQuery = z.input<typeof requestsQuerySchema>;

/** Who is asking: the admin sees every event; a client key only its own (tenant isolation). */
export type Scope = { kind: 'all' } | { kind: 'key'; keyId: string | null; keyName: string | null };

export interface Filter {
  dimension: Dimension;
  values: string[];
}

/** The events a query looks at: a time range (from inclusive, to exclusive) and filters. */
export interface Selection {
  fromMs: number;
  toMs: number;
  filters: Filter[];
  errorsOnly: boolean;
}

function invalid(param: string, message: string): ApiError {
  return apiError('invalid_request', 400, message, { param, code: 'invalid_value' });
}

/** Resolves times against `nowMs` and checks each filter's dimension and values. */
export function resolveSelection(
  query: { from: string; to: string; filters: Record<string, string[]>; errorsOnly: boolean },
  nowMs: number,
): Selection | ApiError {
  const fromMs = parseTime(query.from, nowMs) as number;
  const toMs = parseTime(query.to, nowMs) as number;
  if (fromMs >= toMs) {
    return invalid('from', `'from' (${query.from}) must be earlier than 'to' (${query.to}).`);
  }
  const filters: Filter[] = [];
  for (const [name, values] of Object.entries(query.filters)) {
    const dimension = parseDimension(name);
    if (typeof dimension === 'string') return invalid(name, `Invalid filter '${name}': ${dimension}.`);
    if (dimension.kind === 'column' && dimension.type === 'int') {
      const bad = values.find((value) => !/^-?\d{1,9}$/.test(value));
      if (bad !== undefined) return invalid(name, `Invalid filter '${name}': "${bad}" is not an integer.`);
    }
    if (dimension.kind === 'status_class') {
      const bad = values.find((value) => !(statusClasses as readonly string[]).includes(value));
      if (bad !== undefined) {
        return invalid(name, `Invalid filter '${name}': "${bad}"; use ${statusClasses.join(', ')}.`);
      }
    }
    filters.push({ dimension, values: [...new Set(values)] });
  }
  return { fromMs, toMs, filters, errorsOnly: query.errorsOnly };
}

export function resolveDimension(param: string, name: string): Dimension | ApiError {
  const dimension = parseDimension(name);
  return typeof dimension === 'string'
    ? invalid(param, `Invalid value for '${param}': ${dimension}.`)
    : dimension;
}
