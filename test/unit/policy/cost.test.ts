import { describe, expect, it } from 'vitest';
import { formatUsd, formatUsdFixed, toUsd, usageCost } from '../../../src/policy/cost.js';
import type { ModelPrice } from '../../../src/policy/model-price.js';
import { priceCatalog } from '../../../src/policy/price-catalog.js';
import { anthropicAdapter } from '../../../src/providers/anthropic.js';
import type { ChatCompletion, TokenUsage } from '../../../src/providers/canonical.js';
import { tokenUsage } from '../../../src/providers/canonical.js';
import { geminiAdapter } from '../../../src/providers/gemini.js';
import { seededRandom } from '../../support/seeded-random.js';

const usage = (fields: Partial<TokenUsage>): TokenUsage => ({
  inputTokens: 0,
  outputTokens: 0,
  cachedInputTokens: 0,
  cacheWriteTokens: 0,
  reasoningTokens: 0,
  ...fields,
});
const { openai, anthropic, gemini } = priceCatalog.families;
const price = (table: Record<string, ModelPrice>, model: string): ModelPrice => {
  const found = table[model];
  if (!found) throw new Error(`no catalog price for ${model}`);
  return found;
};
/** Cost in USD, via the exact integer sum. */
const usd = (u: TokenUsage, p: ModelPrice) => toUsd(usageCost(u, p));

describe('the cost of one answer', () => {
  it('prices input and output at their per-million rates', () => {
    // 1,000 × $2.50/M + 200 × $10/M = $0.0025 + $0.002
    expect(usd(usage({ inputTokens: 1000, outputTokens: 200 }), price(openai, 'gpt-4o'))).toBe(0.0045);
  });

  it('is exact to the fraction of a cent where floating point is not', () => {
    // Three tokens at $2.50/M are 7.5 micro-dollars; per-token dollars in doubles make 7.500000000000001.
    expect(toUsd(usageCost(usage({ inputTokens: 3 }), price(openai, 'gpt-4o')))).toBe(0.0000075);
    expect((2.5 / 1e6) * 3).not.toBe(0.0000075);
    // $0.01875/M (Gemini 1.5 Flash, cached) is 18,750 pico-dollars a token.
    expect(
      usageCost(usage({ inputTokens: 1, cachedInputTokens: 1 }), price(gemini, 'gemini-1.5-flash')),
    ).toBe(18_750);
  });

  it('prices cached prompt tokens at the cached rate, once, not also as input (OpenAI)', () => {
    // prompt_tokens 2,000 includes 1,500 cached: 500 × $0.15/M + 1,500 × $0.075/M + 100 × $0.60/M
    const u = tokenUsage({
      prompt_tokens: 2000,
      completion_tokens: 100,
      total_tokens: 2100,
      prompt_tokens_details: { cached_tokens: 1500 },
    });
    expect(u).toBeDefined();
    expect(usd(u as TokenUsage, price(openai, 'gpt-4o-mini'))).toBe(0.0002475);
  });

  it('prices Anthropic cache reads and writes apart from input, as the adapter reports them', () => {
    const adapter = anthropicAdapter({ apiKey: 'test' });
    const completion: ChatCompletion = adapter.parseChat(
      {
        id: 'msg_1',
        type: 'message',
        role: 'assistant',
        model: 'claude-3-5-sonnet-20241022',
        content: [{ type: 'text', text: 'Hi' }],
        stop_reason: 'end_turn',
        stop_sequence: null,
        // input_tokens excludes the cache: 100 fresh + 2,000 read + 900 written.
        usage: {
          input_tokens: 100,
          cache_read_input_tokens: 2000,
          cache_creation_input_tokens: 900,
          output_tokens: 50,
        },
      },
      { model: 'claude-3-5-sonnet-20241022' },
    );
    const u = tokenUsage(completion.usage) as TokenUsage;
    expect(u).toMatchObject({ inputTokens: 3000, cachedInputTokens: 2000, cacheWriteTokens: 900 });
    // 100 × $3 + 2,000 × $0.30 + 900 × $3.75 + 50 × $15, per million
    expect(usd(u, price(anthropic, 'claude-3-5-sonnet'))).toBe(0.005025);
  });

  it('prices Gemini thinking as output and its cached content at the cached rate', () => {
    const adapter = geminiAdapter({ apiKey: 'test' });
    const completion = adapter.parseChat(
      {
        candidates: [{ content: { role: 'model', parts: [{ text: 'Hi' }] }, finishReason: 'STOP' }],
        // promptTokenCount includes the cached content; candidatesTokenCount leaves thinking out.
        usageMetadata: {
          promptTokenCount: 11_500,
          cachedContentTokenCount: 10_000,
          candidatesTokenCount: 1000,
          thoughtsTokenCount: 10_000,
          totalTokenCount: 22_500,
        },
      },
      { model: 'gemini-2.5-pro' },
    );
    const u = tokenUsage(completion.usage) as TokenUsage;
    expect(u).toMatchObject({ inputTokens: 11_500, cachedInputTokens: 10_000, outputTokens: 11_000 });
    // 1,500 × $1.25 + 10,000 × $0.31 + 11,000 × $10, per million
    expect(usd(u, price(gemini, 'gemini-2.5-pro'))).toBe(0.114975);
  });

  it('prices reasoning as output, unless the price lists a reasoning rate', () => {
    const reasoned = usage({ inputTokens: 0, outputTokens: 500, reasoningTokens: 300 });
    expect(usd(reasoned, price(openai, 'o4-mini'))).toBe(0.0022);
    // 200 visible × $2 + 300 reasoning × $8, per million
    expect(usd(reasoned, { input: 1, output: 2, reasoning: 8 })).toBe(0.0028);
  });

  it('switches the whole request to the long-context tier only past its threshold', () => {
    const pro = price(gemini, 'gemini-2.5-pro');
    expect(usd(usage({ inputTokens: 200_000, outputTokens: 1000 }), pro)).toBe(0.26);
    // 250,000 × $2.50 + 1,000 × $15, per million
    expect(usd(usage({ inputTokens: 250_000, outputTokens: 1000 }), pro)).toBe(0.64);
  });

  it('never counts more cached or reasoning tokens than the totals hold', () => {
    const odd = usage({ inputTokens: 10, cachedInputTokens: 50, outputTokens: 5, reasoningTokens: 9 });
    expect(usageCost(odd, { input: 1, cachedInput: 0.5, output: 2, reasoning: 4 })).toBe(
      10 * 500_000 + 5 * 4_000_000,
    );
  });

  it('writes USD as a plain decimal for headers', () => {
    expect(formatUsd(toUsd(1234))).toBe('0.000000001234');
    expect(formatUsd(toUsd(4_500_000_000))).toBe('0.0045');
    expect(formatUsd(0)).toBe('0');
    expect(formatUsd(toUsd(12_000_000_000_000))).toBe('12');
  });

  it('writes every amount as toFixed(12) without trailing zeros did', () => {
    // The integer path (whole pico-dollars under $4,096) and toFixed, compared value by value.
    const values: number[] = [
      0,
      -0,
      1,
      -1,
      0.1,
      0.2,
      0.1 + 0.2,
      1 / 3,
      2 / 3,
      1e-12,
      5e-13,
      4.9e-13,
      1.5e-12,
      1e-13,
      -1e-13,
      1e-21,
      1e-300,
      Number.MIN_VALUE,
      4095.999999999999,
      4096,
      4096.000000000001,
      4095,
      9007.199254740992,
      1e15,
      1e20,
      1e21,
      1.5e21,
      1e300,
      Number.MAX_VALUE,
      Number.MAX_SAFE_INTEGER,
      Number.EPSILON,
      Number.NaN,
      Number.POSITIVE_INFINITY,
      Number.NEGATIVE_INFINITY,
      0.0000075,
      0.0000114,
      123.456,
    ];
    // A fixed seed: the same values on every run, and a failure can be replayed.
    const random = seededRandom(20261130);
    for (let i = 0; i < 20_000; i++) {
      const digits = Math.floor(random() * 17);
      const pico = Math.floor(random() * 10 ** digits);
      values.push(toUsd(pico), -toUsd(pico), toUsd(pico * 10 ** Math.floor(random() * 6)));
      // Doubles that are no whole pico-dollar, small and large.
      values.push(
        random() * 10 ** (Math.floor(random() * 30) - 15),
        -random() * 10 ** Math.floor(random() * 25),
      );
      // Neighbours of a pico-dollar: one ulp either side.
      const exact = toUsd(pico);
      const ulp = exact === 0 ? Number.MIN_VALUE : exact * Number.EPSILON;
      values.push(exact + ulp, exact - ulp);
    }
    for (let pico = 4_095_999_999_000_000; pico <= 4_096_000_000_001_000; pico += 997)
      values.push(toUsd(pico));
    for (const value of values) {
      if (formatUsd(value) !== formatUsdFixed(value))
        expect([value, formatUsd(value)]).toEqual([value, formatUsdFixed(value)]);
    }
    expect(formatUsd(-0)).toBe('0');
    expect(formatUsd(1e21)).toBe('1e+21');
    expect(formatUsd(Number.NaN)).toBe('NaN');
    expect(formatUsd(-toUsd(7_500_000))).toBe('-0.0000075');
  });
});
