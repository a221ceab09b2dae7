import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { analyticsSettings, createAnalytics } from '../../src/analytics/analytics.js';
import { eventsSchema } from '../../src/config/schema.js';
import { duckdbStore } from '../../src/events/duckdb-store.js';
import type { WideEvent } from '../../src/events/wide-event.js';
import { type RunningSimulator, startSimServer } from '../../src/sim/server.js';
import { SEED_END_MS, SEED_START_MS, seededEvents } from '../support/analytics-seed.js';
import { type RunningGateway, startGateway } from '../support/gateway.js';

const ADMIN_KEY = 'sk-admin-analytics-6b1f0c2d9e8a7b3c';
const KEYS = {
  alpha: 'sk-alpha-4c2e8f1a9b7d3e5f',
  beta: 'sk-beta-7d3e5f4c2e8f1a9b',
  gamma: 'sk-gamma-1a9b7d3e5f4c2e8f',
} as const;

const range = `from=${new Date(SEED_START_MS).toISOString()}&to=${new Date(SEED_END_MS).toISOString()}`;

let sim: RunningSimulator;
let gateway: RunningGateway;
let store: ReturnType<typeof duckdbStore>;
const events = seededEvents();

async function api(path: string, key?: string, init: RequestInit = {}) {
  const response = await fetch(`${gateway.url}${path}`, {
    ...init,
    headers: { ...(key && { authorization: `Bearer ${key}` }), ...(init.headers as Record<string, string>) },
  });
  // biome-ignore lint/suspicious/noExplicitAny: assertions walk the JSON answers of many endpoints.
  return { status: response.status, body: (await response.json()) as Record<string, any> };
}

beforeAll(async () => {
  sim = await startSimServer({
    config: { models: [{ name: 'sim-fast', outputTokens: { mean: 8, spread: 0 } }] },
  });
  store = duckdbStore({ path: ':memory:' });
  await store.open();
  await store.insert(events);
  const analytics = createAnalytics({
    reader: store,
    settings: analyticsSettings(eventsSchema.parse({})),
    now: () => Date.now(),
  });
  gateway = await startGateway(
    {
      logLevel: 'silent',
      auth: {
        adminKey: ADMIN_KEY,
        apiKeys: Object.entries(KEYS).map(([name, key]) => ({ name, key })),
      },
      providers: { sim: { type: 'sim', baseUrl: sim.url } },
      routes: { chat: { targets: [{ provider: 'sim', model: 'sim-fast' }] } },
    },
    { simUrl: sim.url, analytics, onEvent: (event) => void store.insert([event]) },
  );
});

afterAll(async () => {
  await gateway?.close();
  await sim?.close();
  await store?.close();
});

describe('analytics API authentication', () => {
  it('needs a key', async () => {
    const { status, body } = await api('/api/whoami');
    expect(status).toBe(401);
    expect(body.error).toMatchObject({ code: 'missing_api_key', type: 'invalid_request_error' });
    expect((await api('/api/analytics/summary', 'sk-not-a-real-key-000000')).status).toBe(401);
  });

  it('says who is asking', async () => {
    expect((await api('/api/whoami', ADMIN_KEY)).body).toEqual({
      admin: true,
      keyName: null,
      keyId: null,
      team: null,
      org: null,
    });
    expect((await api('/api/whoami', KEYS.beta)).body).toEqual({
      admin: false,
      keyName: 'beta',
      keyId: null,
      team: null,
      org: null,
    });
  });
});

describe('analytics API queries', () => {
  it('answers a time series in columns ready for a chart', async () => {
    const { status, body } = await api(
      `/api/analytics/timeseries?${range}&step=5m&metrics=requests,errors&groupBy=route`,
      ADMIN_KEY,
    );
    expect(status).toBe(200);
    expect(body.stepMs).toBe(300_000);
    expect(body.t).toEqual([SEED_START_MS, SEED_START_MS + 300_000]);
    expect(body.metrics).toEqual(['requests', 'errors']);
    const chat = body.series.find((s: { group: string }) => s.group === 'chat');
    expect(chat.values.requests).toEqual([150, 150]);
    expect(chat.values.errors.reduce((a: number, b: number) => a + b, 0)).toBe(
      events.filter((e) => e.route === 'chat' && e.status >= 400).length,
    );
  });

  it('filters by repeated dimension parameters and errors_only', async () => {
    const { body } = await api(
      `/api/analytics/summary?${range}&key=alpha&key=beta&errors_only=true`,
      ADMIN_KEY,
    );
    expect(body.values.requests).toBe(
      events.filter((e) => (e.keyName === 'alpha' || e.keyName === 'beta') && e.status >= 400).length,
    );
  });

  it('breaks down by a dimension, most requests first', async () => {
    const { body } = await api(
      `/api/analytics/breakdown?${range}&by=status&metrics=requests,latency_p50`,
      ADMIN_KEY,
    );
    expect(body.by).toBe('status');
    expect(body.rows.map((row: { group: string }) => row.group)).toEqual(['200', '429', '503']);
  });

  it('lists requests newest first without their bodies, and shows one whole', async () => {
    const { body } = await api(`/api/requests?${range}&limit=2&route=search`, ADMIN_KEY);
    const expected = events.filter((e) => e.route === 'search').sort((a, b) => (a.time < b.time ? 1 : -1));
    expect(body.data.map((e: WideEvent) => e.id)).toEqual(expected.slice(0, 2).map((e) => e.id));
    expect(body.data[0]).not.toHaveProperty('requestBody');
    const next = await api(
      `/api/requests?${range}&limit=2&route=search&cursor=${body.nextCursor}`,
      ADMIN_KEY,
    );
    expect(next.body.data.map((e: WideEvent) => e.id)).toEqual(expected.slice(2, 4).map((e) => e.id));
    const detail = await api(`/api/requests/${expected[0]?.id}`, ADMIN_KEY);
    expect(detail.body).toEqual({ event: expected[0], related: [] });
  });

  it('shows a request the gateway just served', async () => {
    const completion = await fetch(`${gateway.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${KEYS.gamma}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'chat', messages: [{ role: 'user', content: 'hello' }] }),
    });
    expect(completion.status).toBe(200);
    const id = completion.headers.get('x-sluice-request-id') as string;
    await expect
      .poll(async () => (await api(`/api/requests/${id}`, KEYS.gamma)).status, { timeout: 10_000 })
      .toBe(200);
    const { body } = await api(`/api/requests/${id}`, KEYS.gamma);
    expect(body.event).toMatchObject({ id, keyName: 'gamma', route: 'chat', status: 200 });
    expect((await api(`/api/requests/${id}`, KEYS.beta)).status).toBe(404);
  });

  it('refuses bad parameters with an OpenAI-style 400', async () => {
    const cases: [string, string][] = [
      ['/api/analytics/timeseries?metrics=requests,joy', 'metrics[1]'],
      ['/api/analytics/timeseries?groupBy=colour', 'groupBy'],
      ['/api/analytics/breakdown', 'by'],
      ['/api/analytics/summary?from=-1h&from=-2h', 'from'],
      ['/api/analytics/summary?colour=red', 'colour'],
      ['/api/analytics/summary?limit=5', 'limit'],
      ['/api/requests?limit=501', 'limit'],
      ['/api/requests?cursor=%7B%7D', 'cursor'],
    ];
    for (const [path, param] of cases) {
      const { status, body } = await api(path, ADMIN_KEY);
      expect(status, path).toBe(400);
      expect(body.error, path).toMatchObject({ type: 'invalid_request_error', param });
      expect(typeof body.error.message).toBe('string');
    }
  });
});

describe('analytics API tenant isolation', () => {
  const betaEvents = events.filter((e) => e.keyName === 'beta');
  const alphaEvent = events.find((e) => e.keyName === 'alpha') as WideEvent;

  it('never shows another key’s events in time series, breakdowns or summaries', async () => {
    const series = await api(`/api/analytics/timeseries?${range}&step=10m&groupBy=key`, KEYS.beta);
    expect(series.body.series).toEqual([{ group: 'beta', values: { requests: [betaEvents.length] } }]);
    const breakdown = await api(`/api/analytics/breakdown?${range}&by=key`, KEYS.beta);
    expect(breakdown.body.rows).toEqual([{ group: 'beta', values: { requests: betaEvents.length } }]);
    const asked = await api(`/api/analytics/summary?${range}&key=alpha`, KEYS.beta);
    expect(asked.body.values.requests).toBe(0);
  });

  it('lists only the key’s own requests and hides others’ by id', async () => {
    const { body } = await api(`/api/requests?${range}&limit=500`, KEYS.beta);
    expect(body.data).toHaveLength(betaEvents.length);
    expect(new Set(body.data.map((e: WideEvent) => e.keyName))).toEqual(new Set(['beta']));
    const hidden = await api(`/api/requests/${alphaEvent.id}`, KEYS.beta);
    expect(hidden.status).toBe(404);
    expect(hidden.body.error.code).toBe('request_not_found');
    expect((await api(`/api/requests/${alphaEvent.id}`, KEYS.alpha)).status).toBe(200);
  });

  it('keeps SQL for the admin', async () => {
    const post = (key: string, sql: string) =>
      api('/api/sql', key, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ sql }),
      });
    const denied = await post(KEYS.beta, 'SELECT count(*) FROM events');
    expect(denied.status).toBe(403);
    expect(denied.body.error.code).toBe('admin_required');
    const answered = await post(
      ADMIN_KEY,
      "SELECT key_name, count(*) AS n FROM events WHERE key_name = 'beta' GROUP BY key_name",
    );
    expect(answered.body).toEqual({
      columns: [
        { name: 'key_name', type: 'VARCHAR' },
        { name: 'n', type: 'BIGINT' },
      ],
      rows: [['beta', betaEvents.length]],
      truncated: false,
    });
    const refused = await post(ADMIN_KEY, 'DROP TABLE events');
    expect(refused.status).toBe(400);
    expect(refused.body.error.code).toBe('sql_not_allowed');
    const empty = await api('/api/sql', ADMIN_KEY, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: 'SELECT 1' }),
    });
    expect(empty.status).toBe(400);
  });
});

describe('analytics API without a queryable sink', () => {
  it('says analytics needs DuckDB or ClickHouse', async () => {
    const plain = await startGateway({ auth: { adminKey: ADMIN_KEY }, events: { sink: 'none' } });
    try {
      const response = await fetch(`${plain.url}/api/analytics/summary`, {
        headers: { authorization: `Bearer ${ADMIN_KEY}` },
      });
      expect(response.status).toBe(503);
      expect(((await response.json()) as { error: { code: string } }).error.code).toBe(
        'analytics_unavailable',
      );
    } finally {
      await plain.close();
    }
  });
});

describe('analytics API when DuckDB runs out of its memory limit', () => {
  it('answers 503 naming the setting, not that the query is invalid', async () => {
    const small = duckdbStore({ path: ':memory:', memoryLimit: '20MB' });
    await small.open();
    const analytics = createAnalytics({
      reader: small,
      settings: analyticsSettings(eventsSchema.parse({})),
      now: () => Date.now(),
    });
    const limited = await startGateway({ logLevel: 'silent', auth: { adminKey: ADMIN_KEY } }, { analytics });
    try {
      const response = await fetch(`${limited.url}/api/sql`, {
        method: 'POST',
        headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' },
        body: JSON.stringify({ sql: 'SELECT list(range) FROM range(20000000)' }),
      });
      expect(response.status).toBe(503);
      const { error } = (await response.json()) as { error: { code: string; message: string } };
      expect(error.code).toBe('store_unavailable');
      expect(error.message).toContain('events.duckdb.memoryLimit');
    } finally {
      await limited.close();
      await small.close();
    }
  });
});
