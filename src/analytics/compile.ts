import type { SqlStatement } from '../events/event-reader.js';
import { type Dimension, rollupStringColumns } from './dimensions.js';
import { BUCKETS_PER_DOUBLING, HISTOGRAM_BUCKETS } from './latency-histogram.js';
import { type SumName, type Timing, timingColumns } from './metrics.js';
import type { Scope, Selection } from './query.js';
import { type Params, params, type SqlDialect } from './sql-dialect.js';

/**
 * The rollup tiers. The two wide ones keep every rollup dimension (rollupStringColumns), at two
 * grains: minutes serve steps of whole minutes; hours compress a busy gateway's events far more
 * (every key and route that was active in an hour is one row, not sixty), so week- and
 * month-long ranges read them. A wide row stands for few events when many keys call many routes
 * (a few hundred rows a minute), so narrow tiers keep only what the console's overview asks
 * most: route, or the client key (a tenant's own overview), with status: tens of rows a minute;
 * route by 5 minutes serves a day's overview at its automatic step. A narrow tier is built from
 * its parent (exact: counts and sums add, and a sum of histograms is the histogram of the union),
 * so it covers whatever the parent covers, raw events expired or not. Parents come first.
 */
export const rollupTiers = [
  { table: 'events_rollup_1m', grainMs: 60_000, columns: rollupStringColumns, parent: null },
  { table: 'events_rollup_1h', grainMs: 3_600_000, columns: rollupStringColumns, parent: null },
  { table: 'events_rollup_route_1m', grainMs: 60_000, columns: ['route'], parent: 'events_rollup_1m' },
  { table: 'events_rollup_route_5m', grainMs: 300_000, columns: ['route'], parent: 'events_rollup_route_1m' },
  { table: 'events_rollup_route_1h', grainMs: 3_600_000, columns: ['route'], parent: 'events_rollup_1h' },
  {
    table: 'events_rollup_key_1m',
    grainMs: 60_000,
    columns: ['key_name', 'key_id'],
    parent: 'events_rollup_1m',
  },
] as const satisfies readonly {
  table: string;
  grainMs: number;
  /** The string dimensions kept, besides `status` (every tier keeps it). */
  columns: readonly string[];
  parent: string | null;
}[];

export type RollupTier = (typeof rollupTiers)[number];

/** The tier keeps the dimension: a filter or grouping by it can read the tier. */
export function tierKeeps(tier: RollupTier, dimension: Dimension): boolean {
  switch (dimension.kind) {
    case 'status_class':
      return true;
    case 'tag':
      return false;
    case 'column':
      return (
        dimension.inRollup &&
        (dimension.column === 'status' || (tier.columns as readonly string[]).includes(dimension.column))
      );
  }
}

/** The tier keeps the column the caller's tenant filter reads (`conditions`). */
export function tierScopes(tier: RollupTier, scope: Scope): boolean {
  if (scope.kind !== 'key') return true;
  const columns = tier.columns as readonly string[];
  if (scope.keyId !== null) return columns.includes('key_id');
  return scope.keyName === null || columns.includes('key_name');
}

/** What a compiler needs to know about the database it writes for. */
export interface CompileContext {
  dialect: SqlDialect;
  /** Columns of `events` as stored now: a column added by a newer schema reads as NULL until then. */
  eventColumns: ReadonlySet<string>;
}

/**
 * Where the aggregates come from. `raw`: the events table. `rollup`: a rollup tier for its whole
 * buckets in [startMs, endMs), and raw events for the rest of the range (the partial minutes or
 * hours at its ends and those not rolled up yet), added together.
 */
export type Source = { kind: 'raw' } | { kind: 'rollup'; tier: RollupTier; startMs: number; endMs: number };

export interface AggregateSpec {
  selection: Selection;
  scope: Scope;
  /** Bucket by time, `t` = the bucket's start. */
  stepMs?: number;
  groupBy?: Dimension;
  /** Keep only these groups (the top groups of a time series). */
  groups?: readonly (string | null)[];
  sums: readonly SumName[];
  quantiles: readonly { timing: Timing; q: number }[];
  /** Most requests first, ties by group, at most `limit` rows. */
  top?: { limit: number };
  source: Source;
}

type Table = 'raw' | 'rollup';

/** Result column names, shared by the compiler and the code that reads rows back. */
export const resultColumn = {
  sum: (name: SumName) => `s_${name}`,
  /** An array: the timing's percentiles in `quantilesOf` order. */
  quantiles: (timing: Timing) => `q_${timing}`,
};

/** The percentiles asked of each timing, in ascending order: how a result's arrays are laid out. */
export function quantilesOf(quantiles: readonly { timing: Timing; q: number }[]): Map<Timing, number[]> {
  const byTiming = new Map<Timing, number[]>();
  for (const { timing, q } of quantiles) {
    const qs = byTiming.get(timing) ?? [];
    if (!qs.includes(q)) qs.push(q);
    byTiming.set(timing, qs);
  }
  for (const qs of byTiming.values()) qs.sort((a, b) => a - b);
  return byTiming;
}

/** The columns of `events_rollup_1m` holding a timing's sparse histogram: bucket numbers and their counts. */
export const histogramColumns: Record<Timing, { buckets: string; counts: string }> = {
  latency: { buckets: 'latency_buckets', counts: 'latency_counts' },
  ttft: { buckets: 'ttft_buckets', counts: 'ttft_counts' },
};

function column(
  ctx: CompileContext,
  table: Table,
  name: string,
  type: 'string' | 'float' = 'string',
): string {
  if (table === 'rollup' || ctx.eventColumns.has(name)) return name;
  return type === 'string' ? ctx.dialect.nullString() : ctx.dialect.nullFloat();
}

const STATUS_CLASS = `CASE WHEN status < 100 OR status >= 600 THEN NULL WHEN status >= 500 THEN '5xx' WHEN status >= 400 THEN '4xx' WHEN status >= 300 THEN '3xx' WHEN status >= 200 THEN '2xx' ELSE '1xx' END`;

export function dimensionExpression(
  ctx: CompileContext,
  table: Table,
  dimension: Dimension,
  p: Params,
): string {
  switch (dimension.kind) {
    case 'column':
      return column(ctx, table, dimension.column);
    case 'status_class':
      return STATUS_CLASS;
    case 'tag':
      if (table === 'rollup') throw new Error(`${dimension.name} is not kept in rollups`);
      if (!ctx.eventColumns.has('tags')) return ctx.dialect.nullString();
      return ctx.dialect.tag('tags', p.add(ctx.dialect.tagKey(dimension.tag), 'String'));
  }
}

/** The conditions every query carries: the caller's tenant first, then the client's filters. */
export function conditions(
  ctx: CompileContext,
  table: Table,
  spec: Pick<AggregateSpec, 'selection' | 'scope'>,
  p: Params,
): string[] {
  const where: string[] = [];
  const { scope, selection } = spec;
  if (scope.kind === 'key') {
    // Injected here, from the authenticated key, never from anything the client sent.
    if (scope.keyId !== null) where.push(`${column(ctx, table, 'key_id')} = ${p.add(scope.keyId, 'String')}`);
    else if (scope.keyName !== null) where.push(`key_name = ${p.add(scope.keyName, 'String')}`);
    else where.push('1 = 0');
  }
  for (const filter of selection.filters) {
    const { dimension, values } = filter;
    if (dimension.kind === 'status_class') {
      const ranges = values.map((value) => {
        const low = Number(value[0]) * 100;
        return `(status >= ${p.add(low, 'Int64')} AND status < ${p.add(low + 100, 'Int64')})`;
      });
      where.push(`(${ranges.join(' OR ')})`);
      continue;
    }
    const isInt = dimension.kind === 'column' && dimension.type === 'int';
    const list = values.map((value) => (isInt ? p.add(Number(value), 'Int64') : p.add(value, 'String')));
    where.push(`${dimensionExpression(ctx, table, dimension, p)} IN (${list.join(', ')})`);
  }
  if (selection.errorsOnly) where.push('status >= 400');
  return where;
}

/** SQL for a sum over raw events. */
function rawSum(ctx: CompileContext, name: SumName): string {
  const d = ctx.dialect;
  switch (name) {
    case 'requests':
      return d.count();
    case 'errors':
      return d.countIf('status >= 400');
    case 'shed':
      return d.countIf(d.isTrue('shed'));
    case 'tokens_input':
    case 'tokens_output':
      return `sum(${name})`;
    case 'cost_usd':
      return `sum(${column(ctx, 'raw', 'cost_usd', 'float')})`;
    case 'cache_hits':
      return ctx.eventColumns.has('cache_status')
        ? d.countIf(`cache_status IN ('hit', 'semantic_hit')`)
        : d.countIf('1 = 0');
    case 'cache_lookups':
      return ctx.eventColumns.has('cache_status')
        ? d.countIf('cache_status IS NOT NULL')
        : d.countIf('1 = 0');
  }
}

function groupAndOrder(spec: AggregateSpec, keys: string[]): string {
  const parts: string[] = [];
  if (keys.length > 0) parts.push(`GROUP BY ${keys.join(', ')}`);
  if (spec.top) {
    const byGroup = spec.groupBy ? ', g' : '';
    parts.push(`ORDER BY ${resultColumn.sum('requests')} DESC${byGroup} LIMIT ${Math.trunc(spec.top.limit)}`);
  } else if (spec.stepMs !== undefined) {
    parts.push(spec.groupBy ? 'ORDER BY t, g' : 'ORDER BY t');
  }
  return parts.join('\n');
}

function groupsCondition(expression: string, groups: readonly (string | null)[], p: Params): string {
  const values = groups.filter((group): group is string => group !== null);
  const terms: string[] = [];
  if (values.length > 0) terms.push(`${expression} IN (${values.map((v) => p.add(v, 'String')).join(', ')})`);
  if (values.length < groups.length) terms.push(`${expression} IS NULL`);
  return terms.length > 0 ? `(${terms.join(' OR ')})` : '1 = 0';
}

/** The leading `t` and `g` select items and their GROUP BY keys for one table. */
function keys(ctx: CompileContext, table: Table, spec: AggregateSpec, p: Params, where: string[]) {
  const select: string[] = [];
  const group: string[] = [];
  if (spec.stepMs !== undefined) {
    const time = table === 'raw' ? 'time_ms' : 'start_ms';
    select.push(`${ctx.dialect.bucket(time, spec.stepMs)} AS t`);
    group.push('t');
  }
  if (spec.groupBy) {
    const expression = dimensionExpression(ctx, table, spec.groupBy, p);
    // Groups compare as text, so an integer dimension (status) reads like the others.
    const text =
      spec.groupBy.kind === 'column' && spec.groupBy.type === 'int'
        ? ctx.dialect.engine === 'duckdb'
          ? `CAST(${expression} AS VARCHAR)`
          : `toString(${expression})`
        : expression;
    select.push(`${text} AS g`);
    group.push('g');
    if (spec.groups) where.push(groupsCondition(text, spec.groups, p));
  }
  return { select, group };
}

/**
 * Events in [fromMs, toMs). ClickHouse's events are sorted and partitioned by `time` (seconds),
 * not time_ms: the same range on `time` lets it skip parts and granules outside it.
 */
export function timeRange(dialect: SqlDialect, p: Params, fromMs: number, toMs: number): string[] {
  const where = [`time_ms >= ${p.add(fromMs, 'Int64')}`, `time_ms < ${p.add(toMs, 'Int64')}`];
  if (dialect.engine === 'clickhouse') {
    where.push(
      `time >= toDateTime(intDiv(${p.add(fromMs, 'Int64')}, 1000))`,
      `time <= toDateTime(intDiv(${p.add(toMs, 'Int64')}, 1000))`,
    );
  }
  return where;
}

/**
 * What raw events a rollup source leaves to read: before and after its whole buckets. Each is a
 * plain range, read on its own, so the engine skips everything between (a NOT over the rollup's
 * range would be checked row by row over the whole range).
 */
function remainders(spec: AggregateSpec): [number, number][] {
  const { fromMs, toMs } = spec.selection;
  if (spec.source.kind === 'raw') return [[fromMs, toMs]];
  const ranges: [number, number][] = [
    [fromMs, spec.source.startMs],
    [spec.source.endMs, toMs],
  ];
  return ranges.filter(([low, high]) => high > low);
}

function rawStatement(ctx: CompileContext, spec: AggregateSpec): SqlStatement {
  const p = params(ctx.dialect);
  const where = [
    ...timeRange(ctx.dialect, p, spec.selection.fromMs, spec.selection.toMs),
    ...conditions(ctx, 'raw', spec, p),
  ];
  const { select, group } = keys(ctx, 'raw', spec, p, where);
  for (const name of spec.sums) select.push(`${rawSum(ctx, name)} AS ${resultColumn.sum(name)}`);
  for (const [timing, qs] of quantilesOf(spec.quantiles)) {
    select.push(`${ctx.dialect.quantiles(timingColumns[timing], qs)} AS ${resultColumn.quantiles(timing)}`);
  }
  return {
    sql: `SELECT ${select.join(',\n  ')}
FROM ${ctx.dialect.from('events')}
WHERE ${where.join('\n  AND ')}
${groupAndOrder(spec, group)}`,
    params: p.values,
  };
}

/**
 * Rollups for whole minutes plus raw events for the rest, summed together. Percentiles come
 * from `histogramStatement`: a sum of histograms is the histogram of the union.
 */
function rollupStatement(ctx: CompileContext, spec: AggregateSpec): SqlStatement {
  if (spec.source.kind !== 'rollup') throw new Error('rollupStatement needs a rollup source');
  const p = params(ctx.dialect);
  const d = ctx.dialect;
  const partial = (name: string) => `x_${name}`;

  const rollupWhere = rollupRange(p, spec.source);
  rollupWhere.push(...conditions(ctx, 'rollup', spec, p));
  const rollupKeys = keys(ctx, 'rollup', spec, p, rollupWhere);
  const rollupSelect = [
    ...rollupKeys.select,
    ...spec.sums.map((name) => `sum(${name}) AS ${partial(resultColumn.sum(name))}`),
  ];

  const rawParts = remainders(spec).map(([low, high]) => {
    const where = [...timeRange(d, p, low, high), ...conditions(ctx, 'raw', spec, p)];
    const rawKeys = keys(ctx, 'raw', spec, p, where);
    const select = [
      ...rawKeys.select,
      ...spec.sums.map((name) => `${rawSum(ctx, name)} AS ${partial(resultColumn.sum(name))}`),
    ];
    return `
  UNION ALL
  SELECT ${select.join(', ')}
  FROM ${d.from('events')}
  WHERE ${where.join('\n    AND ')}
  ${groupBy(rawKeys.group)}`;
  });

  const outerKeys = [...(spec.stepMs !== undefined ? ['t'] : []), ...(spec.groupBy ? ['g'] : [])];
  const outerSelect = [
    ...outerKeys,
    ...spec.sums.map((name) => `sum(${partial(resultColumn.sum(name))}) AS ${resultColumn.sum(name)}`),
  ];
  return {
    sql: `SELECT ${outerSelect.join(', ')}
FROM (
  SELECT ${rollupSelect.join(', ')}
  FROM ${d.from(spec.source.tier.table)}
  WHERE ${rollupWhere.join('\n    AND ')}
  ${groupBy(rollupKeys.group)}${rawParts.join('')}
) AS parts
${groupAndOrder(spec, outerKeys)}`,
    params: p.values,
  };
}

function groupBy(keys: string[]): string {
  return keys.length > 0 ? `GROUP BY ${keys.join(', ')}` : '';
}

function rollupRange(p: Params, source: { startMs: number; endMs: number }): string[] {
  return [`start_ms >= ${p.add(source.startMs, 'Int64')}`, `start_ms < ${p.add(source.endMs, 'Int64')}`];
}

/**
 * The percentiles in `layout` per bucket and group, from histograms: the rollups' sparse
 * histograms unnested, plus the raw rest bucketed the same way, summed; one statement for every
 * timing, the rollup rows found once. k is the timing's index in `layout`. DuckDB answers
 * (k, t, g, q0, q1…), the timing's percentiles in layout order; ClickHouse the summed
 * histograms, long form (k, t, g, b = bucket, c = count), for histogramQuantile.
 */
export function histogramStatement(
  ctx: CompileContext,
  spec: AggregateSpec,
  layout: ReadonlyMap<Timing, readonly number[]>,
): SqlStatement {
  const timings = [...layout.keys()];
  if (spec.source.kind !== 'rollup') throw new Error('histogramStatement needs a rollup source');
  const p = params(ctx.dialect);
  const d = ctx.dialect;
  const unkeyed = { ...spec, top: undefined };

  const rollupWhere = rollupRange(p, spec.source);
  rollupWhere.push(...conditions(ctx, 'rollup', spec, p));
  const rollupKeys = keys(ctx, 'rollup', unkeyed, p, rollupWhere);
  // The tier's rows in range, found once; each timing unnests its own arrays from them.
  const rollupRows = `SELECT ${[
    ...rollupKeys.select,
    ...timings.flatMap((timing) => [histogramColumns[timing].buckets, histogramColumns[timing].counts]),
  ].join(', ')}
  FROM ${d.from(spec.source.tier.table)}
  WHERE ${rollupWhere.join('\n    AND ')}`;
  const rollupParts = timings.map((timing, k) => {
    const { buckets, counts } = histogramColumns[timing];
    const select = [`${k} AS k`, ...rollupKeys.group];
    return d.engine === 'duckdb'
      ? `SELECT ${[...select, `unnest(${buckets}) AS b`, `unnest(${counts}) AS c`].join(', ')} FROM rollup_rows`
      : // 18.16 has no WITH over a subquery: the rows are a subquery per timing.
        `SELECT ${[...select, 'b', 'c'].join(', ')}
  FROM (${rollupRows}) AS rollup_rows ARRAY JOIN ${buckets} AS b, ${counts} AS c`;
  });

  const rawParts = timings.flatMap((timing, k) => {
    const column = timingColumns[timing];
    // Same types on both sides of the UNION: ClickHouse has no common supertype for every pair.
    const bucket =
      d.engine === 'duckdb'
        ? d.histogramBucket(column)
        : `toInt32(assumeNotNull(${d.histogramBucket(column)}))`;
    return remainders(spec).map(([low, high]) => {
      const where = [
        ...timeRange(d, p, low, high),
        `${column} IS NOT NULL`,
        ...conditions(ctx, 'raw', spec, p),
      ];
      const rawKeys = keys(ctx, 'raw', unkeyed, p, where);
      return `
  UNION ALL
  SELECT ${[`${k} AS k`, ...rawKeys.select, `${bucket} AS b`, `${d.count()} AS c`].join(', ')}
  FROM ${d.from('events')}
  WHERE ${where.join('\n    AND ')}
  GROUP BY ${[...rawKeys.group, 'b'].join(', ')}`;
    });
  });

  const outerKeys = ['k', ...rollupKeys.group, 'b'];
  const summed = `SELECT ${outerKeys.join(', ')}, sum(c) AS c
FROM (
  ${rollupParts.join('\n  UNION ALL\n  ')}${rawParts.join('')}
) AS parts
GROUP BY ${outerKeys.join(', ')}`;
  if (d.engine === 'clickhouse') return { sql: summed, params: p.values };
  // DuckDB places each percentile in its bucket itself (histogramQuantile in SQL): a day at a
  // 5-minute step by route is ~100k bucket rows, which cost more to hand over than to rank here.
  const groupKeys = ['k', ...rollupKeys.group];
  const width = Math.max(...[...layout.values()].map((qs) => qs.length));
  const quantileColumns = Array.from({ length: width }, (_, i) => {
    const cases = timings.map((timing, k) => {
      const qs = layout.get(timing) as readonly number[];
      return `WHEN ${k} THEN ${Number(qs[Math.min(i, qs.length - 1)])}`;
    });
    const q = `CAST(CASE k ${cases.join(' ')} END AS DOUBLE)`;
    const fraction = `((${q} * total - (upto - c)) / c)`;
    const value = `CASE WHEN b = 0 THEN ${fraction} WHEN b = ${HISTOGRAM_BUCKETS - 1} THEN pow(2, ${(HISTOGRAM_BUCKETS - 2) / BUCKETS_PER_DOUBLING}) ELSE pow(2, (b - 1 + ${fraction}) / ${BUCKETS_PER_DOUBLING}) END`;
    return `arg_min(${value}, b) FILTER (WHERE upto >= ${q} * total) AS q${i}`;
  });
  return {
    sql: `WITH rollup_rows AS MATERIALIZED (
  ${rollupRows}
), summed AS (
${summed}
), ranked AS (
  SELECT *, CAST(sum(c) OVER (PARTITION BY ${groupKeys.join(', ')} ORDER BY b ROWS UNBOUNDED PRECEDING) AS DOUBLE) AS upto,
    CAST(sum(c) OVER (PARTITION BY ${groupKeys.join(', ')}) AS DOUBLE) AS total
  FROM summed
)
SELECT ${[...groupKeys, ...quantileColumns].join(',\n  ')}
FROM ranked
GROUP BY ${groupKeys.join(', ')}`,
    params: p.values,
  };
}

/** One aggregate query (time series, breakdown or summary) for the dialect and source in `spec`. */
export function aggregateStatement(ctx: CompileContext, spec: AggregateSpec): SqlStatement {
  return spec.source.kind === 'raw' ? rawStatement(ctx, spec) : rollupStatement(ctx, spec);
}
