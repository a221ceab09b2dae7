import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type Analytics,
  type AnalyticsSettings,
  type BreakdownResult,
  createAnalytics,
  type RequestsPage,
  type SqlResult,
  type SummaryResult,
  type TimeseriesResult,
} from '../../src/analytics/analytics.js';
import type { Scope } from '../../src/analytics/query.js';
import { clickhouseStore } from '../../src/events/clickhouse-store.js';
import { duckdbStore } from '../../src/events/duckdb-store.js';
import type { EventReader } from '../../src/events/event-reader.js';
import { QueryError } from '../../src/events/event-reader.js';
import type { EventStore } from '../../src/events/event-store.js';
import type { WideEvent } from '../../src/events/wide-event.js';
import { type ApiError, isApiError } from '../../src/http/api-error.js';
import { exactQuantile, SEED_END_MS, SEED_START_MS, seededEvents, sum } from '../support/analytics-seed.js';
import { sampleEvent } from '../support/event-store-contract.js';
import { type RunningServer, startClickHouse } from '../support/servers.js';

const settings: AnalyticsSettings = {
  rollups: { enabled: true, minRangeMs: 6 * 3_600_000, minCompression: 4, settleMs: 120_000 },
  retention: { rawDays: 30, rollupDays: 400 },
  queries: { timeoutMs: 30_000, maxRows: 50 },
};

const from = new Date(SEED_START_MS).toISOString();
const to = new Date(SEED_END_MS).toISOString();
const everything: Scope = { kind: 'all' };
const keyScope = (keyName: string): Scope => ({ kind: 'key', keyId: null, keyName });

function ok<T>(result: T | ApiError): T {
  if (isApiError(result)) throw new Error(`expected an answer, got ${result.status}: ${result.message}`);
  return result;
}

function refused(result: unknown): ApiError {
  if (!isApiError(result)) throw new Error(`expected an error, got ${JSON.stringify(result).slice(0, 200)}`);
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
  duckdb: async () => duckdbStore({ path: ':memory:' }),
  clickhouse: async () =>
    clickhouseStore({ url: clickhouse.url, database: `analytics_queries_${++databases}` }),
};

/**
 * The same queries against both engines over the same seeded events, checked against answers
 * computed here from the events themselves. Percentiles are exact in DuckDB (quantile_cont) and
 * t-digest estimates in ClickHouse, so ClickHouse gets a tolerance.
 */
for (const [engine, makeStore] of Object.entries(engines)) {
  describe(`analytics queries on ${engine}`, () => {
    let store: EventStore & EventReader;
    let analytics: Analytics;
    const events = seededEvents();
    const percentileTolerance = engine === 'duckdb' ? 1e-9 : 0.03;

    const expectPercentile = (actual: number | null | undefined, expected: number | null) => {
      expect(actual).not.toBeNull();
      expect(Math.abs((actual as number) - (expected as number)) / (expected as number)).toBeLessThanOrEqual(
        percentileTolerance,
      );
    };

    beforeAll(async () => {
      store = await makeStore();
      await store.open();
      await store.insert(events);
      analytics = createAnalytics({ reader: store, settings, now: () => SEED_END_MS + 3_600_000 });
    });
    afterAll(async () => {
      await store?.close();
    });

    it('counts requests, errors and rps per minute exactly', async () => {
      const series = ok(
        await analytics.timeseries(
          { from, to, step: '1m', metrics: ['requests', 'errors', 'error_rate', 'rps', 'shed'] },
          everything,
        ),
      ) as TimeseriesResult;
      expect(series.stepMs).toBe(60_000);
      expect(series.t).toEqual(Array.from({ length: 10 }, (_, i) => SEED_START_MS + i * 60_000));
      expect(series.series).toHaveLength(1);
      const [only] = series.series;
      const perMinute = (predicate: (e: WideEvent) => boolean) =>
        series.t.map(
          (t) =>
            events.filter((e) => Date.parse(e.time) >= t && Date.parse(e.time) < t + 60_000 && predicate(e))
              .length,
        );
      expect(only?.group).toBeNull();
      expect(only?.values.requests).toEqual(perMinute(() => true));
      expect(only?.values.errors).toEqual(perMinute((e) => e.status >= 400));
      expect(only?.values.shed).toEqual(perMinute((e) => e.shed));
      expect(only?.values.rps).toEqual(Array(10).fill(1));
      const errorRates = perMinute((e) => e.status >= 400).map((n) => n / 60);
      for (const [i, rate] of (only?.values.error_rate ?? []).entries()) {
        expect(rate).toBeCloseTo(errorRates[i] as number, 12);
      }
    });

    it('sums tokens exactly and reports throughput per second of the range', async () => {
      const summary = ok(
        await analytics.summary(
          { from, to, metrics: ['tokens_input', 'tokens_output', 'tokens_per_s', 'requests'] },
          everything,
        ),
      ) as SummaryResult;
      expect(summary.values.requests).toBe(600);
      expect(summary.values.tokens_input).toBe(sum(events.map((e) => e.tokens.input)));
      expect(summary.values.tokens_output).toBe(sum(events.map((e) => e.tokens.output)));
      expect(summary.values.tokens_per_s).toBeCloseTo(sum(events.map((e) => e.tokens.output)) / 600, 9);
    });

    it('computes latency and time-to-first-token percentiles', async () => {
      const summary = ok(
        await analytics.summary(
          { from, to, metrics: ['latency_p50', 'latency_p95', 'latency_p99', 'ttft_p50', 'ttft_p99'] },
          everything,
        ),
      ) as SummaryResult;
      const latencies = events.map((e) => e.timings.totalMs);
      const ttfts = events.flatMap((e) => (e.timings.firstTokenMs === null ? [] : [e.timings.firstTokenMs]));
      expectPercentile(summary.values.latency_p50, exactQuantile(latencies, 0.5));
      expectPercentile(summary.values.latency_p95, exactQuantile(latencies, 0.95));
      expectPercentile(summary.values.latency_p99, exactQuantile(latencies, 0.99));
      expectPercentile(summary.values.ttft_p50, exactQuantile(ttfts, 0.5));
      expectPercentile(summary.values.ttft_p99, exactQuantile(ttfts, 0.99));
    });

    it('sums known costs, and reads cache hits among cache lookups', async () => {
      const summary = ok(
        await analytics.summary(
          { from, to, metrics: ['cost_usd', 'cost_per_hour', 'cache_hit_rate'] },
          everything,
        ),
      ) as SummaryResult;
      const cost = sum(events.map((e) => e.costUsd ?? 0));
      expect(summary.values.cost_usd).toBeCloseTo(cost, 12);
      expect(summary.values.cost_per_hour).toBeCloseTo(cost * 6, 12);
      const lookups = events.filter((e) => e.cacheStatus !== null);
      const hits = lookups.filter((e) => e.cacheStatus === 'hit' || e.cacheStatus === 'semantic_hit');
      expect(summary.values.cache_hit_rate).toBeCloseTo(hits.length / lookups.length, 12);
      // The search route has no cache: its hit rate is unknown, not zero.
      const search = ok(
        await analytics.summary(
          { from, to, metrics: ['cache_hit_rate'], filters: { route: ['search'] } },
          everything,
        ),
      ) as SummaryResult;
      expect(search.values.cache_hit_rate).toBeNull();
    });

    it('groups and filters by the principal’s team, error class and tags', async () => {
      const byTeam = ok(await analytics.breakdown({ from, to, by: 'team' }, everything)) as BreakdownResult;
      expect(byTeam.rows).toEqual([
        { group: 'search', values: { requests: events.filter((e) => e.team === 'search').length } },
        { group: 'ads', values: { requests: events.filter((e) => e.team === 'ads').length } },
      ]);
      const byClass = ok(
        await analytics.breakdown({ from, to, by: 'error_class' }, everything),
      ) as BreakdownResult;
      expect(Object.fromEntries(byClass.rows.map((row) => [row.group, row.values.requests]))).toEqual({
        null: events.filter((e) => e.errorClass === null).length,
        upstream: events.filter((e) => e.errorClass === 'upstream').length,
        rate_limited: events.filter((e) => e.errorClass === 'rate_limited').length,
      });
      const byTag = ok(
        await analytics.breakdown({ from, to, by: 'tag.feature' }, everything),
      ) as BreakdownResult;
      expect(Object.fromEntries(byTag.rows.map((row) => [row.group, row.values.requests]))).toEqual({
        autocomplete: events.filter((e) => e.tags.feature === 'autocomplete').length,
        summary: events.filter((e) => e.tags.feature === 'summary').length,
        null: events.filter((e) => e.tags.feature === undefined).length,
      });
      const tagged = ok(
        await analytics.summary(
          { from, to, filters: { 'tag.feature': ['summary'], team: ['ads'] } },
          everything,
        ),
      ) as SummaryResult;
      expect(tagged.values.requests).toBe(
        events.filter((e) => e.tags.feature === 'summary' && e.team === 'ads').length,
      );
      const untagged = ok(
        await analytics.summary({ from, to, filters: { 'tag.colour': ['red'] } }, everything),
      ) as SummaryResult;
      expect(untagged.values.requests).toBe(0);
    });

    it('breaks down by route, most requests first, each row with its own metrics', async () => {
      const breakdown = ok(
        await analytics.breakdown(
          { from, to, by: 'route', metrics: ['requests', 'errors', 'latency_p50'] },
          everything,
        ),
      ) as BreakdownResult;
      expect(breakdown.by).toBe('route');
      const routes = ['chat', 'search'];
      expect(breakdown.rows.map((row) => row.group).sort()).toEqual(routes);
      for (const row of breakdown.rows) {
        const mine = events.filter((e) => e.route === row.group);
        expect(row.values.requests).toBe(mine.length);
        expect(row.values.errors).toBe(mine.filter((e) => e.status >= 400).length);
        expectPercentile(
          row.values.latency_p50,
          exactQuantile(
            mine.map((e) => e.timings.totalMs),
            0.5,
          ),
        );
      }
    });

    it('groups by an integer dimension as text and filters by status class', async () => {
      const byStatus = ok(
        await analytics.breakdown({ from, to, by: 'status' }, everything),
      ) as BreakdownResult;
      expect(byStatus.rows).toEqual(
        [
          { group: '200', values: { requests: events.filter((e) => e.status === 200).length } },
          { group: '429', values: { requests: events.filter((e) => e.status === 429).length } },
          { group: '503', values: { requests: events.filter((e) => e.status === 503).length } },
        ].sort((a, b) => (b.values.requests as number) - (a.values.requests as number)),
      );
      const fives = ok(
        await analytics.summary({ from, to, filters: { status_class: ['5xx'] } }, everything),
      ) as SummaryResult;
      expect(fives.values.requests).toBe(events.filter((e) => e.status >= 500).length);
      const classes = ok(
        await analytics.breakdown({ from, to, by: 'status_class' }, everything),
      ) as BreakdownResult;
      expect(Object.fromEntries(classes.rows.map((row) => [row.group, row.values.requests]))).toEqual({
        '2xx': events.filter((e) => e.status === 200).length,
        '4xx': events.filter((e) => e.status === 429).length,
        '5xx': events.filter((e) => e.status === 503).length,
      });
    });

    it('filters: repeated values mean IN, errors_only keeps status ≥ 400', async () => {
      const both = ok(
        await analytics.summary(
          { from, to, filters: { key: ['alpha', 'gamma'], route: ['chat'] } },
          everything,
        ),
      ) as SummaryResult;
      expect(both.values.requests).toBe(
        events.filter((e) => (e.keyName === 'alpha' || e.keyName === 'gamma') && e.route === 'chat').length,
      );
      const errors = ok(await analytics.summary({ from, to, errorsOnly: true }, everything)) as SummaryResult;
      expect(errors.values.requests).toBe(events.filter((e) => e.status >= 400).length);
    });

    it('keeps the top groups of a time series by requests', async () => {
      const highFirst = events.filter((e) => e.status === 200);
      const series = ok(
        await analytics.timeseries(
          { from, to, step: '5m', groupBy: 'key', limit: 2, filters: { status: ['200'] } },
          everything,
        ),
      ) as TimeseriesResult;
      const counts = ['alpha', 'beta', 'gamma']
        .map((key) => ({ key, n: highFirst.filter((e) => e.keyName === key).length }))
        .sort((a, b) => b.n - a.n || (a.key < b.key ? -1 : 1));
      expect(series.series.map((s) => s.group)).toEqual(counts.slice(0, 2).map((c) => c.key));
      for (const s of series.series) {
        expect(sum(s.values.requests as number[])).toBe(counts.find((c) => c.key === s.group)?.n);
      }
    });

    it('isolates tenants: a key never sees another key’s events', async () => {
      const beta = keyScope('beta');
      const mine = events.filter((e) => e.keyName === 'beta');
      const series = ok(await analytics.timeseries({ from, to, step: '10m' }, beta)) as TimeseriesResult;
      expect(series.series[0]?.values.requests).toEqual([mine.length]);
      const byKey = ok(await analytics.breakdown({ from, to, by: 'key' }, beta)) as BreakdownResult;
      expect(byKey.rows).toEqual([{ group: 'beta', values: { requests: mine.length } }]);
      // Asking for another key's events narrows, never widens: the tenant filter is always there.
      const asked = ok(
        await analytics.summary({ from, to, filters: { key: ['alpha'] } }, beta),
      ) as SummaryResult;
      expect(asked.values.requests).toBe(0);
      const page = ok(await analytics.requests({ from, to, limit: 500 }, beta)) as RequestsPage;
      expect(page.data).toHaveLength(mine.length);
      expect(new Set(page.data.map((e) => e.keyName))).toEqual(new Set(['beta']));
      const alphaEvent = events.find((e) => e.keyName === 'alpha') as WideEvent;
      expect(refused(await analytics.request(alphaEvent.id, beta)).status).toBe(404);
      expect(ok(await analytics.request(alphaEvent.id, everything)).event).toEqual(alphaEvent);
      const nobody = ok(await analytics.summary({ from, to }, keyScope('nobody'))) as SummaryResult;
      expect(nobody.values.requests).toBe(0);
      // A virtual key is matched by its id, which outlives renames: the name plays no part.
      const byId = ok(
        await analytics.summary({ from, to }, { kind: 'key', keyId: 'key_gamma', keyName: 'beta' }),
      ) as SummaryResult;
      expect(byId.values.requests).toBe(events.filter((e) => e.keyId === 'key_gamma').length);
    });

    it('pages the request list newest first by keyset, without gaps or repeats', async () => {
      const expected = events
        .filter((e) => e.route === 'search' && e.status === 200)
        .sort((a, b) => Date.parse(b.time) - Date.parse(a.time) || (a.id < b.id ? 1 : -1))
        .map((e) => e.id);
      const seen: string[] = [];
      let cursor: string | undefined;
      for (;;) {
        const page = ok(
          await analytics.requests(
            { from, to, limit: 37, cursor, filters: { route: ['search'], status: ['200'] } },
            everything,
          ),
        ) as RequestsPage;
        seen.push(...page.data.map((e) => e.id));
        if (!page.nextCursor) break;
        cursor = page.nextCursor;
      }
      expect(seen).toEqual(expected);
    });

    it('pages through sparse requests across days, newest first', async () => {
      // One request every 7 hours for 10 days before the seeded ones: pages span several windows.
      const sparse = Array.from({ length: 35 }, (_, k) =>
        sampleEvent(10_000 + k, {
          id: `sparse-${String(k).padStart(2, '0')}`,
          keyName: 'delta',
          time: new Date(SEED_START_MS - (k + 1) * 7 * 3_600_000).toISOString(),
        }),
      );
      await store.insert(sparse);
      const seen: string[] = [];
      let cursor: string | undefined;
      let pages = 0;
      do {
        const page = ok(
          await analytics.requests(
            {
              from: new Date(SEED_START_MS - 11 * 86_400_000).toISOString(),
              to,
              limit: 4,
              cursor,
              filters: { key: ['delta'] },
            },
            everything,
          ),
        ) as RequestsPage;
        seen.push(...page.data.map((e) => e.id));
        cursor = page.nextCursor ?? undefined;
        pages++;
      } while (cursor);
      expect(seen).toEqual(sparse.map((e) => e.id));
      expect(pages).toBe(9);
    });

    it('returns a request’s whole event, and 404 for an unknown id', async () => {
      const event = events[42] as WideEvent;
      expect(ok(await analytics.request(event.id, everything))).toEqual({ event, related: [] });
      const missing = refused(await analytics.request('no-such-id', everything));
      expect(missing).toMatchObject({ status: 404, code: 'request_not_found' });
    });

    it('adds the custom events related to a request, only once the request is visible', async () => {
      const asked: string[] = [];
      const withRelated = createAnalytics({
        reader: store,
        settings,
        related: async (id) => {
          asked.push(id);
          return [{ id: `feedback-${id}`, type: 'feedback', requestId: id }];
        },
      });
      const event = events.find((e) => e.keyName === 'alpha') as WideEvent;
      expect(ok(await withRelated.request(event.id, keyScope('alpha'))).related).toEqual([
        { id: `feedback-${event.id}`, type: 'feedback', requestId: event.id },
      ]);
      expect(refused(await withRelated.request(event.id, keyScope('beta'))).status).toBe(404);
      expect(asked).toEqual([event.id]);
    });

    it('refuses bad input with a 400 that names the parameter', async () => {
      expect(
        refused(await analytics.timeseries({ metrics: ['latency_p42' as never] }, everything)),
      ).toMatchObject({
        status: 400,
        param: 'metrics[0]',
      });
      expect(refused(await analytics.breakdown({ by: 'colour' }, everything))).toMatchObject({
        status: 400,
        param: 'by',
      });
      expect(refused(await analytics.summary({ filters: { colour: ['red'] } }, everything))).toMatchObject({
        status: 400,
        param: 'colour',
      });
      expect(refused(await analytics.summary({ from: 'yesterday' }, everything))).toMatchObject({
        status: 400,
        param: 'from',
      });
      expect(refused(await analytics.summary({ from: '-1h', to: '-2h' }, everything))).toMatchObject({
        status: 400,
        param: 'from',
      });
      expect(refused(await analytics.timeseries({ from: '-30d', step: '10s' }, everything))).toMatchObject({
        status: 400,
        code: 'too_many_points',
      });
      expect(refused(await analytics.summary({ filters: { status: ['2OO'] } }, everything))).toMatchObject({
        status: 400,
        param: 'status',
      });
      expect(refused(await analytics.requests({ cursor: 'not-a-cursor' }, everything))).toMatchObject({
        status: 400,
        code: 'invalid_cursor',
      });
    });

    it('runs read-only SQL for the admin, capped in rows', async () => {
      const table = engine === 'duckdb' ? 'events' : `${store.database}.events`;
      const result = ok(
        await analytics.sql(
          `SELECT route, count(*) AS n FROM ${table} WHERE time_ms >= ${SEED_START_MS} GROUP BY route ORDER BY route;`,
        ),
      ) as SqlResult;
      expect(result.columns.map((col) => col.name)).toEqual(['route', 'n']);
      expect(result.rows).toEqual([
        ['chat', events.filter((e) => e.route === 'chat').length],
        ['search', events.filter((e) => e.route === 'search').length],
      ]);
      expect(result.truncated).toBe(false);
      const capped = ok(await analytics.sql(`SELECT id FROM ${table}`)) as SqlResult;
      expect(capped.rows).toHaveLength(settings.queries.maxRows);
      expect(capped.truncated).toBe(true);
      expect(refused(await analytics.sql(`DELETE FROM ${table}`))).toMatchObject({
        status: 400,
        code: 'sql_not_allowed',
      });
      expect(refused(await analytics.sql('SELECT nonsense FROM nowhere'))).toMatchObject({
        status: 400,
        code: 'invalid_sql',
      });
    });

    it('enforces read-only in the engine too, behind the SQL guard', async () => {
      const attempt =
        engine === 'duckdb'
          ? "SELECT * FROM read_csv('/etc/passwd')"
          : "SELECT * FROM file('/etc/passwd', 'TSV', 'line String')";
      await expect(
        store.query({ sql: attempt }, { timeoutMs: 10_000, readOnly: true }),
      ).rejects.toBeInstanceOf(QueryError);
      const before = await store.count();
      const write =
        engine === 'duckdb' ? 'DELETE FROM events' : `INSERT INTO ${store.database}.events (id) VALUES ('x')`;
      await expect(store.query({ sql: write }, { timeoutMs: 10_000, readOnly: true })).rejects.toMatchObject({
        reason: 'read_only',
      });
      expect(await store.count()).toBe(before);
    });

    it('cancels a query that runs past the timeout', async () => {
      const endless =
        engine === 'duckdb'
          ? 'SELECT count(*) FROM range(1000000000000)'
          : 'SELECT count() FROM system.numbers';
      const slow = createAnalytics({
        reader: store,
        settings: { ...settings, queries: { ...settings.queries, timeoutMs: 1_000 } },
      });
      expect(refused(await slow.sql(endless))).toMatchObject({ status: 504, code: 'query_timeout' });
    });
  });
}
