import { describe, expect, it } from 'vitest';
import { AnthropicStreamEncoder, canonicalToAnthropic } from '../../../src/http/anthropic-translate.js';
import { SseParser } from '../../../src/http/sse-parser.js';
import { anthropicAdapter } from '../../../src/providers/anthropic.js';
import type { ChatCompletionChunk } from '../../../src/providers/canonical.js';

const adapter = anthropicAdapter({ apiKey: 'test-key' });
const target = { model: 'claude-test' };

describe('the stop sequence that ended an answer', () => {
  it('survives Anthropic → canonical → Anthropic for a whole message', () => {
    const completion = adapter.parseChat(
      {
        id: 'msg_1',
        model: 'claude-test',
        content: [{ type: 'text', text: 'one two' }],
        stop_reason: 'stop_sequence',
        stop_sequence: ' three',
        usage: { input_tokens: 5, output_tokens: 2 },
      },
      target,
    );
    expect(completion.choices[0]?.finish_reason).toBe('stop');
    expect(completion.choices[0]?.stop_reason).toBe(' three');
    const message = canonicalToAnthropic(completion, 'route');
    expect(message.stop_reason).toBe('stop_sequence');
    expect(message.stop_sequence).toBe(' three');
  });

  it('survives Anthropic → canonical → Anthropic in a stream', () => {
    const upstream = [
      [
        'message_start',
        { type: 'message_start', message: { id: 'msg_2', model: 'claude-test', usage: { input_tokens: 3 } } },
      ],
      [
        'content_block_start',
        { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } },
      ],
      [
        'content_block_delta',
        { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: 'one' } },
      ],
      ['content_block_stop', { type: 'content_block_stop', index: 0 }],
      [
        'message_delta',
        {
          type: 'message_delta',
          delta: { stop_reason: 'stop_sequence', stop_sequence: 'END' },
          usage: { output_tokens: 1 },
        },
      ],
      ['message_stop', { type: 'message_stop' }],
    ] as const;
    const text = upstream.map(([name, data]) => `event: ${name}\ndata: ${JSON.stringify(data)}\n\n`).join('');
    const decoder = adapter.streamDecoder(target);
    const chunks: ChatCompletionChunk[] = new SseParser().push(text).flatMap((e) => decoder.decode(e));
    const encoder = new AnthropicStreamEncoder('route', 'msg_2');
    const events = [...chunks.flatMap((c) => encoder.encode(c)), ...encoder.finish()];
    const delta = events.find((e) => e.event === 'message_delta');
    expect(delta?.data).toMatchObject({ delta: { stop_reason: 'stop_sequence', stop_sequence: 'END' } });
  });

  it('stays an ordinary end of turn when no stop sequence matched', () => {
    const completion = adapter.parseChat(
      {
        id: 'msg_3',
        content: [{ type: 'text', text: 'hi' }],
        stop_reason: 'end_turn',
        stop_sequence: null,
        usage: {},
      },
      target,
    );
    const message = canonicalToAnthropic(completion, 'route');
    expect(message.stop_reason).toBe('end_turn');
    expect(message.stop_sequence).toBeNull();
  });
});
