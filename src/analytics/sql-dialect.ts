import type { SqlEngine, SqlValue } from '../events/event-reader.js';
import { BUCKETS_PER_DOUBLING, HISTOGRAM_BUCKETS } from './latency-histogram.js';

export type ParamType = 'String' | 'Int64' | 'Float64';

/** A percentile's fraction as SQL: one of the metric catalogue's constants, checked all the same. */
function fraction(q: number): string {
  if (!(q >= 0 && q <= 1)) throw new Error(`a percentile must be a fraction from 0 to 1, got ${q}`);
  return String(q);
}

function step(ms: number): string {
  if (!Number.isSafeInteger(ms) || ms <= 0)
    throw new Error(`a time bucket must be a positive integer of ms, got ${ms}`);
  return String(ms);
}

/**
 * What differs between DuckDB and ClickHouse 18.16 in the SQL analytics writes. Everything a
 * client supplies goes through `Params.add`; the dialect only writes placeholders.
 */
export interface SqlDialect {
  engine: SqlEngine;
  /** A table as the FROM clause names it (ClickHouse: qualified, FINAL to collapse duplicates). */
  from(table: string): string;
  /** A table name for DDL and writes. */
  table(table: string): string;
  placeholder(name: string, type: ParamType): string;
  count(): string;
  countIf(condition: string): string;
  /**
   * Percentiles as one array (one sort, or one digest, for all of them): exact in DuckDB
   * (quantile_cont), t-digest estimates in ClickHouse.
   */
  quantiles(expression: string, qs: readonly number[]): string;
  /**
   * The start of the `stepMs` bucket holding `epochMs`. The step is written as a literal (a
   * checked integer the server chose, never client text): DuckDB groups several times slower
   * by an expression holding a parameter.
   */
  bucket(epochMs: string, stepMs: number): string;
  /** A tag's value from the JSON tags column, null when absent or empty; `key` is a placeholder. */
  tag(column: string, key: string): string;
  /** The value to bind as `key` above for a tag name (DuckDB takes a JSON path). */
  tagKey(tag: string): string;
  nullString(): string;
  nullFloat(): string;
  /** A boolean column as a condition (ClickHouse stores UInt8). */
  isTrue(column: string): string;
  /** The latency histogram bucket (latency-histogram.ts) of a value in ms; null stays null. */
  histogramBucket(ms: string): string;
}

export function duckdbDialect(): SqlDialect {
  return {
    engine: 'duckdb',
    from: (table) => table,
    table: (table) => table,
    placeholder: (name) => `$${name}`,
    count: () => 'count(*)',
    // count_if over only NULL conditions is NULL; a filtered count is always a count.
    countIf: (condition) => `count(*) FILTER (WHERE ${condition})`,
    quantiles: (expression, qs) => `quantile_cont(${expression}, [${qs.map(fraction).join(', ')}])`,
    bucket: (epochMs, stepMs) => `((${epochMs} // ${step(stepMs)}) * ${step(stepMs)})`,
    tag: (column, key) => `nullif(json_extract_string(${column}, ${key}), '')`,
    // Tag names are letters, digits, _ - . (dimensions.ts): quoted, a dot stays part of the name.
    tagKey: (tag) => `$."${tag}"`,
    nullString: () => 'CAST(NULL AS VARCHAR)',
    nullFloat: () => 'CAST(NULL AS DOUBLE)',
    isTrue: (column) => column,
    // DuckDB's least() skips NULLs: a missing time must stay NULL explicitly, not land in the last bucket.
    histogramBucket: (ms) =>
      `CASE WHEN ${ms} IS NULL THEN NULL WHEN ${ms} < 1 THEN 0 ELSE least(${HISTOGRAM_BUCKETS - 1}, 1 + CAST(floor(log2(${ms}) * ${BUCKETS_PER_DOUBLING}) AS INTEGER)) END`,
  };
}

/** ClickHouse 18.16: no toStartOfInterval, no Map, no query parameters, no Bool. */
export function clickhouseDialect(database: string): SqlDialect {
  // ReplacingMergeTree tables (events and every rollup tier): FINAL reads each row once while
  // parts are unmerged.
  const withDuplicates = (table: string) => table === 'events' || table.startsWith('events_rollup_');
  return {
    engine: 'clickhouse',
    from: (table) => `${database}.${table}${withDuplicates(table) ? ' FINAL' : ''}`,
    table: (table) => `${database}.${table}`,
    placeholder: (name, type) => `{${name}:${type}}`,
    count: () => 'count()',
    // A condition on a Nullable column is Nullable, and so would be countIf's result.
    countIf: (condition) => `countIf(ifNull(${condition}, 0))`,
    quantiles: (expression, qs) => `quantilesTDigest(${qs.map(fraction).join(', ')})(${expression})`,
    bucket: (epochMs, stepMs) => `(intDiv(${epochMs}, ${step(stepMs)}) * ${step(stepMs)})`,
    tag: (column, key) => `nullIf(visitParamExtractString(${column}, ${key}), '')`,
    tagKey: (tag) => tag,
    nullString: () => 'CAST(NULL AS Nullable(String))',
    nullFloat: () => 'CAST(NULL AS Nullable(Float64))',
    isTrue: (column) => `${column} = 1`,
    histogramBucket: (ms) =>
      `if(${ms} < 1, 0, least(${HISTOGRAM_BUCKETS - 1}, 1 + toInt32(floor(log2(${ms}) * ${BUCKETS_PER_DOUBLING}))))`,
  };
}

/** The parameters of one statement; each value gets a fresh name and a typed placeholder. */
export interface Params {
  add(value: SqlValue, type: ParamType): string;
  readonly values: Record<string, SqlValue>;
}

export function params(dialect: SqlDialect): Params {
  const values: Record<string, SqlValue> = {};
  let next = 0;
  return {
    values,
    add(value, type) {
      const name = `p${next++}`;
      // DuckDB binds a JS number as DOUBLE; integers go as BIGINT so time_ms compares exactly.
      values[name] = type === 'Int64' && typeof value === 'number' ? BigInt(value) : value;
      return dialect.placeholder(name, type);
    },
  };
}
