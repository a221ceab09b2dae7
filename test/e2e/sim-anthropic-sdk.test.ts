import Anthropic from '@anthropic-ai/sdk';
import type {
  MessageCreateParamsNonStreaming,
  MessageParam,
  ToolUseBlock,
} from '@anthropic-ai/sdk/resources/messages';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningSimulator, startSimServer } from '../../src/sim/server.js';
import { countTokens } from '../../src/sim/tokens.js';
import { expectValidInput, sseEventNames, textOf, tools, toolUses } from '../support/anthropic-fixtures.js';
import { rejection } from '../support/openai-fixtures.js';

// Quick models keep the file fast; no wrong answers or broken JSON, so exact checks hold.
const quick = { prefillBaseMs: 1, prefillMsPerToken: 0, decodeMsPerToken: 0.2, batchSlowdown: 0 };
const config = {
  models: [
    {
      name: 'sim-fast',
      ...quick,
      outputTokens: { mean: 40, spread: 0.25 },
      quality: { invalidJsonRate: 0, wrongAnswerRate: 0 },
    },
  ],
};

let sim: RunningSimulator;
let client: Anthropic;

beforeAll(async () => {
  sim = await startSimServer({ config });
  client = new Anthropic({ baseURL: sim.url, apiKey: 'test', maxRetries: 0 });
});

afterAll(async () => {
  await sim?.close();
});

type Params = Omit<MessageCreateParamsNonStreaming, 'model' | 'max_tokens'> & { max_tokens?: number };

function create(params: Params) {
  return client.messages.create({ model: 'sim-fast', max_tokens: 1024, ...params });
}

const prose: MessageParam[] = [{ role: 'user', content: 'Tell me how a gateway sheds load.' }];

describe('Anthropic SDK against the simulator: messages', () => {
  it('answers a known question in one text block with end_turn and honest usage', async () => {
    const message = await create({ messages: [{ role: 'user', content: 'What is 12 + 30?' }] });
    expect(message.type).toBe('message');
    expect(message.role).toBe('assistant');
    expect(message.id).toMatch(/^msg_/);
    expect(message.model).toBe('sim-fast');
    expect(message.content).toEqual([{ type: 'text', text: 'The answer is 42.' }]);
    expect(message.stop_reason).toBe('end_turn');
    expect(message.stop_sequence).toBeNull();
    expect(message.usage.input_tokens).toBeGreaterThan(0);
    expect(message.usage.output_tokens).toBe(countTokens('The answer is 42.'));
  });

  it('accepts a system prompt and counts it as input', async () => {
    const messages: MessageParam[] = [{ role: 'user', content: 'Repeat after me: permits before pressure' }];
    const plain = await create({ messages });
    const withSystem = await create({ system: 'You are a terse operator of an AI gateway.', messages });
    expect(textOf(withSystem.content)).toBe('permits before pressure');
    expect(withSystem.usage.input_tokens).toBeGreaterThan(plain.usage.input_tokens);
  });

  it('streams, through messages.stream(), a final message equal to the non-streaming one', async () => {
    const whole = await create({ messages: prose });
    const text = textOf(whole.content);
    expect(countTokens(text)).toBeGreaterThan(10);

    const stream = client.messages.stream({ model: 'sim-fast', max_tokens: 1024, messages: prose });
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

  it('sends stream events in the Messages API order, ping after the first content_block_start', async () => {
    const response = await client.messages
      .create({ model: 'sim-fast', max_tokens: 1024, messages: prose, stream: true })
      .asResponse();
    expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const names = sseEventNames(await response.text());
    expect(names.slice(0, 3)).toEqual(['message_start', 'content_block_start', 'ping']);
    expect(names.slice(-3)).toEqual(['content_block_stop', 'message_delta', 'message_stop']);
    const middle = names.slice(3, -3);
    expect(middle.length).toBeGreaterThan(1);
    expect(middle.every((name) => name === 'content_block_delta')).toBe(true);
  });

  it('yields the same event sequence, less pings, through the SDK stream with text deltas that join to the answer', async () => {
    const text = textOf((await create({ messages: prose })).content);
    const stream = await client.messages.create({
      model: 'sim-fast',
      max_tokens: 1024,
      messages: prose,
      stream: true,
    });
    const types: string[] = [];
    let streamed = '';
    let stopReason: string | null = null;
    for await (const event of stream) {
      types.push(event.type);
      if (event.type === 'content_block_delta' && event.delta.type === 'text_delta')
        streamed += event.delta.text;
      if (event.type === 'message_delta') stopReason = event.delta.stop_reason;
    }
    expect(types.slice(0, 2)).toEqual(['message_start', 'content_block_start']);
    expect(types.slice(-3)).toEqual(['content_block_stop', 'message_delta', 'message_stop']);
    expect(types.slice(2, -3).every((type) => type === 'content_block_delta')).toBe(true);
    expect(streamed).toBe(text);
    expect(stopReason).toBe('end_turn');
  });

  it('stops at a stop sequence with stop_reason stop_sequence and echoes the sequence', async () => {
    const full = textOf((await create({ messages: prose })).content);
    const stop = full
      .split(/[^a-z]+/i)
      .slice(3)
      .find((w) => w.length >= 5);
    expect(stop, `a long word after the third in: ${full}`).toBeDefined();

    const message = await create({ messages: prose, stop_sequences: [stop as string] });
    const text = textOf(message.content);
    expect(text).toBe(full.slice(0, full.indexOf(stop as string)));
    expect(text.length).toBeGreaterThan(0);
    expect(message.stop_reason).toBe('stop_sequence');
    expect(message.stop_sequence).toBe(stop);
  });

  it('stops at max_tokens with stop_reason max_tokens and exactly that many output tokens', async () => {
    const full = textOf((await create({ messages: prose })).content);
    const message = await create({ messages: prose, max_tokens: 7 });
    const text = textOf(message.content);
    expect(message.stop_reason).toBe('max_tokens');
    expect(message.stop_sequence).toBeNull();
    expect(message.usage.output_tokens).toBe(7);
    expect(countTokens(text)).toBe(7);
    expect(full.startsWith(text)).toBe(true);
  });

  it('rejects a request without max_tokens with a BadRequestError of type invalid_request_error', async () => {
    // Deliberately ill-typed: the SDK's types demand max_tokens, the server must too.
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
});

describe('Anthropic SDK against the simulator: tools', () => {
  const question: MessageParam = { role: 'user', content: 'Call get_weather and get_time for Lisbon.' };

  it('answers with tool_use blocks whose input validates against each input_schema, stop_reason tool_use', async () => {
    const message = await create({ messages: [question], tools });
    expect(message.stop_reason).toBe('tool_use');
    const calls = toolUses(message.content);
    expect(message.content).toHaveLength(calls.length);
    expect(calls.map((c) => c.name)).toEqual(['get_weather', 'get_time']);
    expect(new Set(calls.map((c) => c.id)).size).toBe(2);
    for (const call of calls) {
      expect(call.id).toMatch(/^toolu_[A-Za-z0-9]{24}$/);
      expectValidInput(call);
    }
  });

  it('streams tool_use blocks that the SDK assembles into the non-streaming ones', async () => {
    const whole = await create({ messages: [question], tools });
    const final = await client.messages
      .stream({ model: 'sim-fast', max_tokens: 1024, messages: [question], tools })
      .finalMessage();
    expect(final.stop_reason).toBe('tool_use');
    expect(toolUses(final.content).map(({ id, name, input }) => ({ id, name, input }))).toEqual(
      toolUses(whole.content).map(({ id, name, input }) => ({ id, name, input })),
    );
  });

  it('calls one tool when disable_parallel_tool_use is set', async () => {
    const message = await create({
      messages: [question],
      tools,
      tool_choice: { type: 'auto', disable_parallel_tool_use: true },
    });
    expect(toolUses(message.content).map((c) => c.name)).toEqual(['get_weather']);
  });

  it('answers in text once the last user turn carries the tool results', async () => {
    const first = await create({ messages: [question], tools });
    const calls = toolUses(first.content);
    expect(calls).toHaveLength(2);

    const message = await create({
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
    expect(message.stop_reason).toBe('end_turn');
    expect(toolUses(message.content)).toEqual([]);
    expect(textOf(message.content).length).toBeGreaterThan(0);
  });

  it("forces the tool a tool_choice of type 'tool' names, whatever the question names", async () => {
    const message = await create({
      messages: [{ role: 'user', content: 'Use get_weather for Lisbon.' }],
      tools,
      tool_choice: { type: 'tool', name: 'get_time' },
    });
    expect(message.stop_reason).toBe('tool_use');
    const calls = toolUses(message.content);
    expect(calls.map((c) => c.name)).toEqual(['get_time']);
    expectValidInput(calls[0] as ToolUseBlock);
  });
});
