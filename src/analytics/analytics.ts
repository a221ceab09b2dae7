import type { z } from 'zod';
import type { SluiceConfig } from '../config/schema.js';
import { type EventReader, QueryError, type SqlStatement } from '../events/event-reader.js';
import type { WideEvent } from '../events/wide-event.js';
import { type ApiError, apiError, isApiError } from '../http/api-error.js';
import { invalidRequestFromIssues } from '../http/wire/invalid-request.js';
import {
  type AggregateSpec,
  aggregateStatement,
  type CompileContext,
  histogramStatement,
  quantilesOf,
  type RollupTier,
  resultColumn,
  rollupTiers,
  type Source,
  tierKeeps,
  tierScopes,
  timeRange,
} from './compile.js';
import type { Dimension } from './dimensions.js';
import { HISTOGRAM_BUCKETS, histogramQuantile } from './latency-histogram.js';
import {
  type Aggregates,
  type MetricName,
  metricValue,
  neededAggregates,
  type SumName,
  type Timing,
} from './metrics.js';
import {
  type BreakdownQuery,
  breakdownQuerySchema,
  type RequestsQuery,
  requestsQuerySchema,
  resolveDimension,
  resolveSelection,
  type Scope,
  type Selection,
  type SummaryQuery,
  summaryQuerySchema,
  type TimeseriesQuery,
  timeseriesQuerySchema,
} from './query.js';
import { decodeCursor } from './request-cursor.js';
import { findRequest, listRequests, type RequestsPage, rowObjects } from './request-list.js';

export type { RequestListItem, RequestsPage } from './request-list.js';

import { expireEvents, type RetentionReport } from './retention.js';
import { createRollupTables, WATERMARK_TABLE } from './rollup-table.js';
import { buildRollups, type RollupReport, rollupWatermark } from './rollups.js';
import { clickhouseDialect, duckdbDialect, params } from './sql-dialect.js';
import { guardSql } from './sql-guard.js';
import { autoStep, ceilTo, DAY_MS, floorTo, iso, parseDuration } from './time-range.js';

export interface AnalyticsSettings {
  rollups: {
    enabled: boolean;
    /** Ranges at least this long (with a step of whole minutes) read the rollups… */
    minRangeMs: number;
    /** …when each rollup row there stands for at least this many raw events. */
    minCompression: number;
    /** A minute is rolled up once it ended this long ago. */
    settleMs: number;
  };
  retention: { rawDays: number; rollupDays: number };
  queries: { timeoutMs: number; maxRows: number };
}

/** The analytics part of sluice.yaml's `events` section. */
export function analyticsSettings(events: SluiceConfig['events']): AnalyticsSettings {
  return {
    rollups: {
      enabled: events.rollups.enabled,
      minRangeMs: events.rollups.minRangeMs,
      minCompression: events.rollups.minCompression,
      settleMs: events.rollups.settleMs,
    },
    retention: { rawDays: events.retention.rawDays, rollupDays: events.retention.rollupDays },
    queries: { timeoutMs: events.queries.timeoutMs, maxRows: events.queries.maxRows },
  };
}

export interface AnalyticsOptions {
  reader: EventReader;
  settings: AnalyticsSettings;
  /** Epoch milliseconds. Default Date.now. */
  now?: () => number;
  /** Opens the store before the first query (the gateway's store, shared with the bus). */
  open?: () => Promise<void>;
  /** A file opened read-only (sluice query --data-dir): no tables are created, nothing maintained. */
  readOnly?: boolean;
  /** Custom events that point at a request (POST /v1/events), for the request detail. */
  related?: (requestId: string) => Promise<unknown[]>;
}

export interface TimeseriesResult {
  from: string;
  to: string;
  stepMs: number;
  metrics: MetricName[];
  /** Bucket starts, epoch ms. */
  t: number[];
  series: { group: string | null; values: Partial<Record<MetricName, (number | null)[]>> }[];
  /** `raw`, or the rollup table whole minutes or hours came from (percentiles then approximate). */
  source: SourceName;
}

export interface BreakdownResult {
  by: string;
  rows: { group: string | null; values: Partial<Record<MetricName, number | null>> }[];
  source: SourceName;
}

export interface SummaryResult {
  values: Partial<Record<MetricName, number | null>>;
  source: SourceName;
}

export interface RequestDetail {
  event: WideEvent;
  /** Custom events that point at this request (POST /v1/events), when the store keeps them. */
  related: unknown[];
}

export interface SqlResult {
  columns: { name: string; type: string }[];
  rows: unknown[][];
  /** More rows matched than the cap; `rows` holds the first ones. */
  truncated: boolean;
}

export interface MaintenanceReport {
  rollups: RollupReport | null;
  retention: RetentionReport;
}

export interface Analytics {
  readonly engine: EventReader['engine'];
  timeseries(query: TimeseriesQuery, scope: Scope): Promise<TimeseriesResult | ApiError>;
  breakdown(query: BreakdownQuery, scope: Scope): Promise<BreakdownResult | ApiError>;
  summary(query: SummaryQuery, scope: Scope): Promise<SummaryResult | ApiError>;
  requests(query: RequestsQuery, scope: Scope): Promise<RequestsPage | ApiError>;
  request(id: string, scope: Scope): Promise<RequestDetail | ApiError>;
  /** Admin only (the caller checks): one read-only statement, capped rows and time. */
  sql(text: string): Promise<SqlResult | ApiError>;
  /** One pass of the background job: roll up closed minutes, then delete what retention expired. */
  maintain(): Promise<MaintenanceReport>;
}

/** Where an answer came from: raw events, or a rollup table (with raw events for the rest). */
export type SourceName = 'raw' | RollupTier['table'];

function sourceName(source: Source): SourceName {
  return source.kind === 'raw' ? 'raw' : source.tier.table;
}

/**
 * The tiers in the order the source choice tries them: coarser grains first, then narrower
 * tiers (fewer dimensions, so fewer rows) before wider ones of the same grain.
 */
const tiersByRows = [...rollupTiers].sort(
  (a, b) => b.grainMs - a.grainMs || a.columns.length - b.columns.length,
);

/**
 * Values kept `ttlMs` after they were asked for, by key; callers asking while one is being
 * fetched share it, and a failed fetch is forgotten at once.
 */
function recently<T>(ttlMs: number) {
  const entries = new Map<string, { value: Promise<T>; at: number }>();
  return {
    get(key: string, fetch: () => Promise<T>): Promise<T> {
      const at = Date.now();
      const cached = entries.get(key);
      if (cached && at - cached.at < ttlMs) return cached.value;
      // Keys carry a time range: old ones are dropped rather than piling up.
      for (const [old, entry] of entries) if (at - entry.at >= ttlMs) entries.delete(old);
      const value = fetch();
      entries.set(key, { value, at });
      value.catch(() => {
        if (entries.get(key)?.value === value) entries.delete(key);
      });
      return value;
    },
    clear: () => entries.clear(),
  };
}

/** Most buckets a time series may have; a finer step over a longer range is refused. */
export const MAX_POINTS = 2_000;

function parse<S extends z.ZodType>(schema: S, input: unknown): z.output<S> | ApiError {
  const result = schema.safeParse(input, { reportInput: true });
  return result.success ? result.data : invalidRequestFromIssues(result.error.issues);
}

function numberOrNull(value: unknown): number | null {
  if (value === null || value === undefined) return null;
  const n = Number(value);
  return Number.isFinite(n) ? n : null;
}

type Row = Record<string, unknown>;

/** A result row with its aggregates, read the same way whichever table they came from. */
interface AggregateRow {
  row: Row;
  aggregates: Aggregates;
}

/** Identifies a row's bucket and group across the sums and the histogram statements. */
const rowKey = (row: Row): string =>
  `${row.t ?? ''}|${row.g === null || row.g === undefined ? '\u0000' : String(row.g)}`;

/** Per row: each timing's percentiles (in layout order), or its histogram's bucket counts. */
type Histograms = Map<
  string,
  Partial<Record<Timing, { quantiles: (number | null)[]; counts?: undefined } | { counts: number[] }>>
>;

function aggregatesOf(row: Row, layout: Map<Timing, number[]>, histograms?: Histograms): Aggregates {
  return {
    sum: (name: SumName) => numberOrNull(row[resultColumn.sum(name)]),
    quantile(timing, q) {
      if (!histograms) {
        const values = row[resultColumn.quantiles(timing)];
        const index = layout.get(timing)?.indexOf(q) ?? -1;
        return Array.isArray(values) && index >= 0 ? numberOrNull(values[index]) : null;
      }
      const found = histograms.get(rowKey(row))?.[timing];
      if (found?.counts === undefined) {
        const index = layout.get(timing)?.indexOf(q) ?? -1;
        return index >= 0 ? (found?.quantiles[index] ?? null) : null;
      }
      return histogramQuantile(found.counts, q);
    },
  };
}

function groupOf(row: Row): string | null {
  const group = row.g;
  return group === null || group === undefined ? null : String(group);
}

/** An engine failure as the client sees it; a compiled query that fails is our bug (500). */
function queryFailure(error: unknown, clientSql = false): ApiError {
  if (error instanceof QueryError) {
    switch (error.reason) {
      case 'timeout':
        return apiError('timeout', 504, `The query was cancelled: ${error.message}.`, {
          code: 'query_timeout',
        });
      case 'unavailable':
        return apiError('overloaded', 503, `The event store is unavailable: ${error.message}`, {
          code: 'store_unavailable',
        });
      case 'read_only':
        return apiError('invalid_request', 400, `Only reads may run here: ${error.message}.`, {
          code: 'sql_not_allowed',
          param: 'sql',
        });
      case 'invalid':
        if (clientSql) {
          return apiError('invalid_request', 400, `The query failed: ${error.message}`, {
            code: 'invalid_sql',
            param: 'sql',
          });
        }
    }
  }
  throw error;
}

/**
 * Analytics over the stored wide events: compiles the query model to the engine's SQL, with the
 * caller's tenant filter always injected, reads rollups for long ranges, and keeps the rollups
 * and retention up to date when asked (`maintain`).
 */
export function createAnalytics(options: AnalyticsOptions): Analytics {
  const { reader, settings } = options;
  const now = options.now ?? Date.now;
  const dialect =
    reader.engine === 'duckdb' ? duckdbDialect() : clickhouseDialect(reader.database ?? 'sluice');
  const limits = { timeoutMs: settings.queries.timeoutMs, readOnly: true };

  interface Prepared {
    ctx: CompileContext;
    /** The rollup tiers whose tables exist (a read-only file from an older version may lack some). */
    tiers: ReadonlySet<RollupTier['table']>;
  }
  let preparing: Promise<Prepared> | undefined;

  // A page of the console asks for several aggregates at once, each choosing its source: the
  // watermarks are read once for them (calls in flight share the read). A watermark only moves
  // forward, and one read a moment ago (or before another gateway's pass) is still right, merely
  // older: the raw events after it are read instead. This instance's own pass forgets them.
  const watermarks = recently<number | null>(2_000);
  const watermarkOf = (prepared: Prepared, tier: RollupTier) =>
    watermarks.get(tier.table, () => rollupWatermark(reader, prepared.ctx, tier));
  // Whether a tier compresses a range is a property of the traffic, not of the second: the
  // page's calls, and its refreshes within the minute, weigh it once (see `rowsIn`).
  const weights = recently<{ events: number; rows: number }>(60_000);

  async function columnsOf(table: string): Promise<Set<string> | undefined> {
    try {
      const described = await reader.query({ sql: `DESCRIBE TABLE ${dialect.table(table)}` }, limits);
      return new Set(described.rows.map((row) => String(row[0])));
    } catch (error) {
      if (error instanceof QueryError && error.reason === 'invalid') return undefined;
      throw error;
    }
  }

  // Lazily, and again after a failure: the store may be down when the gateway starts.
  function prepare(): Promise<Prepared> {
    preparing ??= (async () => {
      await options.open?.();
      if (!options.readOnly) {
        await reader.execute(createRollupTables(dialect));
        // The gateway's DuckDB only ever touches its own file: with file access off, no query
        // (POST /api/sql included) can read or write another file. One-way, for the instance.
        if (dialect.engine === 'duckdb')
          await reader.execute([{ sql: 'SET enable_external_access = false' }]);
      }
      const eventColumns = await columnsOf('events');
      if (!eventColumns) throw new QueryError('the events table does not exist yet', 'unavailable');
      const tiers = new Set<RollupTier['table']>();
      if ((await columnsOf(WATERMARK_TABLE)) !== undefined) {
        for (const tier of rollupTiers)
          if ((await columnsOf(tier.table)) !== undefined) tiers.add(tier.table);
      }
      return { ctx: { dialect, eventColumns }, tiers };
    })().catch((error: unknown) => {
      preparing = undefined;
      throw error instanceof QueryError ? error : new QueryError((error as Error).message, 'unavailable');
    });
    return preparing;
  }

  async function rows(statement: SqlStatement): Promise<Row[]> {
    return rowObjects(await reader.query(statement, limits));
  }

  /**
   * Raw events, or the first rollup tier (coarsest, then narrowest) that fits: it keeps every
   * dimension the query filters or groups by (and the tenant's key); its grain divides the step;
   * the range is long (or starts before raw retention); and each of its rows there stands for
   * enough events to be worth reading (see docs/analytics.md).
   */
  async function chooseSource(
    prepared: Prepared,
    selection: Selection,
    stepMs: number | undefined,
    dimensions: readonly Dimension[],
    scope: Scope,
  ): Promise<Source> {
    const raw: Source = { kind: 'raw' };
    if (!settings.rollups.enabled || prepared.tiers.size === 0) return raw;
    const rawDays = settings.retention.rawDays;
    const beforeRaw = rawDays > 0 && selection.fromMs < now() - rawDays * DAY_MS;
    if (!beforeRaw && selection.toMs - selection.fromMs < settings.rollups.minRangeMs) return raw;
    for (const tier of tiersByRows) {
      if (!prepared.tiers.has(tier.table)) continue;
      if (stepMs !== undefined && stepMs % tier.grainMs !== 0) continue;
      if (!dimensions.every((dimension) => tierKeeps(tier, dimension)) || !tierScopes(tier, scope)) continue;
      const watermark = await watermarkOf(prepared, tier);
      if (watermark === null) continue;
      const startMs = ceilTo(selection.fromMs, tier.grainMs);
      const endMs = Math.min(floorTo(selection.toMs, tier.grainMs), watermark);
      if (endMs <= startMs) continue;
      if (!beforeRaw) {
        // Where traffic is light a rollup row stands for few events, and reading it (histograms
        // included) costs more than the events themselves: then the events are read.
        const { events, rows: rollupRows } = await weights.get(`${tier.table}|${startMs}|${endMs}`, () =>
          rowsIn(tier, startMs, endMs),
        );
        if (rollupRows === 0 || events < rollupRows * settings.rollups.minCompression) continue;
      }
      return { kind: 'rollup', tier, startMs, endMs };
    }
    return raw;
  }

  /** Raw events and a tier's rows in [startMs, endMs), to weigh one against the other. */
  async function rowsIn(tier: RollupTier, startMs: number, endMs: number) {
    const p = params(dialect);
    const [counts] = await rows({
      sql: `SELECT
  (SELECT count(*) FROM ${dialect.table('events')} WHERE ${timeRange(dialect, p, startMs, endMs).join(' AND ')}) AS events,
  (SELECT count(*) FROM ${dialect.table(tier.table)} WHERE start_ms >= ${p.add(startMs, 'Int64')} AND start_ms < ${p.add(endMs, 'Int64')}) AS rollup_rows`,
      params: p.values,
    });
    return { events: Number(counts?.events ?? 0), rows: Number(counts?.rollup_rows ?? 0) };
  }

  const dimensionsOf = (selection: Selection, extra?: Dimension) => [
    ...selection.filters.map((filter) => filter.dimension),
    ...(extra ? [extra] : []),
  ];

  /**
   * The aggregates of `spec`. Over raw events one statement computes them all; over rollups the
   * percentiles come from histograms summed by one more statement, for the rows found.
   */
  async function aggregate(prepared: Prepared, spec: AggregateSpec): Promise<AggregateRow[]> {
    const found = await rows(aggregateStatement(prepared.ctx, spec));
    const layout = quantilesOf(spec.quantiles);
    const timings = [...layout.keys()];
    if (spec.source.kind === 'raw' || timings.length === 0 || found.length === 0) {
      return found.map((row) => ({ row, aggregates: aggregatesOf(row, layout) }));
    }
    const groups = spec.groupBy && spec.top ? found.map(groupOf) : spec.groups;
    const histograms: Histograms = new Map();
    const answers = await rows(histogramStatement(prepared.ctx, { ...spec, groups, top: undefined }, layout));
    for (const bucket of answers) {
      const timing = timings[Number(bucket.k)] as Timing;
      const key = rowKey(bucket);
      const entry = histograms.get(key) ?? {};
      histograms.set(key, entry);
      if (bucket.b === undefined) {
        // DuckDB: the percentiles themselves, in layout order.
        const qs = layout.get(timing) as number[];
        entry[timing] = { quantiles: qs.map((_, i) => numberOrNull(bucket[`q${i}`])) };
        continue;
      }
      const counts = entry[timing]?.counts ?? Array<number>(HISTOGRAM_BUCKETS).fill(0);
      entry[timing] = { counts };
      const index = Number(bucket.b);
      counts[index] = (counts[index] as number) + Number(bucket.c);
    }
    return found.map((row) => ({ row, aggregates: aggregatesOf(row, layout, histograms) }));
  }

  async function guarded<T>(work: () => Promise<T | ApiError>): Promise<T | ApiError> {
    try {
      return await work();
    } catch (error) {
      return queryFailure(error);
    }
  }

  return {
    engine: reader.engine,

    timeseries: (input, scope) =>
      guarded(async () => {
        const query = parse(timeseriesQuerySchema, input);
        if (isApiError(query)) return query;
        const resolved = resolveSelection(query, now());
        if (isApiError(resolved)) return resolved;
        const stepMs =
          query.step === 'auto'
            ? autoStep(resolved.toMs - resolved.fromMs)
            : (parseDuration(query.step) as number);
        if (stepMs < 1_000) {
          return apiError('invalid_request', 400, `'step' must be at least 1s, got ${query.step}.`, {
            param: 'step',
            code: 'invalid_value',
          });
        }
        const selection = { ...resolved, fromMs: floorTo(resolved.fromMs, stepMs) };
        const points = Math.ceil((selection.toMs - selection.fromMs) / stepMs);
        if (points > MAX_POINTS) {
          return apiError(
            'invalid_request',
            400,
            `A step of ${query.step} over this range makes ${points} points; the most is ${MAX_POINTS}. Use a larger step or "auto".`,
            { param: 'step', code: 'too_many_points' },
          );
        }
        const groupBy = query.groupBy === undefined ? undefined : resolveDimension('groupBy', query.groupBy);
        if (isApiError(groupBy)) return groupBy;

        const prepared = await prepare();
        const source = await chooseSource(
          prepared,
          selection,
          stepMs,
          dimensionsOf(selection, groupBy),
          scope,
        );
        const { sums, quantiles } = neededAggregates(query.metrics);
        const t = Array.from({ length: points }, (_, i) => selection.fromMs + i * stepMs);
        const seconds = t.map((start) => (Math.min(start + stepMs, selection.toMs) - start) / 1000);
        const base = {
          from: iso(selection.fromMs),
          to: iso(selection.toMs),
          stepMs,
          metrics: query.metrics,
          t,
          source: sourceName(source),
        };

        let groups: (string | null)[] = [null];
        if (groupBy) {
          const top = await aggregate(prepared, {
            selection,
            scope,
            groupBy,
            sums: ['requests'],
            quantiles: [],
            top: { limit: query.limit },
            source,
          });
          groups = top.map(({ row }) => groupOf(row));
          if (groups.length === 0) return { ...base, series: [] };
        }
        const found = await aggregate(prepared, {
          selection,
          scope,
          stepMs,
          groupBy,
          groups: groupBy ? groups : undefined,
          sums,
          quantiles,
          source,
        });
        const series = new Map(
          groups.map((group) => [
            group,
            Object.fromEntries(
              query.metrics.map((metric) => [metric, seconds.map((s) => metricValue(metric, undefined, s))]),
            ) as Record<MetricName, (number | null)[]>,
          ]),
        );
        for (const { row, aggregates } of found) {
          const index = Math.round((Number(row.t) - selection.fromMs) / stepMs);
          const values = series.get(groupOf(row));
          if (!values || index < 0 || index >= points) continue;
          for (const metric of query.metrics) {
            (values[metric] as (number | null)[])[index] = metricValue(
              metric,
              aggregates,
              seconds[index] as number,
            );
          }
        }
        return { ...base, series: [...series].map(([group, values]) => ({ group, values })) };
      }),

    breakdown: (input, scope) =>
      guarded(async () => {
        const query = parse(breakdownQuerySchema, input);
        if (isApiError(query)) return query;
        const selection = resolveSelection(query, now());
        if (isApiError(selection)) return selection;
        const by = resolveDimension('by', query.by);
        if (isApiError(by)) return by;
        const prepared = await prepare();
        const source = await chooseSource(prepared, selection, undefined, dimensionsOf(selection, by), scope);
        const found = await aggregate(prepared, {
          selection,
          scope,
          groupBy: by,
          ...neededAggregates(query.metrics),
          top: { limit: query.limit },
          source,
        });
        const seconds = (selection.toMs - selection.fromMs) / 1000;
        return {
          by: by.name,
          rows: found.map(({ row, aggregates }) => {
            return {
              group: groupOf(row),
              values: Object.fromEntries(query.metrics.map((m) => [m, metricValue(m, aggregates, seconds)])),
            };
          }),
          source: sourceName(source),
        };
      }),

    summary: (input, scope) =>
      guarded(async () => {
        const query = parse(summaryQuerySchema, input);
        if (isApiError(query)) return query;
        const selection = resolveSelection(query, now());
        if (isApiError(selection)) return selection;
        const prepared = await prepare();
        const source = await chooseSource(prepared, selection, undefined, dimensionsOf(selection), scope);
        const [found] = await aggregate(prepared, {
          selection,
          scope,
          ...neededAggregates(query.metrics),
          source,
        });
        const aggregates =
          found && Number(found.row[resultColumn.sum('requests')] ?? 0) > 0 ? found.aggregates : undefined;
        const seconds = (selection.toMs - selection.fromMs) / 1000;
        return {
          values: Object.fromEntries(query.metrics.map((m) => [m, metricValue(m, aggregates, seconds)])),
          source: sourceName(source),
        };
      }),

    requests: (input, scope) =>
      guarded(async () => {
        const query = parse(requestsQuerySchema, input);
        if (isApiError(query)) return query;
        const selection = resolveSelection(query, now());
        if (isApiError(selection)) return selection;
        const cursor = query.cursor === undefined ? undefined : decodeCursor(query.cursor);
        if (isApiError(cursor)) return cursor;
        const { ctx } = await prepare();
        return listRequests(reader, ctx, limits, { selection, scope, limit: query.limit, cursor });
      }),

    request: (id, scope) =>
      guarded(async () => {
        const { ctx } = await prepare();
        const event = await findRequest(reader, ctx, limits, id, scope);
        if (!event) {
          // The same answer for "no such id" and "not yours": ids of other tenants stay unconfirmed.
          return apiError('not_found', 404, `No request with id "${id}".`, {
            code: 'request_not_found',
            param: 'id',
          });
        }
        // Only after the request itself proved visible to the caller: its related events go with it.
        return { event, related: (await options.related?.(id)) ?? [] };
      }),

    async sql(text) {
      const guard = guardSql(text, reader.engine);
      if (isApiError(guard)) return guard;
      const cap = settings.queries.maxRows;
      try {
        await prepare();
        const result = await reader.query(
          { sql: `SELECT * FROM (\n${guard.sql}\n) AS sql_query LIMIT ${cap + 1}` },
          { timeoutMs: settings.queries.timeoutMs, readOnly: true },
        );
        return {
          columns: result.columns,
          rows: result.rows.slice(0, cap),
          truncated: result.rows.length > cap,
        };
      } catch (error) {
        return queryFailure(error, true);
      }
    },

    async maintain() {
      const { ctx } = await prepare();
      if (options.readOnly) throw new Error('analytics over a read-only file cannot maintain rollups');
      const nowMs = now();
      const rollups = settings.rollups.enabled
        ? await buildRollups(reader, ctx, { nowMs, settleMs: settings.rollups.settleMs })
        : null;
      watermarks.clear();
      weights.clear();
      const retention = await expireEvents(reader, ctx, {
        nowMs,
        policy: settings.retention,
        rolledUpThroughMs: rollups ? Math.min(...Object.values(rollups).map((tier) => tier.throughMs)) : null,
        rollups: settings.rollups.enabled,
      });
      return { rollups, retention };
    },
  };
}
