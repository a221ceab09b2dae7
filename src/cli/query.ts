import { join } from 'node:path';
import type { Analytics } from '../analytics/analytics.js';
import { endpointParams, queryFromParams } from '../http/analytics-routes.js';
import { isApiError } from '../http/api-error.js';
import { type Command, UsageError } from './command.js';
import {
  breakdownRows,
  eventRows,
  type OutputFormat,
  type Rows,
  renderCsv,
  renderTable,
  requestRows,
  sqlRows,
  summaryRows,
  timeseriesRows,
} from './query-output.js';

const subcommands = ['timeseries', 'breakdown', 'summary', 'requests', 'request', 'sql'] as const;
type Subcommand = (typeof subcommands)[number];

const DEFAULT_URL = 'http://127.0.0.1:7878';

/** An answer from the API (or the same service in-process) or its error body's message. */
type Answer = { ok: true; body: Record<string, unknown> } | { ok: false; message: string };

/** Flags and `dimension=value` arguments as the API's query parameters. */
function queryParams(
  values: Record<string, string | boolean | undefined>,
  filters: string[],
  sub: Subcommand,
) {
  const params: Record<string, string | string[]> = {};
  const flag = (name: string, param = name) => {
    const value = values[name];
    if (typeof value === 'string') params[param] = value;
  };
  flag('from');
  flag('to');
  if (sub === 'timeseries') flag('step');
  if (sub !== 'requests') flag('metrics');
  if (sub === 'timeseries') flag('by', 'groupBy');
  if (sub === 'breakdown') flag('by');
  if (sub !== 'summary') flag('limit');
  if (sub === 'requests') flag('cursor');
  if (values['errors-only'] === true) params.errors_only = 'true';
  for (const filter of filters) {
    const at = filter.indexOf('=');
    if (at <= 0)
      throw new UsageError(`filters are written dimension=value (e.g. route=chat), got "${filter}"`);
    const name = filter.slice(0, at);
    const existing = params[name];
    const value = filter.slice(at + 1);
    params[name] =
      existing === undefined ? [value] : [...(Array.isArray(existing) ? existing : [existing]), value];
  }
  return params;
}

async function viaGateway(
  url: string,
  key: string | undefined,
  sub: Subcommand,
  params: Record<string, string | string[]>,
  argument: string | undefined,
): Promise<Answer> {
  const headers: Record<string, string> = key ? { authorization: `Bearer ${key}` } : {};
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    for (const item of Array.isArray(value) ? value : [value]) search.append(name, item);
  }
  const base = url.replace(/\/+$/, '');
  const path =
    sub === 'request'
      ? `/api/requests/${encodeURIComponent(argument as string)}`
      : sub === 'requests'
        ? '/api/requests'
        : sub === 'sql'
          ? '/api/sql'
          : `/api/analytics/${sub}`;
  const init: RequestInit =
    sub === 'sql'
      ? {
          method: 'POST',
          headers: { ...headers, 'content-type': 'application/json' },
          body: JSON.stringify({ sql: argument }),
        }
      : { headers };
  let response: Response;
  try {
    response = await fetch(`${base}${path}${sub === 'sql' || search.size === 0 ? '' : `?${search}`}`, init);
  } catch (error) {
    const cause = (error as { cause?: Error }).cause?.message ?? (error as Error).message;
    return {
      ok: false,
      message: `no gateway answers at ${base} (${cause}); start one with \`sluice up\`, or read a stopped gateway's data with --data-dir`,
    };
  }
  const body = (await response.json().catch(() => ({}))) as Record<string, unknown>;
  if (!response.ok) {
    const error = body.error as { message?: string } | undefined;
    return { ok: false, message: `${response.status}: ${error?.message ?? 'the gateway refused the query'}` };
  }
  return { ok: true, body };
}

async function inProcess(
  analytics: Analytics,
  sub: Subcommand,
  params: Record<string, string | string[]>,
  argument: string | undefined,
): Promise<Answer> {
  const all = { kind: 'all' } as const;
  let result: unknown;
  if (sub === 'request') result = await analytics.request(argument as string, all);
  else if (sub === 'sql') result = await analytics.sql(argument as string);
  else {
    const query = queryFromParams(params, endpointParams[sub]);
    if (isApiError(query)) return { ok: false, message: query.message };
    result = await analytics[sub](query as never, all);
  }
  if (isApiError(result)) return { ok: false, message: `${result.status}: ${result.message}` };
  return { ok: true, body: result as Record<string, unknown> };
}

function rowsOf(
  sub: Subcommand,
  body: Record<string, unknown>,
  values: Record<string, string | boolean | undefined>,
): Rows {
  switch (sub) {
    case 'timeseries':
      return timeseriesRows(body as never, typeof values.by === 'string' ? values.by : undefined);
    case 'breakdown':
      return breakdownRows(body as never, Object.keys((body.rows as { values: object }[])[0]?.values ?? {}));
    case 'summary':
      return summaryRows(body as never);
    case 'requests':
      return requestRows(body as never);
    case 'request':
      return eventRows(body.event as Record<string, unknown>);
    case 'sql':
      return sqlRows(body as never);
  }
}

export const queryCommand: Command = {
  name: 'query',
  summary: 'Query stored events: time series, breakdowns, the request list, read-only SQL.',
  details: [
    'Subcommands:',
    '  timeseries [dim=value…]            Metrics over time; --by splits them into groups.',
    '  breakdown --by <dim> [dim=value…]  Metrics per value of a dimension, most requests first.',
    '  summary [dim=value…]               Metrics over the whole range.',
    '  requests [dim=value…]              The newest requests, a page at a time (--cursor: the next).',
    '  request <id>                       One request’s wide event.',
    '  sql "<SELECT …>"                   One read-only statement (admin key, or --data-dir).',
    '',
    'It asks a running gateway (--url, with the admin key or an API key; an API key sees only its',
    "own requests), or, with --data-dir, reads the gateway's DuckDB file directly, read-only, while",
    'no gateway holds it. Filters are dimension=value arguments; repeat one for several values.',
    'Times are ISO, now, or relative: write --from=-1h (or --from now-1h) so -1h is not a flag.',
    'Dimensions: route, route_version, model, provider, target, key, key_id, team, org, priority,',
    'status, status_class, error_class, cache_status, operation, wire, region, prompt_id,',
    'prompt_version, tag.<name>. Metrics: docs/analytics.md.',
    '',
    'Examples:',
    '  sluice query timeseries --from=-1h --metrics requests,latency_p99 --by route',
    '  sluice query breakdown --by model --from=-7d --metrics requests,cost_usd status_class=5xx',
    '  sluice query requests --limit 20 route=chat --errors-only',
    '  sluice query sql "SELECT route, count(*) FROM events GROUP BY route" --data-dir .sluice',
  ].join('\n'),
  options: {
    url: {
      type: 'string',
      value: 'url',
      description: `The gateway (default: $SLUICE_URL or ${DEFAULT_URL}).`,
    },
    key: {
      type: 'string',
      value: 'key',
      description: 'Admin key or API key (default: $SLUICE_ADMIN_KEY, else $SLUICE_API_KEY).',
    },
    'data-dir': {
      type: 'string',
      value: 'dir',
      description: 'Read <dir>/events.duckdb directly, read-only, instead of asking a gateway.',
    },
    from: {
      type: 'string',
      value: 'time',
      description: 'Start: ISO time, now, or relative like -1h (default -1h; requests -24h).',
    },
    to: { type: 'string', value: 'time', description: 'End, exclusive (default now).' },
    step: {
      type: 'string',
      value: 'step',
      description: 'timeseries: auto, 10s, 1m, 5m, 1h… (default auto).',
    },
    metrics: { type: 'string', value: 'list', description: 'Comma-separated metrics (default requests).' },
    by: { type: 'string', value: 'dim', description: 'breakdown: the dimension; timeseries: split by it.' },
    limit: {
      type: 'string',
      value: 'N',
      description: 'Most groups (timeseries 8, breakdown 20) or requests (50).',
    },
    cursor: {
      type: 'string',
      value: 'cursor',
      description: 'requests: the nextCursor of the previous page.',
    },
    'errors-only': { type: 'boolean', description: 'Only requests with status ≥ 400.' },
    format: { type: 'string', value: 'fmt', description: 'table, json or csv.', default: 'table' },
  },
  async run(values, positionals) {
    const [sub, ...rest] = positionals;
    if (!subcommands.includes(sub as Subcommand)) {
      throw new UsageError(
        sub === undefined ? `name a subcommand: ${subcommands.join(', ')}` : `unknown subcommand "${sub}"`,
      );
    }
    const subcommand = sub as Subcommand;
    const format = values.format as OutputFormat;
    if (!['table', 'json', 'csv'].includes(format))
      throw new UsageError(`--format must be table, json or csv, got "${format}"`);
    let argument: string | undefined;
    let filters = rest;
    if (subcommand === 'request' || subcommand === 'sql') {
      if (rest.length !== 1) {
        throw new UsageError(
          subcommand === 'request' ? 'request takes one request id' : 'sql takes one quoted statement',
        );
      }
      argument = rest[0];
      filters = [];
    }
    if (subcommand === 'breakdown' && typeof values.by !== 'string')
      throw new UsageError('breakdown needs --by <dimension>');
    const params = queryParams(values, filters, subcommand);

    let answer: Answer;
    if (typeof values['data-dir'] === 'string') {
      // Loaded only here: asking a gateway needs neither DuckDB nor the query compiler.
      const [{ openDuckDBFile }, { analyticsSettings, createAnalytics }, { eventsSchema }] =
        await Promise.all([
          import('../events/duckdb-file-reader.js'),
          import('../analytics/analytics.js'),
          import('../config/schema.js'),
        ]);
      const reader = await openDuckDBFile(join(values['data-dir'], 'events.duckdb'));
      try {
        // The file's own settings are not known here; the defaults decide when rollups are read.
        const analytics = createAnalytics({
          reader,
          settings: analyticsSettings(eventsSchema.parse({})),
          readOnly: true,
        });
        answer = await inProcess(analytics, subcommand, params, argument);
      } finally {
        reader.close();
      }
    } else {
      const url = typeof values.url === 'string' ? values.url : (process.env.SLUICE_URL ?? DEFAULT_URL);
      const key =
        typeof values.key === 'string'
          ? values.key
          : (process.env.SLUICE_ADMIN_KEY ?? process.env.SLUICE_API_KEY);
      answer = await viaGateway(url, key, subcommand, params, argument);
    }
    if (!answer.ok) throw new Error(answer.message);
    if (format === 'json') {
      process.stdout.write(`${JSON.stringify(answer.body, null, 2)}\n`);
      return;
    }
    const rows = rowsOf(subcommand, answer.body, values);
    process.stdout.write(format === 'csv' ? renderCsv(rows) : renderTable(rows));
    if (format === 'table') {
      if (typeof answer.body.nextCursor === 'string')
        process.stderr.write(`next page: --cursor ${answer.body.nextCursor}\n`);
      if (answer.body.truncated === true)
        process.stderr.write('(more rows matched: the row cap cut the result)\n');
    }
  },
};
