import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { EventBusStats } from './bus.js';
import type { CustomEvent } from './custom-event.js';
import { type EventReader, QueryError } from './event-reader.js';
import type { EventPipeline, PipelineLog } from './event-sink.js';
import type { EventStore } from './event-store.js';
import type { WideEvent } from './wide-event.js';
import { ByteWriter, wideEventCodec } from './wide-event-codec.js';
import {
  type EventWorkerConfig,
  type FromWorker,
  type StoreMethod,
  storeMethods,
  type ThreadError,
  type ToWorker,
  type WorkerStats,
} from './worker-protocol.js';

/**
 * Wide events are handed to the worker in batches, at most this long after their writing (or
 * as soon as HANDOFF_BYTES of them wait): a message costs the event loop a few µs, a batch of a
 * few ms of requests costs it that once. What a crash can lose grows by as much.
 */
const HANDOFF_MS = 5;
const HANDOFF_BYTES = 256 * 1024;
/** Encoded events held while the worker starts again after a failure; beyond it new ones are lost. */
const MAX_HELD_BYTES = 64 * 1024 * 1024;
/** A writer grown past this for a burst is not kept for the next batches. */
const KEPT_WRITER_BYTES = 1024 * 1024;
const RESTART_BASE_MS = 500;
const RESTART_MAX_MS = 30_000;
/** Loss is logged at most this often while it lasts. */
const ALARM_INTERVAL_MS = 10_000;

const noStats: EventBusStats = {
  buffered: 0,
  pending: 0,
  spooledBytes: 0,
  inserted: 0,
  failedBatches: 0,
  dropped: 0,
  lastError: null,
  storeHealthy: true,
};

/**
 * The event pipeline on a worker thread (`events.worker`, the default with DuckDB and
 * ClickHouse): the gateway encodes each wide event (the spool's own bytes, `wideEventCodec`) and
 * hands them over every few ms; the worker spools, stages and stores them, and answers the
 * store's queries and custom events. Its stats reach the gateway every 100 ms. If the thread
 * fails, it is started again (the spool replays what it had not stored) and events wait meanwhile.
 */
export async function openWorkerPipeline(
  config: EventWorkerConfig,
  log: PipelineLog,
): Promise<EventPipeline & { worker(): Worker | undefined }> {
  const thread = new EventThread(config, log);
  const store = await thread.start();
  return {
    store,
    sink: { write: (event) => thread.write(event), close: () => thread.close() },
    stats: () => thread.wideStats(),
    custom: { accept: (events) => thread.acceptCustom(events) },
    customStats: () => thread.stats?.custom ?? noStats,
    // The thread running now (none while it is started again): for tests and diagnostics.
    worker: () => thread.current(),
  };
}

/** The worker's script: beside this file once built; the tests run the sources, and build dist/ first. */
function workerScript(): URL {
  const script = new URL('./event-worker.js', import.meta.url);
  if (existsSync(fileURLToPath(script))) return script;
  const at = script.pathname.lastIndexOf('/src/');
  return new URL(`${script.pathname.slice(0, at)}/dist/${script.pathname.slice(at + 5)}`, script);
}

interface Call {
  resolve: (value: unknown) => void;
  reject: (error: Error) => void;
}

class EventThread {
  private worker: Worker | undefined;
  private ready = false;
  private closed = false;
  private closing: Promise<void> | undefined;
  private restartTimer: NodeJS.Timeout | undefined;
  private failures = 0;
  /** Encoded events not yet handed over, and each one's size. */
  private writer = new ByteWriter();
  private sizes: number[] = [];
  private handOffTimer: NodeJS.Timeout | undefined;
  /** Events handed to the current worker; its stats say how many it has taken in. */
  private posted = 0;
  private dropped = 0;
  private lastAlarm = Number.NEGATIVE_INFINITY;
  private readonly calls = new Map<number, Call>();
  private nextId = 0;
  stats: WorkerStats | undefined;

  constructor(
    private readonly config: EventWorkerConfig,
    private readonly log: PipelineLog,
  ) {}

  current(): Worker | undefined {
    return this.ready ? this.worker : undefined;
  }

  /** Starts the thread; resolves once its pipeline is open, with the store as seen from here. */
  start(): Promise<EventStore & EventReader> {
    return new Promise((resolve, reject) => {
      const worker = new Worker(workerScript(), { workerData: this.config });
      this.worker = worker;
      let started = false;
      worker.on('message', (message: FromWorker) => {
        switch (message.kind) {
          case 'ready':
            started = true;
            this.ready = true;
            this.failures = 0;
            this.handOff();
            resolve(this.storeProxy(message.store));
            return;
          case 'failed':
            reject(fromThread(message.error));
            return;
          case 'stats':
            this.stats = message.stats;
            return;
          case 'result': {
            const call = this.calls.get(message.id);
            this.calls.delete(message.id);
            if (message.error) call?.reject(fromThread(message.error));
            else call?.resolve(message.value);
            return;
          }
          case 'log':
            this.log[message.level](message.details, message.message);
            return;
        }
      });
      worker.on('error', (error) => {
        if (!started) reject(error);
        else this.log.error({ error: error.message }, 'the event worker failed');
      });
      worker.on('exit', (code) => {
        if (!started) reject(new Error(`the event worker ended (code ${code}) before its pipeline was open`));
        if (this.worker === worker) this.stopped(code, started);
      });
    });
  }

  write(event: WideEvent): void {
    if (this.closed) {
      this.lose(1, 'the event pipeline is closed');
      return;
    }
    const before = this.writer.length;
    wideEventCodec.encode(event, this.writer);
    if (this.writer.length > MAX_HELD_BYTES) {
      this.writer.length = before;
      this.lose(1, `the event worker is not running and ${MAX_HELD_BYTES} bytes of events wait for it`);
      return;
    }
    this.sizes.push(this.writer.length - before);
    if (!this.ready) return;
    if (this.writer.length >= HANDOFF_BYTES) this.handOff();
    else this.handOffTimer ??= setTimeout(() => this.handOff(), HANDOFF_MS).unref();
  }

  /** Custom events are acknowledged once the worker has them on disk; not while it is down. */
  async acceptCustom(events: readonly CustomEvent[]): Promise<boolean[]> {
    if (!this.ready) return events.map(() => false);
    try {
      return (await this.call((id) => ({ kind: 'custom', id, events: [...events] }))) as boolean[];
    } catch {
      return events.map(() => false);
    }
  }

  wideStats(): EventBusStats {
    const { received, ...stats } = this.stats?.wide ?? { ...noStats, received: 0 };
    const unposted = this.sizes.length;
    return {
      ...stats,
      buffered: stats.buffered + unposted,
      pending: stats.pending + (this.posted - received) + unposted,
      dropped: stats.dropped + this.dropped,
      storeHealthy: this.ready && stats.storeHealthy,
    };
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      this.closed = true;
      clearTimeout(this.restartTimer);
      const worker = this.worker;
      if (!this.ready || !worker) {
        if (this.sizes.length > 0)
          this.lose(this.sizes.length, 'the event worker is not running at shutdown');
        await worker?.terminate();
        return;
      }
      this.handOff();
      const exited = new Promise((resolve) => worker.once('exit', resolve));
      // A worker that fails while closing leaves the rest in the spool, for the next start.
      await this.call((id) => ({ kind: 'close', id })).catch((error: Error) =>
        this.log.error({ error: error.message }, 'the event worker failed while closing'),
      );
      await exited;
    })();
    return this.closing;
  }

  private handOff(): void {
    clearTimeout(this.handOffTimer);
    this.handOffTimer = undefined;
    if (!this.ready || this.sizes.length === 0) return;
    const bytes = new Uint8Array(this.writer.length);
    bytes.set(this.writer.bytes.subarray(0, this.writer.length));
    const sizes = Uint32Array.from(this.sizes);
    // Counted before the send: a transferred array reads as empty after.
    this.posted += sizes.length;
    this.send({ kind: 'events', bytes, sizes }, [bytes.buffer, sizes.buffer]);
    this.sizes = [];
    this.writer.length = 0;
    if (this.writer.bytes.length > KEPT_WRITER_BYTES) this.writer = new ByteWriter();
  }

  private send(message: ToWorker, transfer: ArrayBuffer[] = []): void {
    (this.worker as Worker).postMessage(message, transfer);
  }

  private call(message: (id: number) => ToWorker): Promise<unknown> {
    if (!this.ready) return Promise.reject(notRunning(this.closed));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.calls.set(id, { resolve, reject });
      this.send(message(id));
    });
  }

  private storeProxy(info: { name: string; engine: EventReader['engine']; database?: string }) {
    const proxy = { name: info.name, engine: info.engine, database: info.database } as Record<
      string,
      unknown
    >;
    for (const method of storeMethods) {
      proxy[method] = (...args: unknown[]) =>
        this.call((id) => ({ kind: 'store', id, method: method as StoreMethod, args }));
    }
    // The store is the worker's: closing it is closing the pipeline.
    proxy.close = () => this.close();
    return proxy as unknown as EventStore & EventReader;
  }

  /** The thread ended without being asked: what it was asked fails, and it starts again. */
  private stopped(code: number, started: boolean): void {
    this.ready = false;
    this.worker = undefined;
    for (const call of this.calls.values()) call.reject(notRunning(this.closed));
    this.calls.clear();
    if (this.closed || !started) return;
    this.stats = undefined;
    this.posted = 0;
    this.failures++;
    const delay = Math.min(RESTART_MAX_MS, RESTART_BASE_MS * 2 ** (this.failures - 1));
    this.log.error(
      { code, restartInMs: delay },
      'the event worker stopped: starting it again; events written meanwhile wait in memory, those it had not spooled are lost',
    );
    this.restartTimer = setTimeout(() => {
      this.start().catch((error: unknown) => {
        this.log.error({ error: (error as Error).message }, 'the event worker did not start again');
        this.stopped(1, true);
      });
    }, delay).unref();
  }

  private lose(count: number, why: string): void {
    this.dropped += count;
    const now = Date.now();
    if (now - this.lastAlarm < ALARM_INTERVAL_MS) return;
    this.lastAlarm = now;
    this.log.error({ dropped: this.dropped }, `wide events lost: ${why}`);
  }
}

function notRunning(closed: boolean): QueryError {
  return new QueryError(
    closed ? 'the event pipeline is closed' : 'the event worker is not running: it is being started again',
    'unavailable',
  );
}

function fromThread(error: ThreadError): Error {
  if (error.name === 'QueryError') return new QueryError(error.message, error.reason as QueryError['reason']);
  const copy = new Error(error.message);
  copy.name = error.name;
  return copy;
}
