import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { type RunningSimulator, startSimServer } from '../../src/sim/server.js';

const fast = { prefillBaseMs: 2, prefillMsPerToken: 0, decodeMsPerToken: 1, batchSlowdown: 0 };
const slowDecodeMs = 200;

let sim: RunningSimulator;

beforeAll(async () => {
  sim = await startSimServer({
    config: {
      models: [
        // One slot and one place in the queue, each answer close to a minute long.
        { name: 'sim-queue', ...fast, slots: 1, queueLimit: 1, prefillBaseMs: 5, decodeMsPerToken: 1000 },
        { name: 'sim-rpm', ...fast, quota: { requestsPerMinute: 2 } },
        { name: 'sim-tpm', ...fast, quota: { tokensPerMinute: 100 } },
        { name: 'sim-claude', ...fast, quota: { requestsPerMinute: 2, tokensPerMinute: 300 } },
        // A stream here takes close to a minute: it ends only when its client leaves.
        { name: 'sim-leave', ...fast, slots: 1, queueLimit: 4, prefillBaseMs: 5, decodeMsPerToken: 1000 },
        {
          name: 'sim-batch',
          ...fast,
          slots: 2,
          queueLimit: 10,
          prefillBaseMs: 5,
          decodeMsPerToken: slowDecodeMs,
        },
      ],
    },
  });
});

afterAll(() => sim.close());

interface Row {
  inFlight: number;
  queued: number;
  completed: number;
  rejected: number;
}

async function modelStats(model: string): Promise<Row> {
  const stats = (await (await fetch(`${sim.url}/sim/stats`)).json()) as { models: Record<string, Row> };
  return stats.models[model] as Row;
}

async function until(check: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`gave up waiting until ${what}`);
    await sleep(5);
  }
}

const untilStats = (model: string, want: (row: Row) => boolean, what: string) =>
  until(async () => want(await modelStats(model)), `${model} ${what}`);

function post(path: string, body: Record<string, unknown>, signal?: AbortSignal): Promise<Response> {
  return fetch(`${sim.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
    signal,
  });
}

const ask = (model: string, extra: Record<string, unknown> = {}) => ({
  model,
  max_tokens: 4,
  messages: [{ role: 'user', content: 'Tell me about queues.' }],
  ...extra,
});

const chat = (model: string, extra: Record<string, unknown> = {}, signal?: AbortSignal) =>
  post('/v1/chat/completions', ask(model, extra), signal);

/** Whole seconds, at least one: what a client may sleep before retrying. */
function expectRetryAfter(response: Response): void {
  const retryAfter = response.headers.get('retry-after');
  expect(retryAfter).toMatch(/^\d+$/);
  expect(Number(retryAfter)).toBeGreaterThanOrEqual(1);
}

const resetDuration = /^(\d+m)?\d+(\.\d+)?s$|^\d+ms$/;

describe('a full queue', () => {
  it('rejects the request beyond slots + queueLimit with 429 engine_overloaded and retry-after', async () => {
    const admitted = new AbortController();
    onTestFinished(() => admitted.abort());
    const running = chat('sim-queue', { max_tokens: 50 }, admitted.signal);
    await untilStats('sim-queue', (row) => row.inFlight === 1, 'has its slot taken');
    const waiting = chat('sim-queue', { max_tokens: 50 }, admitted.signal);
    await untilStats('sim-queue', (row) => row.queued === 1, 'has its queue filled');

    const rejected = await chat('sim-queue');
    expect(rejected.status).toBe(429);
    expectRetryAfter(rejected);
    expect(await rejected.json()).toEqual({
      error: {
        message: expect.stringContaining('sim-queue is at capacity (1 busy slots, 1 queued)'),
        type: 'rate_limit_error',
        param: null,
        code: 'engine_overloaded',
      },
    });
    expect(await modelStats('sim-queue')).toMatchObject({ inFlight: 1, queued: 1, rejected: 1 });

    admitted.abort();
    await Promise.allSettled([running, waiting]);
    await untilStats('sim-queue', (row) => row.inFlight === 0 && row.queued === 0, 'is idle again');
    expect(await modelStats('sim-queue')).toMatchObject({ completed: 0, rejected: 1 });
  });
});

describe('a requests-per-minute quota', () => {
  it('counts down x-ratelimit-remaining-requests, then answers 429 with retry-after', async () => {
    const first = await chat('sim-rpm');
    expect(first.status).toBe(200);
    expect(first.headers.get('x-ratelimit-limit-requests')).toBe('2');
    expect(first.headers.get('x-ratelimit-remaining-requests')).toBe('1');
    // Half the allowance is used: full again in half a minute.
    expect(first.headers.get('x-ratelimit-reset-requests')).toBe('30s');
    expect(first.headers.get('x-ratelimit-limit-tokens')).toBeNull();

    const second = await chat('sim-rpm');
    expect(second.status).toBe(200);
    expect(second.headers.get('x-ratelimit-remaining-requests')).toBe('0');
    expect(second.headers.get('x-ratelimit-reset-requests')).toMatch(resetDuration);

    const third = await chat('sim-rpm');
    expect(third.status).toBe(429);
    expectRetryAfter(third);
    expect(third.headers.get('x-ratelimit-limit-requests')).toBe('2');
    expect(third.headers.get('x-ratelimit-remaining-requests')).toBe('0');
    expect(third.headers.get('x-ratelimit-reset-requests')).toMatch(resetDuration);
    expect(await third.json()).toEqual({
      error: {
        message: expect.stringContaining('Rate limit reached for sim-rpm on requests per min (RPM): Limit 2'),
        type: 'rate_limit_error',
        param: null,
        code: 'rate_limit_exceeded',
      },
    });
    expect(await modelStats('sim-rpm')).toMatchObject({ completed: 2, rejected: 1 });
  });
});

describe('a tokens-per-minute quota', () => {
  it('charges prompt plus max_tokens, counts down x-ratelimit-remaining-tokens, then answers 429', async () => {
    const maxTokens = 30;
    const first = await chat('sim-tpm', { max_tokens: maxTokens });
    expect(first.status).toBe(200);
    const { usage } = (await first.json()) as { usage: { prompt_tokens: number } };
    const charge = usage.prompt_tokens + maxTokens;
    expect(first.headers.get('x-ratelimit-limit-tokens')).toBe('100');
    expect(first.headers.get('x-ratelimit-remaining-tokens')).toBe(String(100 - charge));
    expect(first.headers.get('x-ratelimit-reset-tokens')).toMatch(resetDuration);
    expect(first.headers.get('x-ratelimit-limit-requests')).toBeNull();

    const second = await chat('sim-tpm', { max_tokens: maxTokens });
    expect(second.status).toBe(200);
    const remaining = Number(second.headers.get('x-ratelimit-remaining-tokens'));
    expect(remaining).toBeLessThan(100 - charge);
    expect(remaining).toBeLessThan(charge);

    const third = await chat('sim-tpm', { max_tokens: maxTokens });
    expect(third.status).toBe(429);
    expectRetryAfter(third);
    expect(third.headers.get('x-ratelimit-limit-tokens')).toBe('100');
    expect(Number(third.headers.get('x-ratelimit-remaining-tokens'))).toBeLessThan(charge);
    expect(await third.json()).toEqual({
      error: {
        message: expect.stringMatching(
          new RegExp(`on tokens per min \\(TPM\\): Limit 100, Remaining \\d+, Requested ${charge}\\.`),
        ),
        type: 'rate_limit_error',
        param: null,
        code: 'rate_limit_exceeded',
      },
    });
  });
});

describe('quotas on /v1/messages', () => {
  const message = () => post('/v1/messages', ask('sim-claude'));

  it('count down in anthropic-ratelimit-* headers with ISO reset times, then answer 429', async () => {
    const sentAt = Date.now();
    const first = await message();
    expect(first.status).toBe(200);
    expect(first.headers.get('anthropic-ratelimit-requests-limit')).toBe('2');
    expect(first.headers.get('anthropic-ratelimit-requests-remaining')).toBe('1');
    expect(first.headers.get('anthropic-ratelimit-tokens-limit')).toBe('300');
    expect(first.headers.get('x-ratelimit-limit-requests')).toBeNull();
    const reset = first.headers.get('anthropic-ratelimit-requests-reset') as string;
    expect(new Date(reset).toISOString()).toBe(reset);
    expect(Date.parse(reset)).toBeGreaterThan(sentAt);

    const second = await message();
    expect(second.status).toBe(200);
    expect(second.headers.get('anthropic-ratelimit-requests-remaining')).toBe('0');
    expect(Number(second.headers.get('anthropic-ratelimit-tokens-remaining'))).toBeLessThan(
      Number(first.headers.get('anthropic-ratelimit-tokens-remaining')),
    );

    const third = await message();
    expect(third.status).toBe(429);
    expectRetryAfter(third);
    expect(third.headers.get('anthropic-ratelimit-requests-remaining')).toBe('0');
    expect(third.headers.get('anthropic-ratelimit-requests-reset')).toMatch(/^\d{4}-\d\d-\d\dT[\d:.]+Z$/);
    expect(await third.json()).toEqual({
      type: 'error',
      error: { type: 'rate_limit_error', message: expect.stringContaining('requests per min (RPM)') },
    });
  });
});

describe('clients that go away', () => {
  /** A stream on sim-leave that holds the model's only slot until it is aborted. */
  async function holdTheSlot(): Promise<AbortController> {
    const controller = new AbortController();
    onTestFinished(() => controller.abort());
    const response = await chat('sim-leave', { stream: true, max_tokens: 50 }, controller.signal);
    expect(response.status).toBe(200);
    const reader = (response.body as ReadableStream<Uint8Array>).getReader();
    await reader.read();
    reader.read().catch(() => {});
    return controller;
  }

  it('leave the queue when they disconnect while queued', async () => {
    const holder = await holdTheSlot();
    const leaver = new AbortController();
    const leaving = chat('sim-leave', { max_tokens: 1 }, leaver.signal);
    await untilStats('sim-leave', (row) => row.queued === 1, 'has a request queued');

    leaver.abort();
    await expect(leaving).rejects.toMatchObject({ name: 'AbortError' });
    await untilStats('sim-leave', (row) => row.queued === 0, 'has an empty queue');
    expect(await modelStats('sim-leave')).toMatchObject({ inFlight: 1, queued: 0 });

    holder.abort();
    await untilStats('sim-leave', (row) => row.inFlight === 0, 'has a free slot');
  });

  it('free their slot when they disconnect mid-stream, so the next request is served', async () => {
    const before = await modelStats('sim-leave');
    const holder = await holdTheSlot();
    const next = chat('sim-leave', { max_tokens: 1 });
    await untilStats('sim-leave', (row) => row.inFlight === 1 && row.queued === 1, 'has one waiting');

    holder.abort();
    // The stream had ~50 s of tokens left: only its departure lets this one through.
    const served = await next;
    expect(served.status).toBe(200);
    expect(Number(served.headers.get('x-sim-queue-ms'))).toBeGreaterThan(0);
    await untilStats('sim-leave', (row) => row.inFlight === 0, 'has a free slot');
    expect((await modelStats('sim-leave')).completed).toBe(before.completed + 1);
  });
});

describe('continuous batching with two slots', () => {
  it('decodes 2 streams while 4 wait, and the waiting ones get their first byte a whole answer later', async () => {
    const maxTokens = 4;
    // Lower bound on one answer's time in a slot: the decode steps after the first token.
    const answerMs = (maxTokens - 1) * slowDecodeMs;
    const startedAt = performance.now();
    const firstByteMs: number[] = [];
    const streams = Array.from({ length: 6 }, async () => {
      const response = await chat('sim-batch', { stream: true, max_tokens: maxTokens });
      // Stream headers go out with the first token.
      firstByteMs.push(performance.now() - startedAt);
      expect(response.status).toBe(200);
      const text = await response.text();
      expect(text.trimEnd().endsWith('data: [DONE]')).toBe(true);
    });

    let snapshot: Row | undefined;
    await untilStats(
      'sim-batch',
      (row) => {
        snapshot = row;
        return row.inFlight + row.queued === 6;
      },
      'has all six requests',
    );
    expect(snapshot).toMatchObject({ inFlight: 2, queued: 4 });
    await Promise.all(streams);

    const sorted = [...firstByteMs].sort((a, b) => a - b);
    expect(sorted).toHaveLength(6);
    // Requests 3-4 waited for a first-wave answer to end, 5-6 for two in a row.
    for (const waited of sorted.slice(2)) expect(waited).toBeGreaterThan(answerMs);
    for (const waited of sorted.slice(4)) expect(waited).toBeGreaterThan(2 * answerMs);
    expect(sorted[2]).toBeGreaterThan(sorted[0] as number);
    expect(await modelStats('sim-batch')).toMatchObject({ inFlight: 0, queued: 0, completed: 6 });
  });
});
