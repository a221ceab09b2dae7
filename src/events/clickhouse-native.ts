import {
  type ColumnKind,
  clickhouseType,
  columnValues,
  type EventColumnName,
  eventColumnReaders,
  eventColumns,
  eventTimeMs,
} from './event-columns.js';
import type { WideEvent } from './wide-event.js';
import { ByteWriter } from './wide-event-codec.js';

/** Thrown by the writers on a value of the wrong type; `nativeBlock` then names the column. */
const wrongType = new Error('wrong type');

/** Strings shorter than this are tried as ASCII in a loop (ids, names, models): no native call. */
const LOOP_MAX = 128;

/**
 * Wide events as one block of ClickHouse's `Native` format: the number of columns and rows
 * (LEB128), then each column in the table's order (`eventColumns`): its name and declared type
 * as strings, then its values, all rows together. Why not `RowBinary`: the server reads a
 * column at once instead of a value at a time, which cost 18.16 about 15% less CPU an event
 * (docs/benchmarks.md, "Event ingest"). The values, as `clickhouseType` declares each column:
 * String a LEB128 byte length then UTF-8; Int32 and Int64 little-endian two's complement; Float64
 * little-endian IEEE 754; UInt8 (booleans, 18.16 has no Bool) 0 or 1. A Nullable(T) column is
 * its null map (a byte a row, 1 for null) followed by T's values for every row, a null one as
 * T's default (an empty string, zero). A value of the wrong type throws (the insert then fails
 * whole), rather than reaching the table as something else.
 *
 * Each event is read once, its values written to the end of their column's buffer: the buffers
 * are joined after the last row. Buffers are reused from block to block (one block at a time:
 * encoding is synchronous).
 */
export function nativeBlock(events: readonly WideEvent[]): Buffer {
  if (events.length === 0) return Buffer.alloc(0);
  for (const out of columns) out.length = 0;
  for (const out of nullMaps) out.length = 0;
  for (let r = 0; r < events.length; r++) {
    const event = events[r]!;
    try {
      writeRow(event);
    } catch (error) {
      throw error === wrongType ? wrongTypeError(event) : error;
    }
  }
  const head = new ByteWriter(16);
  leb(head, eventColumns.length);
  leb(head, events.length);
  let size = head.length;
  for (let c = 0; c < columns.length; c++)
    size += heads[c]!.length + nullMaps[c]!.length + columns[c]!.length;
  const block = Buffer.allocUnsafe(size);
  let at = head.bytes.copy(block, 0, 0, head.length);
  for (let c = 0; c < columns.length; c++) {
    at += heads[c]!.copy(block, at);
    at += nullMaps[c]!.bytes.copy(block, at, 0, nullMaps[c]!.length);
    at += columns[c]!.bytes.copy(block, at, 0, columns[c]!.length);
  }
  // A column grown past this by large values (request bodies) does not keep its memory.
  for (let c = 0; c < columns.length; c++) {
    if (columns[c]!.bytes.length <= KEPT_COLUMN_BYTES) continue;
    columns[c] = new ByteWriter(COLUMN_BYTES);
    V[eventColumns[c]!.name] = columns[c]!;
  }
  return block;
}

/** Each column's name and type, as a block writes them before its values. */
const heads = eventColumns.map((col) => {
  const out = new ByteWriter(128);
  str(out, col.name);
  str(out, clickhouseType(col));
  return Buffer.from(out.bytes.subarray(0, out.length));
});

/** Each column's values in the block being written; for a Nullable column, its null map too (else empty). */
const COLUMN_BYTES = 16 * 1024;
const KEPT_COLUMN_BYTES = 1024 * 1024;
const columns = eventColumns.map(() => new ByteWriter(COLUMN_BYTES));
const nullMaps = eventColumns.map(() => new ByteWriter(1024));
const V = Object.fromEntries(eventColumns.map((col, c) => [col.name, columns[c]])) as Record<
  EventColumnName,
  ByteWriter
>;
const N = Object.fromEntries(eventColumns.map((col, c) => [col.name, nullMaps[c]])) as Record<
  EventColumnName,
  ByteWriter
>;

/**
 * One event's values, each read straight from the event into its column. Why not a loop over
 * `eventColumnReaders`: a call through a different closure per column cost about 1 µs an event
 * more. The values are those `columnValues` reads: the unit test decodes every column by its
 * declared type and compares, so a column added without a line here fails it.
 */
function writeRow(e: WideEvent): void {
  const { timings, tokens } = e;
  str(V.id, e.id);
  i64(V.time_ms, eventTimeMs(e));
  i32(V.schema_version, e.schemaVersion);
  str(V.operation, e.operation);
  str(V.wire, e.wire);
  bool(V.stream, e.stream);
  nullableStr(N.key_name, V.key_name, e.keyName);
  str(V.requested_model, e.requestedModel);
  nullableStr(N.route, V.route, e.route);
  nullableStr(N.target, V.target, e.target);
  nullableStr(N.provider, V.provider, e.provider);
  nullableStr(N.model, V.model, e.model);
  i32(V.status, e.status);
  nullableStr(N.error_code, V.error_code, e.errorCode);
  nullableStr(N.error_message, V.error_message, e.errorMessage);
  bool(V.client_aborted, e.clientAborted);
  f64(V.timings_total_ms, timings.totalMs);
  nullableF64(N.timings_first_token_ms, V.timings_first_token_ms, timings.firstTokenMs);
  i32(V.tokens_input, tokens.input);
  i32(V.tokens_output, tokens.output);
  i32(V.tokens_cached_input, tokens.cachedInput);
  i32(V.tokens_cache_write, tokens.cacheWrite);
  i32(V.tokens_reasoning, tokens.reasoning);
  str(V.attempts, columnValues.attempts(e) as string);
  i32(V.retries, e.retries);
  i32(V.fallbacks, e.fallbacks);
  i32(V.hedges, e.hedges);
  nullableStr(N.priority, V.priority, e.priority);
  f64(V.queued_ms, e.queuedMs);
  bool(V.shed, e.shed);
  // Schema version 2: events spooled by version 1 lack these (undefined, written as null).
  nullableStr(N.trace_id, V.trace_id, e.traceId);
  nullableStr(N.key_id, V.key_id, e.keyId);
  nullableStr(N.team, V.team, e.team);
  nullableStr(N.org, V.org, e.org);
  nullableStr(N.region, V.region, e.region);
  nullableStr(N.route_version, V.route_version, e.routeVersion);
  nullableStr(N.prompt_id, V.prompt_id, e.promptId);
  nullableStr(N.prompt_version, V.prompt_version, e.promptVersion);
  nullableStr(N.retrieval_index_hash, V.retrieval_index_hash, e.retrievalIndexHash);
  nullableStr(N.error_class, V.error_class, e.errorClass);
  nullableF64(N.timings_upstream_ms, V.timings_upstream_ms, timings.upstreamMs);
  nullableF64(N.cost_usd, V.cost_usd, e.costUsd);
  nullableStr(N.cache_status, V.cache_status, e.cacheStatus);
  nullableStr(N.shed_reason, V.shed_reason, e.shedReason);
  nullableStr(N.tags, V.tags, columnValues.tags(e) as string | null);
  nullableStr(N.request_body, V.request_body, e.requestBody);
  nullableStr(N.response_body, V.response_body, e.responseBody);
}

function leb(out: ByteWriter, value: number): void {
  out.reserve(5);
  const bytes = out.bytes;
  let at = out.length;
  let rest = value;
  while (rest >= 0x80) {
    bytes[at++] = (rest & 0x7f) | 0x80;
    rest >>>= 7;
  }
  bytes[at++] = rest;
  out.length = at;
}

function i32(out: ByteWriter, value: number): void {
  if ((value | 0) !== value) throw wrongType;
  out.reserve(4);
  out.view.setInt32(out.length, value, true);
  out.length += 4;
}

function i64(out: ByteWriter, value: number): void {
  if (!Number.isSafeInteger(value)) throw wrongType;
  // Two 32-bit halves: no BigInt per value (floor division keeps negatives right).
  const high = Math.floor(value / 4294967296);
  out.reserve(8);
  out.view.setUint32(out.length, value - high * 4294967296, true);
  out.view.setInt32(out.length + 4, high, true);
  out.length += 8;
}

function f64(out: ByteWriter, value: number): void {
  if (typeof value !== 'number') throw wrongType;
  out.reserve(8);
  out.view.setFloat64(out.length, value, true);
  out.length += 8;
}

function bool(out: ByteWriter, value: boolean): void {
  if (typeof value !== 'boolean') throw wrongType;
  out.reserve(1);
  out.bytes[out.length++] = value ? 1 : 0;
}

/** Marks the row null (1) or not (0) in a Nullable column's null map; true when null. */
function isNull(nulls: ByteWriter, value: unknown): boolean {
  nulls.reserve(1);
  const missing = value === null || value === undefined;
  nulls.bytes[nulls.length++] = missing ? 1 : 0;
  return missing;
}

function nullableF64(nulls: ByteWriter, out: ByteWriter, value: number | null | undefined): void {
  if (isNull(nulls, value)) f64(out, 0);
  else f64(out, value as number);
}

function nullableStr(nulls: ByteWriter, out: ByteWriter, text: string | null | undefined): void {
  if (isNull(nulls, text)) {
    out.reserve(1);
    out.bytes[out.length++] = 0; // the empty string
  } else str(out, text as string);
}

function str(out: ByteWriter, text: string): void {
  if (typeof text !== 'string') throw wrongType;
  const length = text.length;
  if (length < LOOP_MAX) {
    out.reserve(1 + length);
    const at = out.length;
    if (out.asciiAt(at + 1, text)) {
      out.bytes[at] = length; // under 128: a one-byte LEB128
      out.length = at + 1 + length;
      return;
    }
  }
  // A lone surrogate counts and writes as U+FFFD's three bytes, as any UTF-8 encoding of it does.
  const size = Buffer.byteLength(text, 'utf8');
  leb(out, size);
  out.reserve(size);
  out.length += out.bytes.write(text, out.length, size, 'utf8');
}

/** Which column of `event` holds a value of the wrong type: the slow path, for the error's message. */
function wrongTypeError(event: WideEvent): Error {
  for (const col of eventColumnReaders) {
    const value = col.value(event);
    if (col.nullable && (value === null || value === undefined)) continue;
    const expected = KINDS[col.kind];
    if (expected.fits(value)) continue;
    const shown = typeof value === 'string' ? JSON.stringify(value.slice(0, 40)) : String(value);
    return new Error(
      `wide event ${event.id}: column ${col.name} must be ${expected.name}, not ${typeof value} ${shown}`,
    );
  }
  return new Error(`wide event ${event.id}: a value of the wrong type`);
}

const KINDS: Record<ColumnKind, { name: string; fits: (value: unknown) => boolean }> = {
  string: { name: 'text', fits: (value) => typeof value === 'string' },
  int: { name: 'a 32-bit integer', fits: (value) => typeof value === 'number' && (value | 0) === value },
  bigint: { name: 'an integer', fits: (value) => Number.isSafeInteger(value) },
  float: { name: 'a number', fits: (value) => typeof value === 'number' },
  bool: { name: 'a boolean', fits: (value) => typeof value === 'boolean' },
};
