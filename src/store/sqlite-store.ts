import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import type { ControlStore } from './control-store.js';
import { migrations, migrationsTable, pendingMigrations, recordMigration } from './migrations.js';
import type { SqlEngine } from './sql-client.js';
import { controlTables } from './sql-tables.js';

export interface SqliteStoreOptions {
  /** The database file (its folder is created), or ":memory:". */
  path: string;
}

/**
 * The embedded control store: one SQLite file, zero setup. WAL lets several gateway processes
 * on one machine share the file; a writer waits up to 5 s for another's lock instead of failing.
 */
export function sqliteStore(options: SqliteStoreOptions): ControlStore {
  let db: Database.Database | undefined;
  const statements = new Map<string, Database.Statement>();

  const connected = (): Database.Database => {
    if (!db) throw new Error(`control store sqlite ${options.path}: call open() first`);
    return db;
  };

  const engine: SqlEngine = {
    async query(sql, params = []) {
      let statement = statements.get(sql);
      if (!statement) {
        statement = connected().prepare(sql);
        statements.set(sql, statement);
      }
      if (statement.reader) return statement.all(...params) as Record<string, unknown>[];
      statement.run(...params);
      return [];
    },
    violation(error) {
      const code = (error as { code?: unknown }).code;
      if (code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY') return 'unique';
      if (code === 'SQLITE_CONSTRAINT_FOREIGNKEY') return 'foreign_key';
      return undefined;
    },
  };

  return {
    description: `sqlite ${options.path}`,
    ...controlTables(engine),
    async open() {
      if (db) return;
      let opened: Database.Database | undefined;
      try {
        if (options.path !== ':memory:') mkdirSync(dirname(options.path), { recursive: true });
        opened = new Database(options.path);
        opened.pragma('busy_timeout = 5000');
        opened.pragma('journal_mode = WAL');
        opened.pragma('foreign_keys = ON');
        migrateNow(opened);
        db = opened;
      } catch (error) {
        opened?.close();
        throw new Error(`control store sqlite ${options.path}: ${(error as Error).message}`);
      }
    },
    async close() {
      statements.clear();
      db?.close();
      db = undefined;
    },
  };
}

/**
 * Migrates without yielding to the event loop: IMMEDIATE takes the write lock first, so another
 * process migrating the same file waits, then finds nothing to do. (An async step here would let
 * a second store in this process block the thread on the lock the first one holds.)
 */
function migrateNow(db: Database.Database): void {
  db.transaction(() => {
    db.exec(migrationsTable);
    const rows = db.prepare('SELECT version FROM sluice_migrations').all() as { version: number }[];
    const record = db.prepare(recordMigration);
    for (const step of pendingMigrations(
      rows.map((row) => row.version),
      migrations,
    )) {
      for (const statement of step.statements) db.exec(statement);
      record.run(step.version, step.name, Date.now());
    }
  }).immediate();
}
