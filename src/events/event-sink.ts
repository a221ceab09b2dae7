import { join } from 'node:path';
import type { SluiceConfig } from '../config/schema.js';
import { EventBus, type EventBusStats } from './bus.js';
import { clickhouseStore } from './clickhouse-store.js';
import { duckdbStore } from './duckdb-store.js';
import type { EventReader } from './event-reader.js';
import type { EventStore } from './event-store.js';
import { jsonlSink } from './jsonl-sink.js';
import { discardSink, type EventSink } from './sink.js';
import { Spool, type SpoolAlarm } from './spool.js';

export interface EventPipeline {
  sink: EventSink;
  /** The store behind the bus, for queries; undefined for jsonl, stdout and none. */
  store?: EventStore & EventReader;
  stats?: () => EventBusStats;
}

export interface PipelineLog {
  warn(details: object, message: string): void;
  error(details: object, message: string): void;
}

/**
 * The configured way out for wide events. DuckDB and ClickHouse sit behind the bus: events are
 * spooled to disk within milliseconds and stored in batches, so a slow or absent store never
 * blocks a request and a crash loses nothing that was spooled.
 */
export async function openEventPipeline(config: SluiceConfig, log: PipelineLog): Promise<EventPipeline> {
  const { events, dataDir } = config;
  switch (events.sink) {
    case 'none':
      return { sink: discardSink };
    case 'stdout':
      return { sink: jsonlSink({ stream: process.stdout }) };
    case 'jsonl':
      return { sink: jsonlSink({ path: events.path ?? join(dataDir, 'events.jsonl') }) };
    case 'duckdb':
    case 'clickhouse': {
      const store =
        events.sink === 'duckdb'
          ? duckdbStore({ path: events.path ?? join(dataDir, 'events.duckdb') })
          : clickhouseStore(events.clickhouse as NonNullable<typeof events.clickhouse>);
      const spool = await Spool.open({
        dir: events.spool.dir ?? join(dataDir, 'spool'),
        maxBytes: events.spool.maxBytes,
        onFull: events.spool.onFull,
        onAlarm: (alarm: SpoolAlarm) => log.error({ alarm }, alarm.message),
        onWarning: (message: string) => log.warn({}, message),
      });
      const bus = new EventBus({
        store,
        spool,
        onStoreError: (error: unknown, failures: number) =>
          log.warn(
            { store: store.name, failures, error: (error as Error).message },
            'event store unavailable: events stay in the spool',
          ),
      });
      bus.start();
      return {
        store,
        stats: () => bus.stats(),
        sink: {
          write: (event) => bus.write(event),
          close: async () => {
            await bus.close();
            await store.close();
          },
        },
      };
    }
  }
}
