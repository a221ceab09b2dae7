import type { SluiceConfig } from '../config/schema.js';
import type { EventBusStats } from './bus.js';
import type { SqlEngine } from './event-reader.js';

/** What the event worker needs of the config: its events section and where data lives. */
export type EventWorkerConfig = Pick<SluiceConfig, 'events' | 'dataDir'>;

/** The store methods the main thread may call on the worker's store (all asynchronous). */
export const storeMethods = [
  'open',
  'insert',
  'list',
  'count',
  'insertCustom',
  'related',
  'countCustom',
  'query',
  'execute',
] as const;
export type StoreMethod = (typeof storeMethods)[number];

/** An error as it crosses between threads: QueryError keeps its reason (the HTTP status hangs on it). */
export interface ThreadError {
  name: string;
  message: string;
  reason?: string;
}

/** The wide bus's stats as the worker sees them, with how many events it has taken in. */
export interface WorkerStats {
  wide: EventBusStats & { received: number };
  custom: EventBusStats;
}

export type ToWorker =
  /** Wide events written on the main thread, encoded with `wideEventCodec`: event i's `sizes[i]` bytes in order. */
  | { kind: 'events'; bytes: Uint8Array; sizes: Uint32Array }
  | { kind: 'store'; id: number; method: StoreMethod; args: unknown[] }
  | { kind: 'custom'; id: number; events: unknown[] }
  /** Stores what is left (or leaves it in the spool), closes the store and ends the thread. */
  | { kind: 'close'; id: number };

export type FromWorker =
  | { kind: 'ready'; store: { name: string; engine: SqlEngine; database?: string } }
  | { kind: 'failed'; error: ThreadError }
  | { kind: 'result'; id: number; value?: unknown; error?: ThreadError }
  | { kind: 'stats'; stats: WorkerStats }
  | { kind: 'log'; level: 'warn' | 'error'; details: object; message: string };
