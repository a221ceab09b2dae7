import { describe, expect, it } from 'vitest';
import { SseParser } from '../../../src/http/sse-parser.js';
import type { ChatCompletionRequest } from '../../../src/http/wire/openai-chat.js';
import { anthropicAdapter } from '../../../src/providers/anthropic.js';
import type { ChatCompletionChunk } from '../../../src/providers/canonical.js';

const adapter = anthropicAdapter({ apiKey: 'sk-ant-test' });
const target = { model: 'claude-sonnet-4-5' };

function translate(request: Partial<ChatCompletionRequest>, params?: Record<string, unknown>) {
  const full = { model: 'gateway-model', messages: [{ role: 'user', content: 'Hi' }], ...request };
  const upstream = adapter.chatRequest(full as ChatCompletionRequest, { ...target, params });
  return JSON.parse(upstream.body) as Record<string, unknown>;
}

/** Runs SSE text through the real parser and the adapter's decoder. */
function decode(sse: string): { chunks: ChatCompletionChunk[]; finished: boolean } {
  const decoder = adapter.streamDecoder(target);
  const parser = new SseParser();
  const chunks = [...parser.push(sse), ...parser.flush()].flatMap((event) => decoder.decode(event));
  return { chunks, finished: decoder.finished };
}

/** What an OpenAI client would build from the chunks. */
function accumulate(chunks: ChatCompletionChunk[]) {
  let content = '';
  const toolCalls: Array<{ id: string; name: string; arguments: string }> = [];
  let finishReason: string | null = null;
  let usage: ChatCompletionChunk['usage'];
  for (const chunk of chunks) {
    if (chunk.usage) usage = chunk.usage;
    for (const choice of chunk.choices) {
      content += choice.delta.content ?? '';
      for (const delta of choice.delta.tool_calls ?? []) {
        toolCalls[delta.index] ??= { id: '', name: '', arguments: '' };
        const call = toolCalls[delta.index]!;
        if (delta.id) call.id = delta.id;
        if (delta.function?.name) call.name += delta.function.name;
        call.arguments += delta.function?.arguments ?? '';
      }
      if (choice.finish_reason) finishReason = choice.finish_reason;
    }
  }
  return { content, toolCalls, finishReason, usage };
}

const sse = (events: Array<[string, object]>) =>
  events.map(([event, data]) => `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`).join('');

// The basic streaming example from Anthropic's "Streaming Messages" documentation.
const textStream = sse([
  [
    'message_start',
    {
      type: 'message_start',
      message: {
        id: 'msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY',
        type: 'message',
        role: 'assistant',
        content: [],
        model: 'claude-sonnet-4-5-20250929',
        stop_reason: null,
        stop_sequence: null,
        usage: {
          input_tokens: 25,
          cache_creation_input_tokens: 0,
          cache_read_input_tokens: 0,
          output_tokens: 1,
        },
      },
    },
  ],
  [
    'content_block_start',
    { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } },
  ],
  ['ping', { type: 'ping' }],
  [
    'content_block_delta',
    { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: 'Hello' } },
  ],
  [
    'content_block_delta',
    { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: '!' } },
  ],
  ['content_block_stop', { type: 'content_block_stop', index: 0 }],
  [
    'message_delta',
    {
      type: 'message_delta',
      delta: { stop_reason: 'end_turn', stop_sequence: null },
      usage: { output_tokens: 15 },
    },
  ],
  ['message_stop', { type: 'message_stop' }],
]);

// The tool use streaming example from the same page: text, then input_json_delta pieces.
const toolStream = sse([
  [
    'message_start',
    {
      type: 'message_start',
      message: {
        id: 'msg_014p7gG3wDgGV9EUtLvnow3U',
        type: 'message',
        role: 'assistant',
        model: 'claude-sonnet-4-5-20250929',
        stop_sequence: null,
        usage: { input_tokens: 472, output_tokens: 2 },
        content: [],
        stop_reason: null,
      },
    },
  ],
  [
    'content_block_start',
    { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } },
  ],
  ['ping', { type: 'ping' }],
  [
    'content_block_delta',
    { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: 'Okay' } },
  ],
  [
    'content_block_delta',
    {
      type: 'content_block_delta',
      index: 0,
      delta: { type: 'text_delta', text: ", let's check the weather for San Francisco, CA:" },
    },
  ],
  ['content_block_stop', { type: 'content_block_stop', index: 0 }],
  [
    'content_block_start',
    {
      type: 'content_block_start',
      index: 1,
      content_block: {
        type: 'tool_use',
        id: 'toolu_01T1x1fJ34qAmk2tNTrN7Up6',
        name: 'get_weather',
        input: {},
      },
    },
  ],
  ...['', '{"location":', ' "San', ' Francisc', 'o,', ' CA"', ', ', '"unit": "fah', 'renheit"}'].map(
    (partial_json): [string, object] => [
      'content_block_delta',
      { type: 'content_block_delta', index: 1, delta: { type: 'input_json_delta', partial_json } },
    ],
  ),
  ['content_block_stop', { type: 'content_block_stop', index: 1 }],
  [
    'message_delta',
    {
      type: 'message_delta',
      delta: { stop_reason: 'tool_use', stop_sequence: null },
      usage: { output_tokens: 89 },
    },
  ],
  ['message_stop', { type: 'message_stop' }],
]);

describe('anthropicAdapter request translation', () => {
  it('posts to /v1/messages with the API key, version and content type, extra headers winning', () => {
    const custom = anthropicAdapter({
      apiKey: 'sk-ant-x',
      baseUrl: 'https://proxy.example/',
      version: '2024-01-01',
      headers: { 'anthropic-beta': 'prompt-caching-2024-07-31' },
    });
    const request = custom.chatRequest({ model: 'm', messages: [{ role: 'user', content: 'Hi' }] }, target);
    expect(request.url).toBe('https://proxy.example/v1/messages');
    expect(request.headers).toEqual({
      'content-type': 'application/json',
      'x-api-key': 'sk-ant-x',
      'anthropic-version': '2024-01-01',
      'anthropic-beta': 'prompt-caching-2024-07-31',
    });
    expect(adapter.chatRequest({ model: 'm', messages: [] }, target).url).toBe(
      'https://api.anthropic.com/v1/messages',
    );
    expect(adapter.chatRequest({ model: 'm', messages: [] }, target).headers['anthropic-version']).toBe(
      '2023-06-01',
    );
  });

  it('sends the target model, defaults max_tokens to 4096 and sends no OpenAI-only fields', () => {
    const body = translate({ n: 1, seed: 7, stream_options: { include_usage: true }, metadata: { a: 'b' } });
    expect(body).toEqual({
      model: 'claude-sonnet-4-5',
      max_tokens: 4096,
      messages: [{ role: 'user', content: 'Hi' }],
    });
  });

  it('takes max_completion_tokens over max_tokens', () => {
    expect(translate({ max_tokens: 100 }).max_tokens).toBe(100);
    expect(translate({ max_tokens: 100, max_completion_tokens: 50 }).max_tokens).toBe(50);
  });

  it('moves system and developer messages into the system prompt', () => {
    const body = translate({
      messages: [
        { role: 'system', content: 'You are terse.' },
        { role: 'developer', content: [{ type: 'text', text: 'Answer in French.' }] },
        { role: 'user', content: 'Hi' },
      ],
    });
    expect(body.system).toBe('You are terse.\n\nAnswer in French.');
    expect(body.messages).toEqual([{ role: 'user', content: 'Hi' }]);
  });

  it('merges consecutive messages of the same role, since Anthropic requires alternation', () => {
    const body = translate({
      messages: [
        { role: 'user', content: 'First.' },
        { role: 'user', content: [{ type: 'text', text: 'Second.' }] },
        { role: 'assistant', content: 'One.' },
        { role: 'assistant', content: 'Two.' },
        { role: 'user', content: 'Third.' },
      ],
    });
    expect(body.messages).toEqual([
      {
        role: 'user',
        content: [
          { type: 'text', text: 'First.' },
          { type: 'text', text: 'Second.' },
        ],
      },
      {
        role: 'assistant',
        content: [
          { type: 'text', text: 'One.' },
          { type: 'text', text: 'Two.' },
        ],
      },
      { role: 'user', content: 'Third.' },
    ]);
  });

  it('turns tool calls into tool_use blocks and consecutive tool messages into one user turn of tool_result blocks', () => {
    const body = translate({
      messages: [
        { role: 'user', content: 'Weather and time in Paris?' },
        {
          role: 'assistant',
          content: 'Checking.',
          tool_calls: [
            {
              id: 'call_1',
              type: 'function',
              function: { name: 'get_weather', arguments: '{"city":"Paris"}' },
            },
            { id: 'call_2', type: 'function', function: { name: 'get_time', arguments: '{"zone":' } },
          ],
        },
        { role: 'tool', tool_call_id: 'call_1', content: '18°C' },
        { role: 'tool', tool_call_id: 'call_2', content: [{ type: 'text', text: '14:00' }] },
        { role: 'user', content: 'Thanks, and tomorrow?' },
      ],
    });
    expect(body.messages).toEqual([
      { role: 'user', content: 'Weather and time in Paris?' },
      {
        role: 'assistant',
        content: [
          { type: 'text', text: 'Checking.' },
          { type: 'tool_use', id: 'call_1', name: 'get_weather', input: { city: 'Paris' } },
          // Arguments that are not a JSON object become an empty input.
          { type: 'tool_use', id: 'call_2', name: 'get_time', input: {} },
        ],
      },
      {
        role: 'user',
        content: [
          { type: 'tool_result', tool_use_id: 'call_1', content: '18°C' },
          { type: 'tool_result', tool_use_id: 'call_2', content: '14:00' },
          { type: 'text', text: 'Thanks, and tomorrow?' },
        ],
      },
    ]);
  });

  it('sends an assistant turn with only tool calls without an empty text block', () => {
    const body = translate({
      messages: [
        { role: 'user', content: 'Weather?' },
        {
          role: 'assistant',
          content: null,
          tool_calls: [{ id: 'c', type: 'function', function: { name: 'get_weather', arguments: '{}' } }],
        },
      ],
    });
    expect(body.messages).toEqual([
      { role: 'user', content: 'Weather?' },
      { role: 'assistant', content: [{ type: 'tool_use', id: 'c', name: 'get_weather', input: {} }] },
    ]);
  });

  it('sends data: URL images as base64 sources and web URLs as url sources', () => {
    const body = translate({
      messages: [
        {
          role: 'user',
          content: [
            { type: 'text', text: 'Compare these.' },
            { type: 'image_url', image_url: { url: 'data:image/png;base64,iVBORw0KGgo=' } },
            { type: 'image_url', image_url: { url: 'https://example.com/cat.jpg', detail: 'high' } },
          ],
        },
      ],
    });
    expect(body.messages).toEqual([
      {
        role: 'user',
        content: [
          { type: 'text', text: 'Compare these.' },
          { type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'iVBORw0KGgo=' } },
          { type: 'image', source: { type: 'url', url: 'https://example.com/cat.jpg' } },
        ],
      },
    ]);
  });

  it('translates tools, with an empty object schema when a function has no parameters', () => {
    const body = translate({
      tools: [
        {
          type: 'function',
          function: {
            name: 'get_weather',
            description: 'Current weather',
            parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
          },
        },
        { type: 'function', function: { name: 'now' } },
      ],
    });
    expect(body.tools).toEqual([
      {
        name: 'get_weather',
        description: 'Current weather',
        input_schema: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
      },
      { name: 'now', input_schema: { type: 'object', properties: {} } },
    ]);
    expect(body.tool_choice).toBeUndefined();
  });

  it('maps tool_choice and parallel_tool_calls: false', () => {
    const tools: ChatCompletionRequest['tools'] = [{ type: 'function', function: { name: 'get_weather' } }];
    const choice = (request: Partial<ChatCompletionRequest>) => translate({ tools, ...request }).tool_choice;
    expect(choice({ tool_choice: 'auto' })).toEqual({ type: 'auto' });
    expect(choice({ tool_choice: 'none' })).toEqual({ type: 'none' });
    expect(choice({ tool_choice: 'required' })).toEqual({ type: 'any' });
    expect(choice({ tool_choice: { type: 'function', function: { name: 'get_weather' } } })).toEqual({
      type: 'tool',
      name: 'get_weather',
    });
    expect(choice({ tool_choice: 'required', parallel_tool_calls: false })).toEqual({
      type: 'any',
      disable_parallel_tool_use: true,
    });
    expect(choice({ parallel_tool_calls: false })).toEqual({ type: 'auto', disable_parallel_tool_use: true });
    // Anthropic's "none" takes no disable_parallel_tool_use.
    expect(choice({ tool_choice: 'none', parallel_tool_calls: false })).toEqual({ type: 'none' });
  });

  it('maps stop, temperature (clamped to 1), top_p, user and stream', () => {
    const body = translate({ stop: 'END', temperature: 1.7, top_p: 0.9, user: 'user-42', stream: true });
    expect(body).toMatchObject({
      stop_sequences: ['END'],
      temperature: 1,
      top_p: 0.9,
      metadata: { user_id: 'user-42' },
      stream: true,
    });
    expect(body.stream_options).toBeUndefined();
    expect(translate({ stop: ['a', 'b'], temperature: 0.3 })).toMatchObject({
      stop_sequences: ['a', 'b'],
      temperature: 0.3,
    });
  });

  it('emulates json_schema and json_object response formats with a system instruction', () => {
    const schema = { type: 'object', properties: { answer: { type: 'string' } }, required: ['answer'] };
    const body = translate({
      messages: [
        { role: 'system', content: 'Be helpful.' },
        { role: 'user', content: 'Hi' },
      ],
      response_format: { type: 'json_schema', json_schema: { name: 'reply', schema } },
    });
    const system = String(body.system);
    expect(system.startsWith('Be helpful.\n\n')).toBe(true);
    expect(system).toContain('only a JSON value');
    expect(system).toContain(JSON.stringify(schema));
    expect(body.messages).toEqual([{ role: 'user', content: 'Hi' }]);
    expect(translate({ response_format: { type: 'json_object' } }).system).toContain(
      'only a valid JSON object',
    );
    expect(translate({ response_format: { type: 'text' } }).system).toBeUndefined();
  });

  it('merges route params last and always sends the target model', () => {
    const body = translate({ temperature: 0.2 }, { temperature: 0.9, top_k: 40 });
    expect(body).toMatchObject({ model: 'claude-sonnet-4-5', temperature: 0.9, top_k: 40 });
  });
});

describe('anthropicAdapter.parseChat', () => {
  it('counts cache reads and writes into prompt_tokens and reports them apart', () => {
    const completion = adapter.parseChat(
      {
        id: 'msg_01AbC',
        type: 'message',
        role: 'assistant',
        model: 'claude-sonnet-4-5-20250929',
        content: [{ type: 'text', text: 'The summary is...' }],
        stop_reason: 'end_turn',
        stop_sequence: null,
        usage: {
          input_tokens: 21,
          cache_creation_input_tokens: 188086,
          cache_read_input_tokens: 1000,
          output_tokens: 393,
        },
      },
      target,
    );
    expect(completion).toMatchObject({
      id: 'msg_01AbC',
      object: 'chat.completion',
      model: 'claude-sonnet-4-5-20250929',
      choices: [
        { index: 0, message: { role: 'assistant', content: 'The summary is...' }, finish_reason: 'stop' },
      ],
      usage: {
        prompt_tokens: 21 + 188086 + 1000,
        completion_tokens: 393,
        total_tokens: 21 + 188086 + 1000 + 393,
        prompt_tokens_details: { cached_tokens: 1000, cache_write_tokens: 188086 },
      },
    });
    expect(Math.abs(completion.created - Date.now() / 1000)).toBeLessThan(5);
  });

  it('turns parallel tool_use blocks into tool calls with JSON arguments', () => {
    const completion = adapter.parseChat(
      {
        id: 'msg_02',
        type: 'message',
        role: 'assistant',
        model: 'claude-sonnet-4-5',
        content: [
          { type: 'text', text: "I'll check both." },
          { type: 'tool_use', id: 'toolu_01', name: 'get_weather', input: { location: 'Paris' } },
          { type: 'tool_use', id: 'toolu_02', name: 'get_time', input: { timezone: 'Europe/Paris' } },
        ],
        stop_reason: 'tool_use',
        stop_sequence: null,
        usage: { input_tokens: 10, output_tokens: 20 },
      },
      target,
    );
    expect(completion.choices[0]).toEqual({
      index: 0,
      message: {
        role: 'assistant',
        content: "I'll check both.",
        tool_calls: [
          {
            id: 'toolu_01',
            type: 'function',
            function: { name: 'get_weather', arguments: '{"location":"Paris"}' },
          },
          {
            id: 'toolu_02',
            type: 'function',
            function: { name: 'get_time', arguments: '{"timezone":"Europe/Paris"}' },
          },
        ],
      },
      finish_reason: 'tool_calls',
    });
  });

  it('leaves thinking out of the content and gives null content when there is no text', () => {
    const completion = adapter.parseChat(
      {
        id: 'msg_03',
        model: 'claude-sonnet-4-5',
        content: [
          { type: 'thinking', thinking: 'Let me think.', signature: 'sig' },
          { type: 'tool_use', id: 'toolu_1', name: 'f', input: {} },
        ],
        stop_reason: 'tool_use',
        usage: { input_tokens: 1, output_tokens: 1 },
      },
      target,
    );
    expect(completion.choices[0]?.message.content).toBeNull();
    const thoughtful = adapter.parseChat(
      {
        id: 'msg_04',
        model: 'm',
        content: [
          { type: 'thinking', thinking: 'Hmm.', signature: 'sig' },
          { type: 'text', text: 'Four.' },
        ],
        stop_reason: 'end_turn',
        usage: { input_tokens: 1, output_tokens: 1 },
      },
      target,
    );
    expect(thoughtful.choices[0]?.message.content).toBe('Four.');
  });

  it('maps every stop reason to a finish reason', () => {
    const finish = (stop_reason: string) =>
      adapter.parseChat({ id: 'm', model: 'm', content: [], stop_reason, usage: {} }, target).choices[0]
        ?.finish_reason;
    expect(finish('end_turn')).toBe('stop');
    expect(finish('stop_sequence')).toBe('stop');
    expect(finish('max_tokens')).toBe('length');
    expect(finish('tool_use')).toBe('tool_calls');
    expect(finish('refusal')).toBe('content_filter');
  });
});

describe('anthropicAdapter stream decoder', () => {
  it('turns the documented text stream into a role chunk, content chunks, a finish chunk and a usage chunk', () => {
    const { chunks, finished } = decode(textStream);
    expect(finished).toBe(true);
    expect(chunks.map((c) => c.choices[0]?.delta ?? null)).toEqual([
      { role: 'assistant', content: '' },
      { content: 'Hello' },
      { content: '!' },
      {},
      null,
    ]);
    expect(chunks.map((c) => c.choices[0]?.finish_reason ?? null)).toEqual([null, null, null, 'stop', null]);
    for (const chunk of chunks) {
      expect(chunk).toMatchObject({
        id: 'msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY',
        object: 'chat.completion.chunk',
        model: 'claude-sonnet-4-5-20250929',
      });
    }
    expect(chunks.at(-1)).toMatchObject({
      choices: [],
      usage: { prompt_tokens: 25, completion_tokens: 15, total_tokens: 40 },
    });
  });

  it('streams a tool call: id and name first, then argument pieces under the same index', () => {
    const { chunks } = decode(toolStream);
    const calls = chunks.flatMap((c) => c.choices[0]?.delta.tool_calls ?? []);
    expect(calls[0]).toEqual({
      index: 0,
      id: 'toolu_01T1x1fJ34qAmk2tNTrN7Up6',
      type: 'function',
      function: { name: 'get_weather', arguments: '' },
    });
    expect(calls.slice(1).every((c) => c.index === 0 && c.id === undefined)).toBe(true);
    expect(accumulate(chunks)).toEqual({
      content: "Okay, let's check the weather for San Francisco, CA:",
      toolCalls: [
        {
          id: 'toolu_01T1x1fJ34qAmk2tNTrN7Up6',
          name: 'get_weather',
          arguments: '{"location": "San Francisco, CA", "unit": "fahrenheit"}',
        },
      ],
      finishReason: 'tool_calls',
      usage: {
        prompt_tokens: 472,
        completion_tokens: 89,
        total_tokens: 561,
        prompt_tokens_details: { cached_tokens: 0, cache_write_tokens: 0 },
      },
    });
  });

  it('numbers parallel tool calls 0, 1, ... whatever their content block index', () => {
    const stream = sse([
      [
        'message_start',
        { type: 'message_start', message: { id: 'msg_p', model: 'm', usage: { input_tokens: 5 } } },
      ],
      [
        'content_block_start',
        { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } },
      ],
      [
        'content_block_delta',
        { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: 'Both.' } },
      ],
      ['content_block_stop', { type: 'content_block_stop', index: 0 }],
      [
        'content_block_start',
        {
          type: 'content_block_start',
          index: 1,
          content_block: { type: 'tool_use', id: 'toolu_a', name: 'get_weather', input: {} },
        },
      ],
      [
        'content_block_delta',
        {
          type: 'content_block_delta',
          index: 1,
          delta: { type: 'input_json_delta', partial_json: '{"city":"Oslo"}' },
        },
      ],
      ['content_block_stop', { type: 'content_block_stop', index: 1 }],
      [
        'content_block_start',
        {
          type: 'content_block_start',
          index: 2,
          content_block: { type: 'tool_use', id: 'toolu_b', name: 'get_time', input: {} },
        },
      ],
      [
        'content_block_delta',
        {
          type: 'content_block_delta',
          index: 2,
          delta: { type: 'input_json_delta', partial_json: '{"zone":"CET"}' },
        },
      ],
      ['content_block_stop', { type: 'content_block_stop', index: 2 }],
      [
        'message_delta',
        { type: 'message_delta', delta: { stop_reason: 'tool_use' }, usage: { output_tokens: 30 } },
      ],
      ['message_stop', { type: 'message_stop' }],
    ]);
    expect(accumulate(decode(stream).chunks).toolCalls).toEqual([
      { id: 'toolu_a', name: 'get_weather', arguments: '{"city":"Oslo"}' },
      { id: 'toolu_b', name: 'get_time', arguments: '{"zone":"CET"}' },
    ]);
  });

  it('ignores thinking blocks and their deltas', () => {
    const stream = sse([
      [
        'message_start',
        { type: 'message_start', message: { id: 'msg_t', model: 'm', usage: { input_tokens: 5 } } },
      ],
      [
        'content_block_start',
        { type: 'content_block_start', index: 0, content_block: { type: 'thinking', thinking: '' } },
      ],
      [
        'content_block_delta',
        {
          type: 'content_block_delta',
          index: 0,
          delta: { type: 'thinking_delta', thinking: 'Two plus two.' },
        },
      ],
      [
        'content_block_delta',
        { type: 'content_block_delta', index: 0, delta: { type: 'signature_delta', signature: 'EqQB' } },
      ],
      ['content_block_stop', { type: 'content_block_stop', index: 0 }],
      [
        'content_block_start',
        { type: 'content_block_start', index: 1, content_block: { type: 'text', text: '' } },
      ],
      [
        'content_block_delta',
        { type: 'content_block_delta', index: 1, delta: { type: 'text_delta', text: '4' } },
      ],
      ['content_block_stop', { type: 'content_block_stop', index: 1 }],
      [
        'message_delta',
        { type: 'message_delta', delta: { stop_reason: 'end_turn' }, usage: { output_tokens: 12 } },
      ],
      ['message_stop', { type: 'message_stop' }],
    ]);
    const { chunks } = decode(stream);
    expect(accumulate(chunks).content).toBe('4');
    expect(chunks).toHaveLength(4);
  });

  it('takes cumulative usage from message_delta over message_start, cache counts included', () => {
    const stream = sse([
      [
        'message_start',
        {
          type: 'message_start',
          message: {
            id: 'msg_c',
            model: 'm',
            usage: {
              input_tokens: 3,
              cache_creation_input_tokens: 0,
              cache_read_input_tokens: 0,
              output_tokens: 1,
            },
          },
        },
      ],
      [
        'message_delta',
        {
          type: 'message_delta',
          delta: { stop_reason: 'max_tokens', stop_sequence: null },
          usage: {
            input_tokens: 3,
            cache_read_input_tokens: 2048,
            cache_creation_input_tokens: null,
            output_tokens: 50,
          },
        },
      ],
      ['message_stop', { type: 'message_stop' }],
    ]);
    expect(accumulate(decode(stream).chunks)).toMatchObject({
      finishReason: 'length',
      usage: {
        prompt_tokens: 3 + 2048,
        completion_tokens: 50,
        prompt_tokens_details: { cached_tokens: 2048, cache_write_tokens: 0 },
      },
    });
  });

  it('is not finished before message_stop', () => {
    const partial = textStream.slice(0, textStream.indexOf('event: message_stop'));
    expect(decode(partial).finished).toBe(false);
  });

  it('throws the message of an error event', () => {
    const stream = sse([
      [
        'message_start',
        { type: 'message_start', message: { id: 'msg_e', model: 'm', usage: { input_tokens: 5 } } },
      ],
      ['error', { type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } }],
    ]);
    expect(() => decode(stream)).toThrow('Overloaded');
  });
});

describe('anthropicAdapter.parseError', () => {
  it('treats 529 overloaded_error as a retryable overload signal', () => {
    const failure = adapter.parseError(
      529,
      JSON.stringify({ type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } }),
      {},
    );
    expect(failure).toEqual({
      status: 529,
      message: 'Overloaded',
      retryable: true,
      overloaded: true,
      retryAfterMs: undefined,
    });
  });

  it('reads retry-after on a 429 rate_limit_error', () => {
    const failure = adapter.parseError(
      429,
      JSON.stringify({
        type: 'error',
        error: {
          type: 'rate_limit_error',
          message: 'Number of request tokens has exceeded your per-minute rate limit',
        },
      }),
      { 'retry-after': '12' },
    );
    expect(failure).toMatchObject({ status: 429, retryable: true, overloaded: true, retryAfterMs: 12_000 });
    expect(failure.message).toContain('rate limit');
  });

  it('does not retry an invalid request, and keeps a non-JSON body as the message', () => {
    expect(
      adapter.parseError(
        400,
        JSON.stringify({
          type: 'error',
          error: { type: 'invalid_request_error', message: 'max_tokens: Field required' },
        }),
        {},
      ),
    ).toMatchObject({ message: 'max_tokens: Field required', retryable: false, overloaded: false });
    expect(adapter.parseError(502, '<html>Bad gateway</html>', {})).toMatchObject({
      message: '<html>Bad gateway</html>',
      retryable: true,
      overloaded: false,
    });
  });

  it('offers no embeddings', () => {
    expect(adapter.embeddingsRequest).toBeUndefined();
    expect(adapter.parseEmbeddings).toBeUndefined();
  });
});
