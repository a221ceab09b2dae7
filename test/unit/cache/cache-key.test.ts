import { describe, expect, it } from 'vitest';
import { exactKey, semanticScope } from '../../../src/cache/cache-key.js';
import type { CachePolicy } from '../../../src/cache/cache-policy.js';
import { canonicalJson } from '../../../src/cache/canonical-json.js';
import { routeCacheSchema } from '../../../src/config/schema.js';
import type { ChatCompletionRequest } from '../../../src/http/wire/openai-chat.js';

const policyOf = (extra: Partial<CachePolicy> = {}): CachePolicy => ({
  route: 'chat',
  version: 'v1',
  settings: routeCacheSchema.parse({}),
  ...extra,
});
const request = (extra: Partial<ChatCompletionRequest> = {}): ChatCompletionRequest => ({
  model: 'chat',
  messages: [{ role: 'user', content: 'Hello' }],
  ...extra,
});

describe('canonical JSON', () => {
  it('sorts keys at every depth, keeps array order and leaves undefined out', () => {
    expect(canonicalJson({ b: 1, a: { d: [3, { z: 1, y: 2 }], c: undefined } })).toBe(
      '{"a":{"d":[3,{"y":2,"z":1}]},"b":1}',
    );
  });
});

describe('exact cache key', () => {
  const policy = policyOf();

  it('is the same whatever the key order, delivery options and attribution of a request', () => {
    const base = exactKey(policy, null, request({ temperature: 0 }));
    const same: ChatCompletionRequest = {
      temperature: 0,
      messages: [{ content: 'Hello', role: 'user' }],
      model: 'chat',
      stream: true,
      stream_options: { include_usage: true },
      user: 'u-1',
      metadata: { team: 'a' },
      n: 1,
      seed: null,
    };
    expect(exactKey(policy, null, same)).toBe(base);
  });

  it('differs with anything that changes the answer, the owner, the route or its version', () => {
    const base = exactKey(policy, null, request());
    const variants = [
      exactKey(policy, null, request({ temperature: 0.5 })),
      exactKey(policy, null, request({ max_tokens: 10 })),
      exactKey(policy, null, request({ response_format: { type: 'json_object' } })),
      exactKey(policy, null, request({ messages: [{ role: 'user', content: 'Hello!' }] })),
      exactKey(
        policy,
        null,
        request({ messages: [{ role: 'user', content: [{ type: 'text', text: 'Hello' }] }] }),
      ),
      exactKey(policy, 'key-a', request()),
      exactKey(policyOf({ route: 'other' }), null, request()),
      exactKey(policyOf({ version: 'v2' }), null, request()),
    ];
    expect(new Set([base, ...variants]).size).toBe(variants.length + 1);
  });
});

describe('semantic scope', () => {
  const withEmbedding = {
    ...policyOf({ settings: routeCacheSchema.parse({ mode: 'semantic', embeddingRoute: 'embed' }) }),
    embedding: { route: 'embed', version: 'e1' },
  };

  it('leaves the embedded text out, and keeps everything else, earlier turns included', () => {
    const system = [{ role: 'system' as const, content: 'Be brief.' }];
    const one = semanticScope(withEmbedding, null, request(), system);
    expect(
      semanticScope(withEmbedding, null, request({ messages: [{ role: 'user', content: 'Hi' }] }), system),
    ).toBe(one);
    expect(semanticScope(withEmbedding, null, request(), [{ role: 'system', content: 'Be long.' }])).not.toBe(
      one,
    );
    expect(semanticScope(withEmbedding, null, request({ temperature: 1 }), system)).not.toBe(one);
    expect(
      semanticScope(
        { ...withEmbedding, embedding: { route: 'embed', version: 'other' } },
        null,
        request(),
        system,
      ),
    ).not.toBe(one);
  });
});
