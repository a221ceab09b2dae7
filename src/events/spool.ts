import { type FileHandle, mkdir, open, readdir, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { type Clock, systemClock, type Timer } from '../time/clock.js';
import type { WideEvent } from './wide-event.js';
import { ByteWriter, type SpoolCodec } from './wide-event-codec.js';

/**
 * What the spool does when its disk budget is full. Neither blocks the caller:
 * `drop-newest` refuses new events, `drop-oldest` deletes the oldest unacknowledged segment.
 */
export type SpoolFullPolicy = 'drop-newest' | 'drop-oldest';

export interface SpoolAlarm {
  reason: 'budget-exhausted' | 'write-failed';
  policy: SpoolFullPolicy;
  /** Events lost since the spool was opened. */
  droppedEvents: number;
  usedBytes: number;
  maxBytes: number;
  message: string;
}

export interface SpoolOptions<E = WideEvent> {
  dir: string;
  /** A segment file is closed and a new one started once it would exceed this. Default 16 MiB. */
  segmentBytes?: number;
  /**
   * A group commit writes records of at most this many bytes of events (an event larger than
   * that is a record of its own). Default 1 MiB.
   */
  recordBytes?: number;
  /** Disk budget for all segments. Default 1 GiB. */
  maxBytes?: number;
  onFull?: SpoolFullPolicy;
  /**
   * Group commit when someone waits for the appends (`sync()`: POST /v1/events acknowledges
   * custom events only once they are on disk): written and fdatasync'ed within this. Default 5 ms.
   */
  syncIntervalMs?: number;
  /**
   * Group commit of appends nobody waits for (the gateway's wide events): written and
   * fdatasync'ed together at most this often, so a crash loses at most this much of them. Why
   * not every 5 ms: on the benchmark machine a write costs about 0.2 ms of CPU and an fdatasync
   * about 0.7, 180 µs a request at 1,000 requests per second. Default 50 ms.
   */
  backgroundSyncIntervalMs?: number;
  /** Events are being lost: raised when it starts and at most every `alarmIntervalMs` while it lasts. */
  onAlarm?: (alarm: SpoolAlarm) => void;
  alarmIntervalMs?: number;
  /** A torn or corrupt record was skipped (typically the tail of a crash mid-write). */
  onWarning?: (message: string) => void;
  /**
   * How events are written (the gateway's wide events: `wideEventCodec`). Default: JSON. Records
   * name their format, so a spool written before either way is still read back.
   */
  codec?: SpoolCodec<E>;
  clock?: Clock;
}

/** Events read back from the spool; `endSeq` is the sequence number after the last one. */
export interface SpoolBatch<E = WideEvent> {
  events: E[];
  endSeq: number;
}

/** One group-committed record: events with sequence numbers `seq`, `seq + 1`, … */
export interface SpoolRecord<E = WideEvent> {
  seq: number;
  events: E[];
}

export interface SpoolStats {
  bytes: number;
  segments: number;
  /** Every event with a lower sequence number is acknowledged (stored downstream). */
  ackSeq: number;
  /** The sequence number the next appended event gets. */
  nextSeq: number;
  droppedEvents: number;
}

interface RecordIndex {
  offset: number;
  length: number;
  seq: number;
  count: number;
}

interface Segment {
  id: number;
  path: string;
  /** Bytes on disk, valid or not: what counts against the budget. */
  size: number;
  records: RecordIndex[];
  /** Sequence number after the last valid record; 0 when it has none. */
  endSeq: number;
}

interface PendingRun {
  seq: number;
  count: number;
  /** Without a codec: the events' JSON. */
  jsons: string[];
  /** UTF-8 bytes of the events (`jsons`, or `encoded` from `start`), and whether every JSON is ASCII. */
  bytes: number;
  ascii: boolean;
  /** With a codec: the bytes it wrote, from `start`. */
  encoded: ByteWriter | undefined;
  start: number;
}

interface Deferred {
  promise: Promise<boolean>;
  resolve: (durable: boolean) => void;
}

const HEADER_BYTES = 8;
const RECORD_OVERHEAD = HEADER_BYTES + '{"seq":,"count":,"events":[]}'.length + 24;
const SEGMENT_NAME = /^(\d+)\.seg$/;
const PAYLOAD_HEAD = /^\{"seq":(\d+),"count":(\d+),(?:"events":\[|"codec":"([^"]*)"\})/;
/** Enough for either head with 16-digit sequence numbers and counts (a codec's head is the longer). */
const HEAD_SCAN_BYTES = 96;
const ACK_FILE = 'ack';
/**
 * An encoder takes no more appends once it holds this much: a commit's events are spread over
 * as many encoders as they need, none grown (and copied into fresh memory) beyond it. One grown
 * to a whole commit cost most of the spool's CPU at 100,000 events a second: a commit's 3 MB,
 * or tens of MB once a commit waited on the disk, copied at each doubling into new pages that
 * each took a page fault.
 */
const ENCODER_BYTES = 1024 * 1024;
/**
 * A new encoder's room beyond `ENCODER_BYTES`, for the append that crosses it: one event, or a
 * chunk the event worker was handed (256 KiB at most).
 */
const ENCODER_HEADROOM = 512 * 1024;
/** Encoders kept for the next commits once theirs is written, and the largest one kept. */
const SPARE_ENCODERS = 16;
const SPARE_ENCODER_MAX_BYTES = 4 * ENCODER_BYTES;
/** A commit's records are written through one buffer, reused, this large (a larger record gets its own). */
const WRITE_BUFFER_BYTES = 1024 * 1024;

/**
 * An append-only spool of events (wide or custom) on disk, so that neither a crash nor a store outage loses
 * an event the gateway has acknowledged. Segment files (`000001.seg`, …) hold records framed as
 * [length u32 LE][crc32 u32 LE][payload], the payload being `{"seq","count","events":[…]}`, or
 * with a codec `{"seq","count","codec":"<name>"}` followed by the bytes it wrote.
 * Every event gets a sequence number; `ack(seq)` records (in the `ack` file) that everything
 * below `seq` is stored, and deletes segments that hold nothing else.
 *
 * Appends are group-committed: buffered in memory and written + fdatasync'ed together, so a
 * request never waits for the disk: within `syncIntervalMs` when someone waits for them
 * (`sync()`), otherwise every `backgroundSyncIntervalMs`, which is what a crash can lose of them.
 */
export class Spool<E = WideEvent> {
  private readonly segmentBytes: number;
  private readonly recordBytes: number;
  private readonly maxBytes: number;
  private readonly policy: SpoolFullPolicy;
  private readonly syncIntervalMs: number;
  private readonly backgroundSyncIntervalMs: number;
  private readonly alarmIntervalMs: number;
  private readonly onAlarm: (alarm: SpoolAlarm) => void;
  private readonly onWarning: (message: string) => void;
  private readonly clock: Clock;
  private readonly codec: SpoolCodec<E> | undefined;
  private readonly warned = new Set<string>();

  private active: { segment: Segment; handle: FileHandle } | undefined;
  private rollBeforeNextWrite = false;
  private diskBytes = 0;
  private pending: PendingRun[] = [];
  /** With a codec: where it encodes the pending events, the last one taking appends (`ENCODER_BYTES`). */
  private encoders: ByteWriter[] = [];
  /**
   * Encoders and the write buffer of earlier commits, kept for the next: a new encoder and a new
   * buffer for each commit cost about as much CPU as the encoding (2,500 wide events a second,
   * 20 commits of 75 kB).
   */
  private spareEncoders: ByteWriter[] = [];
  private writeBuffer: Buffer | undefined;
  private pendingBytes = 0;
  private group: Deferred | undefined;
  private inflight: Promise<boolean> | undefined;
  private commitTimer: Timer | undefined;
  /** When the commit timer fires (clock time). */
  private commitAt = Number.POSITIVE_INFINITY;
  private committing: Promise<void> | undefined;
  private ackWrite: Promise<void> | undefined;
  private ackDirty = false;
  private dropped = 0;
  private lastAlarmAt = Number.NEGATIVE_INFINITY;
  private closed = false;

  private constructor(
    private readonly dir: string,
    private segments: Segment[],
    private ackSeq: number,
    private nextSeq: number,
    options: SpoolOptions<E>,
  ) {
    this.segmentBytes = options.segmentBytes ?? 16 * 1024 * 1024;
    this.recordBytes = options.recordBytes ?? 1024 * 1024;
    this.maxBytes = options.maxBytes ?? 1024 * 1024 * 1024;
    this.policy = options.onFull ?? 'drop-newest';
    this.syncIntervalMs = options.syncIntervalMs ?? 5;
    this.backgroundSyncIntervalMs = Math.max(this.syncIntervalMs, options.backgroundSyncIntervalMs ?? 50);
    this.alarmIntervalMs = options.alarmIntervalMs ?? 10_000;
    this.onAlarm = options.onAlarm ?? ((alarm) => process.emitWarning(alarm.message, 'SluiceSpoolAlarm'));
    this.onWarning = options.onWarning ?? ((message) => process.emitWarning(message, 'SluiceSpoolWarning'));
    this.clock = options.clock ?? systemClock;
    this.codec = options.codec;
    for (const segment of segments) this.diskBytes += segment.size;
  }

  /**
   * Opens (or creates) the spool in `options.dir`: indexes the segments left by earlier runs,
   * skipping torn or corrupt records with a warning, and starts a fresh segment for new appends.
   */
  static async open<E = WideEvent>(options: SpoolOptions<E>): Promise<Spool<E>> {
    const warnings: string[] = [];
    await mkdir(options.dir, { recursive: true });
    const ids = (await readdir(options.dir))
      .map((name) => SEGMENT_NAME.exec(name)?.[1])
      .filter((id): id is string => id !== undefined)
      .map(Number)
      .sort((a, b) => a - b);
    const segments: Segment[] = [];
    for (const id of ids) {
      const path = segmentPath(options.dir, id);
      segments.push(scanSegment(id, path, await readFile(path), (message) => warnings.push(message)));
    }
    const ackSeq = await readAck(options.dir);
    const lastEnd = segments.reduce((max, segment) => Math.max(max, segment.endSeq), 0);
    const spool = new Spool<E>(options.dir, [], ackSeq, Math.max(ackSeq, lastEnd), options);
    for (const message of warnings) spool.onWarning(message);
    // Nothing left to replay in these: fully acknowledged, or nothing valid at all.
    for (const segment of segments) {
      if (segment.endSeq <= ackSeq) await unlink(segment.path).catch(() => {});
      else spool.segments.push(segment);
    }
    for (const segment of spool.segments) spool.diskBytes += segment.size;
    await spool.roll((ids.at(-1) ?? 0) + 1);
    return spool;
  }

  /**
   * Queues events for the next group commit and returns the sequence number of the first, or -1
   * when the disk budget is full and they were refused (counted and alarmed). Never waits.
   * `encoded`: the events as this spool's codec wrote them already, event i's `sizes[i]` bytes
   * in order (the event worker gets them so from the gateway): copied, not encoded again.
   */
  append(events: readonly E[], encoded?: { bytes: Uint8Array; sizes: ArrayLike<number> }): number {
    if (this.closed || events.length === 0) return -1;
    const codec = this.codec;
    // Each event's bytes, and without a codec its JSON.
    const sizes: number[] = new Array(events.length);
    let jsons: string[] | undefined;
    let jsonBytes = 0;
    let writer: ByteWriter | undefined;
    let start = 0;
    if (codec) {
      writer = this.encoders.at(-1);
      if (!writer || writer.length >= ENCODER_BYTES) {
        writer = this.spareEncoders.pop() ?? new ByteWriter(ENCODER_BYTES + ENCODER_HEADROOM);
        this.encoders.push(writer);
      }
      start = writer.length;
      if (encoded) {
        if (encoded.sizes.length !== events.length) throw new Error('spool: one size per encoded event');
        writer.reserve(encoded.bytes.length);
        writer.bytes.set(encoded.bytes, start);
        writer.length += encoded.bytes.length;
        for (let i = 0; i < events.length; i++) sizes[i] = encoded.sizes[i]!;
      } else {
        try {
          for (let i = 0; i < events.length; i++) {
            const before = writer.length;
            codec.encode(events[i]!, writer);
            sizes[i] = writer.length - before;
          }
        } catch (error) {
          writer.length = start;
          throw error;
        }
      }
      jsonBytes = writer.length - start;
    } else {
      jsons = new Array(events.length);
      for (let i = 0; i < events.length; i++) {
        const json = JSON.stringify(events[i]);
        const length = Buffer.byteLength(json);
        jsonBytes += length;
        jsons[i] = json;
        sizes[i] = length;
      }
    }
    const bytes = RECORD_OVERHEAD + (codec ? codec.name.length : 0) + jsonBytes + events.length;
    if (!this.makeRoom(bytes)) {
      if (writer) writer.length = start;
      this.lose(events.length, 'budget-exhausted');
      return -1;
    }
    const seq = this.nextSeq;
    this.nextSeq += events.length;
    this.addToRuns(seq, sizes, jsons, writer, start);
    this.pendingBytes += bytes;
    this.commitWithin(this.group ? this.syncIntervalMs : this.backgroundSyncIntervalMs);
    return seq;
  }

  /**
   * Adds consecutive events to the pending runs, each run a record of its own once written: the
   * last run grows until it holds `recordBytes`, then a new one starts. Bounded records keep a
   * read of part of a backlog cheap: it parses whole records, so one record of a whole burst
   * (150,000 events at 1.1 kB) made every batch read back parse the burst again.
   */
  private addToRuns(
    seq: number,
    sizes: readonly number[],
    jsons: readonly string[] | undefined,
    encoded: ByteWriter | undefined,
    start: number,
  ): void {
    let run = this.pending.at(-1);
    // Consecutive events go on in the last run (encoded ones follow its bytes in the same writer).
    if (run && (run.seq + run.count !== seq || run.encoded !== encoded)) run = undefined;
    let offset = start;
    for (let i = 0; i < sizes.length; i++) {
      const size = sizes[i]!;
      if (!run || (run.count > 0 && run.bytes + size > this.recordBytes)) {
        run = { seq: seq + i, count: 0, jsons: [], bytes: 0, ascii: true, encoded, start: offset };
        this.pending.push(run);
      }
      if (jsons) {
        const json = jsons[i]!;
        run.jsons.push(json);
        if (size !== json.length) run.ascii = false;
      }
      run.count++;
      run.bytes += size;
      offset += size;
    }
  }

  /** Resolves true once everything appended so far is on disk (false if writing it failed). */
  sync(): Promise<boolean> {
    if (this.pending.length > 0) {
      this.group ??= deferred();
      this.commitWithin(this.syncIntervalMs);
      return this.group.promise;
    }
    return this.inflight ?? Promise.resolve(true);
  }

  /** Makes sure the pending appends are committed within `ms` (a commit in progress takes them next). */
  private commitWithin(ms: number): void {
    if (this.committing || this.closed) return;
    const at = this.clock.now() + ms;
    if (this.commitTimer && this.commitAt <= at) return;
    this.commitTimer?.cancel();
    this.commitAt = at;
    this.commitTimer = this.clock.setTimer(ms, () => {
      this.commitTimer = undefined;
      this.commitAt = Number.POSITIVE_INFINITY;
      void this.commitAll();
    });
  }

  /** Records that every event with a sequence number below `seq` is stored downstream. */
  ack(seq: number): void {
    if (this.closed || seq <= this.ackSeq) return;
    this.ackSeq = seq;
    while (this.segments.length > 0) {
      const oldest = this.segments[0]!;
      if (oldest === this.active?.segment || oldest.endSeq > seq) break;
      this.removeOldest();
    }
    this.ackDirty = true;
    if (!this.ackWrite) this.ackWrite = this.writeAckFile();
  }

  /** Up to `maxEvents` spooled events from `fromSeq` on, in order; gaps (lost events) are skipped. */
  async read(fromSeq: number, maxEvents: number): Promise<SpoolBatch<E>> {
    const records = await this.readRecords(fromSeq, maxEvents);
    const events: E[] = [];
    let endSeq = fromSeq;
    for (const record of records) {
      for (const event of record.events) events.push(event);
      endSeq = record.seq + record.events.length;
    }
    return { events, endSeq };
  }

  /** The unacknowledged records, oldest first. */
  async *replay(fromSeq: number = this.ackSeq): AsyncGenerator<SpoolRecord<E>> {
    let seq = fromSeq;
    for (;;) {
      const records = await this.readRecords(seq, 1000);
      if (records.length === 0) return;
      for (const record of records) {
        yield record;
        seq = record.seq + record.events.length;
      }
    }
  }

  stats(): SpoolStats {
    return {
      bytes: this.diskBytes + this.pendingBytes,
      segments: this.segments.length,
      ackSeq: this.ackSeq,
      nextSeq: this.nextSeq,
      droppedEvents: this.dropped,
    };
  }

  /** Writes and fsyncs what is pending, records the acknowledged position and closes the files. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.commitTimer?.cancel();
    this.commitTimer = undefined;
    await this.commitAll();
    await this.active?.handle.close();
    this.active = undefined;
    await this.ackWrite;
  }

  private async commitAll(): Promise<void> {
    if (this.committing) return this.committing;
    // After the first commit, go on at once only for appends someone waits for (or at close):
    // what came in meanwhile otherwise waits for its own timer, or every commit would follow the
    // last one as soon as its fdatasync returned.
    this.committing = (async () => {
      for (let first = true; this.pending.length > 0; first = false) {
        if (!first && !this.group && !this.closed) break;
        await this.commitOnce();
      }
    })();
    try {
      await this.committing;
    } finally {
      this.committing = undefined;
      if (this.pending.length > 0) {
        this.commitWithin(this.group ? this.syncIntervalMs : this.backgroundSyncIntervalMs);
      }
    }
  }

  private async commitOnce(): Promise<void> {
    const runs = this.pending;
    const group = this.group ?? deferred();
    const encoders = this.encoders;
    this.pending = [];
    this.encoders = [];
    this.pendingBytes = 0;
    this.group = undefined;
    this.inflight = group.promise;
    let durable = true;
    let written = 0;
    try {
      let batch: { run: PendingRun; index: RecordIndex }[] = [];
      let batchBytes = 0;
      for (const run of runs) {
        const length = payloadBytes(run, this.codec?.name);
        const active = await this.writable();
        if (
          active.segment.size + batchBytes > 0 &&
          active.segment.size + batchBytes + HEADER_BYTES + length > this.segmentBytes
        ) {
          await this.writeRecords(batch);
          written += batch.length;
          batch = [];
          batchBytes = 0;
          if (active.segment.size > 0) await this.roll(active.segment.id + 1);
        }
        const offset = this.active!.segment.size + batchBytes;
        batch.push({ run, index: { offset, length, seq: run.seq, count: run.count } });
        batchBytes += HEADER_BYTES + length;
      }
      await this.writeRecords(batch);
      written += batch.length;
    } catch (error) {
      durable = false;
      this.rollBeforeNextWrite = true;
      const lost = runs.slice(written).reduce((sum, run) => sum + run.count, 0);
      this.lose(lost, 'write-failed', error);
    }
    // Their bytes are written (or lost): the next commits encode into them again.
    for (const encoder of encoders) {
      if (this.spareEncoders.length >= SPARE_ENCODERS) break;
      if (encoder.bytes.length > SPARE_ENCODER_MAX_BYTES) continue;
      encoder.length = 0;
      this.spareEncoders.push(encoder);
    }
    group.resolve(durable);
    if (this.inflight === group.promise) this.inflight = undefined;
  }

  private async writable(): Promise<{ segment: Segment; handle: FileHandle }> {
    if (this.rollBeforeNextWrite || !this.active) {
      this.rollBeforeNextWrite = false;
      await this.roll((this.segments.at(-1)?.id ?? 0) + 1);
    }
    return this.active!;
  }

  private async writeRecords(records: { run: PendingRun; index: RecordIndex }[]): Promise<void> {
    if (records.length === 0) return;
    const { segment, handle } = this.active!;
    // Commits run one at a time: the buffer is free again once this one is written.
    this.writeBuffer ??= Buffer.allocUnsafe(WRITE_BUFFER_BYTES);
    let size = 0;
    for (let first = 0; first < records.length; ) {
      // As many whole records as the buffer holds, at least one.
      let end = first;
      let bytes = 0;
      while (end < records.length) {
        const frame = HEADER_BYTES + records[end]!.index.length;
        if (end > first && bytes + frame > this.writeBuffer.length) break;
        bytes += frame;
        end++;
      }
      const buffer =
        bytes <= this.writeBuffer.length ? this.writeBuffer.subarray(0, bytes) : Buffer.allocUnsafe(bytes);
      for (let at = 0; first < end; first++) {
        const { run, index } = records[first]!;
        writeFrame(buffer, at, index.length, run, this.codec?.name);
        at += HEADER_BYTES + index.length;
      }
      for (let done = 0; done < buffer.length; ) {
        done += (await handle.write(buffer, done)).bytesWritten;
      }
      size += bytes;
    }
    await handle.datasync();
    segment.size += size;
    this.diskBytes += size;
    for (const { index } of records) {
      segment.records.push(index);
      segment.endSeq = index.seq + index.count;
    }
  }

  /** Starts a new, empty segment file and makes it the one appended to. */
  private async roll(id: number): Promise<void> {
    const previous = this.active;
    const segment: Segment = { id, path: segmentPath(this.dir, id), size: 0, records: [], endSeq: 0 };
    const handle = await open(segment.path, 'wx');
    // The new directory entry must survive a power cut too, not just the file's contents.
    const dir = await open(this.dir, 'r');
    await dir.sync().finally(() => dir.close());
    this.active = { segment, handle };
    this.segments.push(segment);
    if (previous) {
      await previous.handle.close();
      if (previous.segment.records.length === 0) this.removeSegment(previous.segment);
    }
  }

  private makeRoom(bytes: number): boolean {
    if (this.diskBytes + this.pendingBytes + bytes <= this.maxBytes) return true;
    if (this.policy === 'drop-newest') return false;
    while (this.diskBytes + this.pendingBytes + bytes > this.maxBytes) {
      const oldest = this.segments[0];
      if (!oldest || oldest === this.active?.segment) return false;
      let lost = 0;
      for (const record of oldest.records)
        lost += Math.max(0, record.seq + record.count - Math.max(record.seq, this.ackSeq));
      this.removeOldest();
      if (lost > 0) this.lose(lost, 'budget-exhausted');
    }
    return true;
  }

  private lose(events: number, reason: SpoolAlarm['reason'], error?: unknown): void {
    this.dropped += events;
    const now = this.clock.now();
    if (now - this.lastAlarmAt < this.alarmIntervalMs) return;
    this.lastAlarmAt = now;
    const usedBytes = this.diskBytes + this.pendingBytes;
    const what =
      reason === 'write-failed'
        ? `writing to the event spool in ${this.dir} failed (${error instanceof Error ? error.message : String(error)})`
        : `the event spool in ${this.dir} is full (${usedBytes} of ${this.maxBytes} bytes; policy ${this.policy})`;
    this.onAlarm({
      reason,
      policy: this.policy,
      droppedEvents: this.dropped,
      usedBytes,
      maxBytes: this.maxBytes,
      message: `EVENTS LOST: ${what}; ${this.dropped} events dropped so far. Is the event store down? Raise the spool budget or fix the store.`,
    });
  }

  private removeOldest(): void {
    const oldest = this.segments[0];
    if (oldest) this.removeSegment(oldest);
  }

  private removeSegment(segment: Segment): void {
    this.segments = this.segments.filter((s) => s !== segment);
    this.diskBytes -= segment.size;
    // A reader with the file open keeps reading it; later readers no longer see it in the index.
    void unlink(segment.path).catch(() => {});
  }

  private async writeAckFile(): Promise<void> {
    // Not fsync'ed on purpose: a lost ack only means replaying events the store already has,
    // which its idempotent insert skips.
    while (this.ackDirty) {
      this.ackDirty = false;
      const tmp = join(this.dir, `${ACK_FILE}.tmp`);
      try {
        await writeFile(tmp, String(this.ackSeq));
        await rename(tmp, join(this.dir, ACK_FILE));
      } catch (error) {
        this.warnOnce(
          `ack-write`,
          `could not record the acknowledged position in ${this.dir}: ${String(error)}`,
        );
      }
    }
    this.ackWrite = undefined;
  }

  private async readRecords(fromSeq: number, maxEvents: number): Promise<SpoolRecord<E>[]> {
    const out: SpoolRecord<E>[] = [];
    let wanted = maxEvents;
    for (const segment of this.segments) {
      if (wanted <= 0) break;
      if (segment.endSeq <= fromSeq) continue;
      const records = segment.records;
      let first = firstRecordEndingAfter(records, fromSeq);
      let last = first;
      let count = 0;
      for (; last < records.length && count < wanted; last++) {
        const record = records[last]!;
        count += record.seq + record.count - Math.max(record.seq, fromSeq);
      }
      if (first >= last) continue;
      const start = records[first]!.offset;
      const end = records[last - 1]!.offset + HEADER_BYTES + records[last - 1]!.length;
      const span = Buffer.alloc(end - start);
      let handle: FileHandle;
      try {
        handle = await open(segment.path, 'r');
      } catch {
        continue; // deleted since (acknowledged or dropped for room)
      }
      try {
        await handle.read(span, 0, span.length, start);
      } finally {
        await handle.close();
      }
      for (; first < last; first++) {
        const index = records[first]!;
        const at = index.offset - start;
        const payload = span.subarray(at + HEADER_BYTES, at + HEADER_BYTES + index.length);
        if (span.readUInt32LE(at) !== index.length || span.readUInt32LE(at + 4) !== crc32(payload)) {
          this.warnOnce(
            `${segment.id}:${index.offset}`,
            corruptMessage(segment.path, index.offset, 'checksum'),
          );
          continue;
        }
        let all: E[];
        try {
          all = this.decode(payload, index.count);
        } catch (error) {
          this.warnOnce(
            `${segment.id}:${index.offset}`,
            `event spool ${segment.path}: record at byte ${index.offset} cannot be read (${String(error)}); skipping it`,
          );
          continue;
        }
        const skip = Math.max(0, fromSeq - index.seq);
        const events = all.slice(skip, skip + wanted);
        if (events.length === 0) continue;
        out.push({ seq: index.seq + skip, events });
        wanted -= events.length;
        fromSeq = index.seq + skip + events.length;
      }
    }
    return out;
  }

  /** A record's events: JSON, or bytes of the codec its head names. */
  private decode(payload: Buffer, count: number): E[] {
    const head = PAYLOAD_HEAD.exec(payload.subarray(0, HEAD_SCAN_BYTES).toString('latin1'));
    const name = head?.[3];
    if (name === undefined) return (JSON.parse(payload.toString('utf8')) as { events: E[] }).events;
    if (name !== this.codec?.name)
      throw new Error(`written with codec ${name}, which this spool does not have`);
    return this.codec.decode(payload.subarray(head![0].length), count);
  }

  private warnOnce(key: string, message: string): void {
    if (this.warned.has(key)) return;
    this.warned.add(key);
    this.onWarning(message);
  }
}

function deferred(): Deferred {
  let resolve!: (durable: boolean) => void;
  const promise = new Promise<boolean>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

function segmentPath(dir: string, id: number): string {
  return join(dir, `${String(id).padStart(6, '0')}.seg`);
}

function payloadHead(run: PendingRun, codec: string | undefined): string {
  return codec === undefined
    ? `{"seq":${run.seq},"count":${run.count},"events":[`
    : `{"seq":${run.seq},"count":${run.count},"codec":"${codec}"}`;
}

/** Bytes of a run's payload, `{"seq":…,"count":…,"events":[…]}`, or the codec's head and bytes. */
function payloadBytes(run: PendingRun, codec: string | undefined): number {
  if (codec !== undefined) return payloadHead(run, codec).length + run.bytes;
  return payloadHead(run, codec).length + run.bytes + Math.max(0, run.count - 1) + 2;
}

/**
 * Writes a run's record (header, then payload) into `buffer` at `at`. Each JSON is encoded
 * straight into the group's one buffer: joining them into one string, encoding that and
 * concatenating frames copied every event three more times. ASCII JSON (the usual case) is
 * copied as Latin-1, byte for byte, which skips the UTF-8 encoder's work. A codec's bytes are
 * copied as they are, after the head.
 */
function writeFrame(
  buffer: Buffer,
  at: number,
  length: number,
  run: PendingRun,
  codec: string | undefined,
): void {
  let pos = at + HEADER_BYTES;
  pos += buffer.write(payloadHead(run, codec), pos, 'latin1');
  if (codec !== undefined && run.encoded) {
    pos += run.encoded.bytes.copy(buffer, pos, run.start, run.start + run.bytes);
  } else {
    const encoding = run.ascii ? 'latin1' : 'utf8';
    for (let i = 0; i < run.jsons.length; i++) {
      if (i > 0) buffer[pos++] = 0x2c; // ,
      pos += buffer.write(run.jsons[i]!, pos, encoding);
    }
    buffer[pos++] = 0x5d; // ]
    buffer[pos++] = 0x7d; // }
  }
  const payload = buffer.subarray(at + HEADER_BYTES, pos);
  if (payload.length !== length)
    throw new Error(`event spool: a record of ${length} bytes came out as ${payload.length}`);
  buffer.writeUInt32LE(length, at);
  buffer.writeUInt32LE(crc32(payload), at + 4);
}

/**
 * Indexes the valid records of a segment. A record whose checksum does not match is skipped; a
 * length that runs past the end of the file is a torn write (a crash mid-append) and ends the
 * segment, since nothing after it can be framed.
 */
function scanSegment(id: number, path: string, bytes: Buffer, warn: (message: string) => void): Segment {
  const segment: Segment = { id, path, size: bytes.length, records: [], endSeq: 0 };
  let offset = 0;
  while (offset < bytes.length) {
    if (bytes.length - offset < HEADER_BYTES) {
      warn(corruptMessage(path, offset, 'torn'));
      break;
    }
    const length = bytes.readUInt32LE(offset);
    const end = offset + HEADER_BYTES + length;
    if (length === 0 || end > bytes.length) {
      warn(corruptMessage(path, offset, 'torn'));
      break;
    }
    const payload = bytes.subarray(offset + HEADER_BYTES, end);
    const head = PAYLOAD_HEAD.exec(payload.subarray(0, HEAD_SCAN_BYTES).toString('latin1'));
    if (bytes.readUInt32LE(offset + 4) !== crc32(payload) || !head) {
      warn(corruptMessage(path, offset, 'checksum'));
    } else {
      const seq = Number(head[1]);
      const count = Number(head[2]);
      segment.records.push({ offset, length, seq, count });
      segment.endSeq = seq + count;
    }
    offset = end;
  }
  return segment;
}

function corruptMessage(path: string, offset: number, kind: 'torn' | 'checksum'): string {
  return kind === 'torn'
    ? `event spool ${path}: torn record at byte ${offset} (a crash mid-write); skipping the rest of the segment`
    : `event spool ${path}: record at byte ${offset} fails its checksum; skipping it`;
}

function firstRecordEndingAfter(records: readonly RecordIndex[], seq: number): number {
  let lo = 0;
  let hi = records.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const record = records[mid]!;
    if (record.seq + record.count <= seq) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

async function readAck(dir: string): Promise<number> {
  try {
    const value = Number((await readFile(join(dir, ACK_FILE), 'utf8')).trim());
    return Number.isSafeInteger(value) && value >= 0 ? value : 0;
  } catch {
    return 0;
  }
}
