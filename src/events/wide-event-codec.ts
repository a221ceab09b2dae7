import type { WideEvent } from './wide-event.js';

/** A growable byte buffer the spool's codecs encode events into. */
export class ByteWriter {
  bytes: Buffer;
  view: DataView;
  length = 0;

  constructor(capacity = 64 * 1024) {
    this.bytes = Buffer.allocUnsafe(capacity);
    this.view = new DataView(this.bytes.buffer, this.bytes.byteOffset, this.bytes.length);
  }

  /** Makes room for `n` more bytes. */
  reserve(n: number): void {
    if (this.length + n <= this.bytes.length) return;
    const grown = Buffer.allocUnsafe(Math.max(this.bytes.length * 2, this.length + n));
    this.bytes.copy(grown, 0, 0, this.length);
    this.bytes = grown;
    this.view = new DataView(grown.buffer, grown.byteOffset, grown.length);
  }

  /**
   * Copies `text` to `at` (room reserved by the caller) when every character is ASCII, in a loop:
   * for short strings (ids, names, models, times) cheaper than a native call. False, with the
   * bytes from `at` left undefined, at the first character that is not.
   */
  asciiAt(at: number, text: string): boolean {
    const bytes = this.bytes;
    for (let i = 0; i < text.length; i++) {
      const code = text.charCodeAt(i);
      if (code > 0x7f) return false;
      bytes[at + i] = code;
    }
    return true;
  }
}

/** How a spool writes events of one kind as bytes, and reads them back. */
export interface SpoolCodec<E> {
  /** Named in each record's head, so a record is only ever decoded by the codec that wrote it. */
  readonly name: string;
  /** Appends one event's bytes. */
  encode(event: E, out: ByteWriter): void;
  /** The `count` events of a record's bytes, in order; throws on bytes it cannot read. */
  decode(bytes: Buffer, count: number): E[];
}

// Each event starts with its form: the schema's fields in a fixed order, or (anything else) JSON.
const FIELDS = 1;
const JSON_TEXT = 2;
// Strings: a u32 header, then the bytes. 0 null, 1 undefined, otherwise 2 + 2 · bytes + json,
// json = 1 when the bytes are a JSON string literal (text that is not well-formed UTF-16: a lone
// surrogate, which UTF-8 cannot carry; JSON escapes it).
const S_NULL = 0;
const S_UNDEFINED = 1;
// Numbers and booleans: a tag byte (a number's 8 bytes follow, little-endian float64).
const N_NULL = 0;
const N_UNDEFINED = 1;
const N_VALUE = 2;
const B_FALSE = 3;
const B_TRUE = 4;
/** A surrogate not part of a pair (the `u` flag reads pairs as one code point). */
const LONE_SURROGATE = /\p{Cs}/u;
/** Strings longer than this are encoded natively (`Buffer.write`) rather than in a loop. */
const LOOP_MAX = 64;

/** An event that does not have the schema's shape: it is spooled as JSON instead. */
class NotFields extends Error {}
const notFields = new NotFields();

/**
 * The gateway's wide events in the spool, as bytes: each of the schema's fields in a fixed order,
 * numbers as float64, strings as UTF-8 with their length, no keys. Why not JSON: on Node 20
 * `JSON.stringify` of a wide event (about 1.1 kB) took 8 to 11 µs of CPU on the benchmark
 * machine, this 2 to 3 (about 600 bytes, so the commit's checksum and write shrink too); it
 * runs for every request with events on. What comes back is what `JSON.parse(JSON.stringify(e))`
 * gives for an event of the schema: a field left undefined stays absent, `NaN` and the
 * infinities read as null, -0 as 0. An event that is not of the schema's shape (a field of
 * another type, a missing nested object) is written as JSON, whole; properties outside the
 * schema are not written.
 */
export const wideEventCodec: SpoolCodec<WideEvent> = {
  name: 'wide-event-1',
  encode(event, out) {
    const start = out.length;
    try {
      out.reserve(1);
      out.bytes[out.length++] = FIELDS;
      encodeFields(event, out);
    } catch (error) {
      if (error !== notFields) throw error;
      out.length = start;
      out.reserve(1);
      out.bytes[out.length++] = JSON_TEXT;
      str(out, JSON.stringify(event));
    }
  },
  decode(bytes, count) {
    const reader = new Reader(bytes);
    const events: WideEvent[] = new Array(count);
    for (let i = 0; i < count; i++) {
      const form = reader.u8();
      if (form === FIELDS) events[i] = decodeFields(reader);
      else if (form === JSON_TEXT) events[i] = JSON.parse(reader.str() as string) as WideEvent;
      else throw new Error(`wide event codec: unknown form ${form} at byte ${reader.at - 1}`);
    }
    if (reader.at !== bytes.length)
      throw new Error(`wide event codec: ${bytes.length - reader.at} bytes left after ${count} events`);
    return events;
  },
};

function encodeFields(e: WideEvent, out: ByteWriter): void {
  const { timings, tokens, attempts, tags } = e;
  if (typeof timings !== 'object' || timings === null) throw notFields;
  if (typeof tokens !== 'object' || tokens === null) throw notFields;
  if (!Array.isArray(attempts) || typeof tags !== 'object' || tags === null) throw notFields;
  num(out, e.schemaVersion);
  str(out, e.id);
  str(out, e.traceId);
  str(out, e.time);
  str(out, e.operation);
  str(out, e.wire);
  bool(out, e.stream);
  str(out, e.keyName);
  str(out, e.keyId);
  str(out, e.team);
  str(out, e.org);
  str(out, e.requestedModel);
  str(out, e.route);
  str(out, e.target);
  str(out, e.provider);
  str(out, e.model);
  str(out, e.region);
  str(out, e.routeVersion);
  str(out, e.promptId);
  str(out, e.promptVersion);
  str(out, e.retrievalIndexHash);
  num(out, e.status);
  str(out, e.errorClass);
  str(out, e.errorCode);
  str(out, e.errorMessage);
  bool(out, e.clientAborted);
  num(out, timings.totalMs);
  num(out, timings.firstTokenMs);
  num(out, timings.upstreamMs);
  num(out, tokens.input);
  num(out, tokens.output);
  num(out, tokens.cachedInput);
  num(out, tokens.cacheWrite);
  num(out, tokens.reasoning);
  num(out, e.costUsd);
  str(out, e.cacheStatus);
  u32(out, attempts.length);
  for (let i = 0; i < attempts.length; i++) {
    const a = attempts[i];
    if (typeof a !== 'object' || a === null) throw notFields;
    str(out, a.target);
    str(out, a.reason);
    str(out, a.outcome);
    num(out, a.status);
    num(out, a.startMs);
    num(out, a.durationMs);
    num(out, a.firstByteMs);
    num(out, a.queuedMs);
    str(out, a.error);
    num(out, a.costUsd);
    str(out, a.priceVersion);
    bool(out, a.usageEstimated);
  }
  num(out, e.retries);
  num(out, e.fallbacks);
  num(out, e.hedges);
  str(out, e.priority);
  num(out, e.queuedMs);
  bool(out, e.shed);
  str(out, e.shedReason);
  const keys = Object.keys(tags);
  u32(out, keys.length);
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i]!;
    str(out, key);
    str(out, (tags as Record<string, string>)[key]);
  }
  str(out, e.requestBody);
  str(out, e.responseBody);
}

/** Object literals in the record stage's order (src/gateway/record.ts); absent fields removed after. */
function decodeFields(r: Reader): WideEvent {
  const event = {
    schemaVersion: r.num(),
    id: r.str(),
    traceId: r.str(),
    time: r.str(),
    operation: r.str(),
    wire: r.str(),
    stream: r.bool(),
    keyName: r.str(),
    keyId: r.str(),
    team: r.str(),
    org: r.str(),
    requestedModel: r.str(),
    route: r.str(),
    target: r.str(),
    provider: r.str(),
    model: r.str(),
    region: r.str(),
    routeVersion: r.str(),
    promptId: r.str(),
    promptVersion: r.str(),
    retrievalIndexHash: r.str(),
    status: r.num(),
    errorClass: r.str(),
    errorCode: r.str(),
    errorMessage: r.str(),
    clientAborted: r.bool(),
    timings: { totalMs: r.num(), firstTokenMs: r.num(), upstreamMs: r.num() },
    tokens: {
      input: r.num(),
      output: r.num(),
      cachedInput: r.num(),
      cacheWrite: r.num(),
      reasoning: r.num(),
    },
    costUsd: r.num(),
    cacheStatus: r.str(),
    attempts: new Array(r.u32()),
    retries: 0 as number | null | undefined,
    fallbacks: 0 as number | null | undefined,
    hedges: 0 as number | null | undefined,
    priority: null as string | null | undefined,
    queuedMs: 0 as number | null | undefined,
    shed: false as boolean | undefined,
    shedReason: null as string | null | undefined,
    tags: {} as Record<string, string | null | undefined>,
    requestBody: null as string | null | undefined,
    responseBody: null as string | null | undefined,
  };
  for (let i = 0; i < event.attempts.length; i++) {
    const attempt: Record<string, unknown> = {
      target: r.str(),
      reason: r.str(),
      outcome: r.str(),
      status: r.num(),
      startMs: r.num(),
      durationMs: r.num(),
      firstByteMs: r.num(),
      queuedMs: r.num(),
      error: r.str(),
    };
    // Optional in the schema, absent from most attempts: added when present.
    const seen = r.sawUndefined;
    const costUsd = r.num();
    const priceVersion = r.str();
    const usageEstimated = r.bool();
    r.sawUndefined = seen;
    if (costUsd !== undefined) attempt.costUsd = costUsd;
    if (priceVersion !== undefined) attempt.priceVersion = priceVersion;
    if (usageEstimated !== undefined) attempt.usageEstimated = usageEstimated;
    event.attempts[i] = attempt;
  }
  event.retries = r.num();
  event.fallbacks = r.num();
  event.hedges = r.num();
  event.priority = r.str();
  event.queuedMs = r.num();
  event.shed = r.bool();
  event.shedReason = r.str();
  const tagCount = r.u32();
  for (let i = 0; i < tagCount; i++) {
    const key = r.str();
    const value = r.str();
    if (typeof key === 'string' && value !== undefined) event.tags[key] = value;
  }
  event.requestBody = r.str();
  event.responseBody = r.str();
  if (r.sawUndefined) {
    absentRemoved(event);
    absentRemoved(event.timings);
    absentRemoved(event.tokens);
    for (const attempt of event.attempts) absentRemoved(attempt);
  }
  return event as unknown as WideEvent;
}

/** Deletes the keys whose value is undefined, as a JSON round trip would. */
function absentRemoved(record: object): void {
  const fields = record as Record<string, unknown>;
  for (const key in fields) if (fields[key] === undefined) delete fields[key];
}

function u32(out: ByteWriter, value: number): void {
  out.reserve(4);
  out.view.setUint32(out.length, value, true);
  out.length += 4;
}

function num(out: ByteWriter, value: number | null | undefined): void {
  out.reserve(9);
  if (value === undefined) out.bytes[out.length++] = N_UNDEFINED;
  else if (value === null || !Number.isFinite(value)) {
    if (value !== null && typeof value !== 'number') throw notFields;
    out.bytes[out.length++] = N_NULL;
  } else {
    out.bytes[out.length++] = N_VALUE;
    // -0 as 0, as JSON writes it.
    out.view.setFloat64(out.length, value === 0 ? 0 : value, true);
    out.length += 8;
  }
}

function bool(out: ByteWriter, value: boolean | undefined): void {
  out.reserve(1);
  if (value === undefined) out.bytes[out.length++] = N_UNDEFINED;
  else if (value === true) out.bytes[out.length++] = B_TRUE;
  else if (value === false) out.bytes[out.length++] = B_FALSE;
  else throw notFields;
}

function str(out: ByteWriter, text: string | null | undefined): void {
  if (text === null || text === undefined) {
    u32(out, text === null ? S_NULL : S_UNDEFINED);
    return;
  }
  if (typeof text !== 'string') throw notFields;
  const length = text.length;
  const header = out.length;
  if (length <= LOOP_MAX) {
    // Short ASCII (ids, names, models, times), the usual case: no native call.
    out.reserve(4 + length);
    if (out.asciiAt(header + 4, text)) {
      out.view.setUint32(header, 2 + 2 * length, true);
      out.length = header + 4 + length;
      return;
    }
  }
  const wellFormed = !LONE_SURROGATE.test(text);
  const encoded = wellFormed ? text : JSON.stringify(text);
  out.reserve(4 + 3 * encoded.length);
  const written = out.bytes.write(encoded, header + 4, 'utf8');
  out.view.setUint32(header, 2 + 2 * written + (wellFormed ? 0 : 1), true);
  out.length = header + 4 + written;
}

class Reader {
  at = 0;
  /** Whether a field read as undefined (to be left out of the event). */
  sawUndefined = false;
  private readonly view: DataView;

  constructor(private readonly bytes: Buffer) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  }

  u8(): number {
    this.need(1);
    return this.bytes[this.at++]!;
  }

  u32(): number {
    this.need(4);
    const value = this.view.getUint32(this.at, true);
    this.at += 4;
    return value;
  }

  num(): number | null | undefined {
    const tag = this.u8();
    if (tag === N_NULL) return null;
    if (tag === N_UNDEFINED) {
      this.sawUndefined = true;
      return undefined;
    }
    if (tag !== N_VALUE) throw new Error(`wide event codec: bad number tag ${tag} at byte ${this.at - 1}`);
    this.need(8);
    const value = this.view.getFloat64(this.at, true);
    this.at += 8;
    return value;
  }

  bool(): boolean | undefined {
    const tag = this.u8();
    if (tag === N_UNDEFINED) {
      this.sawUndefined = true;
      return undefined;
    }
    if (tag === B_TRUE || tag === B_FALSE) return tag === B_TRUE;
    throw new Error(`wide event codec: bad boolean tag ${tag} at byte ${this.at - 1}`);
  }

  str(): string | null | undefined {
    const header = this.u32();
    if (header === S_NULL) return null;
    if (header === S_UNDEFINED) {
      this.sawUndefined = true;
      return undefined;
    }
    const length = (header - 2) >>> 1;
    this.need(length);
    const text = this.bytes.toString('utf8', this.at, this.at + length);
    this.at += length;
    return (header - 2) & 1 ? (JSON.parse(text) as string) : text;
  }

  private need(n: number): void {
    if (this.at + n > this.bytes.length)
      throw new Error(`wide event codec: record ends at byte ${this.bytes.length}, needs ${this.at + n}`);
  }
}
