/** A value bound to a statement parameter; never spliced into SQL text. */
export type SqlValue = string | number | bigint | boolean | null;

/**
 * One SQL statement and its parameters. Placeholders are written in the engine's own form:
 * `$name` for DuckDB, `{name:Type}` for ClickHouse (bound by the store; 18.16 has no server-side
 * parameters over HTTP, see clickhouse-query.ts).
 */
export interface SqlStatement {
  sql: string;
  params?: Readonly<Record<string, SqlValue>>;
}

export interface QueryColumn {
  name: string;
  /** The engine's type name, e.g. BIGINT (DuckDB) or Nullable(String) (ClickHouse). */
  type: string;
}

/** Rows as arrays aligned with `columns`; integers as numbers (or decimal text beyond 2^53). */
export interface QueryResult {
  columns: QueryColumn[];
  rows: unknown[][];
}

export interface QueryLimits {
  /** The statement is cancelled after this long. */
  timeoutMs: number;
  /**
   * Refuse anything but a single read statement, enforced by the engine where it can
   * (ClickHouse readonly=1; DuckDB checks the parsed statement type).
   */
  readOnly?: boolean;
}

/** The engine a reader speaks, so a query compiler can pick the SQL dialect. */
export type SqlEngine = 'duckdb' | 'clickhouse';

/**
 * SQL access to the event tables, for analytics (queries, rollups, retention). Stores implement
 * it next to EventStore; `sluice query --data-dir` implements it over a read-only DuckDB file.
 */
export interface EventReader {
  readonly engine: SqlEngine;
  /** ClickHouse: the database holding the event tables (DuckDB: the file's main schema). */
  readonly database?: string;
  query(statement: SqlStatement, limits: QueryLimits): Promise<QueryResult>;
  /**
   * Runs statements that change tables (rollups, retention), in order. DuckDB runs them in one
   * transaction, in turn with inserts; ClickHouse has no transactions, so callers make them
   * idempotent.
   */
  execute(statements: readonly SqlStatement[]): Promise<void>;
}

export class QueryError extends Error {
  constructor(
    message: string,
    readonly reason: 'timeout' | 'invalid' | 'read_only' | 'unavailable',
  ) {
    super(message);
    this.name = 'QueryError';
  }
}
