import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it, onTestFinished } from 'vitest';
import { sluiceConfigSchema } from '../../src/config/schema.js';
import { duckdbStore } from '../../src/events/duckdb-store.js';
import { QueryError } from '../../src/events/event-reader.js';
import { openEventPipeline } from '../../src/events/event-sink.js';
import { openWorkerPipeline } from '../../src/events/worker-pipeline.js';
import { plainEvent } from '../support/wide-events.js';

async function dataDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-event-worker-'));
  onTestFinished(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

const config = (dir: string, events: object = {}) =>
  sluiceConfigSchema.parse({ dataDir: dir, events: { sink: 'duckdb', ...events } });

function quietLog() {
  const lines: { level: string; message: string; details: object }[] = [];
  return {
    lines,
    warn: (details: object, message: string) => lines.push({ level: 'warn', message, details }),
    error: (details: object, message: string) => lines.push({ level: 'error', message, details }),
  };
}

async function until(check: () => boolean | Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (await check()) return;
    await sleep(20);
  }
  throw new Error(`timed out waiting until ${what}`);
}

const events = (prefix: string, n: number) =>
  Array.from({ length: n }, (_, i) => plainEvent(`${prefix}-${String(i).padStart(4, '0')}`));

describe('the event pipeline on a worker thread', () => {
  it('runs by default with DuckDB, stores what the gateway writes, and counts it pending until stored', async () => {
    const dir = await dataDir();
    const pipeline = await openEventPipeline(config(dir), quietLog());
    onTestFinished(() => pipeline.sink.close());
    expect(pipeline.store?.engine).toBe('duckdb');

    const written = events('a', 300);
    for (const event of written) pipeline.sink.write(event);
    // Still on this thread, or handed over and not yet stored: never read as stored.
    expect(pipeline.stats?.().pending).toBe(300);
    await until(() => pipeline.stats?.().pending === 0, 'the events are stored');
    expect(pipeline.stats?.()).toMatchObject({ inserted: 300, dropped: 0, storeHealthy: true });

    expect(await pipeline.store?.count()).toBe(300);
    const listed = await pipeline.store?.list({ limit: 1000 });
    expect(listed?.map((e) => e.id).sort()).toEqual(written.map((e) => e.id));
    const { rows } = await pipeline.store!.query(
      { sql: 'SELECT count(*) FROM events WHERE id LIKE $prefix', params: { prefix: 'a-%' } },
      { timeoutMs: 5000 },
    );
    expect(rows).toEqual([[300]]);
  });

  it('passes a query error back with its reason, so the API answers with the right status', async () => {
    const dir = await dataDir();
    const pipeline = await openEventPipeline(config(dir), quietLog());
    onTestFinished(() => pipeline.sink.close());
    const failed = await pipeline
      .store!.query({ sql: 'SELECT nothing_here FROM events' }, { timeoutMs: 5000 })
      .catch((error: unknown) => error);
    expect(failed).toBeInstanceOf(QueryError);
    expect(failed).toMatchObject({ reason: 'invalid', message: expect.stringContaining('nothing_here') });
    const refused = await pipeline
      .store!.query({ sql: 'DELETE FROM events' }, { timeoutMs: 5000, readOnly: true })
      .catch((error: unknown) => error);
    expect(refused).toMatchObject({ name: 'QueryError', reason: 'read_only' });
  });

  it('stores at close what was written just before, and ends the thread', async () => {
    const dir = await dataDir();
    const pipeline = await openWorkerPipeline(config(dir), quietLog());
    const thread = pipeline.worker()!;
    const exited = new Promise((resolve) => thread.once('exit', resolve));
    for (const event of events('b', 50)) pipeline.sink.write(event);
    await pipeline.sink.close();
    expect(await exited).toBe(0);

    const store = duckdbStore({ path: join(dir, 'events.duckdb') });
    await store.open();
    onTestFinished(() => store.close());
    expect(await store.count()).toBe(50);
  });

  it('starts the worker again after it dies; events written meanwhile wait for it and are stored', async () => {
    const dir = await dataDir();
    const log = quietLog();
    const pipeline = await openWorkerPipeline(config(dir), log);
    onTestFinished(() => pipeline.sink.close());
    for (const event of events('before', 100)) pipeline.sink.write(event);
    await until(() => pipeline.stats?.().pending === 0, 'the first events are stored');

    await pipeline.worker()!.terminate();
    expect(pipeline.worker()).toBeUndefined();
    expect(pipeline.stats?.().storeHealthy).toBe(false);
    // Asked of the store while it is down: unavailable, which the API answers with 503.
    await expect(pipeline.store!.count()).rejects.toMatchObject({ reason: 'unavailable' });
    expect(await pipeline.custom.accept([])).toEqual([]);
    for (const event of events('during', 100)) pipeline.sink.write(event);
    expect(pipeline.stats?.().pending).toBe(100);

    await until(() => pipeline.worker() !== undefined, 'the worker runs again');
    await until(() => pipeline.stats?.().pending === 0, 'the waiting events are stored');
    expect(await pipeline.store!.count()).toBe(200);
    expect(
      log.lines.some((line) => line.level === 'error' && /event worker stopped/.test(line.message)),
    ).toBe(true);
  });

  it('fails to open, with the reason, when its spool cannot be made', async () => {
    const dir = await dataDir();
    const file = join(dir, 'a-file');
    await writeFile(file, 'not a directory');
    await expect(
      openWorkerPipeline(config(dir, { spool: { dir: join(file, 'spool') } }), quietLog()),
    ).rejects.toThrow(/ENOTDIR|not a directory/);
  });

  it('stays on the gateway thread with events.worker false', async () => {
    const dir = await dataDir();
    const pipeline = await openEventPipeline(config(dir, { worker: false }), quietLog());
    onTestFinished(() => pipeline.sink.close());
    expect('worker' in pipeline).toBe(false);
    pipeline.sink.write(plainEvent('here-1'));
    await until(() => pipeline.stats?.().pending === 0, 'the event is stored');
    expect(await pipeline.store?.count()).toBe(1);
  });
});
