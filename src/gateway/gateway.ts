import type { FastifyBaseLogger } from 'fastify';
import { canonicalJson } from '../cache/canonical-json.js';
import { openResponseCache, type ResponseCache } from '../cache/response-cache.js';
import type { SluiceConfig } from '../config/schema.js';
import { requestId } from '../events/request-id.js';
import { discardSink, type EventSink } from '../events/sink.js';
import type { GatewayMetrics } from '../http/metrics.js';
import type { StoredBudgets } from '../policy/budget-directory.js';
import { toUsd } from '../policy/cost.js';
import type { VirtualKeys } from '../policy/key-directory.js';
import { systemClock } from '../time/clock.js';
import type { Call, Principal } from './call.js';
import { FlowState } from './flow-state.js';
import { Limits } from './limits.js';
import { callCost } from './metering.js';
import { wideEvent } from './record.js';
import { buildRuntime, type Runtime } from './runtime.js';

export interface GatewayOptions {
  config: SluiceConfig;
  sink: EventSink;
  metrics: GatewayMetrics;
  logger: FastifyBaseLogger;
  /** The in-process simulator's address, for "sim" providers without a baseUrl. */
  simUrl?: string;
  /** Reads the config again, for reloads (SIGHUP, POST /admin/config/reload). */
  loadConfig?: () => Promise<SluiceConfig>;
  /** Wall-clock epoch milliseconds, for cache expiry; tests pass a manual clock's. */
  now?: () => number;
  /** The control store's keys, which every runtime authenticates with besides the config's. */
  virtualKeys?: VirtualKeys;
  /** The control store's budgets, which every runtime enforces besides the config's. */
  storedBudgets?: StoredBudgets;
}

/**
 * The gateway's state across requests: the current Runtime (swapped whole on reload), the
 * event sink and the metrics. Each request takes the runtime once, at ingress.
 */
export class Gateway {
  runtime: Runtime;
  /** Learned limits, queues, breakers and budgets: they outlive reloads. */
  readonly flow: FlowState;
  /** The response cache outlives reloads too, unless the reload changes its store. */
  cache: ResponseCache;
  readonly now: () => number;
  /** Budgets and rate limits: their counters outlive reloads too. */
  readonly limits: Limits;
  private readonly retired = new Set<Runtime>();
  /** Targets already warned about for having no price: one warning each, not one per request. */
  private readonly unpriced = new Set<string>();
  private lastCacheWarning = Number.NEGATIVE_INFINITY;

  constructor(private readonly options: GatewayOptions) {
    this.runtime = buildRuntime(options.config, {
      simUrl: options.simUrl,
      virtualKeys: options.virtualKeys,
      storedBudgets: options.storedBudgets,
    });
    this.flow = new FlowState(options.config, systemClock);
    this.now = options.now ?? Date.now;
    this.cache = this.openCache(options.config);
    this.limits = new Limits({
      config: options.config,
      metrics: options.metrics,
      logger: options.logger,
      now: this.now,
    });
  }

  get canReload(): boolean {
    return this.options.loadConfig !== undefined;
  }

  /**
   * Builds a runtime from the config file and swaps it in. Requests in flight finish on the
   * runtime they started with; its connection pools close once they are done.
   */
  async reload(): Promise<Runtime> {
    if (!this.options.loadConfig) throw new Error('this gateway was started without a config file to reload');
    const config = await this.options.loadConfig();
    const next = buildRuntime(config, {
      simUrl: this.options.simUrl,
      virtualKeys: this.options.virtualKeys,
      storedBudgets: this.options.storedBudgets,
    });
    const previous = this.runtime;
    this.runtime = next;
    this.flow.reconfigure(config);
    if (canonicalJson(config.cache) !== canonicalJson(previous.config.cache)) {
      const cache = this.cache;
      this.cache = this.openCache(config);
      void cache.close();
    }
    if (JSON.stringify(config.state) !== JSON.stringify(this.options.config.state))
      this.options.logger.warn('state (memory or Redis) changes take effect on restart, not on reload');
    this.retired.add(previous);
    // Pools drain on their own; closing waits for in-flight requests on them to finish.
    void previous.close().finally(() => this.retired.delete(previous));
    this.options.logger.info({ routes: [...next.routes.keys()] }, 'configuration reloaded');
    return next;
  }

  begin(
    wire: Call['wire'],
    operation: Call['operation'],
    principal: Principal,
    id: string = requestId(),
  ): Call {
    return {
      id,
      receivedAt: Date.now(),
      startedAt: performance.now(),
      wire,
      operation,
      stream: false,
      principal,
      requestedModel: '',
      attempts: [],
    };
  }

  /** The settle and record stages: cost, budgets and rate limits, metrics, the wide event, a log line. */
  finish(call: Call, status: number): void {
    call.status = status;
    call.totalMs = performance.now() - call.startedAt;
    this.settleCost(call);
    this.limits.settle(call);
    this.options.metrics.observe(call);
    // With `events: {sink: none}` the event would be dropped: it is not built either.
    if (this.options.sink !== discardSink)
      this.options.sink.write(wideEvent(call, this.runtime.config.server.region ?? null));
    const log = this.options.logger;
    if (status >= 500)
      log.warn({ reqId: call.id, route: call.route, status, error: call.error?.message }, 'request failed');
    else
      log.debug({ reqId: call.id, route: call.route, status, ms: Math.round(call.totalMs) }, 'request done');
  }

  /** The call's cost from its metered attempts; an unknown price is null, never 0, and said once. */
  private settleCost(call: Call): void {
    const cost = callCost(call);
    call.costUsd = cost === null ? null : toUsd(cost);
    for (const attempt of call.attempts) {
      if (attempt.cost !== null || this.unpriced.has(attempt.target)) continue;
      this.unpriced.add(attempt.target);
      this.options.logger.warn(
        { target: attempt.target, model: attempt.model },
        `no price known for ${attempt.target}: its calls' cost is recorded as unknown; set one under prices: in sluice.yaml (docs/keys-and-budgets.md)`,
      );
    }
  }

  async close(): Promise<void> {
    await Promise.all([this.runtime.close(), ...[...this.retired].map((r) => r.close()), this.cache.close()]);
    await this.limits.close();
    await this.options.sink.close();
  }

  private openCache(config: SluiceConfig): ResponseCache {
    return openResponseCache(config.cache, {
      now: this.now,
      // A store outage would otherwise log once per request: one warning per 10 s says enough.
      onError: (error, operation) => {
        const now = performance.now();
        if (operation !== 'connection' && now - this.lastCacheWarning < 10_000) return;
        this.lastCacheWarning = now;
        this.options.logger.warn(
          { err: error, operation, store: config.cache.store },
          'response cache unavailable: requests go upstream',
        );
      },
    });
  }
}
