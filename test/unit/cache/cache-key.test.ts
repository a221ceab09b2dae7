import { describe, expect, it } from 'vitest';
import { exactKey, semanticScope } from '../../../src/cache/cache-key.js';
import { cachePolicy, routeVersion } from '../../../src/cache/cache-policy.js';
import { canonicalJson } from '../../../src/cache/canonical-json.js';
import { type RouteConfig, routeSchema } from '../../../src/config/schema.js';
import type { ChatCompletionRequest } from '../../../src/http/wire/openai-chat.js';

const route = (extra: Record<string, unknown> = {}): RouteConfig =>
  routeSchema.parse({ targets: [{ provider: 'sim', model: 'sim-fast' }], cache: {}, ...extra });
const policyOf = (config: RouteConfig, name = 'chat') => {
  const policy = cachePolicy({ [name]: config, embed: route({ cache: undefined }) }, name);
  if (!policy) throw new Error('the route should cache');
  return policy;
};
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
  const policy = policyOf(route());

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

  it('differs with anything that changes the answer, the owner or the route', () => {
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
      exactKey(policyOf(route(), 'other'), null, request()),
    ];
    expect(new Set([base, ...variants]).size).toBe(variants.length + 1);
  });

  it('changes with the route version: a new target or parameter, not a new TTL or description', () => {
    const base = routeVersion(route());
    expect(routeVersion(route({ description: 'support bot', cache: { ttlMs: 5 } }))).toBe(base);
    expect(
      routeVersion(route({ targets: [{ provider: 'sim', model: 'sim-fast', params: { temperature: 0 } }] })),
    ).not.toBe(base);
    expect(routeVersion(route({ fallbacks: [{ provider: 'sim', model: 'sim-smart' }] }))).not.toBe(base);
  });
});

describe('semantic scope', () => {
  const semantic = policyOf(route({ cache: { mode: 'semantic', embeddingRoute: 'embed' } }));
  const withEmbedding = { ...semantic, embedding: semantic.embedding ?? { route: 'embed', version: '' } };

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
