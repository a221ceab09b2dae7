import Anthropic from '@anthropic-ai/sdk';
import type { MessageCreateParamsNonStreaming, MessageParam } from '@anthropic-ai/sdk/resources/messages';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import type { SimConfigInput } from '../../src/sim/config.js';
import { type RunningSimulator, startSimServer } from '../../src/sim/server.js';
import { countTokens } from '../../src/sim/tokens.js';
import { expectValidInput, sseEventNames, textOf, tools, toolUses } from '../support/anthropic-fixtures.js';
import { type RunningGateway, startGateway } from '../support/gateway.js';
import {
  expectValidArguments,
  functionCalls,
  tools as openAITools,
  rejection,
} from '../support/openai-fixtures.js';

// Quick models keep the file fast; no wrong answers or broken JSON, so exact checks hold.
const quick = { prefillBaseMs: 1, prefillMsPerToken: 0, decodeMsPerToken: 0.2, batchSlowdown: 0 };
const exact = { invalidJsonRate: 0, wrongAnswerRate: 0 };
const simConfig: SimConfigInput = {
  models: [
    { name: 'sim-fast', ...quick, outputTokens: { mean: 40, spread: 0.3 }, quality: exact },
    { name: 'sim-smart', ...quick, outputTokens: { mean: 40, spread: 0.3 }, quality: exact },
  ],
};

let sim: RunningSimulator;
let gw: RunningGateway;
/** An Anthropic-style client of the gateway. */
let client: Anthropic;
/** An OpenAI-style client of the gateway. */
let openai: OpenAI;
/** References: each client style talking to the simulator directly. */
let directAnthropic: Anthropic;
let directOpenAI: OpenAI;

beforeAll(async () => {
  sim = await startSimServer({ config: simConfig });
  gw = await startGateway(
    {
      providers: {
        // OpenAI wire format towards the simulator.
        sim: { type: 'sim', baseUrl: sim.url },
        // Anthropic wire format towards the same simulator.
        claude: { type: 'anthropic', apiKey: 'test-key-not-secret', baseUrl: sim.url },
      },
      routes: {
        'sim-fast': { targets: [{ provider: 'sim', model: 'sim-fast' }] },
        'claude-fast': { targets: [{ provider: 'claude', model: 'sim-fast' }] },
      },
      events: { sink: 'none' },
      logLevel: 'silent',
    },
    { simUrl: sim.url },
  );
  client = new Anthropic({ baseURL: gw.url, apiKey: 'test', maxRetries: 0 });
  openai = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: 'test', maxRetries: 0 });
  directAnthropic = new Anthropic({ baseURL: sim.url, apiKey: 'test', maxRetries: 0 });
  directOpenAI = new OpenAI({ baseURL: `${sim.url}/v1`, apiKey: 'test', maxRetries: 0 });
});

afterAll(async () => {
  await gw?.close();
  await sim?.close();
});

type Params = Omit<MessageCreateParamsNonStreaming, 'model' | 'max_tokens'> & {
  model?: string;
  max_tokens?: number;
};

function create(params: Params, via: Anthropic = client) {
  return via.messages.create({ model: 'sim-fast', max_tokens: 1024, ...params });
}

const prose: MessageParam[] = [{ role: 'user', content: 'Tell me how a gateway sheds load.' }];
const question: MessageParam = { role: 'user', content: 'Call get_weather and get_time for Lisbon.' };

// Both provider styles behind the Anthropic endpoint: the OpenAI-style sim and the Anthropic-style one.
describe.each([
  { route: 'sim-fast', provider: 'an OpenAI-style provider', target: 'sim/sim-fast' },
  { route: 'claude-fast', provider: 'an Anthropic-style provider', target: 'claude/sim-fast' },
])('Anthropic SDK through the gateway to $provider', ({ route, target }) => {
  it('answers with the text the simulator gives for the same request, with usage and headers', async () => {
    const expected = await create({ messages: prose }, directAnthropic);
    const { data, response } = await client.messages
      .create({ model: route, max_tokens: 1024, messages: prose })
      .withResponse();
    expect(data.type).toBe('message');
    expect(data.role).toBe('assistant');
    expect(data.id).toMatch(/^msg_/);
    expect(data.model).toBe(route);
    expect(data.content).toEqual([{ type: 'text', text: textOf(expected.content) }]);
    expect(data.stop_reason).toBe('end_turn');
    expect(data.stop_sequence).toBeNull();
    expect(data.usage.input_tokens).toBe(expected.usage.input_tokens);
    expect(data.usage.output_tokens).toBe(expected.usage.output_tokens);
    expect(response.headers.get('x-sluice-route')).toBe(route);
    expect(response.headers.get('x-sluice-target')).toBe(target);
    expect(response.headers.get('x-sluice-attempts')).toBe('1');
  });

  it('streams, through messages.stream(), a final message equal to the non-streaming one', async () => {
    const whole = await create({ model: route, messages: prose });
    const text = textOf(whole.content);
    expect(countTokens(text)).toBeGreaterThan(10);

    const stream = client.messages.stream({ model: route, max_tokens: 1024, messages: prose });
    const deltas: string[] = [];
    stream.on('text', (delta) => deltas.push(delta));
    const final = await stream.finalMessage();
    expect(textOf(final.content)).toBe(text);
    expect(deltas.length).toBeGreaterThan(1);
    expect(deltas.join('')).toBe(text);
    expect(final.stop_reason).toBe('end_turn');
    expect(final.usage.output_tokens).toBe(whole.usage.output_tokens);
    expect(final.usage.input_tokens).toBe(whole.usage.input_tokens);
  });

  it('sends the Messages event sequence, ending with message_delta and message_stop', async () => {
    const response = await client.messages
      .create({ model: route, max_tokens: 1024, messages: prose, stream: true })
      .asResponse();
    expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/);
    expect(response.headers.get('x-sluice-target')).toBe(target);
    const names = sseEventNames(await response.text());
    expect(names[0]).toBe('message_start');
    expect(names.slice(-3)).toEqual(['content_block_stop', 'message_delta', 'message_stop']);
    expect(names.filter((n) => n === 'message_stop')).toHaveLength(1);
    expect(names.filter((n) => n === 'content_block_start')).toHaveLength(1);
    expect(names.filter((n) => n === 'content_block_delta').length).toBeGreaterThan(1);
  });

  it('passes the system prompt on', async () => {
    const messages: MessageParam[] = [{ role: 'user', content: 'Repeat after me: permits before pressure' }];
    const system = 'You are a terse operator of an AI gateway.';
    const plain = await create({ model: route, messages });
    const withSystem = await create({ model: route, system, messages });
    expect(textOf(withSystem.content)).toBe('permits before pressure');
    expect(withSystem.usage.input_tokens).toBeGreaterThan(plain.usage.input_tokens);
    const expected = await create({ system, messages }, directAnthropic);
    expect(withSystem.usage.input_tokens).toBe(expected.usage.input_tokens);
  });

  it('stops at max_tokens with stop_reason max_tokens, streaming or not', async () => {
    const full = textOf((await create({ model: route, messages: prose })).content);
    const message = await create({ model: route, messages: prose, max_tokens: 7 });
    expect(message.stop_reason).toBe('max_tokens');
    expect(message.usage.output_tokens).toBe(7);
    expect(full.startsWith(textOf(message.content))).toBe(true);
    const streamed = await client.messages
      .stream({ model: route, max_tokens: 7, messages: prose })
      .finalMessage();
    expect(streamed.stop_reason).toBe('max_tokens');
    expect(textOf(streamed.content)).toBe(textOf(message.content));
  });

  it('cuts the text before a stop sequence', async () => {
    const full = textOf((await create({ model: route, messages: prose })).content);
    const stop = full
      .split(/[^a-z]+/i)
      .slice(3)
      .find((w) => w.length >= 5);
    expect(stop, `a long word after the third in: ${full}`).toBeDefined();
    const message = await create({ model: route, messages: prose, stop_sequences: [stop as string] });
    const text = textOf(message.content);
    expect(text).toBe(full.slice(0, full.indexOf(stop as string)));
    expect(text.length).toBeGreaterThan(0);
    // The matched sequence rides through the canonical shape in vLLM's `stop_reason` field,
    // from either provider style.
    expect(message.stop_reason).toBe('stop_sequence');
    expect(message.stop_sequence).toBe(stop);
  });

  it('returns tool_use blocks that validate, then answers the tool_result turn in text', async () => {
    const first = await create({ model: route, messages: [question], tools });
    expect(first.stop_reason).toBe('tool_use');
    const calls = toolUses(first.content);
    expect(calls.map((c) => c.name)).toEqual(['get_weather', 'get_time']);
    expect(new Set(calls.map((c) => c.id)).size).toBe(2);
    for (const call of calls) expectValidInput(call);

    const answer = await create({
      model: route,
      messages: [
        question,
        { role: 'assistant', content: first.content },
        {
          role: 'user',
          content: calls.map((call) => ({
            type: 'tool_result' as const,
            tool_use_id: call.id,
            content: JSON.stringify({ ok: true, tool: call.name }),
          })),
        },
      ],
      tools,
    });
    expect(answer.stop_reason).toBe('end_turn');
    expect(toolUses(answer.content)).toEqual([]);
    expect(textOf(answer.content)).toMatch(/^Based on the tool results:/);
  });

  it('streams tool_use blocks that the SDK assembles into the non-streaming ones', async () => {
    const whole = await create({ model: route, messages: [question], tools });
    const final = await client.messages
      .stream({ model: route, max_tokens: 1024, messages: [question], tools })
      .finalMessage();
    expect(final.stop_reason).toBe('tool_use');
    expect(toolUses(final.content).map(({ id, name, input }) => ({ id, name, input }))).toEqual(
      toolUses(whole.content).map(({ id, name, input }) => ({ id, name, input })),
    );
  });

  it('honours tool_choice: a named tool, and disable_parallel_tool_use', async () => {
    const named = await create({
      model: route,
      messages: [{ role: 'user', content: 'Use get_weather for Lisbon.' }],
      tools,
      tool_choice: { type: 'tool', name: 'get_time' },
    });
    expect(toolUses(named.content).map((c) => c.name)).toEqual(['get_time']);
    const single = await create({
      model: route,
      messages: [question],
      tools,
      tool_choice: { type: 'auto', disable_parallel_tool_use: true },
    });
    expect(toolUses(single.content).map((c) => c.name)).toEqual(['get_weather']);
  });
});

describe('OpenAI SDK through the gateway to an Anthropic-style provider', () => {
  const messages = [{ role: 'user' as const, content: 'Tell me how a gateway sheds load.' }];

  it('answers with the simulator’s text, usage and the target header', async () => {
    const expected = await directOpenAI.chat.completions.create({ model: 'sim-fast', messages });
    const { data, response } = await openai.chat.completions
      .create({ model: 'claude-fast', messages })
      .withResponse();
    expect(data.object).toBe('chat.completion');
    expect(data.choices[0]?.message.content).toBe(expected.choices[0]?.message.content);
    expect(data.choices[0]?.finish_reason).toBe('stop');
    expect(data.usage?.prompt_tokens).toBe(expected.usage?.prompt_tokens);
    expect(data.usage?.completion_tokens).toBe(expected.usage?.completion_tokens);
    expect(response.headers.get('x-sluice-target')).toBe('claude/sim-fast');
  });

  it('streams the same text, with a usage chunk only when asked', async () => {
    const expected = await directOpenAI.chat.completions.create({ model: 'sim-fast', messages });
    const withUsage = [];
    for await (const chunk of await openai.chat.completions.create({
      model: 'claude-fast',
      messages,
      stream: true,
      stream_options: { include_usage: true },
    }))
      withUsage.push(chunk);
    expect(withUsage.map((c) => c.choices[0]?.delta.content ?? '').join('')).toBe(
      expected.choices[0]?.message.content,
    );
    expect(withUsage.at(-1)?.choices).toEqual([]);
    expect(withUsage.at(-1)?.usage?.completion_tokens).toBe(expected.usage?.completion_tokens);

    const without = [];
    for await (const chunk of await openai.chat.completions.create({
      model: 'claude-fast',
      messages,
      stream: true,
    }))
      without.push(chunk);
    expect(without.map((c) => c.choices[0]?.delta.content ?? '').join('')).toBe(
      expected.choices[0]?.message.content,
    );
    expect(without.every((c) => c.choices.length === 1 && c.usage == null)).toBe(true);
  });

  it('returns parallel tool calls that validate, then answers the tool results in text', async () => {
    const ask = { role: 'user' as const, content: 'Call get_weather and get_time for Lisbon.' };
    const first = await openai.chat.completions.create({
      model: 'claude-fast',
      messages: [ask],
      tools: openAITools,
    });
    expect(first.choices[0]?.finish_reason).toBe('tool_calls');
    const calls = functionCalls(first.choices[0]?.message.tool_calls);
    expect(calls.map((c) => c.function.name)).toEqual(['get_weather', 'get_time']);
    for (const call of calls) expectValidArguments(call);

    const stream = openai.chat.completions.stream({
      model: 'claude-fast',
      messages: [ask],
      tools: openAITools,
    });
    const streamed = await stream.finalChatCompletion();
    expect(streamed.choices[0]?.finish_reason).toBe('tool_calls');
    const streamedCalls = functionCalls(streamed.choices[0]?.message.tool_calls);
    expect(streamedCalls.map((c) => [c.id, c.function.name, JSON.parse(c.function.arguments)])).toEqual(
      calls.map((c) => [c.id, c.function.name, JSON.parse(c.function.arguments)]),
    );

    const answer = await openai.chat.completions.create({
      model: 'claude-fast',
      messages: [
        ask,
        { role: 'assistant', content: null, tool_calls: calls },
        ...calls.map((call) => ({ role: 'tool' as const, tool_call_id: call.id, content: '{"ok":true}' })),
      ],
      tools: openAITools,
    });
    expect(answer.choices[0]?.finish_reason).toBe('stop');
    expect(answer.choices[0]?.message.content).toMatch(/^Based on the tool results:/);
  });

  it('maps tool_choice required and a named function', async () => {
    const named = await openai.chat.completions.create({
      model: 'claude-fast',
      messages: [{ role: 'user', content: 'Use get_weather for Lisbon.' }],
      tools: openAITools,
      tool_choice: { type: 'function', function: { name: 'get_time' } },
    });
    expect(functionCalls(named.choices[0]?.message.tool_calls).map((c) => c.function.name)).toEqual([
      'get_time',
    ]);
    const required = await openai.chat.completions.create({
      model: 'claude-fast',
      messages: [{ role: 'user', content: 'Hello there.' }],
      tools: openAITools,
      tool_choice: 'required',
    });
    expect(functionCalls(required.choices[0]?.message.tool_calls).length).toBeGreaterThan(0);
  });
});

describe('Anthropic SDK through the gateway: errors', () => {
  const post = (url: string, body: string, headers: Record<string, string> = {}) =>
    fetch(`${url}/v1/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body,
    });

  it('gives a NotFoundError in the Anthropic error shape for an unknown model', async () => {
    const error = await rejection(create({ model: 'claude-unknown', messages: prose }));
    expect(error).toBeInstanceOf(Anthropic.NotFoundError);
    expect(error).toMatchObject({
      status: 404,
      type: 'not_found_error',
      error: { type: 'error', error: { type: 'not_found_error' } },
      apiMessage: expect.stringContaining("'claude-unknown'"),
    });
    expect(
      (error as InstanceType<typeof Anthropic.APIError>).headers?.get('x-sluice-request-id'),
    ).toBeTruthy();
  });

  it('rejects a request without max_tokens with 400 invalid_request_error naming max_tokens', async () => {
    const missing = { model: 'sim-fast', messages: prose } as unknown as MessageCreateParamsNonStreaming;
    const error = await rejection(client.messages.create(missing));
    expect(error).toBeInstanceOf(Anthropic.BadRequestError);
    expect(error).toMatchObject({
      status: 400,
      type: 'invalid_request_error',
      error: { type: 'error', error: { type: 'invalid_request_error' } },
      apiMessage: expect.stringContaining('max_tokens'),
    });
  });

  it('rejects wrong types and malformed JSON with precise 400s in the Anthropic shape', async () => {
    const wrongType = await rejection(
      create({ messages: prose, max_tokens: 'many' } as unknown as MessageCreateParamsNonStreaming),
    );
    expect(wrongType).toBeInstanceOf(Anthropic.BadRequestError);
    expect(wrongType).toMatchObject({
      status: 400,
      apiMessage: "Invalid type for 'max_tokens': expected a number, but got a string instead.",
    });

    const wrongRole = await rejection(
      create({ messages: [{ role: 'robot', content: 'hi' }] } as unknown as Params),
    );
    expect(wrongRole).toMatchObject({ status: 400, apiMessage: expect.stringContaining('messages[0].role') });

    const malformed = await post(gw.url, '{"model": "sim-fast", "max_tokens": 5, "messages": [');
    expect(malformed.status).toBe(400);
    expect(await malformed.json()).toEqual({
      type: 'error',
      error: {
        type: 'invalid_request_error',
        message: expect.stringMatching(/could not parse the JSON body/),
      },
    });
  });

  it('rejects a too-large body with 413 and missing or wrong keys with 401 on both endpoints, then keeps serving', async () => {
    const key = 'sk-sluice-test-0123456789';
    const strict = await startGateway(
      {
        server: { bodyLimitBytes: 2048 },
        auth: { apiKeys: [{ name: 'app', key }] },
        providers: { sim: { type: 'sim', baseUrl: sim.url } },
        routes: { 'sim-fast': { targets: [{ provider: 'sim', model: 'sim-fast' }] } },
        events: { sink: 'none' },
        logLevel: 'silent',
      },
      { simUrl: sim.url },
    );
    onTestFinished(() => strict.close());
    const authed = new Anthropic({ baseURL: strict.url, apiKey: key, maxRetries: 0 });

    const tooLarge = await rejection(
      create({ messages: [{ role: 'user', content: 'word '.repeat(1000) }] }, authed),
    );
    expect(tooLarge).toBeInstanceOf(Anthropic.APIError);
    expect(tooLarge).toMatchObject({
      status: 413,
      error: { type: 'error', error: { type: 'request_too_large' } },
    });

    const wrongKey = new Anthropic({ baseURL: strict.url, apiKey: 'sk-wrong-key-0000000000', maxRetries: 0 });
    const wrong = await rejection(create({ messages: prose }, wrongKey));
    expect(wrong).toBeInstanceOf(Anthropic.AuthenticationError);
    expect(wrong).toMatchObject({
      status: 401,
      error: {
        type: 'error',
        error: { type: 'authentication_error', message: expect.stringContaining('Invalid API key') },
      },
    });
    expect((wrong as Error).message).not.toContain('sk-wrong-key');

    const body = JSON.stringify({ model: 'sim-fast', max_tokens: 16, messages: prose });
    const missingAnthropic = await post(strict.url, body);
    expect(missingAnthropic.status).toBe(401);
    expect(await missingAnthropic.json()).toEqual({
      type: 'error',
      error: { type: 'authentication_error', message: expect.stringContaining('Missing API key') },
    });
    const missingOpenAI = await fetch(`${strict.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
    });
    expect(missingOpenAI.status).toBe(401);
    expect(await missingOpenAI.json()).toEqual({
      error: {
        message: expect.stringContaining('Missing API key'),
        type: 'invalid_request_error',
        param: null,
        code: 'missing_api_key',
      },
    });
    const wrongOpenAI = new OpenAI({
      baseURL: `${strict.url}/v1`,
      apiKey: 'sk-wrong-key-0000000000',
      maxRetries: 0,
    });
    const wrongOpenAIError = await rejection(
      wrongOpenAI.chat.completions.create({ model: 'sim-fast', messages: [{ role: 'user', content: 'Hi' }] }),
    );
    expect(wrongOpenAIError).toBeInstanceOf(OpenAI.AuthenticationError);
    expect(wrongOpenAIError).toMatchObject({ status: 401, code: 'invalid_api_key' });

    // The gateway keeps serving, and never writes the key down.
    const ok = await create({ messages: prose }, authed);
    expect(textOf(ok.content).length).toBeGreaterThan(0);
    expect(strict.logs.join('\n')).not.toContain(key);
  });

  it('keeps serving after bad requests', async () => {
    const [malformed, unknown, ok] = await Promise.all([
      post(gw.url, 'not json'),
      post(gw.url, JSON.stringify({ model: 'nope', max_tokens: 5, messages: prose })),
      create({ messages: prose }),
    ]);
    expect(malformed.status).toBe(400);
    expect(unknown.status).toBe(404);
    expect(ok.stop_reason).toBe('end_turn');
  });
});
