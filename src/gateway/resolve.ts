import { retriesSchema, timeoutsSchema } from '../config/schema.js';
import { type ApiError, apiError } from '../http/api-error.js';
import { targetPrice } from '../policy/price-lookup.js';
import type { Principal } from './call.js';
import type { Route, Runtime, Target } from './runtime.js';

export interface Plan {
  route: Route;
  /** Targets in the order they will be tried: the chosen one, the route's others, then its fallbacks. */
  order: Target[];
}

const directDefaults = { timeouts: timeoutsSchema.parse({}), retries: retriesSchema.parse({}) };

/**
 * The resolve stage: the `model` a client sent names a route (or "provider/model" when the
 * config allows direct models); the plan orders its targets for dispatch.
 */
export function resolvePlan(
  runtime: Runtime,
  model: string,
  principal: Principal,
  random: () => number = Math.random,
  choose?: (route: Route, live: Target[]) => Target,
): Plan | ApiError {
  let route = runtime.routes.get(model);
  if (!route && runtime.config.directModels) route = directRoute(runtime, model);
  if (!route) {
    const names = [...runtime.routes.keys()].filter((name) => allowed(principal, name));
    return apiError(
      'not_found',
      404,
      `The model '${model}' is not a route of this gateway. Use one of: ${names.join(', ') || '(no routes configured)'}${runtime.config.directModels ? ', or "provider/model"' : ''}.`,
      { code: 'model_not_found', param: 'model' },
    );
  }
  if (!allowed(principal, route.name)) {
    return apiError('permission', 403, `This API key may not use the route '${route.name}'.`, {
      code: 'route_not_allowed',
      param: 'model',
    });
  }
  return { route, order: order(route, random, choose) };
}

function allowed(principal: Principal, route: string): boolean {
  return principal.routes === undefined || principal.routes.includes(route);
}

/** The route a "provider/model" name stands for (with directModels), or undefined. */
export function directRoute(runtime: Runtime, model: string): Route | undefined {
  const slash = model.indexOf('/');
  if (slash <= 0) return undefined;
  const provider = runtime.providers.get(model.slice(0, slash));
  const providerModel = model.slice(slash + 1);
  if (!provider || !providerModel) return undefined;
  const price = targetPrice({
    provider: provider.name,
    providerType: provider.config.type,
    model: providerModel,
    overrides: runtime.config.prices,
  });
  const target: Target = { id: model, provider, ref: { model: providerModel }, weight: 1, price };
  // A direct model has no definition of its own to version: its defaults come with the release.
  return { name: model, version: 'direct', targets: [target], fallbacks: [], ...directDefaults };
}

/**
 * The first target by `choose` (a balancer) or weighted random; the rest by weight, so equal
 * peers back each other up before fallbacks.
 */
function order(
  route: Route,
  random: () => number,
  choose?: (route: Route, live: Target[]) => Target,
): Target[] {
  const live = route.targets.filter((t) => t.weight > 0);
  // Every target drained (weight 0): only the fallbacks are left.
  if (live.length === 0) return [...route.fallbacks];
  let chosen = live[0] as Target;
  if (live.length > 1 && choose) chosen = choose(route, live);
  else if (live.length > 1) {
    const total = live.reduce((sum, t) => sum + t.weight, 0);
    let point = random() * total;
    for (const t of live) {
      point -= t.weight;
      if (point < 0) {
        chosen = t;
        break;
      }
    }
  }
  const others = live.filter((t) => t !== chosen).sort((a, b) => b.weight - a.weight);
  return [chosen, ...others, ...route.fallbacks];
}
