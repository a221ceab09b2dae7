import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createClient } from '@clickhouse/client';
import { DuckDBInstance } from '@duckdb/node-api';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import type { SluiceConfigInput } from '../../src/config/schema.js';
import type { EventPipeline } from '../../src/events/event-sink.js';
import type { IngestResult } from '../../src/http/events-routes.js';
import { startClickHouse } from '../support/clickhouse.js';
import { type RunningGateway, startGateway, startGatewayWithSim } from '../support/gateway.js';
import type { RunningServer } from '../support/process.js';

const ADMIN_KEY = 'sk-admin-ingest-5d1f3a7c9e2b4d6f';
const DESK_KEY = 'sk-desk-ingest-8b2e4c6a1f3d5e7a';

const types: NonNullable<SluiceConfigInput['events']>['types'] = {
  feedback: {
    description: 'A user rated an answer.',
    requestId: 'required',
    fields: {
      score: { type: 'integer', required: true },
      rating: { type: 'enum', values: ['up', 'down'] },
      comment: { type: 'string' },
      userId: { type: 'string', from: 'user.id' },
      commentLength: { type: 'integer', derive: { length: 'comment' } },
    },
    redact: { patterns: ['email', 'phone'] },
  },
  purchase: {
    fields: {
      amount: { type: 'number', required: true },
      currency: { type: 'enum', values: ['EUR', 'USD'], required: true },
      email: { type: 'string', from: 'customer.email' },
      cents: { type: 'integer', derive: { round: { multiply: ['amount', 100] } } },
      label: { type: 'string', derive: { concat: [{ lower: 'currency' }, { literal: ':' }, 'amount'] } },
    },
    redact: { fields: ['email'] },
  },
};

interface Answer {
  status: number;
  body: IngestResult & { error?: { message: string; code: string | null; param: string | null } };
  headers: Headers;
}

async function post(
  url: string,
  body: unknown,
  options: { ndjson?: boolean; key?: string | null; contentType?: string } = {},
): Promise<Answer> {
  const headers: Record<string, string> = {
    'content-type': options.contentType ?? (options.ndjson ? 'application/x-ndjson' : 'application/json'),
  };
  const key = options.key === undefined ? DESK_KEY : options.key;
  if (key) headers.authorization = `Bearer ${key}`;
  const response = await fetch(`${url}/v1/events`, {
    method: 'POST',
    headers,
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  return {
    status: response.status,
    body: (await response.json()) as Answer['body'],
    headers: response.headers,
  };
}

const auth = {
  adminKey: ADMIN_KEY,
  apiKeys: [{ name: 'support-desk', key: DESK_KEY }],
};

describe('POST /v1/events', () => {
  let gw: RunningGateway;

  beforeAll(async () => {
    gw = await startGateway({
      auth,
      events: { sink: 'none', types, ingest: { maxBatchEvents: 5, maxBodyBytes: 4096 } },
    });
  });
  afterAll(() => gw?.close());

  const kept = () => gw.customEvents.splice(0);

  it('keeps the good events of a JSON batch and answers each bad one with its index, path and message', async () => {
    const { status, body } = await post(gw.url, [
      { type: 'feedback', id: 'fb-1', requestId: 'req-1', score: 5, rating: 'up', user: { id: 'u-1' } },
      { type: 'feedbak', requestId: 'req-1', score: 5 },
      { type: 'feedback', requestId: 'req-1', score: 'five' },
      { type: 'purchase', id: 'po-1', amount: 12.5, currency: 'EUR', coupon: 'X' },
      { type: 'purchase', id: 'po-2', amount: 12.5, currency: 'EUR' },
    ]);
    expect(status).toBe(200);
    expect(body).toEqual({
      accepted: 2,
      rejected: 3,
      ids: ['fb-1', null, null, null, 'po-2'],
      errors: [
        {
          index: 1,
          code: 'unknown_type',
          path: 'type',
          message: 'unknown event type "feedbak": declared types are "feedback", "purchase"',
        },
        {
          index: 2,
          code: 'invalid_field',
          path: 'score',
          message: '"score" must be an integer, not a string',
        },
        {
          index: 3,
          code: 'unknown_field',
          path: 'coupon',
          message:
            'unknown field "coupon" for type "purchase": it reads "amount", "currency", "customer.email"',
        },
      ],
    });
    expect(kept().map((event) => [event.id, event.type, event.keyName, event.admin])).toEqual([
      ['fb-1', 'feedback', 'support-desk', false],
      ['po-2', 'purchase', 'support-desk', false],
    ]);
  });

  it('reads NDJSON one event per line: a line that is not JSON costs only that event', async () => {
    const ndjson = [
      '{"type":"purchase","id":"po-3","amount":3,"currency":"USD"}',
      '',
      '{"type":"purchase","id":"po-4","amount":',
      '{"type":"feedback","score":1}',
      '{"type":"purchase","id":"po-5","amount":4,"currency":"USD"}\r',
      '',
    ].join('\n');
    const { status, body } = await post(gw.url, ndjson, { ndjson: true });
    expect(status).toBe(200);
    expect(body).toMatchObject({
      accepted: 2,
      rejected: 2,
      ids: ['po-3', null, null, 'po-5'],
      errors: [
        {
          index: 1,
          line: 3,
          code: 'invalid_json',
          path: '',
          message: expect.stringMatching(/^line 3 is not JSON: /),
        },
        { index: 2, line: 4, code: 'missing_request_id', path: 'requestId' },
      ],
    });
    expect(kept().map((event) => event.id)).toEqual(['po-3', 'po-5']);
  });

  it('generates the ids of events sent without one, and returns them in order', async () => {
    const { body } = await post(gw.url, [
      { type: 'purchase', amount: 1, currency: 'EUR' },
      { type: 'purchase', id: 'po-6', amount: 2, currency: 'EUR' },
      { type: 'purchase', amount: 3, currency: 'EUR' },
    ]);
    const events = kept();
    expect(body.ids).toEqual(events.map((event) => event.id));
    expect(body.ids[1]).toBe('po-6');
    expect(new Set(body.ids).size).toBe(3);
    expect(body.ids[0]).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('maps, derives and redacts before anything is kept', async () => {
    const { status } = await post(gw.url, [
      {
        type: 'feedback',
        requestId: 'req-9',
        score: 2,
        comment: 'mail me at jane@example.com or +1 (555) 123-4567',
        user: { id: 'u-9', email: 'not-read@example.com' },
        time: '2026-11-01T10:00:00+01:00',
      },
      { type: 'purchase', amount: 19.999, currency: 'USD', customer: { email: 'jane@example.com' } },
    ]);
    expect(status).toBe(200);
    const [feedback, purchase] = kept();
    expect(feedback).toMatchObject({
      requestId: 'req-9',
      time: '2026-11-01T09:00:00.000Z',
      fields: {
        score: 2,
        comment: 'mail me at [REDACTED:email] or [REDACTED:phone]',
        userId: 'u-9',
        commentLength: 48,
      },
    });
    expect(purchase?.fields).toEqual({
      amount: 19.999,
      currency: 'USD',
      email: '[REDACTED]',
      cents: 2000,
      label: 'usd:19.999',
    });
  });

  it('answers 400 with every error when no event of the batch is good', async () => {
    const { status, body } = await post(gw.url, [{ type: 'purchase', amount: 'a lot' }, 'hello']);
    expect(status).toBe(400);
    expect(body).toMatchObject({
      accepted: 0,
      rejected: 2,
      ids: [null, null],
      errors: [
        { index: 0, path: 'amount', code: 'invalid_field' },
        {
          index: 1,
          path: '',
          code: 'invalid_event',
          message: 'an event is a JSON object with a "type", not a string',
        },
      ],
      error: {
        code: 'no_events_accepted',
        param: 'amount',
        message:
          'No event was accepted: event 0: "amount" must be a number, not a string (errors lists every event).',
      },
    });
    expect(kept()).toEqual([]);
  });

  it('refuses a body that is not a batch at all with 400 and keeps nothing', async () => {
    const notJson = await post(gw.url, '[{"type":"purchase",');
    expect(notJson.status).toBe(400);
    expect(notJson.body.error).toMatchObject({
      code: 'invalid_json',
      message: expect.stringContaining('is not JSON'),
    });
    expect((await post(gw.url, '42')).body.error?.code).toBe('invalid_batch');
    expect((await post(gw.url, [])).body.error?.code).toBe('empty_batch');
    expect((await post(gw.url, '\n\n', { ndjson: true })).body.error?.code).toBe('empty_batch');
    const wrongType = await post(gw.url, 'type=purchase', { contentType: 'text/csv' });
    expect(wrongType.status).toBe(415);
    expect(kept()).toEqual([]);
  });

  it('accepts one event object as a batch of one', async () => {
    const { status, body } = await post(gw.url, { type: 'purchase', id: 'po-7', amount: 1, currency: 'EUR' });
    expect(status).toBe(200);
    expect(body).toEqual({ accepted: 1, rejected: 0, ids: ['po-7'], errors: [] });
    expect(kept()).toHaveLength(1);
  });

  it('refuses more events than events.ingest.maxBatchEvents, and a body over maxBodyBytes, with 413', async () => {
    const event = { type: 'purchase', amount: 1, currency: 'EUR' };
    const tooMany = await post(
      gw.url,
      Array.from({ length: 6 }, () => event),
    );
    expect(tooMany.status).toBe(413);
    expect(tooMany.body.error).toMatchObject({
      code: 'batch_too_large',
      message:
        'The batch has more than 5 events (events.ingest.maxBatchEvents): split it into smaller batches.',
    });
    const lines = Array.from({ length: 6 }, () => JSON.stringify(event)).join('\n');
    expect((await post(gw.url, lines, { ndjson: true })).status).toBe(413);
    const tooBig = await post(gw.url, [{ ...event, padding: 'x'.repeat(5000) }]);
    expect(tooBig.status).toBe(413);
    expect(tooBig.body.error?.code).toBe('request_too_large');
    expect(kept()).toEqual([]);
  });

  it('takes a client key (the event is attributed to it) or the admin key, and refuses anything else', async () => {
    const event = { type: 'purchase', amount: 1, currency: 'EUR' };
    expect((await post(gw.url, [event], { key: ADMIN_KEY })).status).toBe(200);
    expect(kept()).toMatchObject([{ keyName: null, admin: true }]);
    const missing = await post(gw.url, [event], { key: null });
    expect(missing.status).toBe(401);
    expect(missing.body.error?.code).toBe('missing_api_key');
    const wrong = await post(gw.url, [event], { key: 'sk-not-a-key-of-this-gateway' });
    expect(wrong.status).toBe(401);
    expect(wrong.body.error?.code).toBe('invalid_api_key');
    expect(kept()).toEqual([]);
    // Refused ingest calls are not model requests: no wide event is recorded for them.
    expect(gw.events).toEqual([]);
  });
});

/** Polls until the custom events bus has stored everything; the test timeout bounds the wait. */
async function untilCustomStored(pipeline: EventPipeline): Promise<void> {
  while ((pipeline.customStats?.().pending ?? 0) > 0) await sleep(20);
}

async function chatRequestId(url: string): Promise<string> {
  const response = await fetch(`${url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${DESK_KEY}` },
    body: JSON.stringify({ model: 'sim-fast', messages: [{ role: 'user', content: 'What is 12 + 30?' }] }),
  });
  expect(response.status).toBe(200);
  await response.text();
  return response.headers.get('x-sluice-request-id')!;
}

/** Feedback on a request, sent twice with the same ids (a retry), and an outcome with no request. */
async function sendFeedbackTwice(url: string, requestId: string): Promise<void> {
  const batch = [
    {
      type: 'feedback',
      id: `fb-a-${requestId}`,
      requestId,
      score: 4,
      rating: 'up',
      time: '2026-11-01T10:00:00Z',
    },
    {
      type: 'feedback',
      id: `fb-b-${requestId}`,
      requestId,
      score: 1,
      rating: 'down',
      time: '2026-11-01T10:05:00Z',
    },
    { type: 'purchase', id: `po-${requestId}`, amount: 10, currency: 'EUR' },
  ];
  for (let i = 0; i < 2; i++) {
    const { status, body } = await post(url, batch);
    expect(status).toBe(200);
    expect(body.accepted).toBe(3);
  }
}

describe('POST /v1/events when the spool refuses events', () => {
  it('reports them per event, and answers 503 with Retry-After once nothing of a batch is kept', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sluice-ingest-full-'));
    onTestFinished(() => rm(dir, { recursive: true, force: true }));
    // Nothing listens on port 9: the store stays down, so every accepted event stays in the spool.
    const gw = await startGateway(
      {
        auth,
        dataDir: dir,
        logLevel: 'silent',
        events: {
          sink: 'clickhouse',
          clickhouse: { url: 'http://127.0.0.1:9' },
          spool: { maxBytes: 1_048_576 },
          types,
          ingest: { maxBatchEvents: 400, maxBodyBytes: 1_048_576 },
        },
      },
      { realEvents: true },
    );
    onTestFinished(() => gw.close());
    const batch = Array.from({ length: 400 }, () => ({
      type: 'feedback',
      requestId: 'req-1',
      score: 1,
      comment: 'x'.repeat(1000),
    }));
    const answers: Answer[] = [];
    while (answers.at(-1)?.status !== 503) {
      expect(answers.length).toBeLessThan(10);
      answers.push(await post(gw.url, batch));
    }
    const accepted = answers.reduce((sum, answer) => sum + answer.body.accepted, 0);
    expect(accepted).toBe(gw.pipeline!.customStats!().pending);
    const refused = answers.flatMap((answer) => answer.body.errors);
    expect(refused.length).toBeGreaterThan(0);
    expect(refused.every((error) => error.code === 'spool_full')).toBe(true);
    const last = answers.at(-1)!;
    expect(last.headers.get('retry-after')).toBe('1');
    expect(last.body).toMatchObject({ accepted: 0, rejected: 400, error: { code: 'spool_full' } });
  });
});

describe('custom events joined to their request, through the gateway', () => {
  it('stores feedback once in DuckDB, returns it from related(requestId), and joins it in SQL', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sluice-ingest-duckdb-'));
    onTestFinished(() => rm(dir, { recursive: true, force: true }));
    const gw = await startGatewayWithSim(
      { auth, dataDir: dir, events: { sink: 'duckdb', types } },
      {},
      { realEvents: true },
    );
    let closed = false;
    onTestFinished(async () => {
      if (!closed) await gw.close();
    });
    const pipeline = gw.pipeline!;
    const requestId = await chatRequestId(gw.url);
    await sendFeedbackTwice(gw.url, requestId);
    await untilCustomStored(pipeline);

    const related = await pipeline.store!.related(requestId);
    expect(related.map((event) => [event.id, event.fields.score, event.keyName])).toEqual([
      [`fb-a-${requestId}`, 4, 'support-desk'],
      [`fb-b-${requestId}`, 1, 'support-desk'],
    ]);
    expect(await pipeline.store!.countCustom()).toBe(3);
    await gw.close();
    closed = true;

    // The join of docs/analytics.md, on the file the gateway wrote.
    const instance = await DuckDBInstance.create(join(dir, 'events.duckdb'));
    const db = await instance.connect();
    onTestFinished(() => {
      db.closeSync();
      instance.closeSync();
    });
    const reader = await db.runAndReadAll(`
      SELECT e.route, count(*) AS ratings,
             avg(CAST(json_extract(c.fields, '$.score') AS DOUBLE)) AS avg_score
      FROM custom_events c JOIN events e ON e.id = c.request_id
      WHERE c.type = 'feedback'
      GROUP BY e.route`);
    expect(reader.getRowObjectsJS()).toEqual([{ route: 'sim-fast', ratings: 2n, avg_score: 2.5 }]);
  });

  describe('with ClickHouse', () => {
    let clickhouse: RunningServer;
    beforeAll(async () => {
      clickhouse = await startClickHouse();
    });
    afterAll(() => clickhouse?.stop());

    it('stores feedback once in ClickHouse, returns it from related(requestId), and joins it in SQL', async () => {
      const dir = await mkdtemp(join(tmpdir(), 'sluice-ingest-clickhouse-'));
      onTestFinished(() => rm(dir, { recursive: true, force: true }));
      const gw = await startGatewayWithSim(
        { auth, dataDir: dir, events: { sink: 'clickhouse', clickhouse: { url: clickhouse.url }, types } },
        {},
        { realEvents: true },
      );
      onTestFinished(() => gw.close());
      const pipeline = gw.pipeline!;
      const requestId = await chatRequestId(gw.url);
      await sendFeedbackTwice(gw.url, requestId);
      await untilCustomStored(pipeline);
      while ((pipeline.stats?.().pending ?? 0) > 0) await sleep(20);

      const related = await pipeline.store!.related(requestId);
      expect(related.map((event) => [event.id, event.fields.rating])).toEqual([
        [`fb-a-${requestId}`, 'up'],
        [`fb-b-${requestId}`, 'down'],
      ]);
      expect(await pipeline.store!.countCustom()).toBe(3);

      // The join of docs/analytics.md, as ClickHouse 18.16 accepts it.
      const client = createClient({ url: clickhouse.url });
      onTestFinished(() => client.close());
      const result = await client.query({
        query: `
          SELECT route, count() AS ratings, avg(visitParamExtractFloat(fields, 'score')) AS avg_score
          FROM sluice.custom_events
          ALL INNER JOIN (SELECT id AS request_id, route FROM sluice.events) USING request_id
          WHERE type = 'feedback'
          GROUP BY route`,
        format: 'JSONEachRow',
      });
      expect(await result.json()).toEqual([{ route: 'sim-fast', ratings: '2', avg_score: 2.5 }]);
    });
  });
});
