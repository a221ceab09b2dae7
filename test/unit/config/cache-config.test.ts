import { describe, expect, it } from 'vitest';
import { ConfigError, type ConfigProblem, parseConfig } from '../../../src/config/load.js';

const providers = { sim: { type: 'sim' } };
const target = { provider: 'sim', model: 'sim-fast' };
const embed = { targets: [{ provider: 'sim', model: 'sim-embed' }] };

function problemsOf(doc: unknown): ConfigProblem[] {
  try {
    parseConfig(doc, {});
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  throw new Error('expected the config to be rejected');
}

describe('cache configuration', () => {
  it('defaults to an in-memory store and leaves routes uncached unless they opt in', () => {
    const config = parseConfig({ providers, routes: { chat: { targets: [target] } } }, {});
    expect(config.cache).toMatchObject({ store: 'memory', maxBytes: 268_435_456, maxEntryBytes: 1_048_576 });
    expect(config.routes.chat?.cache).toBeUndefined();
  });

  it('fills a route cache block with its defaults', () => {
    const config = parseConfig({ providers, routes: { chat: { targets: [target], cache: {} } } }, {});
    expect(config.routes.chat?.cache).toEqual({
      mode: 'exact',
      ttlMs: 3_600_000,
      scope: 'route',
      threshold: 0.95,
      embeddingTimeoutMs: 2_000,
    });
  });

  it('needs a Redis address for the redis store', () => {
    expect(problemsOf({ cache: { store: 'redis' } })).toEqual([
      expect.objectContaining({ path: 'cache.redisUrl', message: 'store redis needs cache.redisUrl' }),
    ]);
    expect(problemsOf({ cache: { store: 'redis', redisUrl: 'http://redis:6379' } })[0]?.path).toBe(
      'cache.redisUrl',
    );
  });

  it('needs an existing embedding route, other than the route itself, for the semantic mode', () => {
    const semantic = (cache: Record<string, unknown>) =>
      problemsOf({
        providers,
        routes: { chat: { targets: [target], cache: { mode: 'semantic', ...cache } } },
      });
    expect(semantic({})).toEqual([
      expect.objectContaining({
        path: 'routes.chat.cache.embeddingRoute',
        message: 'mode semantic needs an embedding route',
      }),
    ]);
    expect(semantic({ embeddingRoute: 'chat' })).toEqual([
      expect.objectContaining({ message: 'a route cannot embed its own requests' }),
    ]);
    expect(
      problemsOf({
        providers,
        routes: { chat: { targets: [target], cache: { mode: 'semantic', embeddingRoute: 'embedd' } }, embed },
      }),
    ).toEqual([
      expect.objectContaining({
        path: 'routes.chat.cache.embeddingRoute',
        message: 'unknown route "embedd"',
        hint: 'routes defined: chat, embed; did you mean "embed"?',
      }),
    ]);
  });

  it('rejects semantic settings on an exact cache rather than ignoring them', () => {
    expect(
      problemsOf({
        providers,
        routes: { chat: { targets: [target], cache: { embeddingRoute: 'embed', threshold: 0.9 } }, embed },
      }),
    ).toEqual([
      expect.objectContaining({
        path: 'routes.chat.cache.embeddingRoute',
        message: 'embeddingRoute is only used by the semantic cache',
      }),
      expect.objectContaining({
        path: 'routes.chat.cache.threshold',
        message: 'threshold is only used by the semantic cache',
      }),
    ]);
  });

  it('accepts a semantic cache on a route with an embedding route', () => {
    const config = parseConfig(
      {
        providers,
        routes: {
          chat: { targets: [target], cache: { mode: 'semantic', embeddingRoute: 'embed', threshold: 0.9 } },
          embed,
        },
      },
      {},
    );
    expect(config.routes.chat?.cache).toMatchObject({
      mode: 'semantic',
      embeddingRoute: 'embed',
      threshold: 0.9,
    });
  });
});
