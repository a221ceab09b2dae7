// A gateway stand-in for the event bus crash test, run on the compiled dist/.
//   node bus-crash-child.mjs write <spoolDir> <storeFile>    writes events until killed, printing each
//                                                            id once the bus says it is on disk
//   node bus-crash-child.mjs recover <spoolDir> <storeFile>  replays the spool into the store and exits
import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { EventBus } from '../../dist/events/bus.js';
import { Spool } from '../../dist/events/spool.js';

const [mode, dir, storeFile] = process.argv.slice(2);

/** An event store kept as JSON lines; like a real one, it skips ids it already holds. */
function fileStore(path) {
  const ids = new Set();
  return {
    name: 'jsonl-file',
    async open() {
      if (!existsSync(path)) return;
      for (const line of readFileSync(path, 'utf8').split('\n')) {
        if (line) ids.add(JSON.parse(line).id);
      }
    },
    async insert(events, options) {
      // A slow store (at most 1,000 events/s): at the kill, many acknowledged events are only in the spool.
      await sleep(200);
      const lines = [];
      for (const event of events) {
        // Like the ClickHouse store, a first delivery is not checked: a replay the bus called one
        // would be stored twice, and the test's count would catch it.
        if (!options?.firstDelivery && ids.has(event.id)) continue;
        ids.add(event.id);
        lines.push(`${JSON.stringify(event)}\n`);
      }
      if (lines.length > 0) appendFileSync(path, lines.join(''));
    },
    list: async () => [],
    count: async () => ids.size,
    close: async () => {},
  };
}

function event(id) {
  return {
    schemaVersion: 1,
    id,
    time: new Date().toISOString(),
    operation: 'chat',
    wire: 'openai',
    stream: false,
    keyName: null,
    requestedModel: 'gpt-4o-mini',
    route: null,
    target: 'sim/gpt-4o-mini',
    provider: 'sim',
    model: 'gpt-4o-mini',
    status: 200,
    errorCode: null,
    errorMessage: null,
    clientAborted: false,
    timings: { totalMs: 12, firstTokenMs: null },
    tokens: { input: 10, output: 20, cachedInput: 0, cacheWrite: 0, reasoning: 0 },
    attempts: [],
    retries: 0,
    fallbacks: 0,
    hedges: 0,
    priority: null,
    queuedMs: 0,
    shed: false,
  };
}

const spool = await Spool.open({ dir });
const bus = new EventBus({ store: fileStore(storeFile), spool, batchSize: 200, flushIntervalMs: 10 });
bus.start();

if (mode === 'write') {
  for (let i = 0; ; ) {
    for (let k = 0; k < 20; k++, i++) {
      const id = `${process.pid}-${i}`;
      bus.append(event(id)).then((durable) => {
        if (durable) process.stdout.write(`${id}\n`);
      });
    }
    await sleep(1);
  }
} else {
  const drained = await bus.drain(20_000);
  await bus.close();
  process.stdout.write(drained ? 'recovered\n' : 'not drained\n');
}
