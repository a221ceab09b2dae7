import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it, onTestFinished } from 'vitest';
import type { SluiceConfigInput } from '../../src/config/schema.js';
import type { WideEvent } from '../../src/events/wide-event.js';
import type { FaultInput } from '../../src/sim/faults.js';
import { quickModel, quickModels, type RunningGateway, startGatewayWithSim } from '../support/gateway.js';
import { freePort } from '../support/ports.js';

type RouteInput = NonNullable<SluiceConfigInput['routes']>[string];
type Running = RunningGateway & { sim: { url: string } };

const quickRetries = { attempts: 2, baseDelayMs: 1, maxDelayMs: 5, maxRetryAfterMs: 10_000 };
const fast = { provider: 'sim', model: 'sim-fast' };
const smart = { provider: 'sim', model: 'sim-smart' };
/** sim-fast, backed up by sim-smart: faults aimed at sim-fast show fallbacks. */
const backedUp = (extra: Partial<RouteInput> = {}): RouteInput => ({
  targets: [fast],
  fallbacks: [smart],
  retries: quickRetries,
  ...extra,
});

async function start(
  route: RouteInput,
  sim: { faults?: FaultInput[]; seed?: number; models?: typeof quickModels } = {},
  overrides: Partial<SluiceConfigInput> = {},
): Promise<Running> {
  const running = await startGatewayWithSim(
    { routes: { chat: route }, ...overrides },
    { config: { seed: sim.seed ?? 11, models: sim.models ?? quickModels, faults: sim.faults ?? [] } },
  );
  onTestFinished(() => running.close());
  return running;
}

const ask = (extra: Record<string, unknown> = {}) => ({
  model: 'chat',
  max_tokens: 5,
  messages: [{ role: 'user', content: 'Tell me about sluice gates.' }],
  ...extra,
});

function post(
  gw: Running,
  body: Record<string, unknown>,
  path: '/v1/chat/completions' | '/v1/messages' = '/v1/chat/completions',
  signal?: AbortSignal,
): Promise<Response> {
  return fetch(`${gw.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
    signal,
  });
}

interface Counters {
  inFlight: number;
  queued: number;
  completed: number;
  faulted: number;
  cut: number;
}
type Stats = Counters & { models: Record<string, Counters> };

async function stats(gw: Running): Promise<Stats> {
  return (await (await fetch(`${gw.sim.url}/sim/stats`)).json()) as Stats;
}

async function until(check: () => Promise<boolean> | boolean, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`gave up waiting until ${what}`);
    await sleep(5);
  }
}

/** The one wide event of the test's one request (streams record theirs as they end). */
async function onlyEvent(gw: Running): Promise<WideEvent> {
  await until(() => gw.events.length > 0, 'the request is recorded');
  expect(gw.events).toHaveLength(1);
  return gw.events[0] as WideEvent;
}

const attemptsOf = (event: WideEvent) =>
  event.attempts.map(({ target, reason, outcome, status }) => ({ target, reason, outcome, status }));

/** Server-Sent Events as `{event?, data}` blocks. */
function parseSse(text: string): Array<{ event?: string; data: string }> {
  return text
    .split('\n\n')
    .filter((block) => block.trim() !== '')
    .map((block) => {
      const lines = block.split('\n');
      const event = lines.find((l) => l.startsWith('event: '))?.slice('event: '.length);
      const data = lines
        .filter((l) => l.startsWith('data: '))
        .map((l) => l.slice('data: '.length))
        .join('\n');
      return event === undefined ? { data } : { event, data };
    });
}

interface Chunk {
  choices: Array<{ delta: { role?: string; content?: string }; finish_reason: string | null }>;
}
const contentDeltas = (data: string[]) =>
  data
    .filter((d) => d !== '[DONE]')
    .map((d) => JSON.parse(d) as Chunk)
    .filter((c) => c.choices[0]?.delta.role === undefined && c.choices[0]?.delta.content);

function sluiceHeaders(response: Response) {
  return {
    route: response.headers.get('x-sluice-route'),
    target: response.headers.get('x-sluice-target'),
    attempts: response.headers.get('x-sluice-attempts'),
    requestId: response.headers.get('x-sluice-request-id'),
  };
}

describe('retries and fallbacks', () => {
  it('retries a 503 `attempts` times on the same target, then falls back', async () => {
    const gw = await start(backedUp(), { faults: [{ kind: 'error', status: 503, models: ['sim-fast'] }] });
    const response = await post(gw, ask());
    expect(response.status).toBe(200);
    expect(sluiceHeaders(response)).toMatchObject({ route: 'chat', target: 'sim/sim-smart', attempts: '4' });
    const body = (await response.json()) as { choices: Array<{ message: { content: string } }> };
    expect(body.choices[0]?.message.content).toBeTruthy();

    const event = await onlyEvent(gw);
    expect(attemptsOf(event)).toEqual([
      { target: 'sim/sim-fast', reason: 'first', outcome: 'error', status: 503 },
      { target: 'sim/sim-fast', reason: 'retry', outcome: 'error', status: 503 },
      { target: 'sim/sim-fast', reason: 'retry', outcome: 'error', status: 503 },
      { target: 'sim/sim-smart', reason: 'fallback', outcome: 'ok', status: 200 },
    ]);
    expect(event).toMatchObject({ status: 200, target: 'sim/sim-smart', retries: 2, fallbacks: 1 });
    expect(event.attempts[0]?.error).toContain('sim/sim-fast answered 503');
    expect((await stats(gw)).models).toMatchObject({
      'sim-fast': { faulted: 3, completed: 0 },
      'sim-smart': { faulted: 0, completed: 1 },
    });
  });

  it('mostly recovers on the same target when a 503 hits about half of the requests', async () => {
    const gw = await start(backedUp({ retries: { ...quickRetries, attempts: 5 } }), {
      // Under seed 11 the first rolls fail at most four times in a row, within 1 + 5 tries.
      seed: 11,
      faults: [{ kind: 'error', status: 503, rate: 0.5, models: ['sim-fast'] }],
    });
    // One at a time, so the seeded fault rolls come in a fixed order.
    for (let i = 0; i < 8; i++) {
      const response = await post(gw, ask());
      expect(response.status).toBe(200);
      expect(sluiceHeaders(response).target).toBe('sim/sim-fast');
      await response.arrayBuffer();
    }
    await until(() => gw.events.length === 8, 'every request is recorded');
    for (const event of gw.events) {
      expect(event).toMatchObject({ status: 200, target: 'sim/sim-fast', fallbacks: 0 });
      expect(event.attempts.slice(0, -1).every((a) => a.status === 503 && a.reason !== 'fallback')).toBe(
        true,
      );
    }
    const retries = gw.events.reduce((sum, e) => sum + e.retries, 0);
    expect(gw.events.filter((e) => e.retries > 0).length).toBeGreaterThan(0);
    expect((await stats(gw)).models).toMatchObject({
      'sim-fast': { faulted: retries, completed: 8 },
      'sim-smart': { completed: 0 },
    });
  });

  it('treats a refused connection as retryable and falls back', async () => {
    const closed = await freePort();
    const gw = await start(
      {
        targets: [{ provider: 'dead', model: 'sim-fast' }],
        fallbacks: [smart],
        retries: { ...quickRetries, attempts: 1 },
      },
      {},
      { providers: { sim: { type: 'sim' }, dead: { type: 'sim', baseUrl: `http://127.0.0.1:${closed}` } } },
    );
    const response = await post(gw, ask());
    expect(response.status).toBe(200);
    expect(sluiceHeaders(response)).toMatchObject({ target: 'sim/sim-smart', attempts: '3' });
    await response.arrayBuffer();
    const event = await onlyEvent(gw);
    expect(attemptsOf(event)).toEqual([
      { target: 'dead/sim-fast', reason: 'first', outcome: 'error', status: 502 },
      { target: 'dead/sim-fast', reason: 'retry', outcome: 'error', status: 502 },
      { target: 'sim/sim-smart', reason: 'fallback', outcome: 'ok', status: 200 },
    ]);
    expect(event.attempts[0]?.error).toContain('ECONNREFUSED');
  });

  it.each([false, true])(
    'returns a provider 400 (context length exceeded) at once, without retry or fallback (stream: %s)',
    async (stream) => {
      const tiny = [
        { name: 'sim-fast', ...quickModel, contextWindow: 64 },
        quickModels[1] as (typeof quickModels)[number],
      ];
      const gw = await start(backedUp(), { models: tiny });
      const response = await post(gw, ask({ stream, max_tokens: 100 }));
      expect(response.status).toBe(400);
      expect(response.headers.get('content-type')).toMatch(/^application\/json/);
      expect(sluiceHeaders(response)).toMatchObject({ route: 'chat', target: null, attempts: '1' });
      const body = (await response.json()) as { error: Record<string, unknown> };
      expect(body.error).toMatchObject({ type: 'invalid_request_error', code: 'upstream_rejected_request' });
      expect(body.error.message).toContain('sim/sim-fast answered 400');
      expect(body.error.message).toContain('maximum context length is 64 tokens');

      const event = await onlyEvent(gw);
      expect(attemptsOf(event)).toEqual([
        { target: 'sim/sim-fast', reason: 'first', outcome: 'error', status: 400 },
      ]);
      expect(event).toMatchObject({ status: 400, errorCode: 'upstream_rejected_request', fallbacks: 0 });
      expect((await stats(gw)).models['sim-smart']).toMatchObject({ completed: 0, faulted: 0 });
    },
  );
});

describe('Retry-After', () => {
  const overloaded: FaultInput = { kind: 'error', status: 429, models: ['sim-fast'] };

  it('moves to the fallback instead of waiting when Retry-After exceeds maxRetryAfterMs', async () => {
    const gw = await start(backedUp({ retries: { ...quickRetries, attempts: 3, maxRetryAfterMs: 0 } }), {
      faults: [overloaded],
    });
    const response = await post(gw, ask());
    expect(response.status).toBe(200);
    expect(sluiceHeaders(response)).toMatchObject({ target: 'sim/sim-smart', attempts: '2' });
    await response.arrayBuffer();
    const event = await onlyEvent(gw);
    expect(attemptsOf(event)).toEqual([
      { target: 'sim/sim-fast', reason: 'first', outcome: 'error', status: 429 },
      { target: 'sim/sim-smart', reason: 'fallback', outcome: 'ok', status: 200 },
    ]);
    expect(event.retries).toBe(0);
    expect((await stats(gw)).models['sim-fast']).toMatchObject({ faulted: 1 });
  });

  it('waits at least Retry-After before retrying the same target when it is within maxRetryAfterMs', async () => {
    const gw = await start(backedUp({ retries: { ...quickRetries, attempts: 1, maxRetryAfterMs: 5_000 } }), {
      faults: [overloaded],
    });
    const started = performance.now();
    const response = await post(gw, ask());
    const elapsed = performance.now() - started;
    expect(response.status).toBe(200);
    await response.arrayBuffer();
    const event = await onlyEvent(gw);
    expect(attemptsOf(event)).toEqual([
      { target: 'sim/sim-fast', reason: 'first', outcome: 'error', status: 429 },
      { target: 'sim/sim-fast', reason: 'retry', outcome: 'error', status: 429 },
      { target: 'sim/sim-smart', reason: 'fallback', outcome: 'ok', status: 200 },
    ]);
    // The simulator's 429 says `retry-after: 1`: the retry starts no sooner than 1 s after the first try.
    const [first, retry] = event.attempts;
    expect((retry?.startMs ?? 0) - (first?.startMs ?? 0)).toBeGreaterThanOrEqual(1_000);
    expect(elapsed).toBeGreaterThanOrEqual(1_000);
    expect((await stats(gw)).models['sim-fast']).toMatchObject({ faulted: 2 });
  });
});

describe('when every target fails', () => {
  it('answers 502 naming the last target tried', async () => {
    const gw = await start(backedUp({ retries: { ...quickRetries, attempts: 1 } }), {
      faults: [{ kind: 'error', status: 500 }],
    });
    const response = await post(gw, ask());
    expect(response.status).toBe(502);
    expect(sluiceHeaders(response)).toMatchObject({ route: 'chat', target: null, attempts: '4' });
    expect(sluiceHeaders(response).requestId).toBeTruthy();
    const body = (await response.json()) as { error: { message: string; type: string; code: string } };
    expect(body.error).toMatchObject({ type: 'server_error', code: 'upstream_error' });
    expect(body.error.message).toMatch(/Last target tried: sim\/sim-smart\.$/);
    expect(body.error.message).toContain('answered 500');

    const event = await onlyEvent(gw);
    expect(attemptsOf(event)).toEqual([
      { target: 'sim/sim-fast', reason: 'first', outcome: 'error', status: 500 },
      { target: 'sim/sim-fast', reason: 'retry', outcome: 'error', status: 500 },
      { target: 'sim/sim-smart', reason: 'fallback', outcome: 'error', status: 500 },
      { target: 'sim/sim-smart', reason: 'retry', outcome: 'error', status: 500 },
    ]);
    expect(event).toMatchObject({ status: 502, errorCode: 'upstream_error', target: 'sim/sim-smart' });
    expect((await stats(gw)).faulted).toBe(4);
  });

  it('answers 429 with Retry-After when every target is rate limited', async () => {
    const gw = await start(backedUp({ retries: { ...quickRetries, maxRetryAfterMs: 0 } }), {
      faults: [{ kind: 'error', status: 429 }],
    });
    const response = await post(gw, ask());
    expect(response.status).toBe(429);
    expect(response.headers.get('retry-after')).toBe('1');
    expect(sluiceHeaders(response)).toMatchObject({ route: 'chat', attempts: '2' });
    const body = (await response.json()) as { error: { message: string; type: string; code: string } };
    expect(body.error).toMatchObject({ type: 'rate_limit_error', code: 'upstream_overloaded' });
    expect(body.error.message).toContain('last target tried: sim/sim-smart');

    const event = await onlyEvent(gw);
    expect(attemptsOf(event).map((a) => [a.target, a.reason, a.status])).toEqual([
      ['sim/sim-fast', 'first', 429],
      ['sim/sim-smart', 'fallback', 429],
    ]);
    expect(event).toMatchObject({ status: 429, errorCode: 'upstream_overloaded' });
  });

  it('answers 504 when every target times out', async () => {
    const gw = await start(
      backedUp({ retries: { ...quickRetries, attempts: 0 }, timeouts: { totalMs: 200 } }),
      { faults: [{ kind: 'hang' }] },
    );
    const response = await post(gw, ask());
    expect(response.status).toBe(504);
    expect(sluiceHeaders(response)).toMatchObject({ route: 'chat', attempts: '2' });
    const body = (await response.json()) as { error: { message: string; type: string; code: string } };
    expect(body.error).toMatchObject({ type: 'timeout_error', code: 'upstream_timeout' });
    expect(body.error.message).toContain('Last target tried: sim/sim-smart');
    expect(body.error.message).toContain('total timeout');

    const event = await onlyEvent(gw);
    expect(attemptsOf(event)).toEqual([
      { target: 'sim/sim-fast', reason: 'first', outcome: 'timeout', status: 504 },
      { target: 'sim/sim-smart', reason: 'fallback', outcome: 'timeout', status: 504 },
    ]);
    expect(event).toMatchObject({ status: 504, errorCode: 'upstream_timeout' });
  });
});

describe('deadlines', () => {
  const noRetries = { ...quickRetries, attempts: 0 };

  it.each<[string, FaultInput]>([
    ['slow-first-byte', { kind: 'slow-first-byte', delayMs: '5s', models: ['sim-fast'] }],
    ['hang', { kind: 'hang', models: ['sim-fast'] }],
  ])('falls back when a stream misses its first-token deadline (%s)', async (_name, fault) => {
    const gw = await start(backedUp({ retries: noRetries, timeouts: { firstTokenMs: 200 } }), {
      faults: [fault],
    });
    const response = await post(gw, ask({ stream: true }));
    expect(response.status).toBe(200);
    expect(sluiceHeaders(response)).toMatchObject({ target: 'sim/sim-smart', attempts: '2' });
    const data = parseSse(await response.text()).map((e) => e.data);
    expect(data.at(-1)).toBe('[DONE]');

    const event = await onlyEvent(gw);
    expect(attemptsOf(event)).toEqual([
      { target: 'sim/sim-fast', reason: 'first', outcome: 'timeout', status: 504 },
      { target: 'sim/sim-smart', reason: 'fallback', outcome: 'ok', status: 200 },
    ]);
    expect(event.attempts[0]?.error).toContain('first-token timeout');
    // The abandoned sequence gave its slot back.
    await until(async () => (await stats(gw)).inFlight === 0, 'the simulator is idle');
    expect((await stats(gw)).models['sim-fast']).toMatchObject({ completed: 0, inFlight: 0, queued: 0 });
  });

  it('does not apply the first-token deadline to a non-streaming call', async () => {
    const gw = await start(backedUp({ retries: noRetries, timeouts: { firstTokenMs: 50 } }), {
      faults: [{ kind: 'slow-first-byte', delayMs: '300ms', models: ['sim-fast'] }],
    });
    const response = await post(gw, ask());
    expect(response.status).toBe(200);
    expect(sluiceHeaders(response)).toMatchObject({ target: 'sim/sim-fast', attempts: '1' });
    await response.arrayBuffer();
    expect(attemptsOf(await onlyEvent(gw))).toEqual([
      { target: 'sim/sim-fast', reason: 'first', outcome: 'ok', status: 200 },
    ]);
  });

  it('falls back when a non-streaming call misses its total deadline', async () => {
    const gw = await start(backedUp({ retries: noRetries, timeouts: { totalMs: 300 } }), {
      faults: [{ kind: 'hang', models: ['sim-fast'] }],
    });
    const response = await post(gw, ask());
    expect(response.status).toBe(200);
    expect(sluiceHeaders(response)).toMatchObject({ target: 'sim/sim-smart', attempts: '2' });
    await response.arrayBuffer();
    const event = await onlyEvent(gw);
    expect(attemptsOf(event)).toEqual([
      { target: 'sim/sim-fast', reason: 'first', outcome: 'timeout', status: 504 },
      { target: 'sim/sim-smart', reason: 'fallback', outcome: 'ok', status: 200 },
    ]);
    expect(event.attempts[0]?.error).toContain('total timeout');
  });
});

describe('a stream that breaks', () => {
  it('falls back when cut before its first byte, and the client gets one complete, clean stream', async () => {
    const gw = await start(backedUp({ retries: { ...quickRetries, attempts: 0 } }), {
      faults: [{ kind: 'cut', afterTokens: 0, models: ['sim-fast'] }],
    });
    const response = await post(gw, ask({ stream: true }));
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/);
    expect(sluiceHeaders(response)).toMatchObject({ route: 'chat', target: 'sim/sim-smart', attempts: '2' });
    const events = parseSse(await response.text());
    const data = events.map((e) => e.data);
    expect(events.every((e) => e.event === undefined)).toBe(true);
    expect(data.at(-1)).toBe('[DONE]');
    expect(data.filter((d) => d === '[DONE]')).toHaveLength(1);
    const chunks = data.slice(0, -1).map((d) => JSON.parse(d) as Chunk & { error?: unknown });
    expect(chunks.some((c) => c.error !== undefined)).toBe(false);
    expect(chunks.filter((c) => c.choices[0]?.delta.role === 'assistant')).toHaveLength(1);
    expect(chunks.filter((c) => c.choices[0]?.finish_reason)).toHaveLength(1);
    expect(contentDeltas(data)).toHaveLength(5);

    const event = await onlyEvent(gw);
    expect(attemptsOf(event)).toEqual([
      { target: 'sim/sim-fast', reason: 'first', outcome: 'error', status: 502 },
      { target: 'sim/sim-smart', reason: 'fallback', outcome: 'ok', status: 200 },
    ]);
    expect(event).toMatchObject({ status: 200, stream: true, fallbacks: 1 });
    expect((await stats(gw)).models).toMatchObject({ 'sim-fast': { cut: 1 }, 'sim-smart': { completed: 1 } });
  });

  it('does not fall back once tokens reached the client: they get those tokens, then an error event', async () => {
    const gw = await start(backedUp(), { faults: [{ kind: 'cut', afterTokens: 5, models: ['sim-fast'] }] });
    const response = await post(gw, ask({ stream: true, max_tokens: 20 }));
    expect(response.status).toBe(200);
    expect(sluiceHeaders(response)).toMatchObject({ target: 'sim/sim-fast', attempts: '1' });
    const data = parseSse(await response.text()).map((e) => e.data);
    expect(data).not.toContain('[DONE]');
    const last = JSON.parse(data.at(-1) ?? '{}') as {
      error?: { message: string; type: string; code: string };
    };
    expect(last.error).toMatchObject({ type: 'server_error', code: 'upstream_error' });
    expect(last.error?.message).toContain('sim/sim-fast');
    expect(contentDeltas(data.slice(0, -1))).toHaveLength(5);

    const event = await onlyEvent(gw);
    expect(event).toMatchObject({ status: 502, errorCode: 'upstream_error', retries: 0, fallbacks: 0 });
    expect(event.attempts).toHaveLength(1);
    expect(event.attempts[0]).toMatchObject({ target: 'sim/sim-fast', reason: 'first', outcome: 'error' });
    const after = await stats(gw);
    expect(after.models['sim-fast']).toMatchObject({ cut: 1, completed: 0 });
    expect(after.models['sim-smart']).toMatchObject({ completed: 0, inFlight: 0 });
  });

  it('ends an Anthropic stream cut after some tokens with `event: error` and no message_stop', async () => {
    const gw = await start(backedUp(), { faults: [{ kind: 'cut', afterTokens: 5, models: ['sim-fast'] }] });
    const response = await post(gw, ask({ stream: true, max_tokens: 20 }), '/v1/messages');
    expect(response.status).toBe(200);
    expect(sluiceHeaders(response).target).toBe('sim/sim-fast');
    const events = parseSse(await response.text());
    const names = events.map((e) => e.event);
    expect(names).toContain('message_start');
    expect(names).not.toContain('message_stop');
    expect(names.filter((n) => n === 'content_block_delta')).toHaveLength(5);
    expect(names.at(-1)).toBe('error');
    expect(JSON.parse(events.at(-1)?.data ?? '{}')).toMatchObject({
      type: 'error',
      error: { type: 'api_error', message: expect.stringContaining('sim/sim-fast') },
    });

    const event = await onlyEvent(gw);
    expect(event).toMatchObject({ wire: 'anthropic', status: 502, fallbacks: 0, retries: 0 });
    expect((await stats(gw)).models['sim-smart']).toMatchObject({ completed: 0 });
  });
});

describe('a client that disconnects mid-stream', () => {
  it('aborts the upstream: the simulator frees the sequence and the event says clientAborted', async () => {
    // 20 ms a token and 200 tokens: the stream is far from done when the client leaves.
    const gw = await start(backedUp(), {
      faults: [{ kind: 'latency', multiplier: 20, models: ['sim-fast'] }],
    });
    const controller = new AbortController();
    const response = await post(
      gw,
      ask({ stream: true, max_tokens: 200 }),
      '/v1/chat/completions',
      controller.signal,
    );
    expect(response.status).toBe(200);
    const reader = (response.body as ReadableStream<Uint8Array>).getReader();
    const decoder = new TextDecoder();
    let text = '';
    while (contentDeltas(parseSse(text).map((e) => e.data)).length < 2) {
      const { value, done } = await reader.read();
      if (done) throw new Error('the stream ended before the client left');
      text += decoder.decode(value, { stream: true });
    }
    expect((await stats(gw)).models['sim-fast']).toMatchObject({ inFlight: 1 });
    controller.abort();

    await until(async () => (await stats(gw)).inFlight === 0, 'the simulator frees the sequence');
    const event = await onlyEvent(gw);
    expect(event).toMatchObject({ clientAborted: true, status: 499, fallbacks: 0, retries: 0 });
    expect(attemptsOf(event)).toEqual([
      { target: 'sim/sim-fast', reason: 'first', outcome: 'aborted', status: 200 },
    ]);
    expect((await stats(gw)).models).toMatchObject({
      'sim-fast': { inFlight: 0, queued: 0, completed: 0, cut: 0 },
      'sim-smart': { inFlight: 0, completed: 0 },
    });
  });
});

describe('weighted targets', () => {
  it('splits traffic about 3:1 between targets weighted 3 and 1', async () => {
    // Bursts of 50 outrun the adaptive limits, whose queue-delay target would shed some of each
    // burst (test/unit/flow covers that): waits here are bounded by deadlines alone.
    const gw = await start(
      {
        targets: [
          { ...fast, weight: 3 },
          { ...smart, weight: 1 },
        ],
        retries: quickRetries,
      },
      {},
      { flow: { queue: { delayTarget: 0 } } },
    );
    const answeredBy: Record<string, number> = {};
    for (let batch = 0; batch < 8; batch++) {
      const responses = await Promise.all(Array.from({ length: 50 }, () => post(gw, ask({ max_tokens: 1 }))));
      for (const response of responses) {
        expect(response.status).toBe(200);
        const target = sluiceHeaders(response).target ?? '';
        answeredBy[target] = (answeredBy[target] ?? 0) + 1;
        await response.arrayBuffer();
      }
    }
    const onFast = answeredBy['sim/sim-fast'] ?? 0;
    const onSmart = answeredBy['sim/sim-smart'] ?? 0;
    expect(onFast + onSmart).toBe(400);
    expect(onFast / onSmart).toBeGreaterThan(2);
    expect(onFast / onSmart).toBeLessThan(5);
    await until(() => gw.events.length === 400, 'every request is recorded');
    expect(gw.events.every((e) => e.attempts.length === 1 && e.attempts[0]?.reason === 'first')).toBe(true);
    expect((await stats(gw)).models).toMatchObject({
      'sim-fast': { completed: onFast },
      'sim-smart': { completed: onSmart },
    });
  });
});
