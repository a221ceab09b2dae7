import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { duckdbStore } from '../../src/events/duckdb-store.js';
import { describeEventStoreContract, sampleEvent } from '../support/event-store-contract.js';

describeEventStoreContract('duckdb', async () => ({
  store: duckdbStore({ path: ':memory:' }),
  cleanup: async () => {},
}));

describe('duckdb event store file', () => {
  it('keeps events across close and open, still exactly once by id', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sluice-duckdb-'));
    onTestFinished(() => rm(dir, { recursive: true, force: true }));
    const path = join(dir, 'events.duckdb');

    const first = duckdbStore({ path });
    await first.open();
    await first.insert([sampleEvent(1), sampleEvent(2)]);
    await first.close();

    const second = duckdbStore({ path });
    await second.open();
    onTestFinished(() => second.close());
    await second.insert([sampleEvent(2), sampleEvent(3)]);
    expect(await second.count()).toBe(3);
    expect(await second.list({ limit: 10 })).toEqual([sampleEvent(3), sampleEvent(2), sampleEvent(1)]);
  });
});
