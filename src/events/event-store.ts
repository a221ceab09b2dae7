import type { CustomEvent } from './custom-event.js';
import type { WideEvent } from './wide-event.js';

/**
 * Where wide events are kept for analytics: an embedded columnar file (DuckDB) or a cluster
 * (ClickHouse). The bus hands it batches; it must be idempotent by event id, because a batch
 * replayed from the spool after a crash may already be partly stored.
 */
export interface EventStore {
  readonly name: string;
  /** Creates or migrates the schema. Safe to call on every start. */
  open(): Promise<void>;
  /** Stores a batch; events whose id is already stored are skipped (exactly once by id). */
  insert(events: readonly WideEvent[]): Promise<void>;
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
