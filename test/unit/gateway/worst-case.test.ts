import { describe, expect, it, onTestFinished } from 'vitest';
import { sluiceConfigSchema } from '../../../src/config/schema.js';
import type { Plan } from '../../../src/gateway/resolve.js';
import { buildRuntime } from '../../../src/gateway/runtime.js';
import {
  chatTokenEstimate,
  chatTokens,
  defaultMaxOutputTokens,
  embeddingTokenEstimate,
  worstCaseUsd,
} from '../../../src/gateway/worst-case.js';
import { chatCompletionRequestSchema } from '../../../src/http/wire/openai-chat.js';
import { tokenCounter } from '../../../src/policy/token-count.js';

/** A route whose first target caps max_tokens, and a dearer fallback with no cap. */
function planOf(route: 'chat' | 'local'): Plan {
  const runtime = buildRuntime(
    sluiceConfigSchema.parse({
      providers: {
        openai: { type: 'openai', apiKey: 'sk-test' },
        local: { type: 'openai-compatible', baseUrl: 'http://127.0.0.1:1/v1' },
      },
      prices: {
        'openai/cheap': { input: 1, output: 2 },
        'openai/dear': { input: 10, output: 40, cacheWrite: 12 },
      },
      routes: {
        chat: {
          targets: [{ provider: 'openai', model: 'cheap', params: { max_tokens: 100 } }],
          fallbacks: [{ provider: 'openai', model: 'dear' }],
        },
        local: { targets: [{ provider: 'local', model: 'llama' }] },
      },
    }),
  );
  onTestFinished(() => runtime.close());
  const r = runtime.routes.get(route);
  if (!r) throw new Error(route);
  return { route: r, order: [...r.targets, ...r.fallbacks] };
}

const chat = (body: Record<string, unknown>) =>
  chatCompletionRequestSchema.parse({
    model: 'chat',
    messages: [{ role: 'user', content: 'Hello there, how are you?' }],
    ...body,
  });

describe('a request’s worst case', () => {
  it('counts the prompt with the tokenizer and takes the largest output ceiling any target of the plan may use', async () => {
    const counter = await tokenCounter();
    const request = chat({ max_tokens: 300, n: 2 });
    // The first target caps max_tokens at 100, but the fallback would send the client's 300.
    expect(await chatTokenEstimate(request, planOf('chat'))).toEqual({
      input: counter.prompt(request),
      output: 600,
    });
    expect((await chatTokenEstimate(chat({ max_tokens: 50 }), planOf('chat'))).output).toBe(100);
    expect((await chatTokenEstimate(chat({}), planOf('local'))).output).toBe(defaultMaxOutputTokens);
    expect(
      (await chatTokenEstimate(chat({ max_completion_tokens: 70, max_tokens: 90 }), planOf('local'))).output,
    ).toBe(70);
  });

  it('bounds the prompt at once, never below the count, with the same output ceiling', async () => {
    const request = chat({ max_tokens: 300, n: 2 });
    const { bound, exact } = chatTokens(request, planOf('chat'));
    const counted = await exact();
    expect(counted).toEqual(await chatTokenEstimate(request, planOf('chat')));
    expect(bound.output).toBe(counted.output);
    expect(bound.input).toBeGreaterThanOrEqual(counted.input);
  });

  it('adds a typical size for each image, audio or file part, which the tokenizer cannot count', async () => {
    const withImage = chatCompletionRequestSchema.parse({
      model: 'chat',
      messages: [
        {
          role: 'user',
          content: [
            { type: 'text', text: 'What is in this picture?' },
            { type: 'image_url', image_url: { url: 'data:image/png;base64,AAAA' } },
          ],
        },
      ],
    });
    const counter = await tokenCounter();
    expect((await chatTokenEstimate(withImage, planOf('local'))).input).toBe(
      counter.prompt(withImage) + 1000,
    );
  });

  it('counts embedding inputs, with no output', async () => {
    expect(await embeddingTokenEstimate({ model: 'e', input: [[1, 2, 3], [4]] })).toEqual({
      input: 4,
      output: 0,
    });
  });

  it('prices the tokens at the dearest target of the plan, at its dearest rates', () => {
    // 1000 prompt tokens at the cache-write rate ($12/M), 100 output tokens at $40/M.
    expect(worstCaseUsd(planOf('chat'), { input: 1000, output: 100 })).toBeCloseTo(0.012 + 0.004, 12);
  });

  it('is unknown when no target of the plan has a price', () => {
    expect(worstCaseUsd(planOf('local'), { input: 1000, output: 100 })).toBeNull();
  });
});
