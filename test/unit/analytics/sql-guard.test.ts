import { describe, expect, it } from 'vitest';
import { guardSql } from '../../../src/analytics/sql-guard.js';
import { isApiError } from '../../../src/http/api-error.js';

function allowed(sql: string, engine: 'duckdb' | 'clickhouse' = 'duckdb'): string {
  const result = guardSql(sql, engine);
  if (isApiError(result)) throw new Error(`refused: ${result.message}`);
  return result.sql;
}

function refusal(sql: string, engine: 'duckdb' | 'clickhouse' = 'duckdb'): string {
  const result = guardSql(sql, engine);
  if (!isApiError(result)) throw new Error(`allowed: ${sql}`);
  expect(result).toMatchObject({ status: 400, code: 'sql_not_allowed', param: 'sql' });
  return result.message;
}

describe('the SQL guard', () => {
  it('lets one SELECT or WITH query through, trailing semicolons removed', () => {
    expect(allowed('SELECT count(*) FROM events')).toBe('SELECT count(*) FROM events');
    expect(allowed('  with x AS (SELECT 1) select * from x ;; ')).toBe(
      'with x AS (SELECT 1) select * from x',
    );
    expect(allowed('SELECT route FROM events -- by route\n')).toBe('SELECT route FROM events -- by route');
    expect(allowed('SELECT count() FROM system.parts', 'clickhouse')).toBe(
      'SELECT count() FROM system.parts',
    );
  });

  it('does not mistake words inside strings, quoted names or comments for statements', () => {
    expect(allowed("SELECT 'DROP TABLE events; DELETE' AS text")).toContain('DROP');
    expect(allowed('SELECT "delete", "set" FROM events')).toContain('"delete"');
    expect(allowed('SELECT 1 /* ; INSERT INTO x */')).toBe('SELECT 1 /* ; INSERT INTO x */');
    expect(allowed("SELECT format('{}', route) FROM events")).toContain('format(');
    expect(allowed('SELECT `insert` FROM sluice.events', 'clickhouse')).toContain('`insert`');
  });

  it('refuses a second statement', () => {
    expect(refusal('SELECT 1; DROP TABLE events')).toMatch(/one statement/);
    expect(refusal("SELECT 'a'; SELECT 'b'")).toMatch(/one statement/);
  });

  it('reads strings the way each engine does, so a quote cannot hide a semicolon', () => {
    // ClickHouse: \' escapes the quote, so the string runs on and "; DROP" is inside it.
    expect(allowed("SELECT 'it\\'s; DROP' AS x", 'clickhouse')).toContain('DROP');
    // DuckDB: a backslash is just a character, so the string ends and the rest is a statement.
    expect(refusal("SELECT 'a\\'; DROP TABLE events; SELECT 'b'", 'duckdb')).toMatch(/one statement/);
  });

  it('refuses anything that is not a query', () => {
    for (const sql of [
      'DELETE FROM events',
      'INSERT INTO events SELECT * FROM events',
      'UPDATE events SET status = 0',
      'CREATE TABLE x AS SELECT 1',
      'DROP TABLE events',
      "ATTACH 'other.db'",
      "COPY events TO 'out.csv'",
      'PRAGMA database_list',
      'INSTALL httpfs',
      'LOAD httpfs',
      "SET memory_limit = '1GB'",
      'CALL pragma_version()',
      'EXPLAIN SELECT 1',
    ]) {
      expect(refusal(sql)).toMatch(/SELECT or WITH/);
    }
  });

  it('refuses write and settings keywords anywhere in the query', () => {
    expect(refusal('WITH gone AS (DELETE FROM events RETURNING *) SELECT * FROM gone')).toMatch(/DELETE/);
    expect(refusal("SELECT * FROM events INTO OUTFILE '/tmp/x'", 'clickhouse')).toMatch(/OUTFILE/);
    expect(refusal('SELECT 1 SETTINGS max_result_rows = 0', 'clickhouse')).toMatch(/SETTINGS/);
    expect(refusal('SELECT 1 FORMAT TSV', 'clickhouse')).toMatch(/FORMAT/);
    expect(refusal('SELECT 1 FROM x WHERE 1 = 1 UNION ALL SELECT checkpoint')).toMatch(/CHECKPOINT/);
  });

  it('refuses functions that reach files, the network or run SQL text', () => {
    for (const sql of [
      "SELECT * FROM read_csv('/etc/passwd')",
      "SELECT * FROM read_parquet('s3://bucket/x.parquet')",
      "SELECT * FROM parquet_scan('x.parquet')",
      "SELECT * FROM glob('/*')",
      "SELECT * FROM query('DROP TABLE events')",
      "SELECT getenv('HOME')",
    ]) {
      expect(refusal(sql)).toMatch(/not allowed/);
    }
    expect(refusal("SELECT * FROM file('/etc/passwd', 'TSV', 'a String')", 'clickhouse')).toMatch(/file\(\)/);
    expect(refusal("SELECT * FROM url('http://x', 'TSV', 'a String')", 'clickhouse')).toMatch(/url\(\)/);
    expect(refusal("SELECT * FROM remote('other:9000', system.one)", 'clickhouse')).toMatch(/remote\(\)/);
    expect(refusal("SELECT * FROM 'events.csv'")).toMatch(/file by name/);
  });

  it('refuses what it cannot read rather than guessing', () => {
    expect(refusal('')).toMatch(/empty/);
    expect(refusal("SELECT 'unterminated")).toMatch(/could not be read/);
    expect(refusal('SELECT 1 /* never closed')).toMatch(/could not be read/);
    expect(refusal(`SELECT ${'1 + '.repeat(40_000)}1`)).toMatch(/longer than/);
  });
});
