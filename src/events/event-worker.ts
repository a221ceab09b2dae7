import { parentPort, workerData } from 'node:worker_threads';
import type { CustomEvent } from './custom-event.js';
import { QueryError } from './event-reader.js';
import { openStorePipeline } from './event-sink.js';
import { wideEventCodec } from './wide-event-codec.js';
import type { EventWorkerConfig, FromWorker, ThreadError, ToWorker, WorkerStats } from './worker-protocol.js';

/**
 * The event worker: a thread that runs the event pipeline (spools, buses, the store) for the
 * gateway, which hands it wide events in encoded batches (see worker-pipeline.ts). Spooling and
 * storing events costs a request about a quarter of what the gateway itself spends on it
 * (docs/benchmarks.md); here that work runs beside the gateway's event loop, on another core
 * when there is one, and DuckDB's appends never hold up a request.
 */

/** How often the worker tells the gateway its stats, when they changed. */
const STATS_INTERVAL_MS = 100;

const port = parentPort;
if (!port) throw new Error('event-worker.js runs as a worker thread of the gateway');
const post = (message: FromWorker): void => port.postMessage(message);

const threadError = (error: unknown): ThreadError => {
  const e = error instanceof Error ? error : new Error(String(error));
  return { name: e.name, message: e.message, ...(e instanceof QueryError && { reason: e.reason }) };
};

const log = (level: 'warn' | 'error') => (details: object, message: string) =>
  post({ kind: 'log', level, details, message });

let pipeline: Awaited<ReturnType<typeof openStorePipeline>>;
try {
  pipeline = await openStorePipeline(workerData as EventWorkerConfig, {
    warn: log('warn'),
    error: log('error'),
  });
} catch (error) {
  post({ kind: 'failed', error: threadError(error) });
  port.close();
  throw error;
}
const { store, sink, custom, wide } = pipeline;
let received = 0;
let closing = false;

let lastStats = '';
const sendStats = (): void => {
  const stats: WorkerStats = { wide: { ...pipeline.stats(), received }, custom: pipeline.customStats() };
  const text = JSON.stringify(stats);
  if (text === lastStats) return;
  lastStats = text;
  post({ kind: 'stats', stats });
};
const statsTimer = setInterval(sendStats, STATS_INTERVAL_MS);

// The stats go first: whoever waited for the answer reads stats that already count it.
const answer = (id: number, work: () => Promise<unknown>): void => {
  work().then(
    (value) => {
      sendStats();
      post({ kind: 'result', id, value });
    },
    (error: unknown) => {
      sendStats();
      post({ kind: 'result', id, error: threadError(error) });
    },
  );
};

port.on('message', (message: ToWorker) => {
  switch (message.kind) {
    case 'events': {
      const { bytes, sizes } = message;
      const events = wideEventCodec.decode(
        Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength),
        sizes.length,
      );
      // Spooled as they came, not encoded again: the spool's codec is the one that made them.
      wide.writeEncoded(events, { bytes, sizes });
      received += sizes.length;
      return;
    }
    case 'store': {
      const method = store[message.method] as (...args: unknown[]) => Promise<unknown>;
      answer(message.id, () => method.apply(store, message.args));
      return;
    }
    case 'custom':
      answer(message.id, () => custom.accept(message.events as CustomEvent[]));
      return;
    case 'close':
      if (closing) return;
      closing = true;
      answer(message.id, async () => {
        clearInterval(statsTimer);
        await sink.close();
        sendStats();
        // Nothing more comes: the thread ends once the answer is sent.
        setImmediate(() => port.close());
      });
      return;
  }
});

post({ kind: 'ready', store: { name: store.name, engine: store.engine, database: store.database } });
sendStats();
