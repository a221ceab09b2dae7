import {
  type DuckDBAppender,
  DuckDBBigIntType,
  DuckDBBooleanType,
  DuckDBDataChunk,
  DuckDBDoubleType,
  DuckDBIntegerType,
  type DuckDBType,
  DuckDBVarCharType,
} from '@duckdb/node-api';
import duckdb from '@duckdb/node-bindings';
import type { ColumnKind, EventRowValue } from './event-columns.js';

/** A column as the writer sees it: its kind, and how to read its value from an event. */
export interface ChunkColumn<E> {
  readonly kind: ColumnKind;
  readonly value: (event: E) => EventRowValue;
}

const TYPES: Record<ColumnKind, DuckDBType> = {
  string: DuckDBVarCharType.instance,
  int: DuckDBIntegerType.instance,
  bigint: DuckDBBigIntType.instance,
  float: DuckDBDoubleType.instance,
  bool: DuckDBBooleanType.instance,
};

/** Bytes per value in a vector: strings are DuckDB's 16-byte `string_t`. */
const WIDTH: Record<ColumnKind, number> = { string: 16, int: 4, bigint: 8, float: 8, bool: 1 };

/**
 * Rows filled per data chunk (DuckDB's vectors hold up to 2048). Filling is synchronous: 512
 * wide events take a few ms of the event loop, then it is handed back.
 */
const ROWS_PER_CHUNK = 512;
/**
 * Rows appended between flushes. A flush moves the appender's chunks into the table, also
 * synchronously, and costs a few ms however few rows it moves: one per 2048 rows (DuckDB's
 * vector size) keeps that fixed cost small without holding the loop for long.
 */
const ROWS_PER_FLUSH = 2048;
/** A `string_t` of up to 12 bytes holds them inline, after its length: no heap, no native call. */
const INLINE_BYTES = 12;

/**
 * Fills data chunks of `ROWS_PER_CHUNK` events, column by column. Why: the row appender makes a
 * native call per value (46 per wide event), and most of an insert's time went there. Here each
 * column is read straight from the events into a buffer laid out as DuckDB's vector (numbers as
 * typed arrays, short ASCII strings inline in their 16-byte `string_t`, as DuckDB stores them)
 * and copied in one call, with its validity mask; only strings longer than 12 bytes (ids, JSON)
 * take a native call each, and only once per chunk: a string already assigned in the chunk (a
 * target, a model, tags) is repeated by copying its `string_t`, which points at the same bytes in
 * the vector's string heap. Filling needs no connection: it can run while the connection
 * answers a query (DuckDB runs it on a thread of its own).
 */
export async function fillChunks<E>(
  columns: readonly ChunkColumn<E>[],
  events: readonly E[],
): Promise<DuckDBDataChunk[]> {
  const chunks: DuckDBDataChunk[] = [];
  for (let start = 0; start < events.length; start += ROWS_PER_CHUNK) {
    const rows = Math.min(ROWS_PER_CHUNK, events.length - start);
    chunks.push(fillChunk(columns, events, start, rows));
    // Filling is synchronous: hand the event loop back between chunks, so a large batch never
    // stalls the gateway's requests for more than one chunk's work.
    if (start + rows < events.length) await nextTurn();
  }
  return chunks;
}

/** `fillChunks` without handing the event loop back: for a few events (a bus's staging). */
export function fillChunksNow<E>(
  columns: readonly ChunkColumn<E>[],
  events: readonly E[],
): DuckDBDataChunk[] {
  const chunks: DuckDBDataChunk[] = [];
  for (let start = 0; start < events.length; start += ROWS_PER_CHUNK) {
    chunks.push(fillChunk(columns, events, start, Math.min(ROWS_PER_CHUNK, events.length - start)));
  }
  return chunks;
}

// Scratch for one chunk's column at a time; filling a chunk is synchronous, so they are shared.
const data = new ArrayBuffer(ROWS_PER_CHUNK * 16);
const bytes = new Uint8Array(data);
const view = new DataView(data);
const validity = new BigUint64Array(ROWS_PER_CHUNK / 64);
const words = new Uint32Array(validity.buffer);
// Per string column: the rows whose long string takes a native call, and the rows that repeat
// one of them (pairs of row, first row).
const longRows: number[] = [];
const longTexts: string[] = [];
const repeats: number[] = [];
const firstRow = new Map<string, number>();

/**
 * Chunks given back once appended (see `recycleChunks`), per list of columns, for the next fill.
 * A data chunk holds its vectors at DuckDB's full vector size whatever its rows (about 1 MiB for
 * a wide event's 47 columns); made anew for every fill, that memory was allocated, touched page
 * by page (a page fault each) and freed again for every 512 events: 4% of a gateway's throughput.
 */
const spareChunks = new WeakMap<readonly ChunkColumn<never>[], DuckDBDataChunk[]>();
/** Spare chunks kept per list of columns: a bus's batch of 10,000 events fills 20. */
const SPARE_CHUNKS = 24;

/**
 * Gives appended chunks back for reuse. Only once the appender holds their rows (it copies a
 * chunk's values when it is appended) and nothing else refers to them.
 */
export function recycleChunks<E>(
  columns: readonly ChunkColumn<E>[],
  chunks: readonly DuckDBDataChunk[],
): void {
  let spare = spareChunks.get(columns);
  if (spare === undefined) {
    spare = [];
    spareChunks.set(columns, spare);
  }
  for (const chunk of chunks) {
    if (spare.length >= SPARE_CHUNKS) return;
    // Back to empty: its vectors keep their memory, its strings' heap is let go.
    chunk.reset();
    spare.push(chunk);
  }
}

/** A data chunk of `rows` events from `start` (at most `ROWS_PER_CHUNK`). */
function fillChunk<E>(
  columns: readonly ChunkColumn<E>[],
  events: readonly E[],
  start: number,
  rows: number,
): DuckDBDataChunk {
  const spare = spareChunks.get(columns)?.pop();
  if (spare !== undefined) spare.rowCount = rows;
  const dataChunk =
    spare ??
    DuckDBDataChunk.create(
      columns.map((col) => TYPES[col.kind]),
      rows,
    );
  const chunk = dataChunk.chunk;
  for (let c = 0; c < columns.length; c++) {
    const { kind, value } = columns[c]!;
    const vector = duckdb.data_chunk_get_vector(chunk, c);
    const width = WIDTH[kind];
    bytes.fill(0, 0, rows * width);
    words.fill(0xffffffff);
    let nulls = 0;
    longRows.length = 0;
    longTexts.length = 0;
    repeats.length = 0;
    firstRow.clear();
    for (let i = 0; i < rows; i++) {
      const item = value(events[start + i]!);
      if (item === null) {
        words[i >>> 5]! &= ~(1 << (i & 31));
        nulls++;
        continue;
      }
      switch (kind) {
        case 'string': {
          const text = item as string;
          if (writeInline(bytes, view, i * 16, text)) break;
          // Ids and JSON never repeat: once the first few long strings have not, stop looking.
          const looking = repeats.length > 0 || longRows.length < 32;
          const first = looking ? firstRow.get(text) : undefined;
          if (first === undefined) {
            if (looking) firstRow.set(text, i);
            longRows.push(i);
            longTexts.push(text);
          } else repeats.push(i, first);
          break;
        }
        case 'int':
          view.setInt32(i * 4, item as number, true);
          break;
        case 'bigint':
          view.setBigInt64(i * 8, BigInt(item as number), true);
          break;
        case 'float':
          view.setFloat64(i * 8, item as number, true);
          break;
        case 'bool':
          bytes[i] = item ? 1 : 0;
          break;
      }
    }
    duckdb.copy_data_to_vector(vector, 0, data, 0, rows * width);
    for (let k = 0; k < longRows.length; k++) {
      duckdb.vector_assign_string_element(vector, longRows[k]!, longTexts[k]!);
    }
    if (repeats.length > 0) {
      // The vector's slots as DuckDB filled them (a copy): repeat each first string_t, write back.
      const slots = duckdb.vector_get_data(vector, rows * 16);
      for (let k = 0; k < repeats.length; k += 2) {
        const from = repeats[k + 1]! * 16;
        slots.copyWithin(repeats[k]! * 16, from, from + 16);
      }
      duckdb.copy_data_to_vector(vector, 0, slots.buffer as ArrayBuffer, slots.byteOffset, rows * 16);
    }
    if (nulls > 0) {
      duckdb.vector_ensure_validity_writable(vector);
      duckdb.copy_data_to_vector_validity(vector, 0, validity.buffer, 0, Math.ceil(rows / 64) * 8);
    }
  }
  // Drop the last chunk's strings: they would otherwise stay alive until the next fill.
  longTexts.length = 0;
  firstRow.clear();
  return dataChunk;
}

/**
 * Appends filled chunks, flushing once `ROWS_PER_FLUSH` rows are appended (synchronous, like filling: the
 * event loop is handed back after each flush); the caller's `closeSync` flushes the rest.
 */
export async function appendChunks(
  appender: DuckDBAppender,
  chunks: readonly DuckDBDataChunk[],
): Promise<void> {
  let unflushed = 0;
  for (const chunk of chunks) {
    appender.appendDataChunk(chunk);
    unflushed += chunk.rowCount;
    if (unflushed >= ROWS_PER_FLUSH) {
      appender.flushSync();
      unflushed = 0;
      await nextTurn();
    }
  }
}

/** Fills and appends `events` (see `fillChunks` and `appendChunks`). */
export async function appendInChunks<E>(
  appender: DuckDBAppender,
  columns: readonly ChunkColumn<E>[],
  events: readonly E[],
): Promise<void> {
  const chunks = await fillChunks(columns, events);
  await appendChunks(appender, chunks);
  recycleChunks(columns, chunks);
}

const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** Writes `text` as an inline `string_t` (length, then up to 12 bytes) if it is short ASCII. */
function writeInline(bytes: Uint8Array, view: DataView, offset: number, text: string): boolean {
  const length = text.length;
  if (length > INLINE_BYTES) return false;
  for (let i = 0; i < length; i++) {
    const code = text.charCodeAt(i);
    if (code > 127) {
      bytes.fill(0, offset + 4, offset + 4 + i);
      return false;
    }
    bytes[offset + 4 + i] = code;
  }
  view.setUint32(offset, length, true);
  return true;
}
