import { mkdtemp, readdir, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Spool, type SpoolAlarm, type SpoolOptions } from '../../../src/events/spool.js';
import type { WideEvent } from '../../../src/events/wide-event.js';
import { ByteWriter, wideEventCodec } from '../../../src/events/wide-event-codec.js';
import { ManualClock } from '../../../src/time/manual-clock.js';
import { plainEvent } from '../../support/wide-events.js';

const event = (id: string): WideEvent => plainEvent(id);

const events = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => event(`${prefix}-${i}`));

async function replayedIds(spool: Spool, fromSeq?: number): Promise<string[]> {
  const ids: string[] = [];
  for await (const record of spool.replay(fromSeq)) ids.push(...record.events.map((e) => e.id));
  return ids;
}

async function segmentFiles(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((name) => name.endsWith('.seg')).sort();
}

// Every behaviour holds whether events are written as JSON or by the wide events' codec.
describe.each([
  { format: 'JSON', codec: undefined },
  { format: 'the wide event codec', codec: wideEventCodec },
])('Spool, events as $format', ({ codec }) => {
  let dir: string;
  const warnings: string[] = [];
  const alarms: SpoolAlarm[] = [];
  const open = (options: Partial<SpoolOptions> = {}) =>
    Spool.open({
      dir,
      onWarning: (message) => warnings.push(message),
      onAlarm: (alarm) => alarms.push(alarm),
      ...(codec ? { codec } : {}),
      ...options,
    });

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sluice-spool-'));
    warnings.length = 0;
    alarms.length = 0;
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('gives appended events consecutive sequence numbers and replays them in order after a reopen', async () => {
    const spool = await open();
    expect(spool.append(events('a', 3))).toBe(0);
    expect(spool.append(events('b', 2))).toBe(3);
    expect(await spool.sync()).toBe(true);
    expect(await replayedIds(spool)).toEqual(['a-0', 'a-1', 'a-2', 'b-0', 'b-1']);
    await spool.close();

    const reopened = await open();
    expect(await replayedIds(reopened)).toEqual(['a-0', 'a-1', 'a-2', 'b-0', 'b-1']);
    expect(reopened.append([event('c-0')])).toBe(5);
    await reopened.close();
    expect(warnings).toEqual([]);
  });

  it('keeps text in any script byte for byte, ASCII and not mixed in one record, through a reopen', async () => {
    const spool = await open({ syncIntervalMs: 20 });
    const written = [
      { ...event('ascii-0'), errorMessage: 'plain' },
      { ...event('latin-1'), errorMessage: 'café, naïve, ¿qué?' },
      { ...event('ascii-2'), tags: { feature: 'x' } },
      { ...event('wide-3'), errorMessage: '日本語 🚀 \u2028 "quoted" \\ end' },
    ];
    for (const e of written) spool.append([e]);
    expect(await spool.sync()).toBe(true);
    await spool.close();

    const reopened = await open();
    const records = [];
    for await (const record of reopened.replay()) records.push(record);
    expect(records).toEqual([{ seq: 0, events: written }]);
    expect(reopened.append([event('next')])).toBe(written.length);
    await reopened.close();
    expect(warnings).toEqual([]);
  });

  it('writes commits of any size one after another (small after large, over 1 MiB too), each record intact', async () => {
    const spool = await open();
    const sizes = [400, 3, 2500, 5, 60];
    for (const [i, n] of sizes.entries()) {
      spool.append(events(`c${i}`, n));
      expect(await spool.sync()).toBe(true);
    }
    await spool.close();
    const reopened = await open();
    expect(await replayedIds(reopened)).toEqual(sizes.flatMap((n, i) => events(`c${i}`, n).map((e) => e.id)));
    await reopened.close();
    expect(warnings).toEqual([]);
  });

  it('writes commits of several MiB (encoded in pieces, written in slices) and larger events whole', async () => {
    const spool = await open();
    // About 2 kB each: 3,000 make a commit of about 6 MiB, over the 1 MiB an encoder and the
    // write buffer hold; a second commit reuses them; one event of 1.5 MB is larger than both.
    const wide = (prefix: string, n: number) =>
      Array.from({ length: n }, (_, i) => plainEvent(`${prefix}-${i}`, { errorMessage: 'x'.repeat(2000) }));
    const first = wide('w1', 3000);
    const second = wide('w2', 3000);
    const huge = [plainEvent('huge', { errorMessage: 'y'.repeat(1_500_000) })];
    for (const batch of [first, huge, second]) {
      for (const e of batch) spool.append([e]);
      expect(await spool.sync()).toBe(true);
    }
    await spool.close();
    const reopened = await open();
    const replayed: WideEvent[] = [];
    for await (const record of reopened.replay()) replayed.push(...record.events);
    expect(replayed).toEqual([...first, ...huge, ...second]);
    await reopened.close();
    expect(warnings).toEqual([]);
  });

  it('group-commits appends made within one sync interval into a single record', async () => {
    const spool = await open({ syncIntervalMs: 20 });
    for (const e of events('a', 5)) spool.append([e]);
    await spool.sync();
    const records = [];
    for await (const record of spool.replay()) records.push(record);
    expect(records).toEqual([{ seq: 0, events: events('a', 5) }]);
    await spool.close();
  });

  it('splits a burst into records of at most recordBytes, so reading part of it parses little more', async () => {
    const spool = await open({ syncIntervalMs: 20, recordBytes: 4096 });
    const burst = events('a', 100);
    // An event's bytes in a record, in this spool's format.
    const sizeOf = (e: WideEvent) => {
      if (!codec) return Buffer.byteLength(JSON.stringify(e));
      const out = new ByteWriter(16);
      codec.encode(e, out);
      return out.length;
    };
    const size = sizeOf(burst[0]!);
    for (const e of burst.slice(0, 60)) spool.append([e]);
    spool.append(burst.slice(60)); // one call with many events is split the same way
    expect(await spool.sync()).toBe(true);
    await spool.close();

    const reopened = await open();
    const records = [];
    for await (const record of reopened.replay()) records.push(record);
    expect(size).toBeLessThan(4096 / 4);
    expect(records.length).toBeGreaterThanOrEqual(Math.ceil((100 * size) / 4096));
    for (const record of records.slice(0, -1)) {
      const bytes = record.events.reduce((sum, e) => sum + sizeOf(e), 0);
      const next = burst[record.seq + record.events.length]!;
      expect(bytes).toBeLessThanOrEqual(4096);
      expect(bytes + sizeOf(next)).toBeGreaterThan(4096); // full: the next did not fit
    }
    expect(records.flatMap((record) => record.events)).toEqual(burst);
    expect((await reopened.read(55, 10)).events).toEqual(burst.slice(55, 65));
    await reopened.close();
  });

  it('writes an event larger than recordBytes as a record of its own', async () => {
    const spool = await open({ recordBytes: 64 });
    const big = [event('big-0'), event('big-1')];
    spool.append(big);
    expect(await spool.sync()).toBe(true);
    const records = [];
    for await (const record of spool.replay()) records.push(record);
    expect(records).toEqual([
      { seq: 0, events: [big[0]] },
      { seq: 1, events: [big[1]] },
    ]);
    await spool.close();
  });

  it('commits appends nobody waits for every backgroundSyncIntervalMs, within syncIntervalMs once awaited', async () => {
    const clock = new ManualClock();
    const spool = await open({ clock, syncIntervalMs: 5, backgroundSyncIntervalMs: 50 });
    const onDisk = async () =>
      (await readFile(join(dir, (await segmentFiles(dir))[0]!), 'utf8')).match(/[ab]-\d/g);
    spool.append([event('a-0')]);
    spool.append([event('a-1')]);
    clock.advance(49);
    await sleep(20);
    expect(await onDisk()).toBeNull();
    clock.advance(1);
    await vi.waitFor(async () => expect(await onDisk()).toEqual(['a-0', 'a-1']));

    spool.append([event('b-0')]);
    const synced = spool.sync(); // someone waits: 5 ms, not 50
    clock.advance(5);
    expect(await synced).toBe(true);
    expect(await onDisk()).toEqual(['a-0', 'a-1', 'b-0']);
    await spool.close();
  });

  it('reads from any sequence number, within a record or across records', async () => {
    const spool = await open();
    spool.append(events('a', 3));
    await spool.sync();
    spool.append(events('b', 3));
    await spool.sync();
    const batch = await spool.read(2, 3);
    expect(batch.events.map((e) => e.id)).toEqual(['a-2', 'b-0', 'b-1']);
    expect(batch.endSeq).toBe(5);
    expect(await spool.read(6, 10)).toEqual({ events: [], endSeq: 6 });
    await spool.close();
  });

  it('skips a torn tail (a crash mid-write) with a warning and keeps the records before it', async () => {
    const spool = await open();
    for (const prefix of ['a', 'b', 'c']) {
      spool.append(events(prefix, 2));
      await spool.sync();
    }
    await spool.close();
    const [segment] = await segmentFiles(dir);
    const path = join(dir, segment!);
    const size = (await readFile(path)).length;
    await truncate(path, size - 3);

    const reopened = await open();
    expect(await replayedIds(reopened)).toEqual(['a-0', 'a-1', 'b-0', 'b-1']);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/torn record/);
    // New events go to a fresh segment, never after the torn bytes.
    reopened.append([event('d-0')]);
    await reopened.close();
    expect(await replayedIds(await open())).toEqual(['a-0', 'a-1', 'b-0', 'b-1', 'd-0']);
  });

  it('skips a record whose checksum fails with a warning and keeps the good records on both sides', async () => {
    const spool = await open();
    for (const prefix of ['a', 'b', 'c']) {
      spool.append(events(prefix, 2));
      await spool.sync();
    }
    await spool.close();
    const [segment] = await segmentFiles(dir);
    const path = join(dir, segment!);
    const bytes = await readFile(path);
    const second = 8 + bytes.readUInt32LE(0);
    const flipAt = second + 8 + 40;
    bytes[flipAt] = bytes[flipAt]! ^ 0xff;
    await writeFile(path, bytes);

    const reopened = await open();
    expect(await replayedIds(reopened)).toEqual(['a-0', 'a-1', 'c-0', 'c-1']);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/checksum/);
    await reopened.close();
  });

  it('never throws on garbage: a segment of random bytes is skipped with a warning', async () => {
    await writeFile(join(dir, '000001.seg'), Buffer.from('not a spool record at all, just bytes'));
    const spool = await open();
    expect(await replayedIds(spool)).toEqual([]);
    expect(warnings.length).toBeGreaterThan(0);
    await spool.close();
  });

  it('rolls segments at segmentBytes and deletes the ones fully acknowledged', async () => {
    // About one record of three events a segment (the codec writes them in about half the bytes).
    const segmentBytes = codec ? 2048 : 4096;
    const spool = await open({ segmentBytes });
    for (let i = 0; i < 12; i++) {
      spool.append(events(`r${i}`, 3));
      await spool.sync();
    }
    const before = await segmentFiles(dir);
    expect(before.length).toBeGreaterThan(3);

    spool.ack(30);
    await spool.close();
    const after = await segmentFiles(dir);
    expect(after.length).toBeLessThan(before.length);
    expect(after[0]! > before[0]!).toBe(true);

    const reopened = await open({ segmentBytes });
    expect(await replayedIds(reopened)).toEqual(['r10-0', 'r10-1', 'r10-2', 'r11-0', 'r11-1', 'r11-2']);
    expect(reopened.stats()).toMatchObject({ ackSeq: 30, nextSeq: 36 });
    await reopened.close();
  });

  it('replays from the middle of a partly acknowledged record', async () => {
    const spool = await open();
    spool.append(events('a', 4));
    await spool.sync();
    spool.ack(2);
    await spool.close();
    const reopened = await open();
    expect(await replayedIds(reopened)).toEqual(['a-2', 'a-3']);
    await reopened.close();
  });

  it('with drop-newest, refuses events once the disk budget is full, counts them and raises an alarm', async () => {
    const spool = await open({ maxBytes: 8 * 1024, onFull: 'drop-newest' });
    let accepted = 0;
    let refused = 0;
    for (let i = 0; i < 40; i++) {
      if (spool.append([event(`e-${i}`)]) >= 0) accepted++;
      else refused++;
      await spool.sync();
    }
    expect(refused).toBeGreaterThan(0);
    expect(spool.stats().droppedEvents).toBe(refused);
    expect(spool.stats().bytes).toBeLessThanOrEqual(8 * 1024);
    expect(alarms).toHaveLength(1); // loud, but not once per event
    expect(alarms[0]).toMatchObject({ reason: 'budget-exhausted', policy: 'drop-newest' });
    expect(alarms[0]!.message).toMatch(/EVENTS LOST/);
    // The oldest events are the ones kept.
    const ids = await replayedIds(spool);
    expect(ids).toHaveLength(accepted);
    expect(ids[0]).toBe('e-0');
    await spool.close();
  });

  it('with drop-oldest, deletes the oldest unacknowledged segment to make room, counting its events as lost', async () => {
    const spool = await open({ maxBytes: 8 * 1024, segmentBytes: 2048, onFull: 'drop-oldest' });
    for (let i = 0; i < 40; i++) {
      expect(spool.append([event(`e-${i}`)])).toBeGreaterThanOrEqual(0);
      await spool.sync();
    }
    const { droppedEvents, bytes } = spool.stats();
    expect(droppedEvents).toBeGreaterThan(0);
    expect(bytes).toBeLessThanOrEqual(8 * 1024);
    expect(alarms[0]).toMatchObject({ reason: 'budget-exhausted', policy: 'drop-oldest' });
    const ids = await replayedIds(spool);
    expect(ids).toHaveLength(40 - droppedEvents);
    expect(ids.at(-1)).toBe('e-39');
    expect(ids[0]).toBe(`e-${droppedEvents}`);
    await spool.close();
  });
});

describe('Spool, from JSON to the wide event codec', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sluice-spool-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('replays the JSON records of an earlier release and its own, in order, and stores the new ones as bytes', async () => {
    const warnings: string[] = [];
    const before = await Spool.open({ dir, onWarning: (message) => warnings.push(message) });
    before.append(events('json', 3));
    await before.close();
    const sizeOf = async () => {
      let size = 0;
      for (const name of await segmentFiles(dir)) size += (await readFile(join(dir, name))).length;
      return size;
    };
    const jsonBytes = await sizeOf();

    const after = await Spool.open({
      dir,
      codec: wideEventCodec,
      onWarning: (message) => warnings.push(message),
    });
    expect(after.append(events('bytes', 3))).toBe(3);
    await after.close();
    expect((await sizeOf()) - jsonBytes).toBeLessThan(jsonBytes);

    const reopened = await Spool.open({ dir, codec: wideEventCodec });
    const replayed: WideEvent[] = [];
    for await (const record of reopened.replay()) replayed.push(...record.events);
    expect(replayed).toEqual([...events('json', 3), ...events('bytes', 3)]);
    expect((await reopened.read(4, 10)).events.map((e) => e.id)).toEqual(['bytes-1', 'bytes-2']);
    await reopened.close();
    expect(warnings).toEqual([]);
  });

  it('reads back records whose sequence numbers run to 16 digits (the longest heads)', async () => {
    const far = 1_000_000_000_000_000;
    await writeFile(join(dir, 'ack'), String(far));
    const spool = await Spool.open({ dir, codec: wideEventCodec });
    expect(spool.append(events('far', 1000))).toBe(far);
    await spool.close();
    const reopened = await Spool.open({ dir, codec: wideEventCodec });
    expect(reopened.stats().nextSeq).toBe(far + 1000);
    expect((await replayedIds(reopened)).slice(-2)).toEqual(['far-998', 'far-999']);
    await reopened.close();
  });

  it('spools events encoded already as the same bytes its codec writes, split into records alike', async () => {
    const written = events('pre', 40);
    const writer = new ByteWriter();
    const sizes: number[] = [];
    for (const e of written) {
      const before = writer.length;
      wideEventCodec.encode(e, writer);
      sizes.push(writer.length - before);
    }
    const bytes = Uint8Array.from(writer.bytes.subarray(0, writer.length));
    // Records of at most three events' bytes: the encoded ones are split where the codec's would be.
    const recordBytes = sizes[0]! * 3;
    const pre = await Spool.open({ dir: join(dir, 'pre'), codec: wideEventCodec, recordBytes });
    expect(pre.append(written, { bytes, sizes: Uint32Array.from(sizes) })).toBe(0);
    await pre.close();
    const own = await Spool.open({ dir: join(dir, 'own'), codec: wideEventCodec, recordBytes });
    expect(own.append(written)).toBe(0);
    await own.close();

    const files = async (sub: string) =>
      Promise.all((await segmentFiles(join(dir, sub))).map((name) => readFile(join(dir, sub, name))));
    expect(await files('pre')).toEqual(await files('own'));
    const reopened = await Spool.open({ dir: join(dir, 'pre'), codec: wideEventCodec });
    expect(await replayedIds(reopened)).toEqual(written.map((e) => e.id));
    await reopened.close();
    const bad = await Spool.open({ dir: join(dir, 'bad'), codec: wideEventCodec });
    expect(() => bad.append(written, { bytes, sizes: sizes.slice(1) })).toThrow(/one size per encoded event/);
    await bad.close();
  });

  it('skips, with a warning, records of a codec it does not have rather than misreading them', async () => {
    const withCodec = await Spool.open({ dir, codec: wideEventCodec });
    withCodec.append(events('a', 2));
    await withCodec.close();
    const warnings: string[] = [];
    const without = await Spool.open({ dir, onWarning: (message) => warnings.push(message) });
    expect(await replayedIds(without)).toEqual([]);
    expect(warnings.join('\n')).toMatch(/codec wide-event-1, which this spool does not have/);
    await without.close();
  });
});
