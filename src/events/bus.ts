import type { Clock, Timer } from '../time/clock.js';
import { type InsertOptions, type StagedEvents, StagedUnusable } from './event-store.js';
import type { EventSink } from './sink.js';
import type { Spool } from './spool.js';
import type { WideEvent } from './wide-event.js';

/**
 * What the bus hands batches to: a store's insert for one kind of event, idempotent by id. The
 * bus says whether a batch is its first delivery (see `InsertOptions`); whether that lets the
 * store skip its id check depends on who made the ids, which only the store's kind knows.
 */
export interface BatchStore<E> {
  open(): Promise<void>;
  insert(events: readonly E[], options: Required<InsertOptions>): Promise<void>;
  /**
   * Optional, both or neither (see `EventStore.stage`): with them the bus stages events within
   * `stageIntervalMs` of their writing and holds what the store made of them, not the events.
   */
  stage?(events: readonly E[]): StagedEvents;
  insertStaged?(staged: readonly StagedEvents[], options: Required<InsertOptions>): Promise<void>;
}

export interface EventBusOptions<E = WideEvent> {
  store: BatchStore<E>;
  /** An open spool; the bus owns it from now on and closes it. */
  spool: Spool<E>;
  /**
   * Events kept in memory for the fast path. Beyond them the bus takes no more into memory until
   * it has stored those it holds: the newer ones are read back from the spool. Default 100 000.
   */
  ringCapacity?: number;
  /** A batch is stored as soon as this many events wait (or after `flushIntervalMs`). Default 5000. */
  batchSize?: number;
  /**
   * Most events per `store.insert` when more are waiting (a burst, a store back from an outage,
   * a replay): larger batches cost a store much less per event. Default 10 000.
   */
  maxBatchSize?: number;
  /**
   * A partial batch waits at most this long. Default 2 s: a store pays a fixed cost per batch
   * (DuckDB about 20 ms of CPU for a transaction, lookup and flush), so at 1,000 requests per
   * second batches of 250 cost 100 µs of CPU per event, of 2,000 about 35.
   */
  flushIntervalMs?: number;
  /**
   * With a store that stages (see `BatchStore.stage`): events are staged together at most this
   * long after their writing, or as soon as `stageSize` of them wait. Defaults 250 ms, 512: a
   * young event object lives through at most one scavenge (at a few thousand requests a second,
   * a scavenge comes every few hundred ms), and DuckDB's chunks are filled 512 rows at a time
   * (stagings of about 125 cost more than the collector saved).
   */
  stageIntervalMs?: number;
  stageSize?: number;
  /** Retries after a failed insert wait base · 2^(failures − 1), jittered, up to max. Defaults 100 ms, 30 s. */
  retryBaseMs?: number;
  retryMaxMs?: number;
  /** How long `close()` keeps trying to store what is left before leaving it to the next start. Default 5 s. */
  closeTimeoutMs?: number;
  /** Timers it sets do not keep the process alive. Default: the system clock, unref'd. */
  clock?: Clock;
  random?: () => number;
  /** The store refused a batch (it will be retried); for logs. */
  onStoreError?: (error: unknown, consecutiveFailures: number) => void;
}

export interface EventBusStats {
  /** Events held in memory (as written, or staged by the store). */
  buffered: number;
  /** Events written but not yet stored (in the ring, the spool or both). */
  pending: number;
  spooledBytes: number;
  /** Events handed to the store successfully (replays of already-stored events included). */
  inserted: number;
  failedBatches: number;
  /** Events lost: refused or dropped by a full spool, failed disk writes, writes after close. */
  dropped: number;
  lastError: string | null;
  storeHealthy: boolean;
}

/**
 * The event sink of the gateway: `write` never waits. Each event is appended to the spool
 * (group commit, on disk within a few ms) and kept in a bounded ring; a flush loop hands
 * batches to the store and acknowledges them in the spool once stored. While the store is down
 * the loop retries with backoff and events keep spooling; events the full ring had no room for,
 * and those left by an earlier run, are read back from the spool. The store's insert is idempotent
 * by event id, so replaying a batch that was stored but not yet acknowledged stores it once.
 */
export class EventBus<E = WideEvent> implements EventSink<E> {
  private readonly store: BatchStore<E>;
  private readonly spool: Spool<E>;
  /** Events written and not yet stored, in memory: as written, or staged by the store. */
  private readonly held: Ring<E> | StagingRing<E>;
  private readonly batchSize: number;
  private readonly maxBatchSize: number;
  private readonly flushIntervalMs: number;
  private readonly retryBaseMs: number;
  private readonly retryMaxMs: number;
  private readonly closeTimeoutMs: number;
  private readonly clock: Clock;
  private readonly random: () => number;
  private readonly onStoreError: (error: unknown, consecutiveFailures: number) => void;

  /** Every event with a lower sequence number is stored. */
  private next: number;
  /** Every event with a lower sequence number was handed to the store at least once by this process. */
  private delivered: number;
  /** The sequence number after the last event written. */
  private written: number;
  private started = false;
  private closed = false;
  private stopped = false;
  private closing: Promise<void> | undefined;
  private pumping = false;
  private storeOpened = false;
  private flushTimer: Timer | undefined;
  private retryTimer: Timer | undefined;
  private waiters: { target: number; resolve: (done: boolean) => void; timer?: Timer }[] = [];
  private consecutiveFailures = 0;
  private inserted = 0;
  private failedBatches = 0;
  private droppedAfterClose = 0;
  private lastError: string | null = null;
  private storeHealthy = true;

  constructor(options: EventBusOptions<E>) {
    this.store = options.store;
    this.spool = options.spool;
    this.clock = options.clock ?? backgroundClock;
    this.onStoreError = options.onStoreError ?? (() => {});
    const capacity = options.ringCapacity ?? 100_000;
    const { stage, insertStaged } = this.store;
    this.held =
      stage && insertStaged
        ? new StagingRing<E>({
            capacity,
            stage: (events) => stage.call(this.store, events),
            intervalMs: options.stageIntervalMs ?? 250,
            size: options.stageSize ?? 512,
            clock: this.clock,
            onError: (error) => this.onStoreError(error, this.consecutiveFailures),
          })
        : new Ring<E>(capacity);
    this.batchSize = options.batchSize ?? 5000;
    this.maxBatchSize = Math.max(this.batchSize, options.maxBatchSize ?? 10_000);
    this.flushIntervalMs = options.flushIntervalMs ?? 2000;
    this.retryBaseMs = options.retryBaseMs ?? 100;
    this.retryMaxMs = options.retryMaxMs ?? 30_000;
    this.closeTimeoutMs = options.closeTimeoutMs ?? 5_000;
    this.random = options.random ?? Math.random;
    const { ackSeq, nextSeq } = this.spool.stats();
    this.next = ackSeq;
    this.written = nextSeq;
    // What an earlier run left in the spool may be stored already: never a first delivery.
    this.delivered = nextSeq;
  }

  /**
   * Starts the flush loop. It first replays what an earlier run left unacknowledged in the spool,
   * then stores new events; it does not wait for the store, which may be down (see `drain`).
   */
  start(): void {
    if (this.started || this.closed) return;
    this.started = true;
    this.kick();
  }

  write(event: E): void {
    this.push(event);
  }

  /** Like `write` for each event, given as the spool's codec encoded them already (see `Spool.append`). */
  writeEncoded(events: readonly E[], encoded: { bytes: Uint8Array; sizes: ArrayLike<number> }): void {
    if (this.closed) {
      this.droppedAfterClose += events.length;
      return;
    }
    const seq = this.spool.append(events, encoded);
    if (seq < 0) return;
    for (let i = 0; i < events.length; i++) this.held.push(seq + i, events[i]!);
    this.written = seq + events.length;
    this.wrote();
  }

  /** Like `write`, and resolves true once the event is on disk (false if the spool refused it). */
  append(event: E): Promise<boolean> {
    return this.push(event) < 0 ? Promise.resolve(false) : this.spool.sync();
  }

  /** Flushes now; resolves true once everything written so far is stored, false after `timeoutMs`. */
  drain(timeoutMs = Number.POSITIVE_INFINITY): Promise<boolean> {
    const target = this.written;
    if (this.next >= target) return Promise.resolve(true);
    if (this.stopped) return Promise.resolve(false);
    return new Promise((resolve) => {
      const waiter: (typeof this.waiters)[number] = { target, resolve };
      if (Number.isFinite(timeoutMs)) {
        waiter.timer = this.clock.setTimer(timeoutMs, () => {
          this.waiters = this.waiters.filter((w) => w !== waiter);
          resolve(false);
        });
      }
      this.waiters.push(waiter);
      this.kick();
    });
  }

  stats(): EventBusStats {
    const spool = this.spool.stats();
    return {
      buffered: this.held.length,
      pending: this.written - this.next,
      spooledBytes: spool.bytes,
      inserted: this.inserted,
      failedBatches: this.failedBatches,
      dropped: spool.droppedEvents + this.droppedAfterClose,
      lastError: this.lastError,
      storeHealthy: this.storeHealthy,
    };
  }

  /**
   * Stops taking events, stores what it can within `closeTimeoutMs` (one immediate attempt even
   * while backing off) and closes the spool; whatever is left is replayed by the next start.
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.closed = true;
      if (this.started) {
        this.retryTimer?.cancel();
        this.retryTimer = undefined;
        await this.drain(this.closeTimeoutMs);
      }
      this.stopped = true;
      this.held.close();
      this.flushTimer?.cancel();
      this.retryTimer?.cancel();
      for (const waiter of this.waiters) {
        waiter.timer?.cancel();
        waiter.resolve(false);
      }
      this.waiters = [];
      await this.spool.close();
    })();
    return this.closing;
  }

  private push(event: E): number {
    if (this.closed) {
      this.droppedAfterClose++;
      return -1;
    }
    const seq = this.spool.append([event]);
    if (seq < 0) return -1;
    this.held.push(seq, event);
    this.written = seq + 1;
    this.wrote();
    return seq;
  }

  /** Starts a flush now if a batch is full, or sets its timer. */
  private wrote(): void {
    if (!this.started || this.pumping || this.retryTimer) return;
    if (this.written - this.next >= this.batchSize) this.kick();
    else this.flushTimer ??= this.clock.setTimer(this.flushIntervalMs, () => this.onFlushTimer());
  }

  private onFlushTimer(): void {
    this.flushTimer = undefined;
    this.kick();
  }

  private kick(): void {
    if (!this.started || this.stopped || this.pumping || this.retryTimer) return;
    this.flushTimer?.cancel();
    this.flushTimer = undefined;
    this.pumping = true;
    void this.pump().finally(() => {
      this.pumping = false;
      if (this.stopped || this.retryTimer || this.next >= this.written) return;
      this.flushTimer ??= this.clock.setTimer(this.flushIntervalMs, () => this.onFlushTimer());
    });
  }

  private async pump(): Promise<void> {
    try {
      if (!this.storeOpened) {
        await this.store.open();
        this.storeOpened = true;
      }
      // The first batch goes whatever its size (a timer, a full batch, a drain or the start's
      // replay called for it); after that only full batches, unless a drain or close waits.
      // Otherwise the loop would store the few events that came in during each insert, one
      // small batch after another, and pay the store's fixed cost per batch for every few events.
      for (let first = true; ; ) {
        if (this.stopped) return;
        if (!first && this.written - this.next < this.batchSize && this.waiters.length === 0 && !this.closed)
          return;
        first = false;
        const batch = await this.takeBatch();
        if (!batch) return;
        // First delivery: from memory and past everything handed over before. A retry (the last
        // insert failed, maybe after the store kept some rows) or a replay from the spool is not.
        const firstDelivery = batch.fromRing && batch.endSeq - batch.count >= this.delivered;
        this.delivered = Math.max(this.delivered, batch.endSeq);
        if (batch.staged) {
          try {
            await this.store.insertStaged!(batch.staged, { firstDelivery });
          } catch (error) {
            if (!(error instanceof StagedUnusable)) throw error;
            // Some may be stored already (nothing of the batch was): read back as events, now.
            this.held.clear();
            first = true;
            continue;
          }
        } else await this.store.insert(batch.events, { firstDelivery });
        this.stored(batch);
      }
    } catch (error) {
      this.failed(error);
    }
  }

  /**
   * The next events to store: from the ring when it holds them, otherwise from the spool. Everything
   * waiting, up to `maxBatchSize`: a backlog drains in large batches.
   */
  private async takeBatch(): Promise<(HeldBatch<E> & { fromRing: boolean }) | undefined> {
    for (;;) {
      if (this.next >= this.written) return undefined;
      const size = Math.min(this.maxBatchSize, this.written - this.next);
      this.held.dropBelow(this.next);
      if (this.held.length > 0 && this.held.lo === this.next) {
        const batch = this.held.take(size);
        if (batch.count > 0) return { ...batch, fromRing: true };
        continue; // Staging them failed: they are read back from the spool.
      }
      const until = this.held.length > 0 ? this.held.lo : this.written;
      let batch = await this.spool.read(this.next, Math.min(size, until - this.next));
      if (batch.events.length === 0) {
        // Possibly not group-committed yet; if still absent, the spool lost them (counted there).
        await this.spool.sync();
        batch = await this.spool.read(this.next, Math.min(size, until - this.next));
      }
      if (batch.events.length > 0) return { ...batch, count: batch.events.length, fromRing: false };
      this.next = until;
      this.spool.ack(this.next);
    }
  }

  private stored(batch: HeldBatch<E>): void {
    this.next = Math.max(this.next, batch.endSeq);
    this.held.dropBelow(this.next);
    this.spool.ack(this.next);
    this.inserted += batch.count;
    this.consecutiveFailures = 0;
    this.storeHealthy = true;
    const done = this.waiters.filter((w) => w.target <= this.next);
    if (done.length === 0) return;
    this.waiters = this.waiters.filter((w) => w.target > this.next);
    for (const waiter of done) {
      waiter.timer?.cancel();
      waiter.resolve(true);
    }
  }

  private failed(error: unknown): void {
    this.failedBatches++;
    this.consecutiveFailures++;
    this.storeHealthy = false;
    this.lastError = error instanceof Error ? error.message : String(error);
    this.onStoreError(error, this.consecutiveFailures);
    if (this.stopped) return;
    const ceiling = Math.min(this.retryMaxMs, this.retryBaseMs * 2 ** (this.consecutiveFailures - 1));
    // Half fixed, half jitter: bounded below so an outage is not hammered, spread so many
    // gateways do not retry in step.
    const delay = ceiling / 2 + (this.random() * ceiling) / 2;
    this.retryTimer = this.clock.setTimer(delay, () => {
      this.retryTimer = undefined;
      this.kick();
    });
  }
}

/** The system clock, with timers that do not keep the process alive. */
const backgroundClock: Clock = {
  now: () => performance.now(),
  setTimer(ms, fn) {
    const handle = setTimeout(fn, Math.max(0, ms));
    handle.unref();
    return { cancel: () => clearTimeout(handle) };
  },
};

/** Events taken from memory (as written, or staged) or read from the spool, to be stored. */
type HeldBatch<E> = { count: number; endSeq: number } & (
  | { events: E[]; staged?: undefined }
  | { staged: StagedEvents[]; events?: undefined }
);

/**
 * A fixed-size FIFO of events with consecutive sequence numbers. Full, it keeps what it holds
 * (the events stored next) and takes no more until it is empty again: the newer ones are read
 * back from the spool after it (see `overflowing`).
 */
class Ring<E> {
  private readonly slots: (E | undefined)[];
  private head = 0;
  length = 0;
  /** Sequence number of the oldest event held. */
  lo = 0;
  /**
   * It was full and let an event go: it takes none until it is empty, since what it holds must
   * stay consecutive. Why not forget the oldest instead: those are the ones stored next, and
   * the store's work already done on them (a staging) would be thrown away, at the moment the
   * store is behind and can least afford it.
   */
  private overflowing = false;

  constructor(capacity: number) {
    this.slots = new Array(Math.max(1, capacity));
  }

  push(seq: number, event: E): void {
    if (this.overflowing) return;
    if (this.length > 0 && seq !== this.lo + this.length) this.clear();
    if (this.length === this.slots.length) {
      this.overflowing = true;
      return;
    }
    if (this.length === 0) this.lo = seq;
    this.slots[(this.head + this.length) % this.slots.length] = event;
    this.length++;
  }

  dropBelow(seq: number): void {
    if (seq > this.lo) this.shift(Math.min(this.length, seq - this.lo));
    if (this.length === 0) this.lo = Math.max(this.lo, seq);
  }

  /** Copies up to `max` of the oldest events, leaving them in place until they are stored. */
  take(max: number): HeldBatch<E> {
    const n = Math.min(max, this.length);
    const events: E[] = new Array(n);
    for (let i = 0; i < n; i++) events[i] = this.slots[(this.head + i) % this.slots.length]!;
    return { events, count: n, endSeq: this.lo + n };
  }

  /** Forgets everything held (it is read back from the spool). */
  clear(): void {
    this.shift(this.length);
  }

  close(): void {}

  private shift(n: number): void {
    for (let i = 0; i < n; i++) this.slots[(this.head + i) % this.slots.length] = undefined;
    this.head = (this.head + n) % this.slots.length;
    this.length -= n;
    this.lo += n;
    if (this.length === 0) this.overflowing = false;
  }
}

interface StagingRingOptions<E> {
  capacity: number;
  stage: (events: readonly E[]) => StagedEvents;
  intervalMs: number;
  size: number;
  clock: Clock;
  /** Staging failed: what was held is forgotten and read back from the spool. */
  onError: (error: unknown) => void;
}

/**
 * The ring of a store that stages: the same contract as `Ring` (consecutive sequence numbers,
 * none taken beyond its capacity until it is empty, kept until stored), but events wait here
 * only until `size` of them do or `intervalMs` has passed, and are then held as the store
 * staged them. Batches are whole stagings, so a batch never splits one.
 */
class StagingRing<E> {
  /** Written and not staged yet, from sequence number `freshLo`. */
  private fresh: E[] = [];
  private freshLo = 0;
  /** Staged, oldest first, consecutive, ending at `freshLo`. */
  private staged: { lo: number; count: number; staged: StagedEvents }[] = [];
  private timer: Timer | undefined;
  length = 0;
  /** Sequence number of the oldest event held. */
  lo = 0;
  /** Full, it let an event go, and takes none until it is empty (see `Ring`). */
  private overflowing = false;

  constructor(private readonly options: StagingRingOptions<E>) {}

  push(seq: number, event: E): void {
    if (this.overflowing) return;
    if (this.length > 0 && seq !== this.lo + this.length) this.clear();
    if (this.length >= this.options.capacity) {
      this.overflowing = true;
      return;
    }
    if (this.length === 0) this.lo = seq;
    if (this.fresh.length === 0) this.freshLo = seq;
    this.fresh.push(event);
    this.length++;
    if (this.fresh.length >= this.options.size) this.stageFresh();
    else this.timer ??= this.options.clock.setTimer(this.options.intervalMs, () => this.stageFresh());
  }

  dropBelow(seq: number): void {
    if (seq <= this.lo) return;
    // A staging partly below `seq` goes whole: what is left of it is read back from the spool.
    while (this.staged.length > 0 && this.staged[0]!.lo < seq) this.dropOldest();
    if (this.staged.length === 0 && this.fresh.length > 0 && this.freshLo < seq) {
      const dropped = Math.min(this.fresh.length, seq - this.freshLo);
      this.fresh = this.fresh.slice(dropped);
      this.freshLo += dropped;
      this.length -= dropped;
      this.lo = this.freshLo;
    }
    if (this.length === 0) {
      this.lo = Math.max(this.lo, seq);
      this.overflowing = false;
    }
  }

  /**
   * Stages what waits, then up to `max` events of whole stagings (at least one), oldest first;
   * none if staging failed.
   */
  take(max: number): HeldBatch<E> {
    this.stageFresh();
    const staged: StagedEvents[] = [];
    let count = 0;
    for (const held of this.staged) {
      if (staged.length > 0 && count + held.count > max) break;
      staged.push(held.staged);
      count += held.count;
    }
    return { staged, count, endSeq: this.lo + count };
  }

  clear(): void {
    this.timer?.cancel();
    this.timer = undefined;
    this.fresh = [];
    this.staged = [];
    this.lo += this.length;
    this.length = 0;
    this.overflowing = false;
  }

  close(): void {
    this.timer?.cancel();
    this.timer = undefined;
  }

  private stageFresh(): void {
    this.timer?.cancel();
    this.timer = undefined;
    if (this.fresh.length === 0) return;
    const events = this.fresh;
    this.fresh = [];
    try {
      this.staged.push({ lo: this.freshLo, count: events.length, staged: this.options.stage(events) });
      this.freshLo += events.length;
    } catch (error) {
      this.clear();
      this.options.onError(error);
    }
  }

  private dropOldest(): void {
    const oldest = this.staged.shift()!;
    this.length -= oldest.count;
    this.lo = oldest.lo + oldest.count;
  }
}
