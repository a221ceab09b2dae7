import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { CustomEvent } from '../../src/events/custom-event.js';
import type { EventStore } from '../../src/events/event-store.js';
import type { WideEvent } from '../../src/events/wide-event.js';

export interface EventStoreUnderTest {
  store: EventStore;
  /** Removes whatever the store left behind (a database, a file); the store is closed already. */
  cleanup(): Promise<void>;
}

const addedInVersion2 = [
  'traceId',
  'keyId',
  'team',
  'org',
  'region',
  'routeVersion',
  'promptId',
  'promptVersion',
  'retrievalIndexHash',
  'errorClass',
  'costUsd',
  'cacheStatus',
  'shedReason',
  'tags',
  'requestBody',
  'responseBody',
];

const BASE_MS = Date.parse('2026-03-01T12:00:00.000Z');

/** The i-th event of a test, one second apart, with fractional timings and two attempts. */
export function sampleEvent(i: number, overrides: Partial<WideEvent> = {}): WideEvent {
  return {
    schemaVersion: 2,
    id: `evt-${String(i).padStart(6, '0')}`,
    traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
    time: new Date(BASE_MS + i * 1000).toISOString(),
    operation: i % 5 === 0 ? 'embeddings' : 'chat',
    wire: i % 2 === 0 ? 'openai' : 'anthropic',
    stream: i % 3 === 0,
    keyName: 'team-a',
    keyId: 'key_01',
    team: 'search',
    org: 'acme',
    requestedModel: 'gpt-4o-mini',
    route: 'default',
    target: 'openai/gpt-4o-mini',
    provider: 'openai',
    model: 'gpt-4o-mini',
    region: 'eu-west',
    routeVersion: 'r1a2b3c4',
    promptId: 'summarise',
    promptVersion: '7',
    retrievalIndexHash: 'idx-9f8e',
    status: 200,
    errorClass: null,
    errorCode: null,
    errorMessage: null,
    clientAborted: false,
    timings: { totalMs: 812.375 + i, firstTokenMs: 120.5, upstreamMs: 310.625 },
    tokens: { input: 1200 + i, output: 340, cachedInput: 1024, cacheWrite: 0, reasoning: 12 },
    costUsd: 0.000123456,
    cacheStatus: 'miss',
    attempts: [
      {
        target: 'azure/gpt-4o-mini',
        reason: 'first',
        outcome: 'timeout',
        queuedMs: 0.25,
        status: null,
        startMs: 0,
        durationMs: 500,
        firstByteMs: null,
        error: 'deadline exceeded',
      },
      {
        target: 'openai/gpt-4o-mini',
        reason: 'fallback',
        outcome: 'ok',
        queuedMs: null,
        status: 200,
        startMs: 501.5,
        durationMs: 310.875,
        firstByteMs: 95.125,
        error: null,
      },
    ],
    retries: 0,
    fallbacks: 1,
    hedges: 0,
    priority: 'interactive',
    queuedMs: 0.25,
    shed: false,
    shedReason: null,
    tags: { feature: 'autocomplete', 'ab.bucket': 'b' },
    requestBody: null,
    responseBody: null,
    ...overrides,
  };
}

/**
 * `count` sample events whose key names (null, multibyte, 12 and 13 bytes, empty), targets and
 * costs (null or not) vary from row to row: what a store's column writers must get right.
 */
export function variedEvents(count: number): WideEvent[] {
  return Array.from({ length: count }, (_, i) =>
    sampleEvent(i, {
      keyName: i % 7 === 0 ? null : ['Ω', 'twelve-bytes', 'thirteen-byte', ''][i % 4]!,
      target: i % 3 === 0 ? 'anthropic/claude-3-5-haiku' : 'openai/gpt-4o-mini',
      costUsd: i % 2 === 0 ? null : i / 1000,
    }),
  );
}

/** The i-th custom event of a test: feedback on request `req-<i % 3>`, one second apart. */
export function sampleCustomEvent(i: number, overrides: Partial<CustomEvent> = {}): CustomEvent {
  return {
    schemaVersion: 1,
    id: `cev-${String(i).padStart(6, '0')}`,
    type: 'feedback',
    time: new Date(BASE_MS + i * 1000).toISOString(),
    receivedAt: new Date(BASE_MS + i * 1000 + 250).toISOString(),
    requestId: `req-${i % 3}`,
    keyName: 'support-desk',
    admin: false,
    fields: { score: i % 5, helpful: i % 2 === 0, comment: `comment ${i}`, ratio: i / 8 },
    ...overrides,
  };
}

const range = (from: number, to: number): number[] => Array.from({ length: to - from }, (_, k) => from + k);
const newestFirst = (events: WideEvent[]): WideEvent[] =>
  [...events].sort((a, b) => Date.parse(b.time) - Date.parse(a.time) || (a.id < b.id ? 1 : -1));

/** The behaviour every EventStore promises; each implementation runs this suite against a real engine. */
export function describeEventStoreContract(
  name: string,
  makeStore: () => Promise<EventStoreUnderTest>,
): void {
  describe(`${name} event store contract`, () => {
    let store: EventStore;
    let cleanup: () => Promise<void>;

    beforeEach(async () => {
      ({ store, cleanup } = await makeStore());
      await store.open();
    });

    afterEach(async () => {
      await store.close();
      await cleanup();
    });

    it('counts nothing and lists nothing when empty', async () => {
      expect(await store.count()).toBe(0);
      expect(await store.list({ limit: 10 })).toEqual([]);
    });

    it('opens again without losing or duplicating what is stored', async () => {
      await store.insert(range(0, 3).map((i) => sampleEvent(i)));
      await store.open();
      await store.open();
      expect(await store.count()).toBe(3);
    });

    it('gives back inserted events exactly as they went in, newest first', async () => {
      const events = [
        sampleEvent(1),
        sampleEvent(2, {
          status: 502,
          errorClass: 'shed',
          errorCode: 'shed_queue_full',
          errorMessage: 'all targets failed',
          shed: true,
          shedReason: 'queue_full',
          costUsd: null,
          cacheStatus: null,
          tags: {},
        }),
        sampleEvent(3, { stream: true, clientAborted: true, attempts: [] }),
      ];
      await store.insert(events);
      expect(await store.list({ limit: 10 })).toEqual(newestFirst(events));
    });

    it('reads an event spooled by schema version 1 back with the later fields null', async () => {
      const v2 = sampleEvent(4);
      const v1 = Object.fromEntries(
        Object.entries(v2).filter(([field]) => !addedInVersion2.includes(field)),
      ) as unknown as WideEvent;
      await store.insert([
        { ...v1, schemaVersion: 1, timings: { totalMs: 9, firstTokenMs: null } } as WideEvent,
      ]);
      const [stored] = await store.list({ limit: 1 });
      expect(stored).toMatchObject({ schemaVersion: 1, id: v2.id, keyId: null, costUsd: null, tags: {} });
      expect(stored?.timings).toEqual({ totalMs: 9, firstTokenMs: null, upstreamMs: null });
    });

    it('stores a batch inserted twice only once', async () => {
      const batch = range(0, 20).map((i) => sampleEvent(i));
      await store.insert(batch);
      await store.insert(batch);
      expect(await store.count()).toBe(20);
      expect(await store.list({ limit: 100 })).toEqual(newestFirst(batch));
    });

    it('stores only the new ids of a batch that overlaps a previous one', async () => {
      await store.insert(range(0, 10).map((i) => sampleEvent(i)));
      // A replay carries the same ids, possibly re-serialised: the stored copy wins.
      await store.insert(range(5, 15).map((i) => sampleEvent(i, { keyName: 'replayed' })));
      expect(await store.count()).toBe(15);
      const listed = await store.list({ limit: 100 });
      expect(listed.map((event) => event.id)).toEqual(
        newestFirst(range(0, 15).map((i) => sampleEvent(i))).map((e) => e.id),
      );
      expect(listed.filter((event) => event.keyName === 'replayed').map((event) => event.id)).toEqual(
        range(10, 15)
          .reverse()
          .map((i) => sampleEvent(i).id),
      );
    });

    it('stores a first delivery, and of a retry overlapping it only the new ids', async () => {
      await store.insert(
        range(0, 10).map((i) => sampleEvent(i)),
        { firstDelivery: true },
      );
      // The retry of a batch whose insert failed after the store kept part of it: not a first delivery.
      await store.insert(range(5, 15).map((i) => sampleEvent(i, { keyName: 'retried' })));
      expect(await store.count()).toBe(15);
      const listed = await store.list({ limit: 100 });
      expect(listed.filter((event) => event.keyName === 'retried').map((event) => event.id)).toEqual(
        range(10, 15)
          .reverse()
          .map((i) => sampleEvent(i).id),
      );
      expect(listed.find((event) => event.id === sampleEvent(3).id)).toEqual(sampleEvent(3));
    });

    it('stores an id repeated within one batch once', async () => {
      await store.insert([sampleEvent(1), sampleEvent(2), sampleEvent(1)]);
      expect(await store.count()).toBe(2);
    });

    it('stores only new ids of a batch spanning distant times (a replay beside new events)', async () => {
      const hoursLater = (i: number) => sampleEvent(10_000 + i, { id: `late-${i}` });
      await store.insert([sampleEvent(1), sampleEvent(2), hoursLater(1)]);
      await store.insert([sampleEvent(2), sampleEvent(3), hoursLater(1), hoursLater(2), sampleEvent(1)]);
      expect(await store.count()).toBe(5);
    });

    it('stores overlapping batches inserted concurrently once', async () => {
      await Promise.all([
        store.insert(range(0, 50).map((i) => sampleEvent(i))),
        store.insert(range(25, 75).map((i) => sampleEvent(i))),
        store.insert(range(0, 75).map((i) => sampleEvent(i))),
      ]);
      expect(await store.count()).toBe(75);
    });

    it('lists from (inclusive) to (exclusive), newest first, up to the limit', async () => {
      const events = range(0, 10).map((i) => sampleEvent(i));
      await store.insert(events);
      const from = sampleEvent(3).time;
      const to = sampleEvent(7).time;
      const ids = (listed: WideEvent[]) => listed.map((event) => event.id);
      const idsOf = (is: number[]) => is.map((i) => sampleEvent(i).id);

      expect(ids(await store.list({ from, to, limit: 100 }))).toEqual(idsOf([6, 5, 4, 3]));
      expect(ids(await store.list({ from, to, limit: 2 }))).toEqual(idsOf([6, 5]));
      expect(ids(await store.list({ from, limit: 100 }))).toEqual(idsOf([9, 8, 7, 6, 5, 4, 3]));
      expect(ids(await store.list({ to, limit: 100 }))).toEqual(idsOf([6, 5, 4, 3, 2, 1, 0]));
      expect(ids(await store.list({ limit: 3 }))).toEqual(idsOf([9, 8, 7]));
    });

    it('takes 10 000 events in one call', async () => {
      const events = range(0, 10_000).map((i) => sampleEvent(i));
      await store.insert(events);
      expect(await store.count()).toBe(10_000);
      expect(await store.list({ limit: 3 })).toEqual(newestFirst(events).slice(0, 3));
    });

    it('keeps nulls, unicode and long strings intact', async () => {
      const text = 'héllo 🌊 日本語 Ω — "double" \'single\' back\\slash\ttab\nnewline \u0001 ∅';
      const events = [
        sampleEvent(1, {
          keyName: null,
          route: null,
          target: null,
          provider: null,
          model: null,
          errorCode: null,
          errorMessage: null,
          priority: null,
          traceId: null,
          keyId: null,
          team: null,
          org: null,
          region: null,
          routeVersion: null,
          promptId: null,
          promptVersion: null,
          retrievalIndexHash: null,
          costUsd: null,
          cacheStatus: null,
          timings: { totalMs: 0, firstTokenMs: null, upstreamMs: null },
        }),
        sampleEvent(2, {
          id: `evt-${text}`,
          requestedModel: text,
          errorMessage: `${text} ${'x'.repeat(200_000)}`,
          attempts: [{ ...(sampleEvent(0).attempts[0] as WideEvent['attempts'][number]), error: text }],
          timings: { totalMs: 0.1 + 0.2, firstTokenMs: 1e-7, upstreamMs: 0 },
          tags: { note: text },
          requestBody: `{"messages":[{"content":${JSON.stringify(text)}}]}`,
          responseBody: text,
        }),
      ];
      await store.insert(events);
      expect(await store.list({ limit: 10 })).toEqual(newestFirst(events));
      await store.insert(events);
      expect(await store.count()).toBe(2);
    });

    it('gives back the custom events of a request, oldest first, and nothing for other requests', async () => {
      const events = range(0, 9).map((i) => sampleCustomEvent(i));
      await store.insertCustom([...events].reverse());
      expect(await store.related('req-1')).toEqual([events[1], events[4], events[7]]);
      expect(await store.related('req-unknown')).toEqual([]);
      expect(await store.countCustom()).toBe(9);
    });

    it('keeps custom events apart from wide events', async () => {
      await store.insert([sampleEvent(1), sampleEvent(2)]);
      await store.insertCustom([sampleCustomEvent(1, { requestId: sampleEvent(1).id })]);
      expect(await store.count()).toBe(2);
      expect(await store.countCustom()).toBe(1);
      expect(await store.related(sampleEvent(1).id)).toEqual([
        sampleCustomEvent(1, { requestId: sampleEvent(1).id }),
      ]);
    });

    it('stores a custom event without a request, related to none', async () => {
      await store.insertCustom([sampleCustomEvent(1, { requestId: null, type: 'signup' })]);
      expect(await store.countCustom()).toBe(1);
      expect(await store.related('')).toEqual([]);
      expect(await store.related('null')).toEqual([]);
    });

    it('stores each custom event id once: batches repeated, overlapping, concurrent or with repeats', async () => {
      await store.insertCustom(range(0, 10).map((i) => sampleCustomEvent(i)));
      // A replay or a retried POST carries the same ids; the stored copy wins.
      await store.insertCustom(range(5, 15).map((i) => sampleCustomEvent(i, { keyName: 'replayed' })));
      await Promise.all([
        store.insertCustom(range(10, 30).map((i) => sampleCustomEvent(i))),
        store.insertCustom(range(20, 40).map((i) => sampleCustomEvent(i))),
      ]);
      await store.insertCustom([sampleCustomEvent(50), sampleCustomEvent(50)]);
      expect(await store.countCustom()).toBe(41);
      const related = await store.related('req-0');
      expect(related.map((event) => event.id)).toEqual(
        [...range(0, 40), 50].filter((i) => i % 3 === 0).map((i) => sampleCustomEvent(i).id),
      );
      expect(related.find((event) => event.id === sampleCustomEvent(6).id)?.keyName).toBe('support-desk');
      expect(related.find((event) => event.id === sampleCustomEvent(12).id)?.keyName).toBe('replayed');
    });

    it('keeps custom fields of every kind, unicode and admin attribution intact', async () => {
      const text = 'héllo 🌊 日本語 — "double" \'single\' back\\slash\ttab\nnewline';
      const event = sampleCustomEvent(1, {
        id: `cev-${text.slice(0, 20)}`,
        keyName: null,
        admin: true,
        fields: {
          text,
          big: 2 ** 53 - 1,
          negative: -0.000125,
          yes: true,
          no: false,
          at: '2026-03-01T12:00:00.000Z',
          [`clé ${text.slice(0, 5)}`]: 'value',
        },
      });
      await store.insertCustom([event]);
      expect(await store.related(event.requestId!)).toEqual([event]);
    });

    it('takes 10 000 custom events in one call', async () => {
      await store.insertCustom(range(0, 10_000).map((i) => sampleCustomEvent(i)));
      expect(await store.countCustom()).toBe(10_000);
      expect((await store.related('req-2')).length).toBe(3333);
    });

    it('closes cleanly', async () => {
      await store.insert([sampleEvent(1)]);
      await expect(store.close()).resolves.toBeUndefined();
      // afterEach closes again: a second close is harmless.
    });
  });
}
