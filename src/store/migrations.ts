import type { SqlClient } from './sql-client.js';

export interface Migration {
  version: number;
  name: string;
  /** Portable SQL: the same statements run on SQLite and PostgreSQL. */
  statements: string[];
}

/**
 * The control store's schema, step by step. A step is never edited once released: a change is
 * a new step. Booleans are stored as 0/1 and JSON as text, which both engines read alike.
 */
export const migrations: readonly Migration[] = [
  {
    version: 1,
    name: 'orgs, teams, keys and budgets',
    statements: [
      `CREATE TABLE orgs (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        created_at BIGINT NOT NULL
      )`,
      `CREATE TABLE teams (
        id TEXT PRIMARY KEY,
        org_id TEXT NOT NULL REFERENCES orgs (id),
        name TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        UNIQUE (org_id, name)
      )`,
      `CREATE TABLE api_keys (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        org_id TEXT REFERENCES orgs (id),
        team_id TEXT REFERENCES teams (id),
        digest TEXT NOT NULL UNIQUE,
        prefix TEXT NOT NULL,
        admin INTEGER NOT NULL,
        routes TEXT,
        priority TEXT NOT NULL,
        tags TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        expires_at BIGINT,
        revoked_at BIGINT,
        rotated_at BIGINT
      )`,
      // A revoked key gives its name back; NULLs are distinct in UNIQUE, hence the COALESCE.
      `CREATE UNIQUE INDEX api_keys_live_name ON api_keys (COALESCE(org_id, ''), COALESCE(team_id, ''), name)
        WHERE revoked_at IS NULL`,
      'CREATE INDEX api_keys_team ON api_keys (team_id)',
      'CREATE INDEX api_keys_org ON api_keys (org_id)',
      `CREATE TABLE budgets (
        id TEXT PRIMARY KEY,
        scope TEXT NOT NULL CHECK (scope IN ('org', 'team', 'key')),
        scope_id TEXT NOT NULL,
        period TEXT NOT NULL CHECK (period IN ('day', 'month', 'total')),
        limit_usd DOUBLE PRECISION,
        limit_tokens BIGINT,
        soft_limit_pct DOUBLE PRECISION NOT NULL CHECK (soft_limit_pct >= 0 AND soft_limit_pct <= 100),
        created_at BIGINT NOT NULL
      )`,
      'CREATE INDEX budgets_scope ON budgets (scope, scope_id)',
    ],
  },
  {
    version: 2,
    name: 'budgets named, scoped by name, with a webhook',
    // Nothing wrote the version 1 budgets table (it was declared ahead of its admin API), so it
    // is replaced rather than altered: SQLite cannot change a column's constraints in place.
    statements: [
      'DROP TABLE budgets',
      `CREATE TABLE budgets (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        scope TEXT NOT NULL CHECK (scope IN ('org', 'team', 'key')),
        scope_name TEXT NOT NULL,
        period TEXT NOT NULL CHECK (period IN ('day', 'month', 'total')),
        limit_usd DOUBLE PRECISION,
        limit_tokens BIGINT,
        soft_limit_pct DOUBLE PRECISION CHECK (soft_limit_pct >= 0 AND soft_limit_pct <= 100),
        webhook TEXT,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL
      )`,
      'CREATE INDEX budgets_scope ON budgets (scope, scope_name)',
    ],
  },
];

export const migrationsTable = `CREATE TABLE IF NOT EXISTS sluice_migrations (
  version INTEGER PRIMARY KEY,
  name TEXT NOT NULL,
  applied_at BIGINT NOT NULL
)`;

export const recordMigration = 'INSERT INTO sluice_migrations (version, name, applied_at) VALUES (?, ?, ?)';

/** The steps not yet applied, in order; throws when the store was migrated by a newer Sluice. */
export function pendingMigrations(applied: readonly number[], steps: readonly Migration[]): Migration[] {
  const newest = Math.max(0, ...applied);
  const known = steps.at(-1)?.version ?? 0;
  if (newest > known) {
    throw new Error(
      `the control store's schema is at version ${newest}, newer than this Sluice knows (${known}): upgrade this gateway`,
    );
  }
  return steps.filter((step) => !applied.includes(step.version));
}

/**
 * Applies the steps not yet recorded in `sluice_migrations`, each once, in order. Runs inside
 * the caller's transaction, which also holds the engine's lock: two nodes starting together
 * migrate one after the other, and the second finds nothing left to do.
 */
export async function migrate(tx: SqlClient, steps: readonly Migration[] = migrations): Promise<void> {
  await tx.query(migrationsTable);
  const rows = await tx.query('SELECT version FROM sluice_migrations');
  for (const step of pendingMigrations(
    rows.map((row) => Number(row.version)),
    steps,
  )) {
    for (const statement of step.statements) await tx.query(statement);
    await tx.query(recordMigration, [step.version, step.name, Date.now()]);
  }
}
