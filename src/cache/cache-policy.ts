import type { RouteCacheConfig } from '../config/schema.js';

/** How one route caches: its settings, and the versions its entries are keyed by. */
export interface CachePolicy {
  route: string;
  /**
   * The route's version (the digest of its definition that wide events record as routeVersion):
   * entries stored under another version of the route are never served.
   */
  version: string;
  settings: RouteCacheConfig;
  /** Semantic mode: the route that embeds messages, and its version (vectors of two models do not compare). */
  embedding?: { route: string; version: string };
}
