import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { describe, expect, it, onTestFinished } from 'vitest';
import { duckdbStore } from '../../src/events/duckdb-store.js';
import { duckdbType, eventColumns } from '../../src/events/event-columns.js';
import { QueryError } from '../../src/events/event-reader.js';
import { StagedUnusable } from '../../src/events/event-store.js';
import type { WideEvent } from '../../src/events/wide-event.js';
import { describeEventStoreContract, sampleEvent, variedEvents } from '../support/event-store-contract.js';

describeEventStoreContract('duckdb', async () => ({
  store: duckdbStore({ path: ':memory:' }),
  cleanup: async () => {},
}));

describe('duckdb event store file', () => {
  it('keeps events across close and open, still exactly once by id', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sluice-duckdb-'));
    onTestFinished(() => rm(dir, { recursive: true, force: true }));
    const path = join(dir, 'events.duckdb');

    const first = duckdbStore({ path });
    await first.open();
    await first.insert([sampleEvent(1), sampleEvent(2)]);
    await first.close();

    const second = duckdbStore({ path });
    await second.open();
    onTestFinished(() => second.close());
    await second.insert([sampleEvent(2), sampleEvent(3)]);
    expect(await second.count()).toBe(3);
    expect(await second.list({ limit: 10 })).toEqual([sampleEvent(3), sampleEvent(2), sampleEvent(1)]);
  });
});

describe('duckdb event store memory', () => {
  it('gives DuckDB the memory limit it is configured with', async () => {
    const store = duckdbStore({ path: ':memory:', memoryLimit: '300MiB' });
    await store.open();
    onTestFinished(() => store.close());
    const result = await store.query(
      { sql: "SELECT current_setting('memory_limit') AS limit_" },
      { timeoutMs: 10_000 },
    );
    expect(result.rows).toEqual([['300.0 MiB']]);
  });

  it('says a query needs more memory than the limit, naming the setting, rather than that it is invalid', async () => {
    const store = duckdbStore({ path: ':memory:', memoryLimit: '20MB' });
    await store.open();
    onTestFinished(() => store.close());
    const failure = await store
      .query({ sql: 'SELECT list(range) FROM range(20000000)' }, { timeoutMs: 30_000 })
      .catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(QueryError);
    expect(failure).toMatchObject({ reason: 'unavailable' });
    expect((failure as QueryError).message).toMatch(
      /^Out of Memory Error: .*: the query needs more memory than DuckDB may use \(events\.duckdb\.memoryLimit\)/,
    );
    // The store goes on answering what fits.
    expect((await store.query({ sql: 'SELECT 1' }, { timeoutMs: 10_000 })).rows).toEqual([[1]]);
  });
});

describe('duckdb event store ingest', () => {
  it('stores chunks of any size with nulls, short non-ASCII and 12-byte strings intact', async () => {
    const store = duckdbStore({ path: ':memory:' });
    await store.open();
    onTestFinished(() => store.close());
    // 5000 events: ten data chunks, the last one partial, flushed twice on the way and once at the end.
    const events: WideEvent[] = Array.from({ length: 5000 }, (_, i) =>
      sampleEvent(i, {
        keyName: i % 7 === 0 ? null : ['Ω', 'twelve-bytes', 'thirteen-byte', 'é', ''][i % 5]!,
        team: i % 3 === 0 ? null : `t${i}`,
        costUsd: i % 2 === 0 ? null : i / 1000,
        timings: { totalMs: i, firstTokenMs: i % 4 === 0 ? null : 1.5, upstreamMs: null },
        stream: i % 2 === 1,
      }),
    );
    await store.insert(events);
    expect(await store.count()).toBe(5000);
    const listed = await store.list({ limit: 5000 });
    expect(listed).toEqual([...events].reverse());
  });

  it('stores long strings that repeat within a chunk as themselves, in the file after a reopen', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sluice-duckdb-'));
    onTestFinished(() => rm(dir, { recursive: true, force: true }));
    const path = join(dir, 'events.duckdb');
    const targets = ['anthropic/claude-3-5-haiku', 'openai/gpt-4o-mini', 'vllm/modèle-générique-8b'];
    // 3000 events: repeats of a few long values, long values seen once, nulls and short values between them.
    const events: WideEvent[] = Array.from({ length: 3000 }, (_, i) =>
      sampleEvent(i, {
        target: targets[i % 3]!,
        model: i % 4 === 0 ? null : i % 4 === 1 ? 'short' : `a-model-seen-once-${i}`,
        errorMessage: i % 5 === 0 ? 'upstream returned 502 Bad Gateway (été)' : null,
        tags: { feature: ['autocomplete', 'chat', 'triage'][i % 3]!, n: String(i % 2) },
      }),
    );
    const first = duckdbStore({ path });
    await first.open();
    await first.insert(events);
    await first.close();

    const second = duckdbStore({ path });
    await second.open();
    onTestFinished(() => second.close());
    expect(await second.list({ limit: 3000 })).toEqual([...events].reverse());
  });
});

describe('duckdb event store staging', () => {
  it('stores staged events as insert does, each staging filled once at staging', async () => {
    const store = duckdbStore({ path: ':memory:' });
    const events = variedEvents(1300);
    // Staged before the store is open (the bus stages as events are written), in uneven parts,
    // one of them with an id twice, which is staged once.
    const stagings = [
      store.stage!(events.slice(0, 700)),
      store.stage!([...events.slice(700, 701), ...events.slice(700, 1000)]),
      store.stage!(events.slice(1000)),
    ];
    expect(stagings.map((staged) => staged.rows)).toEqual([700, 300, 300]);
    await store.open();
    onTestFinished(() => store.close());
    await store.insertStaged!(stagings);
    expect(await store.count()).toBe(1300);
    expect(await store.list({ limit: 1300 })).toEqual([...events].reverse());
  });

  it('fills the chunks of earlier batches again with nothing of theirs left: nulls, strings, values', async () => {
    const store = duckdbStore({ path: ':memory:' });
    await store.open();
    onTestFinished(() => store.close());
    // Appended chunks are filled again by the next batches (inserted or staged): a batch with
    // nulls in every other row is followed by one with none, and long strings by short ones.
    const batch = (from: number, nulls: boolean) =>
      Array.from({ length: 1100 }, (_, i) =>
        sampleEvent(from + i, {
          keyName:
            nulls && i % 2 === 0 ? null : nulls ? `a-key-name-longer-than-twelve-${from + i}` : 'short',
          costUsd: nulls && i % 2 === 1 ? null : from + i,
          timings: { totalMs: i, firstTokenMs: nulls && i % 2 === 0 ? null : 2.5, upstreamMs: null },
        }),
      );
    const first = batch(0, true);
    const second = batch(2000, false);
    const third = batch(4000, true);
    const fourth = batch(6000, false);
    await store.insert(first);
    await store.insert(second);
    await store.insertStaged!([store.stage!(third.slice(0, 512)), store.stage!(third.slice(512))]);
    await store.insertStaged!([store.stage!(fourth)]);
    expect(await store.list({ limit: 5000 })).toEqual([...first, ...second, ...third, ...fourth].reverse());
  });

  it('stores nothing of staged events and says so when some are stored already or staged twice', async () => {
    const store = duckdbStore({ path: ':memory:' });
    await store.open();
    onTestFinished(() => store.close());
    await store.insert([sampleEvent(1), sampleEvent(5)]);
    // 3 is earlier than the newest stored time, so looked up, and 1 is stored: unusable.
    await expect(
      store.insertStaged!([store.stage!([sampleEvent(6), sampleEvent(3), sampleEvent(1)])]),
    ).rejects.toThrow(StagedUnusable);
    // The same id in two stagings.
    await expect(
      store.insertStaged!([store.stage!([sampleEvent(7)]), store.stage!([sampleEvent(8), sampleEvent(7)])]),
    ).rejects.toThrow(StagedUnusable);
    expect(await store.count()).toBe(2);
    // Later events staged are stored, and the store goes on.
    await store.insertStaged!([store.stage!([sampleEvent(6), sampleEvent(7)])]);
    expect((await store.list({ limit: 10 })).map((event) => event.id)).toEqual(
      [7, 6, 5, 1].map((i) => sampleEvent(i).id),
    );
  });
});

describe('duckdb event store exactly once by id, with the lookup limited to times already stored', () => {
  it('stores once an id that comes back in a batch mixing it with later events', async () => {
    const store = duckdbStore({ path: ':memory:' });
    await store.open();
    onTestFinished(() => store.close());
    await store.insert([sampleEvent(1), sampleEvent(5)]);
    // 2, 3 and 4 are earlier than the newest stored time, 6 later; 5 is at it, 1 before it.
    await store.insert([sampleEvent(6), sampleEvent(5), sampleEvent(3), sampleEvent(1)]);
    await store.insert([sampleEvent(7), sampleEvent(6), sampleEvent(2)]);
    expect(await store.count()).toBe(6);
    expect((await store.list({ limit: 10 })).map((event) => event.id)).toEqual(
      [7, 6, 5, 3, 2, 1].map((i) => sampleEvent(i).id),
    );
  });

  it('looks up every id again after a statement through execute wrote into events', async () => {
    const store = duckdbStore({ path: ':memory:' });
    await store.open();
    onTestFinished(() => store.close());
    await store.insert([sampleEvent(1)]);
    // A row later than any inserted, written behind insert's back (as a repair or an import could).
    await store.execute([
      {
        sql: `INSERT INTO events SELECT * REPLACE ('${sampleEvent(9).id}' AS id, time_ms + 8000 AS time_ms) FROM events`,
      },
    ]);
    await store.insert([sampleEvent(9), sampleEvent(10)]);
    expect(await store.count()).toBe(3);
  });

  it('reads the newest stored time from the file when it opens', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sluice-duckdb-'));
    onTestFinished(() => rm(dir, { recursive: true, force: true }));
    const path = join(dir, 'events.duckdb');
    const first = duckdbStore({ path });
    await first.open();
    await first.insert([sampleEvent(1), sampleEvent(8)]);
    await first.close();

    const second = duckdbStore({ path });
    await second.open();
    onTestFinished(() => second.close());
    await second.insert([sampleEvent(8), sampleEvent(9)]);
    expect(await second.count()).toBe(3);
  });
});

describe('duckdb event store transactions', () => {
  it.each([
    // Filled while the id lookup runs: the fill fails before anything is appended.
    ['cannot be filled (no attempts to encode)', { attempts: undefined as unknown as WideEvent['attempts'] }],
    // Filled, but refused when appended (NOT NULL): the first 2048 rows were already flushed into the transaction.
    ['is refused by the table (a null model asked for)', { requestedModel: null as unknown as string }],
  ])('stores nothing of a batch whose row 3000 %s, and takes the next one', async (_, broken) => {
    const store = duckdbStore({ path: ':memory:' });
    await store.open();
    onTestFinished(() => store.close());
    await store.insert([sampleEvent(0)]);
    const events = Array.from({ length: 4000 }, (_, i) => sampleEvent(i + 1));
    const batch = [...events];
    batch[2999] = { ...events[2999]!, ...broken };
    await expect(store.insert(batch)).rejects.toThrow();
    expect(await store.count()).toBe(1);
    await store.insert(events);
    expect(await store.count()).toBe(4001);
  });
});

describe('duckdb event store migrations', () => {
  it('rebuilds a file whose events table has a primary key, keeping every row once', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sluice-duckdb-'));
    onTestFinished(() => rm(dir, { recursive: true, force: true }));
    const path = join(dir, 'events.duckdb');
    // The table as earlier releases created it (primary key on id), holding two events.
    const other = join(dir, 'source.duckdb');
    const source = duckdbStore({ path: other });
    await source.open();
    await source.insert([sampleEvent(1), sampleEvent(2)]);
    await source.close();
    await onFile(
      path,
      `CREATE TABLE events (${eventColumns.map((col) => `${col.name} ${duckdbType(col)}`).join(', ')}, PRIMARY KEY (id));
       ATTACH '${other}' AS source (READ_ONLY);
       INSERT INTO events SELECT * FROM source.events;`,
    );

    const store = duckdbStore({ path });
    await store.open();
    onTestFinished(() => store.close());
    await store.insert([sampleEvent(2), sampleEvent(3)]);
    expect(await store.count()).toBe(3);
    expect(await store.list({ limit: 10 })).toEqual([sampleEvent(3), sampleEvent(2), sampleEvent(1)]);
    await store.close();
    const rows = await onFile(
      path,
      `SELECT (SELECT count(*) FROM duckdb_constraints() WHERE table_name = 'events' AND constraint_type = 'PRIMARY KEY') AS keys,
              (SELECT string_agg(name, ', ' ORDER BY version) FROM sluice_migrations) AS applied`,
    );
    expect(rows).toEqual([
      {
        keys: 0n,
        applied: 'create events, wide event v2 columns, events without a primary key',
      },
    ]);
  });
});

/** Runs one statement on a closed store's file, as an operator would. */
async function onFile(path: string, sql: string): Promise<Record<string, unknown>[]> {
  const instance = await DuckDBInstance.create(path);
  const db = await instance.connect();
  try {
    const statements = sql.split(';').filter((statement) => statement.trim() !== '');
    for (const statement of statements.slice(0, -1)) await db.run(statement);
    return (await db.runAndReadAll(statements.at(-1)!)).getRowObjectsJS();
  } finally {
    db.closeSync();
    instance.closeSync();
  }
}

describe('duckdb event store reads', () => {
  const limits = { timeoutMs: 60_000, readOnly: true };

  it('answers a read while a long write is still running, from the data committed before it', async () => {
    const store = duckdbStore({ path: ':memory:' });
    await store.open();
    onTestFinished(() => store.close());
    await store.insert([sampleEvent(1)]);
    const order: string[] = [];
    const write = store
      .execute([
        {
          sql: 'CREATE TABLE filler AS SELECT range AS n, md5(CAST(range AS VARCHAR)) AS h FROM range(3000000)',
        },
        { sql: 'DELETE FROM events' },
      ])
      .then(() => order.push('write'));
    const read = store
      .query({ sql: 'SELECT count(*) FROM events' }, limits)
      .then((result) => order.push(`read ${result.rows[0]?.[0]}`));
    await Promise.all([write, read]);
    expect(order).toEqual(['read 1', 'write']);
    expect((await store.query({ sql: 'SELECT count(*) FROM events' }, limits)).rows).toEqual([[0]]);
  });

  it('runs reads side by side, and a close waits for those asked before it', async () => {
    const store = duckdbStore({ path: ':memory:' });
    await store.open();
    const reads = Array.from({ length: 6 }, (_, i) =>
      store.query({ sql: `SELECT sum(range) + ${i} FROM range(2000000)` }, limits),
    );
    const closed = store.close();
    const late = store.query({ sql: 'SELECT 1' }, limits);
    const results = await Promise.all(reads);
    expect(results.map((result) => result.rows[0]?.[0])).toEqual(
      Array.from({ length: 6 }, (_, i) => 1_999_999_000_000 + i),
    );
    await closed;
    await expect(late).rejects.toThrow(/call open\(\) first/);
  });
});
