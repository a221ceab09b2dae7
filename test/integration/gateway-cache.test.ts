import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { describe, expect, it, onTestFinished } from 'vitest';
import type { SluiceConfig, SluiceConfigInput } from '../../src/config/schema.js';
import type { ChatCompletion } from '../../src/providers/canonical.js';
import type { FaultInput } from '../../src/sim/faults.js';
import { ManualClock } from '../../src/time/manual-clock.js';
import { epoch } from '../support/cache-store-contract.js';
import { quickModel, type RunningGateway, startGatewayWithSim } from '../support/gateway.js';
import { tools } from '../support/openai-fixtures.js';
import { freePort } from '../support/ports.js';
import { serverForSuite, startRedis } from '../support/servers.js';

type Running = RunningGateway & { sim: { url: string } };
type RouteInput = NonNullable<SluiceConfigInput['routes']>[string];

/** Fast, roomy models: a request takes a few milliseconds and never queues. */
const fastModel = { ...quickModel, outputTokens: { mean: 12, spread: 0 } };
const simModels = [
  { name: 'sim-fast', ...fastModel },
  { name: 'sim-embed', kind: 'embedding' as const, slots: 32, decodeMsPerToken: 0, embeddingDimensions: 256 },
];

const fast = { provider: 'sim', model: 'sim-fast' };
const noRetries = { attempts: 0, baseDelayMs: 1, maxDelayMs: 1, maxRetryAfterMs: 0 };
const cachedRoute = (cache: RouteInput['cache'] = { ttlMs: 60_000 }): RouteInput => ({
  targets: [fast],
  retries: noRetries,
  cache,
});

/** Routes: `cached` and `other` cache the same target, `plain` does not, `embed` embeds. */
function routes(): Record<string, RouteInput> {
  return {
    cached: cachedRoute(),
    other: cachedRoute(),
    plain: { targets: [fast], retries: noRetries },
    embed: { targets: [{ provider: 'sim', model: 'sim-embed' }] },
  };
}

async function start(
  overrides: Partial<SluiceConfigInput> = {},
  options: { now?: () => number; faults?: FaultInput[]; loadConfig?: () => Promise<SluiceConfig> } = {},
): Promise<Running> {
  const { routes: extra, ...rest } = overrides;
  const running = await startGatewayWithSim(
    { routes: { ...routes(), ...extra }, ...rest },
    { config: { seed: 11, models: simModels, faults: options.faults ?? [] } },
    { now: options.now, loadConfig: options.loadConfig },
  );
  onTestFinished(() => running.close());
  return running;
}

const question = 'Tell me about sluice gates.';
const ask = (extra: Record<string, unknown> = {}) => ({
  model: 'cached',
  max_tokens: 12,
  messages: [{ role: 'user', content: question }],
  ...extra,
});

function post(
  gw: Running,
  body: unknown,
  options: { path?: '/v1/chat/completions' | '/v1/messages'; headers?: Record<string, string> } = {},
): Promise<Response> {
  return fetch(`${gw.url}${options.path ?? '/v1/chat/completions'}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...options.headers },
    body: JSON.stringify(body),
  });
}

/** Chat completions the simulator's sim-fast has produced: each one an upstream call. */
async function upstreamCalls(gw: Running, model = 'sim-fast'): Promise<number> {
  const stats = (await (await fetch(`${gw.sim.url}/sim/stats`)).json()) as {
    models: Record<string, { completed: number; faulted: number }>;
  };
  const row = stats.models[model];
  return (row?.completed ?? 0) + (row?.faulted ?? 0);
}

async function until(check: () => Promise<boolean> | boolean, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`gave up waiting until ${what}`);
    await sleep(5);
  }
}

const cacheHeader = (response: Response) => response.headers.get('x-sluice-cache');

async function completion(response: Response): Promise<ChatCompletion> {
  expect(response.status).toBe(200);
  return (await response.json()) as ChatCompletion;
}

/** Server-Sent Events as `{event?, data}` blocks. */
async function events(response: Response): Promise<Array<{ event?: string; data: string }>> {
  expect(response.status).toBe(200);
  expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/);
  return (await response.text())
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

interface StreamedChat {
  content: string;
  toolCalls: Array<{ id: string; name: string; arguments: string }>;
  finish: string | null;
  usage: unknown;
  done: boolean;
  /** The error event of a stream that broke after it started. */
  error?: { code: string };
}

/** An OpenAI stream put back together the way an SDK does. */
async function openAIStream(response: Response): Promise<StreamedChat> {
  const streamed: StreamedChat = { content: '', toolCalls: [], finish: null, usage: undefined, done: false };
  for (const { data } of await events(response)) {
    if (data === '[DONE]') {
      streamed.done = true;
      continue;
    }
    const chunk = JSON.parse(data) as {
      choices: Array<{
        delta: {
          content?: string | null;
          tool_calls?: Array<{
            index: number;
            id?: string;
            function?: { name?: string; arguments?: string };
          }>;
        };
        finish_reason: string | null;
      }>;
      usage?: unknown;
      error?: { code: string };
    };
    if (chunk.error) streamed.error = chunk.error;
    if (chunk.usage) streamed.usage = chunk.usage;
    const choice = chunk.choices?.[0];
    if (!choice) continue;
    streamed.content += choice.delta.content ?? '';
    for (const delta of choice.delta.tool_calls ?? []) {
      const call = streamed.toolCalls[delta.index] ?? { id: '', name: '', arguments: '' };
      streamed.toolCalls[delta.index] = call;
      call.id ||= delta.id ?? '';
      call.name ||= delta.function?.name ?? '';
      call.arguments += delta.function?.arguments ?? '';
    }
    streamed.finish = choice.finish_reason ?? streamed.finish;
  }
  return streamed;
}

describe('exact cache', () => {
  it('answers a repeated request from the cache: the same completion, no upstream call, no attempt', async () => {
    const gw = await start();
    const first = await post(gw, ask());
    expect(cacheHeader(first)).toBe('miss');
    const stored = await completion(first);

    const second = await post(gw, ask());
    expect(cacheHeader(second)).toBe('hit');
    expect(second.headers.get('age')).toMatch(/^\d+$/);
    expect(second.headers.get('x-sluice-target')).toBeNull();
    expect(second.headers.get('x-sluice-attempts')).toBeNull();
    expect(second.headers.get('x-sluice-cost-usd')).toBe('0');
    expect(await completion(second)).toEqual(stored);
    expect(await upstreamCalls(gw)).toBe(1);

    await until(() => gw.events.length === 2, 'both requests are recorded');
    const [miss, hit] = gw.events;
    expect(miss?.attempts).toHaveLength(1);
    // A hit is free upstream, yet says what the answer weighed.
    expect(miss).toMatchObject({ cacheStatus: 'miss' });
    expect(hit).toMatchObject({
      status: 200,
      route: 'cached',
      target: null,
      attempts: [],
      cacheStatus: 'hit',
      costUsd: 0,
    });
    expect(hit?.routeVersion).toBe(miss?.routeVersion);
    expect(hit?.tokens).toEqual(miss?.tokens);
  });

  it('leaves routes without cache settings alone', async () => {
    const gw = await start();
    for (let i = 0; i < 2; i++) {
      const response = await post(gw, ask({ model: 'plain' }));
      expect(cacheHeader(response)).toBeNull();
      await completion(response);
    }
    expect(await upstreamCalls(gw)).toBe(2);
  });

  it('keys on what changes the answer: key order, streaming options and the user field do not; temperature does', async () => {
    const gw = await start();
    await completion(await post(gw, ask({ temperature: 0 })));
    const reordered = {
      messages: [{ content: question, role: 'user' }],
      temperature: 0,
      user: 'someone-else',
      max_tokens: 12,
      model: 'cached',
    };
    expect(cacheHeader(await post(gw, reordered))).toBe('hit');
    expect(cacheHeader(await post(gw, ask({ temperature: 0, metadata: { team: 'a' } })))).toBe('hit');
    expect(cacheHeader(await post(gw, ask({ temperature: 0.7 })))).toBe('miss');
    expect(cacheHeader(await post(gw, ask({ temperature: 0, max_tokens: 13 })))).toBe('miss');
  });

  it('replays a cached whole answer as a stream with the same content, usage only when asked for', async () => {
    const gw = await start();
    const whole = await completion(await post(gw, ask()));

    const plain = await post(gw, ask({ stream: true }));
    expect(cacheHeader(plain)).toBe('hit');
    const streamed = await openAIStream(plain);
    expect(streamed).toMatchObject({
      content: whole.choices[0]?.message.content,
      finish: whole.choices[0]?.finish_reason,
      usage: undefined,
      done: true,
    });

    const withUsage = await openAIStream(
      await post(gw, ask({ stream: true, stream_options: { include_usage: true } })),
    );
    expect(withUsage.usage).toEqual(whole.usage);
    expect(await upstreamCalls(gw)).toBe(1);
  });

  it('stores a streamed answer and serves it whole, byte for byte what an uncached request gets', async () => {
    const gw = await start();
    const live = await openAIStream(await post(gw, ask({ stream: true })));
    expect(live.done).toBe(true);

    const hit = await post(gw, ask());
    expect(cacheHeader(hit)).toBe('hit');
    const cached = await completion(hit);
    const uncached = await completion(await post(gw, ask({ model: 'plain' })));
    expect(cached.choices[0]?.message.content).toBe(live.content);
    expect(cached.choices[0]?.message.content).toBe(uncached.choices[0]?.message.content);
    expect(cached.choices[0]?.finish_reason).toBe(uncached.choices[0]?.finish_reason);
    expect(cached.usage).toMatchObject({
      prompt_tokens: uncached.usage?.prompt_tokens,
      completion_tokens: uncached.usage?.completion_tokens,
    });
    expect(await upstreamCalls(gw)).toBe(2);
  });

  it('keeps tool calls byte for byte, whole and streamed again', async () => {
    const gw = await start();
    const body = ask({
      messages: [{ role: 'user', content: 'What is the weather in Lyon?' }],
      tools,
      tool_choice: 'required',
      max_tokens: 200,
    });
    const live = await openAIStream(await post(gw, { ...body, stream: true }));
    expect(live.toolCalls.length).toBeGreaterThan(0);

    const whole = await post(gw, body);
    expect(cacheHeader(whole)).toBe('hit');
    const message = (await completion(whole)).choices[0]?.message;
    expect(message?.content).toBeNull();
    expect(
      message?.tool_calls?.map((c) => ({ id: c.id, name: c.function.name, arguments: c.function.arguments })),
    ).toEqual(live.toolCalls);

    const again = await openAIStream(await post(gw, { ...body, stream: true }));
    expect(again.toolCalls).toEqual(live.toolCalls);
    expect(again.finish).toBe('tool_calls');
    expect(await upstreamCalls(gw)).toBe(1);
  });

  it('serves Anthropic clients the same cached answer in their format, whole and streamed', async () => {
    const gw = await start();
    const stored = await completion(await post(gw, ask()));
    const text = stored.choices[0]?.message.content;
    const anthropic = { model: 'cached', max_tokens: 12, messages: [{ role: 'user', content: question }] };

    const whole = await post(gw, anthropic, { path: '/v1/messages' });
    expect(cacheHeader(whole)).toBe('hit');
    const message = (await whole.json()) as {
      type: string;
      content: Array<{ type: string; text: string }>;
      usage: { output_tokens: number };
    };
    expect(message.type).toBe('message');
    expect(message.content).toEqual([{ type: 'text', text }]);
    expect(message.usage.output_tokens).toBe(stored.usage?.completion_tokens);

    const streamed = await post(gw, { ...anthropic, stream: true }, { path: '/v1/messages' });
    expect(cacheHeader(streamed)).toBe('hit');
    const sse = await events(streamed);
    expect(sse.map((e) => e.event)).toEqual([
      'message_start',
      'ping',
      'content_block_start',
      'content_block_delta',
      'content_block_stop',
      'message_delta',
      'message_stop',
    ]);
    const deltas = sse
      .filter((e) => e.event === 'content_block_delta')
      .map((e) => (JSON.parse(e.data) as { delta: { text: string } }).delta.text);
    expect(deltas.join('')).toBe(text);
    expect(JSON.parse(sse[5]?.data ?? '{}')).toMatchObject({
      usage: { output_tokens: stored.usage?.completion_tokens },
    });
    expect(await upstreamCalls(gw)).toBe(1);
  });

  it('serves an answer until ttlMs has passed on the clock, then asks upstream again', async () => {
    const clock = new ManualClock(epoch);
    const gw = await start(
      { routes: { cached: cachedRoute({ ttlMs: 60_000 }) } },
      { now: () => clock.now() },
    );
    await completion(await post(gw, ask()));
    clock.advance(59_999);
    const fresh = await post(gw, ask());
    expect(cacheHeader(fresh)).toBe('hit');
    expect(fresh.headers.get('age')).toBe('59');
    clock.advance(1);
    expect(cacheHeader(await post(gw, ask()))).toBe('miss');
    expect(await upstreamCalls(gw)).toBe(2);
  });

  it('does not store an answer larger than cache.maxEntryBytes', async () => {
    const gw = await start({ cache: { maxEntryBytes: 100 } });
    for (let i = 0; i < 2; i++) expect(cacheHeader(await post(gw, ask()))).toBe('miss');
    expect(await upstreamCalls(gw)).toBe(2);
  });

  it('never stores an error, and stores the answer once the upstream recovers', async () => {
    const gw = await start({}, { faults: [{ kind: 'error', status: 500, models: ['sim-fast'] }] });
    const failed = await post(gw, ask());
    expect(failed.status).toBe(502);
    expect(cacheHeader(failed)).toBe('miss');
    await fetch(`${gw.sim.url}/sim/faults`, { method: 'DELETE' });
    expect(cacheHeader(await post(gw, ask()))).toBe('miss');
    expect(cacheHeader(await post(gw, ask()))).toBe('hit');
  });

  it('never stores a stream that broke mid-way', async () => {
    const gw = await start({}, { faults: [{ kind: 'cut', afterTokens: 3, models: ['sim-fast'] }] });
    const broken = await post(gw, ask({ stream: true }));
    expect(cacheHeader(broken)).toBe('miss');
    expect(await openAIStream(broken)).toMatchObject({ done: false, error: { code: 'upstream_error' } });
    await fetch(`${gw.sim.url}/sim/faults`, { method: 'DELETE' });
    expect(cacheHeader(await post(gw, ask()))).toBe('miss');
  });

  it('bypasses requests for several choices (n > 1)', async () => {
    const gw = await start();
    for (let i = 0; i < 2; i++) {
      const response = await post(gw, ask({ n: 2 }));
      expect(cacheHeader(response)).toBeNull();
      expect((await completion(response)).choices).toHaveLength(2);
    }
    expect(await upstreamCalls(gw)).toBe(2);
  });

  it('honours Cache-Control: no-cache refreshes the entry, no-store leaves the cache untouched', async () => {
    const gw = await start();
    const noStore = await post(gw, ask(), { headers: { 'cache-control': 'no-store' } });
    expect(cacheHeader(noStore)).toBe('miss');
    expect(cacheHeader(await post(gw, ask(), { headers: { 'cache-control': 'no-cache' } }))).toBe('miss');
    expect(cacheHeader(await post(gw, ask()))).toBe('hit');
    expect(await upstreamCalls(gw)).toBe(2);
  });

  it('counts lookups by route and result in /metrics', async () => {
    const gw = await start();
    await completion(await post(gw, ask()));
    await completion(await post(gw, ask()));
    await completion(await post(gw, ask()));
    const metrics = await (await fetch(`${gw.url}/metrics`)).text();
    expect(metrics).toContain('sluice_cache_lookups_total{route="cached",result="miss"} 1');
    expect(metrics).toContain('sluice_cache_lookups_total{route="cached",result="hit"} 2');
    expect(metrics).toContain('sluice_cache_entries 1');
    expect(metrics).toMatch(/sluice_cache_served_tokens_total\{route="cached",kind="output"\} [1-9]/);
  });
});

describe('cache isolation', () => {
  const FULL_KEY = 'sk-full-0123456789abcdef';
  const NARROW_KEY = 'sk-narrow-0123456789abcdef';
  const OTHER_KEY = 'sk-other-0123456789abcdef';
  const bearer = (key: string) => ({ authorization: `Bearer ${key}` });

  it('never serves an entry on another route, nor to a key the route refuses', async () => {
    const gw = await start({
      auth: {
        apiKeys: [
          { name: 'full', key: FULL_KEY },
          { name: 'narrow', key: NARROW_KEY, routes: ['other'] },
        ],
      },
    });
    await completion(await post(gw, ask(), { headers: bearer(FULL_KEY) }));
    expect(cacheHeader(await post(gw, ask(), { headers: bearer(FULL_KEY) }))).toBe('hit');

    const refused = await post(gw, ask(), { headers: bearer(NARROW_KEY) });
    expect(refused.status).toBe(403);
    expect(cacheHeader(refused)).toBeNull();
    // Same target, same request, another route: its own entries.
    expect(cacheHeader(await post(gw, ask({ model: 'other' }), { headers: bearer(NARROW_KEY) }))).toBe(
      'miss',
    );
    expect(await upstreamCalls(gw)).toBe(2);
  });

  it('keeps entries per key with scope: key, shared with scope: route', async () => {
    const gw = await start({
      auth: {
        apiKeys: [
          { name: 'full', key: FULL_KEY },
          { name: 'other', key: OTHER_KEY },
        ],
      },
      routes: { cached: cachedRoute({ scope: 'key' }), other: cachedRoute({ scope: 'route' }) },
    });
    await completion(await post(gw, ask(), { headers: bearer(FULL_KEY) }));
    expect(cacheHeader(await post(gw, ask(), { headers: bearer(OTHER_KEY) }))).toBe('miss');
    expect(cacheHeader(await post(gw, ask(), { headers: bearer(FULL_KEY) }))).toBe('hit');

    await completion(await post(gw, ask({ model: 'other' }), { headers: bearer(FULL_KEY) }));
    expect(cacheHeader(await post(gw, ask({ model: 'other' }), { headers: bearer(OTHER_KEY) }))).toBe('hit');
  });

  it('starts afresh when the route changes on reload: its version is part of the key', async () => {
    let next: SluiceConfig | undefined;
    const gw = await start({}, { loadConfig: async () => next as SluiceConfig });
    await completion(await post(gw, ask()));
    await completion(await post(gw, ask({ model: 'other' })));

    next = structuredClone(gw.gateway.runtime.config);
    const changed = next.routes.cached?.targets[0];
    if (changed) changed.params = { temperature: 0 };
    await gw.gateway.reload();
    expect(cacheHeader(await post(gw, ask()))).toBe('miss');
    // The other route is the same version as before: its entries stay.
    expect(cacheHeader(await post(gw, ask({ model: 'other' })))).toBe('hit');
  });
});

describe('semantic cache', () => {
  const semanticRoute = (extra: Partial<NonNullable<RouteInput['cache']>> = {}): RouteInput =>
    cachedRoute({ mode: 'semantic', embeddingRoute: 'embed', threshold: 0.9, ...extra });
  const about = (content: string, extra: Record<string, unknown> = {}) =>
    ask({ model: 'semantic', messages: [{ role: 'user', content }], ...extra });

  it('serves a paraphrase the stored answer, and not a different question', async () => {
    const gw = await start({ routes: { semantic: semanticRoute() } });
    const stored = await completion(await post(gw, about('What is the capital of France?')));

    // The simulator's embeddings share a direction per shared word: this one scores 0.91.
    const paraphrase = await post(gw, about('What is the capital city of France?'));
    expect(cacheHeader(paraphrase)).toBe('semantic-hit');
    expect(Number(paraphrase.headers.get('x-sluice-cache-similarity'))).toBeGreaterThanOrEqual(0.9);
    expect(await completion(paraphrase)).toEqual(stored);

    const identicalWords = await post(gw, about('what is the capital of france'));
    expect(cacheHeader(identicalWords)).toBe('semantic-hit');
    expect(identicalWords.headers.get('x-sluice-cache-similarity')).toBe('1.0000');

    expect(cacheHeader(await post(gw, about('What is the capital of Spain?')))).toBe('miss');
    // The exact repeat needs no embedding at all.
    expect(cacheHeader(await post(gw, about('What is the capital of France?')))).toBe('hit');
    expect(await upstreamCalls(gw)).toBe(2);
    // Four embeddings (two misses, two semantic hits), each recorded as a call on the embedding route.
    expect(await upstreamCalls(gw, 'sim-embed')).toBe(4);
    await until(
      () => gw.events.filter((e) => e.operation === 'embeddings').length === 4,
      'embeddings recorded',
    );
    expect(gw.events.find((e) => e.operation === 'embeddings')).toMatchObject({
      route: 'embed',
      status: 200,
      cacheStatus: null,
    });
    expect(gw.events.filter((e) => e.cacheStatus === 'semantic_hit')).toHaveLength(2);
  });

  it('matches only when everything but the last user message is identical', async () => {
    const gw = await start({ routes: { semantic: semanticRoute() } });
    const history = (system: string, content: string, extra: Record<string, unknown> = {}) =>
      about(content, {
        messages: [
          { role: 'system', content: system },
          { role: 'user', content },
        ],
        ...extra,
      });
    await completion(await post(gw, history('Answer briefly.', 'What is the capital of France?')));
    const same = history('Answer briefly.', 'what is the capital of france');
    expect(cacheHeader(await post(gw, same))).toBe('semantic-hit');
    const otherSystem = history('Answer at length.', 'what is the capital of france');
    expect(cacheHeader(await post(gw, otherSystem))).toBe('miss');
    const otherLimit = history('Answer briefly.', 'what is the capital of france', { max_tokens: 13 });
    expect(cacheHeader(await post(gw, otherLimit))).toBe('miss');
  });

  it('matches requests with tools exactly only', async () => {
    const gw = await start({ routes: { semantic: semanticRoute() } });
    const withTools = (content: string) => about(content, { tools, max_tokens: 200 });
    await completion(await post(gw, withTools('What is the weather in Lyon?')));
    expect(cacheHeader(await post(gw, withTools('what is the weather in lyon')))).toBe('miss');
    expect(cacheHeader(await post(gw, withTools('What is the weather in Lyon?')))).toBe('hit');
    expect(await upstreamCalls(gw, 'sim-embed')).toBe(0);
  });

  it('falls back to exact matching when the embedding route fails', async () => {
    const gw = await start(
      { routes: { semantic: semanticRoute() } },
      { faults: [{ kind: 'error', status: 500, models: ['sim-embed'] }] },
    );
    await completion(await post(gw, about('What is the capital of France?')));
    expect(cacheHeader(await post(gw, about('what is the capital of france')))).toBe('miss');
    expect(cacheHeader(await post(gw, about('What is the capital of France?')))).toBe('hit');
    await until(
      () => gw.events.filter((e) => e.operation === 'embeddings').length === 2,
      'failed embeddings recorded',
    );
    expect(gw.events.find((e) => e.operation === 'embeddings')).toMatchObject({
      route: 'embed',
      status: 502,
    });
  });
});

describe('redis store', () => {
  const redis = serverForSuite(startRedis);

  it('shares answers, exact and semantic, between gateways on one Redis', async () => {
    const shared = {
      cache: { store: 'redis' as const, redisUrl: redis.url, keyPrefix: 'shared:' },
      routes: { semantic: cachedRoute({ mode: 'semantic', embeddingRoute: 'embed', threshold: 0.9 }) },
    };
    const one = await start(shared);
    const two = await start(shared);
    const exact = await completion(await post(one, ask()));
    const semantic = await completion(await post(one, ask({ model: 'semantic' })));

    // Entries are written after the answer is sent: wait until both entries and the vector are in Redis.
    const client = new Redis(redis.url);
    onTestFinished(async () => {
      await client.quit();
    });
    await until(
      async () =>
        (await client.keys('shared:e:*')).length === 2 && (await client.keys('shared:v:*')).length === 1,
      'the entries reach Redis',
    );
    const hit = await post(two, ask());
    expect(cacheHeader(hit)).toBe('hit');
    expect(await completion(hit)).toEqual(exact);
    const paraphrase = ask({
      model: 'semantic',
      messages: [{ role: 'user', content: 'tell me about sluice gates' }],
    });
    const near = await post(two, paraphrase);
    expect(cacheHeader(near)).toBe('semantic-hit');
    expect(await completion(near)).toEqual(semantic);
    expect(await upstreamCalls(two)).toBe(0);
  });

  it('answers every request when Redis is down, as misses', async () => {
    const closed = await freePort();
    const gw = await start({
      cache: { store: 'redis', redisUrl: `redis://127.0.0.1:${closed}`, timeoutMs: 100 },
    });
    for (let i = 0; i < 2; i++) {
      const response = await post(gw, ask());
      expect(cacheHeader(response)).toBe('miss');
      await completion(response);
    }
    expect(await upstreamCalls(gw)).toBe(2);
    const metrics = await (await fetch(`${gw.url}/metrics`)).text();
    expect(metrics).toMatch(/sluice_cache_errors_total\{operation="lookup"\} [1-9]/);
  });
});
