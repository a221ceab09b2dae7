import { beforeAll, describe, expect, it } from 'vitest';
import { chatReservation, maxOutputTokens, worstCase } from '../../../src/policy/reservation.js';
import {
  embeddingTokenBound,
  promptTokenBound,
  type TokenCounter,
  tokenCounter,
} from '../../../src/policy/token-count.js';
import { countPromptTokens } from '../../../src/sim/completion.js';

const sonnet = { input: 3, cacheWrite: 3.75, cachedInput: 0.3, output: 15 };

describe('counting tokens without the provider', () => {
  let counter: TokenCounter;
  beforeAll(async () => {
    counter = await tokenCounter();
  });
  it('counts a prompt as the simulator (and OpenAI) frames it', () => {
    const messages = [
      { role: 'system' as const, content: 'You are terse.' },
      { role: 'user' as const, content: [{ type: 'text' as const, text: 'Tell me about sluice gates.' }] },
    ];
    expect(counter.prompt({ messages })).toBe(
      countPromptTokens({
        messages: [
          { role: 'system', text: 'You are terse.' },
          { role: 'user', text: 'Tell me about sluice gates.' },
        ],
        tools: [],
      }),
    );
  });

  it('counts tool definitions and earlier tool calls', () => {
    const plain = counter.prompt({ messages: [{ role: 'user', content: 'weather?' }] });
    const tools = [
      { type: 'function' as const, function: { name: 'get_weather', parameters: { type: 'object' } } },
    ];
    expect(counter.prompt({ messages: [{ role: 'user', content: 'weather?' }], tools })).toBe(
      plain + counter.count(JSON.stringify(tools)),
    );
  });

  it('counts embedding inputs, token ids as they are', () => {
    expect(counter.embeddingInput('hello world')).toBe(counter.count('hello world'));
    expect(counter.embeddingInput(['a b', 'c'])).toBe(counter.count('a b') + counter.count('c'));
    expect(counter.embeddingInput([1, 2, 3])).toBe(3);
    expect(counter.embeddingInput([[1, 2], [3]])).toBe(3);
  });
});

describe('bounding tokens without the tokenizer', () => {
  const texts = [
    '',
    'Tell me about sluice gates.',
    'The quick brown fox jumps over the lazy dog. '.repeat(50),
    '    indented\n\n\tcode();   // with   runs of   spaces\r\n',
    '日本語のテキストと中文文本，한국어 텍스트',
    'emoji 👩‍👩‍👧‍👦🏳️‍🌈 and accents: déjà vu, Ωμέγα',
    '<|endoftext|><|im_start|>user<|im_end|><|endofprompt|>',
    'lone surrogates \ud800 and \udfff in text',
    '0123456789'.repeat(40),
    Array.from({ length: 500 }, (_, i) => String.fromCharCode(32 + ((i * 7919) % 20000))).join(''),
  ];
  let counter: TokenCounter;
  beforeAll(async () => {
    counter = await tokenCounter();
  });

  it('never bounds a prompt below the tokenizer’s count, whatever the script or symbols', () => {
    for (const text of texts) {
      const request = {
        messages: [
          { role: 'system' as const, content: text },
          { role: 'user' as const, content: [{ type: 'text' as const, text }] },
          {
            role: 'assistant' as const,
            content: null,
            tool_calls: [
              {
                id: 'c1',
                type: 'function' as const,
                function: { name: 'lookup', arguments: JSON.stringify({ q: text }) },
              },
            ],
          },
        ],
        tools: [
          {
            type: 'function' as const,
            function: { name: 'lookup', description: text, parameters: { type: 'object' } },
          },
        ],
      };
      expect(promptTokenBound(request)).toBeGreaterThanOrEqual(counter.prompt(request));
    }
  });

  it('never bounds an embedding input below the tokenizer’s count', () => {
    for (const text of texts) {
      expect(embeddingTokenBound(text)).toBeGreaterThanOrEqual(counter.embeddingInput(text));
      expect(embeddingTokenBound([text, text])).toBeGreaterThanOrEqual(counter.embeddingInput([text, text]));
    }
    expect(embeddingTokenBound([[1, 2, 3], [4]])).toBe(4);
  });
});

describe('reserving for the worst case', () => {
  it('prices every prompt token at the dearer of input and cache write, every output token at the dearer of output and reasoning', () => {
    // 1,000 × $3.75 + 500 × $15, per million
    expect(worstCase(sonnet, 1000, 500)).toEqual({
      promptTokens: 1000,
      maxOutputTokens: 500,
      tokens: 1500,
      picoUsd: 11_250_000_000,
      usd: 0.01125,
    });
    expect(worstCase({ input: 1, output: 2, reasoning: 8 }, 0, 100).usd).toBe(0.0008);
  });

  it('uses the long-context tier when the prompt alone passes it', () => {
    const tiered = { input: 1, output: 1, longContext: { aboveInputTokens: 100, input: 10, output: 10 } };
    expect(worstCase(tiered, 100, 0).usd).toBe(0.0001);
    expect(worstCase(tiered, 101, 0).usd).toBe(0.00101);
  });

  it('prices a prompt bound past the long-context tier at the dearer of the two tiers, as it may stand for a shorter prompt', () => {
    const cheaperLong = {
      input: 10,
      output: 10,
      longContext: { aboveInputTokens: 100, input: 1, output: 1 },
    };
    expect(worstCase(cheaperLong, 101, 0).usd).toBe(0.00101);
  });

  it('reserves tokens but no money when the price is unknown', () => {
    expect(worstCase(undefined, 10, 20)).toMatchObject({ tokens: 30, picoUsd: null, usd: null });
  });

  it('takes the answer ceiling from the request, else the default, times n', () => {
    expect(maxOutputTokens({ max_completion_tokens: 300, max_tokens: 100 }, 4096)).toBe(300);
    expect(maxOutputTokens({ max_tokens: 100, n: 3 }, 4096)).toBe(300);
    expect(maxOutputTokens({ max_tokens: null }, 4096)).toBe(4096);
  });

  it('counts a chat request’s prompt with the tokenizer', async () => {
    const counter = await tokenCounter();
    const request = {
      messages: [{ role: 'user' as const, content: 'Tell me about sluice gates.' }],
      max_tokens: 50,
    };
    const reservation = await chatReservation(sonnet, request, { defaultMaxOutputTokens: 4096 });
    expect(reservation.promptTokens).toBe(counter.prompt(request));
    expect(reservation.maxOutputTokens).toBe(50);
    expect(reservation.picoUsd).toBe(reservation.promptTokens * 3_750_000 + 50 * 15_000_000);
  });
});
