import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { type Migration, migrate, migrations } from '../../src/store/migrations.js';
import { postgresStore } from '../../src/store/postgres-store.js';
import type { SqlClient } from '../../src/store/sql-client.js';
import { sqliteStore } from '../../src/store/sqlite-store.js';
import { describeControlStoreContract, org } from '../support/control-store-contract.js';
import { freePort } from '../support/ports.js';
import { type RunningServer, startPostgres } from '../support/servers.js';

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-control-'));
  onTestFinished(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

describeControlStoreContract('sqlite', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-control-'));
  return {
    store: sqliteStore({ path: join(dir, 'data', 'control.db') }),
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
});

let postgres: RunningServer;
let databases = 0;

beforeAll(async () => {
  postgres = await startPostgres();
});

afterAll(async () => {
  await postgres?.stop();
});

/** Runs one statement outside the store, as an operator would. */
async function sql(database: string, text: string): Promise<Record<string, unknown>[]> {
  const client = new pg.Client({ connectionString: urlOf(database) });
  await client.connect();
  try {
    return (await client.query(text)).rows;
  } finally {
    await client.end();
  }
}

function urlOf(database: string): string {
  return postgres.url.replace(/\/postgres$/, `/${database}`);
}

/** An empty database of its own, so tests start clean without restarting the server. */
async function freshDatabase(): Promise<string> {
  const database = `sluice_control_${++databases}`;
  await sql('postgres', `CREATE DATABASE ${database}`);
  return database;
}

describeControlStoreContract('postgres', async () => {
  const database = await freshDatabase();
  return {
    store: postgresStore({ url: urlOf(database) }),
    cleanup: async () => {
      await sql('postgres', `DROP DATABASE IF EXISTS ${database}`);
    },
  };
});

const recorded = (rows: Record<string, unknown>[]) => rows.map((r) => [Number(r.version), r.name]);
const everyStep = migrations.map((m) => [m.version, m.name]);

describe('sqlite control store schema', () => {
  it('records each migration once however often and by however many stores it opens', async () => {
    const path = join(await tempDir(), 'control.db');
    const first = sqliteStore({ path });
    const second = sqliteStore({ path });
    await Promise.all([first.open(), second.open()]);
    await first.orgs.insert(org(1));
    expect(await second.orgs.list()).toEqual([org(1)]);
    await first.close();
    await second.close();
    const third = sqliteStore({ path });
    await third.open();
    await third.close();

    const db = new Database(path, { readonly: true });
    onTestFinished(() => {
      db.close();
    });
    expect(recorded(db.prepare('SELECT version, name FROM sluice_migrations').all() as never)).toEqual(
      everyStep,
    );
  });

  it('applies only the steps it has not recorded, in order', async () => {
    const db = new Database(join(await tempDir(), 'steps.db'));
    onTestFinished(() => {
      db.close();
    });
    const client: SqlClient = {
      async query(text, params = []) {
        const statement = db.prepare(text);
        if (statement.reader) return statement.all(...params) as Record<string, unknown>[];
        statement.run(...params);
        return [];
      },
    };
    const one: Migration = { version: 1, name: 'a', statements: ['CREATE TABLE a (x INTEGER)'] };
    const two: Migration = { version: 2, name: 'b', statements: ['CREATE TABLE b (y INTEGER)'] };
    await migrate(client, [one]);
    // Re-running step 1 would fail: its table exists.
    await migrate(client, [one, two]);
    await migrate(client, [one, two]);
    expect(
      recorded(await client.query('SELECT version, name FROM sluice_migrations ORDER BY version')),
    ).toEqual([
      [1, 'a'],
      [2, 'b'],
    ]);
    await expect(migrate(client, [one])).rejects.toThrow(
      "the control store's schema is at version 2, newer than this Sluice knows (1): upgrade this gateway",
    );
  });

  it('refuses a file migrated by a newer Sluice, naming the file', async () => {
    const path = join(await tempDir(), 'control.db');
    const store = sqliteStore({ path });
    await store.open();
    await store.close();
    const db = new Database(path);
    db.prepare("INSERT INTO sluice_migrations (version, name, applied_at) VALUES (99, 'future', 0)").run();
    db.close();
    await expect(sqliteStore({ path }).open()).rejects.toThrow(
      `control store sqlite ${path}: the control store's schema is at version 99`,
    );
  });

  it('fails to open where it cannot create its file, saying where', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'a-file'), '');
    const path = join(dir, 'a-file', 'control.db');
    await expect(sqliteStore({ path }).open()).rejects.toThrow(path);
  });
});

describe('postgres control store schema', () => {
  it('lets many nodes open one empty database at once, migrating it once', async () => {
    const database = await freshDatabase();
    const stores = Array.from({ length: 4 }, () => postgresStore({ url: urlOf(database) }));
    onTestFinished(() => Promise.all(stores.map((s) => s.close())).then(() => undefined));
    await Promise.all(stores.map((s) => s.open()));
    await stores[0]?.orgs.insert(org(1));
    expect(await stores[3]?.orgs.list()).toEqual([org(1)]);
    expect(recorded(await sql(database, 'SELECT version, name FROM sluice_migrations'))).toEqual(everyStep);
  });

  it('refuses a database migrated by a newer Sluice', async () => {
    const database = await freshDatabase();
    const store = postgresStore({ url: urlOf(database) });
    await store.open();
    await store.close();
    await sql(database, "INSERT INTO sluice_migrations (version, name, applied_at) VALUES (99, 'future', 0)");
    await expect(postgresStore({ url: urlOf(database) }).open()).rejects.toThrow(
      "the control store's schema is at version 99, newer than this Sluice knows",
    );
  });

  it('fails to open an unreachable server without showing the password', async () => {
    const port = await freePort();
    const store = postgresStore({ url: `postgres://sluice:PASSWORD-SECRET@127.0.0.1:${port}/sluice` });
    expect(store.description).toBe(`postgres 127.0.0.1:${port}/sluice`);
    const error = await store.open().then(
      () => undefined,
      (e: Error) => e,
    );
    expect(error?.message).toContain(`control store postgres 127.0.0.1:${port}/sluice: `);
    expect(error?.message).not.toContain('SECRET');
  });
});
