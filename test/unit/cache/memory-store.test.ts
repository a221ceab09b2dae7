import { describe, expect, it } from 'vitest';
import { MemoryStore } from '../../../src/cache/memory-store.js';
import { ManualClock } from '../../../src/time/manual-clock.js';

/** A key and value that weigh `bytes` together (UTF-8), keys one character long. */
const value = (bytes: number) => 'v'.repeat(bytes - 1);
const forever = Number.MAX_SAFE_INTEGER;

describe('memory store', () => {
  it('evicts the least recently used entries to stay within its byte budget', async () => {
    const store = new MemoryStore(300);
    await store.set('a', value(100), forever);
    await store.set('b', value(100), forever);
    await store.set('c', value(100), forever);
    // Reading "a" makes "b" the least recently used.
    expect(await store.get('a')).toBeDefined();
    await store.set('d', value(100), forever);
    expect(await store.get('b')).toBeUndefined();
    expect(await store.get('a')).toBeDefined();
    expect(await store.get('c')).toBeDefined();
    expect(store.stats()).toEqual({ entries: 3, bytes: 300, evictions: 1 });
  });

  it('evicts as many entries as a large one needs', async () => {
    const store = new MemoryStore(300);
    for (const key of ['a', 'b', 'c']) await store.set(key, value(100), forever);
    await store.set('d', value(250), forever);
    expect(store.stats()).toEqual({ entries: 1, bytes: 250, evictions: 3 });
    expect(await store.get('d')).toBe(value(250));
  });

  it('counts bytes as UTF-8, so multi-byte text weighs what it takes', async () => {
    const store = new MemoryStore(1_000);
    await store.set('k', 'é🚀', forever);
    expect(store.stats().bytes).toBe(1 + 2 + 4);
  });

  it('refuses an entry larger than the whole budget and keeps what it had', async () => {
    const store = new MemoryStore(300);
    await store.set('a', value(100), forever);
    await store.set('huge', value(301), forever);
    expect(await store.get('huge')).toBeUndefined();
    expect(store.stats()).toEqual({ entries: 1, bytes: 100, evictions: 0 });
  });

  it('frees the bytes of an entry replaced or read after its expiry, without counting an eviction', async () => {
    const clock = new ManualClock(1_000);
    const store = new MemoryStore(300, () => clock.now());
    await store.set('a', value(100), 2_000);
    await store.set('a', value(150), 2_000);
    expect(store.stats()).toEqual({ entries: 1, bytes: 150, evictions: 0 });
    clock.advance(1_000);
    expect(await store.get('a')).toBeUndefined();
    expect(store.stats()).toEqual({ entries: 0, bytes: 0, evictions: 0 });
  });
});
