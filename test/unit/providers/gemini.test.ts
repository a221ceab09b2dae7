import { describe, expect, it } from 'vitest';
import { SseParser } from '../../../src/http/sse-parser.js';
import type { ChatCompletionRequest } from '../../../src/http/wire/openai-chat.js';
import type { ChatCompletionChunk } from '../../../src/providers/canonical.js';
import { geminiAdapter } from '../../../src/providers/gemini.js';
import type { TargetRef } from '../../../src/providers/provider.js';

const apiKey = 'AIzaSy-test-key-0123456789';
const adapter = geminiAdapter({ apiKey });
const target: TargetRef = { model: 'gemini-2.5-flash' };

const chat = (overrides: Partial<ChatCompletionRequest> = {}): ChatCompletionRequest => ({
  model: 'fast',
  messages: [{ role: 'user', content: 'Hello' }],
  ...overrides,
});

/** The generateContent body fields the tests read. */
interface GeminiBody {
  contents: Array<{ role: string; parts: Array<Record<string, unknown>> }>;
  generationConfig: Record<string, unknown>;
  [field: string]: unknown;
}

const bodyOf = (request: ChatCompletionRequest, to: TargetRef = target) =>
  JSON.parse(adapter.chatRequest(request, to).body) as GeminiBody;

/** Runs raw SSE text through the real parser and one decoder, as dispatch does. */
function decodeStream(text: string) {
  const decoder = adapter.streamDecoder(target);
  const parser = new SseParser();
  const chunks: ChatCompletionChunk[] = [];
  const finishedAfter: boolean[] = [];
  for (const event of [...parser.push(text), ...parser.flush()]) {
    chunks.push(...decoder.decode(event));
    finishedAfter.push(decoder.finished);
  }
  return { chunks, finishedAfter };
}

const sse = (...responses: unknown[]) => responses.map((r) => `data: ${JSON.stringify(r)}\r\n\r\n`).join('');

describe('geminiAdapter request', () => {
  it('posts to generateContent with the key in x-goog-api-key, never in the URL', () => {
    const request = adapter.chatRequest(chat(), target);
    expect(request.url).toBe(
      'https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:generateContent',
    );
    expect(request.url).not.toContain(apiKey);
    expect(request.url).not.toContain('key=');
    expect(request.headers['x-goog-api-key']).toBe(apiKey);
    expect(request.headers['content-type']).toBe('application/json');
    expect(request.body).not.toContain(apiKey);
  });

  it('streams through streamGenerateContent with alt=sse when the request says stream', () => {
    const request = adapter.chatRequest(chat({ stream: true }), target);
    expect(request.url).toBe(
      'https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse',
    );
    expect(JSON.parse(request.body)).not.toHaveProperty('stream');
  });

  it('honours a base URL override (trailing slash or /v1beta included), a models/ prefix and extra headers', () => {
    const proxied = geminiAdapter({
      baseUrl: 'https://proxy.test/v1beta/',
      apiKey,
      headers: { 'x-team': 'search' },
    });
    const request = proxied.chatRequest(chat(), { model: 'models/gemini-2.5-pro' });
    expect(request.url).toBe('https://proxy.test/v1beta/models/gemini-2.5-pro:generateContent');
    expect(request.headers).toMatchObject({ 'x-team': 'search', 'x-goog-api-key': apiKey });
  });

  it('lifts system and developer messages into systemInstruction and maps roles to user and model', () => {
    const body = bodyOf(
      chat({
        messages: [
          { role: 'system', content: 'Be terse.' },
          { role: 'developer', content: [{ type: 'text', text: 'Answer in French.' }] },
          { role: 'user', content: 'Hi' },
          { role: 'assistant', content: 'Bonjour.' },
          { role: 'user', content: 'How are you?' },
        ],
      }),
    );
    expect(body.systemInstruction).toEqual({ parts: [{ text: 'Be terse.' }, { text: 'Answer in French.' }] });
    expect(body.contents).toEqual([
      { role: 'user', parts: [{ text: 'Hi' }] },
      { role: 'model', parts: [{ text: 'Bonjour.' }] },
      { role: 'user', parts: [{ text: 'How are you?' }] },
    ]);
  });

  it('merges consecutive messages of one role into one content, since Gemini wants turns to alternate', () => {
    const body = bodyOf(
      chat({
        messages: [
          { role: 'user', content: 'First.' },
          { role: 'user', content: [{ type: 'text', text: 'Second.' }] },
          { role: 'assistant', content: 'A' },
          { role: 'assistant', content: 'B' },
        ],
      }),
    );
    expect(body.contents).toEqual([
      { role: 'user', parts: [{ text: 'First.' }, { text: 'Second.' }] },
      { role: 'model', parts: [{ text: 'A' }, { text: 'B' }] },
    ]);
  });

  it('sends data: images inline and http(s) images as fileData with a guessed MIME type', () => {
    const body = bodyOf(
      chat({
        messages: [
          {
            role: 'user',
            content: [
              { type: 'text', text: 'Compare these.' },
              { type: 'image_url', image_url: { url: 'data:image/png;base64,iVBORw0KGgo=' } },
              { type: 'image_url', image_url: { url: 'https://example.com/cat.webp?size=large' } },
              { type: 'image_url', image_url: { url: 'https://example.com/photo' } },
              { type: 'input_audio', input_audio: { data: 'UklGRg==', format: 'wav' } },
            ],
          },
        ],
      }),
    );
    expect(body.contents[0]?.parts).toEqual([
      { text: 'Compare these.' },
      { inlineData: { mimeType: 'image/png', data: 'iVBORw0KGgo=' } },
      { fileData: { fileUri: 'https://example.com/cat.webp?size=large', mimeType: 'image/webp' } },
      { fileData: { fileUri: 'https://example.com/photo', mimeType: 'image/jpeg' } },
      { inlineData: { mimeType: 'audio/wav', data: 'UklGRg==' } },
    ]);
  });

  it('turns tool calls into functionCall parts and tool results into functionResponse parts named after the call', () => {
    const body = bodyOf(
      chat({
        messages: [
          { role: 'user', content: 'Weather and time in Paris?' },
          {
            role: 'assistant',
            content: null,
            tool_calls: [
              {
                id: 'call_w',
                type: 'function',
                function: { name: 'get_weather', arguments: '{"city":"Paris"}' },
              },
              { id: 'call_t', type: 'function', function: { name: 'get_time', arguments: '' } },
            ],
          },
          { role: 'tool', tool_call_id: 'call_w', content: '{"temp_c":21,"sky":"clear"}' },
          { role: 'tool', tool_call_id: 'call_t', content: [{ type: 'text', text: '14:05' }] },
        ],
      }),
    );
    expect(body.contents).toEqual([
      { role: 'user', parts: [{ text: 'Weather and time in Paris?' }] },
      {
        role: 'model',
        parts: [
          {
            functionCall: { name: 'get_weather', args: { city: 'Paris' } },
            thoughtSignature: 'skip_thought_signature_validator',
          },
          { functionCall: { name: 'get_time', args: {} } },
        ],
      },
      {
        role: 'user',
        parts: [
          { functionResponse: { name: 'get_weather', response: { content: { temp_c: 21, sky: 'clear' } } } },
          { functionResponse: { name: 'get_time', response: { content: '14:05' } } },
        ],
      },
    ]);
  });

  it('sends back the thought signature a Gemini tool call came with', () => {
    const signed = {
      id: 'call_1',
      type: 'function' as const,
      function: { name: 'get_weather', arguments: '{}' },
      extra_content: { google: { thought_signature: 'CiQB0e2Kb1x' } },
    };
    const body = bodyOf(
      chat({
        messages: [
          { role: 'user', content: 'Hi' },
          { role: 'assistant', tool_calls: [signed] },
        ],
      }),
    );
    expect(body.contents[1]?.parts[0]?.thoughtSignature).toBe('CiQB0e2Kb1x');
  });

  it('declares tools as functionDeclarations whose JSON Schema passes through, minus the $schema marker', () => {
    const parameters = {
      $schema: 'http://json-schema.org/draft-07/schema#',
      type: 'object',
      properties: { city: { type: 'string' }, unit: { type: 'string', enum: ['c', 'f'] } },
      required: ['city'],
      additionalProperties: false,
    };
    const body = bodyOf(
      chat({
        tools: [
          {
            type: 'function',
            function: { name: 'get_weather', description: 'Weather now', parameters, strict: true },
          },
          { type: 'function', function: { name: 'get_time' } },
        ],
      }),
    );
    const { $schema: _, ...withoutMarker } = parameters;
    expect(body.tools).toEqual([
      {
        functionDeclarations: [
          { name: 'get_weather', description: 'Weather now', parametersJsonSchema: withoutMarker },
          { name: 'get_time' },
        ],
      },
    ]);
    expect(body).not.toHaveProperty('toolConfig');
  });

  it.each([
    ['none', { mode: 'NONE' }],
    ['auto', { mode: 'AUTO' }],
    ['required', { mode: 'ANY' }],
    [
      { type: 'function', function: { name: 'get_weather' } },
      { mode: 'ANY', allowedFunctionNames: ['get_weather'] },
    ],
  ] as const)('maps tool_choice %j to functionCallingConfig %j', (toolChoice, config) => {
    const body = bodyOf(
      chat({ tools: [{ type: 'function', function: { name: 'get_weather' } }], tool_choice: toolChoice }),
    );
    expect(body.toolConfig).toEqual({ functionCallingConfig: config });
  });

  it('asks for JSON with response_format json_object, and for a schema with json_schema', () => {
    expect(bodyOf(chat({ response_format: { type: 'json_object' } })).generationConfig).toEqual({
      responseMimeType: 'application/json',
    });
    const schema = { type: 'object', properties: { answer: { type: 'string' } }, required: ['answer'] };
    const body = bodyOf(
      chat({
        response_format: { type: 'json_schema', json_schema: { name: 'reply', schema, strict: true } },
      }),
    );
    expect(body.generationConfig).toEqual({
      responseMimeType: 'application/json',
      responseJsonSchema: schema,
    });
    expect(bodyOf(chat({ response_format: { type: 'text' } }))).not.toHaveProperty('generationConfig');
  });

  it('maps sampling fields into generationConfig', () => {
    const body = bodyOf(
      chat({
        max_tokens: 300,
        temperature: 0.2,
        top_p: 0.9,
        stop: 'END',
        n: 2,
        seed: 7,
        presence_penalty: 0.5,
      }),
    );
    expect(body.generationConfig).toEqual({
      maxOutputTokens: 300,
      temperature: 0.2,
      topP: 0.9,
      stopSequences: ['END'],
      candidateCount: 2,
      seed: 7,
      presencePenalty: 0.5,
    });
    expect(
      bodyOf(chat({ max_tokens: 300, max_completion_tokens: 500 })).generationConfig.maxOutputTokens,
    ).toBe(500);
  });

  it('lets route params override the client, in OpenAI names or in Gemini generation and request fields', () => {
    const safetySettings = [{ category: 'HARM_CATEGORY_HARASSMENT', threshold: 'BLOCK_ONLY_HIGH' }];
    const body = bodyOf(chat({ temperature: 1.5, stop: ['a', 'b'] }), {
      model: 'gemini-2.5-flash',
      params: {
        temperature: 0.1,
        topK: 40,
        thinkingConfig: { thinkingBudget: 0 },
        safetySettings,
        unknown: 1,
      },
    });
    expect(body.generationConfig).toEqual({
      temperature: 0.1,
      stopSequences: ['a', 'b'],
      topK: 40,
      thinkingConfig: { thinkingBudget: 0 },
    });
    expect(body.safetySettings).toEqual(safetySettings);
    expect(body).not.toHaveProperty('unknown');
    expect(body.generationConfig).not.toHaveProperty('unknown');
  });
});

describe('geminiAdapter response', () => {
  it('joins text parts, leaves thoughts out and counts thinking as completion tokens', () => {
    const completion = adapter.parseChat(
      {
        candidates: [
          {
            content: {
              role: 'model',
              parts: [
                { text: 'The user greets me; reply briefly.', thought: true },
                { text: 'Hello! ' },
                { text: 'How can I help?' },
              ],
            },
            finishReason: 'STOP',
            index: 0,
          },
        ],
        usageMetadata: {
          promptTokenCount: 12,
          candidatesTokenCount: 7,
          totalTokenCount: 49,
          cachedContentTokenCount: 4,
          thoughtsTokenCount: 30,
          promptTokensDetails: [{ modality: 'TEXT', tokenCount: 12 }],
        },
        modelVersion: 'gemini-2.5-flash',
        responseId: 'mKeXaPDfIsGvz7IP',
      },
      target,
    );
    expect(completion).toEqual({
      id: 'mKeXaPDfIsGvz7IP',
      object: 'chat.completion',
      created: expect.any(Number),
      model: 'gemini-2.5-flash',
      choices: [
        {
          index: 0,
          message: { role: 'assistant', content: 'Hello! How can I help?' },
          finish_reason: 'stop',
        },
      ],
      usage: {
        prompt_tokens: 12,
        completion_tokens: 37,
        total_tokens: 49,
        prompt_tokens_details: { cached_tokens: 4 },
        completion_tokens_details: { reasoning_tokens: 30 },
      },
    });
  });

  it('turns parallel function calls into tool_calls with fresh ids and finishes with tool_calls', () => {
    const completion = adapter.parseChat(
      {
        candidates: [
          {
            content: {
              role: 'model',
              parts: [
                {
                  functionCall: { name: 'get_weather', args: { city: 'Paris' } },
                  thoughtSignature: 'CiQB0e2Kb1x',
                },
                { functionCall: { name: 'get_weather', args: { city: 'Tokyo' } } },
              ],
            },
            finishReason: 'STOP',
          },
        ],
        usageMetadata: { promptTokenCount: 40, candidatesTokenCount: 16, totalTokenCount: 56 },
        modelVersion: 'gemini-2.5-flash',
      },
      target,
    );
    const choice = completion.choices[0]!;
    expect(choice.finish_reason).toBe('tool_calls');
    expect(choice.message.content).toBeNull();
    const calls = choice.message.tool_calls!;
    expect(calls).toHaveLength(2);
    expect(calls[0]).toMatchObject({
      type: 'function',
      function: { name: 'get_weather', arguments: '{"city":"Paris"}' },
      extra_content: { google: { thought_signature: 'CiQB0e2Kb1x' } },
    });
    expect(calls[1]?.function).toEqual({ name: 'get_weather', arguments: '{"city":"Tokyo"}' });
    expect(calls[0]?.id).toMatch(/^call_[0-9a-f]{24}$/);
    expect(calls[1]?.id).toMatch(/^call_/);
    expect(calls[0]?.id).not.toBe(calls[1]?.id);
    expect(completion.id).toMatch(/^chatcmpl-/);
    expect(completion.usage).toEqual({ prompt_tokens: 40, completion_tokens: 16, total_tokens: 56 });
  });

  it('answers a prompt blocked before generation with an empty content_filter completion', () => {
    const completion = adapter.parseChat(
      {
        promptFeedback: {
          blockReason: 'SAFETY',
          safetyRatings: [{ category: 'HARM_CATEGORY_DANGEROUS_CONTENT', probability: 'HIGH' }],
        },
        usageMetadata: { promptTokenCount: 9, totalTokenCount: 9 },
        modelVersion: 'gemini-2.5-flash',
      },
      target,
    );
    expect(completion.choices).toEqual([
      { index: 0, message: { role: 'assistant', content: '' }, finish_reason: 'content_filter' },
    ]);
    expect(completion.usage).toMatchObject({ prompt_tokens: 9, completion_tokens: 0, total_tokens: 9 });
  });

  it.each([
    ['MAX_TOKENS', 'length'],
    ['SAFETY', 'content_filter'],
    ['RECITATION', 'content_filter'],
    ['BLOCKLIST', 'content_filter'],
    ['PROHIBITED_CONTENT', 'content_filter'],
    ['SPII', 'content_filter'],
    ['OTHER', 'stop'],
  ])('maps finishReason %s to %s', (reason, expected) => {
    const completion = adapter.parseChat(
      { candidates: [{ content: { role: 'model', parts: [{ text: 'x' }] }, finishReason: reason }] },
      target,
    );
    expect(completion.choices[0]?.finish_reason).toBe(expected);
  });

  it('keeps every candidate when n asked for several', () => {
    const completion = adapter.parseChat(
      {
        candidates: [
          { content: { parts: [{ text: 'one' }] }, finishReason: 'STOP', index: 0 },
          { content: { parts: [{ text: 'two' }] }, finishReason: 'MAX_TOKENS', index: 1 },
        ],
      },
      target,
    );
    expect(completion.choices.map((c) => [c.index, c.message.content, c.finish_reason])).toEqual([
      [0, 'one', 'stop'],
      [1, 'two', 'length'],
    ]);
    expect(completion.model).toBe('gemini-2.5-flash');
  });
});

describe('geminiAdapter stream', () => {
  it('decodes a text stream: role first, content deltas, finish, then usage, and is finished only at the end', () => {
    const { chunks, finishedAfter } = decodeStream(
      sse(
        {
          candidates: [{ content: { role: 'model', parts: [{ text: 'Thinking about it', thought: true }] } }],
          modelVersion: 'gemini-2.5-flash',
          responseId: 'r-1',
        },
        {
          candidates: [{ content: { role: 'model', parts: [{ text: 'Queues are ' }] }, index: 0 }],
          usageMetadata: { promptTokenCount: 8, totalTokenCount: 8 },
          modelVersion: 'gemini-2.5-flash',
          responseId: 'r-1',
        },
        {
          candidates: [
            { content: { role: 'model', parts: [{ text: 'lines.' }] }, finishReason: 'STOP', index: 0 },
          ],
          usageMetadata: {
            promptTokenCount: 8,
            candidatesTokenCount: 4,
            thoughtsTokenCount: 6,
            totalTokenCount: 18,
          },
          modelVersion: 'gemini-2.5-flash',
          responseId: 'r-1',
        },
      ),
    );
    expect(finishedAfter).toEqual([false, false, true]);
    expect(chunks.every((c) => c.id === 'r-1' && c.object === 'chat.completion.chunk')).toBe(true);
    expect(chunks.every((c) => c.model === 'gemini-2.5-flash')).toBe(true);
    expect(chunks.map((c) => ({ choices: c.choices, usage: c.usage }))).toEqual([
      {
        choices: [{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null }],
        usage: undefined,
      },
      { choices: [{ index: 0, delta: { content: 'Queues are ' }, finish_reason: null }], usage: undefined },
      { choices: [{ index: 0, delta: { content: 'lines.' }, finish_reason: null }], usage: undefined },
      { choices: [{ index: 0, delta: {}, finish_reason: 'stop' }], usage: undefined },
      {
        choices: [],
        usage: {
          prompt_tokens: 8,
          completion_tokens: 10,
          total_tokens: 18,
          completion_tokens_details: { reasoning_tokens: 6 },
        },
      },
    ]);
  });

  it('emits each streamed function call whole, with an id, a per-candidate index and finish tool_calls', () => {
    const { chunks, finishedAfter } = decodeStream(
      sse(
        {
          candidates: [
            {
              content: {
                role: 'model',
                parts: [
                  { functionCall: { name: 'get_weather', args: { city: 'Paris' } }, thoughtSignature: 'sig' },
                ],
              },
            },
          ],
          modelVersion: 'gemini-2.5-flash',
        },
        {
          candidates: [
            {
              content: {
                role: 'model',
                parts: [{ functionCall: { name: 'get_time', args: { zone: 'CET' } } }],
              },
              finishReason: 'STOP',
            },
          ],
          usageMetadata: { promptTokenCount: 30, candidatesTokenCount: 12, totalTokenCount: 42 },
          modelVersion: 'gemini-2.5-flash',
        },
      ),
    );
    expect(finishedAfter).toEqual([false, true]);
    const deltas = chunks.flatMap((c) => c.choices.flatMap((choice) => choice.delta.tool_calls ?? []));
    expect(deltas).toEqual([
      {
        index: 0,
        id: expect.stringMatching(/^call_/),
        type: 'function',
        function: { name: 'get_weather', arguments: '{"city":"Paris"}' },
        extra_content: { google: { thought_signature: 'sig' } },
      },
      {
        index: 1,
        id: expect.stringMatching(/^call_/),
        type: 'function',
        function: { name: 'get_time', arguments: '{"zone":"CET"}' },
      },
    ]);
    expect(chunks.at(-2)?.choices).toEqual([{ index: 0, delta: {}, finish_reason: 'tool_calls' }]);
    expect(chunks.at(-1)).toMatchObject({ choices: [], usage: { prompt_tokens: 30, completion_tokens: 12 } });
    expect(new Set(chunks.map((c) => c.id)).size).toBe(1);
  });

  it('finishes a stream whose prompt was blocked with content_filter', () => {
    const { chunks, finishedAfter } = decodeStream(
      sse({ promptFeedback: { blockReason: 'PROHIBITED_CONTENT' }, usageMetadata: { promptTokenCount: 5 } }),
    );
    expect(finishedAfter).toEqual([true]);
    expect(chunks.map((c) => c.choices[0]?.finish_reason ?? null)).toEqual([null, 'content_filter', null]);
    expect(chunks.at(-1)?.usage).toMatchObject({ prompt_tokens: 5 });
  });

  it('throws with the provider message when an error arrives mid-stream', () => {
    const decoder = adapter.streamDecoder(target);
    const data = JSON.stringify({
      error: { code: 503, message: 'The model is overloaded.', status: 'UNAVAILABLE' },
    });
    expect(() => decoder.decode({ data, raw: `data: ${data}\n\n` })).toThrow('The model is overloaded.');
  });
});

describe('geminiAdapter embeddings', () => {
  it('batches inputs into batchEmbedContents with the model named per request', () => {
    const request = adapter.embeddingsRequest!(
      { model: 'embed', input: ['alpha', 'beta'], dimensions: 256 },
      { model: 'gemini-embedding-001' },
    );
    expect(request.url).toBe(
      'https://generativelanguage.googleapis.com/v1beta/models/gemini-embedding-001:batchEmbedContents',
    );
    expect(request.url).not.toContain(apiKey);
    expect(request.headers['x-goog-api-key']).toBe(apiKey);
    expect(JSON.parse(request.body)).toEqual({
      requests: [
        {
          model: 'models/gemini-embedding-001',
          content: { parts: [{ text: 'alpha' }] },
          outputDimensionality: 256,
        },
        {
          model: 'models/gemini-embedding-001',
          content: { parts: [{ text: 'beta' }] },
          outputDimensionality: 256,
        },
      ],
    });
  });

  it('refuses token-id input, which Gemini cannot embed', () => {
    expect(() => adapter.embeddingsRequest!({ model: 'embed', input: [1, 2, 3] }, target)).toThrow(
      /text only/,
    );
  });

  it('returns float embeddings in input order with usage unknown (0)', () => {
    const response = adapter.parseEmbeddings!(
      { embeddings: [{ values: [0.1, -0.2] }, { values: [0.3, 0.4] }] },
      { model: 'gemini-embedding-001' },
    );
    expect(response).toEqual({
      object: 'list',
      data: [
        { object: 'embedding', index: 0, embedding: [0.1, -0.2] },
        { object: 'embedding', index: 1, embedding: [0.3, 0.4] },
      ],
      model: 'gemini-embedding-001',
      usage: { prompt_tokens: 0, total_tokens: 0 },
    });
  });
});

describe('geminiAdapter errors', () => {
  it('treats 429 RESOURCE_EXHAUSTED as overloaded and retryable, with the delay from RetryInfo', () => {
    const body = JSON.stringify({
      error: {
        code: 429,
        message: 'You exceeded your current quota, please check your plan and billing details.',
        status: 'RESOURCE_EXHAUSTED',
        details: [
          { '@type': 'type.googleapis.com/google.rpc.QuotaFailure', violations: [] },
          { '@type': 'type.googleapis.com/google.rpc.RetryInfo', retryDelay: '37s' },
        ],
      },
    });
    expect(adapter.parseError(429, body, {})).toEqual({
      status: 429,
      message: 'You exceeded your current quota, please check your plan and billing details.',
      retryable: true,
      overloaded: true,
      retryAfterMs: 37_000,
    });
  });

  it('prefers a Retry-After header over RetryInfo', () => {
    const body = JSON.stringify({
      error: {
        code: 429,
        message: 'slow down',
        status: 'RESOURCE_EXHAUSTED',
        details: [{ retryDelay: '37s' }],
      },
    });
    expect(adapter.parseError(429, body, { 'retry-after': '2' }).retryAfterMs).toBe(2000);
  });

  it('treats 503 UNAVAILABLE as overloaded and retryable', () => {
    const body = JSON.stringify({
      error: {
        code: 503,
        message: 'The model is overloaded. Please try again later.',
        status: 'UNAVAILABLE',
      },
    });
    expect(adapter.parseError(503, body, {})).toMatchObject({
      message: 'The model is overloaded. Please try again later.',
      retryable: true,
      overloaded: true,
    });
  });

  it('reports 400 INVALID_ARGUMENT as final, and reads a body wrapped in an array', () => {
    const body = JSON.stringify([
      {
        error: {
          code: 400,
          message: 'API key not valid. Please pass a valid API key.',
          status: 'INVALID_ARGUMENT',
        },
      },
    ]);
    expect(adapter.parseError(400, body, {})).toEqual({
      status: 400,
      message: 'API key not valid. Please pass a valid API key.',
      retryable: false,
      overloaded: false,
      retryAfterMs: undefined,
    });
  });

  it('falls back to the raw text of a body that is not JSON', () => {
    expect(adapter.parseError(502, '<html>Bad Gateway</html>', {})).toMatchObject({
      message: '<html>Bad Gateway</html>',
      retryable: true,
      overloaded: false,
    });
  });
});
