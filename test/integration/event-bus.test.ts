import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { type BatchStore, EventBus, type EventBusOptions } from '../../src/events/bus.js';
import { type InsertOptions, type StagedEvents, StagedUnusable } from '../../src/events/event-store.js';
import { Spool, type SpoolAlarm, type SpoolOptions } from '../../src/events/spool.js';
import type { WideEvent } from '../../src/events/wide-event.js';
import type { Clock } from '../../src/time/clock.js';
import { ManualClock } from '../../src/time/manual-clock.js';
import { plainEvent } from '../support/wide-events.js';

const event = (id: string): WideEvent => plainEvent(id);

const ids = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}-${i}`);

/**
 * Keyed by id like a real store's idempotent insert; can be switched into an outage. Like the
 * ClickHouse store, it does not look for the ids of a first delivery: an id it already held is
 * then counted in `duplicates`, so a bus that calls a retry or a replay a first delivery fails.
 */
class FakeStore implements BatchStore<WideEvent> {
  readonly name = 'fake';
  readonly rows = new Map<string, WideEvent>();
  readonly batchSizes: number[] = [];
  readonly firstDeliveries: boolean[] = [];
  duplicates = 0;
  outage: Error | null = null;
  /** The next insert keeps its rows and then fails, as when a reply is lost after the commit. */
  failAfterWrite: Error | null = null;
  hang = false;

  async open(): Promise<void> {}

  async insert(events: readonly WideEvent[], options?: InsertOptions): Promise<void> {
    if (this.hang) return new Promise(() => {});
    if (this.outage) throw this.outage;
    this.batchSizes.push(events.length);
    this.firstDeliveries.push(options?.firstDelivery === true);
    for (const e of events) {
      if (!this.rows.has(e.id)) this.rows.set(e.id, e);
      else if (options?.firstDelivery) this.duplicates++;
    }
    const failure = this.failAfterWrite;
    this.failAfterWrite = null;
    if (failure) throw failure;
  }

  async list(query: { limit: number }): Promise<WideEvent[]> {
    return [...this.rows.values()].slice(0, query.limit);
  }

  async count(): Promise<number> {
    return this.rows.size;
  }

  async close(): Promise<void> {}
}

/** Staged events as `StagingStore` makes them: their ids. */
interface FakeStaged extends StagedEvents {
  ids: string[];
}

/** A FakeStore that stages: `stage` keeps the ids, `insertStaged` stores those ids' events. */
class StagingStore extends FakeStore {
  readonly stagings: number[] = [];
  readonly stagedBatches: number[] = [];
  readonly events = new Map<string, WideEvent>();
  /** The next insertStaged throws this (StagedUnusable: as when some are stored already). */
  refuseStaged: Error | null = null;
  /** The next stage throws this. */
  refuseStage: Error | null = null;

  stage(events: readonly WideEvent[]): FakeStaged {
    const failure = this.refuseStage;
    this.refuseStage = null;
    if (failure) throw failure;
    this.stagings.push(events.length);
    for (const e of events) this.events.set(e.id, e);
    return { rows: events.length, ids: events.map((e) => e.id) };
  }

  async insertStaged(staged: readonly StagedEvents[], options?: InsertOptions): Promise<void> {
    const refusal = this.refuseStaged;
    this.refuseStaged = null;
    if (refusal) throw refusal;
    const events = (staged as FakeStaged[]).flatMap((batch) => batch.ids.map((id) => this.events.get(id)!));
    await this.insert(events, options);
    this.stagedBatches.push(events.length);
  }
}

describe('EventBus', () => {
  let dir: string;
  const alarms: SpoolAlarm[] = [];
  const buses: EventBus[] = [];

  async function openBus(
    store: BatchStore<WideEvent>,
    options: Partial<EventBusOptions> = {},
    spool: Partial<SpoolOptions> = {},
  ) {
    const bus = new EventBus({
      store,
      spool: await Spool.open({ dir, onAlarm: (alarm) => alarms.push(alarm), onWarning: () => {}, ...spool }),
      flushIntervalMs: 5,
      retryBaseMs: 5,
      retryMaxMs: 20,
      closeTimeoutMs: 100,
      ...options,
    });
    buses.push(bus);
    return bus;
  }

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sluice-bus-'));
    alarms.length = 0;
  });
  afterEach(async () => {
    await Promise.all(buses.splice(0).map((bus) => bus.close()));
    await rm(dir, { recursive: true, force: true });
  });

  it('stores every written event once, a backlog in batches of up to maxBatchSize', async () => {
    const store = new FakeStore();
    const bus = await openBus(store, { batchSize: 100, maxBatchSize: 300 });
    bus.start();
    for (const id of ids('e', 1050)) bus.write(event(id));
    expect(await bus.drain()).toBe(true);
    expect([...store.rows.keys()]).toEqual(ids('e', 1050));
    expect(store.batchSizes).toEqual([300, 300, 300, 150]);
    expect(bus.stats()).toMatchObject({
      pending: 0,
      inserted: 1050,
      failedBatches: 0,
      dropped: 0,
      storeHealthy: true,
    });
  });

  it('stores a partial batch once flushIntervalMs has passed on its clock', async () => {
    const store = new FakeStore();
    const clock = new ManualClock();
    const bus = await openBus(store, { clock, batchSize: 100, flushIntervalMs: 250 });
    bus.start();
    await sleep(20); // the start-up pass, finding nothing to replay
    for (const id of ids('e', 3)) await bus.append(event(id));
    await sleep(20);
    expect(store.rows.size).toBe(0);
    clock.advance(249);
    await sleep(20);
    expect(store.rows.size).toBe(0);
    clock.advance(1);
    await vi.waitFor(() => expect(store.rows.size).toBe(3));
  });

  it('leaves the events written during an insert for the next full batch or the flush timer', async () => {
    const clock = new ManualClock();
    let release: (() => void) | undefined;
    const store = new FakeStore();
    const slow: BatchStore<WideEvent> = {
      open: async () => {},
      insert: async (events) => {
        await new Promise<void>((resolve) => {
          release = resolve;
        });
        await store.insert(events);
      },
    };
    const bus = await openBus(slow, { clock, batchSize: 100, flushIntervalMs: 1000 });
    bus.start();
    await sleep(20); // the start-up pass, finding nothing to replay
    for (const id of ids('a', 100)) bus.write(event(id)); // a full batch: stored at once
    await vi.waitFor(() => expect(release).toBeDefined());
    for (const id of ids('b', 30)) bus.write(event(id)); // arrive while it is being stored
    const first = release!;
    release = undefined;
    first();
    await vi.waitFor(() => expect(store.batchSizes).toEqual([100]));
    await sleep(20);
    expect(release).toBeUndefined(); // 30 waiting: no insert until the timer
    clock.advance(1000);
    await vi.waitFor(() => expect(release).toBeDefined());
    release!();
    await vi.waitFor(() => expect(store.batchSizes).toEqual([100, 30]));
  });

  it('resolves append once the event is on disk in the spool', async () => {
    const store = new FakeStore();
    store.outage = new Error('down');
    const bus = await openBus(store);
    expect(await bus.append(event('e-0'))).toBe(true);
    const reader = await Spool.open({ dir, onWarning: () => {} });
    expect((await reader.read(0, 10)).events.map((e) => e.id)).toEqual(['e-0']);
    await reader.close();
  });

  it('keeps events through a store outage under a steady stream and stores each exactly once when it returns', async () => {
    const store = new FakeStore();
    const errors: number[] = [];
    const bus = await openBus(store, { batchSize: 50, onStoreError: (_, failures) => errors.push(failures) });
    bus.start();
    const written = ids('e', 2000);
    for (let i = 0; i < written.length; i += 100) {
      if (i === 400) store.outage = new Error('clickhouse: connection refused');
      if (i === 1400) store.outage = null;
      for (const id of written.slice(i, i + 100)) bus.write(event(id));
      await sleep(5);
      if (i === 1300) {
        expect(bus.stats()).toMatchObject({
          storeHealthy: false,
          lastError: 'clickhouse: connection refused',
        });
        expect(bus.stats().pending).toBeGreaterThan(0);
      }
    }
    expect(await bus.drain()).toBe(true);
    expect(store.rows.size).toBe(2000);
    expect([...store.rows.keys()].sort()).toEqual([...written].sort());
    expect(store.duplicates).toBe(0);
    expect(errors.length).toBeGreaterThan(0);
    expect(bus.stats()).toMatchObject({ pending: 0, storeHealthy: true, dropped: 0 });
    expect(bus.stats().failedBatches).toBe(errors.length);
  });

  it('calls a batch a first delivery only when none of its events was handed to the store before', async () => {
    const store = new FakeStore();
    const bus = await openBus(store, { batchSize: 100 });
    bus.start();
    for (const id of ids('a', 100)) bus.write(event(id));
    expect(await bus.drain()).toBe(true);
    // The store keeps the rows but the insert fails (its reply lost): the retry must check them.
    store.failAfterWrite = new Error('socket hang up');
    for (const id of ids('b', 100)) bus.write(event(id));
    await vi.waitFor(() => expect(bus.stats().failedBatches).toBe(1));
    for (const id of ids('c', 100)) bus.write(event(id));
    expect(await bus.drain()).toBe(true);
    for (const id of ids('d', 100)) bus.write(event(id));
    expect(await bus.drain()).toBe(true);
    expect(store.batchSizes[0]).toBe(100);
    expect(store.firstDeliveries[0]).toBe(true); // a
    expect(store.firstDeliveries[1]).toBe(true); // b, failed after writing
    // b again (with whatever of c came meanwhile): a retry, checked.
    expect(store.firstDeliveries[2]).toBe(false);
    expect(store.firstDeliveries.at(-1)).toBe(true); // d, new again
    expect(store.duplicates).toBe(0);
    expect([...store.rows.keys()].sort()).toEqual(
      [...ids('a', 100), ...ids('b', 100), ...ids('c', 100), ...ids('d', 100)].sort(),
    );
  });

  it('reads events that overflowed the in-memory ring back from the spool', async () => {
    const store = new FakeStore();
    store.outage = new Error('down');
    const bus = await openBus(store, { ringCapacity: 10, batchSize: 64 });
    bus.start();
    for (const id of ids('e', 500)) bus.write(event(id));
    expect(bus.stats().buffered).toBe(10);
    await sleep(20);
    store.outage = null;
    expect(await bus.drain()).toBe(true);
    expect([...store.rows.keys()].sort()).toEqual(ids('e', 500).sort());
    expect(store.duplicates).toBe(0);
  });

  it('keeps the oldest events when its ring is full, stores the newer from the spool after them, then fills the ring again', async () => {
    const store = new FakeStore();
    store.outage = new Error('down');
    const bus = await openBus(store, { ringCapacity: 10, batchSize: 64 });
    bus.start();
    for (const id of ids('e', 25)) bus.write(event(id));
    expect(bus.stats().buffered).toBe(10);
    store.outage = null;
    expect(await bus.drain()).toBe(true);
    // The ring's 10 (the first written) went first, then the 15 it let go, from the spool.
    expect(store.batchSizes).toEqual([10, 15]);
    expect([...store.rows.keys()]).toEqual(ids('e', 25));
    // Empty again, the ring takes new events: a first delivery from memory.
    for (const id of ids('f', 5)) bus.write(event(id));
    expect(bus.stats().buffered).toBe(5);
    expect(await bus.drain()).toBe(true);
    expect(store.batchSizes.at(-1)).toBe(5);
    expect(store.firstDeliveries.at(-1)).toBe(true);
    expect(store.duplicates).toBe(0);
    await bus.close();
  });

  it('replays on restart what a closed bus could not store, and nothing that was stored', async () => {
    const down = new FakeStore();
    down.outage = new Error('down');
    const first = await openBus(down);
    first.start();
    for (const id of ids('e', 300)) first.write(event(id));
    await first.close();

    const store = new FakeStore();
    const second = await openBus(store);
    second.start();
    expect(await second.drain()).toBe(true);
    expect([...store.rows.keys()]).toEqual(ids('e', 300));
    // Read back from the spool: maybe stored before, so never a first delivery.
    expect(store.firstDeliveries.length).toBeGreaterThan(0);
    expect(store.firstDeliveries.every((first) => !first)).toBe(true);
    await second.close();

    const later = new FakeStore();
    const third = await openBus(later);
    third.start();
    expect(await third.drain()).toBe(true);
    await sleep(20);
    expect(later.batchSizes).toEqual([]);
  });

  it('replays on restart the events of a bus abandoned without close', async () => {
    const down = new FakeStore();
    down.outage = new Error('down');
    const abandoned = await openBus(down);
    abandoned.start();
    const written = ids('e', 300);
    const durable = written.map((id) => abandoned.append(event(id)));
    expect(await Promise.all(durable)).toEqual(written.map(() => true));

    const store = new FakeStore();
    const next = await openBus(store);
    next.start();
    expect(await next.drain()).toBe(true);
    expect([...store.rows.keys()]).toEqual(written);
  });

  it('backs off exponentially between failed inserts, up to the cap, and starts over after a success', async () => {
    const timers: { ms: number; fire: () => void }[] = [];
    const clock: Clock = {
      now: () => 0,
      setTimer: (ms, fire) => {
        timers.push({ ms, fire });
        return { cancel: () => {} };
      },
    };
    const store = new FakeStore();
    store.outage = new Error('down');
    const bus = await openBus(store, { clock, random: () => 1, retryBaseMs: 100, retryMaxMs: 1000 });
    bus.write(event('e-0'));
    bus.start();
    const delays: number[] = [];
    for (let i = 0; i < 6; i++) {
      await vi.waitFor(() => expect(timers.length).toBe(i + 1));
      delays.push(timers[i]!.ms);
      timers[i]!.fire();
    }
    expect(delays).toEqual([100, 200, 400, 800, 1000, 1000]);
    store.outage = null;
    await vi.waitFor(() => expect(store.rows.size).toBe(1));
    store.outage = new Error('down again');
    bus.write(event('e-1'));
    const flush = timers.at(-1)!;
    expect(flush.ms).toBe(5); // flushIntervalMs
    flush.fire();
    await vi.waitFor(() => expect(timers.at(-1)?.ms).toBe(100));
    expect(bus.stats().failedBatches).toBe(7);
    store.outage = null; // so close() can drain without a timer firing
  });

  it('never waits on a hung store: writes return, close gives up after its timeout, the next start stores them', async () => {
    const hung = new FakeStore();
    hung.hang = true;
    const bus = await openBus(hung, { closeTimeoutMs: 50 });
    bus.start();
    for (const id of ids('e', 100)) bus.write(event(id));
    await bus.close();
    expect(bus.stats().pending).toBe(100);

    const store = new FakeStore();
    const next = await openBus(store);
    next.start();
    expect(await next.drain()).toBe(true);
    expect(store.rows.size).toBe(100);
  });

  it('reports events dropped by a full spool in stats and through the alarm', async () => {
    const store = new FakeStore();
    store.outage = new Error('down');
    const bus = await openBus(store, {}, { maxBytes: 16 * 1024, onFull: 'drop-newest' });
    bus.start();
    for (const id of ids('e', 200)) bus.write(event(id));
    const { dropped } = bus.stats();
    expect(dropped).toBeGreaterThan(0);
    expect(alarms[0]).toMatchObject({ reason: 'budget-exhausted', droppedEvents: expect.any(Number) });
    expect(await bus.append(event('one-more'))).toBe(false);

    store.outage = null;
    expect(await bus.drain()).toBe(true);
    expect(store.rows.size).toBe(200 - dropped);
    expect(store.rows.has('e-0')).toBe(true);
  });

  it('loses no acknowledged event when the process is killed mid-stream (SIGKILL), and stores each once', async () => {
    const child = join(import.meta.dirname, '../support/bus-crash-child.mjs');
    const spoolDir = join(dir, 'spool');
    const storeFile = join(dir, 'store.jsonl');

    const writer = spawn(process.execPath, [child, 'write', spoolDir, storeFile], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let output = '';
    writer.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    const exited = new Promise((resolve) => writer.on('exit', resolve));
    await vi.waitFor(
      async () => {
        expect(output.split('\n').length).toBeGreaterThan(2000);
        expect((await readFile(storeFile, 'utf8').catch(() => '')).length).toBeGreaterThan(0);
      },
      { timeout: 20_000, interval: 20 },
    );
    writer.kill('SIGKILL');
    await exited;
    // Only whole lines: a line cut by the kill was never fully printed, so never acknowledged.
    const acknowledged = output.split('\n').slice(0, -1);
    const storedBeforeRecovery = (await readFile(storeFile, 'utf8')).split('\n').length - 1;
    expect(storedBeforeRecovery).toBeLessThan(acknowledged.length);

    const recover = spawn(process.execPath, [child, 'recover', spoolDir, storeFile], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let recovered = '';
    recover.stdout.on('data', (chunk: Buffer) => {
      recovered += chunk.toString();
    });
    expect(await new Promise((resolve) => recover.on('exit', resolve))).toBe(0);
    expect(recovered).toBe('recovered\n');

    const stored = new Map<string, number>();
    for (const line of (await readFile(storeFile, 'utf8')).split('\n')) {
      if (!line) continue;
      const id = (JSON.parse(line) as WideEvent).id;
      stored.set(id, (stored.get(id) ?? 0) + 1);
    }
    const missing = acknowledged.filter((id) => !stored.has(id));
    expect(missing).toEqual([]);
    expect([...stored.values()].every((n) => n === 1)).toBe(true);
  });
  describe('with a store that stages', () => {
    it('stages events within stageIntervalMs, or stageSize at once, and stores whole stagings', async () => {
      const store = new StagingStore();
      const clock = new ManualClock();
      const bus = await openBus(store, {
        clock,
        batchSize: 100,
        flushIntervalMs: 1000,
        stageIntervalMs: 50,
        stageSize: 4,
      });
      bus.start();
      await sleep(20); // the start-up pass, finding nothing to replay
      for (const id of ids('a', 10)) bus.write(event(id));
      expect(store.stagings).toEqual([4, 4]); // two waiting
      clock.advance(49);
      expect(store.stagings).toEqual([4, 4]);
      clock.advance(1);
      expect(store.stagings).toEqual([4, 4, 2]);
      expect(bus.stats().buffered).toBe(10);
      clock.advance(1000); // the flush timer
      await vi.waitFor(() => expect(store.rows.size).toBe(10));
      expect(store.stagedBatches).toEqual([10]);
      expect(store.firstDeliveries).toEqual([true]);
      expect(bus.stats()).toMatchObject({ buffered: 0, pending: 0, inserted: 10 });
    });

    it('stages what waits when a batch is due, and never splits a staging between batches', async () => {
      const store = new StagingStore();
      const bus = await openBus(store, {
        batchSize: 20,
        maxBatchSize: 30,
        stageSize: 8,
        stageIntervalMs: 10_000,
      });
      for (const id of ids('e', 45)) bus.write(event(id));
      bus.start();
      expect(await bus.drain()).toBe(true);
      expect(store.stagings).toEqual([8, 8, 8, 8, 8, 5]);
      expect(store.stagedBatches).toEqual([24, 21]);
      expect([...store.rows.keys()]).toEqual(ids('e', 45));
    });

    it('inserts the events read back from the spool when the store cannot use what it staged', async () => {
      const store = new StagingStore();
      const bus = await openBus(store, { batchSize: 50, stageSize: 16 });
      bus.start();
      store.refuseStaged = new StagedUnusable('some staged events are stored already');
      for (const id of ids('e', 50)) bus.write(event(id));
      expect(await bus.drain()).toBe(true);
      expect(store.stagedBatches).toEqual([]);
      expect(store.batchSizes).toEqual([50]);
      expect(store.firstDeliveries).toEqual([false]); // read back: checked
      expect(bus.stats()).toMatchObject({ failedBatches: 0, inserted: 50 });
      // What comes next is staged again.
      for (const id of ids('f', 50)) bus.write(event(id));
      expect(await bus.drain()).toBe(true);
      expect(store.stagedBatches).toEqual([50]);
      expect(store.rows.size).toBe(100);
    });

    it('reads back from the spool the events a failed staging held, and stores the rest staged', async () => {
      const store = new StagingStore();
      const errors: unknown[] = [];
      const bus = await openBus(store, {
        batchSize: 1000,
        stageSize: 10,
        onStoreError: (error) => errors.push(error),
      });
      bus.start();
      for (const id of ids('a', 10)) bus.write(event(id));
      const refusal = new Error('cannot stage');
      store.refuseStage = refusal;
      for (const id of ids('b', 10)) bus.write(event(id));
      for (const id of ids('c', 10)) bus.write(event(id));
      expect(errors).toEqual([refusal]);
      expect(bus.stats().buffered).toBe(10); // only c: a was forgotten with b
      expect(await bus.drain()).toBe(true);
      expect(store.batchSizes).toEqual([20, 10]); // a and b read back, then c staged
      expect(store.stagedBatches).toEqual([10]);
      expect([...store.rows.keys()]).toEqual([...ids('a', 10), ...ids('b', 10), ...ids('c', 10)]);
    });

    it('stages nothing it has no room for: a full ring keeps its stagings, the rest come from the spool', async () => {
      const store = new StagingStore();
      store.outage = new Error('down');
      const bus = await openBus(store, { batchSize: 64, stageSize: 8, ringCapacity: 16 });
      bus.start();
      for (const id of ids('e', 40)) bus.write(event(id));
      expect(bus.stats().buffered).toBe(16);
      // Only the first 16 were staged; the 24 it had no room for were never handed to stage.
      expect(store.stagings).toEqual([8, 8]);
      store.outage = null;
      expect(await bus.drain()).toBe(true);
      expect(store.stagedBatches).toEqual([16]);
      expect(store.batchSizes).toEqual([16, 24]);
      expect([...store.rows.keys()]).toEqual(ids('e', 40));
      expect(store.duplicates).toBe(0);
    });

    it('retries its stagings through an outage and stores each event once', async () => {
      const store = new StagingStore();
      store.outage = new Error('down');
      const bus = await openBus(store, { batchSize: 40, stageSize: 8, ringCapacity: 64 });
      bus.start();
      for (const id of ids('e', 300)) bus.write(event(id));
      expect(bus.stats().buffered).toBeLessThanOrEqual(64);
      await vi.waitFor(() => expect(bus.stats().failedBatches).toBeGreaterThan(1));
      store.outage = null;
      expect(await bus.drain()).toBe(true);
      expect([...store.rows.keys()].sort()).toEqual(ids('e', 300).sort());
      expect(store.duplicates).toBe(0);
      expect(store.stagedBatches.length).toBeGreaterThan(0);
    });
  });
});
