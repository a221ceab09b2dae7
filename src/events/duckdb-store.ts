import {
  type DuckDBAppender,
  type DuckDBConnection,
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
import { duckdbQuery } from './duckdb-query.js';
import {
  columnsAddedInVersion2,
  duckdbType,
  type EventColumn,
  type EventRowValue,
  eventColumns,
  fromRow,
  timeRange,
  toRow,
  uniqueById,
} from './event-columns.js';
import type { EventReader } from './event-reader.js';
import type { EventStore } from './event-store.js';
import type { WideEvent } from './wide-event.js';

export interface DuckDBStoreOptions {
  /** A file under the data dir, or `:memory:` (tests). */
  path: string;
}

const COLUMN_LIST = eventColumns.map((col) => col.name).join(', ');

const CREATE_EVENTS = `CREATE TABLE IF NOT EXISTS events (
  ${eventColumns.map((col) => `${col.name} ${duckdbType(col)}`).join(',\n  ')},
  PRIMARY KEY (id)
)`;

// Batches go through an unconstrained temp table: the appender is the fast path into DuckDB, but it
// fails a whole batch on a duplicate key, while INSERT OR IGNORE from the staging table skips them.
const CREATE_STAGING = `CREATE TEMP TABLE IF NOT EXISTS events_staging AS SELECT * FROM events LIMIT 0`;

function appendValue(appender: DuckDBAppender, kind: EventColumn['kind'], value: EventRowValue) {
  if (value === null) return appender.appendNull();
  switch (kind) {
    case 'string':
      return appender.appendVarchar(value as string);
    case 'int':
      return appender.appendInteger(value as number);
    case 'bigint':
      return appender.appendBigInt(BigInt(value as number));
    case 'float':
      return appender.appendDouble(value as number);
    case 'bool':
      return appender.appendBoolean(value as boolean);
  }
}

const CUSTOM_COLUMN_LIST = customEventColumns.map((col) => col.name).join(', ');

const CREATE_CUSTOM_EVENTS = `CREATE TABLE IF NOT EXISTS custom_events (
  ${customEventColumns.map((col) => `${col.name} ${duckdbType(col)}`).join(',\n  ')},
  PRIMARY KEY (id)
)`;

const CREATE_CUSTOM_STAGING = `CREATE TEMP TABLE IF NOT EXISTS custom_events_staging AS SELECT * FROM custom_events LIMIT 0`;

/** Custom events take the same path as wide events: appended to staging, then INSERT OR IGNORE. */
async function insertCustomEvents(db: DuckDBConnection, events: readonly CustomEvent[]): Promise<void> {
  const rows: CustomEventRow[] = uniqueCustomById(events).map(toCustomRow);
  await db.run('DELETE FROM custom_events_staging');
  const appender = await db.createAppender('custom_events_staging', 'main', 'temp');
  try {
    for (const row of rows) {
      for (const col of customEventColumns) appendValue(appender, col.kind, row[col.name]);
      appender.endRow();
    }
    appender.flushSync();
  } finally {
    appender.closeSync();
  }
  await db.run(
    `INSERT OR IGNORE INTO custom_events (${CUSTOM_COLUMN_LIST}) SELECT ${CUSTOM_COLUMN_LIST} FROM custom_events_staging`,
  );
  await db.run('DELETE FROM custom_events_staging');
}

/** Wide events in an embedded DuckDB file: one connection, every operation on it run in turn. */
export function duckdbStore(options: DuckDBStoreOptions): EventStore & EventReader {
  let instance: DuckDBInstance | undefined;
  let connection: DuckDBConnection | undefined;
  // One connection runs one statement at a time, and an insert is several statements on the
  // shared staging table: chain every operation so none interleaves with another.
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

  return {
    name: 'duckdb',

    open: () =>
      inTurn(async () => {
        if (connection) return;
        instance = await DuckDBInstance.create(options.path);
        connection = await instance.connect();
        await connection.run(CREATE_EVENTS);
        // A file written by schema version 1 lacks the columns version 2 added.
        for (const col of columnsAddedInVersion2) {
          await connection.run(`ALTER TABLE events ADD COLUMN IF NOT EXISTS ${col.name} ${duckdbType(col)}`);
        }
        await connection.run(CREATE_STAGING);
        await connection.run(CREATE_CUSTOM_EVENTS);
        await connection.run(CREATE_CUSTOM_STAGING);
      }),

    insert: (events: readonly WideEvent[]) =>
      inTurn(async () => {
        if (events.length === 0) return;
        const db = connected();
        const rows = uniqueById(events).map(toRow);
        await db.run('DELETE FROM events_staging');
        const appender = await db.createAppender('events_staging', 'main', 'temp');
        try {
          for (const row of rows) {
            for (const col of eventColumns) appendValue(appender, col.kind, row[col.name]);
            appender.endRow();
          }
          appender.flushSync();
        } finally {
          appender.closeSync();
        }
        await db.run(
          `INSERT OR IGNORE INTO events (${COLUMN_LIST}) SELECT ${COLUMN_LIST} FROM events_staging`,
        );
        await db.run('DELETE FROM events_staging');
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

    // Each read gets its own connection, so a timeout's interrupt can only cancel that read; it
    // still runs in turn, so closing the store never races a read in flight.
    query: (statement, limits) =>
      inTurn(async () => {
        if (!instance) throw new Error(`duckdb event store ${options.path}: call open() first`);
        const reads = await instance.connect();
        try {
          return await duckdbQuery(reads, statement, limits);
        } finally {
          reads.closeSync();
        }
      }),

    execute: (statements) =>
      inTurn(async () => {
        const db = connected();
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

    close: () =>
      inTurn(async () => {
        connection?.closeSync();
        instance?.closeSync();
        connection = undefined;
        instance = undefined;
      }),
  };
}
