import type { SqlStatement } from '../events/event-reader.js';
import type { Dimension } from './dimensions.js';
import { type SumName, type Timing, timingColumns } from './metrics.js';
import type { Scope, Selection } from './query.js';
import { type Params, params, type SqlDialect } from './sql-dialect.js';

/**
 * The rollup tiers, finest first: the same table layout at two grains. Minutes serve steps of
 * whole minutes; hours compress a busy gateway's events far more (every key and route that was
 * active in an hour is one row, not sixty), so week- and month-long ranges read them.
 */
export const rollupTiers = [
  { table: 'events_rollup_1m', grainMs: 60_000 },
  { table: 'events_rollup_1h', grainMs: 3_600_000 },
] as const;

export type RollupTier = (typeof rollupTiers)[number];

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
 * One timing's histogram per bucket and group, long form (t, g, b = bucket, c = count): the
 * rollups' sparse histograms unnested, plus the raw rest bucketed the same way, summed.
 */
export function histogramStatement(ctx: CompileContext, spec: AggregateSpec, timing: Timing): SqlStatement {
  if (spec.source.kind !== 'rollup') throw new Error('histogramStatement needs a rollup source');
  const p = params(ctx.dialect);
  const d = ctx.dialect;
  const { buckets, counts } = histogramColumns[timing];
  const unkeyed = { ...spec, top: undefined };

  const rollupWhere = rollupRange(p, spec.source);
  rollupWhere.push(...conditions(ctx, 'rollup', spec, p));
  const rollupKeys = keys(ctx, 'rollup', unkeyed, p, rollupWhere);
  const rollupPart =
    d.engine === 'duckdb'
      ? `SELECT ${[...rollupKeys.select, `unnest(${buckets}) AS b`, `unnest(${counts}) AS c`].join(', ')}
  FROM ${d.from(spec.source.tier.table)}
  WHERE ${rollupWhere.join('\n    AND ')}`
      : `SELECT ${[...rollupKeys.select, 'b', 'c'].join(', ')}
  FROM ${d.from(spec.source.tier.table)} ARRAY JOIN ${buckets} AS b, ${counts} AS c
  WHERE ${rollupWhere.join('\n    AND ')}`;

  const column = timingColumns[timing];
  // Same types on both sides of the UNION: ClickHouse has no common supertype for every pair.
  const bucket =
    d.engine === 'duckdb'
      ? d.histogramBucket(column)
      : `toInt32(assumeNotNull(${d.histogramBucket(column)}))`;
  const rawParts = remainders(spec).map(([low, high]) => {
    const where = [
      ...timeRange(d, p, low, high),
      `${column} IS NOT NULL`,
      ...conditions(ctx, 'raw', spec, p),
    ];
    const rawKeys = keys(ctx, 'raw', unkeyed, p, where);
    return `
  UNION ALL
  SELECT ${[...rawKeys.select, `${bucket} AS b`, `${d.count()} AS c`].join(', ')}
  FROM ${d.from('events')}
  WHERE ${where.join('\n    AND ')}
  GROUP BY ${[...rawKeys.group, 'b'].join(', ')}`;
  });

  const outerKeys = [...rollupKeys.group, 'b'];
  return {
    sql: `SELECT ${outerKeys.join(', ')}, sum(c) AS c
FROM (
  ${rollupPart}${rawParts.join('')}
) AS parts
GROUP BY ${outerKeys.join(', ')}`,
    params: p.values,
  };
}

/** One aggregate query (time series, breakdown or summary) for the dialect and source in `spec`. */
export function aggregateStatement(ctx: CompileContext, spec: AggregateSpec): SqlStatement {
  return spec.source.kind === 'raw' ? rawStatement(ctx, spec) : rollupStatement(ctx, spec);
}
