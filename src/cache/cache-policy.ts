import { createHash } from 'node:crypto';
import type { RouteCacheConfig, RouteConfig, SluiceConfig } from '../config/schema.js';
import { canonicalJson } from './canonical-json.js';

/** How one route caches: its settings, and the versions its entries are keyed by. */
export interface CachePolicy {
  route: string;
  /** The route's version: entries stored under another version of the route are never served. */
  version: string;
  settings: RouteCacheConfig;
  /** Semantic mode: the route that embeds messages, and its version (vectors of two models do not compare). */
  embedding?: { route: string; version: string };
}

const policies = new WeakMap<RouteConfig, CachePolicy>();

/**
 * The cache policy of the route `name` in `routes`, or undefined when it does not cache. Built once
 * per route config object: a reload brings new objects, hence new versions where routes changed.
 */
export function cachePolicy(routes: SluiceConfig['routes'], name: string): CachePolicy | undefined {
  const config = Object.hasOwn(routes, name) ? routes[name] : undefined;
  if (!config?.cache) return undefined;
  let policy = policies.get(config);
  if (policy === undefined) {
    const settings = config.cache;
    const embeddingRoute = settings.mode === 'semantic' ? settings.embeddingRoute : undefined;
    const embeddingConfig =
      embeddingRoute !== undefined && Object.hasOwn(routes, embeddingRoute)
        ? routes[embeddingRoute]
        : undefined;
    policy = {
      route: name,
      version: routeVersion(config),
      settings,
      ...(embeddingRoute !== undefined &&
        embeddingConfig && { embedding: { route: embeddingRoute, version: routeVersion(embeddingConfig) } }),
    };
    policies.set(config, policy);
  }
  return policy;
}

/**
 * A digest of what a route does with a request (targets, fallbacks, their params, timeouts...),
 * standing in for route versions until routes are versioned artifacts. Its cache settings and
 * description are left out: changing a TTL does not change an answer.
 */
export function routeVersion(config: RouteConfig): string {
  const { cache: _cache, description: _description, ...behaviour } = config;
  return createHash('sha256').update(canonicalJson(behaviour)).digest('hex').slice(0, 16);
}
