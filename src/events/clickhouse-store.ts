import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import {
  type ClickHouseClient,
  ClickHouseLogLevel,
  type ClickHouseSettings,
  createClient,
} from '@clickhouse/client';
import { nativeBlock } from './clickhouse-native.js';
import { bindParameters, clickhouseQuery } from './clickhouse-query.js';
import type { CustomEvent } from './custom-event.js';
import {
  type CustomEventRow,
  customEventColumns,
  fromCustomRow,
  toCustomRow,
  uniqueCustomById,
} from './custom-event-columns.js';
import {
  clickhouseType,
  columnsAddedInVersion2,
  eventColumns,
  eventTimeMs,
  fromRow,
  timeRange,
  uniqueById,
} from './event-columns.js';
import type { EventReader } from './event-reader.js';
import { type EventStore, type InsertOptions, type StagedEvents, StagedUnusable } from './event-store.js';
import { type TimeWindow, timeWindows } from './time-windows.js';
import type { WideEvent } from './wide-event.js';

export interface ClickHouseStoreOptions {
  /** HTTP endpoint, e.g. http://127.0.0.1:8123. */
  url: string;
  database?: string;
  username?: string;
  password?: string;
}

/**
 * Rows per insert, and the most the bus hands the store at once. Each insert is one part, and
 * ClickHouse pays per part: 18.16 cost about 17 µs of server CPU a wide event in inserts of
 * 10,000 rows and 10 to 14 in inserts of 100,000 (pre-encoded bodies, 200,000 events); with
 * Sluice's side, about 27 against 11 to 19 (docs/benchmarks.md, "Event ingest"). ClickHouse's own
 * advice is inserts of tens of thousands of rows at most about once a second. The body is sent
 * a piece at a time (encoded as it goes, or staged), so a large insert holds no more than a piece
 * in memory beyond its events or their blocks.
 */
const INSERT_CHUNK = 100_000;

const COLUMN_LIST = eventColumns.map((col) => col.name).join(', ');

/** Schema changes in order; `open()` applies those newer than the highest recorded version. */
interface Migration {
  version: number;
  name: string;
  statement: string;
  /** A query answering 1 when the change is already there (a crash between applying and recording it). */
  appliedWhen?: string;
}

const version1Columns = eventColumns.filter((col) => !columnsAddedInVersion2.includes(col));

function migrations(db: string): Migration[] {
  return [
    {
      version: 1,
      name: 'create events',
      // ReplacingMergeTree collapses rows with the same sorting key within a partition; an id always
      // carries the same time, so (day, id) and the month partition are both fixed by the id.
      // `time` is derived for partitioning and range scans; 18.16 has no DateTime64.
      statement: `CREATE TABLE IF NOT EXISTS ${db}.events (
        ${version1Columns.map((col) => `${col.name} ${clickhouseType(col)}`).join(',\n        ')},
        time DateTime('UTC') MATERIALIZED toDateTime(intDiv(time_ms, 1000), 'UTC')
      ) ENGINE = ReplacingMergeTree
      PARTITION BY toYYYYMM(time)
      ORDER BY (toDate(time), id)`,
    },
    ...columnsAddedInVersion2.map((col, index) => ({
      version: 2 + index,
      name: `wide event v2: add ${col.name}`,
      // 18.16 has no ADD COLUMN IF NOT EXISTS: ask system.columns instead.
      statement: `ALTER TABLE ${db}.events ADD COLUMN ${col.name} ${clickhouseType(col)}`,
      appliedWhen: `SELECT count() AS n FROM system.columns
        WHERE database = ${quote(db)} AND table = 'events' AND name = ${quote(col.name)}`,
    })),
    {
      version: 2 + columnsAddedInVersion2.length,
      name: 'create custom_events',
      // Sorted by request id, so the custom events of one request (related) are an index lookup.
      // A sorting key cannot be Nullable in 18.16: "no request" is stored as ''.
      statement: `CREATE TABLE IF NOT EXISTS ${db}.custom_events (
        ${customEventColumns
          .map((col) => `${col.name} ${col.name === 'request_id' ? 'String' : clickhouseType(col)}`)
          .join(',\n        ')},
        time DateTime('UTC') MATERIALIZED toDateTime(intDiv(time_ms, 1000), 'UTC')
      ) ENGINE = ReplacingMergeTree
      PARTITION BY toYYYYMM(time)
      ORDER BY (request_id, id)`,
    },
  ];
}

const CUSTOM_COLUMN_LIST = customEventColumns.map((col) => col.name).join(', ');

function encodeCustom(row: CustomEventRow): Record<string, string | number | null> {
  return { ...row, request_id: row.request_id ?? '', admin: Number(row.admin) } as Record<
    string,
    string | number | null
  >;
}

/** Rows of one time window, by the partition key's `time` too, so whole partitions and days are skipped. */
function inWindow({ fromMs, toMs }: TimeWindow): string {
  return `time BETWEEN toDateTime(${Math.floor(fromMs / 1000)}, 'UTC') AND toDateTime(${Math.floor(toMs / 1000)}, 'UTC')
    AND time_ms BETWEEN ${fromMs} AND ${toMs}`;
}

/** A string literal for ClickHouse SQL (18.16 has no query parameters over HTTP). */
function quote(text: string): string {
  return `'${text.replaceAll('\\', '\\\\').replaceAll("'", "\\'")}'`;
}

function chunks<T>(items: readonly T[], size: number): T[][] {
  const result: T[][] = [];
  for (let start = 0; start < items.length; start += size) result.push(items.slice(start, start + size));
  return result;
}

const TSV_ESCAPES: Record<string, string> = {
  '\\': '\\\\',
  '\t': '\\t',
  '\n': '\\n',
  '\r': '\\r',
  '\0': '\\0',
};
const TSV_SPECIAL = /[\\\t\n\r\0]/;
const TSV_SPECIALS = /[\\\t\n\r\0]/g;

function tsvText(value: string): string {
  return TSV_SPECIAL.test(value) ? value.replace(TSV_SPECIALS, (ch) => TSV_ESCAPES[ch]!) : value;
}

/**
 * A lookup's ids as the body of a request carrying them as a temporary table `ids` (ClickHouse's
 * external data): one TabSeparated line per id. Sent as SQL, 18.16 evaluates each element of a
 * literal list `IN ('a', 'b', …)` on its own, about 20 µs of server CPU an id; as an array
 * literal 2 to 4 µs; as external data about 1, the cost of parsing TSV.
 */
function externalIds(ids: readonly string[]): { body: Buffer; contentType: string } {
  const boundary = `sluice-${randomUUID()}`;
  const lines = ids.map(tsvText).join('\n');
  return {
    body: Buffer.from(
      `--${boundary}\r\nContent-Disposition: form-data; name="ids"; filename="ids"\r\n\r\n${lines}\n\r\n--${boundary}--\r\n`,
    ),
    contentType: `multipart/form-data; boundary=${boundary}`,
  };
}

/**
 * Rows encoded per piece (one Native block) of an insert's body. Encoding is synchronous (about 3
 * µs an event in a loop on the benchmark machine, 6 to 8 in the store while the machine was
 * shared; TabSeparated took 17): 512 events hold the event loop for a few ms. Pieces of 2,048
 * cost no less CPU in an A/B (RowBinary, 30 November).
 */
const ROWS_PER_PIECE = 512;

/**
 * An insert's Native body, a block of `ROWS_PER_PIECE` rows at a time, encoded as the request
 * sends it: the server parses one block while the next is encoded (two cores work at once), and
 * the event loop is handed back between blocks, so the gateway's requests never wait for a whole
 * batch. The server gathers the blocks into one: the rows are still one insert, one part.
 *
 * A piece that cannot be encoded (a value of the wrong type) must not simply end the request:
 * 18.16 takes a body cut off at a row's (or a block's) end as a shorter body, and kept the rows
 * of the pieces already sent, committed after the client had seen the insert fail, so the
 * retry's lookup missed them. The body goes on with bytes no block can be read from instead,
 * and ends: the server refuses the insert whole. `broken` keeps the encoding's error for the
 * caller.
 */
async function* nativePieces(
  events: readonly WideEvent[],
  broken: { error?: unknown },
): AsyncGenerator<Buffer> {
  for (let start = 0; start < events.length; start += ROWS_PER_PIECE) {
    if (start > 0) await new Promise((resolve) => setImmediate(resolve));
    let piece: Buffer;
    try {
      piece = nativeBlock(events.slice(start, start + ROWS_PER_PIECE));
    } catch (error) {
      broken.error = error;
      yield UNREADABLE_BLOCK;
      return;
    }
    yield piece;
  }
}

/**
 * Wide events staged for ClickHouse: their rows, encoded as one Native block when they were
 * written. No ids are kept: a staging is only stored on its first delivery (see `insertStaged`).
 */
interface ClickHouseStaged extends StagedEvents {
  readonly block: Buffer;
}

/**
 * A block's head (every column, one row) whose first column's name announces 1 MiB of text
 * that never comes (LEB128 2^20).
 */
const UNREADABLE_BLOCK = Buffer.from([eventColumns.length, 1, 0x80, 0x80, 0x40]);

/**
 * Wide events in ClickHouse over HTTP. Exactly once by id takes two guards: an insert skips ids
 * already stored (so replays and retries do not bloat the table; a first delivery has none to
 * skip and is not checked), and reads collapse duplicates (FINAL, uniqExact) because two
 * gateways may still race the same id in before a merge dedupes it.
 */
export function clickhouseStore(options: ClickHouseStoreOptions): EventStore & EventReader {
  const database = options.database ?? 'sluice';
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(database)) {
    throw new Error(`clickhouse event store: database name "${database}" must be letters, digits and _`);
  }
  const events = `${database}.events`;
  const customEvents = `${database}.custom_events`;
  let client: ClickHouseClient | undefined;
  // The analytics job and the bus may both open the store at start: share one migration run.
  let opening: Promise<void> | undefined;
  // Inserts run in turn, so two overlapping batches from this process never both pass the id check.
  let writes: Promise<unknown> = Promise.resolve();

  const connected = (): ClickHouseClient => {
    if (!client) throw new Error(`clickhouse event store ${options.url}: call open() first`);
    return client;
  };

  async function rows<T>(query: string): Promise<T[]> {
    const result = await connected().query({ query, format: 'JSONEachRow' });
    return result.json<T>();
  }

  /** Of `ids`, those `table` holds (where `filter` says to look); one query whatever their number. */
  async function storedIds(ids: readonly string[], table: string, filter = ''): Promise<Set<string>> {
    const stored = new Set<string>();
    if (ids.length === 0) return stored;
    const { body, contentType } = externalIds(ids);
    const result = await connected().exec({
      query: `SELECT id FROM ${table} WHERE ${filter}id IN ids FORMAT JSONEachRow`,
      values: Readable.from([body], { objectMode: false }),
      // Not settings: the URL parameters that declare the external table.
      clickhouse_settings: { ids_structure: 'id String', ids_format: 'TabSeparated' } as ClickHouseSettings,
      http_headers: { 'Content-Type': contentType },
    });
    const parts: Buffer[] = [];
    for await (const part of result.stream) parts.push(part as Buffer);
    for (const line of Buffer.concat(parts).toString().split('\n')) {
      if (line !== '') stored.add((JSON.parse(line) as { id: string }).id);
    }
    return stored;
  }

  /**
   * Ids of the batch already stored. An id always carries the same time, so each lookup is
   * limited to one of the batch's time windows: ClickHouse then reads only the partitions and
   * index granules of those days (the sorting key starts with the day) instead of every part.
   */
  async function storedEventIds(batch: readonly WideEvent[], times: readonly number[]): Promise<Set<string>> {
    const stored = new Set<string>();
    for (const window of timeWindows(times)) {
      const ids: string[] = [];
      for (let i = 0; i < batch.length; i++) {
        if (times[i]! >= window.fromMs && times[i]! <= window.toMs) ids.push(batch[i]!.id);
      }
      for (const id of await storedIds(ids, events, `${inWindow(window)} AND `)) stored.add(id);
    }
    return stored;
  }

  /** One insert of wide events, its Native body sent a block at a time: one part. */
  async function insertBlocks(
    blocks: Iterable<Buffer> | AsyncIterable<Buffer>,
    broken: { error?: unknown } = {},
  ) {
    try {
      // exec, not insert: the client's insert() does not offer Native.
      const result = await connected().exec({
        query: `INSERT INTO ${events} (${COLUMN_LIST}) FORMAT Native`,
        values: Readable.from(blocks, { objectMode: false }),
      });
      result.stream.resume(); // an insert answers with an empty body: read it to free the socket
      await finished(result.stream);
    } catch (error) {
      // The server's "cannot read" says less than what could not be encoded.
      throw broken.error ?? error;
    }
    if (broken.error !== undefined) throw broken.error;
  }

  async function migrate(): Promise<void> {
    const db = connected();
    await db.command({ query: `CREATE DATABASE IF NOT EXISTS ${database}` });
    await db.command({
      query: `CREATE TABLE IF NOT EXISTS ${database}.sluice_migrations (
        version UInt32, name String, applied_at DateTime
      ) ENGINE = MergeTree ORDER BY version`,
    });
    const [applied] = await rows<{ version: number }>(
      `SELECT max(version) AS version FROM ${database}.sluice_migrations`,
    );
    const current = Number(applied?.version ?? 0);
    for (const migration of migrations(database)) {
      if (migration.version <= current) continue;
      const [present] = migration.appliedWhen ? await rows<{ n: string }>(migration.appliedWhen) : [];
      if (Number(present?.n ?? 0) === 0) await db.command({ query: migration.statement });
      await db.command({
        query: `INSERT INTO ${database}.sluice_migrations (version, name, applied_at)
          VALUES (${migration.version}, ${quote(migration.name)}, now())`,
      });
    }
  }

  return {
    name: 'clickhouse',
    maxBatchEvents: INSERT_CHUNK,

    open() {
      opening ??= (async () => {
        client ??= createClient({
          url: options.url,
          username: options.username ?? 'default',
          password: options.password ?? '',
          // Plain bodies: batches are a few MB on a local network; gzip can come with a WAN deployment.
          compression: { request: false, response: false },
          // Failures reach the caller as errors (and the bus logs them); no second copy on stderr.
          log: { level: ClickHouseLogLevel.OFF },
        });
        await migrate();
      })().catch((error: unknown) => {
        opening = undefined;
        throw error;
      });
      return opening;
    },

    insert(batch: readonly WideEvent[], options?: InsertOptions) {
      const run = writes.then(async () => {
        if (batch.length === 0) return;
        let fresh: readonly WideEvent[];
        if (options?.firstDelivery) {
          // Ids the gateway made, each once and none stored yet: no lookup (a query, and its
          // server CPU), and no pass for repeats either (2 µs an event in a Set of 10,000).
          fresh = batch;
        } else {
          const unique = uniqueById(batch);
          const stored = await storedEventIds(unique, unique.map(eventTimeMs));
          fresh = stored.size === 0 ? unique : unique.filter((event) => !stored.has(event.id));
        }
        for (const chunk of chunks(fresh, INSERT_CHUNK)) {
          const broken: { error?: unknown } = {};
          await insertBlocks(nativePieces(chunk, broken), broken);
        }
      });
      writes = run.catch(() => undefined);
      return run;
    },

    // Encoded as they are written, 512 at a time (the bus's stagings), so the events die young:
    // held until their batch (up to 2 s), they were copied into the old generation and collected
    // there, which cost the event worker more than the encoding (docs/benchmarks.md). An
    // insert then only sends the blocks. Events the bus writes come from the gateway, with ids
    // it made once each, so a staging needs no pass for repeated ids.
    stage: (batch: readonly WideEvent[]): ClickHouseStaged => ({
      rows: batch.length,
      block: nativeBlock(batch),
    }),

    insertStaged(staged: readonly StagedEvents[], options?: InsertOptions) {
      const run = writes.then(async () => {
        // A retry or a replay may find some of its rows stored already, and a block keeps no ids
        // to look up: the bus reads those events back from the spool and inserts them, checked.
        if (!options?.firstDelivery)
          throw new StagedUnusable('not a first delivery: the ids must be checked');
        if (staged.length > 0)
          await insertBlocks((staged as readonly ClickHouseStaged[]).map((batch) => batch.block));
      });
      writes = run.catch(() => undefined);
      return run;
    },

    insertCustom(batch: readonly CustomEvent[]) {
      const run = writes.then(async () => {
        if (batch.length === 0) return;
        const unique = uniqueCustomById(batch);
        const stored = await storedIds(
          unique.map((event) => event.id),
          customEvents,
        );
        const fresh = unique.filter((event) => !stored.has(event.id));
        for (const chunk of chunks(fresh, INSERT_CHUNK)) {
          await connected().insert({
            table: customEvents,
            columns: customEventColumns.map((col) => col.name) as [string, ...string[]],
            values: chunk.map((event) => encodeCustom(toCustomRow(event))),
            format: 'JSONEachRow',
          });
        }
      });
      writes = run.catch(() => undefined);
      return run;
    },

    async related(requestId: string) {
      if (requestId === '') return [];
      // LIMIT 1 BY id: two gateways may have raced the same id in before a merge collapsed it.
      const found = await rows<Record<string, unknown>>(
        `SELECT ${CUSTOM_COLUMN_LIST} FROM ${customEvents}
         WHERE request_id = ${quote(requestId)}
         ORDER BY time_ms, id LIMIT 1 BY id`,
      );
      return found.map(fromCustomRow);
    },

    async countCustom() {
      const [result] = await rows<{ n: string }>(`SELECT uniqExact(id) AS n FROM ${customEvents}`);
      return Number(result?.n ?? 0);
    },

    async list(query) {
      const { fromMs, toMs } = timeRange(query);
      const where = [
        ...(fromMs === undefined ? [] : [`time_ms >= ${fromMs}`]),
        ...(toMs === undefined ? [] : [`time_ms < ${toMs}`]),
      ];
      const limit = Math.max(0, Math.trunc(query.limit));
      const found = await rows<Record<string, unknown>>(
        `SELECT ${COLUMN_LIST} FROM ${events} FINAL
         ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''}
         ORDER BY time_ms DESC, id DESC LIMIT ${limit}`,
      );
      return found.map(fromRow);
    },

    engine: 'clickhouse',
    database,

    query: (statement, limits) => clickhouseQuery(connected(), statement, limits),

    async execute(statements) {
      for (const statement of statements) {
        const params = statement.params ?? {};
        const query = Object.keys(params).length > 0 ? bindParameters(statement.sql, params) : statement.sql;
        await connected().command({ query });
      }
    },

    async count() {
      const [result] = await rows<{ n: string }>(`SELECT uniqExact(id) AS n FROM ${events}`);
      return Number(result?.n ?? 0);
    },

    async close() {
      await writes;
      const closing = client;
      client = undefined;
      opening = undefined;
      await closing?.close();
    },
  };
}
