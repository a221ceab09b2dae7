import { afterAll, beforeAll, describe, expect, it, onTestFinished, vi } from 'vitest';
import {
  type AnalyticsSettings,
  type BreakdownResult,
  createAnalytics,
  type SummaryResult,
  type TimeseriesResult,
} from '../../src/analytics/analytics.js';
import { rollupTiers } from '../../src/analytics/compile.js';
import { bucketIndex, HISTOGRAM_BUCKETS, histogramQuantile } from '../../src/analytics/latency-histogram.js';
import type { MetricName } from '../../src/analytics/metrics.js';
import { clickhouseStore } from '../../src/events/clickhouse-store.js';
import { duckdbStore } from '../../src/events/duckdb-store.js';
import type { EventReader } from '../../src/events/event-reader.js';
import type { EventStore } from '../../src/events/event-store.js';
import type { WideEvent } from '../../src/events/wide-event.js';
import { type ApiError, isApiError } from '../../src/http/api-error.js';
import { exactQuantile, SEED_END_MS, SEED_START_MS, seededEvents, sum } from '../support/analytics-seed.js';
import { sampleEvent } from '../support/event-store-contract.js';
import { type RunningServer, startClickHouse } from '../support/servers.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const all = { kind: 'all' } as const;

const settings: AnalyticsSettings = {
  // Ten minutes of seeded events compress less than a busy gateway's: rollups are read regardless.
  rollups: { enabled: true, minRangeMs: 6 * HOUR, minCompression: 1, settleMs: 120_000 },
  retention: { rawDays: 30, rollupDays: 400 },
  queries: { timeoutMs: 30_000, maxRows: 1000 },
};

/** The bound the histogram guarantees (latency-histogram.ts): one bucket, 2^(1/4) wide. */
const HISTOGRAM_ERROR = 2 ** 0.25 - 1;

/** Numbers to 12 significant digits: sums of costs added in another order differ in the last bits. */
function rounded(value: unknown): unknown {
  if (typeof value === 'number') return Number(value.toPrecision(12));
  if (Array.isArray(value)) return value.map(rounded);
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, rounded(item)]));
  }
  return value;
}

function ok<T>(result: T | ApiError): T {
  if (isApiError(result)) throw new Error(`expected an answer, got ${result.status}: ${result.message}`);
  return result;
}

let clickhouse: RunningServer;
let databases = 0;

beforeAll(async () => {
  clickhouse = await startClickHouse();
});
afterAll(async () => {
  await clickhouse?.stop();
});

const engines = {
  duckdb: () => duckdbStore({ path: ':memory:' }),
  clickhouse: () => clickhouseStore({ url: clickhouse.url, database: `analytics_rollups_${++databases}` }),
};

/** A fresh store with the seeded events, and analytics whose clock the test moves. */
async function seeded(makeStore: () => EventStore & EventReader, events: WideEvent[] = seededEvents()) {
  const store = makeStore();
  await store.open();
  onTestFinished(() => store.close());
  await store.insert(events);
  let nowMs = SEED_END_MS + HOUR;
  const analytics = createAnalytics({ reader: store, settings, now: () => nowMs });
  return {
    store,
    analytics,
    events,
    setNow: (ms: number) => {
      nowMs = ms;
    },
  };
}

/** Rows in both rollup tiers, each counted once. */
async function rollupRows(store: EventReader): Promise<number> {
  let rows = 0;
  for (const { table } of rollupTiers) {
    const from = store.engine === 'duckdb' ? table : `${store.database}.${table} FINAL`;
    const result = await store.query({ sql: `SELECT count(*) FROM ${from}` }, { timeoutMs: 10_000 });
    rows += Number(result.rows[0]?.[0]);
  }
  return rows;
}

for (const [engine, makeStore] of Object.entries(engines)) {
  describe(`rollups and retention on ${engine}`, () => {
    // A day around the seeded ten minutes: long enough to read rollups.
    const day = {
      from: new Date(SEED_START_MS - 12 * HOUR).toISOString(),
      to: new Date(SEED_START_MS + 12 * HOUR).toISOString(),
    };

    it('answers long ranges from the rollups: counts and sums exact, percentiles within a bucket', async () => {
      const { analytics, events } = await seeded(makeStore);
      const report = await analytics.maintain();
      expect(report.rollups?.events_rollup_1m.throughMs).toBe(SEED_END_MS + HOUR - 120_000);
      expect(report.rollups?.events_rollup_1h.throughMs).toBe(SEED_START_MS + HOUR);

      const summary = ok(
        await analytics.summary(
          {
            ...day,
            metrics: [
              'requests',
              'errors',
              'tokens_output',
              'shed',
              'latency_p50',
              'latency_p99',
              'ttft_p95',
            ],
          },
          all,
        ),
      ) as SummaryResult;
      // No filter or grouping: the narrow hour tier (route, status) answers.
      expect(summary.source).toBe('events_rollup_route_1h');
      expect(summary.values.requests).toBe(events.length);
      expect(summary.values.errors).toBe(events.filter((e) => e.status >= 400).length);
      expect(summary.values.shed).toBe(events.filter((e) => e.shed).length);
      expect(summary.values.tokens_output).toBe(sum(events.map((e) => e.tokens.output)));
      const latencies = events.map((e) => e.timings.totalMs);
      const ttfts = events.flatMap((e) => (e.timings.firstTokenMs === null ? [] : [e.timings.firstTokenMs]));
      for (const [actual, expected] of [
        [summary.values.latency_p50, exactQuantile(latencies, 0.5)],
        [summary.values.latency_p99, exactQuantile(latencies, 0.99)],
        [summary.values.ttft_p95, exactQuantile(ttfts, 0.95)],
      ] as const) {
        expect(Math.abs((actual as number) / (expected as number) - 1)).toBeLessThanOrEqual(HISTOGRAM_ERROR);
      }

      const byKey = ok(
        await analytics.breakdown({ ...day, by: 'key', metrics: ['requests', 'errors'] }, all),
      ) as BreakdownResult;
      expect(byKey.source).toBe('events_rollup_1h');
      for (const row of byKey.rows) {
        const mine = events.filter((e) => e.keyName === row.group);
        expect(row.values).toEqual({
          requests: mine.length,
          errors: mine.filter((e) => e.status >= 400).length,
        });
      }
      const scoped = ok(
        await analytics.summary(
          { ...day, filters: { status_class: ['4xx'] } },
          { kind: 'key', keyId: null, keyName: 'beta' },
        ),
      ) as SummaryResult;
      expect(scoped.source).toBe('events_rollup_1h');
      expect(scoped.values.requests).toBe(
        events.filter((e) => e.keyName === 'beta' && e.status === 429).length,
      );
    });

    it('reads hours for hourly steps and minutes for finer ones, with the same totals', async () => {
      const { analytics, events } = await seeded(makeStore);
      await analytics.maintain();
      const hourly = ok(
        await analytics.timeseries({ ...day, step: '1h', metrics: ['requests', 'errors'] }, all),
      ) as TimeseriesResult;
      const fiveMinutes = ok(
        await analytics.timeseries({ ...day, step: '5m', metrics: ['requests', 'errors'] }, all),
      ) as TimeseriesResult;
      expect(hourly.source).toBe('events_rollup_route_1h');
      expect(fiveMinutes.source).toBe('events_rollup_route_5m');
      for (const series of [hourly, fiveMinutes]) {
        expect(sum(series.series[0]?.values.requests as number[])).toBe(events.length);
        expect(sum(series.series[0]?.values.errors as number[])).toBe(
          events.filter((e) => e.status >= 400).length,
        );
      }
    });

    it('answers from the narrow tiers exactly as from the wide ones, for everyone and for one key', async () => {
      const { analytics, events } = await seeded(makeStore);
      await analytics.maintain();
      const overview: MetricName[] = [
        'requests',
        'errors',
        'tokens_output',
        'cost_usd',
        'latency_p50',
        'latency_p99',
        'ttft_p95',
      ];
      const beta = { kind: 'key', keyId: 'key_beta', keyName: 'beta' } as const;
      // A filter every seeded event passes, on a dimension only the wide tiers keep: the same
      // question, answered from them.
      const wide = { filters: { org: ['acme'] } };
      const questions: [string, string, (extra: object) => Promise<unknown>][] = [
        [
          'events_rollup_route_5m',
          'events_rollup_1m',
          (extra) => analytics.timeseries({ ...day, ...extra, step: '5m', metrics: overview }, all),
        ],
        [
          'events_rollup_route_1m',
          'events_rollup_1m',
          (extra) =>
            analytics.timeseries(
              { ...day, ...extra, step: '2m', groupBy: 'status_class', metrics: overview },
              all,
            ),
        ],
        [
          'events_rollup_route_1h',
          'events_rollup_1h',
          (extra) =>
            analytics.timeseries(
              { ...day, ...extra, step: '1h', groupBy: 'route', metrics: ['requests', 'latency_p95'] },
              all,
            ),
        ],
        [
          'events_rollup_route_1h',
          'events_rollup_1h',
          (extra) => analytics.breakdown({ ...day, ...extra, by: 'status_class', metrics: overview }, all),
        ],
        [
          'events_rollup_key_1m',
          'events_rollup_1m',
          (extra) => analytics.timeseries({ ...day, ...extra, step: '5m', metrics: overview }, beta),
        ],
      ];
      for (const [narrowSource, wideSource, ask] of questions) {
        const narrow = ok(await ask({})) as { source: string };
        const widely = ok(await ask(wide)) as { source: string };
        expect([narrow.source, widely.source]).toEqual([narrowSource, wideSource]);
        expect(rounded({ ...narrow, source: '' })).toEqual(rounded({ ...widely, source: '' }));
      }
      // Percentiles placed in their bucket as histogramQuantile places them, whichever engine ranks.
      const counts = Array<number>(HISTOGRAM_BUCKETS).fill(0);
      for (const event of events) {
        const index = bucketIndex(event.timings.totalMs);
        counts[index] = (counts[index] as number) + 1;
      }
      const summary = ok(
        await analytics.summary({ ...day, metrics: ['latency_p50', 'latency_p99'] }, all),
      ) as SummaryResult;
      expect(summary.values.latency_p50).toBeCloseTo(histogramQuantile(counts, 0.5) as number, 9);
      expect(summary.values.latency_p99).toBeCloseTo(histogramQuantile(counts, 0.99) as number, 9);
      // The tenant's series holds that key's events, no other's.
      const tenant = ok(
        await analytics.timeseries({ ...day, step: '5m', metrics: ['requests', 'errors'] }, beta),
      ) as TimeseriesResult;
      const mine = events.filter((e) => e.keyName === 'beta');
      expect(sum(tenant.series[0]?.values.requests as number[])).toBe(mine.length);
      expect(sum(tenant.series[0]?.values.errors as number[])).toBe(
        mine.filter((e) => e.status >= 400).length,
      );
    });

    it.runIf(engine === 'duckdb')(
      'builds a narrow tier added later from its wide parent, raw events expired or not',
      async () => {
        const { store, analytics, events } = await seeded(makeStore);
        await analytics.maintain();
        // As a file from before the narrow tiers: their tables and watermarks gone, raw events too.
        await store.execute([
          ...rollupTiers
            .filter((tier) => tier.parent !== null)
            .map((tier) => ({ sql: `DROP TABLE ${tier.table}` })),
          {
            sql: `DELETE FROM events_rollup_watermark WHERE name NOT IN ('events_rollup_1m', 'events_rollup_1h')`,
          },
          { sql: 'DELETE FROM events' },
        ]);
        // Two days on, with raw events kept one day: the range is read from rollups, whatever it holds.
        const upgraded = createAnalytics({
          reader: store,
          settings: { ...settings, retention: { ...settings.retention, rawDays: 1 } },
          now: () => SEED_END_MS + 2 * DAY,
        });
        const report = await upgraded.maintain();
        expect(report.rollups?.events_rollup_route_1m.buckets).toBeGreaterThan(0);
        const summary = ok(await upgraded.summary(day, all)) as SummaryResult;
        expect(summary).toEqual({ values: { requests: events.length }, source: 'events_rollup_route_1h' });
        const tenant = ok(
          await upgraded.timeseries(
            { ...day, step: '5m', metrics: ['requests'] },
            { kind: 'key', keyId: 'key_gamma', keyName: 'gamma' },
          ),
        ) as TimeseriesResult;
        expect(tenant.source).toBe('events_rollup_key_1m');
        expect(sum(tenant.series[0]?.values.requests as number[])).toBe(
          events.filter((e) => e.keyName === 'gamma').length,
        );
      },
    );

    it('reads raw events for dimensions the rollups do not keep, and for short ranges', async () => {
      const { analytics } = await seeded(makeStore);
      await analytics.maintain();
      const byWire = ok(await analytics.breakdown({ ...day, by: 'wire' }, all)) as BreakdownResult;
      expect(byWire.source).toBe('raw');
      const hour = ok(
        await analytics.summary(
          { from: new Date(SEED_START_MS).toISOString(), to: new Date(SEED_START_MS + HOUR).toISOString() },
          all,
        ),
      ) as SummaryResult;
      expect(hour.source).toBe('raw');
      // Rollups hold whole minutes: a step of 90 s cannot be built from them.
      const ninetySeconds = ok(await analytics.timeseries({ ...day, step: '90s' }, all)) as TimeseriesResult;
      expect(ninetySeconds.source).toBe('raw');
      expect(sum(ninetySeconds.series[0]?.values.requests as number[])).toBe(600);
    });

    it('reads raw events where each rollup row stands for too few of them', async () => {
      const { store, analytics, events } = await seeded(makeStore);
      await analytics.maintain();
      const demanding = createAnalytics({
        reader: store,
        settings: { ...settings, rollups: { ...settings.rollups, minCompression: 1_000 } },
        now: () => SEED_END_MS + HOUR,
      });
      const summary = ok(await demanding.summary(day, all)) as SummaryResult;
      expect(summary).toEqual({ values: { requests: events.length }, source: 'raw' });
    });

    it('adds the minutes not rolled up yet from raw events', async () => {
      const { analytics, events, setNow } = await seeded(makeStore);
      // Five of the ten seeded minutes are closed when the job runs.
      setNow(SEED_START_MS + 5 * 60_000 + 120_000);
      await analytics.maintain();
      setNow(SEED_END_MS + HOUR);
      const series = ok(
        await analytics.timeseries({ ...day, step: '1m', metrics: ['requests', 'errors'] }, all),
      ) as TimeseriesResult;
      expect(series.source).toBe('events_rollup_route_1m');
      const requests = series.series[0]?.values.requests as number[];
      expect(sum(requests)).toBe(events.length);
      const first = series.t.indexOf(SEED_START_MS);
      expect(requests.slice(first, first + 10)).toEqual(Array(10).fill(60));
      expect(sum(series.series[0]?.values.errors as number[])).toBe(
        events.filter((e) => e.status >= 400).length,
      );
    });

    it('rebuilds idempotently and picks up where the watermark stands', async () => {
      const { store, analytics, events, setNow } = await seeded(makeStore);
      await analytics.maintain();
      const rows = await rollupRows(store);
      expect(rows).toBeGreaterThan(0);
      setNow(SEED_END_MS + 2 * HOUR);
      const again = await analytics.maintain();
      expect(again.rollups?.events_rollup_1m.buckets).toBe(60);
      expect(again.rollups?.events_rollup_1h.buckets).toBe(1);
      expect(await rollupRows(store)).toBe(rows);
      const summary = ok(await analytics.summary(day, all)) as SummaryResult;
      expect(summary).toEqual({ values: { requests: events.length }, source: 'events_rollup_route_1h' });
    });

    it('counts an event that arrives late but within the settle time', async () => {
      const { store, analytics, events, setNow } = await seeded(makeStore);
      // The minute after the seeded ones ended 90 s ago: not settled, so not rolled up yet.
      setNow(SEED_END_MS + 60_000 + 90_000);
      await analytics.maintain();
      const late = sampleEvent(9_999, {
        id: 'late-event',
        time: new Date(SEED_END_MS + 30_000).toISOString(),
      });
      await store.insert([late]);
      setNow(SEED_END_MS + HOUR);
      await analytics.maintain();
      const summary = ok(await analytics.summary(day, all)) as SummaryResult;
      expect(summary.values.requests).toBe(events.length + 1);
    });

    it('deletes raw events after rawDays, once rolled up, and rollups after rollupDays', async () => {
      // Half the events a month earlier: two months of data, in two ClickHouse partitions.
      const events = seededEvents().map((event, i) =>
        i % 2 === 0 ? { ...event, time: new Date(Date.parse(event.time) - 31 * DAY).toISOString() } : event,
      );
      const { store, analytics, setNow } = await seeded(makeStore, events);
      const recent = events.filter((_, i) => i % 2 === 1);
      // Rollups first, then 10 days later raw retention (30 days) takes the older half.
      await analytics.maintain();
      setNow(SEED_END_MS + 10 * DAY);
      const report = await analytics.maintain();
      expect(report.retention.rawBeforeMs).toBe(Date.UTC(2026, 1, 9));
      await vi.waitFor(async () => expect(await store.count()).toBe(recent.length), {
        timeout: 20_000,
        interval: 100,
      });
      const left = await store.list({ limit: 1000 });
      expect(new Set(left.map((e) => e.id))).toEqual(new Set(recent.map((e) => e.id)));

      // The rollups still answer for the deleted month.
      const month = ok(
        await analytics.summary(
          {
            from: new Date(SEED_START_MS - 40 * DAY).toISOString(),
            to: new Date(SEED_START_MS + DAY).toISOString(),
          },
          all,
        ),
      ) as SummaryResult;
      expect(month.values.requests).toBe(events.length);

      // 400 days on, the rollups are gone too.
      setNow(SEED_END_MS + 430 * DAY);
      await analytics.maintain();
      await vi.waitFor(async () => expect(await rollupRows(store)).toBe(0), {
        timeout: 20_000,
        interval: 100,
      });
    });

    it('deletes expired rows inside a month that is still partly kept', async () => {
      // Half the events 20 days later, in the same month (one ClickHouse partition, so a mutation).
      const events = seededEvents().map((event, i) =>
        i % 2 === 1 ? { ...event, time: new Date(Date.parse(event.time) + 20 * DAY).toISOString() } : event,
      );
      const { store, analytics, setNow } = await seeded(makeStore, events);
      setNow(SEED_END_MS + 45 * DAY);
      const report = await analytics.maintain();
      expect(report.retention.rawBeforeMs).toBe(Date.UTC(2026, 2, 16));
      const later = events.filter((_, i) => i % 2 === 1);
      await vi.waitFor(async () => expect(await store.count()).toBe(later.length), {
        timeout: 20_000,
        interval: 100,
      });
    });

    it('keeps raw events that are not rolled up yet, whatever their age', async () => {
      const { store, analytics, setNow, events } = await seeded(makeStore);
      const lazy = createAnalytics({
        reader: store,
        settings: { ...settings, rollups: { ...settings.rollups, settleMs: 60 * DAY } },
        now: () => SEED_END_MS + 32 * DAY,
      });
      setNow(SEED_END_MS + 32 * DAY);
      const report = await lazy.maintain();
      expect(report.retention.rawBeforeMs).toBeNull();
      expect(await store.count()).toBe(events.length);
      await analytics.maintain();
      await vi.waitFor(async () => expect(await store.count()).toBe(0), { timeout: 20_000, interval: 100 });
    });
  });
}
