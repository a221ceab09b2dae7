import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { createClient } from '@clickhouse/client';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { stringify } from 'yaml';
import type { SluiceConfigInput } from '../../src/config/schema.js';
import type { EventBusStats } from '../../src/events/bus.js';
import { clickhouseStore } from '../../src/events/clickhouse-store.js';
import { duckdbStore } from '../../src/events/duckdb-store.js';
import type { EventStore } from '../../src/events/event-store.js';
import type { WideEvent } from '../../src/events/wide-event.js';
import { type RunningSimulator, startSimServer } from '../../src/sim/server.js';
import { startClickHouse } from '../support/clickhouse.js';
import { freePort } from '../support/ports.js';
import { type RunningServer, viaSetpriv } from '../support/process.js';

const cli = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));
const ADMIN_KEY = 'sk-admin-events-3f8a1c5e7b9d2f4a';

const fastModel = {
  name: 'sim-fast',
  slots: 64,
  prefillBaseMs: 2,
  prefillMsPerToken: 0,
  decodeMsPerToken: 1,
  batchSlowdown: 0,
  outputTokens: { mean: 12, spread: 0.5 },
};

let sim: RunningSimulator;

beforeAll(async () => {
  sim = await startSimServer({ config: { models: [fastModel] } });
});
afterAll(() => sim?.close());

async function tempDir(name: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), `sluice-${name}-`));
  onTestFinished(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

function configFor(dataDir: string, events: SluiceConfigInput['events']): SluiceConfigInput {
  return {
    logLevel: 'warn',
    dataDir,
    auth: { adminKey: ADMIN_KEY },
    providers: { sim: { type: 'sim', baseUrl: sim.url } },
    routes: { chat: { targets: [{ provider: 'sim', model: 'sim-fast' }] } },
    // Flow control's own tests cover shedding; here every request should reach the simulator.
    flow: { retryBudget: { minPerSecond: 10_000 } },
    events,
  };
}

interface Sluice {
  url: string;
  child: ChildProcess;
  /** The exit code, or the signal that ended it. */
  exited: Promise<number | NodeJS.Signals | null>;
  output(): string;
}

function withoutProviderKeys(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const name of ['OPENAI_API_KEY', 'ANTHROPIC_API_KEY', 'GEMINI_API_KEY', 'SLUICE_ADMIN_KEY'])
    delete env[name];
  return env;
}

/** Runs `sluice up --config <file>` until it answers /healthz; killed at the end of the test if still running. */
async function startSluice(dir: string, config: SluiceConfigInput): Promise<Sluice> {
  const file = join(dir, 'sluice.yaml');
  await writeFile(file, stringify(config));
  const port = await freePort();
  const [command, args] = viaSetpriv(process.execPath, [cli, 'up', '--config', file, '--port', String(port)]);
  const child = spawn(command, args, { env: withoutProviderKeys(), stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => {
    output += chunk.toString('utf8');
  });
  child.stderr.on('data', (chunk: Buffer) => {
    output += chunk.toString('utf8');
  });
  let running = true;
  const exited = new Promise<number | NodeJS.Signals | null>((resolve) =>
    child.once('exit', (code, signal) => {
      running = false;
      resolve(code ?? signal);
    }),
  );
  onTestFinished(async () => {
    if (running) {
      child.kill('SIGKILL');
      await exited;
    }
  });
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  while (
    !(await fetch(`${url}/healthz`).then(
      (r) => r.ok,
      () => false,
    ))
  ) {
    if (!running) throw new Error(`sluice exited before answering /healthz:\n${output}`);
    if (Date.now() > deadline) throw new Error(`sluice did not answer /healthz within 30 s:\n${output}`);
    await sleep(25);
  }
  return { url, child, exited, output: () => output };
}

/** What the client saw of one request. */
interface Sent {
  id: string;
  status: number;
  stream: boolean;
  model: string;
}

/** Sends a chat request and reads the whole answer; the request id is what the gateway recorded. */
async function chat(url: string, model: string, stream: boolean): Promise<Sent> {
  const response = await fetch(`${url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      model,
      messages: [{ role: 'user', content: 'What is 12 + 30?' }],
      max_tokens: 8,
      stream,
    }),
  });
  const body = await response.text();
  if (stream && response.status === 200) expect(body).toContain('data: [DONE]');
  const id = response.headers.get('x-sluice-request-id');
  if (!id) throw new Error(`no x-sluice-request-id on a ${response.status} answer: ${body}`);
  return { id, status: response.status, stream, model };
}

async function busStats(url: string): Promise<{ sink: string; bus: EventBusStats }> {
  const response = await fetch(`${url}/admin/events`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } });
  expect(response.status).toBe(200);
  return (await response.json()) as { sink: string; bus: EventBusStats };
}

/** The value of an unlabelled metric in Prometheus text format. */
async function metric(url: string, name: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  if (!line) throw new Error(`/metrics has no ${name}`);
  return Number(line.slice(name.length + 1));
}

/** Polls the bus until `check` passes; only a lower bound on time, the test timeout is the upper one. */
async function untilBus(url: string, check: (bus: EventBusStats) => boolean): Promise<EventBusStats> {
  for (;;) {
    const { bus } = await busStats(url);
    if (check(bus)) return bus;
    await sleep(50);
  }
}

async function stopCleanly(sluice: Sluice): Promise<void> {
  sluice.child.kill('SIGTERM');
  const code = await sluice.exited;
  if (code !== 0) throw new Error(`sluice exited with ${code}:\n${sluice.output()}`);
}

/** A mix of non-streaming and streaming requests, some at once, and one for a route that does not exist. */
async function sendMix(url: string): Promise<Sent[]> {
  const sent: Sent[] = [];
  sent.push(await chat(url, 'chat', false));
  sent.push(
    ...(await Promise.all([true, false, true, false, true].map((stream) => chat(url, 'chat', stream)))),
  );
  sent.push(await chat(url, 'no-such-route', false));
  sent.push(await chat(url, 'chat', true));
  return sent;
}

function expectRecorded(events: WideEvent[], sent: Sent[]): void {
  const byId = (a: { id: string }, b: { id: string }) => a.id.localeCompare(b.id);
  expect(
    events
      .map((e) => ({ id: e.id, status: e.status, stream: e.stream, model: e.requestedModel, route: e.route }))
      .sort(byId),
  ).toEqual(sent.map((s) => ({ ...s, route: s.model === 'chat' ? 'chat' : null })).sort(byId));
}

async function readStore<T>(store: EventStore, read: (store: EventStore) => Promise<T>): Promise<T> {
  await store.open();
  try {
    return await read(store);
  } finally {
    await store.close();
  }
}

describe('sluice up with the DuckDB event sink', () => {
  it('stores exactly one event per request, with its id, route and status, and exits 0 on SIGTERM', async () => {
    const dir = await tempDir('events-duckdb');
    const sluice = await startSluice(dir, configFor(dir, { sink: 'duckdb' }));

    const sent = await sendMix(sluice.url);
    expect(sent.map((s) => s.status)).toEqual([200, 200, 200, 200, 200, 200, 404, 200]);
    const bus = await untilBus(sluice.url, (b) => b.pending === 0);
    expect((await busStats(sluice.url)).sink).toBe('duckdb');
    expect(bus).toMatchObject({ inserted: sent.length, dropped: 0, failedBatches: 0, storeHealthy: true });
    expect(await metric(sluice.url, 'sluice_events_store_healthy')).toBe(1);
    expect(await metric(sluice.url, 'sluice_events_pending')).toBe(0);
    expect(await metric(sluice.url, 'sluice_events_dropped_total')).toBe(0);

    // Answered just before SIGTERM, so likely still waiting for its batch: the shutdown stores it.
    sent.push(await chat(sluice.url, 'chat', false));
    await stopCleanly(sluice);

    const store = duckdbStore({ path: join(dir, 'events.duckdb') });
    const [count, events] = await readStore(store, async (s) => [
      await s.count(),
      await s.list({ limit: 1000 }),
    ]);
    expect(count).toBe(sent.length);
    expectRecorded(events, sent);
  });

  it('keeps every answered request after a SIGKILL under load, and stores each once after a restart', async () => {
    const dir = await tempDir('events-crash');
    const spoolDir = join(dir, 'spool');
    const config = configFor(dir, { sink: 'duckdb' });
    const sluice = await startSluice(dir, config);

    // Eight clients in a loop, half of them streaming, until the gateway is gone.
    const answered: string[] = [];
    let killed = false;
    const client = async (stream: boolean) => {
      while (!killed) {
        try {
          answered.push((await chat(sluice.url, 'chat', stream)).id);
        } catch (error) {
          if (!killed) throw error;
        }
      }
    };
    let failure: unknown;
    const clients = Promise.all([0, 1, 2, 3, 4, 5, 6, 7].map((i) => client(i % 2 === 0))).catch(
      (error: unknown) => {
        failure = error;
      },
    );
    const during = async (wait: () => Promise<boolean> | boolean) => {
      while (!(await wait())) {
        if (failure !== undefined) throw failure;
        await sleep(10);
      }
    };

    await during(() => answered.length >= 400);
    // The answers so far, while the load goes on. The spool writes events in groups every few ms;
    // a SIGKILL loses nothing written, so once these are in its files, kill mid-stream.
    const beforeKill = [...answered];
    await during(async () => {
      const spooled = await spoolText(spoolDir);
      return beforeKill.every((id) => spooled.includes(id));
    });
    await during(() => answered.length > beforeKill.length);
    killed = true;
    sluice.child.kill('SIGKILL');
    expect(await sluice.exited).toBe('SIGKILL');
    await clients;
    expect(failure).toBeUndefined();

    const restarted = await startSluice(dir, config);
    await untilBus(restarted.url, (b) => b.pending === 0);
    await stopCleanly(restarted);

    const store = duckdbStore({ path: join(dir, 'events.duckdb') });
    const [count, events] = await readStore(store, async (s) => [
      await s.count(),
      await s.list({ limit: 100_000 }),
    ]);
    expect(events.length).toBe(count);
    const wanted = new Set(beforeKill);
    const found = events.map((e) => e.id).filter((id) => wanted.has(id));
    expect(new Set(found).size).toBe(beforeKill.length);
    expect(found.length).toBe(beforeKill.length);
    // Nothing stored twice, whether answered before the kill or caught by it.
    expect(new Set(events.map((e) => e.id)).size).toBe(events.length);
  }, 60_000);
});

/**
 * The spool's segment files as text, one record per group commit: wide events are bytes in them
 * (wideEventCodec), each id among them as its ASCII text.
 */
async function spoolText(spoolDir: string): Promise<string> {
  const names = (await readdir(spoolDir)).filter((name) => name.endsWith('.seg'));
  const texts = await Promise.all(
    names.map((name) => readFile(join(spoolDir, name), 'latin1').catch(() => '')),
  );
  return texts.join('\n');
}

describe('sluice up with the ClickHouse event sink', () => {
  let clickhouse: RunningServer;
  let databases = 0;

  beforeAll(async () => {
    clickhouse = await startClickHouse();
  });
  afterAll(() => clickhouse?.stop());

  /** A database per test, so each starts empty on the one server. */
  const newDatabase = () => `sluice_gateway_events_${++databases}`;

  async function rowsIn(database: string): Promise<number> {
    const client = createClient({ url: clickhouse.url });
    try {
      const result = await client.query({
        query: `SELECT count() AS n FROM ${database}.events`,
        format: 'JSONEachRow',
      });
      const [row] = await result.json<{ n: string }>();
      return Number(row?.n ?? 0);
    } finally {
      await client.close();
    }
  }

  it('stores exactly one event per request, with its id, route and status, and exits 0 on SIGTERM', async () => {
    const dir = await tempDir('events-clickhouse');
    const database = newDatabase();
    const sluice = await startSluice(
      dir,
      configFor(dir, { sink: 'clickhouse', clickhouse: { url: clickhouse.url, database } }),
    );

    const sent = await sendMix(sluice.url);
    const bus = await untilBus(sluice.url, (b) => b.pending === 0);
    expect((await busStats(sluice.url)).sink).toBe('clickhouse');
    expect(bus).toMatchObject({ inserted: sent.length, dropped: 0, failedBatches: 0, storeHealthy: true });
    expect(await metric(sluice.url, 'sluice_events_store_healthy')).toBe(1);
    expect(await metric(sluice.url, 'sluice_events_pending')).toBe(0);

    sent.push(await chat(sluice.url, 'chat', false));
    await stopCleanly(sluice);

    const store = clickhouseStore({ url: clickhouse.url, database });
    const [count, events] = await readStore(store, async (s) => [
      await s.count(),
      await s.list({ limit: 1000 }),
    ]);
    expect(count).toBe(sent.length);
    expect(await rowsIn(database)).toBe(sent.length);
    expectRecorded(events, sent);
  });

  it('spools events while ClickHouse is unreachable and stores them once after a restart that reaches it', async () => {
    const dir = await tempDir('events-outage');
    const database = newDatabase();
    const closedPort = await freePort();
    const down = await startSluice(
      dir,
      configFor(dir, { sink: 'clickhouse', clickhouse: { url: `http://127.0.0.1:${closedPort}`, database } }),
    );

    const sent = await sendMix(down.url);
    // The store is down from the start; the events reach the worker's spool a few ms after their
    // answers, and its figures the gateway within 100 ms: wait for them there.
    const bus = await untilBus(down.url, (b) => !b.storeHealthy && b.spooledBytes > 0);
    expect(bus).toMatchObject({ pending: sent.length, inserted: 0, dropped: 0 });
    expect(bus.lastError).toBeTruthy();
    expect(await metric(down.url, 'sluice_events_store_healthy')).toBe(0);
    expect(await metric(down.url, 'sluice_events_pending')).toBe(sent.length);
    expect(await metric(down.url, 'sluice_events_spool_bytes')).toBeGreaterThan(0);
    // Shutdown gives up on the store after its timeout and leaves the events in the spool.
    await stopCleanly(down);

    const up = await startSluice(
      dir,
      configFor(dir, { sink: 'clickhouse', clickhouse: { url: clickhouse.url, database } }),
    );
    sent.push(await chat(up.url, 'chat', false));
    const replayed = await untilBus(up.url, (b) => b.pending === 0);
    expect(replayed).toMatchObject({ storeHealthy: true, dropped: 0 });
    expect(await metric(up.url, 'sluice_events_store_healthy')).toBe(1);
    await stopCleanly(up);

    const store = clickhouseStore({ url: clickhouse.url, database });
    const [count, events] = await readStore(store, async (s) => [
      await s.count(),
      await s.list({ limit: 1000 }),
    ]);
    expect(count).toBe(sent.length);
    expect(await rowsIn(database)).toBe(sent.length);
    expectRecorded(events, sent);
  }, 60_000);
});
