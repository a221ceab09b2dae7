import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ResponseStore } from '../../src/cache/response-store.js';
import { unitVector, type VectorIndex } from '../../src/cache/vector-index.js';
import { ManualClock } from '../../src/time/manual-clock.js';

/** Epoch milliseconds the manual clocks of these suites start at. */
export const epoch = Date.parse('2026-03-01T12:00:00.000Z');

export interface Opened<T> {
  it: T;
  /** Removes what the test left behind (Redis keys, connections). */
  cleanup(): Promise<void>;
}

/** The behaviour every ResponseStore promises; each implementation runs it against a real engine. */
export function describeResponseStoreContract(
  name: string,
  open: (now: () => number) => Promise<Opened<ResponseStore>>,
): void {
  describe(`${name} response store contract`, () => {
    let clock: ManualClock;
    let store: ResponseStore;
    let cleanup: () => Promise<void>;

    beforeEach(async () => {
      clock = new ManualClock(epoch);
      const opened = await open(() => clock.now());
      store = opened.it;
      cleanup = opened.cleanup;
    });
    afterEach(() => cleanup());

    it('has nothing under a key never set', async () => {
      expect(await store.get('absent')).toBeUndefined();
    });

    it('gives back what was stored byte for byte, multi-byte text and newlines included', async () => {
      const value = '{"content":"line one\\nline two — ünïcødé 🚀","n":1}\n\ttrailing';
      await store.set('k', value, epoch + 60_000);
      expect(await store.get('k')).toBe(value);
    });

    it('keeps keys apart and replaces a value stored again under the same key', async () => {
      await store.set('a', 'first', epoch + 60_000);
      await store.set('b', 'other', epoch + 60_000);
      await store.set('a', 'second', epoch + 60_000);
      expect(await store.get('a')).toBe('second');
      expect(await store.get('b')).toBe('other');
    });

    it('forgets a deleted key', async () => {
      await store.set('k', 'v', epoch + 60_000);
      await store.delete('k');
      expect(await store.get('k')).toBeUndefined();
    });

    it('serves a value until its expiry by the clock, and not from then on', async () => {
      await store.set('k', 'v', epoch + 1_000);
      clock.advance(999);
      expect(await store.get('k')).toBe('v');
      clock.advance(1);
      expect(await store.get('k')).toBeUndefined();
    });

    it('does not store a value that has already expired', async () => {
      await store.set('k', 'v', epoch);
      expect(await store.get('k')).toBeUndefined();
    });
  });
}

/** A unit vector of 8 dimensions pointing mostly along `axis`, tilted towards `tilt` by `amount`. */
export function direction(axis: number, tilt = (axis + 1) % 8, amount = 0): Float32Array {
  const values = new Array<number>(8).fill(0);
  values[axis] = 1;
  values[tilt] = (values[tilt] as number) + amount;
  return unitVector(values) as Float32Array;
}

/** The behaviour every VectorIndex promises, with a cap of 2 vectors per scope (the one scope used for the cap). */
export function describeVectorIndexContract(
  name: string,
  open: (now: () => number, maxVectors: number) => Promise<Opened<VectorIndex>>,
): void {
  describe(`${name} vector index contract`, () => {
    let clock: ManualClock;
    let index: VectorIndex;
    let cleanup: () => Promise<void>;
    const later = epoch + 60_000;

    beforeEach(async () => {
      clock = new ManualClock(epoch);
      const opened = await open(() => clock.now(), 2);
      index = opened.it;
      cleanup = opened.cleanup;
    });
    afterEach(() => cleanup());

    it('finds nothing in a scope nobody added to', async () => {
      expect(await index.nearest('scope', direction(0))).toBeUndefined();
    });

    it('finds the most similar entry of the scope, with its cosine similarity', async () => {
      await index.add('scope', 'x-axis', direction(0), later);
      await index.add('scope', 'y-axis', direction(1), later);
      const near = await index.nearest('scope', direction(0, 1, 0.1));
      expect(near?.key).toBe('x-axis');
      // cos between (1, 0.1)/|.| and (1, 0): 1 / sqrt(1.01)
      expect(near?.similarity).toBeCloseTo(1 / Math.sqrt(1.01), 5);
    });

    it('never finds an entry of another scope', async () => {
      await index.add('one', 'k', direction(0), later);
      expect(await index.nearest('two', direction(0))).toBeUndefined();
    });

    it('replaces the vector of an entry added again', async () => {
      await index.add('scope', 'k', direction(0), later);
      await index.add('scope', 'k', direction(3), later);
      expect((await index.nearest('scope', direction(3)))?.similarity).toBeCloseTo(1, 5);
      expect((await index.nearest('scope', direction(0)))?.similarity).toBeCloseTo(0, 5);
    });

    it('forgets a removed entry', async () => {
      await index.add('scope', 'k', direction(0), later);
      await index.remove('scope', 'k');
      expect(await index.nearest('scope', direction(0))).toBeUndefined();
    });

    it('does not find a vector past its expiry by the clock', async () => {
      await index.add('scope', 'short', direction(0), epoch + 1_000);
      await index.add('scope', 'long', direction(1), later);
      clock.advance(999);
      expect((await index.nearest('scope', direction(0)))?.key).toBe('short');
      clock.advance(1);
      expect((await index.nearest('scope', direction(0)))?.key).toBe('long');
    });

    it('drops the oldest vector beyond its cap', async () => {
      await index.add('scope', 'first', direction(0), later);
      await index.add('scope', 'second', direction(1), later + 1);
      await index.add('scope', 'third', direction(2), later + 2);
      expect((await index.nearest('scope', direction(0)))?.key).not.toBe('first');
      expect((await index.nearest('scope', direction(1)))?.key).toBe('second');
      expect((await index.nearest('scope', direction(2)))?.key).toBe('third');
    });
  });
}
