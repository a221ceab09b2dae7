import Anthropic from '@anthropic-ai/sdk';
import { describe, expect, it } from 'vitest';
import {
  type AnthropicEvent,
  AnthropicStreamEncoder,
  anthropicToCanonical,
  canonicalToAnthropic,
} from '../../../src/http/anthropic-translate.js';
import { SseParser } from '../../../src/http/sse-parser.js';
import { type MessagesRequest, messagesRequestSchema } from '../../../src/http/wire/anthropic-messages.js';
import { chatCompletionRequestSchema } from '../../../src/http/wire/openai-chat.js';
import { anthropicAdapter } from '../../../src/providers/anthropic.js';
import type { ChatCompletion, ChatCompletionChunk } from '../../../src/providers/canonical.js';

const adapter = anthropicAdapter({ apiKey: 'sk-ant-test' });
const target = { model: 'claude-sonnet-4-5' };

const request = (body: Partial<MessagesRequest>): MessagesRequest =>
  messagesRequestSchema.parse({ model: 'claude-sonnet-4-5', max_tokens: 1024, messages: [], ...body });

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

const toSse = (events: AnthropicEvent[]) =>
  events.map((e) => `event: ${e.event}\ndata: ${JSON.stringify(e.data)}\n\n`).join('');

function encodeAll(chunks: ChatCompletionChunk[]): AnthropicEvent[] {
  const encoder = new AnthropicStreamEncoder('claude-via-gateway', 'msg_gw1');
  return [...chunks.flatMap((c) => encoder.encode(c)), ...encoder.finish()];
}

let seq = 0;
const chunk = (
  delta: ChatCompletionChunk['choices'][number]['delta'],
  finish: ChatCompletionChunk['choices'][number]['finish_reason'] = null,
): ChatCompletionChunk => ({
  id: 'chatcmpl-abc',
  object: 'chat.completion.chunk',
  created: 1_700_000_000 + seq++,
  model: 'gpt-4o',
  choices: [{ index: 0, delta, finish_reason: finish }],
});
const usageChunk = (prompt: number, completion: number, cached = 0): ChatCompletionChunk => ({
  ...chunk({}),
  choices: [],
  usage: {
    prompt_tokens: prompt,
    completion_tokens: completion,
    total_tokens: prompt + completion,
    prompt_tokens_details: { cached_tokens: cached },
  },
});

// An OpenAI-style stream: text, then two parallel tool calls whose ids/names come first and arguments after.
const toolChunks: ChatCompletionChunk[] = [
  chunk({ role: 'assistant', content: '' }),
  chunk({ content: 'Checking ' }),
  chunk({ content: 'both.' }),
  chunk({
    tool_calls: [
      { index: 0, id: 'call_w', type: 'function', function: { name: 'get_weather', arguments: '' } },
    ],
  }),
  chunk({ tool_calls: [{ index: 0, function: { arguments: '{"city":' } }] }),
  chunk({ tool_calls: [{ index: 0, function: { arguments: '"Oslo"}' } }] }),
  chunk({
    tool_calls: [{ index: 1, id: 'call_t', type: 'function', function: { name: 'get_time', arguments: '' } }],
  }),
  chunk({ tool_calls: [{ index: 1, function: { arguments: '{"zone":"CET"}' } }] }),
  chunk({}, 'tool_calls'),
  usageChunk(120, 45, 100),
];

describe('anthropicToCanonical', () => {
  it('puts the system prompt first and keeps plain turns as they are', () => {
    const canonical = anthropicToCanonical(
      request({
        system: 'You are terse.',
        messages: [
          { role: 'user', content: 'Hi' },
          { role: 'assistant', content: 'Hello.' },
          { role: 'user', content: 'Bye' },
        ],
      }),
    );
    expect(canonical).toEqual({
      model: 'claude-sonnet-4-5',
      max_tokens: 1024,
      messages: [
        { role: 'system', content: 'You are terse.' },
        { role: 'user', content: 'Hi' },
        { role: 'assistant', content: 'Hello.' },
        { role: 'user', content: 'Bye' },
      ],
    });
    expect(chatCompletionRequestSchema.safeParse(canonical).success).toBe(true);
  });

  it('keeps system blocks as text parts', () => {
    const canonical = anthropicToCanonical(
      request({
        system: [
          { type: 'text', text: 'One.' },
          { type: 'text', text: 'Two.' },
        ],
        messages: [],
      }),
    );
    expect(canonical.messages).toEqual([
      {
        role: 'system',
        content: [
          { type: 'text', text: 'One.' },
          { type: 'text', text: 'Two.' },
        ],
      },
    ]);
  });

  it('turns text and image blocks into content parts', () => {
    const canonical = anthropicToCanonical(
      request({
        messages: [
          {
            role: 'user',
            content: [
              { type: 'text', text: 'What is in these?' },
              { type: 'image', source: { type: 'base64', media_type: 'image/jpeg', data: '/9j/4AAQ' } },
              { type: 'image', source: { type: 'url', url: 'https://example.com/cat.jpg' } },
            ],
          },
        ],
      }),
    );
    expect(canonical.messages).toEqual([
      {
        role: 'user',
        content: [
          { type: 'text', text: 'What is in these?' },
          { type: 'image_url', image_url: { url: 'data:image/jpeg;base64,/9j/4AAQ' } },
          { type: 'image_url', image_url: { url: 'https://example.com/cat.jpg' } },
        ],
      },
    ]);
  });

  it('turns tool_use blocks into tool calls and tool_result blocks into tool messages before the user text', () => {
    const canonical = anthropicToCanonical(
      request({
        messages: [
          { role: 'user', content: 'Weather and time in Oslo?' },
          {
            role: 'assistant',
            content: [
              { type: 'thinking', thinking: 'Two tools.', signature: 'sig' },
              { type: 'text', text: 'Checking.' },
              { type: 'tool_use', id: 'toolu_1', name: 'get_weather', input: { city: 'Oslo' } },
              { type: 'tool_use', id: 'toolu_2', name: 'get_time', input: {} },
            ],
          },
          {
            role: 'user',
            content: [
              { type: 'text', text: 'Also, be brief.' },
              { type: 'tool_result', tool_use_id: 'toolu_1', content: [{ type: 'text', text: '3°C' }] },
              { type: 'tool_result', tool_use_id: 'toolu_2', content: 'clock broken', is_error: true },
            ],
          },
        ],
      }),
    );
    expect(canonical.messages).toEqual([
      { role: 'user', content: 'Weather and time in Oslo?' },
      {
        role: 'assistant',
        content: 'Checking.',
        tool_calls: [
          {
            id: 'toolu_1',
            type: 'function',
            function: { name: 'get_weather', arguments: '{"city":"Oslo"}' },
          },
          { id: 'toolu_2', type: 'function', function: { name: 'get_time', arguments: '{}' } },
        ],
      },
      { role: 'tool', tool_call_id: 'toolu_1', content: '3°C' },
      { role: 'tool', tool_call_id: 'toolu_2', content: 'Error: clock broken' },
      { role: 'user', content: [{ type: 'text', text: 'Also, be brief.' }] },
    ]);
  });

  it('gives an assistant turn with only tool_use null content', () => {
    const canonical = anthropicToCanonical(
      request({
        messages: [
          { role: 'assistant', content: [{ type: 'tool_use', id: 't', name: 'f', input: { a: 1 } }] },
        ],
      }),
    );
    expect(canonical.messages[0]).toMatchObject({ role: 'assistant', content: null });
  });

  it('translates tools, tool_choice and disable_parallel_tool_use', () => {
    const tools = [
      {
        name: 'get_weather',
        description: 'Current weather',
        input_schema: { type: 'object' as const, properties: { city: { type: 'string' } } },
      },
    ];
    const canonical = anthropicToCanonical(
      request({ tools, tool_choice: { type: 'any', disable_parallel_tool_use: true }, messages: [] }),
    );
    expect(canonical.tools).toEqual([
      {
        type: 'function',
        function: {
          name: 'get_weather',
          description: 'Current weather',
          parameters: { type: 'object', properties: { city: { type: 'string' } } },
        },
      },
    ]);
    expect(canonical.tool_choice).toBe('required');
    expect(canonical.parallel_tool_calls).toBe(false);
    const choice = (tool_choice: MessagesRequest['tool_choice']) =>
      anthropicToCanonical(request({ tools, tool_choice })).tool_choice;
    expect(choice({ type: 'auto' })).toBe('auto');
    expect(choice({ type: 'none' })).toBe('none');
    expect(choice({ type: 'tool', name: 'get_weather' })).toEqual({
      type: 'function',
      function: { name: 'get_weather' },
    });
    expect(
      anthropicToCanonical(request({ tools, tool_choice: { type: 'auto' } })).parallel_tool_calls,
    ).toBeUndefined();
  });

  it('maps stop_sequences, sampling, metadata.user_id and asks for usage when streaming', () => {
    const canonical = anthropicToCanonical(
      request({
        stop_sequences: ['###'],
        temperature: 0.5,
        top_p: 0.8,
        metadata: { user_id: 'user-7' },
        stream: true,
      }),
    );
    expect(canonical).toMatchObject({
      max_tokens: 1024,
      stop: ['###'],
      temperature: 0.5,
      top_p: 0.8,
      user: 'user-7',
      stream: true,
      stream_options: { include_usage: true },
    });
  });

  it('keeps the meaning through a round trip: Anthropic request → canonical → Anthropic request', () => {
    const original = request({
      system: 'You are a weather bot.',
      max_tokens: 512,
      stop_sequences: ['END'],
      temperature: 0.4,
      top_p: 0.9,
      metadata: { user_id: 'u-1' },
      stream: true,
      tools: [
        {
          name: 'get_weather',
          description: 'Current weather',
          input_schema: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
        },
      ],
      tool_choice: { type: 'tool', name: 'get_weather', disable_parallel_tool_use: true },
      messages: [
        {
          role: 'user',
          content: [
            { type: 'text', text: 'Weather where this photo was taken?' },
            { type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'iVBORw0KGgo=' } },
          ],
        },
        {
          role: 'assistant',
          content: [
            { type: 'text', text: 'That is Oslo.' },
            { type: 'tool_use', id: 'toolu_1', name: 'get_weather', input: { city: 'Oslo' } },
          ],
        },
        {
          role: 'user',
          content: [
            { type: 'tool_result', tool_use_id: 'toolu_1', content: '3°C, snow' },
            { type: 'text', text: 'Should I take a coat?' },
          ],
        },
      ],
    });
    const upstream = adapter.chatRequest(anthropicToCanonical(original), target);
    expect(JSON.parse(upstream.body)).toEqual(original);
  });
});

describe('canonicalToAnthropic', () => {
  const completion = (
    overrides: Partial<ChatCompletion['choices'][number]>,
    usage?: ChatCompletion['usage'],
  ) =>
    ({
      id: 'chatcmpl-9xYz',
      object: 'chat.completion',
      created: 1_700_000_000,
      model: 'gpt-4o-2024-08-06',
      choices: [
        { index: 0, message: { role: 'assistant', content: 'Hello.' }, finish_reason: 'stop', ...overrides },
      ],
      usage,
    }) satisfies ChatCompletion;

  it('builds a message with the requested model, a msg_ id and usage split into cache reads and writes', () => {
    const message = canonicalToAnthropic(
      completion(
        {},
        {
          prompt_tokens: 1200,
          completion_tokens: 30,
          total_tokens: 1230,
          prompt_tokens_details: { cached_tokens: 1000, cache_write_tokens: 150 },
        },
      ),
      'claude-alias',
    );
    expect(message).toEqual({
      id: 'msg_9xYz',
      type: 'message',
      role: 'assistant',
      model: 'claude-alias',
      content: [{ type: 'text', text: 'Hello.' }],
      stop_reason: 'end_turn',
      stop_sequence: null,
      usage: {
        input_tokens: 50,
        output_tokens: 30,
        cache_read_input_tokens: 1000,
        cache_creation_input_tokens: 150,
      },
    });
  });

  it('turns tool calls into tool_use blocks, with invalid argument JSON as an empty input', () => {
    const message = canonicalToAnthropic(
      completion({
        message: {
          role: 'assistant',
          content: null,
          tool_calls: [
            {
              id: 'call_1',
              type: 'function',
              function: { name: 'get_weather', arguments: '{"city":"Oslo"}' },
            },
            { id: 'call_2', type: 'function', function: { name: 'get_time', arguments: '{"zone": "CE' } },
          ],
        },
        finish_reason: 'tool_calls',
      }),
      'm',
    );
    expect(message.content).toEqual([
      { type: 'tool_use', id: 'call_1', name: 'get_weather', input: { city: 'Oslo' } },
      { type: 'tool_use', id: 'call_2', name: 'get_time', input: {} },
    ]);
    expect(message.stop_reason).toBe('tool_use');
    expect(message.usage).toEqual({
      input_tokens: 0,
      output_tokens: 0,
      cache_read_input_tokens: 0,
      cache_creation_input_tokens: 0,
    });
  });

  it('maps finish reasons to stop reasons', () => {
    const stop = (finish_reason: ChatCompletion['choices'][number]['finish_reason']) =>
      canonicalToAnthropic(completion({ finish_reason }), 'm').stop_reason;
    expect(stop('stop')).toBe('end_turn');
    expect(stop('length')).toBe('max_tokens');
    expect(stop('tool_calls')).toBe('tool_use');
    expect(stop('content_filter')).toBe('refusal');
  });

  it('reads back through the Anthropic adapter as the same completion', () => {
    const original = completion(
      {
        message: {
          role: 'assistant',
          content: 'Checking.',
          tool_calls: [
            {
              id: 'toolu_1',
              type: 'function',
              function: { name: 'get_weather', arguments: '{"city":"Oslo"}' },
            },
          ],
        },
        finish_reason: 'tool_calls',
      },
      {
        prompt_tokens: 100,
        completion_tokens: 20,
        total_tokens: 120,
        prompt_tokens_details: { cached_tokens: 60, cache_write_tokens: 10 },
      },
    );
    const back = adapter.parseChat(canonicalToAnthropic(original, 'claude-alias'), target);
    expect(back.choices).toEqual(original.choices);
    expect(back.usage).toEqual(original.usage);
  });
});

describe('AnthropicStreamEncoder', () => {
  it('emits the exact event sequence for text, with content and finish_reason in one chunk and a usage-only chunk', () => {
    const events = encodeAll([
      chunk({ role: 'assistant', content: '' }),
      chunk({ content: 'Hello' }),
      chunk({ content: '!' }, 'stop'),
      usageChunk(25, 2),
    ]);
    expect(events).toEqual([
      {
        event: 'message_start',
        data: {
          type: 'message_start',
          message: {
            id: 'msg_gw1',
            type: 'message',
            role: 'assistant',
            model: 'claude-via-gateway',
            content: [],
            stop_reason: null,
            stop_sequence: null,
            usage: {
              input_tokens: 0,
              output_tokens: 0,
              cache_read_input_tokens: 0,
              cache_creation_input_tokens: 0,
            },
          },
        },
      },
      { event: 'ping', data: { type: 'ping' } },
      {
        event: 'content_block_start',
        data: { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } },
      },
      {
        event: 'content_block_delta',
        data: { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: 'Hello' } },
      },
      {
        event: 'content_block_delta',
        data: { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: '!' } },
      },
      { event: 'content_block_stop', data: { type: 'content_block_stop', index: 0 } },
      {
        event: 'message_delta',
        data: {
          type: 'message_delta',
          delta: { stop_reason: 'end_turn', stop_sequence: null },
          usage: {
            input_tokens: 25,
            output_tokens: 2,
            cache_read_input_tokens: 0,
            cache_creation_input_tokens: 0,
          },
        },
      },
      { event: 'message_stop', data: { type: 'message_stop' } },
    ]);
  });

  it('closes the text block before a tool block and gives each tool call its own block', () => {
    const events = encodeAll(toolChunks);
    expect(events.map((e) => `${e.event}${'index' in e.data ? ` ${e.data.index}` : ''}`)).toEqual([
      'message_start',
      'ping',
      'content_block_start 0',
      'content_block_delta 0',
      'content_block_delta 0',
      'content_block_stop 0',
      'content_block_start 1',
      'content_block_delta 1',
      'content_block_delta 1',
      'content_block_stop 1',
      'content_block_start 2',
      'content_block_delta 2',
      'content_block_stop 2',
      'message_delta',
      'message_stop',
    ]);
    expect(events[6]?.data).toEqual({
      type: 'content_block_start',
      index: 1,
      content_block: { type: 'tool_use', id: 'call_w', name: 'get_weather', input: {} },
    });
    expect(events[7]?.data).toEqual({
      type: 'content_block_delta',
      index: 1,
      delta: { type: 'input_json_delta', partial_json: '{"city":' },
    });
    expect(events.at(-2)?.data).toMatchObject({
      delta: { stop_reason: 'tool_use' },
      usage: { input_tokens: 20, output_tokens: 45, cache_read_input_tokens: 100 },
    });
  });

  it('produces a minimal valid message when finished without any chunk, and only once', () => {
    const encoder = new AnthropicStreamEncoder('m', 'msg_empty');
    expect(encoder.finish().map((e) => e.event)).toEqual([
      'message_start',
      'ping',
      'message_delta',
      'message_stop',
    ]);
    expect(encoder.finish()).toEqual([]);
    expect(encoder.encode(chunk({ content: 'late' }))).toEqual([]);
  });

  it('agrees with the adapter: its events decode back to the same text, tool calls and finish reason', () => {
    const decoder = adapter.streamDecoder(target);
    const parser = new SseParser();
    const decoded = parser.push(toSse(encodeAll(toolChunks))).flatMap((e) => decoder.decode(e));
    expect(decoder.finished).toBe(true);
    const expected = accumulate(toolChunks);
    const actual = accumulate(decoded);
    expect(actual.content).toBe(expected.content);
    expect(actual.toolCalls).toEqual(expected.toolCalls);
    expect(actual.finishReason).toBe(expected.finishReason);
    expect(actual.usage).toMatchObject({ prompt_tokens: 120, completion_tokens: 45 });
  });

  it('is read by the official Anthropic SDK as a complete message', async () => {
    const sse = toSse(encodeAll(toolChunks));
    const client = new Anthropic({
      apiKey: 'sk-ant-test',
      maxRetries: 0,
      fetch: async () => new Response(sse, { headers: { 'content-type': 'text/event-stream' } }),
    });
    const message = await client.messages
      .stream({ model: 'claude-via-gateway', max_tokens: 100, messages: [{ role: 'user', content: 'Hi' }] })
      .finalMessage();
    expect(message).toMatchObject({
      id: 'msg_gw1',
      model: 'claude-via-gateway',
      content: [
        { type: 'text', text: 'Checking both.' },
        { type: 'tool_use', id: 'call_w', name: 'get_weather', input: { city: 'Oslo' } },
        { type: 'tool_use', id: 'call_t', name: 'get_time', input: { zone: 'CET' } },
      ],
      stop_reason: 'tool_use',
      usage: { input_tokens: 20, output_tokens: 45, cache_read_input_tokens: 100 },
    });
  });
});
