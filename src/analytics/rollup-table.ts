import type { SqlStatement } from '../events/event-reader.js';
import { histogramColumns, type RollupTier, rollupTiers } from './compile.js';
import type { SqlDialect } from './sql-dialect.js';

export const WATERMARK_TABLE = 'events_rollup_watermark';

type Kind = 'string' | 'int' | 'count' | 'total' | 'float' | 'nullableFloat' | 'time' | 'buckets' | 'counts';

const TYPES: Record<Kind, { duckdb: string; clickhouse: string }> = {
  time: { duckdb: 'BIGINT NOT NULL', clickhouse: 'Int64' },
  string: { duckdb: 'VARCHAR', clickhouse: 'Nullable(String)' },
  int: { duckdb: 'INTEGER NOT NULL', clickhouse: 'Int32' },
  count: { duckdb: 'BIGINT NOT NULL', clickhouse: 'UInt64' },
  total: { duckdb: 'BIGINT NOT NULL', clickhouse: 'Int64' },
  float: { duckdb: 'DOUBLE NOT NULL', clickhouse: 'Float64' },
  nullableFloat: { duckdb: 'DOUBLE', clickhouse: 'Nullable(Float64)' },
  buckets: { duckdb: 'INTEGER[]', clickhouse: 'Array(Int32)' },
  counts: { duckdb: 'UBIGINT[]', clickhouse: 'Array(UInt64)' },
};

/**
 * One row per minute (or hour) and combination of the tier's dimensions: counts, sums and two
 * latency histograms (latency-histogram.ts), each kept sparse as parallel arrays of bucket
 * numbers and counts, so a row with three requests holds three entries, not 82. Column types are
 * what each engine's aggregates return, so a rollup row and an aggregate over raw events add up
 * (UNION ALL) as is.
 */
export function rollupColumns(tier: RollupTier): readonly { name: string; kind: Kind }[] {
  return [
    { name: 'start_ms', kind: 'time' },
    ...tier.columns.map((name) => ({ name, kind: 'string' as const })),
    { name: 'status', kind: 'int' },
    ...measureColumns,
  ];
}

/** What every tier counts and sums, after its dimensions. */
export const measureColumns: readonly { name: string; kind: Kind }[] = [
  { name: 'requests', kind: 'count' },
  { name: 'errors', kind: 'count' },
  { name: 'shed', kind: 'count' },
  { name: 'cache_hits', kind: 'count' },
  { name: 'cache_lookups', kind: 'count' },
  { name: 'tokens_input', kind: 'total' },
  { name: 'tokens_output', kind: 'total' },
  { name: 'cost_usd', kind: 'nullableFloat' },
  { name: 'latency_ms_sum', kind: 'float' },
  { name: 'ttft_ms_sum', kind: 'float' },
  { name: 'ttft_count', kind: 'count' },
  { name: histogramColumns.latency.buckets, kind: 'buckets' },
  { name: histogramColumns.latency.counts, kind: 'counts' },
  { name: histogramColumns.ttft.buckets, kind: 'buckets' },
  { name: histogramColumns.ttft.counts, kind: 'counts' },
];

/** CREATE statements for the rollup tables and their watermarks; safe to run on every start. */
export function createRollupTables(dialect: SqlDialect): SqlStatement[] {
  const engine = dialect.engine;
  const columns = (tier: RollupTier) =>
    rollupColumns(tier).map((col) => `${col.name} ${TYPES[col.kind][engine]}`);
  if (engine === 'duckdb') {
    return [
      ...rollupTiers.map((tier) => ({
        sql: `CREATE TABLE IF NOT EXISTS ${tier.table} (\n  ${columns(tier).join(',\n  ')}\n)`,
      })),
      {
        sql: `CREATE TABLE IF NOT EXISTS ${WATERMARK_TABLE} (
  name VARCHAR PRIMARY KEY, through_ms BIGINT NOT NULL, built_at_ms BIGINT NOT NULL
)`,
      },
    ];
  }
  // ClickHouse has no transactions: rebuilding a bucket inserts its rows again, and
  // ReplacingMergeTree keeps one row per (start, group_key), the latest build (reads use FINAL).
  // 18.16 has no TTL; retention drops whole months (partitions) and deletes the rest by mutation.
  return [
    ...rollupTiers.map((tier) => ({
      sql: `CREATE TABLE IF NOT EXISTS ${dialect.table(tier.table)} (
  ${columns(tier).join(',\n  ')},
  group_key UInt64,
  built_at_ms Int64
) ENGINE = ReplacingMergeTree(built_at_ms)
PARTITION BY toYYYYMM(toDateTime(intDiv(start_ms, 1000)))
ORDER BY (start_ms, group_key)`,
    })),
    {
      sql: `CREATE TABLE IF NOT EXISTS ${dialect.table(WATERMARK_TABLE)} (
  name String, through_ms Int64, built_at_ms Int64
) ENGINE = ReplacingMergeTree(built_at_ms) ORDER BY name`,
    },
  ];
}
