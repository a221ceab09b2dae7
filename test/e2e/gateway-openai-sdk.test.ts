import OpenAI from 'openai';
import type {
  ChatCompletionChunk,
  ChatCompletionCreateParamsNonStreaming,
  ChatCompletionMessageFunctionToolCall,
} from 'openai/resources/chat/completions';
import { afterAll, afterEach, beforeAll, describe, expect, it, onTestFinished, vi } from 'vitest';
import type { SimConfigInput } from '../../src/sim/config.js';
import { countTokens } from '../../src/sim/tokens.js';
import { type RunningGateway, startGateway, startGatewayWithSim } from '../support/gateway.js';
import {
  ajv,
  expectValidArguments,
  functionCalls,
  norm,
  rejection,
  tools,
} from '../support/openai-fixtures.js';

// Quick models keep the file fast; no wrong answers or broken JSON, so exact checks hold.
const quick = { prefillBaseMs: 1, prefillMsPerToken: 0, decodeMsPerToken: 0.2, batchSlowdown: 0 };
const exact = { invalidJsonRate: 0, wrongAnswerRate: 0 };
const simConfig: SimConfigInput = {
  models: [
    { name: 'sim-fast', ...quick, outputTokens: { mean: 40, spread: 0.3 }, quality: exact },
    { name: 'sim-smart', ...quick, outputTokens: { mean: 40, spread: 0.3 }, quality: exact },
    { name: 'sim-reasoner', ...quick, reasoningTokens: 8, quality: exact },
    { name: 'sim-embed', kind: 'embedding', prefillBaseMs: 1, embeddingDimensions: 256 },
  ],
};
const routeNames = ['default', 'sim-fast', 'sim-smart', 'sim-reasoner', 'sim-embed'];

async function collect(stream: AsyncIterable<ChatCompletionChunk>): Promise<ChatCompletionChunk[]> {
  const chunks: ChatCompletionChunk[] = [];
  for await (const chunk of stream) chunks.push(chunk);
  return chunks;
}

const streamedText = (chunks: ChatCompletionChunk[]) =>
  chunks.map((c) => c.choices[0]?.delta.content ?? '').join('');

let gw: RunningGateway & { sim: { url: string } };
/** Talks to the gateway. */
let client: OpenAI;
/** Talks to the simulator directly: the reference for what the gateway should pass on. */
let direct: OpenAI;

beforeAll(async () => {
  gw = await startGatewayWithSim({ logLevel: 'silent' }, { config: simConfig });
  client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: 'test', maxRetries: 0 });
  direct = new OpenAI({ baseURL: `${gw.sim.url}/v1`, apiKey: 'test', maxRetries: 0 });
});

afterAll(async () => {
  await gw?.close();
});

afterEach(async () => {
  await fetch(`${gw.sim.url}/sim/faults`, { method: 'DELETE' });
});

/** The gateway's request with a given id, once its wide event is recorded. */
async function eventFor(id: string | null) {
  return vi.waitFor(() => {
    const event = gw.events.find((e) => e.id === id);
    if (!event) throw new Error(`no event for request ${id} yet`);
    return event;
  });
}

const prose: ChatCompletionCreateParamsNonStreaming['messages'] = [
  { role: 'user', content: 'Tell me how a gateway sheds load.' },
];

describe('OpenAI SDK through the gateway: chat', () => {
  it('answers through a route with the content the simulator gives for the same request, and usage', async () => {
    const expected = await direct.chat.completions.create({ model: 'sim-fast', messages: prose });
    const { data, response } = await client.chat.completions
      .create({ model: 'sim-fast', messages: prose })
      .withResponse();

    expect(data.object).toBe('chat.completion');
    expect(data.choices).toHaveLength(1);
    expect(data.choices[0]?.message.content).toBe(expected.choices[0]?.message.content);
    expect(data.choices[0]?.finish_reason).toBe('stop');
    expect(data.usage).toEqual(expected.usage);
    expect(data.usage?.completion_tokens).toBe(countTokens(data.choices[0]?.message.content ?? ''));
    expect(response.headers.get('x-sluice-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    expect(response.headers.get('x-sluice-route')).toBe('sim-fast');
    expect(response.headers.get('x-sluice-target')).toBe('sim/sim-fast');
    expect(response.headers.get('x-sluice-attempts')).toBe('1');
  });

  it('answers the default route from its first target', async () => {
    const { data, response } = await client.chat.completions
      .create({ model: 'default', messages: [{ role: 'user', content: 'What is 17 * 3?' }] })
      .withResponse();
    expect(data.choices[0]?.message.content).toBe('The answer is 51.');
    expect(response.headers.get('x-sluice-route')).toBe('default');
    expect(response.headers.get('x-sluice-target')).toBe('sim/sim-fast');
    expect(response.headers.get('x-sluice-attempts')).toBe('1');
  });

  it('streams deltas that join to the non-streaming content, then one final usage chunk when asked', async () => {
    const whole = await direct.chat.completions.create({ model: 'sim-fast', messages: prose });
    const content = whole.choices[0]?.message.content ?? '';
    expect(countTokens(content)).toBeGreaterThan(10);

    const { data: stream, response } = await client.chat.completions
      .create({ model: 'sim-fast', messages: prose, stream: true, stream_options: { include_usage: true } })
      .withResponse();
    expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/);
    expect(response.headers.get('x-sluice-target')).toBe('sim/sim-fast');
    const chunks = await collect(stream);

    expect(chunks[0]?.choices[0]?.delta.role).toBe('assistant');
    expect(streamedText(chunks)).toBe(content);
    expect(chunks.filter((c) => c.choices[0]?.delta.content).length).toBeGreaterThan(1);
    const finishes = chunks.flatMap((c) => c.choices.map((choice) => choice.finish_reason)).filter(Boolean);
    expect(finishes).toEqual(['stop']);
    const usageChunks = chunks.filter((c) => c.usage);
    expect(usageChunks).toHaveLength(1);
    expect(chunks.at(-1)?.choices).toEqual([]);
    expect(chunks.at(-1)?.usage).toEqual(whole.usage);
  });

  it('sends no usage chunk when the client did not ask, though the gateway counts usage from upstream', async () => {
    const whole = await direct.chat.completions.create({ model: 'sim-fast', messages: prose });
    const { data: stream, response } = await client.chat.completions
      .create({ model: 'sim-fast', messages: prose, stream: true })
      .withResponse();
    const chunks = await collect(stream);

    expect(streamedText(chunks)).toBe(whole.choices[0]?.message.content);
    expect(chunks.every((c) => c.choices.length === 1)).toBe(true);
    expect(chunks.every((c) => c.usage == null)).toBe(true);
    // The gateway asked the upstream for usage on its own account: the event has the tokens.
    const event = await eventFor(response.headers.get('x-sluice-request-id'));
    expect(event.stream).toBe(true);
    expect(event.tokens.output).toBe(whole.usage?.completion_tokens);
    expect(event.tokens.input).toBe(whole.usage?.prompt_tokens);
  });

  it('ends a raw stream with exactly one [DONE]', async () => {
    const response = await fetch(`${gw.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'sim-fast', messages: prose, stream: true }),
    });
    expect(response.status).toBe(200);
    const frames = (await response.text()).split('\n\n').filter((f) => f.trim() !== '');
    expect(frames.at(-1)).toBe('data: [DONE]');
    expect(frames.filter((f) => f === 'data: [DONE]')).toHaveLength(1);
  });

  it('truncates at max_tokens with finish_reason length', async () => {
    const full = (await client.chat.completions.create({ model: 'sim-fast', messages: prose })).choices[0]
      ?.message.content;
    const response = await client.chat.completions.create({
      model: 'sim-fast',
      messages: prose,
      max_tokens: 7,
    });
    const content = response.choices[0]?.message.content ?? '';
    expect(response.choices[0]?.finish_reason).toBe('length');
    expect(response.usage?.completion_tokens).toBe(7);
    expect(full?.startsWith(content)).toBe(true);
    expect(content.length).toBeLessThan(full?.length ?? 0);
  });

  it('cuts the text before a stop sequence', async () => {
    const full =
      (await client.chat.completions.create({ model: 'sim-fast', messages: prose })).choices[0]?.message
        .content ?? '';
    const stop = full
      .split(/[^a-z]+/i)
      .slice(3)
      .find((w) => w.length >= 5);
    expect(stop, `a long word after the third in: ${full}`).toBeDefined();
    const response = await client.chat.completions.create({
      model: 'sim-fast',
      messages: prose,
      stop: [stop as string],
    });
    expect(response.choices[0]?.message.content).toBe(full.slice(0, full.indexOf(stop as string)));
    expect(response.choices[0]?.finish_reason).toBe('stop');
  });

  it('returns n choices, as the simulator does', async () => {
    const expected = await direct.chat.completions.create({ model: 'sim-fast', messages: prose, n: 3 });
    const response = await client.chat.completions.create({ model: 'sim-fast', messages: prose, n: 3 });
    expect(response.choices.map((c) => c.index)).toEqual([0, 1, 2]);
    expect(new Set(response.choices.map((c) => c.message.content)).size).toBe(3);
    expect(response.choices.map((c) => c.message.content)).toEqual(
      expected.choices.map((c) => c.message.content),
    );
  });

  it('returns JSON that validates against a json_schema response_format', async () => {
    const schema = {
      type: 'object',
      properties: {
        city: { type: 'string' },
        population: { type: 'integer', minimum: 0, maximum: 40_000_000 },
        tags: { type: 'array', items: { type: 'string' }, minItems: 1, maxItems: 3 },
        coastal: { type: 'boolean' },
      },
      required: ['city', 'population', 'tags', 'coastal'],
      additionalProperties: false,
    };
    const response = await client.chat.completions.create({
      model: 'sim-smart',
      messages: [{ role: 'user', content: 'Describe Lisbon.' }],
      response_format: { type: 'json_schema', json_schema: { name: 'city', schema, strict: true } },
    });
    const value: unknown = JSON.parse(response.choices[0]?.message.content ?? '');
    const validate = ajv.compile(schema);
    expect(validate(value), ajv.errorsText(validate.errors)).toBe(true);
  });
});

describe('OpenAI SDK through the gateway: tools', () => {
  const question = { role: 'user' as const, content: 'Call get_weather and get_time for Lisbon.' };

  it('returns parallel tool calls whose arguments validate, then a text answer to the tool results', async () => {
    const first = await client.chat.completions.create({ model: 'sim-fast', messages: [question], tools });
    expect(first.choices[0]?.finish_reason).toBe('tool_calls');
    const calls = functionCalls(first.choices[0]?.message.tool_calls);
    expect(calls.map((c) => c.function.name)).toEqual(['get_weather', 'get_time']);
    expect(new Set(calls.map((c) => c.id)).size).toBe(2);
    for (const call of calls) expectValidArguments(call);

    const answer = await client.chat.completions.create({
      model: 'sim-fast',
      messages: [
        question,
        { role: 'assistant', content: null, tool_calls: calls },
        ...calls.map((call) => ({
          role: 'tool' as const,
          tool_call_id: call.id,
          content: JSON.stringify({ ok: true, tool: call.function.name }),
        })),
      ],
      tools,
    });
    expect(answer.choices[0]?.finish_reason).toBe('stop');
    expect(answer.choices[0]?.message.tool_calls ?? []).toEqual([]);
    expect(answer.choices[0]?.message.content).toMatch(/^Based on the tool results:/);
  });

  it('streams parallel tool calls that accumulate into the non-streaming ones and validate', async () => {
    const whole = await client.chat.completions.create({ model: 'sim-fast', messages: [question], tools });
    const expected = functionCalls(whole.choices[0]?.message.tool_calls).map((c) => ({
      id: c.id,
      name: c.function.name,
      arguments: c.function.arguments,
    }));
    expect(expected).toHaveLength(2);

    const stream = client.chat.completions.stream({ model: 'sim-fast', messages: [question], tools });
    let argumentDeltas = 0;
    stream.on('chunk', (chunk) => {
      for (const call of chunk.choices[0]?.delta.tool_calls ?? [])
        if (call.function?.arguments) argumentDeltas++;
    });
    const final = await stream.finalChatCompletion();
    expect(final.choices[0]?.finish_reason).toBe('tool_calls');
    const calls = functionCalls(final.choices[0]?.message.tool_calls);
    expect(calls.map((c) => ({ id: c.id, name: c.function.name, arguments: c.function.arguments }))).toEqual(
      expected,
    );
    for (const call of calls) expectValidArguments(call);
    expect(argumentDeltas).toBeGreaterThan(calls.length);

    const answer = client.chat.completions.stream({
      model: 'sim-fast',
      messages: [
        question,
        { role: 'assistant', content: null, tool_calls: calls },
        ...calls.map((call) => ({ role: 'tool' as const, tool_call_id: call.id, content: '{"ok":true}' })),
      ],
      tools,
    });
    const text = await answer.finalContent();
    expect(text).toMatch(/^Based on the tool results:/);
  });

  it('honours tool_choice: a named function, none, and parallel_tool_calls false', async () => {
    const named = await client.chat.completions.create({
      model: 'sim-fast',
      messages: [{ role: 'user', content: 'Use get_weather for Lisbon.' }],
      tools,
      tool_choice: { type: 'function', function: { name: 'get_time' } },
    });
    const namedCalls = functionCalls(named.choices[0]?.message.tool_calls);
    expect(namedCalls.map((c) => c.function.name)).toEqual(['get_time']);
    expectValidArguments(namedCalls[0] as ChatCompletionMessageFunctionToolCall);

    const none = await client.chat.completions.create({
      model: 'sim-fast',
      messages: [{ role: 'user', content: 'Use get_weather for Lisbon.' }],
      tools,
      tool_choice: 'none',
    });
    expect(none.choices[0]?.finish_reason).toBe('stop');
    expect(none.choices[0]?.message.tool_calls ?? []).toEqual([]);

    const single = await client.chat.completions.create({
      model: 'sim-fast',
      messages: [question],
      tools,
      parallel_tool_calls: false,
    });
    expect(functionCalls(single.choices[0]?.message.tool_calls).map((c) => c.function.name)).toEqual([
      'get_weather',
    ]);
  });
});

describe('OpenAI SDK through the gateway: embeddings and models', () => {
  const inputs = ['the cache is warm', 'route the request to a cheaper model'];

  it('returns float embeddings equal to the simulator’s', async () => {
    const expected = await direct.embeddings.create({
      model: 'sim-embed',
      input: inputs,
      encoding_format: 'float',
    });
    const { data, response } = await client.embeddings
      .create({ model: 'sim-embed', input: inputs, encoding_format: 'float' })
      .withResponse();
    expect(data.data.map((d) => d.embedding)).toEqual(expected.data.map((d) => d.embedding));
    for (const { embedding } of data.data) {
      expect(embedding).toHaveLength(256);
      expect(norm(embedding)).toBeCloseTo(1, 5);
    }
    expect(data.usage.prompt_tokens).toBe(expected.usage.prompt_tokens);
    expect(response.headers.get('x-sluice-target')).toBe('sim/sim-embed');
  });

  it('returns the same vectors in base64, the SDK default, and honours dimensions', async () => {
    const floats = await client.embeddings.create({
      model: 'sim-embed',
      input: inputs,
      encoding_format: 'float',
    });
    const decoded = await client.embeddings.create({ model: 'sim-embed', input: inputs });
    expect(decoded.data.map((d) => d.embedding)).toEqual(floats.data.map((d) => d.embedding));

    const small = await client.embeddings.create({ model: 'sim-embed', input: 'shed load', dimensions: 64 });
    const embedding = small.data[0]?.embedding ?? [];
    expect(embedding).toHaveLength(64);
    expect(norm(embedding)).toBeCloseTo(1, 5);
  });

  it('lists the routes as models', async () => {
    const page = await client.models.list();
    expect(page.data.map((m) => m.id)).toEqual(routeNames);
    expect(page.data.every((m) => m.object === 'model')).toBe(true);
  });
});

describe('OpenAI SDK through the gateway: direct models', () => {
  it('serves "provider/model" when directModels is true', async () => {
    const open = await startGateway(
      { providers: { sim: { type: 'sim' } }, directModels: true, logLevel: 'silent' },
      { simUrl: gw.sim.url },
    );
    onTestFinished(() => open.close());
    const openClient = new OpenAI({ baseURL: `${open.url}/v1`, apiKey: 'test', maxRetries: 0 });
    const expected = await direct.chat.completions.create({ model: 'sim-smart', messages: prose });
    const { data, response } = await openClient.chat.completions
      .create({ model: 'sim/sim-smart', messages: prose })
      .withResponse();
    expect(data.choices[0]?.message.content).toBe(expected.choices[0]?.message.content);
    expect(response.headers.get('x-sluice-route')).toBe('sim/sim-smart');
    expect(response.headers.get('x-sluice-target')).toBe('sim/sim-smart');
  });

  it('gives a clean 404 for "provider/model" when directModels is false', async () => {
    const error = await rejection(
      client.chat.completions.create({ model: 'sim/sim-smart', messages: prose }),
    );
    expect(error).toBeInstanceOf(OpenAI.NotFoundError);
    expect(error).toMatchObject({
      status: 404,
      type: 'invalid_request_error',
      code: 'model_not_found',
      param: 'model',
    });
    expect((error as Error).message).toContain(routeNames.join(', '));
    expect((error as Error).message).not.toContain('provider/model');
  });
});

describe('OpenAI SDK through the gateway: fallback', () => {
  const injectFastOutage = async () => {
    const response = await fetch(`${gw.sim.url}/sim/faults`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ kind: 'error', status: 503, models: ['sim-fast'] }),
    });
    expect(response.status).toBe(201);
  };

  it('answers the default route from sim-smart when sim-fast fails (non-streaming)', async () => {
    await injectFastOutage();
    const expected = await direct.chat.completions.create({ model: 'sim-smart', messages: prose });
    const { data, response } = await client.chat.completions
      .create({ model: 'default', messages: prose })
      .withResponse();
    expect(data.choices[0]?.message.content).toBe(expected.choices[0]?.message.content);
    expect(response.headers.get('x-sluice-route')).toBe('default');
    expect(response.headers.get('x-sluice-target')).toBe('sim/sim-smart');
    expect(Number(response.headers.get('x-sluice-attempts'))).toBeGreaterThan(1);
    const event = await eventFor(response.headers.get('x-sluice-request-id'));
    expect(event.fallbacks).toBe(1);
    expect(event.attempts.at(-1)).toMatchObject({
      target: 'sim/sim-smart',
      outcome: 'ok',
      reason: 'fallback',
    });
    expect(event.attempts.slice(0, -1).every((a) => a.target === 'sim/sim-fast' && a.status === 503)).toBe(
      true,
    );
  });

  it('answers the default route from sim-smart when sim-fast fails (streaming)', async () => {
    await injectFastOutage();
    const expected = await direct.chat.completions.create({ model: 'sim-smart', messages: prose });
    const { data: stream, response } = await client.chat.completions
      .create({ model: 'default', messages: prose, stream: true })
      .withResponse();
    expect(response.headers.get('x-sluice-target')).toBe('sim/sim-smart');
    expect(Number(response.headers.get('x-sluice-attempts'))).toBeGreaterThan(1);
    const chunks = await collect(stream);
    expect(streamedText(chunks)).toBe(expected.choices[0]?.message.content);
  });
});

describe('OpenAI SDK through the gateway: bad requests', () => {
  const post = (url: string, body: string, headers: Record<string, string> = {}) =>
    fetch(`${url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body,
    });

  it('rejects malformed JSON with 400 invalid_json', async () => {
    const response = await post(gw.url, '{"model": "sim-fast", "messages": [');
    expect(response.status).toBe(400);
    expect(response.headers.get('x-sluice-request-id')).toBeTruthy();
    const body = (await response.json()) as { error: Record<string, unknown> };
    expect(body.error).toMatchObject({ type: 'invalid_request_error', code: 'invalid_json' });
    expect(body.error.message).toMatch(/could not parse the JSON body/);
  });

  it('rejects an unknown route with 404 model_not_found, naming the routes', async () => {
    const error = await rejection(client.chat.completions.create({ model: 'gpt-unknown', messages: prose }));
    expect(error).toBeInstanceOf(OpenAI.NotFoundError);
    expect(error).toMatchObject({ status: 404, code: 'model_not_found', param: 'model' });
    expect((error as Error).message).toContain("'gpt-unknown'");
  });

  it('rejects wrong types with 400 naming the field', async () => {
    const wrongN = await rejection(
      client.chat.completions.create({
        model: 'sim-fast',
        messages: prose,
        n: 'two',
      } as unknown as ChatCompletionCreateParamsNonStreaming),
    );
    expect(wrongN).toBeInstanceOf(OpenAI.BadRequestError);
    expect(wrongN).toMatchObject({ status: 400, param: 'n', code: 'invalid_type' });

    const wrongContent = await rejection(
      client.chat.completions.create({
        model: 'sim-fast',
        messages: [{ role: 'user', content: 42 }],
      } as unknown as ChatCompletionCreateParamsNonStreaming),
    );
    expect(wrongContent).toMatchObject({ status: 400, param: 'messages[0].content', code: 'invalid_type' });

    const missing = await rejection(
      client.chat.completions.create({
        model: 'sim-fast',
      } as unknown as ChatCompletionCreateParamsNonStreaming),
    );
    expect(missing).toMatchObject({ status: 400, param: 'messages', code: 'missing_required_parameter' });
  });

  it('rejects a too-large body with 413, and missing or wrong keys with 401, then keeps serving', async () => {
    const key = 'sk-sluice-test-0123456789';
    const strict = await startGateway(
      {
        server: { bodyLimitBytes: 2048 },
        auth: { apiKeys: [{ name: 'app', key }] },
        providers: { sim: { type: 'sim' } },
        routes: { 'sim-fast': { targets: [{ provider: 'sim', model: 'sim-fast' }] } },
        logLevel: 'silent',
      },
      { simUrl: gw.sim.url },
    );
    onTestFinished(() => strict.close());
    const authed = new OpenAI({ baseURL: `${strict.url}/v1`, apiKey: key, maxRetries: 0 });

    const tooLarge = await rejection(
      authed.chat.completions.create({
        model: 'sim-fast',
        messages: [{ role: 'user', content: 'word '.repeat(1000) }],
      }),
    );
    expect(tooLarge).toBeInstanceOf(OpenAI.APIError);
    expect(tooLarge).toMatchObject({ status: 413, code: 'request_too_large', type: 'invalid_request_error' });

    const wrongKey = new OpenAI({
      baseURL: `${strict.url}/v1`,
      apiKey: 'sk-wrong-key-0000000000',
      maxRetries: 0,
    });
    const wrong = await rejection(wrongKey.chat.completions.create({ model: 'sim-fast', messages: prose }));
    expect(wrong).toBeInstanceOf(OpenAI.AuthenticationError);
    expect(wrong).toMatchObject({ status: 401, code: 'invalid_api_key', type: 'invalid_request_error' });
    expect((wrong as Error).message).not.toContain('sk-wrong-key');

    const missing = await post(strict.url, JSON.stringify({ model: 'sim-fast', messages: prose }));
    expect(missing.status).toBe(401);
    expect(await missing.json()).toEqual({
      error: {
        message: expect.stringContaining('Missing API key'),
        type: 'invalid_request_error',
        param: null,
        code: 'missing_api_key',
      },
    });
    const models = await fetch(`${strict.url}/v1/models`);
    expect(models.status).toBe(401);

    // The gateway keeps serving after each mistake.
    const ok = await authed.chat.completions.create({ model: 'sim-fast', messages: prose });
    expect(ok.choices[0]?.message.content?.length).toBeGreaterThan(0);
    expect(strict.logs.join('\n')).not.toContain(key);
  });

  it('keeps serving after bad requests', async () => {
    const answers = await Promise.all([
      post(gw.url, 'not json'),
      post(gw.url, JSON.stringify({ model: 'nope', messages: prose })),
      client.chat.completions.create({ model: 'sim-fast', messages: prose }),
    ]);
    expect(answers[0]).toMatchObject({ status: 400 });
    expect(answers[1]).toMatchObject({ status: 404 });
    const healthy = await fetch(`${gw.url}/healthz`);
    expect(await healthy.json()).toEqual({ status: 'ok' });
  });
});
