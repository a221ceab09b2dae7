import { join } from 'node:path';
import { type BatchStore, EventBus, type EventBusStats } from './bus.js';
import { clickhouseStore } from './clickhouse-store.js';
import type { CustomEvent } from './custom-event.js';
import { duckdbStore } from './duckdb-store.js';
import type { EventReader } from './event-reader.js';
import type { EventStore } from './event-store.js';
import { jsonlSink } from './jsonl-sink.js';
import { type CustomEventSink, discardCustomSink, discardSink, type EventSink } from './sink.js';
import { Spool, type SpoolAlarm } from './spool.js';
import type { WideEvent } from './wide-event.js';
import { type SpoolCodec, wideEventCodec } from './wide-event-codec.js';
import { openWorkerPipeline } from './worker-pipeline.js';
import type { EventWorkerConfig } from './worker-protocol.js';

export interface EventPipeline {
  sink: EventSink;
  /** The store behind the bus, for queries; undefined for jsonl, stdout and none. */
  store?: EventStore & EventReader;
  stats?: () => EventBusStats;
  /** Where POST /v1/events puts custom events: the same kind of bus and spool, into the same store. */
  custom: CustomEventSink;
  customStats?: () => EventBusStats;
}

export interface PipelineLog {
  warn(details: object, message: string): void;
  error(details: object, message: string): void;
}

/**
 * The configured way out for wide events and custom events. DuckDB and ClickHouse sit behind a
 * bus per kind: events are spooled to disk within milliseconds and stored in batches, so a slow or
 * absent store never blocks a request and a crash loses nothing that was spooled.
 */
export async function openEventPipeline(config: EventWorkerConfig, log: PipelineLog): Promise<EventPipeline> {
  const { events, dataDir } = config;
  switch (events.sink) {
    case 'none':
      return { sink: discardSink, custom: discardCustomSink };
    case 'stdout':
    case 'jsonl': {
      // One stream for both kinds, so lines never interleave; custom events are the lines with a "type".
      const lines = jsonlSink<WideEvent | CustomEvent>(
        events.sink === 'stdout'
          ? { stream: process.stdout }
          : { path: events.path ?? join(dataDir, 'events.jsonl') },
      );
      return {
        sink: lines,
        custom: {
          accept: async (batch) =>
            batch.map((event) => {
              lines.write(event);
              return true;
            }),
        },
      };
    }
    case 'duckdb':
    case 'clickhouse':
      return events.worker ? openWorkerPipeline(config, log) : openStorePipeline(config, log);
  }
}

/**
 * DuckDB or ClickHouse behind a bus per kind of event, on this thread: what the event worker runs
 * (`events.worker`, the default), or the gateway itself without one.
 */
export async function openStorePipeline(
  config: EventWorkerConfig,
  log: PipelineLog,
): Promise<Required<EventPipeline> & { wide: EventBus<WideEvent> }> {
  const { events, dataDir } = config;
  const store =
    events.sink === 'duckdb'
      ? duckdbStore({
          path: events.path ?? join(dataDir, 'events.duckdb'),
          memoryLimit: events.duckdb.memoryLimit,
        })
      : clickhouseStore(events.clickhouse as NonNullable<typeof events.clickhouse>);
  const spoolDir = events.spool.dir ?? join(dataDir, 'spool');
  // Both buses open the store; one open at a time (ClickHouse migrations must not run twice at once).
  let opening: Promise<void> | undefined;
  const open = () =>
    (opening ??= store.open().catch((error: unknown) => {
      opening = undefined;
      throw error;
    }));
  const openBus = async <E>(
    kind: string,
    dir: string,
    insert: BatchStore<E>['insert'],
    codec?: SpoolCodec<E>,
    staging?: Pick<BatchStore<E>, 'stage' | 'insertStaged'>,
    maxBatchSize?: number,
  ) => {
    const spool = await Spool.open<E>({
      dir,
      ...(codec ? { codec } : {}),
      maxBytes: events.spool.maxBytes,
      onFull: events.spool.onFull,
      backgroundSyncIntervalMs: events.spool.commitIntervalMs,
      onAlarm: (alarm: SpoolAlarm) => log.error({ alarm, kind }, alarm.message),
      onWarning: (message: string) => log.warn({ kind }, message),
    });
    const bus = new EventBus<E>({
      store: { open, insert, ...staging },
      spool,
      ...(maxBatchSize !== undefined && { maxBatchSize }),
      onStoreError: (error: unknown, failures: number) =>
        log.warn(
          { store: store.name, kind, failures, error: (error as Error).message },
          'event store unavailable: events stay in the spool',
        ),
    });
    bus.start();
    return bus;
  };
  // Wide events are spooled as bytes (a third of JSON's CPU); custom events as JSON.
  // Wide events come only from the gateway, with ids it made: a first delivery skips the id check.
  // A store that stages its events (DuckDB, ClickHouse) gets them within 250 ms: the bus holds
  // that, not the events.
  // A backlog goes in batches as large as the store takes best (ClickHouse: 100,000 rows an insert).
  const wide = await openBus<WideEvent>(
    'wide',
    spoolDir,
    (batch, options) => store.insert(batch, options),
    wideEventCodec,
    { stage: store.stage, insertStaged: store.insertStaged },
    store.maxBatchEvents,
  );
  // Its own spool (a directory inside the wide events' one), with the same budget and policy.
  // Custom events carry ids their clients chose (a client may post one twice): always checked.
  const custom = await openBus<CustomEvent>('custom', join(spoolDir, 'custom'), (batch) =>
    store.insertCustom(batch),
  );
  return {
    store,
    wide,
    stats: () => wide.stats(),
    customStats: () => custom.stats(),
    sink: {
      write: (event) => wide.write(event),
      close: async () => {
        await Promise.all([wide.close(), custom.close()]);
        await store.close();
      },
    },
    custom: { accept: (batch) => Promise.all(batch.map((event) => custom.append(event))) },
  };
}
