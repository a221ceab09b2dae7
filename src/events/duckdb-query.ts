import { type DuckDBConnection, type DuckDBValue, StatementType } from '@duckdb/node-api';
import {
  QueryError,
  type QueryLimits,
  type QueryResult,
  type SqlStatement,
  type SqlValue,
} from './event-reader.js';

/** JSON-ready values: 64-bit integers as numbers while exact, else decimal text; times as ISO. */
export function plainValue(value: unknown): unknown {
  if (typeof value === 'bigint') {
    return value <= BigInt(Number.MAX_SAFE_INTEGER) && value >= BigInt(Number.MIN_SAFE_INTEGER)
      ? Number(value)
      : value.toString();
  }
  if (typeof value === 'number') return Number.isFinite(value) ? value : null;
  if (value instanceof Date) return value.toISOString();
  if (Array.isArray(value)) return value.map(plainValue);
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, plainValue(item)]));
  }
  return value;
}

function bindable(params: Readonly<Record<string, SqlValue>>): Record<string, DuckDBValue> {
  return params as Record<string, DuckDBValue>;
}

/**
 * Runs one read on `connection`: cancelled (interrupted) after `limits.timeoutMs`, and with
 * `readOnly`, refused unless DuckDB's own parser sees exactly one SELECT. The connection must
 * serve this statement alone, so the interrupt can hit nothing else.
 */
export async function duckdbQuery(
  connection: DuckDBConnection,
  statement: SqlStatement,
  limits: QueryLimits,
): Promise<QueryResult> {
  if (limits.readOnly) {
    const extracted = await connection.extractStatements(statement.sql).catch((error: unknown) => {
      throw new QueryError((error as Error).message, 'invalid');
    });
    if (extracted.count !== 1) {
      throw new QueryError(`expected one statement, got ${extracted.count}`, 'read_only');
    }
    const prepared = await extracted.prepare(0).catch((error: unknown) => {
      throw new QueryError((error as Error).message, 'invalid');
    });
    const type = prepared.statementType;
    prepared.destroySync();
    if (type !== StatementType.SELECT) {
      throw new QueryError(`only a SELECT may run here, not ${StatementType[type]}`, 'read_only');
    }
  }
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    connection.interrupt();
  }, limits.timeoutMs);
  try {
    const reader = await connection.runAndReadAll(statement.sql, bindable(statement.params ?? {}));
    const names = reader.columnNames();
    const types = reader.columnTypes();
    return {
      columns: names.map((name, i) => ({ name, type: String(types[i]) })),
      rows: reader.getRowsJS().map((row) => row.map(plainValue)),
    };
  } catch (error) {
    if (timedOut) throw new QueryError(`the query ran longer than ${limits.timeoutMs} ms`, 'timeout');
    throw outOfMemory(error as Error) ?? new QueryError((error as Error).message, 'invalid');
  } finally {
    clearTimeout(timer);
  }
}

/**
 * DuckDB's refusal of a query that needs more than its memory limit, said as the gateway's
 * setting (DuckDB's own hints name its SQL settings): the store could not answer, the query may
 * be fine.
 */
function outOfMemory(error: Error): QueryError | undefined {
  if (!error.message.startsWith('Out of Memory Error')) return undefined;
  const [first] = error.message.split('\n', 1);
  return new QueryError(
    `${first}: the query needs more memory than DuckDB may use (events.duckdb.memoryLimit); raise it, or query a shorter range`,
    'unavailable',
  );
}
