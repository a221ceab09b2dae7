import { Ajv2020 } from 'ajv/dist/2020.js';
import OpenAI from 'openai';
import type {
  ChatCompletion,
  ChatCompletionCreateParamsNonStreaming,
  ChatCompletionFunctionTool,
  ChatCompletionMessageFunctionToolCall,
  ChatCompletionMessageParam,
} from 'openai/resources/chat/completions';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { type RunningSimulator, startSimServer } from '../../src/sim/server.js';
import { countTokens } from '../../src/sim/tokens.js';
import { type RunningGateway, startGateway } from '../support/gateway.js';

/*
 * Each provider adapter against the simulator speaking that provider's wire, through the real
 * gateway: the client speaks OpenAI to Sluice, Sluice speaks OpenAI, Azure OpenAI, Anthropic or
 * Gemini to the simulator. The simulator's answers are deterministic, so every wire must give
 * what the simulator's own OpenAI endpoint gives for the same request.
 */

const quick = { prefillBaseMs: 1, prefillMsPerToken: 0, decodeMsPerToken: 0.2, batchSlowdown: 0 };
const exact = { invalidJsonRate: 0, wrongAnswerRate: 0 };
const REASONING_TOKENS = 16;
const simConfig = {
  models: [
    { name: 'sim-fast', ...quick, outputTokens: { mean: 40, spread: 0.25 }, quality: exact },
    { name: 'sim-reasoner', ...quick, reasoningTokens: REASONING_TOKENS, quality: exact },
    { name: 'sim-flaky', ...quick, quality: exact },
    { name: 'sim-embed', kind: 'embedding' as const, prefillBaseMs: 1, embeddingDimensions: 256 },
  ],
};

interface Wire {
  /** The provider's key in the gateway config, and the name of its chat route. */
  provider: string;
  /** The target models; Azure's are names that its deployments map to simulator models. */
  chat: string;
  reasoner: string;
  embed?: string;
  /** The wire has a JSON-schema output mode (Anthropic's is emulated with an instruction). */
  json: boolean;
  /** The wire reports reasoning tokens apart (Anthropic counts them in output_tokens only). */
  reasoningDetails: boolean;
  /** The wire reports embedding token counts (Gemini's batchEmbedContents does not). */
  embeddingUsage: boolean;
}

const wires: Wire[] = [
  {
    provider: 'openai',
    chat: 'sim-fast',
    reasoner: 'sim-reasoner',
    embed: 'sim-embed',
    json: true,
    reasoningDetails: true,
    embeddingUsage: true,
  },
  {
    provider: 'compatible',
    chat: 'sim-fast',
    reasoner: 'sim-reasoner',
    embed: 'sim-embed',
    json: true,
    reasoningDetails: true,
    embeddingUsage: true,
  },
  {
    provider: 'azure',
    chat: 'gpt-4o-mini',
    reasoner: 'o4-mini',
    embed: 'text-embedding-3-small',
    json: true,
    reasoningDetails: true,
    embeddingUsage: true,
  },
  {
    provider: 'anthropic',
    chat: 'sim-fast',
    reasoner: 'sim-reasoner',
    json: false,
    reasoningDetails: false,
    embeddingUsage: false,
  },
  {
    provider: 'gemini',
    chat: 'sim-fast',
    reasoner: 'sim-reasoner',
    embed: 'sim-embed',
    json: true,
    reasoningDetails: true,
    embeddingUsage: false,
  },
];

const ajv = new Ajv2020({ allErrors: true, strict: false });

const weatherTool: ChatCompletionFunctionTool = {
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'The current weather in a city.',
    parameters: {
      type: 'object',
      properties: { city: { type: 'string' }, unit: { type: 'string', enum: ['celsius', 'fahrenheit'] } },
      required: ['city', 'unit'],
      additionalProperties: false,
    },
  },
};
const timeTool: ChatCompletionFunctionTool = {
  type: 'function',
  function: {
    name: 'get_time',
    description: 'The local time in a time zone.',
    parameters: {
      type: 'object',
      properties: { timezone: { type: 'string' }, hour24: { type: 'boolean' } },
      required: ['timezone', 'hour24'],
      additionalProperties: false,
    },
  },
};
const tools = [weatherTool, timeTool];
const validators = new Map(tools.map((t) => [t.function.name, ajv.compile(t.function.parameters ?? {})]));

const citySchema = {
  type: 'object',
  properties: {
    city: { type: 'string' },
    population: { type: 'integer', minimum: 0, maximum: 40_000_000 },
    tags: { type: 'array', items: { type: 'string' }, minItems: 1, maxItems: 3 },
  },
  required: ['city', 'population', 'tags'],
  additionalProperties: false,
};

const conversation: ChatCompletionMessageParam[] = [
  { role: 'system', content: 'You are terse.' },
  { role: 'user', content: 'Tell me how a gateway sheds load.' },
];
const toolQuestion: ChatCompletionMessageParam = {
  role: 'user',
  content: 'Call get_weather and get_time for Lisbon.',
};

let sim: RunningSimulator;
let gateway: RunningGateway;
/** The client, speaking OpenAI to the gateway. */
let client: OpenAI;
/** The simulator's own OpenAI endpoint: what every wire must agree with. */
let reference: OpenAI;

beforeAll(async () => {
  sim = await startSimServer({ config: simConfig });
  const route = (provider: string, model: string) => ({
    targets: [{ provider, model }],
    // Upstream errors surface at once: no retries to wait through.
    retries: { attempts: 0 },
  });
  const routes: Record<string, ReturnType<typeof route>> = {};
  for (const wire of wires) {
    routes[wire.provider] = route(wire.provider, wire.chat);
    routes[`${wire.provider}-reasoner`] = route(wire.provider, wire.reasoner);
    routes[`${wire.provider}-flaky`] = route(wire.provider, 'sim-flaky');
    if (wire.embed) routes[`${wire.provider}-embed`] = route(wire.provider, wire.embed);
  }
  gateway = await startGateway({
    providers: {
      openai: { type: 'openai', apiKey: 'sk-not-a-secret-key', baseUrl: `${sim.url}/v1` },
      compatible: { type: 'openai-compatible', baseUrl: `${sim.url}/v1` },
      azure: {
        type: 'azure-openai',
        endpoint: sim.url,
        apiKey: 'azure-not-a-secret-key',
        deployments: {
          'gpt-4o-mini': 'sim-fast',
          'o4-mini': 'sim-reasoner',
          'text-embedding-3-small': 'sim-embed',
        },
      },
      anthropic: { type: 'anthropic', apiKey: 'x-not-a-secret-key', baseUrl: sim.url },
      gemini: { type: 'gemini', apiKey: 'AIza-not-a-secret-key', baseUrl: sim.url },
    },
    routes,
    events: { sink: 'none' },
    logLevel: 'silent',
  });
  client = new OpenAI({ baseURL: `${gateway.url}/v1`, apiKey: 'unused', maxRetries: 0 });
  reference = new OpenAI({ baseURL: `${sim.url}/v1`, apiKey: 'unused', maxRetries: 0 });
});

afterAll(async () => {
  await gateway?.close();
  await sim?.close();
});

type Params = Omit<ChatCompletionCreateParamsNonStreaming, 'model'>;

function functionCalls(completion: ChatCompletion): ChatCompletionMessageFunctionToolCall[] {
  return (completion.choices[0]?.message.tool_calls ?? []).filter(
    (c): c is ChatCompletionMessageFunctionToolCall => c.type === 'function',
  );
}

const nameAndArguments = (calls: ChatCompletionMessageFunctionToolCall[]) =>
  calls.map((c) => ({ name: c.function.name, arguments: c.function.arguments }));

/** The error a request fails with; fails the test if it succeeds. */
async function rejection(request: Promise<unknown>): Promise<InstanceType<typeof OpenAI.APIError>> {
  return request.then(
    (value) => expect.unreachable(`expected an error, got ${JSON.stringify(value)}`),
    (error: unknown) => {
      expect(error).toBeInstanceOf(OpenAI.APIError);
      return error as InstanceType<typeof OpenAI.APIError>;
    },
  );
}

async function withFault(status: 429 | 500 | 503): Promise<void> {
  const response = await fetch(`${sim.url}/sim/faults`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ kind: 'error', status, models: ['sim-flaky'] }),
  });
  expect(response.status).toBe(201);
  const { ids } = (await response.json()) as { ids: string[] };
  onTestFinished(async () => {
    await fetch(`${sim.url}/sim/faults/${ids[0]}`, { method: 'DELETE' });
  });
}

describe.each(wires)('the $provider adapter against the simulator, through the gateway', (wire) => {
  const chat = (params: Params, route = wire.provider) =>
    client.chat.completions.create({ model: route, ...params });
  const expected = (params: Params, model = 'sim-fast') =>
    reference.chat.completions.create({ model, ...params });

  it('answers with the text, finish reason and token counts of the simulator’s OpenAI endpoint', async () => {
    const [response, want] = await Promise.all([
      chat({ messages: conversation }),
      expected({ messages: conversation }),
    ]);
    expect(response.choices[0]?.message.content).toBe(want.choices[0]?.message.content);
    expect(response.choices[0]?.finish_reason).toBe('stop');
    expect(response.usage?.prompt_tokens).toBe(want.usage?.prompt_tokens);
    expect(response.usage?.completion_tokens).toBe(want.usage?.completion_tokens);
    expect(response.usage?.total_tokens).toBe(want.usage?.total_tokens);
  });

  it('streams the same text in several deltas, one finish reason, then the usage', async () => {
    const want = await expected({ messages: conversation });
    const stream = await client.chat.completions.create({
      model: wire.provider,
      messages: conversation,
      stream: true,
      stream_options: { include_usage: true },
    });
    const chunks = [];
    for await (const chunk of stream) chunks.push(chunk);
    const deltas = chunks.map((c) => c.choices[0]?.delta.content ?? '');
    expect(deltas.join('')).toBe(want.choices[0]?.message.content);
    expect(deltas.filter(Boolean).length).toBeGreaterThan(1);
    const finishes = chunks.flatMap((c) => c.choices.map((choice) => choice.finish_reason)).filter(Boolean);
    expect(finishes).toEqual(['stop']);
    const usage = chunks.at(-1)?.usage;
    expect(chunks.at(-1)?.choices).toEqual([]);
    expect(usage?.prompt_tokens).toBe(want.usage?.prompt_tokens);
    expect(usage?.completion_tokens).toBe(want.usage?.completion_tokens);
  });

  it('counts hidden reasoning in the completion tokens, and apart where the wire says so', async () => {
    const messages: ChatCompletionMessageParam[] = [{ role: 'user', content: 'What is 12 + 30?' }];
    const response = await chat({ messages }, `${wire.provider}-reasoner`);
    expect(response.choices[0]?.message.content).toBe('The answer is 42.');
    expect(response.usage?.completion_tokens).toBe(REASONING_TOKENS + countTokens('The answer is 42.'));
    expect(response.usage?.completion_tokens_details?.reasoning_tokens).toBe(
      wire.reasoningDetails ? REASONING_TOKENS : undefined,
    );
  });

  it('returns parallel tool calls with the names and arguments the simulator chose', async () => {
    const params: Params = { messages: [toolQuestion], tools };
    const [response, want] = await Promise.all([chat(params), expected(params)]);
    expect(response.choices[0]?.finish_reason).toBe('tool_calls');
    const calls = functionCalls(response);
    expect(calls.map((c) => c.function.name)).toEqual(['get_weather', 'get_time']);
    expect(nameAndArguments(calls)).toEqual(nameAndArguments(functionCalls(want)));
    expect(new Set(calls.map((c) => c.id)).size).toBe(2);
    for (const call of calls) {
      const validate = validators.get(call.function.name);
      expect(validate?.(JSON.parse(call.function.arguments)), call.function.arguments).toBe(true);
    }
  });

  it('streams the same tool calls, which the SDK accumulates', async () => {
    const params: Params = { messages: [toolQuestion], tools };
    const want = await chat(params);
    const final = await client.chat.completions
      .stream({ model: wire.provider, messages: [toolQuestion], tools })
      .finalChatCompletion();
    expect(final.choices[0]?.finish_reason).toBe('tool_calls');
    expect(nameAndArguments(functionCalls(final))).toEqual(nameAndArguments(functionCalls(want)));
  });

  it('sends tool results back, and gets a text answer to them', async () => {
    const first = await chat({ messages: [toolQuestion], tools });
    const calls = functionCalls(first);
    expect(calls).toHaveLength(2);
    const response = await chat({
      messages: [
        toolQuestion,
        // As received: provider extras (Gemini's thought signature) go back too.
        first.choices[0]?.message as ChatCompletionMessageParam,
        ...calls.map((call) => ({
          role: 'tool' as const,
          tool_call_id: call.id,
          content: JSON.stringify({ ok: true, tool: call.function.name }),
        })),
      ],
      tools,
    });
    expect(response.choices[0]?.finish_reason).toBe('stop');
    expect(response.choices[0]?.message.tool_calls ?? []).toEqual([]);
    expect(response.choices[0]?.message.content).toMatch(/^Based on the tool results: /);
  });

  it.runIf(wire.json)('returns the JSON-schema output of the simulator’s OpenAI endpoint', async () => {
    const params: Params = {
      messages: [{ role: 'user', content: 'Describe Lisbon.' }],
      response_format: {
        type: 'json_schema',
        json_schema: { name: 'city', schema: citySchema, strict: true },
      },
    };
    const [response, want] = await Promise.all([chat(params), expected(params)]);
    const content = response.choices[0]?.message.content ?? '';
    expect(content).toBe(want.choices[0]?.message.content);
    const validate = ajv.compile(citySchema);
    expect(validate(JSON.parse(content)), ajv.errorsText(validate.errors)).toBe(true);
  });

  it.runIf(wire.embed)('embeds texts into the simulator’s vectors, as floats and as base64', async () => {
    const input = ['the cache is warm', 'route the request to a cheaper model'];
    const [floats, base64, want] = await Promise.all([
      client.embeddings.create({ model: `${wire.provider}-embed`, input, encoding_format: 'float' }),
      client.embeddings.create({ model: `${wire.provider}-embed`, input }),
      reference.embeddings.create({ model: 'sim-embed', input, encoding_format: 'float' }),
    ]);
    const vectors = want.data.map((d) => d.embedding);
    expect(floats.data.map((d) => d.embedding)).toEqual(vectors);
    expect(base64.data.map((d) => d.embedding)).toEqual(vectors);
    expect(floats.usage.prompt_tokens).toBe(wire.embeddingUsage ? want.usage.prompt_tokens : 0);
  });

  it('passes an upstream 400 on as the client’s own mistake', async () => {
    // Beyond the context window: every wire rejects it before generating.
    const error = await rejection(chat({ messages: conversation, max_tokens: 200_000 }));
    expect(error.status).toBe(400);
    expect(error.code).toBe('upstream_rejected_request');
  });

  it.each([
    [429, 429, 'upstream_overloaded'],
    [503, 503, 'upstream_overloaded'],
    [500, 502, 'upstream_error'],
  ] as const)('maps an upstream %i to %i (%s)', async (upstream, status, code) => {
    await withFault(upstream);
    const route = `${wire.provider}-flaky`;
    const error = await rejection(chat({ messages: conversation }, route));
    expect(error.status).toBe(status);
    expect(error.code).toBe(code);
    expect(error.message).toContain(`${wire.provider}/sim-flaky`);
    if (upstream === 429) expect(error.headers?.get('retry-after')).toBe('1');
    const streamed = await rejection(
      client.chat.completions.create({ model: route, messages: conversation, stream: true }),
    );
    expect(streamed.status).toBe(status);
  });
});

describe('the gemini adapter and thought signatures', () => {
  it('hands a thinking model’s signature to the client, and takes it back with the tool results', async () => {
    const first = await client.chat.completions.create({
      model: 'gemini-reasoner',
      messages: [toolQuestion],
      tools,
    });
    const [call] = functionCalls(first);
    const signed = call as ChatCompletionMessageFunctionToolCall & {
      extra_content?: { google?: { thought_signature?: string } };
    };
    expect(signed.extra_content?.google?.thought_signature).toMatch(/^[A-Za-z0-9+/=]{20,}$/);
    const response = await client.chat.completions.create({
      model: 'gemini-reasoner',
      messages: [
        toolQuestion,
        first.choices[0]?.message as ChatCompletionMessageParam,
        ...functionCalls(first).map((c) => ({
          role: 'tool' as const,
          tool_call_id: c.id,
          content: '{"ok":true}',
        })),
      ],
      tools,
    });
    expect(response.choices[0]?.message.content).toMatch(/^Based on the tool results: /);
  });
});

describe('the simulator’s Azure OpenAI paths', () => {
  it('take the model from the deployment in the path, and want an api-version', async () => {
    const url = `${sim.url}/openai/deployments/sim-fast/chat/completions`;
    const body = JSON.stringify({ messages: [{ role: 'user', content: 'What is 12 + 30?' }] });
    const headers = { 'content-type': 'application/json', 'api-key': 'any' };
    const answered = await fetch(`${url}?api-version=2024-10-21`, { method: 'POST', headers, body });
    expect(answered.status).toBe(200);
    const completion = (await answered.json()) as ChatCompletion;
    expect(completion.model).toBe('sim-fast');
    expect(completion.choices[0]?.message.content).toBe('The answer is 42.');
    const refused = await fetch(url, { method: 'POST', headers, body });
    expect(refused.status).toBe(400);
    expect(((await refused.json()) as { error: { param: string } }).error.param).toBe('api-version');
  });
});
