import type { ClickHouseClient } from '@clickhouse/client';
import {
  QueryError,
  type QueryLimits,
  type QueryResult,
  type SqlStatement,
  type SqlValue,
} from './event-reader.js';

// `{name:Type}`, the placeholder syntax of ClickHouse's own query parameters (19.x and later).
const PLACEHOLDER = /\{([A-Za-z_][A-Za-z0-9_]*):([A-Za-z0-9]+)\}/g;

function integerText(value: SqlValue, name: string): string {
  if (typeof value === 'bigint') return value.toString();
  if (typeof value === 'number' && Number.isSafeInteger(value)) return String(value);
  throw new Error(`clickhouse parameter ${name}: expected an integer, got ${String(value)}`);
}

/**
 * The parameter as SQL text. Strings travel hex-encoded (`unhex('…')`): the text can only hold
 * 0-9a-f, so no value can ever close the literal, whatever quotes or backslashes it carries.
 */
function literal(value: SqlValue, type: string, name: string): string {
  if (value === null) return 'NULL';
  switch (type) {
    case 'String':
      if (typeof value !== 'string') throw new Error(`clickhouse parameter ${name}: expected a string`);
      return `unhex('${Buffer.from(value, 'utf8').toString('hex')}')`;
    case 'Int64':
      return `toInt64(${integerText(value, name)})`;
    case 'Int32':
      return `toInt32(${integerText(value, name)})`;
    case 'Float64':
      if (typeof value !== 'number' || !Number.isFinite(value)) {
        throw new Error(`clickhouse parameter ${name}: expected a finite number`);
      }
      return `toFloat64(${String(value)})`;
    case 'UInt8':
      return value === true || value === 1 ? '1' : '0';
    default:
      throw new Error(`clickhouse parameter ${name}: unsupported type ${type}`);
  }
}

/**
 * Binds `{name:Type}` placeholders client-side: ClickHouse 18.16 has no query parameters over
 * HTTP. Every value goes through `literal`, which only emits digits or hex.
 */
export function bindParameters(sql: string, params: Readonly<Record<string, SqlValue>>): string {
  return sql.replace(PLACEHOLDER, (_match, name: string, type: string) => {
    if (!Object.hasOwn(params, name)) throw new Error(`clickhouse statement: no value for parameter ${name}`);
    return literal(params[name] as SqlValue, type, name);
  });
}

/** "Code: 62, e.displayText() = DB::Exception: Syntax error…, e.what() = …" → "Syntax error…". */
export function clickhouseMessage(error: unknown): string {
  const message = (error as Error).message ?? String(error);
  const match = /DB::Exception: ([\s\S]*?)(?:, e\.what\(\) = DB::Exception)?\s*$/.exec(message);
  return (match?.[1] ?? message).trim();
}

const TIMEOUT = /Code: 159\b|Timeout exceeded/;

function unwrapType(type: string): string {
  const nullable = /^Nullable\((.*)\)$/.exec(type);
  return nullable ? (nullable[1] as string) : type;
}

/** JSON output quotes 64-bit integers; numbers again while exact. */
function plainValue(value: unknown, type: string): unknown {
  if (typeof value === 'string' && /^U?Int(64|128|256)$/.test(unwrapType(type))) {
    const n = Number(value);
    return Number.isSafeInteger(n) ? n : value;
  }
  return value;
}

/** Runs one read; with `readOnly`, under readonly=1 (no writes, no SETTINGS, no table functions). */
export async function clickhouseQuery(
  client: ClickHouseClient,
  statement: SqlStatement,
  limits: QueryLimits,
): Promise<QueryResult> {
  const params = statement.params ?? {};
  const sql = Object.keys(params).length > 0 ? bindParameters(statement.sql, params) : statement.sql;
  try {
    const result = await client.query({
      query: sql,
      format: 'JSONCompact',
      clickhouse_settings: {
        ...(limits.readOnly && { readonly: '1' }),
        max_execution_time: Math.max(1, Math.ceil(limits.timeoutMs / 1000)),
      },
      // The server enforces the limit; this only stops waiting for a server that went silent.
      abort_signal: AbortSignal.timeout(limits.timeoutMs + 5_000),
    });
    const body = (await result.json()) as { meta?: { name: string; type: string }[]; data?: unknown[][] };
    const columns = (body.meta ?? []).map(({ name, type }) => ({ name, type }));
    return {
      columns,
      rows: (body.data ?? []).map((row) => row.map((value, i) => plainValue(value, columns[i]?.type ?? ''))),
    };
  } catch (error) {
    const message = clickhouseMessage(error);
    if (TIMEOUT.test((error as Error).message ?? '') || (error as Error).name === 'TimeoutError') {
      throw new QueryError(`the query ran longer than ${limits.timeoutMs} ms`, 'timeout');
    }
    if (/Code: 164\b/.test((error as Error).message ?? '')) throw new QueryError(message, 'read_only');
    if (/ECONNREFUSED|ECONNRESET|socket hang up/.test((error as Error).message ?? '')) {
      throw new QueryError(`ClickHouse is unreachable: ${message}`, 'unavailable');
    }
    throw new QueryError(message, 'invalid');
  }
}
