import { createHash, hash } from 'node:crypto';
import { Agent } from 'undici';
import type { ProviderConfig, RouteConfig, SluiceConfig, TargetConfig } from '../config/schema.js';
import { noStoredBudgets, type StoredBudgets } from '../policy/budget-directory.js';
import { noVirtualKeys, type VirtualKeys } from '../policy/key-directory.js';
import { configPolicy, type PolicySource, withStoredBudgets } from '../policy/policy-source.js';
import { type TargetPrice, targetPrice } from '../policy/price-lookup.js';
import type { ProviderAdapter, TargetRef } from '../providers/provider.js';
import { createAdapter } from '../providers/registry.js';
import { type BodyCapture, bodyCapture } from './body-capture.js';
import type { Principal } from './call.js';

export interface Provider {
  name: string;
  config: ProviderConfig;
  adapter: ProviderAdapter;
  /** The connection pool towards this provider for a connect timeout (routes may differ). */
  agent(connectMs: number): Agent;
  /**
   * An endpoint URL of this provider's adapter taken apart for its pool, parsed once: adapters
   * build a handful of URLs (an operation, per model for some), the same on every request.
   */
  endpoint(url: string): { origin: string; path: string };
  close(): Promise<void>;
}

export interface Target {
  /** "provider/model", as shown in headers, metrics and events. */
  id: string;
  provider: Provider;
  ref: TargetRef;
  weight: number;
  /** Overrides flow.limit for this target. */
  limit?: TargetConfig['limit'];
  /** What its tokens cost; undefined: unknown, and its calls' cost is recorded as unknown. */
  price?: TargetPrice;
}

export interface Route {
  name: string;
  /** Digest of the route's definition: which version of it served a request (wide event, cache key). */
  version: string;
  targets: Target[];
  fallbacks: Target[];
  timeouts: RouteConfig['timeouts'];
  retries: RouteConfig['retries'];
  balancer?: RouteConfig['balancer'];
  hedge?: RouteConfig['hedge'];
}

/**
 * Everything a request needs, built once from a config. A reload builds a new Runtime and
 * swaps it in; requests in flight keep the one they started with.
 */
export interface Runtime {
  config: SluiceConfig;
  providers: Map<string, Provider>;
  routes: Map<string, Route>;
  /** sha256(key) → principal: lookups by digest never compare secrets byte by byte. */
  apiKeys: Map<string, Principal>;
  /** The keys of the control store (admin API), in memory; they outlive reloads. */
  virtualKeys: VirtualKeys;
  adminKeyDigest?: Buffer;
  /** Which budgets and rate limits apply to a request: the config's and the control store's. */
  policy: PolicySource;
  /** Request and response bodies for the wide event; undefined unless events.bodies is enabled. */
  bodies?: BodyCapture;
  close(): Promise<void>;
}

export function keyDigest(key: string): Buffer {
  return hash('sha256', key, 'buffer');
}

/**
 * The hex SHA-256 that keys are looked up by. Every authenticated request pays it: the one-shot
 * `hash` costs a fraction of a microsecond, a Hash object and a hex copy some microseconds.
 */
export function keyDigestHex(key: string): string {
  return hash('sha256', key, 'hex');
}

export function buildRuntime(
  config: SluiceConfig,
  options: { simUrl?: string; virtualKeys?: VirtualKeys; storedBudgets?: StoredBudgets } = {},
): Runtime {
  const providers = new Map<string, Provider>();
  for (const [name, providerConfig] of Object.entries(config.providers)) {
    const agents = new Map<number, Agent>();
    const endpoints = new Map<string, { origin: string; path: string }>();
    providers.set(name, {
      name,
      config: providerConfig,
      adapter: createAdapter(providerConfig, options.simUrl),
      agent(connectMs) {
        let agent = agents.get(connectMs);
        if (!agent) {
          agent = new Agent({
            connections: providerConfig.maxConnections,
            connect: { timeout: connectMs },
            keepAliveTimeout: 30_000,
            // Per-attempt deadlines are the gateway's own (see dispatch), not undici's.
            headersTimeout: 0,
            bodyTimeout: 0,
          });
          agents.set(connectMs, agent);
        }
        return agent;
      },
      endpoint(url) {
        let parsed = endpoints.get(url);
        if (!parsed) {
          const u = new URL(url);
          parsed = { origin: u.origin, path: `${u.pathname}${u.search}` };
          endpoints.set(url, parsed);
        }
        return parsed;
      },
      close: async () => {
        await Promise.all([...agents.values()].map((a) => a.close()));
      },
    });
  }
  const target = (t: TargetConfig): Target => {
    const provider = providers.get(t.provider);
    if (!provider) throw new Error(`unknown provider "${t.provider}"`);
    return {
      id: `${t.provider}/${t.model}`,
      provider,
      ref: { model: t.model, params: t.params },
      weight: t.weight,
      limit: t.limit,
      price: targetPrice({
        provider: t.provider,
        providerType: provider.config.type,
        model: t.model,
        price: t.price,
        overrides: config.prices,
      }),
    };
  };
  const routes = new Map<string, Route>();
  for (const [name, route] of Object.entries(config.routes)) {
    routes.set(name, {
      name,
      version: createHash('sha256').update(JSON.stringify(route)).digest('hex').slice(0, 12),
      targets: route.targets.map(target),
      fallbacks: route.fallbacks.map(target),
      timeouts: route.timeouts,
      retries: route.retries,
      balancer: route.balancer,
      hedge: route.hedge,
    });
  }
  const storedBudgets = options.storedBudgets ?? noStoredBudgets;
  const apiKeys = new Map<string, Principal>();
  for (const key of config.auth.apiKeys) {
    apiKeys.set(keyDigestHex(key.key), {
      keyName: key.name,
      keyId: null,
      team: key.team ?? null,
      org: key.org ?? null,
      routes: key.routes,
      priority: key.priority,
    });
  }
  return {
    config,
    providers,
    routes,
    apiKeys,
    virtualKeys: options.virtualKeys ?? noVirtualKeys,
    adminKeyDigest: config.auth.adminKey ? keyDigest(config.auth.adminKey) : undefined,
    // The store's budgets are read through on each request: they outlive reloads and change between them.
    policy: withStoredBudgets(configPolicy(config), () => storedBudgets.policy()),
    bodies: bodyCapture(config.events.bodies),
    close: async () => {
      await Promise.all([...providers.values()].map((p) => p.close()));
    },
  };
}
