import { Ajv2020 } from 'ajv/dist/2020.js';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { type RunningSimulator, startSimServer } from '../../src/sim/server.js';
import { countTokens } from '../../src/sim/tokens.js';

// Quick models keep the file fast; no wrong answers or broken JSON, so exact checks hold.
const quick = { prefillBaseMs: 1, prefillMsPerToken: 0, decodeMsPerToken: 0.2, batchSlowdown: 0 };
const exact = { invalidJsonRate: 0, wrongAnswerRate: 0 };
const REASONING_TOKENS = 16;
const config = {
  models: [
    { name: 'sim-fast', ...quick, outputTokens: { mean: 40, spread: 0.25 }, quality: exact },
    { name: 'sim-reasoner', ...quick, reasoningTokens: REASONING_TOKENS, quality: exact },
    { name: 'sim-flaky', ...quick, quality: exact },
    { name: 'sim-embed', kind: 'embedding' as const, prefillBaseMs: 1, embeddingDimensions: 256 },
  ],
};

const ajv = new Ajv2020({ allErrors: true, strict: false });

const weather = {
  name: 'get_weather',
  description: 'The current weather in a city.',
  parametersJsonSchema: {
    type: 'object',
    properties: { city: { type: 'string' }, unit: { type: 'string', enum: ['celsius', 'fahrenheit'] } },
    required: ['city', 'unit'],
    additionalProperties: false,
  },
};
/** Declared in Gemini's OpenAPI subset: upper-case types, int64 bounds as strings. */
const time = {
  name: 'get_time',
  description: 'The local time in a time zone.',
  parameters: {
    type: 'OBJECT',
    properties: {
      timezone: { type: 'STRING' },
      hour24: { type: 'BOOLEAN' },
      aliases: { type: 'ARRAY', items: { type: 'STRING' }, minItems: '1', maxItems: '2' },
    },
    required: ['timezone', 'hour24', 'aliases'],
  },
};
const timeJsonSchema = {
  type: 'object',
  properties: {
    timezone: { type: 'string' },
    hour24: { type: 'boolean' },
    aliases: { type: 'array', items: { type: 'string' }, minItems: 1, maxItems: 2 },
  },
  required: ['timezone', 'hour24', 'aliases'],
};
const tools = [{ functionDeclarations: [weather, time] }];
const validators = new Map([
  ['get_weather', ajv.compile(weather.parametersJsonSchema)],
  ['get_time', ajv.compile(timeJsonSchema)],
]);

interface Part {
  text?: string;
  functionCall?: { name: string; args: Record<string, unknown> };
  functionResponse?: { name: string; response: Record<string, unknown> };
  thoughtSignature?: string;
}
interface Candidate {
  content: { parts: Part[]; role: string };
  finishReason?: string;
  index: number;
}
interface UsageMetadata {
  promptTokenCount: number;
  candidatesTokenCount: number;
  totalTokenCount: number;
  thoughtsTokenCount?: number;
  cachedContentTokenCount?: number;
}
interface GenerateContentResponse {
  candidates: Candidate[];
  usageMetadata?: UsageMetadata;
  modelVersion: string;
  responseId: string;
}
interface GoogleError {
  error: { code: number; message: string; status: string; details?: Array<Record<string, unknown>> };
}

function expectValidArgs(call: { name: string; args: unknown }): void {
  const validate = validators.get(call.name);
  expect(validate, `a tool named ${call.name}`).toBeDefined();
  expect(validate?.(call.args), `${JSON.stringify(call.args)}: ${ajv.errorsText(validate?.errors)}`).toBe(
    true,
  );
}

let sim: RunningSimulator;

beforeAll(async () => {
  sim = await startSimServer({ config });
});

afterAll(async () => {
  await sim?.close();
});

const keyed = { 'content-type': 'application/json', 'x-goog-api-key': 'AIza-sim-any-value' };

function post(path: string, body: unknown, headers: Record<string, string> = keyed): Promise<Response> {
  return fetch(`${sim.url}${path}`, { method: 'POST', headers, body: JSON.stringify(body) });
}

async function generate(body: Record<string, unknown>, model = 'sim-fast') {
  const response = await post(`/v1beta/models/${model}:generateContent`, body);
  expect(response.status, await response.clone().text()).toBe(200);
  return (await response.json()) as GenerateContentResponse;
}

async function failure(response: Response, status: number): Promise<GoogleError['error']> {
  expect(response.status).toBe(status);
  const body = (await response.json()) as GoogleError;
  expect(body.error.code).toBe(status);
  return body.error;
}

/** The decoded `data:` events of an alt=sse stream, and the raw text. */
async function stream(body: Record<string, unknown>, model = 'sim-fast') {
  const response = await post(`/v1beta/models/${model}:streamGenerateContent?alt=sse`, body);
  expect(response.status).toBe(200);
  expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/);
  const raw = await response.text();
  const events = raw
    .split('\r\n\r\n')
    .filter((block) => block.trim())
    .map((block) => {
      expect(block.startsWith('data: ')).toBe(true);
      return JSON.parse(block.slice('data: '.length)) as GenerateContentResponse;
    });
  return { raw, events };
}

const user = (text: string) => ({ role: 'user', parts: [{ text }] });
const prose = { contents: [user('Tell me how a gateway sheds load.')] };
const text = (r: GenerateContentResponse, index = 0) =>
  (r.candidates[index]?.content.parts ?? []).map((p) => p.text ?? '').join('');

describe('Gemini API on the simulator: generateContent', () => {
  it('answers a known question with exact text, finishReason STOP and honest usageMetadata', async () => {
    const response = await generate({ contents: [user('What is 12 + 30?')] });
    expect(response.candidates).toHaveLength(1);
    const [candidate] = response.candidates;
    expect(candidate?.content.role).toBe('model');
    expect(candidate?.content.parts).toEqual([{ text: 'The answer is 42.' }]);
    expect(candidate?.finishReason).toBe('STOP');
    expect(candidate?.index).toBe(0);
    const usage = response.usageMetadata as UsageMetadata;
    expect(usage.candidatesTokenCount).toBe(countTokens('The answer is 42.'));
    expect(usage.promptTokenCount).toBeGreaterThan(0);
    expect(usage.totalTokenCount).toBe(usage.promptTokenCount + usage.candidatesTokenCount);
    expect(usage.thoughtsTokenCount).toBeUndefined();
    expect(response.modelVersion).toBe('sim-fast');
    expect(response.responseId).toMatch(/^[A-Za-z0-9]{22}$/);
  });

  it("says what the simulator's OpenAI endpoint says for the same conversation, token counts included", async () => {
    const system = 'You are terse.';
    const question = 'Tell me how a gateway sheds load.';
    const gemini = await generate({
      systemInstruction: { parts: [{ text: system }] },
      contents: [user(question)],
    });
    const openai = (await (
      await post('/v1/chat/completions', {
        model: 'sim-fast',
        messages: [
          { role: 'system', content: system },
          { role: 'user', content: question },
        ],
      })
    ).json()) as { choices: [{ message: { content: string } }]; usage: Record<string, number> };
    expect(text(gemini)).toBe(openai.choices[0].message.content);
    expect(gemini.usageMetadata?.promptTokenCount).toBe(openai.usage.prompt_tokens);
    expect(gemini.usageMetadata?.candidatesTokenCount).toBe(openai.usage.completion_tokens);
  });

  it('reads snake_case field names as Google’s REST examples write them', async () => {
    const camel = await generate({ ...prose, generationConfig: { maxOutputTokens: 6 } });
    const snake = await generate({ ...prose, generation_config: { max_output_tokens: 6 } });
    expect(text(snake)).toBe(text(camel));
    expect(snake.candidates[0]?.finishReason).toBe('MAX_TOKENS');
  });

  it('stops at maxOutputTokens with MAX_TOKENS and exactly that many candidate tokens', async () => {
    const full = text(await generate(prose));
    const response = await generate({ ...prose, generationConfig: { maxOutputTokens: 7 } });
    expect(response.candidates[0]?.finishReason).toBe('MAX_TOKENS');
    expect(response.usageMetadata?.candidatesTokenCount).toBe(7);
    expect(countTokens(text(response))).toBe(7);
    expect(full.startsWith(text(response))).toBe(true);
  });

  it('cuts the text before a stop sequence, with finishReason STOP', async () => {
    const full = text(await generate(prose));
    const stop = full
      .split(/[^a-z]+/i)
      .slice(3)
      .find((w) => w.length >= 5) as string;
    expect(stop, `a long word after the third in: ${full}`).toBeDefined();
    const response = await generate({ ...prose, generationConfig: { stopSequences: [stop] } });
    expect(text(response)).toBe(full.slice(0, full.indexOf(stop)));
    expect(response.candidates[0]?.finishReason).toBe('STOP');
  });

  it('returns candidateCount distinct candidates, with usage over all of them', async () => {
    const response = await generate({ ...prose, generationConfig: { candidateCount: 3 } });
    expect(response.candidates.map((c) => c.index)).toEqual([0, 1, 2]);
    const texts = response.candidates.map((_, i) => text(response, i));
    expect(new Set(texts).size).toBe(3);
    expect(response.usageMetadata?.candidatesTokenCount).toBe(
      texts.reduce((sum, t) => sum + countTokens(t), 0),
    );
  });

  it('reports thinking in thoughtsTokenCount, apart from the candidates and inside the total', async () => {
    const response = await generate({ contents: [user('What is 12 + 30?')] }, 'sim-reasoner');
    expect(text(response)).toBe('The answer is 42.');
    const usage = response.usageMetadata as UsageMetadata;
    expect(usage.thoughtsTokenCount).toBe(REASONING_TOKENS);
    expect(usage.candidatesTokenCount).toBe(countTokens('The answer is 42.'));
    expect(usage.totalTokenCount).toBe(
      usage.promptTokenCount + usage.candidatesTokenCount + REASONING_TOKENS,
    );
  });

  it('reports a repeated long prefix as cachedContentTokenCount', async () => {
    const history = [
      user(`Background: ${'the queue sheds the lowest priority first. '.repeat(150)}`),
      { role: 'model', parts: [{ text: 'Understood.' }] },
    ];
    const first = await generate({ contents: [...history, user('Summarise.')] });
    expect(first.usageMetadata?.cachedContentTokenCount).toBeUndefined();
    const second = await generate({ contents: [...history, user('Summarise again.')] });
    expect(second.usageMetadata?.cachedContentTokenCount).toBeGreaterThan(1000);
  });
});

describe('Gemini API on the simulator: streamGenerateContent', () => {
  it('streams text deltas over SSE that join to the whole answer; the last event carries finishReason and usage', async () => {
    const whole = await generate(prose);
    const { raw, events } = await stream(prose);
    expect(raw.endsWith('\r\n\r\n')).toBe(true);
    expect(events.length).toBeGreaterThan(2);
    expect(events.map((e) => text(e)).join('')).toBe(text(whole));
    const last = events.at(-1) as GenerateContentResponse;
    expect(last.candidates[0]?.finishReason).toBe('STOP');
    expect(last.usageMetadata).toEqual(whole.usageMetadata);
    for (const event of events.slice(0, -1)) {
      expect(event.candidates[0]?.finishReason).toBeUndefined();
      expect(event.usageMetadata).toBeUndefined();
    }
    expect(new Set(events.map((e) => e.responseId)).size).toBe(1);
    expect(events.every((e) => e.modelVersion === 'sim-fast')).toBe(true);
  });

  it('streams a JSON array of the same responses without alt=sse', async () => {
    const { events } = await stream(prose);
    const response = await post('/v1beta/models/sim-fast:streamGenerateContent', prose);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^application\/json/);
    const array = (await response.json()) as GenerateContentResponse[];
    expect(array.map((e) => text(e))).toEqual(events.map((e) => text(e)));
    expect(array.at(-1)?.candidates[0]?.finishReason).toBe('STOP');
  });

  it('sends each function call whole in one event, with the arguments the non-streaming call has', async () => {
    const body = { contents: [user('Call get_weather and get_time for Osaka.')], tools };
    const whole = await generate(body);
    const { events } = await stream(body);
    const streamed = events
      .flatMap((e) => e.candidates[0]?.content.parts ?? [])
      .filter((p) => p.functionCall);
    expect(streamed).toEqual(whole.candidates[0]?.content.parts);
    expect(streamed.map((p) => p.functionCall?.name)).toEqual(['get_weather', 'get_time']);
    expect(events.at(-1)?.candidates[0]?.finishReason).toBe('STOP');
  });

  it('reports thinking tokens in the final usage of a stream', async () => {
    const { events } = await stream({ contents: [user('What is 12 + 30?')] }, 'sim-reasoner');
    expect(events.map((e) => text(e)).join('')).toBe('The answer is 42.');
    expect(events.at(-1)?.usageMetadata?.thoughtsTokenCount).toBe(REASONING_TOKENS);
  });
});

describe('Gemini API on the simulator: function calling', () => {
  it('calls every function named in the question, as functionCall parts with args that validate', async () => {
    const response = await generate({ contents: [user('Call get_weather and get_time for Lisbon.')], tools });
    const [candidate] = response.candidates;
    expect(candidate?.finishReason).toBe('STOP');
    const calls = (candidate?.content.parts ?? []).map((p) => p.functionCall);
    expect(calls.map((c) => c?.name)).toEqual(['get_weather', 'get_time']);
    for (const call of calls) expectValidArgs(call as { name: string; args: unknown });
    // Only thinking models sign their calls.
    expect(candidate?.content.parts.some((p) => p.thoughtSignature)).toBe(false);
  });

  it('answers in text under mode NONE and calls only the allowed function under mode ANY', async () => {
    const question = [user('Use get_weather for Lisbon.')];
    const none = await generate({
      contents: question,
      tools,
      toolConfig: { functionCallingConfig: { mode: 'NONE' } },
    });
    expect(none.candidates[0]?.content.parts[0]?.text?.length).toBeGreaterThan(0);
    const any = await generate({
      contents: question,
      tools,
      toolConfig: { functionCallingConfig: { mode: 'ANY', allowedFunctionNames: ['get_time'] } },
    });
    const calls = any.candidates[0]?.content.parts.map((p) => p.functionCall?.name);
    expect(calls).toEqual(['get_time']);
  });

  it('answers the function responses in text', async () => {
    const question = user('Call get_weather and get_time for Lisbon.');
    const first = await generate({ contents: [question], tools });
    const calls = first.candidates[0]?.content.parts ?? [];
    const response = await generate({
      contents: [
        question,
        { role: 'model', parts: calls },
        {
          role: 'user',
          parts: calls.map((p) => ({
            functionResponse: { name: p.functionCall?.name, response: { content: { ok: true } } },
          })),
        },
      ],
      tools,
    });
    expect(response.candidates[0]?.finishReason).toBe('STOP');
    expect(text(response)).toMatch(/^Based on the tool results: /);
  });

  it('rejects function responses that do not answer the preceding call turn', async () => {
    const question = user('Call get_weather and get_time for Lisbon.');
    const first = await generate({ contents: [question], tools });
    const calls = first.candidates[0]?.content.parts ?? [];
    expect(calls).toHaveLength(2);
    const error = await failure(
      await post('/v1beta/models/sim-fast:generateContent', {
        contents: [
          question,
          { role: 'model', parts: calls },
          { role: 'user', parts: [{ functionResponse: { name: 'get_weather', response: { ok: true } } }] },
        ],
        tools,
      }),
      400,
    );
    expect(error.status).toBe('INVALID_ARGUMENT');
    expect(error.message).toContain('number of function response parts');
  });

  it('signs a thinking model’s first call and rejects a history that drops the signature', async () => {
    const question = user('Call get_weather and get_time for Lisbon.');
    const first = await generate({ contents: [question], tools }, 'sim-reasoner');
    const parts = first.candidates[0]?.content.parts ?? [];
    expect(parts[0]?.thoughtSignature).toMatch(/^[A-Za-z0-9+/=]{20,}$/);
    expect(parts[1]?.thoughtSignature).toBeUndefined();
    const answers = {
      role: 'user',
      parts: parts.map((p) => ({ functionResponse: { name: p.functionCall?.name, response: { ok: true } } })),
    };
    const signed = await generate(
      { contents: [question, { role: 'model', parts }, answers], tools },
      'sim-reasoner',
    );
    expect(text(signed)).toMatch(/^Based on the tool results: /);

    const unsigned = parts.map(({ thoughtSignature: _, ...part }) => part);
    const error = await failure(
      await post('/v1beta/models/sim-reasoner:generateContent', {
        contents: [question, { role: 'model', parts: unsigned }, answers],
        tools,
      }),
      400,
    );
    expect(error.message).toContain('thought_signature');
  });

  it('rejects allowedFunctionNames outside mode ANY, and names that are not declared', async () => {
    const contents = [user('Hello')];
    const auto = await failure(
      await post('/v1beta/models/sim-fast:generateContent', {
        contents,
        tools,
        toolConfig: { functionCallingConfig: { mode: 'AUTO', allowedFunctionNames: ['get_time'] } },
      }),
      400,
    );
    expect(auto.message).toContain('mode is ANY');
    const unknown = await failure(
      await post('/v1beta/models/sim-fast:generateContent', {
        contents,
        tools,
        toolConfig: { functionCallingConfig: { mode: 'ANY', allowedFunctionNames: ['get_moon'] } },
      }),
      400,
    );
    expect(unknown.message).toContain("'get_moon'");
  });
});

describe('Gemini API on the simulator: JSON output', () => {
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

  it('returns JSON that validates against responseJsonSchema', async () => {
    const response = await generate({
      contents: [user('Describe Lisbon.')],
      generationConfig: { responseMimeType: 'application/json', responseJsonSchema: citySchema },
    });
    const validate = ajv.compile(citySchema);
    expect(validate(JSON.parse(text(response))), ajv.errorsText(validate.errors)).toBe(true);
    expect(response.candidates[0]?.finishReason).toBe('STOP');
  });

  it('returns JSON that validates against an OpenAPI-style responseSchema', async () => {
    const response = await generate({
      contents: [user('Describe Lisbon.')],
      generationConfig: {
        responseMimeType: 'application/json',
        responseSchema: {
          type: 'OBJECT',
          properties: { city: { type: 'STRING' }, founded: { type: 'INTEGER', nullable: true } },
          required: ['city', 'founded'],
        },
      },
    });
    const value = JSON.parse(text(response)) as { city: unknown; founded: unknown };
    expect(typeof value.city).toBe('string');
    expect(value.founded === null || Number.isInteger(value.founded)).toBe(true);
  });

  it('returns a JSON object for application/json without a schema', async () => {
    const response = await generate({
      contents: [user('Summarise the rollout.')],
      generationConfig: { responseMimeType: 'application/json' },
    });
    const value: unknown = JSON.parse(text(response));
    expect(value).toBeTypeOf('object');
    expect(Array.isArray(value)).toBe(false);
  });

  it('rejects a response schema without the JSON MIME type', async () => {
    const error = await failure(
      await post('/v1beta/models/sim-fast:generateContent', {
        contents: [user('Describe Lisbon.')],
        generationConfig: { responseJsonSchema: citySchema },
      }),
      400,
    );
    expect(error.status).toBe('INVALID_ARGUMENT');
    expect(error.message).toContain('responseMimeType');
  });
});

describe('Gemini API on the simulator: embeddings and models', () => {
  const texts = ['the cache is warm', 'route the request to a cheaper model', 'the cache is warm'];
  const batch = (dimensions?: number) => ({
    requests: texts.map((t) => ({
      model: 'models/sim-embed',
      content: { parts: [{ text: t }] },
      ...(dimensions && { outputDimensionality: dimensions }),
    })),
  });
  const norm = (v: readonly number[]) => Math.sqrt(v.reduce((sum, x) => sum + x * x, 0));

  it('embeds a batch as unit vectors, equal to the OpenAI endpoint’s for the same texts', async () => {
    const response = await post('/v1beta/models/sim-embed:batchEmbedContents', batch());
    expect(response.status).toBe(200);
    const { embeddings } = (await response.json()) as { embeddings: Array<{ values: number[] }> };
    expect(embeddings).toHaveLength(3);
    for (const { values } of embeddings) {
      expect(values).toHaveLength(256);
      expect(norm(values)).toBeCloseTo(1, 5);
    }
    expect(embeddings[2]?.values).toEqual(embeddings[0]?.values);
    expect(embeddings[1]?.values).not.toEqual(embeddings[0]?.values);
    const openai = (await (
      await post('/v1/embeddings', { model: 'sim-embed', input: texts, encoding_format: 'float' })
    ).json()) as { data: Array<{ embedding: number[] }> };
    expect(embeddings.map((e) => e.values)).toEqual(openai.data.map((d) => d.embedding));
  });

  it('honours outputDimensionality, per request, and embedContent for one text', async () => {
    const response = await post('/v1beta/models/sim-embed:batchEmbedContents', {
      requests: [
        { model: 'models/sim-embed', content: { parts: [{ text: 'shed load' }] }, outputDimensionality: 64 },
        { model: 'models/sim-embed', content: { parts: [{ text: 'shed load' }] }, outputDimensionality: 32 },
      ],
    });
    const { embeddings } = (await response.json()) as { embeddings: Array<{ values: number[] }> };
    expect(embeddings.map((e) => e.values.length)).toEqual([64, 32]);
    for (const { values } of embeddings) expect(norm(values)).toBeCloseTo(1, 5);

    const single = await post('/v1beta/models/sim-embed:embedContent', {
      content: { parts: [{ text: 'shed load' }] },
      outputDimensionality: 64,
    });
    expect(single.status).toBe(200);
    const { embedding } = (await single.json()) as { embedding: { values: number[] } };
    expect(embedding.values).toEqual(embeddings[0]?.values);
  });

  it('rejects a batch request naming another model, and a chat model for embeddings', async () => {
    const stray = await failure(
      await post('/v1beta/models/sim-embed:batchEmbedContents', {
        requests: [{ model: 'models/other', content: { parts: [{ text: 'x' }] } }],
      }),
      400,
    );
    expect(stray.message).toContain("'models/sim-embed'");
    const chat = await failure(
      await post('/v1beta/models/sim-fast:batchEmbedContents', {
        requests: [{ model: 'models/sim-fast', content: { parts: [{ text: 'x' }] } }],
      }),
      404,
    );
    expect(chat.status).toBe('NOT_FOUND');
  });

  it('lists the models with their generation methods, and gets one', async () => {
    const response = await fetch(`${sim.url}/v1beta/models`, { headers: keyed });
    const { models } = (await response.json()) as {
      models: Array<{ name: string; supportedGenerationMethods: string[] }>;
    };
    expect(models.map((m) => m.name)).toEqual([
      'models/sim-fast',
      'models/sim-reasoner',
      'models/sim-flaky',
      'models/sim-embed',
    ]);
    expect(models[0]?.supportedGenerationMethods).toContain('streamGenerateContent');
    expect(models[3]?.supportedGenerationMethods).toContain('batchEmbedContents');
    const one = await fetch(`${sim.url}/v1beta/models/sim-embed`, { headers: keyed });
    expect(((await one.json()) as { name: string }).name).toBe('models/sim-embed');
  });
});

describe('Gemini API on the simulator: errors', () => {
  async function withFault(status: number): Promise<void> {
    const response = await post(
      '/sim/faults',
      { kind: 'error', status, models: ['sim-flaky'] },
      { 'content-type': 'application/json' },
    );
    const { ids } = (await response.json()) as { ids: string[] };
    onTestFinished(async () => {
      await fetch(`${sim.url}/sim/faults/${ids[0]}`, { method: 'DELETE' });
    });
  }

  it('wants an API key: 401 UNAUTHENTICATED without x-goog-api-key, and takes ?key= too', async () => {
    const error = await failure(
      await post('/v1beta/models/sim-fast:generateContent', prose, { 'content-type': 'application/json' }),
      401,
    );
    expect(error.status).toBe('UNAUTHENTICATED');
    expect(error.message).toContain('x-goog-api-key');
    const withQuery = await post('/v1beta/models/sim-fast:generateContent?key=anything', prose, {
      'content-type': 'application/json',
    });
    expect(withQuery.status).toBe(200);
  });

  it('names the field at fault with INVALID_ARGUMENT, for bad JSON, unknown fields and bad values', async () => {
    const bad = await fetch(`${sim.url}/v1beta/models/sim-fast:generateContent`, {
      method: 'POST',
      headers: keyed,
      body: '{"contents": [',
    });
    expect((await failure(bad, 400)).status).toBe('INVALID_ARGUMENT');

    const unknown = await failure(
      await post('/v1beta/models/sim-fast:generateContent', { ...prose, generationConfig: { maxTokens: 5 } }),
      400,
    );
    expect(unknown.message).toContain('maxTokens');
    expect(unknown.details?.[0]).toMatchObject({
      '@type': 'type.googleapis.com/google.rpc.BadRequest',
      fieldViolations: [{ field: 'generationConfig' }],
    });

    const empty = await failure(await post('/v1beta/models/sim-fast:generateContent', { contents: [] }), 400);
    expect(empty.message).toContain('contents');

    const twoData = await failure(
      await post('/v1beta/models/sim-fast:generateContent', {
        contents: [{ role: 'user', parts: [{ text: 'a', functionCall: { name: 'f' } }] }],
      }),
      400,
    );
    expect(twoData.message).toContain('exactly one of');
  });

  it('answers an unknown model with NOT_FOUND when the simulator rejects unknown models', async () => {
    const strict = await startSimServer({ config: { ...config, unknownModels: 'reject' } });
    onTestFinished(() => strict.close());
    const response = await fetch(`${strict.url}/v1beta/models/gemini-9-ultra:generateContent`, {
      method: 'POST',
      headers: keyed,
      body: JSON.stringify(prose),
    });
    const error = await failure(response, 404);
    expect(error.status).toBe('NOT_FOUND');
    expect(error.message).toContain('models/gemini-9-ultra is not found');
  });

  it('answers an unknown method or URL with NOT_FOUND', async () => {
    const method = await failure(await post('/v1beta/models/sim-fast:predictLongRunning', prose), 404);
    expect(method.status).toBe('NOT_FOUND');
    const url = await failure(await fetch(`${sim.url}/v1beta/tunedModels`, { headers: keyed }), 404);
    expect(url.status).toBe('NOT_FOUND');
  });

  it('gives a rate limit as RESOURCE_EXHAUSTED with a RetryInfo delay, as Gemini does', async () => {
    await withFault(429);
    const response = await post('/v1beta/models/sim-flaky:generateContent', prose);
    const error = await failure(response, 429);
    expect(error.status).toBe('RESOURCE_EXHAUSTED');
    expect(error.details).toContainEqual({
      '@type': 'type.googleapis.com/google.rpc.RetryInfo',
      retryDelay: '1s',
    });
  });

  it.each([
    [503, 'UNAVAILABLE'],
    [500, 'INTERNAL'],
  ])('gives an injected %i as %s, streaming or not', async (status, name) => {
    await withFault(status);
    const whole = await failure(await post('/v1beta/models/sim-flaky:generateContent', prose), status);
    expect(whole.status).toBe(name);
    const streamed = await failure(
      await post('/v1beta/models/sim-flaky:streamGenerateContent?alt=sse', prose),
      status,
    );
    expect(streamed.status).toBe(name);
  });
});
