import { describe, expect, it } from 'vitest';
import { bodyCapture, cut } from '../../../src/gateway/body-capture.js';
import type { ChatCompletionChunk } from '../../../src/providers/canonical.js';

const ALL = ['api-key', 'bearer-token', 'email', 'credit-card', 'ip', 'phone'] as const;

function capturer(maxBytes: number, redact: Parameters<typeof bodyCapture>[0]['redact'] = [...ALL]) {
  const capture = bodyCapture({ enabled: true, maxBytes, redact });
  if (!capture) throw new Error('expected a body capture');
  return capture;
}

function chunk(
  choices: ChatCompletionChunk['choices'],
  extra: Partial<ChatCompletionChunk> = {},
): ChatCompletionChunk {
  return {
    id: 'chatcmpl-1',
    object: 'chat.completion.chunk',
    created: 1,
    model: 'sim-fast',
    choices,
    ...extra,
  };
}

describe('bodyCapture', () => {
  it('does nothing at all when bodies are not enabled', () => {
    expect(bodyCapture({ enabled: false, maxBytes: 65_536, redact: [...ALL] })).toBeUndefined();
  });

  it('keeps a small body as its JSON, with secrets and personal data replaced, keys included', () => {
    const body = {
      model: 'chat',
      messages: [{ role: 'user', content: 'I am jane@example.com, key sk-proj-abcdefghijklmnop1234' }],
      metadata: { 'bob@example.com': 'card 4111-1111-1111-1111' },
      temperature: 0.2,
      stream: false,
      stop: null,
    };
    expect(JSON.parse(capturer(65_536).capture(body))).toEqual({
      model: 'chat',
      messages: [{ role: 'user', content: 'I am [REDACTED:email], key [REDACTED:api-key]' }],
      metadata: { '[REDACTED:email]': 'card [REDACTED:credit-card]' },
      temperature: 0.2,
      stream: false,
      stop: null,
    });
  });

  it('keeps a body verbatim when the redaction list is empty', () => {
    const body = { content: 'jane@example.com from 10.0.0.1' };
    expect(capturer(65_536, []).capture(body)).toBe(JSON.stringify(body));
  });

  it('cuts a large body at maxBytes with a marker, exactly as cutting the whole redacted JSON would', () => {
    const body = {
      messages: Array.from({ length: 200 }, (_, i) => ({
        role: i % 2 === 0 ? 'user' : 'assistant',
        content: `turn ${i}: écrire à user${i}@example.com — ${'lorem ipsum '.repeat(i % 7)}`,
      })),
      n: 1,
    };
    const whole = JSON.stringify(body).replace(/user\d+@example\.com/g, '[REDACTED:email]');
    const captured = capturer(1024).capture(body);
    expect(captured).toBe(cut(whole, 1024));
    expect(captured.endsWith('…[truncated at 1024 bytes]')).toBe(true);
    expect(Buffer.byteLength(captured.slice(0, -'…[truncated at 1024 bytes]'.length))).toBeLessThanOrEqual(
      1024,
    );
  });

  it('never leaves the first half of a secret that straddles the cut', () => {
    for (let shift = 0; shift < 40; shift++) {
      const body = { content: `${'a '.repeat(100 + shift)}jane.doe@example.com and more text after it` };
      const captured = capturer(256).capture(body);
      expect(captured).not.toMatch(/jane|doe@/);
    }
  });

  it('captures a huge string without copying it whole', () => {
    const captured = capturer(300).capture({ content: `${'x'.repeat(5_000_000)} jane@example.com` });
    expect(captured).toBe(`{"content":"${'x'.repeat(300 - 12)}…[truncated at 300 bytes]`);
  });
});

describe('cut', () => {
  it('leaves text within the limit alone and never splits a character', () => {
    expect(cut('short', 256)).toBe('short');
    const euros = '€'.repeat(100); // 300 bytes
    expect(cut(euros, 256)).toBe(`${'€'.repeat(85)}…[truncated at 256 bytes]`);
  });
});

describe('stream capture', () => {
  it('reassembles text, tool calls and usage into one completion', () => {
    const stream = capturer(65_536).stream();
    stream.add([chunk([{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null }])]);
    stream.add([chunk([{ index: 0, delta: { content: 'Call me at ' }, finish_reason: null }])]);
    stream.add([chunk([{ index: 0, delta: { content: '+1 555 123 ' }, finish_reason: null }])]);
    stream.add([chunk([{ index: 0, delta: { content: '4567.' }, finish_reason: null }])]);
    stream.add([
      chunk([
        {
          index: 0,
          delta: {
            tool_calls: [
              {
                index: 0,
                id: 'call_1',
                type: 'function',
                function: { name: 'get_weather', arguments: '{"ci' },
              },
              { index: 1, id: 'call_2', type: 'function', function: { name: 'get_time', arguments: '' } },
            ],
          },
          finish_reason: null,
        },
      ]),
    ]);
    stream.add([
      chunk([
        {
          index: 0,
          delta: { tool_calls: [{ index: 0, function: { arguments: 'ty":"Paris"}' } }] },
          finish_reason: null,
        },
      ]),
      chunk([
        {
          index: 0,
          delta: { tool_calls: [{ index: 1, function: { arguments: '{}' } }] },
          finish_reason: 'tool_calls',
        },
      ]),
    ]);
    stream.add([chunk([], { usage: { prompt_tokens: 10, completion_tokens: 7, total_tokens: 17 } })]);
    expect(JSON.parse(stream.body())).toEqual({
      id: 'chatcmpl-1',
      object: 'chat.completion',
      model: 'sim-fast',
      choices: [
        {
          index: 0,
          message: {
            role: 'assistant',
            content: 'Call me at [REDACTED:phone].',
            tool_calls: [
              {
                id: 'call_1',
                type: 'function',
                function: { name: 'get_weather', arguments: '{"city":"Paris"}' },
              },
              { id: 'call_2', type: 'function', function: { name: 'get_time', arguments: '{}' } },
            ],
          },
          finish_reason: 'tool_calls',
        },
      ],
      usage: { prompt_tokens: 10, completion_tokens: 7, total_tokens: 17 },
    });
  });

  it('keeps choices in order and cuts the reassembled answer at the cap', () => {
    const stream = capturer(256).stream();
    for (let i = 0; i < 1000; i++) {
      stream.add([
        chunk([
          { index: 1, delta: { content: 'b' }, finish_reason: null },
          { index: 0, delta: { content: 'a' }, finish_reason: null },
        ]),
      ]);
    }
    const body = stream.body();
    expect(
      body.startsWith(
        '{"id":"chatcmpl-1","object":"chat.completion","model":"sim-fast","choices":[{"index":0,',
      ),
    ).toBe(true);
    expect(body.endsWith('…[truncated at 256 bytes]')).toBe(true);
  });
});
