import type { EventReader, SqlStatement } from '../events/event-reader.js';
import { type CompileContext, histogramColumns, type RollupTier, rollupTiers, timeRange } from './compile.js';
import { measureColumns, rollupColumns, WATERMARK_TABLE } from './rollup-table.js';
import { params } from './sql-dialect.js';
import { floorTo } from './time-range.js';

/** Most raw time one rollup statement covers, so a catch-up over months runs in small steps. */
export const ROLLUP_CHUNK_MS = 3_600_000;

/** Reads of the watermark and raw bounds: small and internal, no client input. */
const READ_LIMITS = { timeoutMs: 30_000, readOnly: true };

/** Every bucket of the tier before this is rolled up; null before the first build. */
export async function rollupWatermark(
  reader: EventReader,
  ctx: CompileContext,
  tier: RollupTier,
): Promise<number | null> {
  const p = params(ctx.dialect);
  const result = await reader.query(
    {
      sql: `SELECT max(through_ms) FROM ${ctx.dialect.table(WATERMARK_TABLE)} WHERE name = ${p.add(tier.table, 'String')}`,
      params: p.values,
    },
    READ_LIMITS,
  );
  const value = result.rows[0]?.[0];
  // ClickHouse's max over no rows is 0, not NULL.
  return value === null || value === undefined || Number(value) === 0 ? null : Number(value);
}

/** The statements that (re)build a tier's rollups of [startMs, endMs) and move its watermark to endMs. */
export function buildRollupStatements(
  ctx: CompileContext,
  tier: RollupTier,
  window: { startMs: number; endMs: number; builtAtMs: number },
): SqlStatement[] {
  const build = tier.parent === null ? fromEvents(ctx, tier, window) : fromParent(ctx, tier, window);
  return replaceStatements(ctx, tier, build, window);
}

/** The build of a wide tier's [startMs, endMs) from raw events. */
function fromEvents(
  ctx: CompileContext,
  tier: RollupTier,
  window: { startMs: number; endMs: number; builtAtMs: number },
): SqlStatement {
  const d = ctx.dialect;
  const rollupStringColumns = tier.columns;
  const has = (name: string) => ctx.eventColumns.has(name);
  // DuckDB refuses parameters a statement does not use: each statement binds its own.
  const insert = params(d);
  const start = d.bucket('time_ms', tier.grainMs);
  const cacheStatus = has('cache_status');
  // Inner aliases differ from column names: ClickHouse would read sum(x) AS x as nested aggregates.
  const aggregates: [string, string][] = [
    ['start_ms', start],
    ...rollupStringColumns.map((name): [string, string] => [name, has(name) ? name : d.nullString()]),
    ['status', 'status'],
    ['requests', d.count()],
    ['errors', d.countIf('status >= 400')],
    ['shed', d.countIf(d.isTrue('shed'))],
    ['cache_hits', cacheStatus ? d.countIf(`cache_status IN ('hit', 'semantic_hit')`) : d.countIf('1 = 0')],
    ['cache_lookups', cacheStatus ? d.countIf('cache_status IS NOT NULL') : d.countIf('1 = 0')],
    ['tokens_input', 'sum(tokens_input)'],
    ['tokens_output', 'sum(tokens_output)'],
    ['cost_usd', `sum(${has('cost_usd') ? 'cost_usd' : d.nullFloat()})`],
    ['latency_ms_sum', 'sum(timings_total_ms)'],
    ['ttft_ms_sum', 'coalesce(sum(timings_first_token_ms), 0)'],
    ['ttft_count', 'count(timings_first_token_ms)'],
  ];
  const histograms = (['latency', 'ttft'] as const).map((timing) => {
    const bucket = `hb_${timing}`;
    return {
      timing,
      sql:
        d.engine === 'duckdb'
          ? `histogram(${bucket}) FILTER (WHERE ${bucket} IS NOT NULL)`
          : `sumMapIf([toInt32(assumeNotNull(${bucket}))], [toUInt64(1)], isNotNull(${bucket}))`,
    };
  });
  const inner = [
    ...aggregates.map(([name, sql]) => `${sql} AS r_${name}`),
    ...histograms.map(({ timing, sql }) => `${sql} AS r_${timing}_histogram`),
  ];
  const outer = [
    ...aggregates.map(([name]) => `r_${name}`),
    ...histograms.flatMap(({ timing }) =>
      d.engine === 'duckdb'
        ? [`map_keys(r_${timing}_histogram)`, `map_values(r_${timing}_histogram)`]
        : [`tupleElement(r_${timing}_histogram, 1)`, `tupleElement(r_${timing}_histogram, 2)`],
    ),
  ];
  const columns = rollupColumns(tier).map((col) => col.name);
  if (d.engine === 'clickhouse') {
    // The group's identity, so a rebuilt row replaces the earlier one (ReplacingMergeTree).
    const identity = rollupStringColumns.flatMap((col) =>
      has(col) ? [`ifNull(${col}, '')`, `isNull(${col})`] : [`''`, '1'],
    );
    inner.push(`cityHash64(${identity.join(', ')}, status) AS r_group_key`);
    outer.push('r_group_key', insert.add(window.builtAtMs, 'Int64'));
    columns.push('group_key', 'built_at_ms');
  }
  const groupBy = [start, ...rollupStringColumns.filter(has), 'status'];
  return {
    sql: `INSERT INTO ${d.table(tier.table)} (${columns.join(', ')})
SELECT ${outer.join(', ')}
FROM (
  SELECT ${inner.join(',\n    ')}
  FROM (
    SELECT *, ${d.histogramBucket('timings_total_ms')} AS hb_latency, ${d.histogramBucket('timings_first_token_ms')} AS hb_ttft
    FROM ${d.from('events')}
    WHERE ${timeRange(d, insert, window.startMs, window.endMs).join(' AND ')}
  ) AS raw_events
  GROUP BY ${groupBy.join(', ')}
) AS minutes`,
    params: insert.values,
  };
}

/**
 * The build of a narrow tier's [startMs, endMs) from its parent's rows: the same or a whole
 * multiple of its grain, no more dimensions, so counts and sums add up and histograms are summed
 * bucket by bucket.
 */
function fromParent(
  ctx: CompileContext,
  tier: RollupTier,
  window: { startMs: number; endMs: number; builtAtMs: number },
): SqlStatement {
  const d = ctx.dialect;
  const p = params(d);
  const range = `start_ms >= ${p.add(window.startMs, 'Int64')} AND start_ms < ${p.add(window.endMs, 'Int64')}`;
  const parent = d.from(tier.parent as string);
  // A coarser grain than the parent's (5 minutes from minutes) puts each parent row in its bucket.
  const start = d.bucket('start_ms', tier.grainMs);
  const dimensions = [...tier.columns, 'status'];
  const sums = measureColumns.filter((col) => col.kind !== 'buckets' && col.kind !== 'counts');
  const histograms = [histogramColumns.latency, histogramColumns.ttft];
  const columns = rollupColumns(tier).map((col) => col.name);
  if (d.engine === 'clickhouse') {
    // sumMap adds the counts of equal buckets across rows: the histograms' sum, sparse and sorted.
    const identity = tier.columns.flatMap((col) => [`ifNull(${col}, '')`, `isNull(${col})`]);
    const inner = [
      ...dimensions.map((name) => `${name} AS r_${name}`),
      ...sums.map((col) => `sum(${col.name}) AS r_${col.name}`),
      ...histograms.map((h) => `sumMap(${h.buckets}, ${h.counts}) AS r_${h.buckets}`),
      `cityHash64(${identity.join(', ')}, status) AS r_group_key`,
    ];
    const outer = [
      ...dimensions.map((name) => `r_${name}`),
      ...sums.map((col) => `r_${col.name}`),
      ...histograms.flatMap((h) => [`tupleElement(r_${h.buckets}, 1)`, `tupleElement(r_${h.buckets}, 2)`]),
      'r_group_key',
      p.add(window.builtAtMs, 'Int64'),
    ];
    return {
      sql: `INSERT INTO ${d.table(tier.table)} (start_ms, ${columns.slice(1).join(', ')}, group_key, built_at_ms)
SELECT r_start_ms, ${outer.join(', ')}
FROM (
  SELECT ${start} AS r_start_ms, ${inner.join(',\n    ')}
  FROM ${parent}
  WHERE ${range}
  GROUP BY r_start_ms, ${dimensions.join(', ')}
) AS parent_rows`,
      params: p.values,
    };
  }
  // DuckDB has no sum of maps: each histogram is unnested, summed per bucket, and listed again,
  // then joined to the group's sums (NULL groups are groups too: IS NOT DISTINCT FROM).
  const keys = ['start_ms', ...dimensions];
  const rows = `(SELECT * REPLACE (${start} AS start_ms) FROM ${parent} WHERE ${range}) AS parent_rows`;
  const same = (alias: string) => keys.map((key) => `sums.${key} IS NOT DISTINCT FROM ${alias}.${key}`);
  const histogramJoins = histograms.map((h, i) => {
    const alias = `h${i}`;
    return `LEFT JOIN (
  SELECT ${keys.join(', ')}, list(b ORDER BY b) AS b, list(c ORDER BY b) AS c
  FROM (
    SELECT ${keys.join(', ')}, b, CAST(sum(c) AS UBIGINT) AS c
    FROM (SELECT ${keys.join(', ')}, unnest(${h.buckets}) AS b, unnest(${h.counts}) AS c FROM ${rows})
    GROUP BY ${keys.join(', ')}, b
  )
  GROUP BY ${keys.join(', ')}
) AS ${alias} ON ${same(alias).join(' AND ')}`;
  });
  return {
    sql: `INSERT INTO ${tier.table} (${columns.join(', ')})
SELECT ${[...keys.map((key) => `sums.${key}`), ...sums.map((col) => `sums.${col.name}`), ...histograms.flatMap((_, i) => [`h${i}.b`, `h${i}.c`])].join(', ')}
FROM (
  SELECT ${keys.join(', ')}, ${sums.map((col) => `sum(${col.name}) AS ${col.name}`).join(', ')}
  FROM ${rows}
  GROUP BY ${keys.join(', ')}
) AS sums
${histogramJoins.join('\n')}`,
    params: p.values,
  };
}

/**
 * DuckDB: one transaction (EventReader.execute): the buckets' old rows go, the new ones come and
 * the watermark moves, all or nothing. ClickHouse: every insert is a part, and catching up over
 * months would pile up parts of the watermark table; a rebuild is harmless there (rows replace
 * rows of the same group), so the watermark moves once, after the pass.
 */
function replaceStatements(
  ctx: CompileContext,
  tier: RollupTier,
  build: SqlStatement,
  window: { startMs: number; endMs: number; builtAtMs: number },
): SqlStatement[] {
  const d = ctx.dialect;
  if (d.engine === 'clickhouse') return [build];
  const clear = params(d);
  return [
    {
      sql: `DELETE FROM ${tier.table} WHERE start_ms >= ${clear.add(window.startMs, 'Int64')} AND start_ms < ${clear.add(window.endMs, 'Int64')}`,
      params: clear.values,
    },
    build,
    watermarkStatement(ctx, tier, window.endMs, window.builtAtMs),
  ];
}

/** Moves a tier's watermark: every bucket before `throughMs` is rolled up. */
export function watermarkStatement(
  ctx: CompileContext,
  tier: RollupTier,
  throughMs: number,
  builtAtMs: number,
): SqlStatement {
  const d = ctx.dialect;
  const p = params(d);
  return {
    sql: `${d.engine === 'duckdb' ? 'INSERT OR REPLACE' : 'INSERT'} INTO ${d.table(WATERMARK_TABLE)} (name, through_ms, built_at_ms)
VALUES (${p.add(tier.table, 'String')}, ${p.add(throughMs, 'Int64')}, ${p.add(builtAtMs, 'Int64')})`,
    params: p.values,
  };
}

export interface TierReport {
  /** The watermark after the pass: every bucket before it is rolled up. */
  throughMs: number;
  /** Buckets the watermark moved by (the first pass: from the oldest event's bucket). */
  buckets: number;
}

/** Per rollup table, how far the pass got. */
export type RollupReport = Record<RollupTier['table'], TierReport>;

/**
 * The start of the tier's bucket holding the first row it is built from (a raw event, or its
 * parent's row) in [fromMs, beforeMs), or null.
 */
async function firstSourceBucket(
  reader: EventReader,
  ctx: CompileContext,
  tier: RollupTier,
  fromMs: number | null,
  beforeMs: number,
): Promise<number | null> {
  const p = params(ctx.dialect);
  const time = tier.parent === null ? 'time_ms' : 'start_ms';
  const where = [`${time} < ${p.add(beforeMs, 'Int64')}`];
  if (fromMs !== null) where.push(`${time} >= ${p.add(fromMs, 'Int64')}`);
  const result = await reader.query(
    {
      // count() makes ClickHouse's min over no rows tell itself apart from 0.
      sql: `SELECT min(${time}), count(*) FROM ${ctx.dialect.from(tier.parent ?? 'events')} WHERE ${where.join(' AND ')}`,
      params: p.values,
    },
    READ_LIMITS,
  );
  const [min, count] = result.rows[0] ?? [null, 0];
  return Number(count) > 0 && min !== null ? floorTo(Number(min), tier.grainMs) : null;
}

/** Raw time one statement of a narrow tier covers: its parent's rows are few and cheap to read. */
const DERIVED_CHUNK_MS = 24 * ROLLUP_CHUNK_MS;

async function buildTier(
  reader: EventReader,
  ctx: CompileContext,
  tier: RollupTier,
  options: { nowMs: number; settleMs: number; parentThroughMs: number | null },
): Promise<TierReport> {
  let closed = floorTo(options.nowMs - options.settleMs, tier.grainMs);
  // A narrow tier follows its parent: what the parent has not rolled up, it cannot either.
  if (tier.parent !== null) {
    const parentThrough = options.parentThroughMs ?? Number.NEGATIVE_INFINITY;
    closed = Math.min(closed, floorTo(parentThrough, tier.grainMs));
  }
  const watermark = await rollupWatermark(reader, ctx, tier);
  if (!Number.isFinite(closed) || (watermark !== null && watermark >= closed)) {
    return { throughMs: watermark ?? closed, buckets: 0 };
  }
  const chunkMs = Math.max(tier.parent === null ? ROLLUP_CHUNK_MS : DERIVED_CHUNK_MS, tier.grainMs);
  let start = watermark;
  let first: number | null = watermark;
  for (;;) {
    const next = await firstSourceBucket(reader, ctx, tier, start, closed);
    if (next === null) break;
    const chunkStart = Math.max(start ?? next, next);
    first ??= chunkStart;
    const end = Math.min(closed, chunkStart + chunkMs);
    await reader.execute(
      buildRollupStatements(ctx, tier, { startMs: chunkStart, endMs: end, builtAtMs: options.nowMs }),
    );
    start = end;
  }
  await reader.execute([watermarkStatement(ctx, tier, closed, options.nowMs)]);
  return { throughMs: closed, buckets: (closed - (first ?? closed)) / tier.grainMs };
}

/**
 * Rolls up every closed minute and hour not rolled up yet: a bucket is closed once it ended more
 * than `settleMs` ago (events can arrive late: the bus batches, the spool replays). Wide tiers
 * are built from raw events, narrow ones from their wide parent right after it. Each tier picks
 * up where its watermark stands (the first pass at the oldest raw event or parent row), skips
 * stretches without data, and works an hour (narrow: a day) at a time so a long catch-up never
 * holds the store for long.
 */
export async function buildRollups(
  reader: EventReader,
  ctx: CompileContext,
  options: { nowMs: number; settleMs: number },
): Promise<RollupReport> {
  const report: Partial<RollupReport> = {};
  for (const tier of rollupTiers) {
    const parentThroughMs = tier.parent === null ? null : (report[tier.parent]?.throughMs ?? null);
    report[tier.table] = await buildTier(reader, ctx, tier, { ...options, parentThroughMs });
  }
  return report as RollupReport;
}
