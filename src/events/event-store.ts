import type { CustomEvent } from './custom-event.js';
import type { WideEvent } from './wide-event.js';

/** How a batch reaches `insert`. */
export interface InsertOptions {
  /**
   * The batch's first delivery: the bus took it from memory and has never handed any of its
   * events to a store before (not a retry after a failed insert, not a replay from the spool).
   * Wide events carry ids the gateway made (UUIDv7: time plus 74 random bits), so none of a
   * first delivery's ids can be stored yet and the store may skip looking for them. Absent or
   * false: the store checks, as it must for anything that may have been stored before.
   */
  firstDelivery?: boolean;
}

/**
 * Where wide events are kept for analytics: an embedded columnar file (DuckDB) or a cluster
 * (ClickHouse). The bus hands it batches; it must be idempotent by event id, because a batch
 * replayed from the spool after a crash may already be partly stored.
 */
export interface EventStore {
  readonly name: string;
  /**
   * Most events the bus hands `insert` at once when more wait (a burst, a backlog, a replay).
   * Default 10,000 (the bus's `maxBatchSize`).
   */
  readonly maxBatchEvents?: number;
  /** Creates or migrates the schema. Safe to call on every start. */
  open(): Promise<void>;
  /** Stores a batch; events whose id is already stored are skipped (exactly once by id). */
  insert(events: readonly WideEvent[], options?: InsertOptions): Promise<void>;
  /**
   * Optional: a few events just written, turned into what the store will append (DuckDB: its
   * data chunks, filled; ClickHouse: a Native block), so that the bus holds that until their
   * batch is stored rather than the events themselves (see `StagedEvents`). Synchronous; needs
   * no open store.
   */
  stage?(events: readonly WideEvent[]): StagedEvents;
  /**
   * Stores staged events like `insert`, in one transaction (ClickHouse: one insert); throws
   * `StagedUnusable` (storing nothing) when some of them may be stored already, or the store
   * cannot tell (ClickHouse, on anything but a first delivery), for the caller to insert them as
   * events.
   */
  insertStaged?(staged: readonly StagedEvents[], options?: InsertOptions): Promise<void>;
  /** Events in a time range, newest first, for tests and the request list (cursor = last id seen). */
  list(query: { from?: string; to?: string; limit: number }): Promise<WideEvent[]>;
  /** How many events are stored. */
  count(): Promise<number>;
  /** Stores custom events (POST /v1/events) in `custom_events`; exactly once by id, like `insert`. */
  insertCustom(events: readonly CustomEvent[]): Promise<void>;
  /** The custom events that point at a request (feedback, outcomes), oldest first. */
  related(requestId: string): Promise<CustomEvent[]>;
  /** How many custom events are stored. */
  countCustom(): Promise<number>;
  close(): Promise<void>;
}

/**
 * Events in a store's own form, made by its `stage` as they are written. Why: a gateway stores
 * its wide events in batches of thousands, about 2 s apart; an event object held that long
 * outlives two scavenges and is copied into the old generation. Holding whole events rather
 * than their ids until stored cost 8% of the gateway's throughput on the benchmark machine.
 * Staged within 250 ms, most events die young; what is held instead (DuckDB's chunks are native
 * memory, the ids strings; ClickHouse's blocks are Buffers) costs the collector little.
 */
export interface StagedEvents {
  /** The rows the store will append for them: each id once. */
  readonly rows: number;
}

/** `insertStaged` cannot store these as staged (some may be stored already): insert the events. */
export class StagedUnusable extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StagedUnusable';
  }
}
