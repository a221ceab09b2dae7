import { describe, expect, it } from 'vitest';
import { semanticQuery } from '../../../src/cache/semantic-query.js';
import type { ChatCompletionRequest, ChatMessage } from '../../../src/http/wire/openai-chat.js';

const request = (
  messages: ChatMessage[],
  extra: Partial<ChatCompletionRequest> = {},
): ChatCompletionRequest => ({
  model: 'chat',
  messages,
  ...extra,
});
const weather = {
  type: 'function' as const,
  function: { name: 'get_weather', parameters: { type: 'object' } },
};

describe('semantic query', () => {
  it('embeds the trailing user messages and matches what precedes them exactly', () => {
    const earlier: ChatMessage[] = [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'Hi' },
      { role: 'assistant', content: 'Hello!' },
    ];
    const query = semanticQuery(
      request([
        ...earlier,
        { role: 'user', content: 'What is' },
        { role: 'user', content: [{ type: 'text', text: 'the capital of France?' }] },
      ]),
    );
    expect(query).toEqual({ text: 'What is\nthe capital of France?', context: earlier });
  });

  it.each([
    ['the request offers tools', request([{ role: 'user', content: 'Weather?' }], { tools: [weather] })],
    [
      'the conversation carries tool calls and results',
      request([
        { role: 'user', content: 'Weather?' },
        {
          role: 'assistant',
          content: null,
          tool_calls: [{ id: 'c1', type: 'function', function: { name: 'get_weather', arguments: '{}' } }],
        },
        { role: 'tool', tool_call_id: 'c1', content: 'sunny' },
        { role: 'user', content: 'And tomorrow?' },
      ]),
    ],
    [
      'the last user turn has an image',
      request([
        {
          role: 'user',
          content: [
            { type: 'text', text: 'What is this?' },
            { type: 'image_url', image_url: { url: 'data:image/png;base64,AAAA' } },
          ],
        },
      ]),
    ],
    [
      'it does not end with a user message',
      request([
        { role: 'user', content: 'Hi' },
        { role: 'assistant', content: 'Hello' },
      ]),
    ],
    ['the user message is blank', request([{ role: 'user', content: '  ' }])],
  ])('is exact-only when %s', (_why, asked) => {
    expect(semanticQuery(asked)).toBeUndefined();
  });
});
