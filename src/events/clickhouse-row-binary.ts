import { type ColumnKind, columnValues, eventColumnReaders, eventTimeMs } from './event-columns.js';
import type { WideEvent } from './wide-event.js';
import { ByteWriter } from './wide-event-codec.js';

/** Bytes a wide event takes in RowBinary, about (the benchmark's events: 511): a first guess for a buffer. */
const BYTES_PER_ROW = 640;

/** Thrown by the writers on a value of the wrong type; `rowBinary` then names the column. */
const wrongType = new Error('wrong type');

/**
 * Wide events as ClickHouse `RowBinary`, in the table's column order (`eventColumns`), written
 * straight into bytes: no text per field and no join. The format, as `clickhouseType` declares
 * each column: Nullable(T) is one byte (1 null, 0 a value follows) then T; String a LEB128 byte
 * length then UTF-8; Int32 and Int64 little-endian two's complement; Float64 little-endian IEEE
 * 754; UInt8 (booleans, 18.16 has no Bool) 0 or 1. A value of the wrong type throws (the insert
 * then fails whole), rather than reaching the table as something else.
 */
export function rowBinary(events: readonly WideEvent[]): Buffer {
  const out = new ByteWriter(Math.max(1024, events.length * BYTES_PER_ROW));
  for (let r = 0; r < events.length; r++) {
    const event = events[r]!;
    try {
      writeRow(event, out);
    } catch (error) {
      throw error === wrongType ? wrongTypeError(event) : error;
    }
  }
  return out.bytes.subarray(0, out.length);
}

/**
 * One event's row, each column read straight from the event. Why not a loop over
 * `eventColumnReaders`: a call through a different closure per column cost about 1 µs an event
 * more on the shared benchmark machine (9.5 against 8.5, the column values' own work included). The
 * values are those `columnValues` reads, in `eventColumns` order: the unit test decodes every
 * column by its declared type and compares, so a column added without a line here fails it.
 */
function writeRow(e: WideEvent, out: ByteWriter): void {
  const { timings, tokens } = e;
  str(out, e.id);
  i64(out, eventTimeMs(e));
  i32(out, e.schemaVersion);
  str(out, e.operation);
  str(out, e.wire);
  bool(out, e.stream);
  nullableStr(out, e.keyName);
  str(out, e.requestedModel);
  nullableStr(out, e.route);
  nullableStr(out, e.target);
  nullableStr(out, e.provider);
  nullableStr(out, e.model);
  i32(out, e.status);
  nullableStr(out, e.errorCode);
  nullableStr(out, e.errorMessage);
  bool(out, e.clientAborted);
  f64(out, timings.totalMs);
  nullableF64(out, timings.firstTokenMs);
  i32(out, tokens.input);
  i32(out, tokens.output);
  i32(out, tokens.cachedInput);
  i32(out, tokens.cacheWrite);
  i32(out, tokens.reasoning);
  str(out, columnValues.attempts(e) as string);
  i32(out, e.retries);
  i32(out, e.fallbacks);
  i32(out, e.hedges);
  nullableStr(out, e.priority);
  f64(out, e.queuedMs);
  bool(out, e.shed);
  // Schema version 2: events spooled by version 1 lack these (undefined, written as null).
  nullableStr(out, e.traceId);
  nullableStr(out, e.keyId);
  nullableStr(out, e.team);
  nullableStr(out, e.org);
  nullableStr(out, e.region);
  nullableStr(out, e.routeVersion);
  nullableStr(out, e.promptId);
  nullableStr(out, e.promptVersion);
  nullableStr(out, e.retrievalIndexHash);
  nullableStr(out, e.errorClass);
  nullableF64(out, timings.upstreamMs);
  nullableF64(out, e.costUsd);
  nullableStr(out, e.cacheStatus);
  nullableStr(out, e.shedReason);
  nullableStr(out, columnValues.tags(e) as string | null);
  nullableStr(out, e.requestBody);
  nullableStr(out, e.responseBody);
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

function nullableF64(out: ByteWriter, value: number | null | undefined): void {
  out.reserve(1);
  if (value === null || value === undefined) {
    out.bytes[out.length++] = 1;
    return;
  }
  out.bytes[out.length++] = 0;
  f64(out, value);
}

function bool(out: ByteWriter, value: boolean): void {
  if (typeof value !== 'boolean') throw wrongType;
  out.reserve(1);
  out.bytes[out.length++] = value ? 1 : 0;
}

function nullableStr(out: ByteWriter, text: string | null | undefined): void {
  out.reserve(1);
  if (text === null || text === undefined) {
    out.bytes[out.length++] = 1;
    return;
  }
  out.bytes[out.length++] = 0;
  str(out, text);
}

/** Strings shorter than this are tried as ASCII in a loop (ids, names, models): no native call. */
const LOOP_MAX = 128;

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
  out.reserve(5 + size);
  const bytes = out.bytes;
  let at = out.length;
  let rest = size;
  while (rest >= 0x80) {
    bytes[at++] = (rest & 0x7f) | 0x80;
    rest >>>= 7;
  }
  bytes[at++] = rest;
  out.length = at + bytes.write(text, at, size, 'utf8');
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
