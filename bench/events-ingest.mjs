#!/usr/bin/env node
/**
 * The event ingest benchmark: how many events per second Sluice puts into its event stores.
 *
 *   1. store: realistic wide events (schema v2: two attempts, tags, cost, a trace id) inserted in
 *      batches straight into DuckDB (a file) and ClickHouse, the call the event bus makes;
 *   2. bus: the same events written one by one to the event bus, which spools them to disk (group
 *      commit, fdatasync) and drains them into the store in batches, as the gateway does;
 *   3. POST /v1/events: `sluice up` (dist/) with declared custom event types; clients post JSON
 *      batches for a while, then the run waits until every accepted event is stored.
 *
 * Each figure is events divided by wall-clock seconds, from the first event to the last one
 * stored (checked by counting the store's rows). docs/benchmarks.md ("Event ingest") holds the
 * latest table; --no-docs leaves it alone.
 *
 *   npm run bench:events                             # build, run (a few minutes), rewrite the table
 *   node bench/events-ingest.mjs --quick --no-docs   # a smoke run of the harness
 */
import { fork, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const ADMIN_KEY = 'sk-admin-bench-events-0123456789abcdef';

const { values: flags } = parseArgs({
  options: {
    events: { type: 'string', default: '300000' },
    batch: { type: 'string', default: '1000,10000,100000' },
    'http-seconds': { type: 'string', default: '10' },
    'http-batch': { type: 'string', default: '1000' },
    'http-concurrency': { type: 'string', default: '4' },
    'paced-rate': { type: 'string', default: '1000,100000' },
    'paced-seconds': { type: 'string', default: '20' },
    stores: { type: 'string', default: 'duckdb,clickhouse' },
    clickhouse: { type: 'string' },
    quick: { type: 'boolean', default: false },
    'no-docs': { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (flags.help) {
  process.stdout.write(`usage: node bench/events-ingest.mjs [options]   (run npm run build first)
  --events N            wide events per store and bus run (default 300000)
  --batch B[,B…]        events per store insert (default 1000,10000,100000; each store only up to the
                        most its bus hands it at once: DuckDB 10000, ClickHouse 100000)
  --http-seconds S      how long clients post to /v1/events (default 10)
  --http-batch B        custom events per POST (default 1000)
  --http-concurrency C  clients posting at once (default 4)
  --paced-rate R[,R…]   wide events per second for the paced bus runs, as a gateway writes them
                        (default 1000,100000: what an event costs, and whether the bus keeps up)
  --paced-seconds S     how long a paced bus run writes, at most --events events (default 20)
  --stores LIST         duckdb, clickhouse or both (default duckdb,clickhouse)
  --clickhouse URL      a running ClickHouse to use (default: start a throwaway clickhouse-server)
  --quick               10 000 events, 3 s of HTTP: a smoke run, not figures to publish
  --no-docs             do not rewrite the table in docs/benchmarks.md
`);
  process.exit(0);
}

const positive = (name) => {
  const value = Number(flags[name]);
  if (!Number.isInteger(value) || value <= 0) throw new Error(`--${name} must be a positive integer`);
  return value;
};
const config = {
  events: flags.quick ? 10_000 : positive('events'),
  batches: flags.batch.split(',').map(Number),
  httpSeconds: flags.quick ? 3 : positive('http-seconds'),
  httpBatch: positive('http-batch'),
  httpConcurrency: positive('http-concurrency'),
  pacedRates: flags['paced-rate'].split(',').map(Number),
  pacedSeconds: flags.quick ? 5 : positive('paced-seconds'),
  stores: flags.stores.split(',').map((s) => s.trim()),
};
for (const batch of config.batches) {
  if (!Number.isInteger(batch) || batch <= 0) throw new Error('--batch takes positive integers');
}
for (const rate of config.pacedRates) {
  if (!Number.isInteger(rate) || rate <= 0) throw new Error('--paced-rate takes positive integers');
}
for (const store of config.stores) {
  if (store !== 'duckdb' && store !== 'clickhouse') throw new Error(`unknown store ${store}`);
}
const cli = join(root, 'dist/cli/main.js');
if (!existsSync(cli))
  throw new Error('dist/ is missing: run `npm run build` first (npm run bench:events does)');

const { duckdbStore } = await import(join(root, 'dist/events/duckdb-store.js'));
const { clickhouseStore } = await import(join(root, 'dist/events/clickhouse-store.js'));
const { nativeBlock } = await import(join(root, 'dist/events/clickhouse-native.js'));
const { fillChunks, appendChunks } = await import(join(root, 'dist/events/duckdb-chunk-writer.js'));
const { eventColumns, eventColumnReaders, duckdbType } = await import(
  join(root, 'dist/events/event-columns.js')
);
const { DuckDBInstance } = await import('@duckdb/node-api');
const { EventBus } = await import(join(root, 'dist/events/bus.js'));
const { Spool } = await import(join(root, 'dist/events/spool.js'));
// The gateway's wide events are spooled by this codec (src/events/event-sink.ts): so are the bench's.
const { wideEventCodec } = await import(join(root, 'dist/events/wide-event-codec.js'));

const log = (message) => process.stderr.write(`[events-ingest] ${message}\n`);
const work = mkdtempSync(join(tmpdir(), 'sluice-bench-events-'));
const cleanups = [() => rmSync(work, { recursive: true, force: true })];
let databases = 0;
/** The throwaway ClickHouse's pid, to count its CPU time too. */
let clickhousePid;

/**
 * CPU seconds a process has used, its threads included (DuckDB's run inside Node). The machine
 * may be shared: wall-clock rates then fall with the load, CPU seconds per event much less.
 */
function cpuSeconds(pid) {
  if (pid === undefined) return 0;
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    // utime and stime, fields 14 and 15 of the line (11 and 12 after the command), in ticks of 1/100 s.
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return 0;
  }
}

/** Starts counting the CPU seconds of `pids`; the returned function says how many were used since. */
function cpuMeter(pids) {
  const before = pids.map(cpuSeconds);
  return () => pids.reduce((sum, pid, i) => sum + cpuSeconds(pid) - before[i], 0);
}

// ---------------------------------------------------------------------------------------------
// Realistic wide events: what a busy gateway records, with the variety real traffic has.

/** A small deterministic generator, so every run stores the same events (ids aside). */
function prng(seed) {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const routes = ['chat', 'support-bot', 'summarise', 'search-rerank', 'code-review'];
const targets = ['openai/gpt-4o-mini', 'anthropic/claude-3-5-haiku', 'azure/gpt-4o', 'vllm/llama-3.1-8b'];
const teams = ['search', 'support', 'growth', 'platform'];

function wideEvents(n, startMs) {
  const random = prng(42);
  const pick = (list) => list[Math.floor(random() * list.length)];
  const events = new Array(n);
  for (let i = 0; i < n; i++) {
    const route = pick(routes);
    const first = pick(targets);
    const failedOver = random() < 0.05;
    const answered = failedOver ? pick(targets) : first;
    const status = random() < 0.02 ? 502 : 200;
    const input = 200 + Math.floor(random() * 3000);
    const output = 20 + Math.floor(random() * 600);
    const total = 150 + random() * 2500;
    const stream = random() < 0.6;
    const attempts = [
      {
        target: first,
        reason: 'first',
        outcome: failedOver ? 'timeout' : status === 200 ? 'ok' : 'error',
        queuedMs: Math.round(random() * 500) / 100,
        status: failedOver ? null : status,
        startMs: 0.41,
        durationMs: Math.round(total * 100) / 100,
        firstByteMs: stream ? Math.round(random() * 40000) / 100 : null,
        error: failedOver ? 'deadline exceeded' : status === 200 ? null : 'upstream returned 502',
      },
    ];
    if (failedOver) {
      attempts.push({
        ...attempts[0],
        target: answered,
        reason: 'fallback',
        outcome: 'ok',
        status: 200,
        error: null,
      });
    }
    events[i] = {
      schemaVersion: 2,
      id: randomUUID(),
      traceId: random() < 0.5 ? randomUUID().replaceAll('-', '') : null,
      time: new Date(startMs + i * 3).toISOString(),
      operation: random() < 0.1 ? 'embeddings' : 'chat',
      wire: random() < 0.8 ? 'openai' : 'anthropic',
      stream,
      keyName: `app-${Math.floor(random() * 40)}`,
      keyId: `key_${Math.floor(random() * 40)}`,
      team: pick(teams),
      org: 'acme',
      requestedModel: route,
      route,
      target: answered,
      provider: answered.split('/')[0],
      model: answered.split('/')[1],
      region: 'eu-west',
      routeVersion: 'a1b2c3d4e5f6',
      promptId: random() < 0.5 ? `prompt-${Math.floor(random() * 20)}` : null,
      promptVersion: random() < 0.5 ? String(1 + Math.floor(random() * 9)) : null,
      retrievalIndexHash: null,
      status,
      errorClass: status === 200 ? null : 'upstream',
      errorCode: status === 200 ? null : 'upstream_error',
      errorMessage: status === 200 ? null : `${answered} returned 502 Bad Gateway`,
      clientAborted: false,
      timings: {
        totalMs: Math.round(total * 100) / 100,
        firstTokenMs: stream ? Math.round(random() * 40000) / 100 : null,
        upstreamMs: Math.round((total - 1) * 100) / 100,
      },
      tokens: { input, output, cachedInput: Math.floor(input / 3), cacheWrite: 0, reasoning: 0 },
      costUsd: Math.round((input * 0.15 + output * 0.6) * 10) / 1e7,
      cacheStatus: random() < 0.2 ? 'hit' : 'miss',
      attempts,
      retries: 0,
      fallbacks: failedOver ? 1 : 0,
      hedges: 0,
      priority: pick(['normal', 'normal', 'high', 'batch']),
      queuedMs: attempts[0].queuedMs,
      shed: false,
      shedReason: null,
      tags: { feature: pick(['autocomplete', 'chat', 'triage']), ab: random() < 0.5 ? 'a' : 'b' },
      requestBody: null,
      responseBody: null,
    };
  }
  return events;
}

// ---------------------------------------------------------------------------------------------
// Stores

async function freePort() {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolvePort(port));
    });
  });
}

async function until(check, what, timeoutMs = 120_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await sleep(25);
  }
}

/** A throwaway ClickHouse (as test/support/clickhouse.ts starts one), stopped at the end. */
async function startClickHouse() {
  const binary = ['/usr/bin/clickhouse-server', '/usr/sbin/clickhouse-server'].find(existsSync);
  if (!binary) throw new Error('clickhouse-server is not installed (apt-get install -y clickhouse-server)');
  const dir = mkdtempSync(join(tmpdir(), 'sluice-bench-clickhouse-'));
  const [httpPort, tcpPort] = [await freePort(), await freePort()];
  writeFileSync(
    join(dir, 'config.xml'),
    `<?xml version="1.0"?>
<yandex>
  <logger><level>warning</level><log>${dir}/server.log</log><errorlog>${dir}/server.err.log</errorlog></logger>
  <http_port>${httpPort}</http_port><tcp_port>${tcpPort}</tcp_port><listen_host>127.0.0.1</listen_host>
  <keep_alive_timeout>1</keep_alive_timeout>
  <path>${dir}/data/</path><tmp_path>${dir}/tmp/</tmp_path>
  <user_files_path>${dir}/user_files/</user_files_path><format_schema_path>${dir}/format_schemas/</format_schema_path>
  <users_config>${dir}/users.xml</users_config>
  <default_profile>default</default_profile><default_database>default</default_database>
  <mark_cache_size>268435456</mark_cache_size>
</yandex>
`,
  );
  writeFileSync(
    join(dir, 'users.xml'),
    `<?xml version="1.0"?>
<yandex><profiles><default/></profiles><quotas><default/></quotas>
<users><default><password></password><networks><ip>::/0</ip></networks><profile>default</profile><quota>default</quota></default></users>
</yandex>
`,
  );
  const child = spawn(binary, [`--config-file=${join(dir, 'config.xml')}`], { cwd: dir, stdio: 'ignore' });
  clickhousePid = child.pid;
  const url = `http://127.0.0.1:${httpPort}`;
  cleanups.push(async () => {
    child.kill('SIGTERM');
    await new Promise((done) => (child.exitCode !== null ? done() : child.once('exit', done)));
    rmSync(dir, { recursive: true, force: true });
  });
  await until(
    async () => (await (await fetch(`${url}/ping`)).text()).trim() === 'Ok.',
    'ClickHouse to start',
    30_000,
  );
  return url;
}

function openStore(kind, clickhouseUrl, database = `sluice_bench_${process.pid}_${++databases}`) {
  if (kind === 'duckdb')
    return duckdbStore({ path: join(mkdtempSync(join(work, 'duckdb-')), 'events.duckdb') });
  return clickhouseStore({ url: clickhouseUrl, database });
}

/**
 * Inserts every event in batches of `batch`, as the bus does a first delivery (new events from
 * its memory: ClickHouse does not look their ids up); the rows are counted after.
 */
async function storeRun(store, events, batch, pids) {
  await store.open();
  const cpu = cpuMeter(pids);
  const start = performance.now();
  for (let i = 0; i < events.length; i += batch)
    await store.insert(events.slice(i, i + batch), { firstDelivery: true });
  const stored = await store.count();
  // Closing DuckDB checkpoints what its write-ahead log still holds: part of storing the events.
  await store.close();
  const seconds = (performance.now() - start) / 1000;
  const cpuUsed = cpu();
  if (stored !== events.length)
    throw new Error(`${store.name}: ${stored} rows stored, ${events.length} sent`);
  return { events: events.length, seconds, perSecond: events.length / seconds, cpu: cpuUsed };
}

/** An insert's body as the store sends it: Native blocks of 512 rows. */
function nativeBody(events) {
  const blocks = [];
  for (let i = 0; i < events.length; i += 512) blocks.push(nativeBlock(events.slice(i, i + 512)));
  return Buffer.concat(blocks);
}

/**
 * The engine's own share of storing wide events, the floor under the store rows: the store's
 * work done before the clock starts (DuckDB: its data chunks filled; ClickHouse: its
 * Native body encoded, and no id check), then only what the engine does is timed. DuckDB:
 * append, commit and the closing checkpoint, in one transaction per batch, into a table of the
 * store's columns (CPU: the process, DuckDB's threads). ClickHouse: the same bytes POSTed as
 * `INSERT … FORMAT Native` into the store's table, and the merges that follow within the
 * run (CPU: the server, and this process sending).
 */
async function engineRun(kind, events, batch, clickhouseUrl, pids) {
  const batches = [];
  for (let i = 0; i < events.length; i += batch) {
    const slice = events.slice(i, i + batch);
    batches.push(kind === 'duckdb' ? await fillChunks(eventColumnReaders, slice) : nativeBody(slice));
  }
  if (kind === 'duckdb') {
    const instance = await DuckDBInstance.create(
      join(mkdtempSync(join(work, 'duckdb-engine-')), 'events.duckdb'),
      {
        checkpoint_threshold: '128MiB', // as the store sets it
      },
    );
    const db = await instance.connect();
    await db.run(
      `CREATE TABLE events (${eventColumns.map((col) => `${col.name} ${duckdbType(col)}`).join(', ')})`,
    );
    const cpu = cpuMeter(pids);
    const start = performance.now();
    for (const chunks of batches) {
      await db.run('BEGIN TRANSACTION');
      const appender = await db.createAppender('events');
      await appendChunks(appender, chunks);
      appender.closeSync();
      await db.run('COMMIT');
    }
    const reader = await db.runAndReadAll('SELECT count(*) AS n FROM events');
    const stored = Number(reader.getRowObjectsJS()[0].n);
    db.closeSync();
    instance.closeSync(); // the checkpoint
    const seconds = (performance.now() - start) / 1000;
    const cpuUsed = cpu();
    if (stored !== events.length)
      throw new Error(`duckdb engine: ${stored} rows stored, ${events.length} sent`);
    return { events: events.length, seconds, perSecond: events.length / seconds, cpu: cpuUsed };
  }
  const store = openStore('clickhouse', clickhouseUrl);
  await store.open(); // creates the database and its tables
  await store.close();
  const table = `sluice_bench_${process.pid}_${databases}.events`;
  const columns = eventColumns.map((col) => col.name).join(', ');
  const post = async (query, body) => {
    const response = await fetch(`${clickhouseUrl}/?query=${encodeURIComponent(query)}`, {
      method: 'POST',
      body,
    });
    const text = await response.text();
    if (!response.ok) throw new Error(`clickhouse: ${response.status} ${text}`);
    return text;
  };
  // The store rows before this one leave parts to merge: wait for those merges, or this row
  // would count them as its own.
  await until(async () => Number(await post('SELECT count() FROM system.merges')) === 0, 'merges to end');
  const idle = cpuMeter(pids);
  await sleep(2000); // the server's own background work, subtracted below
  const idleCpu = idle();
  const cpu = cpuMeter(pids);
  const start = performance.now();
  for (const body of batches) await post(`INSERT INTO ${table} (${columns}) FORMAT Native`, body);
  const seconds = (performance.now() - start) / 1000;
  const stored = Number(await post(`SELECT count() FROM ${table}`));
  await sleep(2000); // the merges these parts start
  const cpuUsed = Math.max(0, cpu() - (idleCpu * (2 + seconds)) / 2);
  if (stored !== events.length)
    throw new Error(`clickhouse engine: ${stored} rows stored, ${events.length} sent`);
  return { events: events.length, seconds, perSecond: events.length / seconds, cpu: cpuUsed };
}

/** Writes every event to the bus one by one, then waits until the bus has stored them all. */
async function busRun(store, events, pids) {
  const spool = await Spool.open({ dir: mkdtempSync(join(work, 'spool-')), codec: wideEventCodec });
  const bus = new EventBus({ store, spool, maxBatchSize: maxBatch(store) });
  await store.open();
  const cpu = cpuMeter(pids);
  const start = performance.now();
  bus.start();
  for (const event of events) bus.write(event);
  const writtenSeconds = (performance.now() - start) / 1000;
  if (!(await bus.drain(300_000))) throw new Error(`${store.name}: the bus did not drain`);
  const { dropped } = bus.stats();
  await bus.close();
  await store.close(); // the checkpoint, as in storeRun
  const seconds = (performance.now() - start) / 1000;
  const cpuUsed = cpu();
  await store.open();
  const stored = await store.count();
  await store.close();
  if (stored !== events.length || dropped > 0) {
    throw new Error(
      `${store.name}: ${stored} rows stored and ${dropped} dropped of ${events.length} written`,
    );
  }
  return { events: events.length, seconds, perSecond: events.length / seconds, writtenSeconds, cpu: cpuUsed };
}

/**
 * Writes wide events to the bus at a steady rate, as a gateway under load does (every 2 ms, what
 * is due), then waits until the bus has stored them. What it measures is CPU per event: the
 * spool's group commits and the store's batches at that rate, not how fast a backlog drains;
 * and whether the bus keeps up: how long after the last write the last event is stored, and how
 * many events it had to read back from the spool (none while its memory holds what waits).
 * Each event is built as it is written, as a gateway builds it: one of `templates` with a new id
 * and the current time, so it dies young unless the bus holds it. The same timer loop building
 * the same events without a bus is measured first and subtracted. Run in a process of its own
 * (`pacedInProcess`).
 */
async function pacedRun(store, templates, pids, rate, writeSeconds = config.pacedSeconds) {
  const n = Math.min(config.events, rate * writeSeconds);
  const build = (i) => ({
    ...templates[i % templates.length],
    id: randomUUID(),
    time: new Date().toISOString(),
  });
  const pace = async (write) => {
    const start = performance.now();
    let i = 0;
    await new Promise((done) => {
      const tick = () => {
        const due = Math.min(n, Math.floor(((performance.now() - start) / 1000) * rate));
        for (; i < due; i++) write(build(i));
        if (i >= n) done();
        else setTimeout(tick, 2);
      };
      setTimeout(tick, 2);
    });
  };
  const idle = cpuMeter(pids);
  await pace(() => {});
  const idleCpu = idle();
  const spool = await Spool.open({ dir: mkdtempSync(join(work, 'spool-')), codec: wideEventCodec });
  let readBack = 0;
  const counted = {
    open: () => store.open(),
    insert: (batch, options) => {
      if (!options.firstDelivery) readBack += batch.length;
      return store.insert(batch, options);
    },
    ...(store.stage && {
      stage: (batch) => store.stage(batch),
      insertStaged: (staged, options) => store.insertStaged(staged, options),
    }),
  };
  const bus = new EventBus({ store: counted, spool, maxBatchSize: maxBatch(store) });
  await store.open();
  const cpu = cpuMeter(pids);
  const start = performance.now();
  bus.start();
  await pace((event) => bus.write(event));
  const lastWrite = performance.now();
  if (!(await bus.drain(300_000))) throw new Error(`${store.name}: the bus did not drain`);
  const lagSeconds = (performance.now() - lastWrite) / 1000;
  const { dropped } = bus.stats();
  await bus.close();
  await store.close(); // the checkpoint, as in storeRun
  const seconds = (performance.now() - start) / 1000;
  const cpuUsed = Math.max(0, cpu() - idleCpu);
  await store.open();
  const stored = await store.count();
  await store.close();
  if (stored !== n || dropped > 0) {
    throw new Error(`${store.name}: ${stored} rows stored and ${dropped} dropped of ${n} written`);
  }
  return { events: n, seconds, perSecond: n / seconds, cpu: cpuUsed, lagSeconds, readBack };
}

/** Templates the paced rows build their events from. */
const PACED_TEMPLATES = 10_000;

/**
 * `pacedRun` in a process of its own, with a heap of its own, as a gateway's bus has: not this
 * process's pre-built events (about 400 MB for 300,000) and the garbage of the rows before,
 * which every major collection during the run had to mark, counted as the bus's CPU. In this
 * process, a ClickHouse bus whose store encodes its events as they come cost twice the CPU an
 * event of one that encodes them at the insert (40 against 20 µs at 100,000 a second), while on
 * a small heap it costs less; and the DuckDB bus at 1,000 a second read 190 µs an event with
 * the full set of events built, 66 to 80 with a tenth (docs/benchmarks.md, "Event ingest").
 */
function pacedInProcess(kind, clickhouseUrl, rate) {
  return new Promise((resolve, reject) => {
    const child = fork(fileURLToPath(import.meta.url), process.argv.slice(2), {
      env: {
        ...process.env,
        SLUICE_BENCH_PACED: JSON.stringify({ kind, clickhouseUrl, clickhousePid, rate }),
      },
    });
    child.once('message', resolve);
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`the paced run's process ended (code ${code})`)));
  });
}

async function pacedChild({ kind, clickhouseUrl, clickhousePid, rate }) {
  const pids = [process.pid, ...(kind === 'clickhouse' ? [clickhousePid] : [])];
  const templates = wideEvents(Math.min(PACED_TEMPLATES, config.events), Date.now());
  // 20,000 events into a store of their own first, so that the run measures a warm bus, as a
  // gateway's is after its first seconds.
  const warm = openStore(kind, clickhouseUrl, `sluice_bench_${process.pid}_paced_warm`);
  await pacedRun(warm, templates, pids, 20_000, 1);
  const store = openStore(kind, clickhouseUrl, `sluice_bench_${process.pid}_paced`);
  const result = await pacedRun(store, templates, pids, rate);
  await new Promise((sent) => process.send(result, sent));
}

// ---------------------------------------------------------------------------------------------
// POST /v1/events through `sluice up`

const eventTypes = {
  feedback: {
    requestId: 'required',
    fields: {
      score: { type: 'integer', required: true },
      rating: { type: 'enum', values: ['up', 'down'] },
      comment: { type: 'string' },
      userId: { type: 'string', from: 'user.id' },
      commentLength: { type: 'integer', derive: { length: 'comment' } },
    },
    redact: { patterns: ['email', 'phone'] },
  },
  purchase: {
    fields: {
      amount: { type: 'number', required: true },
      currency: { type: 'enum', values: ['EUR', 'USD'], required: true },
      cents: { type: 'integer', derive: { round: { multiply: ['amount', 100] } } },
    },
  },
};

/** Batches of custom events as other systems send them: feedback on requests, some purchases. */
function customBatches(count, size) {
  const random = prng(7);
  const comments = ['Great answer, thanks!', 'Wrong: the invoice total is off.', 'Too long.', 'Perfect', ''];
  return Array.from({ length: count }, () =>
    JSON.stringify(
      Array.from({ length: size }, () =>
        random() < 0.8
          ? {
              type: 'feedback',
              requestId: randomUUID(),
              score: Math.floor(random() * 5) + 1,
              rating: random() < 0.7 ? 'up' : 'down',
              comment: comments[Math.floor(random() * comments.length)],
              user: { id: `u-${Math.floor(random() * 100_000)}` },
              time: new Date(Date.now() - Math.floor(random() * 3_600_000)).toISOString(),
            }
          : {
              type: 'purchase',
              amount: Math.round(random() * 50_000) / 100,
              currency: random() < 0.5 ? 'EUR' : 'USD',
            },
      ),
    ),
  );
}

async function httpRun(kind, clickhouseUrl) {
  const dir = mkdtempSync(join(work, `sluice-${kind}-`));
  const port = await freePort();
  const database = `sluice_bench_${process.pid}_${++databases}`;
  const events = {
    sink: kind,
    ...(kind === 'clickhouse' && { clickhouse: { url: clickhouseUrl, database } }),
    types: eventTypes,
    ingest: { maxBatchEvents: Math.max(1000, config.httpBatch), maxBodyBytes: 64 * 1024 * 1024 },
  };
  const file = join(dir, 'sluice.json');
  // JSON is YAML: the config file needs no YAML library here.
  writeFileSync(
    file,
    JSON.stringify({ dataDir: dir, logLevel: 'warn', auth: { adminKey: ADMIN_KEY }, events }, null, 2),
  );
  const child = spawn(process.execPath, [cli, 'up', '--config', file, '--port', String(port)], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (chunk) => {
    stderr = (stderr + chunk).slice(-4000);
  });
  const stop = async () => {
    if (child.exitCode !== null) return;
    child.kill('SIGTERM');
    await new Promise((done) => child.once('exit', done));
  };
  cleanups.push(stop);
  const url = `http://127.0.0.1:${port}`;
  await until(async () => (await fetch(`${url}/healthz`)).ok, `sluice up (${stderr})`, 30_000);
  const customBus = async () =>
    (await (await fetch(`${url}/admin/events`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } })).json())
      .customBus;

  const bodies = customBatches(16, config.httpBatch);
  const cpu = cpuMeter([child.pid, ...(kind === 'clickhouse' ? [clickhousePid] : [])]);
  let accepted = 0;
  let rejected = 0;
  let posts = 0;
  const start = performance.now();
  const stopAt = start + config.httpSeconds * 1000;
  await Promise.all(
    Array.from({ length: config.httpConcurrency }, async (_, client) => {
      for (let i = client; performance.now() < stopAt; i += config.httpConcurrency) {
        const response = await fetch(`${url}/v1/events`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${ADMIN_KEY}` },
          body: bodies[i % bodies.length],
        });
        const result = await response.json();
        if (response.status !== 200)
          throw new Error(`POST /v1/events: ${response.status} ${JSON.stringify(result)}`);
        accepted += result.accepted;
        rejected += result.rejected;
        posts++;
      }
    }),
  );
  const postedSeconds = (performance.now() - start) / 1000;
  await until(async () => (await customBus()).pending === 0, 'every accepted event to be stored', 300_000);
  const storedSeconds = (performance.now() - start) / 1000;
  const cpuUsed = cpu();
  await stop();
  const check =
    kind === 'duckdb'
      ? duckdbStore({ path: join(dir, 'events.duckdb') })
      : clickhouseStore({ url: clickhouseUrl, database });
  await check.open();
  const stored = await check.countCustom();
  await check.close();
  if (stored !== accepted || rejected > 0) {
    throw new Error(`${kind}: ${stored} custom events stored, ${accepted} accepted, ${rejected} rejected`);
  }
  return {
    posts,
    events: accepted,
    postedSeconds,
    seconds: storedSeconds,
    cpu: cpuUsed,
    acceptedPerSecond: accepted / postedSeconds,
    perSecond: accepted / storedSeconds,
  };
}

// ---------------------------------------------------------------------------------------------

const fmt = (n) => Math.round(n).toLocaleString('en-US');
const names = { duckdb: 'DuckDB', clickhouse: 'ClickHouse 18.16' };

/** The most events the bus hands `store` at once, as the gateway's pipeline sets it (src/events/event-sink.ts). */
const maxBatch = (store) => store.maxBatchEvents ?? 10_000;

const storePids = (kind) => [process.pid, ...(kind === 'clickhouse' ? [clickhousePid] : [])];

async function main() {
  const loadBefore = loadavg()[0];
  const machine = `${cpus().length} × ${cpus()[0]?.model.trim() ?? 'unknown CPU'}, Node ${process.versions.node}`;
  log(`${machine}; ${fmt(config.events)} wide events per run`);
  const clickhouseUrl = config.stores.includes('clickhouse')
    ? (flags.clickhouse ?? (await startClickHouse()))
    : undefined;
  const events = wideEvents(config.events, Date.parse('2026-11-01T00:00:00Z'));
  const bytes = events.reduce((sum, event) => sum + JSON.stringify(event).length, 0) / events.length;
  const rows = [];
  for (const kind of config.stores) {
    const most = maxBatch(openStore(kind, clickhouseUrl));
    for (const batch of config.batches.filter((b) => b <= most)) {
      const result = await storeRun(openStore(kind, clickhouseUrl), events, batch, storePids(kind));
      log(`${kind} insert, batches of ${batch}: ${fmt(result.perSecond)} events/s`);
      rows.push({ path: `${names[kind]}: store insert, batches of ${fmt(batch)}`, ...result });
    }
    const engine = await engineRun(kind, events, most, clickhouseUrl, storePids(kind));
    const perEvent = (engine.cpu * 1e6) / engine.events;
    log(`${kind} engine alone, batches of ${most}: ${perEvent.toFixed(1)} µs CPU per event`);
    rows.push({
      path: `${names[kind]}: the engine alone (batches of ${fmt(most)} prepared beforehand)`,
      ...engine,
      note: `${perEvent.toFixed(1)} µs CPU per event`,
    });
    const bus = await busRun(openStore(kind, clickhouseUrl), events, storePids(kind));
    log(`${kind} bus: ${fmt(bus.perSecond)} events/s (written in ${bus.writtenSeconds.toFixed(2)} s)`);
    rows.push({ path: `${names[kind]}: bus (spool + batches of up to ${fmt(most)})`, ...bus });
    for (const rate of config.pacedRates) {
      const paced = await pacedInProcess(kind, clickhouseUrl, rate);
      const perEvent = `${((paced.cpu * 1e6) / paced.events).toFixed(0)} µs CPU per event`;
      const keptUp = `all stored ${paced.lagSeconds.toFixed(1)} s after the last write, ${fmt(paced.readBack)} read back from the spool`;
      log(`${kind} bus at ${fmt(rate)}/s: ${perEvent}, ${keptUp}`);
      rows.push({
        path: `${names[kind]}: bus at a steady ${fmt(rate)} events/s`,
        ...paced,
        note: `${perEvent}; ${keptUp}`,
      });
    }
    const http = await httpRun(kind, clickhouseUrl);
    log(
      `${kind} POST /v1/events: ${fmt(http.acceptedPerSecond)} accepted/s, ${fmt(http.perSecond)} stored/s`,
    );
    rows.push({
      path: `${names[kind]}: POST /v1/events (${fmt(config.httpBatch)} per request, ${config.httpConcurrency} clients)`,
      ...http,
      note: `${fmt(http.acceptedPerSecond)} accepted/s while posting`,
    });
  }
  const load = `load average ${loadBefore.toFixed(1)} at the start, ${loadavg()[0].toFixed(1)} at the end`;
  const cpuNote = flags.clickhouse
    ? 'CPU is the Node process (Sluice, or the harness with DuckDB in it); the external ClickHouse is not counted.'
    : 'CPU is the Node process (Sluice, or the harness with DuckDB in it) plus the ClickHouse server.';
  const table = [
    `Run of ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC on ${machine}, ${load}${flags.quick ? ' (--quick: not figures to publish)' : ''}.`,
    `Wide events average ${fmt(bytes)} bytes of JSON; custom events are feedback (80%) and purchases. ${cpuNote}`,
    '',
    '| path | events | seconds | events/s | CPU s | events per CPU-second | note |',
    '| --- | ---: | ---: | ---: | ---: | ---: | --- |',
    ...rows.map(
      (row) =>
        `| ${row.path} | ${fmt(row.events)} | ${row.seconds.toFixed(2)} | ${fmt(row.perSecond)} | ${row.cpu.toFixed(2)} | ${row.cpu > 0 ? fmt(row.events / row.cpu) : 'n/a'} | ${row.note ?? ''} |`,
    ),
  ].join('\n');
  process.stdout.write(`${table}\n`);
  if (!flags['no-docs']) writeDocs(table);
}

function writeDocs(table) {
  const file = join(root, 'docs/benchmarks.md');
  const start = '<!-- bench:events:start -->';
  const end = '<!-- bench:events:end -->';
  const text = readFileSync(file, 'utf8');
  const from = text.indexOf(start);
  const to = text.indexOf(end);
  if (from < 0 || to < from)
    return log(`docs/benchmarks.md has no ${start} … ${end} markers: table not written`);
  writeFileSync(file, `${text.slice(0, from + start.length)}\n${table}\n${text.slice(to)}`);
  log('table written to docs/benchmarks.md');
}

try {
  const paced = process.env.SLUICE_BENCH_PACED;
  if (paced) await pacedChild(JSON.parse(paced));
  else await main();
} finally {
  for (const cleanup of cleanups.reverse()) await cleanup();
}
