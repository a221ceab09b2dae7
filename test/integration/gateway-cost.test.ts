import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it, onTestFinished } from 'vitest';
import type { SluiceConfigInput } from '../../src/config/schema.js';
import type { WideEvent } from '../../src/events/wide-event.js';
import type { FaultInput } from '../../src/sim/faults.js';
import { startSimServer } from '../../src/sim/server.js';
import { quickModel, type RunningGateway, startGateway, startGatewayWithSim } from '../support/gateway.js';

type Running = RunningGateway & { sim: { url: string } };

/** The catalog's prices for the simulator's models (src/policy/price-catalog.ts), USD per million tokens. */
const catalog = {
  'sim-fast': { input: 0.15, cachedInput: 0.075, output: 0.6 },
  'sim-smart': { input: 2.5, cachedInput: 1.25, output: 10 },
  'sim-reasoner': { input: 1.1, cachedInput: 0.275, output: 4.4 },
  'sim-embed': { input: 0.02, output: 0 },
};

/** Whole pico-dollars, so expected costs are exact: $1 per million tokens is 1e6 pico-dollars a token. */
const pico = (tokens: number, usdPerMTok: number) => tokens * Math.round(usdPerMTok * 1e6);
const usd = (picoUsd: number) => picoUsd / 1e12;

interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  prompt_tokens_details?: { cached_tokens?: number };
  completion_tokens_details?: { reasoning_tokens?: number };
}

/** What the catalog says an OpenAI-style usage block costs. */
function expectedCost(usage: Usage, price: { input: number; cachedInput?: number; output: number }): number {
  const cached = usage.prompt_tokens_details?.cached_tokens ?? 0;
  return usd(
    pico(usage.prompt_tokens - cached, price.input) +
      pico(cached, price.cachedInput ?? price.input) +
      pico(usage.completion_tokens, price.output),
  );
}

const quick = { ...quickModel, outputTokens: { mean: 12, spread: 0.5 } };
const models = [
  { name: 'sim-fast', ...quick },
  { name: 'sim-smart', ...quick },
  { name: 'sim-reasoner', ...quick, reasoningTokens: 8 },
  { name: 'sim-embed', kind: 'embedding' as const, ...quick },
];

async function start(
  overrides: Partial<SluiceConfigInput> = {},
  sim: { faults?: FaultInput[]; models?: unknown[] } = {},
): Promise<Running> {
  const running = await startGatewayWithSim(overrides, {
    config: { seed: 7, models: (sim.models ?? models) as typeof models, faults: sim.faults ?? [] },
  });
  onTestFinished(() => running.close());
  return running;
}

const question = [{ role: 'user', content: 'Tell me about sluice gates.' }];

function post(gw: Running, body: Record<string, unknown>, path = '/v1/chat/completions'): Promise<Response> {
  return fetch(`${gw.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
}

/** The `data:` payloads of an SSE body, [DONE] left out, parsed. */
async function sseData(response: Response): Promise<Array<Record<string, unknown>>> {
  const text = await response.text();
  return text
    .split('\n\n')
    .map((block) =>
      block
        .split('\n')
        .find((line) => line.startsWith('data: '))
        ?.slice('data: '.length),
    )
    .filter((data): data is string => data !== undefined && data !== '[DONE]')
    .map((data) => JSON.parse(data) as Record<string, unknown>);
}

async function eventOf(gw: Running, index: number): Promise<WideEvent> {
  const deadline = Date.now() + 10_000;
  while (gw.events.length <= index) {
    if (Date.now() > deadline) throw new Error(`request ${index} was never recorded`);
    await sleep(5);
  }
  return gw.events[index] as WideEvent;
}

describe('the cost of a call', () => {
  it.each(['sim-fast', 'sim-smart', 'sim-reasoner'] as const)(
    'prices a whole answer from %s by the catalog, in x-sluice-cost-usd and on the event',
    async (model) => {
      const gw = await start();
      const response = await post(gw, { model, messages: question });
      expect(response.status).toBe(200);
      const body = (await response.json()) as { usage: Usage };
      if (model === 'sim-reasoner') expect(body.usage.completion_tokens_details?.reasoning_tokens).toBe(8);
      // Reasoning is part of completion_tokens and priced as output.
      const cost = expectedCost(body.usage, catalog[model]);
      expect(cost).toBeGreaterThan(0);
      expect(Number(response.headers.get('x-sluice-cost-usd'))).toBe(cost);
      expect(response.headers.get('x-sluice-cost-usd')).not.toContain('e');
      const event = await eventOf(gw, 0);
      expect(event.costUsd).toBe(cost);
      expect(event.attempts[0]).toMatchObject({
        costUsd: cost,
        priceVersion: expect.stringMatching(/^\d{4}-/),
      });
    },
  );

  it('costs a streamed answer exactly what the same answer costs whole, cached prompt tokens included', async () => {
    const gw = await start();
    // A long, repeated prefix: the simulator reports it cached from the second request on.
    const messages = [
      { role: 'system', content: 'Sluice gates hold water back and let it through when asked. '.repeat(120) },
      { role: 'user', content: 'Summarise.' },
    ];
    await (await post(gw, { model: 'sim-fast', messages })).text();
    const whole = await post(gw, { model: 'sim-fast', messages });
    const wholeBody = (await whole.json()) as { usage: Usage };
    const cached = wholeBody.usage.prompt_tokens_details?.cached_tokens ?? 0;
    expect(cached).toBeGreaterThan(1000);

    const streamed = await post(gw, {
      model: 'sim-fast',
      messages,
      stream: true,
      stream_options: { include_usage: true },
    });
    const chunks = await sseData(streamed);
    const last = chunks.at(-1) as { usage: Usage; x_sluice_cost_usd: number; choices: unknown[] };
    expect(last.choices).toEqual([]);
    expect(last.usage).toEqual(wholeBody.usage);

    const cost = expectedCost(wholeBody.usage, catalog['sim-fast']);
    expect(Number(whole.headers.get('x-sluice-cost-usd'))).toBe(cost);
    expect(last.x_sluice_cost_usd).toBe(cost);
    expect((await eventOf(gw, 2)).costUsd).toBe(cost);
    // Cached tokens priced at the cached rate, not the input rate.
    expect(cost).toBeLessThan(
      expectedCost({ ...wholeBody.usage, prompt_tokens_details: {} }, catalog['sim-fast']),
    );
  });

  it('counts a stream’s cost even when the client did not ask for usage, and sends it no usage chunk', async () => {
    const gw = await start();
    const chunks = await sseData(await post(gw, { model: 'sim-smart', messages: question, stream: true }));
    // Content chunks pass through byte for byte (with OpenAI's "usage": null); the usage chunk does not.
    expect(chunks.some((chunk) => Boolean(chunk.usage) || 'x_sluice_cost_usd' in chunk)).toBe(false);
    const event = await eventOf(gw, 0);
    const usage = { prompt_tokens: event.tokens.input, completion_tokens: event.tokens.output };
    expect(event.tokens.output).toBeGreaterThan(0);
    expect(event.costUsd).toBe(expectedCost(usage, catalog['sim-smart']));
  });

  it('gives Anthropic clients the cost in the message_delta usage and the header', async () => {
    const gw = await start();
    const ask = { model: 'sim-smart', max_tokens: 64, messages: question };
    const whole = await post(gw, ask, '/v1/messages');
    const body = (await whole.json()) as { usage: { input_tokens: number; output_tokens: number } };
    const cost = expectedCost(
      { prompt_tokens: body.usage.input_tokens, completion_tokens: body.usage.output_tokens },
      catalog['sim-smart'],
    );
    expect(Number(whole.headers.get('x-sluice-cost-usd'))).toBe(cost);

    const events = await sseData(await post(gw, { ...ask, stream: true }, '/v1/messages'));
    const delta = events.find((e) => e.type === 'message_delta') as { usage: Record<string, unknown> };
    expect(delta.usage).toMatchObject({ output_tokens: body.usage.output_tokens, x_sluice_cost_usd: cost });
  });

  it('prices embeddings by their input tokens', async () => {
    const gw = await start();
    const response = await post(
      gw,
      { model: 'sim-embed', input: ['sluice gates', 'weirs'] },
      '/v1/embeddings',
    );
    const body = (await response.json()) as { usage: { prompt_tokens: number } };
    expect(body.usage.prompt_tokens).toBeGreaterThan(0);
    expect(Number(response.headers.get('x-sluice-cost-usd'))).toBe(usd(pico(body.usage.prompt_tokens, 0.02)));
  });
});

/** A simulator, and a gateway configured by `config` once the simulator's address is known. */
async function startAround(
  config: (simUrl: string) => SluiceConfigInput,
  sim: { faults?: FaultInput[]; models?: unknown[] } = {},
): Promise<Running> {
  const simulator = await startSimServer({
    config: { seed: 7, models: (sim.models ?? models) as typeof models, faults: sim.faults ?? [] },
  });
  const gateway = await startGateway({ events: { sink: 'none' }, ...config(simulator.url) });
  onTestFinished(async () => {
    await gateway.close();
    await simulator.close();
  });
  return { ...gateway, sim: simulator };
}

describe('prices the catalog does not know', () => {
  it('records the cost as unknown (null, never 0) and warns once per model', async () => {
    const gw = await startAround((simUrl) => ({
      // An OpenAI-compatible server sets its own prices: the catalog has none for it.
      providers: { local: { type: 'openai-compatible', baseUrl: `${simUrl}/v1` } },
      routes: { chat: { targets: [{ provider: 'local', model: 'sim-fast' }] } },
    }));
    for (let i = 0; i < 2; i++) {
      const response = await post(gw, { model: 'chat', messages: question });
      expect(response.status).toBe(200);
      expect(response.headers.has('x-sluice-cost-usd')).toBe(false);
      await response.text();
    }
    const chunks = await sseData(
      await post(gw, {
        model: 'chat',
        messages: question,
        stream: true,
        stream_options: { include_usage: true },
      }),
    );
    expect(chunks.at(-1)).toMatchObject({ x_sluice_cost_usd: null });
    for (let i = 0; i < 3; i++) {
      const event = await eventOf(gw, i);
      expect(event.tokens.input).toBeGreaterThan(0);
      expect(event.costUsd).toBeNull();
      expect(event.attempts[0]?.costUsd).toBeNull();
    }
    const warnings = gw.logs.filter((line) => line.includes('no price known for local/sim-fast'));
    expect(warnings).toHaveLength(1);
    expect(JSON.parse(warnings[0] as string)).toMatchObject({ level: 40, target: 'local/sim-fast' });
  });

  it('takes prices from sluice.yaml: a target’s own first, then prices: by provider/model', async () => {
    const gw = await startAround((simUrl) => ({
      providers: {
        sim: { type: 'sim', baseUrl: simUrl },
        local: { type: 'openai-compatible', baseUrl: `${simUrl}/v1` },
      },
      prices: {
        // A dated snapshot is priced as its model, here as in the catalog.
        'sim/sim-fast': { input: 1, output: 2 },
        'local/sim-fast': { input: 0.5, output: 0.25 },
      },
      routes: {
        fast: { targets: [{ provider: 'sim', model: 'sim-fast-2025-01-01' }] },
        local: { targets: [{ provider: 'local', model: 'sim-fast' }] },
        own: { targets: [{ provider: 'sim', model: 'sim-fast', price: { input: 3, output: 4 } }] },
      },
    }));
    const prices = {
      fast: { input: 1, output: 2 },
      local: { input: 0.5, output: 0.25 },
      own: { input: 3, output: 4 },
    };
    for (const [route, price] of Object.entries(prices)) {
      const response = await post(gw, { model: route, messages: question });
      const body = (await response.json()) as { usage: Usage };
      expect(Number(response.headers.get('x-sluice-cost-usd')), route).toBe(expectedCost(body.usage, price));
    }
    expect(gw.events.map((e) => e.attempts[0]?.priceVersion)).toEqual(['config', 'config', 'config']);
  });
});

describe('usage the provider never reported', () => {
  it('is counted with the tokenizer when a stream is cut mid-answer, and marked estimated', async () => {
    const gw = await start({}, { faults: [{ kind: 'cut', afterTokens: 5, models: ['sim-fast'] }] });
    // The same prompt on an uncut model: the simulator's own prompt count.
    const reference = (await (await post(gw, { model: 'sim-smart', messages: question })).json()) as {
      usage: Usage;
    };
    const chunks = await sseData(
      await post(gw, {
        model: 'sim-fast',
        messages: question,
        stream: true,
        stream_options: { include_usage: true },
      }),
    );
    expect(chunks.some((chunk) => Boolean(chunk.usage))).toBe(false);
    const event = await eventOf(gw, 1);
    expect(event.status).toBe(502);
    expect(event.tokens).toMatchObject({ input: reference.usage.prompt_tokens, output: 5 });
    const cost = expectedCost(
      { prompt_tokens: reference.usage.prompt_tokens, completion_tokens: 5 },
      catalog['sim-fast'],
    );
    expect(event.costUsd).toBe(cost);
    expect(event.attempts).toHaveLength(1);
    expect(event.attempts[0]).toMatchObject({ costUsd: cost, usageEstimated: true });
  });

  it('still bills a hedge that lost after its provider began answering', async () => {
    const gw = await startAround(
      (simUrl) => ({
        providers: { sim: { type: 'sim', baseUrl: simUrl } },
        routes: {
          chat: {
            targets: [{ provider: 'sim', model: 'sim-smart' }],
            fallbacks: [{ provider: 'sim', model: 'sim-fast' }],
            retries: { attempts: 0 },
            hedge: { delayMs: 50 },
          },
        },
      }),
      {
        models: [
          // The first target takes half a second to begin; the hedge begins at once but takes
          // two seconds to finish, so the first one begins while the hedge's answer streams.
          { name: 'sim-smart', ...quick, prefillBaseMs: 500 },
          { name: 'sim-fast', ...quick, decodeMsPerToken: 40, outputTokens: { mean: 50, spread: 0 } },
        ],
      },
    );
    const chunks = await sseData(
      await post(gw, {
        model: 'chat',
        messages: question,
        stream: true,
        stream_options: { include_usage: true },
      }),
    );
    const answered = (chunks.at(-1) as { usage: Usage }).usage;
    const event = await eventOf(gw, 0);
    expect(event.attempts.map(({ target, reason, outcome }) => ({ target, reason, outcome }))).toEqual([
      { target: 'sim/sim-smart', reason: 'first', outcome: 'aborted' },
      { target: 'sim/sim-fast', reason: 'hedge', outcome: 'ok' },
    ]);
    // The cancelled attempt had its prompt processed: that is billed, estimated by the tokenizer.
    const lost = usd(pico(answered.prompt_tokens, catalog['sim-smart'].input));
    const won = expectedCost(answered, catalog['sim-fast']);
    expect(event.attempts[0]).toMatchObject({ costUsd: lost, usageEstimated: true });
    expect(event.attempts[1]).toMatchObject({ costUsd: won });
    expect(event.costUsd).toBe(usd(pico(answered.prompt_tokens, 2.5) + Math.round(won * 1e12)));
  });
});
