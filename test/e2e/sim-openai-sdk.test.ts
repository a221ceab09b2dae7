import OpenAI from 'openai';
import type {
  ChatCompletionCreateParamsNonStreaming,
  ChatCompletionMessageFunctionToolCall,
} from 'openai/resources/chat/completions';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { type RunningSimulator, startSimServer } from '../../src/sim/server.js';
import { countTokens } from '../../src/sim/tokens.js';
import {
  ajv,
  expectValidArguments,
  functionCalls,
  norm,
  rejection,
  tools,
  weatherTool,
} from '../support/openai-fixtures.js';

// Quick models keep the file fast; no wrong answers or broken JSON, so exact checks hold.
const quick = { prefillBaseMs: 1, prefillMsPerToken: 0, decodeMsPerToken: 0.2, batchSlowdown: 0 };
const exact = { invalidJsonRate: 0, wrongAnswerRate: 0 };
const REASONING_TOKENS = 16;
const config = {
  models: [
    { name: 'sim-fast', ...quick, outputTokens: { mean: 40, spread: 0.25 }, quality: exact },
    { name: 'sim-smart', ...quick, outputTokens: { mean: 40, spread: 0.25 }, quality: exact },
    { name: 'sim-reasoner', ...quick, reasoningTokens: REASONING_TOKENS, quality: exact },
    { name: 'sim-embed', kind: 'embedding' as const, prefillBaseMs: 1, embeddingDimensions: 256 },
  ],
};

let sim: RunningSimulator;
let client: OpenAI;

beforeAll(async () => {
  sim = await startSimServer({ config });
  client = new OpenAI({ baseURL: `${sim.url}/v1`, apiKey: 'test', maxRetries: 0 });
});

afterAll(async () => {
  await sim?.close();
});

function complete(params: Omit<ChatCompletionCreateParamsNonStreaming, 'model'> & { model?: string }) {
  return client.chat.completions.create({ model: 'sim-fast', ...params });
}

const prose: ChatCompletionCreateParamsNonStreaming['messages'] = [
  { role: 'user', content: 'Tell me how a gateway sheds load.' },
];

describe('OpenAI SDK against the simulator: chat completions', () => {
  it('answers a known question with exact text, finish_reason stop and honest usage', async () => {
    const response = await complete({ messages: [{ role: 'user', content: 'What is 12 + 30?' }] });
    expect(response.object).toBe('chat.completion');
    expect(response.model).toBe('sim-fast');
    const [choice] = response.choices;
    expect(response.choices).toHaveLength(1);
    expect(choice?.message.role).toBe('assistant');
    expect(choice?.message.content).toBe('The answer is 42.');
    expect(choice?.finish_reason).toBe('stop');
    expect(response.usage?.prompt_tokens).toBeGreaterThan(0);
    expect(response.usage?.completion_tokens).toBe(countTokens('The answer is 42.'));
    expect(response.usage?.total_tokens).toBe(
      (response.usage?.prompt_tokens ?? 0) + (response.usage?.completion_tokens ?? 0),
    );
  });

  it('echoes the text after "Repeat after me:"', async () => {
    const response = await complete({
      messages: [{ role: 'user', content: 'Repeat after me: permits before pressure' }],
    });
    expect(response.choices[0]?.message.content).toBe('permits before pressure');
  });

  it('streams deltas that join to the non-streaming content, then a final usage chunk', async () => {
    const whole = await complete({ messages: prose });
    const content = whole.choices[0]?.message.content ?? '';
    expect(countTokens(content)).toBeGreaterThan(10);

    const stream = await client.chat.completions.create({
      model: 'sim-fast',
      messages: prose,
      stream: true,
      stream_options: { include_usage: true },
    });
    const chunks = [];
    for await (const chunk of stream) chunks.push(chunk);

    expect(chunks[0]?.choices[0]?.delta.role).toBe('assistant');
    const streamed = chunks.map((c) => c.choices[0]?.delta.content ?? '').join('');
    expect(streamed).toBe(content);
    expect(chunks.filter((c) => c.choices[0]?.delta.content).length).toBeGreaterThan(1);
    const finishes = chunks.flatMap((c) => c.choices.map((choice) => choice.finish_reason)).filter(Boolean);
    expect(finishes).toEqual(['stop']);

    const last = chunks.at(-1);
    expect(last?.choices).toEqual([]);
    expect(last?.usage?.completion_tokens).toBe(countTokens(content));
    expect(last?.usage?.prompt_tokens).toBe(whole.usage?.prompt_tokens);
    expect(chunks.slice(0, -1).every((c) => c.usage === null)).toBe(true);
  });

  it.each(['max_tokens', 'max_completion_tokens'] as const)(
    'truncates at %s with finish_reason length and exactly that many completion tokens',
    async (field) => {
      const full = (await complete({ messages: prose })).choices[0]?.message.content ?? '';
      const response = await complete({ messages: prose, [field]: 7 });
      const content = response.choices[0]?.message.content ?? '';
      expect(response.choices[0]?.finish_reason).toBe('length');
      expect(response.usage?.completion_tokens).toBe(7);
      expect(countTokens(content)).toBe(7);
      expect(full.startsWith(content)).toBe(true);
      expect(content.length).toBeLessThan(full.length);
    },
  );

  it('cuts the text just before a stop sequence and leaves the stop string out', async () => {
    const full = (await complete({ messages: prose })).choices[0]?.message.content ?? '';
    const words = full.split(/[^a-z]+/i);
    const stop = words.slice(3).find((w) => w.length >= 5);
    expect(stop, `a long word after the third in: ${full}`).toBeDefined();
    const at = full.indexOf(stop as string);

    const response = await complete({ messages: prose, stop: [stop as string] });
    const content = response.choices[0]?.message.content ?? '';
    expect(content).toBe(full.slice(0, at));
    expect(content).not.toContain(stop);
    expect(content.length).toBeGreaterThan(0);
    expect(response.choices[0]?.finish_reason).toBe('stop');
    expect(response.usage?.completion_tokens).toBe(countTokens(content));
  });

  it('returns n distinct choices, indexed in order, with usage over all of them', async () => {
    const response = await complete({ messages: prose, n: 3 });
    expect(response.choices.map((c) => c.index)).toEqual([0, 1, 2]);
    const contents = response.choices.map((c) => c.message.content ?? '');
    expect(new Set(contents).size).toBe(3);
    expect(response.usage?.completion_tokens).toBe(contents.reduce((sum, c) => sum + countTokens(c), 0));
  });

  it('reports hidden reasoning tokens for the reasoner', async () => {
    const response = await complete({
      model: 'sim-reasoner',
      messages: [{ role: 'user', content: 'What is 12 + 30?' }],
    });
    const content = response.choices[0]?.message.content ?? '';
    expect(content).toBe('The answer is 42.');
    expect(response.usage?.completion_tokens_details?.reasoning_tokens).toBe(REASONING_TOKENS);
    expect(response.usage?.completion_tokens).toBe(REASONING_TOKENS + countTokens(content));
  });
});

describe('OpenAI SDK against the simulator: tools', () => {
  it('calls the one tool named in the question with arguments that validate against its schema', async () => {
    const response = await complete({
      messages: [{ role: 'user', content: 'Use get_time for Lisbon.' }],
      tools,
    });
    const [choice] = response.choices;
    expect(choice?.finish_reason).toBe('tool_calls');
    expect(choice?.message.content).toBeNull();
    const calls = functionCalls(choice?.message.tool_calls);
    expect(calls).toHaveLength(1);
    expect(calls[0]?.id).toMatch(/^call_[A-Za-z0-9]{24}$/);
    expect(calls[0]?.function.name).toBe('get_time');
    expectValidArguments(calls[0] as ChatCompletionMessageFunctionToolCall);
  });

  it('calls every tool named in the question in parallel, each with its own id', async () => {
    const response = await complete({
      messages: [{ role: 'user', content: 'Call get_weather and get_time for Lisbon.' }],
      tools,
    });
    const calls = functionCalls(response.choices[0]?.message.tool_calls);
    expect(calls.map((c) => c.function.name)).toEqual(['get_weather', 'get_time']);
    expect(new Set(calls.map((c) => c.id)).size).toBe(2);
    for (const call of calls) expectValidArguments(call);
    expect(response.choices[0]?.finish_reason).toBe('tool_calls');
  });

  it('makes only one call when parallel_tool_calls is false', async () => {
    const response = await complete({
      messages: [{ role: 'user', content: 'Call get_weather and get_time for Lisbon.' }],
      tools,
      parallel_tool_calls: false,
    });
    const calls = functionCalls(response.choices[0]?.message.tool_calls);
    expect(calls.map((c) => c.function.name)).toEqual(['get_weather']);
  });

  it('streams parallel tool calls that the SDK accumulates into the non-streaming calls', async () => {
    const messages: ChatCompletionCreateParamsNonStreaming['messages'] = [
      { role: 'user', content: 'Call get_weather and get_time for Osaka.' },
    ];
    const whole = await complete({ messages, tools });
    const expected = functionCalls(whole.choices[0]?.message.tool_calls).map((c) => ({
      id: c.id,
      name: c.function.name,
      arguments: c.function.arguments,
    }));
    expect(expected).toHaveLength(2);

    const stream = client.chat.completions.stream({ model: 'sim-fast', messages, tools });
    const argumentDeltas: string[] = [];
    stream.on('chunk', (chunk) => {
      for (const call of chunk.choices[0]?.delta.tool_calls ?? []) {
        if (call.function?.arguments) argumentDeltas.push(call.function.arguments);
      }
    });
    const final = await stream.finalChatCompletion();

    expect(final.choices[0]?.finish_reason).toBe('tool_calls');
    const calls = functionCalls(final.choices[0]?.message.tool_calls);
    expect(calls.map((c) => ({ id: c.id, name: c.function.name, arguments: c.function.arguments }))).toEqual(
      expected,
    );
    for (const call of calls) expectValidArguments(call);
    // Arguments arrive in pieces, as a real model streams them.
    expect(argumentDeltas.length).toBeGreaterThan(calls.length);
  });

  it('answers in text with finish_reason stop once the conversation ends in tool results', async () => {
    const question = { role: 'user' as const, content: 'Call get_weather and get_time for Lisbon.' };
    const first = await complete({ messages: [question], tools });
    const assistant = first.choices[0]?.message;
    const calls = functionCalls(assistant?.tool_calls);
    expect(calls).toHaveLength(2);

    const response = await complete({
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
    const [choice] = response.choices;
    expect(choice?.finish_reason).toBe('stop');
    expect(choice?.message.tool_calls ?? []).toEqual([]);
    expect(choice?.message.content?.length).toBeGreaterThan(0);
  });

  it("answers in text when tool_choice is 'none', even if a tool is named", async () => {
    const response = await complete({
      messages: [{ role: 'user', content: 'Use get_weather for Lisbon.' }],
      tools,
      tool_choice: 'none',
    });
    expect(response.choices[0]?.finish_reason).toBe('stop');
    expect(response.choices[0]?.message.tool_calls ?? []).toEqual([]);
    expect(response.choices[0]?.message.content?.length).toBeGreaterThan(0);
  });

  it('calls exactly the tool a specific tool_choice names, whatever the question names', async () => {
    const response = await complete({
      messages: [{ role: 'user', content: 'Use get_weather for Lisbon.' }],
      tools,
      tool_choice: { type: 'function', function: { name: 'get_time' } },
    });
    const calls = functionCalls(response.choices[0]?.message.tool_calls);
    expect(calls.map((c) => c.function.name)).toEqual(['get_time']);
    expectValidArguments(calls[0] as ChatCompletionMessageFunctionToolCall);
  });

  it('rejects a tool_choice naming a tool that is not offered with a 400', async () => {
    const error = await rejection(
      complete({
        messages: [{ role: 'user', content: 'Hello' }],
        tools: [weatherTool],
        tool_choice: { type: 'function', function: { name: 'get_time' } },
      }),
    );
    expect(error).toBeInstanceOf(OpenAI.BadRequestError);
    expect(error).toMatchObject({ status: 400, param: 'tool_choice' });
  });
});

describe('OpenAI SDK against the simulator: structured output', () => {
  const citySchema = {
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

  it('returns JSON that validates against a json_schema response_format', async () => {
    const response = await complete({
      model: 'sim-smart',
      messages: [{ role: 'user', content: 'Describe Lisbon.' }],
      response_format: {
        type: 'json_schema',
        json_schema: { name: 'city', schema: citySchema, strict: true },
      },
    });
    const content = response.choices[0]?.message.content ?? '';
    const value: unknown = JSON.parse(content);
    const validate = ajv.compile(citySchema);
    expect(validate(value), ajv.errorsText(validate.errors)).toBe(true);
    expect(response.choices[0]?.finish_reason).toBe('stop');
    expect(response.usage?.completion_tokens).toBe(countTokens(content));
  });

  it('returns a JSON object for json_object', async () => {
    const response = await complete({
      messages: [{ role: 'user', content: 'Summarise the rollout as JSON.' }],
      response_format: { type: 'json_object' },
    });
    const value: unknown = JSON.parse(response.choices[0]?.message.content ?? '');
    expect(value).toBeTypeOf('object');
    expect(value).not.toBeNull();
    expect(Array.isArray(value)).toBe(false);
  });

  it("rejects json_object when no message mentions 'json', as OpenAI does", async () => {
    const error = await rejection(
      complete({
        messages: [{ role: 'user', content: 'Summarise the rollout.' }],
        response_format: { type: 'json_object' },
      }),
    );
    expect(error).toBeInstanceOf(OpenAI.BadRequestError);
    expect(error).toMatchObject({ status: 400, type: 'invalid_request_error' });
  });
});

describe('OpenAI SDK against the simulator: embeddings and models', () => {
  const inputs = ['the cache is warm', 'route the request to a cheaper model', 'the cache is warm'];

  it('returns unit vectors of the configured dimension as floats, identical for identical inputs', async () => {
    const response = await client.embeddings.create({
      model: 'sim-embed',
      input: inputs,
      encoding_format: 'float',
    });
    expect(response.data.map((d) => d.index)).toEqual([0, 1, 2]);
    for (const { embedding } of response.data) {
      expect(embedding).toHaveLength(256);
      expect(norm(embedding)).toBeCloseTo(1, 5);
    }
    expect(response.data[2]?.embedding).toEqual(response.data[0]?.embedding);
    expect(response.data[1]?.embedding).not.toEqual(response.data[0]?.embedding);
    expect(response.usage.prompt_tokens).toBe(inputs.reduce((sum, text) => sum + countTokens(text), 0));
  });

  it('returns the same vectors in base64, the SDK default, which the SDK decodes', async () => {
    const floats = await client.embeddings.create({
      model: 'sim-embed',
      input: inputs,
      encoding_format: 'float',
    });
    const decoded = await client.embeddings.create({ model: 'sim-embed', input: inputs });
    for (const [i, { embedding }] of decoded.data.entries()) {
      expect(embedding).toHaveLength(256);
      expect(norm(embedding)).toBeCloseTo(1, 5);
      expect(embedding).toEqual(floats.data[i]?.embedding);
    }
  });

  it('honours the dimensions parameter', async () => {
    const response = await client.embeddings.create({
      model: 'sim-embed',
      input: 'shed load',
      dimensions: 64,
    });
    const embedding = response.data[0]?.embedding ?? [];
    expect(embedding).toHaveLength(64);
    expect(norm(embedding)).toBeCloseTo(1, 5);
  });

  it('lists the configured models', async () => {
    const page = await client.models.list();
    expect(page.data.map((m) => m.id)).toEqual(['sim-fast', 'sim-smart', 'sim-reasoner', 'sim-embed']);
    expect(page.data.every((m) => m.object === 'model')).toBe(true);
  });

  it("serves an unknown model with the first chat model under the default unknownModels 'serve'", async () => {
    const response = await complete({
      model: 'gpt-nonexistent',
      messages: [{ role: 'user', content: 'What is 12 + 30?' }],
    });
    expect(response.model).toBe('gpt-nonexistent');
    expect(response.choices[0]?.message.content).toBe('The answer is 42.');
  });

  it("gives the SDK's NotFoundError (404) for an unknown model under unknownModels 'reject'", async () => {
    const strict = await startSimServer({ config: { ...config, unknownModels: 'reject' } });
    onTestFinished(() => strict.close());
    const strictClient = new OpenAI({ baseURL: `${strict.url}/v1`, apiKey: 'test', maxRetries: 0 });
    const error = await rejection(
      strictClient.chat.completions.create({
        model: 'gpt-nonexistent',
        messages: [{ role: 'user', content: 'Hello' }],
      }),
    );
    expect(error).toBeInstanceOf(OpenAI.NotFoundError);
    expect(error).toMatchObject({ status: 404, code: 'model_not_found', param: 'model' });
  });
});
