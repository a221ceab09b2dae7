import type { SqlEngine } from '../events/event-reader.js';
import { type ApiError, apiError } from '../http/api-error.js';

/**
 * The first line of defence for POST /api/sql: a conservative lexical check that the text is one
 * SELECT (or WITH … SELECT) and names nothing that writes, changes settings or reaches files.
 * It errs on the side of refusing. Behind it, the engine enforces the same: ClickHouse runs the
 * query with readonly=1, DuckDB checks the parsed statement type and has file access disabled.
 */

export const MAX_SQL_LENGTH = 100_000;

type Token =
  | { kind: 'word'; text: string; at: number }
  | { kind: 'string'; at: number }
  | { kind: 'identifier'; at: number }
  | { kind: 'symbol'; text: string; at: number };

const DENIED_WORDS = new Set([
  'insert',
  'update',
  'delete',
  'merge',
  'upsert',
  'create',
  'drop',
  'alter',
  'truncate',
  'rename',
  'attach',
  'detach',
  'copy',
  'pragma',
  'install',
  'load',
  'set',
  'reset',
  'call',
  'export',
  'import',
  'vacuum',
  'checkpoint',
  'grant',
  'revoke',
  'use',
  'begin',
  'commit',
  'rollback',
  'transaction',
  'execute',
  'prepare',
  'deallocate',
  'optimize',
  'kill',
  'outfile',
  'settings',
]);

/** Functions that read or write files, reach the network, or run SQL text. */
const DENIED_FUNCTIONS = new Set([
  // DuckDB
  'glob',
  'sniff_csv',
  'query',
  'query_table',
  'checkpoint',
  'force_checkpoint',
  'getenv',
  'parquet_metadata',
  'parquet_schema',
  'parquet_file_metadata',
  'parquet_kv_metadata',
  'parquet_bloom_probe',
  'duckdb_secrets',
  'which_secret',
  'load_extension',
  'json_execute_serialized_sql',
  // ClickHouse table functions
  'file',
  'url',
  'remote',
  'remotesecure',
  'mysql',
  'postgresql',
  'jdbc',
  'odbc',
  'hdfs',
  's3',
  'input',
  'cluster',
  'clusterallreplicas',
  'executable',
  'sqlite',
]);

function deniedFunction(name: string): boolean {
  return (
    DENIED_FUNCTIONS.has(name) ||
    name.startsWith('read_') ||
    name.endsWith('_scan') ||
    name.startsWith('sqlite_') ||
    name.startsWith('postgres_') ||
    name.startsWith('mysql_') ||
    name.startsWith('iceberg_')
  );
}

class LexError extends Error {}

/** Splits SQL into words, literals, identifiers and symbols; comments and whitespace vanish. */
function tokens(sql: string, engine: SqlEngine): Token[] {
  const out: Token[] = [];
  let i = 0;
  const quoted = (quote: string, kind: 'string' | 'identifier') => {
    const at = i;
    i++;
    for (;;) {
      if (i >= sql.length)
        throw new LexError(`unterminated ${kind === 'string' ? 'string' : 'quoted name'} at ${at}`);
      const char = sql[i];
      // ClickHouse reads \' inside a literal as an escaped quote; DuckDB does not.
      if (char === '\\' && engine === 'clickhouse') {
        i += 2;
        continue;
      }
      if (char === quote) {
        if (sql[i + 1] === quote) {
          i += 2;
          continue;
        }
        i++;
        break;
      }
      i++;
    }
    out.push({ kind, at });
  };
  while (i < sql.length) {
    const char = sql[i] as string;
    if (/\s/.test(char)) {
      i++;
    } else if (sql.startsWith('--', i)) {
      const end = sql.indexOf('\n', i);
      i = end < 0 ? sql.length : end + 1;
    } else if (sql.startsWith('/*', i)) {
      const end = sql.indexOf('*/', i + 2);
      if (end < 0) throw new LexError(`unterminated comment at ${i}`);
      i = end + 2;
    } else if (char === "'") {
      quoted("'", 'string');
    } else if (char === '"' || (char === '`' && engine === 'clickhouse')) {
      quoted(char, 'identifier');
    } else if (char === '$' && engine === 'duckdb' && /^\$[A-Za-z_]*\$/.test(sql.slice(i))) {
      const tag = (/^\$[A-Za-z_]*\$/.exec(sql.slice(i)) as RegExpExecArray)[0];
      const end = sql.indexOf(tag, i + tag.length);
      if (end < 0) throw new LexError(`unterminated ${tag} string at ${i}`);
      out.push({ kind: 'string', at: i });
      i = end + tag.length;
    } else if (/[A-Za-z_]/.test(char)) {
      const at = i;
      while (i < sql.length && /[A-Za-z0-9_$]/.test(sql[i] as string)) i++;
      out.push({ kind: 'word', text: sql.slice(at, i).toLowerCase(), at });
    } else {
      out.push({ kind: 'symbol', text: char, at: i });
      i++;
    }
  }
  return out;
}

function refuse(message: string): ApiError {
  return apiError('invalid_request', 400, message, { code: 'sql_not_allowed', param: 'sql' });
}

/** The statement to run (trailing semicolons removed), or why it may not run. */
export function guardSql(sql: string, engine: SqlEngine): { sql: string } | ApiError {
  if (sql.length > MAX_SQL_LENGTH) return refuse(`The SQL is longer than ${MAX_SQL_LENGTH} characters.`);
  let list: Token[];
  try {
    list = tokens(sql, engine);
  } catch (error) {
    if (error instanceof LexError) return refuse(`The SQL could not be read: ${error.message}.`);
    throw error;
  }
  let end = list.length;
  while (end > 0 && list[end - 1]?.kind === 'symbol' && (list[end - 1] as { text: string }).text === ';')
    end--;
  const body = list.slice(0, end);
  const first = body[0];
  if (!first) return refuse('The SQL is empty: send one SELECT statement.');
  if (first.kind !== 'word' || (first.text !== 'select' && first.text !== 'with')) {
    return refuse('Only one read-only query may run here: it must start with SELECT or WITH.');
  }
  for (let k = 0; k < body.length; k++) {
    const token = body[k] as Token;
    const next = body[k + 1];
    if (token.kind === 'symbol' && token.text === ';') {
      return refuse('Only one statement may run here: remove the ";" and what follows it.');
    }
    if (token.kind !== 'word') continue;
    const call = next?.kind === 'symbol' && next.text === '(';
    if (call && deniedFunction(token.text)) {
      return refuse(
        `The function ${token.text}() is not allowed here: it reaches files, the network or runs SQL text.`,
      );
    }
    // `format(...)` is a DuckDB function; FORMAT as a clause would change ClickHouse's output.
    if (token.text === 'format' && !call)
      return refuse('FORMAT is not allowed here: results are always JSON.');
    // `system.parts` reads a ClickHouse system table; SYSTEM as a statement changes the server.
    if (token.text === 'system' && !(next?.kind === 'symbol' && next.text === '.')) {
      return refuse('SYSTEM statements are not allowed here.');
    }
    if (DENIED_WORDS.has(token.text) && !call) {
      return refuse(
        `${token.text.toUpperCase()} is not allowed here: this endpoint only reads (a column with this name can be quoted: "${token.text}").`,
      );
    }
    if ((token.text === 'from' || token.text === 'join') && next?.kind === 'string') {
      return refuse("Reading a file by name (FROM '…') is not allowed here.");
    }
  }
  // Trailing semicolons go (the query is run inside a subquery that caps its rows).
  const text = end < list.length ? sql.slice(0, (list[end] as Token).at) : sql;
  return { sql: text.trim() };
}
