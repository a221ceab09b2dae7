import {
  type DuckDBConnection,
  type DuckDBDataChunk,
  DuckDBInstance,
  type DuckDBValue,
} from '@duckdb/node-api';
import type { CustomEvent } from './custom-event.js';
import {
  type CustomEventRow,
  customEventColumns,
  fromCustomRow,
  toCustomRow,
  uniqueCustomById,
} from './custom-event-columns.js';
import {
  appendChunks,
  appendInChunks,
  fillChunks,
  fillChunksNow,
  recycleChunks,
} from './duckdb-chunk-writer.js';
import { duckdbQuery } from './duckdb-query.js';
import {
  columnsAddedInVersion2,
  duckdbType,
  eventColumnReaders,
  eventColumns,
  eventTimeMs,
  fromRow,
  timeRange,
  uniqueById,
} from './event-columns.js';
import type { EventReader } from './event-reader.js';
import { type EventStore, type StagedEvents, StagedUnusable } from './event-store.js';
import { type TimeWindow, timeWindows } from './time-windows.js';
import type { WideEvent } from './wide-event.js';

export interface DuckDBStoreOptions {
  /** A file under the data dir, or `:memory:` (tests). */
  path: string;
  /**
   * DuckDB's `memory_limit` (e.g. "1GiB"). Without one DuckDB allows itself 80% of the machine's
   * memory and keeps its file's blocks cached while it has room: 2 million events stored in a row
   * took the process from 400 to 780 MB resident, still growing.
   */
  memoryLimit?: string;
}

/** Wide events staged for DuckDB: their data chunks, filled, and what the id lookup needs. */
interface DuckDBStaged extends StagedEvents {
  readonly ids: readonly string[];
  readonly times: readonly number[];
  readonly chunks: readonly DuckDBDataChunk[];
}

const COLUMN_LIST = eventColumns.map((col) => col.name).join(', ');

const EVENTS_TABLE = (name: string) => `CREATE TABLE IF NOT EXISTS ${name} (
  ${eventColumns.map((col) => `${col.name} ${duckdbType(col)}`).join(',\n  ')}
)`;

/** Schema changes in order; `open()` applies those newer than the highest recorded version. */
interface Migration {
  version: number;
  name: string;
  /** Idempotent statements, run in one transaction with the record of the migration. */
  statements: (db: DuckDBConnection) => Promise<string[]>;
}

const migrations: Migration[] = [
  { version: 1, name: 'create events', statements: async () => [EVENTS_TABLE('events')] },
  {
    version: 2,
    name: 'wide event v2 columns',
    statements: async () =>
      columnsAddedInVersion2.map(
        (col) => `ALTER TABLE events ADD COLUMN IF NOT EXISTS ${col.name} ${duckdbType(col)}`,
      ),
  },
  {
    // A primary key costs an index lookup and insert per row (20–45 µs a wide event); exactly
    // once by id is kept by the insert instead. DuckDB cannot drop a constraint: the table is
    // rebuilt, in time order so the zone maps on time_ms stay tight.
    version: 3,
    name: 'events without a primary key',
    statements: async (db) => {
      const reader = await db.runAndReadAll(
        `SELECT count(*) AS n FROM duckdb_constraints()
         WHERE schema_name = 'main' AND table_name = 'events' AND constraint_type = 'PRIMARY KEY'`,
      );
      if (Number(reader.getRowObjectsJS()[0]?.n ?? 0) === 0) return [];
      return [
        'DROP TABLE IF EXISTS events_rebuild',
        EVENTS_TABLE('events_rebuild'),
        `INSERT INTO events_rebuild (${COLUMN_LIST}) SELECT ${COLUMN_LIST} FROM events ORDER BY time_ms`,
        'DROP TABLE events',
        'ALTER TABLE events_rebuild RENAME TO events',
      ];
    },
  },
];

async function migrate(db: DuckDBConnection): Promise<void> {
  await db.run(`CREATE TABLE IF NOT EXISTS sluice_migrations (
    version INTEGER PRIMARY KEY, name VARCHAR NOT NULL, applied_ms BIGINT NOT NULL
  )`);
  const reader = await db.runAndReadAll('SELECT max(version) AS version FROM sluice_migrations');
  const current = Number(reader.getRowObjectsJS()[0]?.version ?? 0);
  for (const migration of migrations) {
    if (migration.version <= current) continue;
    await db.run('BEGIN TRANSACTION');
    try {
      for (const statement of await migration.statements(db)) await db.run(statement);
      await db.run('INSERT INTO sluice_migrations VALUES ($version, $name, $at)', {
        version: migration.version,
        name: migration.name,
        at: BigInt(Date.now()),
      });
      await db.run('COMMIT');
    } catch (error) {
      await db.run('ROLLBACK');
      throw error;
    }
  }
}

/**
 * The ids of `batch` already in `events`. An id always carries the same time (the spool replays
 * the event as written), so the lookup only reads stored rows in the batch's time windows: the
 * zone maps on time_ms skip every other row group, which is what makes this cheaper than a
 * primary key. Run inside the insert's transaction, the only writer, so nothing can slip in between.
 */
async function storedIds(
  db: DuckDBConnection,
  ids: readonly string[],
  windows: readonly TimeWindow[],
): Promise<Set<string>> {
  // Integers computed here, inlined so the planner can prune row groups with them.
  const lookups = windows.map(
    ({ fromMs, toMs }) =>
      `SELECT id FROM events WHERE time_ms BETWEEN ${fromMs} AND ${toMs} AND id IN (SELECT unnest(from_json($ids, '["VARCHAR"]')))`,
  );
  // The ids as one JSON text: DuckDB parses it for about a third of what binding a list of
  // 10,000 values costs (about 1 µs an id against 4).
  const reader = await db.runAndReadAll(lookups.join(' UNION ALL '), { ids: JSON.stringify(ids) });
  const stored = new Set<string>();
  for (const [id] of reader.getRowsJS()) stored.add(id as string);
  return stored;
}

/** The latest `time_ms` stored, or -Infinity when `events` is empty. */
async function newestStoredMs(db: DuckDBConnection): Promise<number> {
  const reader = await db.runAndReadAll('SELECT max(time_ms) AS newest FROM events');
  const newest = reader.getRowObjectsJS()[0]?.newest;
  return newest === null || newest === undefined ? Number.NEGATIVE_INFINITY : Number(newest);
}

const CUSTOM_COLUMN_LIST = customEventColumns.map((col) => col.name).join(', ');

const CREATE_CUSTOM_EVENTS = `CREATE TABLE IF NOT EXISTS custom_events (
  ${customEventColumns.map((col) => `${col.name} ${duckdbType(col)}`).join(',\n  ')},
  PRIMARY KEY (id)
)`;

const customRowColumns = customEventColumns.map((col) => ({
  kind: col.kind,
  value: (row: CustomEventRow) => row[col.name],
}));

const CREATE_CUSTOM_STAGING = `CREATE TEMP TABLE IF NOT EXISTS custom_events_staging AS SELECT * FROM custom_events LIMIT 0`;

/** Custom events take the same path as wide events: appended to staging, then INSERT OR IGNORE. */
async function insertCustomEvents(db: DuckDBConnection, events: readonly CustomEvent[]): Promise<void> {
  const rows: CustomEventRow[] = uniqueCustomById(events).map(toCustomRow);
  await db.run('DELETE FROM custom_events_staging');
  const appender = await db.createAppender('custom_events_staging', 'main', 'temp');
  try {
    await appendInChunks(appender, customRowColumns, rows);
  } finally {
    appender.closeSync();
  }
  await db.run(
    `INSERT OR IGNORE INTO custom_events (${CUSTOM_COLUMN_LIST}) SELECT ${CUSTOM_COLUMN_LIST} FROM custom_events_staging`,
  );
  await db.run('DELETE FROM custom_events_staging');
}

/**
 * How much WAL DuckDB lets grow before it checkpoints (compresses what was appended into the
 * file). Its default, 16 MiB, is about 15,000 wide events: every checkpoint then also rewrote
 * what the previous ones had written, and commit plus checkpoint cost 32 µs of CPU per event
 * over 200,000 events in batches of 10,000, against 13 to 15 at 128 or 256 MiB
 * (docs/benchmarks.md, "Event ingest"). The price: up to 128 MiB of WAL on disk, replayed when
 * the store opens after a crash, and the rows not yet checkpointed held in DuckDB's buffer pool.
 */
const CHECKPOINT_THRESHOLD = '128MiB';

/**
 * Reads that may run at once, each on its own connection: a console page sends several queries
 * together, and one waiting for another only adds their times. DuckDB runs each on its own
 * threads too, so more than a few at once only share the same cores.
 */
const PARALLEL_READS = 4;

/**
 * Wide events in an embedded DuckDB file. Writes (inserts, rollups, retention) share one
 * connection and run in turn; analytics reads (`query`) run beside them and beside each other,
 * up to PARALLEL_READS at once, each on a connection of its own that sees the last committed
 * data (DuckDB's MVCC). Closing waits for reads in flight.
 */
export function duckdbStore(options: DuckDBStoreOptions): EventStore & EventReader {
  let instance: DuckDBInstance | undefined;
  let connection: DuckDBConnection | undefined;
  // One connection runs one statement at a time, and an insert is several statements in one
  // transaction: chain every write so none interleaves with another.
  let queue: Promise<unknown> = Promise.resolve();
  const inTurn = <T>(task: () => Promise<T>): Promise<T> => {
    const run = queue.then(task, task);
    queue = run.catch(() => undefined);
    return run;
  };
  const connected = (): DuckDBConnection => {
    if (!connection) throw new Error(`duckdb event store ${options.path}: call open() first`);
    return connection;
  };
  // No stored event is later than this (an upper bound; undefined: read it at the next insert).
  // An id always carries the same time, so an event later than every stored one cannot be
  // stored already: only the others need the id lookup. A gateway's events arrive in about
  // time order, so most batches skip the lookup (3 to 5 µs of CPU an event) or look up a few
  // ids of long requests. Anything that may write `events` other than `insert` (retention's
  // deletes, a statement through `execute` or a read that is not read-only) forgets it.
  let newestMs: number | undefined;
  // The last open() or close() asked for: reads wait for it, not for writes.
  let lifecycle: Promise<unknown> = Promise.resolve();
  const changing = (task: () => Promise<void>): Promise<void> => {
    const run = inTurn(task);
    lifecycle = run.catch(() => undefined);
    return run;
  };
  // Reads in flight, and those waiting for a slot, in arrival order.
  const reading = new Set<Promise<unknown>>();
  const waiting: (() => void)[] = [];
  let running = 0;
  const slot = async (): Promise<void> => {
    if (running < PARALLEL_READS) {
      running++;
      return;
    }
    // The slot is handed over by the read that ends, so `running` stays counted.
    await new Promise<void>((resolve) => waiting.push(resolve));
  };
  const release = (): void => {
    const next = waiting.shift();
    if (next) next();
    else running--;
  };
  const read = <T>(task: (db: DuckDBInstance) => Promise<T>): Promise<T> => {
    const run = (async () => {
      // Behind an open() or close() already asked for: a read never sees a half-opened store.
      await lifecycle;
      await slot();
      try {
        if (!instance) throw new Error(`duckdb event store ${options.path}: call open() first`);
        return await task(instance);
      } finally {
        release();
      }
    })();
    reading.add(run);
    void run.then(
      () => reading.delete(run),
      () => reading.delete(run),
    );
    return run;
  };

  /**
   * Appends what `fill` gives (the rows of `ids`, at `times`) to `events` in one transaction with
   * the lookup of the ids that may be stored already; when some are, appends `refill(stored)`
   * instead. Call in turn.
   */
  const appendInTransaction = async (
    ids: readonly string[],
    times: readonly number[],
    fill: () => Promise<DuckDBDataChunk[]>,
    refill: (stored: Set<string>) => Promise<DuckDBDataChunk[]>,
  ): Promise<void> => {
    const db = connected();
    await db.run('BEGIN TRANSACTION');
    try {
      const newest = newestMs ?? (await newestStoredMs(db));
      const candidateIds: string[] = [];
      const candidateTimes: number[] = [];
      let latest = newest;
      for (let i = 0; i < ids.length; i++) {
        const time = times[i]!;
        if (time > latest) latest = time;
        if (time > newest) continue;
        candidateIds.push(ids[i]!);
        candidateTimes.push(time);
      }
      // The lookup runs on a DuckDB thread while this one fills the batch's data chunks: on
      // two cores the two overlap.
      const lookup =
        candidateIds.length === 0
          ? Promise.resolve(new Set<string>())
          : storedIds(db, candidateIds, timeWindows(candidateTimes));
      const filled = fill();
      // Both settle before the transaction goes on or rolls back (a failed fill must not
      // leave the lookup running on the connection).
      await Promise.allSettled([lookup, filled]);
      const stored = await lookup;
      const chunks = stored.size === 0 ? await filled : await refill(stored);
      if (chunks.length > 0) {
        const appender = await db.createAppender('events');
        try {
          await appendChunks(appender, chunks);
        } finally {
          appender.closeSync();
        }
      }
      await db.run('COMMIT');
      newestMs = latest;
      // Committed: nobody stores these chunks again (a batch that failed could be retried with
      // its staged chunks, so only now), and the next stagings can fill them.
      recycleChunks(eventColumnReaders, chunks);
    } catch (error) {
      await db.run('ROLLBACK');
      throw error;
    }
  };

  return {
    name: 'duckdb',

    open: () =>
      changing(async () => {
        if (connection) return;
        newestMs = undefined;
        instance = await DuckDBInstance.create(options.path, {
          checkpoint_threshold: CHECKPOINT_THRESHOLD,
          ...(options.memoryLimit !== undefined && { memory_limit: options.memoryLimit }),
        });
        connection = await instance.connect();
        await migrate(connection);
        await connection.run(CREATE_CUSTOM_EVENTS);
        await connection.run(CREATE_CUSTOM_STAGING);
      }),

    // Appended straight into `events`, in one transaction with the lookup of ids already stored:
    // a batch is stored whole or not at all, each id once. (A staging table and an INSERT … SELECT
    // copied every row twice and cost two more row-group allocations per batch.)
    insert: (events: readonly WideEvent[]) =>
      inTurn(async () => {
        if (events.length === 0) return;
        const unique = uniqueById(events);
        const ids = unique.map((event) => event.id);
        const times = unique.map(eventTimeMs);
        await appendInTransaction(
          ids,
          times,
          () => fillChunks(eventColumnReaders, unique),
          (stored) =>
            // Chunks are filled again only when some ids were stored (a replay), the rare case.
            fillChunks(
              eventColumnReaders,
              unique.filter((event) => !stored.has(event.id)),
            ),
        );
      }),

    stage: (events: readonly WideEvent[]): DuckDBStaged => {
      const unique = uniqueById(events);
      return {
        rows: unique.length,
        ids: unique.map((event) => event.id),
        times: unique.map(eventTimeMs),
        chunks: fillChunksNow(eventColumnReaders, unique),
      };
    },

    insertStaged: (staged) =>
      inTurn(async () => {
        const batches = staged as readonly DuckDBStaged[];
        const ids: string[] = [];
        const times: number[] = [];
        const chunks: DuckDBDataChunk[] = [];
        for (const batch of batches) {
          for (let i = 0; i < batch.ids.length; i++) {
            ids.push(batch.ids[i]!);
            times.push(batch.times[i]!);
          }
          for (const chunk of batch.chunks) chunks.push(chunk);
        }
        if (ids.length === 0) return;
        // Each batch staged its ids once; the same id in two of them cannot be appended twice.
        if (new Set(ids).size !== ids.length) throw new StagedUnusable('an id is staged twice');
        await appendInTransaction(
          ids,
          times,
          async () => chunks,
          () => {
            throw new StagedUnusable('some staged events are stored already');
          },
        );
      }),

    insertCustom: (events) =>
      inTurn(async () => {
        if (events.length > 0) await insertCustomEvents(connected(), events);
      }),

    related: (requestId) =>
      inTurn(async () => {
        const reader = await connected().runAndReadAll(
          `SELECT ${CUSTOM_COLUMN_LIST} FROM custom_events WHERE request_id = $requestId ORDER BY time_ms, id`,
          { requestId },
        );
        return reader.getRowObjectsJS().map(fromCustomRow);
      }),

    countCustom: () =>
      inTurn(async () => {
        const reader = await connected().runAndReadAll('SELECT count(*) AS n FROM custom_events');
        return Number(reader.getRowObjectsJS()[0]?.n ?? 0);
      }),

    list: (query) =>
      inTurn(async () => {
        const { fromMs, toMs } = timeRange(query);
        const where: string[] = [];
        const values: Record<string, bigint | number> = { limit: query.limit };
        if (fromMs !== undefined) {
          where.push('time_ms >= $from');
          values.from = BigInt(fromMs);
        }
        if (toMs !== undefined) {
          where.push('time_ms < $to');
          values.to = BigInt(toMs);
        }
        const reader = await connected().runAndReadAll(
          `SELECT ${COLUMN_LIST} FROM events
           ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''}
           ORDER BY time_ms DESC, id DESC LIMIT $limit`,
          values,
        );
        return reader.getRowObjectsJS().map(fromRow);
      }),

    engine: 'duckdb',

    // Each read gets its own connection, so a timeout's interrupt can only cancel that read.
    query: (statement, limits) =>
      read(async (db) => {
        const reads = await db.connect();
        if (!limits.readOnly) newestMs = undefined;
        try {
          return await duckdbQuery(reads, statement, limits);
        } finally {
          reads.closeSync();
          if (!limits.readOnly) newestMs = undefined;
        }
      }),

    execute: (statements) =>
      inTurn(async () => {
        const db = connected();
        newestMs = undefined;
        await db.run('BEGIN TRANSACTION');
        try {
          for (const statement of statements) {
            await db.run(statement.sql, statement.params as Record<string, DuckDBValue> | undefined);
          }
          await db.run('COMMIT');
        } catch (error) {
          await db.run('ROLLBACK');
          throw error;
        }
      }),

    count: () =>
      inTurn(async () => {
        const reader = await connected().runAndReadAll('SELECT count(*) AS n FROM events');
        return Number(reader.getRowObjectsJS()[0]?.n ?? 0);
      }),

    close: () => {
      // Reads asked for before the close finish first; those asked after it fail as on a closed store.
      const inFlight = [...reading];
      return changing(async () => {
        await Promise.allSettled(inFlight);
        connection?.closeSync();
        instance?.closeSync();
        connection = undefined;
        instance = undefined;
      });
    },
  };
}
