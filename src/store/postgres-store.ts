import pg from 'pg';
import type { ControlStore } from './control-store.js';
import { migrate } from './migrations.js';
import type { SqlClient, SqlEngine } from './sql-client.js';
import { controlTables } from './sql-tables.js';

export interface PostgresStoreOptions {
  /** postgres://user:password@host:5432/database */
  url: string;
  maxConnections?: number;
}

const INT8_OID = 20;
// Any constant shared by every Sluice: the lock that serialises migrations across nodes.
const MIGRATION_LOCK = 7_878_001;

/** Epoch milliseconds are BIGINT: read them as numbers (exact below 2^53), for this pool only. */
const types = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === INT8_OID
      ? (value: string) => Number(value)
      : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
};

/** "postgres host:port/database": where it is, without the user or password. */
function describe(url: string): string {
  try {
    const parsed = new URL(url);
    return `postgres ${parsed.host}${parsed.pathname}`;
  } catch {
    return 'postgres';
  }
}

/** `?` placeholders (the portable form the tables use) as PostgreSQL's `$1, $2, …`. */
function numbered(sql: string): string {
  let n = 0;
  return sql.replace(/\?/g, () => `$${++n}`);
}

/** The control store gateways share in a cluster: a key created on one node is found by the others. */
export function postgresStore(options: PostgresStoreOptions): ControlStore {
  const description = describe(options.url);
  let pool: pg.Pool | undefined;

  const connected = (): pg.Pool => {
    if (!pool) throw new Error(`control store ${description}: call open() first`);
    return pool;
  };
  const on = (client: pg.Pool | pg.PoolClient): SqlClient => ({
    query: async (sql, params = []) => (await client.query(numbered(sql), [...params])).rows,
  });

  const engine: SqlEngine = {
    query: (sql, params) => on(connected()).query(sql, params),
    violation(error) {
      const code = (error as { code?: unknown }).code;
      if (code === '23505') return 'unique';
      if (code === '23503') return 'foreign_key';
      return undefined;
    },
  };

  return {
    description,
    ...controlTables(engine),
    async open() {
      if (pool) return;
      const opened = new pg.Pool({ connectionString: options.url, max: options.maxConnections ?? 10, types });
      // An idle connection dropped by the server must not crash the gateway: the next query reconnects.
      opened.on('error', () => {});
      try {
        const client = await opened.connect();
        try {
          await client.query('BEGIN');
          await client.query(`SELECT pg_advisory_xact_lock(${MIGRATION_LOCK})`);
          await migrate(on(client));
          await client.query('COMMIT');
        } catch (error) {
          await client.query('ROLLBACK').catch(() => {});
          throw error;
        } finally {
          client.release();
        }
      } catch (error) {
        await opened.end();
        throw new Error(`control store ${description}: ${(error as Error).message}`);
      }
      pool = opened;
    },
    async close() {
      const closing = pool;
      pool = undefined;
      await closing?.end();
    },
  };
}
