import { afterEach, describe, expect, it } from 'vitest';
import { type SluiceConfigInput, sluiceConfigSchema } from '../../../src/config/schema.js';
import type { Principal } from '../../../src/gateway/call.js';
import { type Plan, resolvePlan } from '../../../src/gateway/resolve.js';
import { buildRuntime, type Runtime } from '../../../src/gateway/runtime.js';
import { type ApiError, isApiError } from '../../../src/http/api-error.js';

const anyone: Principal = { keyName: null };
const runtimes: Runtime[] = [];

afterEach(async () => {
  await Promise.all(runtimes.splice(0).map((r) => r.close()));
});

/** A runtime from a sluice.yaml object; "sim" providers need a baseUrl, which is never called here. */
function runtimeOf(config: Partial<SluiceConfigInput>): Runtime {
  const runtime = buildRuntime(
    sluiceConfigSchema.parse({
      providers: {
        sim: { type: 'sim', baseUrl: 'http://127.0.0.1:1' },
        other: { type: 'sim', baseUrl: 'http://127.0.0.1:2' },
      },
      ...config,
    }),
  );
  runtimes.push(runtime);
  return runtime;
}

const target = (model: string, weight?: number, provider = 'sim') => ({ provider, model, weight });

function plan(result: Plan | ApiError): Plan {
  if (isApiError(result)) throw new Error(`expected a plan, got ${result.status}: ${result.message}`);
  return result;
}

function failure(result: Plan | ApiError): ApiError {
  if (!isApiError(result)) throw new Error(`expected an error, got a plan for ${result.route.name}`);
  return result;
}

const ids = (p: Plan) => p.order.map((t) => t.id);
const draws = (...values: number[]) => {
  let i = 0;
  return () => values[i++ % values.length] as number;
};

describe('resolvePlan: which route a model name means', () => {
  const routes = {
    chat: { targets: [target('sim-fast')], fallbacks: [target('sim-smart')] },
    cheap: { targets: [target('sim-fast')], retries: { attempts: 5, baseDelayMs: 1 } },
  };

  it('finds a route by name and carries its timeouts and retries', () => {
    const p = plan(resolvePlan(runtimeOf({ routes }), 'cheap', anyone));
    expect(p.route.name).toBe('cheap');
    expect(ids(p)).toEqual(['sim/sim-fast']);
    expect(p.route.retries).toMatchObject({ attempts: 5, baseDelayMs: 1 });
    expect(p.route.timeouts).toEqual({ connectMs: 5_000, firstTokenMs: 60_000, totalMs: 600_000 });
  });

  it('answers 404 to an unknown model, listing the routes to use instead', () => {
    const error = failure(resolvePlan(runtimeOf({ routes }), 'gpt-5', anyone));
    expect(error).toMatchObject({ status: 404, kind: 'not_found', code: 'model_not_found', param: 'model' });
    expect(error.message).toBe("The model 'gpt-5' is not a route of this gateway. Use one of: chat, cheap.");
  });

  it('says so when no route is configured', () => {
    const error = failure(resolvePlan(runtimeOf({}), 'chat', anyone));
    expect(error.message).toContain('Use one of: (no routes configured).');
  });

  it('lists only the routes the key may use', () => {
    const error = failure(resolvePlan(runtimeOf({ routes }), 'gpt-5', { keyName: 'app', routes: ['cheap'] }));
    expect(error.message).toContain('Use one of: cheap.');
    expect(error.message).not.toContain('chat');
  });

  it('answers 403 when the key may not use the route', () => {
    const runtime = runtimeOf({ routes });
    const error = failure(resolvePlan(runtime, 'chat', { keyName: 'app', routes: ['cheap'] }));
    expect(error).toMatchObject({
      status: 403,
      kind: 'permission',
      code: 'route_not_allowed',
      param: 'model',
      message: "This API key may not use the route 'chat'.",
    });
    expect(plan(resolvePlan(runtime, 'cheap', { keyName: 'app', routes: ['cheap'] })).route.name).toBe(
      'cheap',
    );
  });

  it('rejects "provider/model" unless direct models are enabled', () => {
    const error = failure(resolvePlan(runtimeOf({ routes }), 'sim/sim-fast', anyone));
    expect(error.status).toBe(404);
    expect(error.message).not.toContain('provider/model');
  });

  describe('with directModels', () => {
    const direct = () => runtimeOf({ routes, directModels: true });

    it('makes "provider/model" a one-target route with default timeouts and retries', () => {
      const p = plan(resolvePlan(direct(), 'other/some-model', anyone));
      expect(p.route.name).toBe('other/some-model');
      expect(p.order).toHaveLength(1);
      expect(p.order[0]).toMatchObject({
        id: 'other/some-model',
        provider: { name: 'other' },
        ref: { model: 'some-model' },
      });
      expect(p.route.fallbacks).toEqual([]);
      expect(p.route.retries).toEqual({
        attempts: 2,
        baseDelayMs: 200,
        maxDelayMs: 5_000,
        maxRetryAfterMs: 10_000,
      });
    });

    it('keeps the rest of the name after the first slash as the provider model', () => {
      const p = plan(resolvePlan(direct(), 'sim/org/model:tag', anyone));
      expect(p.order[0]?.ref.model).toBe('org/model:tag');
    });

    it('prefers a route over a provider of the same name', () => {
      const runtime = runtimeOf({
        directModels: true,
        routes: { 'sim/x': { targets: [target('sim-smart')] } },
      });
      expect(ids(plan(resolvePlan(runtime, 'sim/x', anyone)))).toEqual(['sim/sim-smart']);
    });

    it.each(['nowhere/model', 'sim/', '/sim-fast', 'sim-fast'])(
      'answers 404 to %s, mentioning "provider/model"',
      (model) => {
        const error = failure(resolvePlan(direct(), model, anyone));
        expect(error.status).toBe(404);
        expect(error.message).toContain('Use one of: chat, cheap, or "provider/model".');
      },
    );

    it('still applies key route restrictions to direct models', () => {
      const error = failure(resolvePlan(direct(), 'sim/sim-fast', { keyName: 'app', routes: ['chat'] }));
      expect(error).toMatchObject({ status: 403, code: 'route_not_allowed' });
    });
  });
});

describe('resolvePlan: the order targets are tried in', () => {
  const weighted = {
    targets: [target('a', 1), target('b', 3), target('c', 2)],
    fallbacks: [target('f2'), target('f1')],
  };
  const runtime = () => runtimeOf({ routes: { chat: weighted } });

  it('puts the weighted-random choice first, the other targets by weight, then the fallbacks in order', () => {
    // Total weight 6: [0, 1) is a, [1, 4) is b, [4, 6) is c.
    const order = (draw: number) => ids(plan(resolvePlan(runtime(), 'chat', anyone, draws(draw))));
    expect(order(0)).toEqual(['sim/a', 'sim/b', 'sim/c', 'sim/f2', 'sim/f1']);
    expect(order(0.2)).toEqual(['sim/b', 'sim/c', 'sim/a', 'sim/f2', 'sim/f1']);
    expect(order(0.6)).toEqual(['sim/b', 'sim/c', 'sim/a', 'sim/f2', 'sim/f1']);
    expect(order(0.7)).toEqual(['sim/c', 'sim/b', 'sim/a', 'sim/f2', 'sim/f1']);
    expect(order(0.99)).toEqual(['sim/c', 'sim/b', 'sim/a', 'sim/f2', 'sim/f1']);
  });

  it('chooses each target in proportion to its weight', () => {
    const r = runtime();
    const counts: Record<string, number> = {};
    const n = 600;
    for (let i = 0; i < n; i++) {
      const first = plan(resolvePlan(r, 'chat', anyone, () => (i + 0.5) / n)).order[0]?.id ?? '';
      counts[first] = (counts[first] ?? 0) + 1;
    }
    expect(counts).toEqual({ 'sim/a': 100, 'sim/b': 300, 'sim/c': 200 });
  });

  it('keeps equal peers in config order behind the chosen one', () => {
    const r = runtimeOf({ routes: { chat: { targets: [target('a'), target('b'), target('c')] } } });
    expect(ids(plan(resolvePlan(r, 'chat', anyone, draws(0.5))))).toEqual(['sim/b', 'sim/a', 'sim/c']);
  });

  it('never chooses a zero-weight target, and leaves it out of the plan', () => {
    const r = runtimeOf({
      routes: {
        chat: {
          targets: [target('off', 0), target('on', 1), target('drained', 0)],
          fallbacks: [target('f')],
        },
      },
    });
    for (const draw of [0, 0.25, 0.5, 0.75, 1 - Number.EPSILON]) {
      expect(ids(plan(resolvePlan(r, 'chat', anyone, draws(draw))))).toEqual(['sim/on', 'sim/f']);
    }
  });

  it('goes straight to the fallbacks when every target has weight zero', () => {
    const r = runtimeOf({
      routes: { chat: { targets: [target('off', 0)], fallbacks: [target('f1'), target('f2', 1, 'other')] } },
    });
    expect(ids(plan(resolvePlan(r, 'chat', anyone, draws(0.5))))).toEqual(['sim/f1', 'other/f2']);
  });

  it('does not draw a random number for a single target', () => {
    const r = runtimeOf({ routes: { chat: { targets: [target('only')], fallbacks: [target('f')] } } });
    const p = plan(
      resolvePlan(r, 'chat', anyone, () => {
        throw new Error('drew a random number');
      }),
    );
    expect(ids(p)).toEqual(['sim/only', 'sim/f']);
  });
});
