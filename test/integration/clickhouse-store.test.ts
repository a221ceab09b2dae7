import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClient } from '@clickhouse/client';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { sluiceConfigSchema } from '../../src/config/schema.js';
import { clickhouseStore } from '../../src/events/clickhouse-store.js';
import { columnsAddedInVersion2, toRow } from '../../src/events/event-columns.js';
import { openStorePipeline } from '../../src/events/event-sink.js';
import { StagedUnusable } from '../../src/events/event-store.js';
import {
  describeEventStoreContract,
  sampleCustomEvent,
  sampleEvent,
  variedEvents,
} from '../support/event-store-contract.js';
import { type RunningServer, startClickHouse } from '../support/servers.js';
import { edgeValues, oddText } from '../support/wide-events.js';

let server: RunningServer;
let databases = 0;

beforeAll(async () => {
  server = await startClickHouse();
});

afterAll(async () => {
  await server?.stop();
});

/** Runs one statement outside the store, as an operator would. */
async function sql(query: string): Promise<unknown[]> {
  const client = createClient({ url: server.url });
  try {
    return await (await client.query({ query, format: 'JSONEachRow' })).json();
  } finally {
    await client.close();
  }
}

/**
 * A proxy in front of the server that notes each statement the store sends, and answers 500 in
 * place of the server's answer to those `lose` picks, after the server has run them: a reply lost
 * on the way back.
 */
async function statementProxy(lose: (statement: string) => boolean = () => false) {
  const statements: string[] = [];
  const target = new URL(server.url);
  const proxy = createServer((incoming, outgoing) => {
    const query = new URL(incoming.url ?? '/', server.url).searchParams.get('query');
    const body: Buffer[] = [];
    incoming.on('data', (part: Buffer) => body.push(part));
    incoming.on('end', () => {
      const sent = Buffer.concat(body);
      const statement = (query ?? sent.toString()).trim();
      statements.push(statement);
      const forward = request(
        {
          host: target.hostname,
          port: target.port,
          path: incoming.url,
          method: incoming.method,
          headers: incoming.headers,
        },
        (reply) => {
          if (lose(statement)) {
            reply.resume();
            reply.on('end', () => outgoing.writeHead(500).end('the proxy lost the answer'));
            return;
          }
          outgoing.writeHead(reply.statusCode ?? 502, reply.headers);
          reply.pipe(outgoing);
        },
      );
      forward.end(sent);
    });
  });
  await new Promise<void>((listening) => proxy.listen(0, '127.0.0.1', listening));
  const { port } = proxy.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    statements,
    close: () => new Promise<void>((closed) => proxy.close(() => closed())),
  };
}

const firstWords = (statement: string) => statement.split(/\s+/).slice(0, 2).join(' ');

describeEventStoreContract('clickhouse', async () => {
  // A database per test, so tests start empty without restarting the server.
  const database = `sluice_test_${++databases}`;
  return {
    store: clickhouseStore({ url: server.url, database }),
    cleanup: async () => {
      await sql(`DROP DATABASE IF EXISTS ${database}`);
    },
  };
});

describe('clickhouse event store schema', () => {
  it('records each migration once however often it opens', async () => {
    const store = clickhouseStore({ url: server.url, database: 'sluice_migrations_test' });
    await store.open();
    await store.open();
    await store.close();
    const recorded = await sql(
      'SELECT version, name FROM sluice_migrations_test.sluice_migrations ORDER BY version',
    );
    expect(recorded[0]).toEqual({ version: 1, name: 'create events' });
    expect(recorded.slice(1, -1)).toEqual(
      columnsAddedInVersion2.map((col, i) => ({ version: 2 + i, name: `wide event v2: add ${col.name}` })),
    );
    expect(recorded.at(-1)).toEqual({
      version: 2 + columnsAddedInVersion2.length,
      name: 'create custom_events',
    });
  });

  it('opens a table whose column changes were applied but never recorded (a crash in between)', async () => {
    const database = 'sluice_upgrade_test';
    const client = createClient({ url: server.url });
    await client.command({ query: `CREATE DATABASE IF NOT EXISTS ${database}` });
    const v1Store = clickhouseStore({ url: server.url, database });
    await v1Store.open();
    await v1Store.close();
    // Forget every record, as if the process died after each ALTER and before writing it down.
    await client.command({ query: `DROP TABLE ${database}.sluice_migrations` });
    const store = clickhouseStore({ url: server.url, database });
    await store.open();
    await store.insert([sampleEvent(1)]);
    expect(await store.list({ limit: 1 })).toEqual([sampleEvent(1)]);
    await store.close();
    await client.close();
  });

  it('reads an id once even when another writer stored it again before a merge', async () => {
    const database = 'sluice_race_test';
    const store = clickhouseStore({ url: server.url, database });
    await store.open();
    await store.insert([sampleEvent(1), sampleEvent(2)]);
    // A second gateway that checked for the id just before this one stored it: a plain duplicate row.
    const other = createClient({ url: server.url });
    const row = Object.fromEntries(
      Object.entries(toRow(sampleEvent(2))).map(([name, value]) => [
        name,
        typeof value === 'boolean' ? +value : value,
      ]),
    );
    await other.insert({ table: `${database}.events`, values: [row], format: 'JSONEachRow' });
    await other.close();

    expect(await store.count()).toBe(2);
    expect(await store.list({ limit: 10 })).toEqual([sampleEvent(2), sampleEvent(1)]);
    await store.close();
  });

  it('checks a replayed batch whose ids are far over the 256 KiB a statement may hold', async () => {
    const store = clickhouseStore({ url: server.url, database: 'sluice_long_ids_test' });
    await store.open();
    // 10,000 ids of 90 characters: about 950 KB, over the server's default max_query_size if sent as SQL.
    const id = (i: number) => `${'replayed-'.repeat(9)}${String(i).padStart(9, '0')}`;
    const batch = Array.from({ length: 10_000 }, (_, i) => sampleEvent(i, { id: id(i) }));
    await store.insert(batch.slice(0, 6_000));
    await store.insert(batch);
    expect(await store.count()).toBe(10_000);
    expect(await sql('SELECT count() AS n FROM sluice_long_ids_test.events')).toEqual([{ n: '10000' }]);
    await store.close();
  });

  it('sends a first delivery as its insert alone, and checks a retry of it first', async () => {
    const proxy = await statementProxy();
    const store = clickhouseStore({ url: proxy.url, database: 'sluice_first_delivery_test' });
    try {
      await store.open();
      const batch = Array.from({ length: 20 }, (_, i) => sampleEvent(i));
      proxy.statements.length = 0;
      await store.insert(batch, { firstDelivery: true });
      expect(proxy.statements.map(firstWords)).toEqual(['INSERT INTO']);
      proxy.statements.length = 0;
      await store.insert(batch);
      expect(proxy.statements.map(firstWords)).toEqual(['SELECT id']); // every id found: nothing left to insert
      expect(await sql('SELECT count() AS n FROM sluice_first_delivery_test.events')).toEqual([{ n: '20' }]);
    } finally {
      await store.close();
      await proxy.close();
    }
  });

  it('sends a batch encoded piece by piece as one insert: one part, every row, in order', async () => {
    const store = clickhouseStore({ url: server.url, database: 'sluice_pieces_test' });
    await store.open();
    const batch = Array.from({ length: 1_300 }, (_, i) => sampleEvent(i)); // three pieces of up to 512
    await store.insert(batch);
    expect(
      await sql(
        "SELECT count() AS n FROM system.parts WHERE database = 'sluice_pieces_test' AND table = 'events' AND active",
      ),
    ).toEqual([{ n: '1' }]);
    expect(await store.count()).toBe(1_300);
    const listed = await store.list({ limit: 2_000 });
    expect(listed.map((event) => event.id).sort()).toEqual(batch.map((event) => event.id).sort());
    expect(listed.find((event) => event.id === batch[777]!.id)).toEqual(batch[777]);
    await store.close();
  });

  it('takes a backlog from the bus in inserts of up to 100,000 rows: 25,000 events, one part', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'sluice-clickhouse-backlog-'));
    onTestFinished(() => rm(dataDir, { recursive: true, force: true }));
    const database = 'sluice_backlog_test';
    const config = sluiceConfigSchema.parse({
      dataDir,
      events: { sink: 'clickhouse', worker: false, clickhouse: { url: server.url, database } },
    });
    const pipeline = await openStorePipeline(config, { warn: () => {}, error: () => {} });
    try {
      // Written in one turn: the bus's first batch takes everything waiting, up to its most.
      for (let i = 0; i < 25_000; i++) pipeline.sink.write(sampleEvent(i));
      expect(await pipeline.wide.drain(60_000)).toBe(true);
      expect(await pipeline.store.count()).toBe(25_000);
      // Parts as inserted (level 0), merged away or not: one insert. Batches of 10,000 made three.
      expect(
        await sql(
          `SELECT count() AS n FROM system.parts WHERE database = '${database}' AND table = 'events' AND level = 0`,
        ),
      ).toEqual([{ n: '1' }]);
    } finally {
      await pipeline.sink.close();
    }
  });

  it('stores every column exactly: escapes, lengths, extremes of each number type, nulls, booleans', async () => {
    const store = clickhouseStore({ url: server.url, database: 'sluice_exact_columns_test' });
    await store.open();
    const events = [
      sampleEvent(1, {
        ...edgeValues,
        id: `id ${oddText}`,
        costUsd: 1.7976931348623157e308,
        requestBody: oddText,
      }),
      sampleEvent(2, {
        traceId: null,
        keyName: null,
        keyId: null,
        errorClass: null,
        timings: { totalMs: 0, firstTokenMs: null, upstreamMs: null },
        costUsd: null,
        tags: {},
      }),
    ];
    await store.insert(events, { firstDelivery: true });
    const listed = await store.list({ limit: 10 });
    expect(listed).toEqual([events[0], events[1]]);
    await store.close();
  });

  it('stores nothing of a batch whose body breaks off: a value it cannot encode in the third piece', async () => {
    const store = clickhouseStore({ url: server.url, database: 'sluice_broken_body_test' });
    await store.open();
    const batch = Array.from({ length: 1_300 }, (_, i) => sampleEvent(i));
    // Pieces of 512: the first two may be sent before the third fails to encode.
    batch[1_200] = sampleEvent(1_200, { status: 200.5 });
    await expect(store.insert(batch, { firstDelivery: true })).rejects.toThrowError(
      'column status must be a 32-bit integer',
    );
    expect(await sql('SELECT count() AS n FROM sluice_broken_body_test.events')).toEqual([{ n: '0' }]);
    batch[1_200] = sampleEvent(1_200);
    await store.insert(batch);
    expect(await sql('SELECT count() AS n FROM sluice_broken_body_test.events')).toEqual([{ n: '1300' }]);
    expect(await store.count()).toBe(1_300);
    await store.close();
  });

  it('finds stored ids holding quotes, backslashes, control characters and unicode', async () => {
    const store = clickhouseStore({ url: server.url, database: 'sluice_odd_ids_test' });
    await store.open();
    const ids = [
      "it's",
      'back\\slash',
      "\\'",
      'tab\there',
      'new\nline',
      'nul\u0000',
      'a,b',
      '[x]',
      '日本 🌊',
      '',
    ];
    const events = ids.map((id, i) => sampleEvent(i, { id }));
    await store.insert(events);
    await store.insert(events);
    const custom = ids.map((id, i) => sampleCustomEvent(i, { id }));
    await store.insertCustom(custom);
    await store.insertCustom(custom);
    // Rows, not uniqExact: the lookup itself must have skipped every stored id.
    expect(await sql('SELECT count() AS n FROM sluice_odd_ids_test.events')).toEqual([
      { n: String(ids.length) },
    ]);
    expect(await sql('SELECT count() AS n FROM sluice_odd_ids_test.custom_events')).toEqual([
      { n: String(ids.length) },
    ]);
    await store.close();
  });

  it('refuses a database name it cannot use as an identifier', () => {
    expect(() => clickhouseStore({ url: server.url, database: 'x; DROP TABLE y' })).toThrowError(
      'must be letters, digits and _',
    );
  });
});

describe('clickhouse event store staging', () => {
  it('stores staged events as insert does, in one insert: one part, every row exactly', async () => {
    const database = 'sluice_staged_test';
    const store = clickhouseStore({ url: server.url, database });
    const events = variedEvents(1300);
    // Staged before the store is open (the bus stages as events are written), in uneven parts.
    const stagings = [
      store.stage!(events.slice(0, 700)),
      store.stage!(events.slice(700, 1000)),
      store.stage!(events.slice(1000)),
    ];
    expect(stagings.map((staged) => staged.rows)).toEqual([700, 300, 300]);
    await store.open();
    onTestFinished(() => store.close());
    await store.insertStaged!(stagings, { firstDelivery: true });
    expect(await store.count()).toBe(1300);
    expect(await store.list({ limit: 2000 })).toEqual([...events].reverse());
    expect(
      await sql(
        `SELECT count() AS n FROM system.parts WHERE database = '${database}' AND table = 'events' AND level = 0`,
      ),
    ).toEqual([{ n: '1' }]);
  });

  it('stores nothing staged but a first delivery, which alone cannot hold stored ids', async () => {
    const store = clickhouseStore({ url: server.url, database: 'sluice_staged_retry_test' });
    await store.open();
    onTestFinished(() => store.close());
    const staged = store.stage!([sampleEvent(1), sampleEvent(2)]);
    await expect(store.insertStaged!([staged])).rejects.toThrow(StagedUnusable);
    await expect(store.insertStaged!([staged], { firstDelivery: false })).rejects.toThrow(StagedUnusable);
    expect(await store.count()).toBe(0);
    await store.insertStaged!([staged], { firstDelivery: true });
    expect(await store.count()).toBe(2);
  });

  it('stores a staged batch once when the server ran its insert but the answer was lost', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'sluice-clickhouse-lost-answer-'));
    onTestFinished(() => rm(dataDir, { recursive: true, force: true }));
    const database = 'sluice_lost_answer_test';
    let lost = 0;
    const proxy = await statementProxy(
      (statement) => statement.startsWith(`INSERT INTO ${database}.events `) && lost++ === 0,
    );
    onTestFinished(() => proxy.close());
    const config = sluiceConfigSchema.parse({
      dataDir,
      events: { sink: 'clickhouse', worker: false, clickhouse: { url: proxy.url, database } },
    });
    const pipeline = await openStorePipeline(config, { warn: () => {}, error: () => {} });
    try {
      for (let i = 0; i < 1300; i++) pipeline.sink.write(sampleEvent(i));
      expect(await pipeline.wide.drain(30_000)).toBe(true);
      // The staged blocks went once; the retry read the events back from the spool and found
      // every id stored, so it inserted nothing.
      const inserts = proxy.statements.filter((statement) =>
        statement.startsWith(`INSERT INTO ${database}.events `),
      );
      expect(inserts).toHaveLength(1);
      expect(
        proxy.statements.filter((statement) => firstWords(statement) === 'SELECT id').length,
      ).toBeGreaterThan(0);
      expect(pipeline.stats().failedBatches).toBe(1);
      expect(await sql(`SELECT count() AS n FROM ${database}.events`)).toEqual([{ n: '1300' }]);
    } finally {
      await pipeline.sink.close();
    }
  });
});
