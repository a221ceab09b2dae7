import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { ResponseCache } from '../cache/response-cache.js';
import type { EventBusStats } from '../events/bus.js';
import { priorities } from '../flow/priority.js';
import type { Call } from '../gateway/call.js';
import type { FlowState } from '../gateway/flow-state.js';
import { toUsd } from '../policy/cost.js';

const latencyBuckets = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

/** Prometheus metrics for the request path, served at GET /metrics. */
export class GatewayMetrics {
  readonly registry = new Registry();
  private readonly requests = new Counter({
    name: 'sluice_requests_total',
    help: 'Requests answered, by route, target, operation and HTTP status.',
    labelNames: ['route', 'target', 'operation', 'status'] as const,
    registers: [this.registry],
  });
  private readonly duration = new Histogram({
    name: 'sluice_request_duration_seconds',
    help: 'Time from request received to response complete.',
    labelNames: ['route', 'target', 'operation'] as const,
    buckets: latencyBuckets,
    registers: [this.registry],
  });
  private readonly firstToken = new Histogram({
    name: 'sluice_time_to_first_token_seconds',
    help: 'Time from request received to the first streamed chunk sent.',
    labelNames: ['route', 'target'] as const,
    buckets: latencyBuckets,
    registers: [this.registry],
  });
  private readonly tokens = new Counter({
    name: 'sluice_tokens_total',
    help: 'Tokens by route, target and kind (input, output, cached_input, reasoning).',
    labelNames: ['route', 'target', 'kind'] as const,
    registers: [this.registry],
  });
  private readonly cost = new Counter({
    name: 'sluice_cost_usd_total',
    help: 'USD spent upstream, by route and the target each attempt went to (unknown prices count nothing).',
    labelNames: ['route', 'target'] as const,
    registers: [this.registry],
  });
  private readonly attempts = new Counter({
    name: 'sluice_upstream_attempts_total',
    help: 'Upstream attempts by target, reason (first, retry, fallback) and outcome.',
    labelNames: ['target', 'reason', 'outcome'] as const,
    registers: [this.registry],
  });

  private readonly cacheLookups = new Counter({
    name: 'sluice_cache_lookups_total',
    help: 'Chat requests on caching routes, by route and result (hit, semantic_hit, miss).',
    labelNames: ['route', 'result'] as const,
    registers: [this.registry],
  });
  private readonly cacheTokens = new Counter({
    name: 'sluice_cache_served_tokens_total',
    help: 'Tokens of answers served from the response cache (not spent upstream), by route and kind.',
    labelNames: ['route', 'kind'] as const,
    registers: [this.registry],
  });

  private readonly limitRefusals = new Counter({
    name: 'sluice_limit_refusals_total',
    help: 'Requests refused by a budget (402) or a rate limit (429), by limit: the budget name or the rate limit scope.',
    labelNames: ['kind', 'limit'] as const,
    registers: [this.registry],
  });
  private readonly softLimits = new Counter({
    name: 'sluice_budget_soft_limit_crossings_total',
    help: 'Budgets whose settled spend crossed their soft limit (once per budget, unit and period).',
    labelNames: ['budget', 'unit'] as const,
    registers: [this.registry],
  });

  limitRefused(kind: 'budget' | 'rate', limit: string): void {
    this.limitRefusals.inc({ kind, limit });
  }

  softLimitCrossed(budget: string, unit: string): void {
    this.softLimits.inc({ budget, unit });
  }

  /** Limiter, queue, shedding and breaker state per target, read at scrape time. */
  watchFlow(flow: FlowState): void {
    const registers = [this.registry];
    const snapshots = () => flow.snapshot();
    new Gauge({
      name: 'sluice_flow_limit',
      help: 'Adaptive concurrency limit per target.',
      labelNames: ['target'],
      registers,
      collect() {
        this.reset();
        for (const row of snapshots()) this.set({ target: row.target }, row.limit);
      },
    });
    new Gauge({
      name: 'sluice_flow_inflight',
      help: 'Requests in flight per target.',
      labelNames: ['target'],
      registers,
      collect() {
        this.reset();
        for (const row of snapshots()) this.set({ target: row.target }, row.inflight);
      },
    });
    new Gauge({
      name: 'sluice_flow_queued',
      help: 'Requests waiting in a target’s admission queue, by priority.',
      labelNames: ['target', 'priority'],
      registers,
      collect() {
        this.reset();
        for (const row of snapshots()) {
          for (const p of priorities) this.set({ target: row.target, priority: p }, row.queuedByPriority[p]);
        }
      },
    });
    new Counter({
      name: 'sluice_flow_shed_total',
      help: 'Requests shed by a target’s limiter, by priority.',
      labelNames: ['target', 'priority'],
      registers,
      collect() {
        this.reset();
        for (const row of snapshots()) {
          for (const p of priorities) this.inc({ target: row.target, priority: p }, row.shedByPriority[p]);
        }
      },
    });
    new Counter({
      name: 'sluice_flow_dropped_total',
      help: 'Requests that ended in congestion (timeout, 429, 529, 503) per target.',
      labelNames: ['target'],
      registers,
      collect() {
        this.reset();
        for (const row of snapshots()) this.inc({ target: row.target }, row.dropped);
      },
    });
    new Gauge({
      name: 'sluice_flow_breaker_open',
      help: 'Circuit breaker state per target: 0 closed, 0.5 half-open, 1 open.',
      labelNames: ['target'],
      registers,
      collect() {
        this.reset();
        for (const row of snapshots()) {
          this.set(
            { target: row.target },
            row.breaker === 'open' ? 1 : row.breaker === 'half-open' ? 0.5 : 0,
          );
        }
      },
    });
  }

  /** The response cache's store (memory: its size and evictions) and its failures, read at scrape time. */
  watchCache(current: () => ResponseCache): void {
    const registers = [this.registry];
    new Gauge({
      name: 'sluice_cache_entries',
      help: 'Answers in the memory response cache.',
      registers,
      collect() {
        this.reset();
        const stats = current().stats();
        if (stats) this.set(stats.entries);
      },
    });
    new Gauge({
      name: 'sluice_cache_bytes',
      help: 'Bytes of answers in the memory response cache (keys and values, UTF-8).',
      registers,
      collect() {
        this.reset();
        const stats = current().stats();
        if (stats) this.set(stats.bytes);
      },
    });
    new Counter({
      name: 'sluice_cache_evictions_total',
      help: 'Answers the memory response cache dropped to stay within cache.maxBytes.',
      registers,
      collect() {
        this.reset();
        const stats = current().stats();
        if (stats) this.inc(stats.evictions);
      },
    });
    new Counter({
      name: 'sluice_cache_errors_total',
      help: 'Response cache operations that failed (store down or slow), by operation (lookup, fill); each lookup counted a miss.',
      labelNames: ['operation'],
      registers,
      collect() {
        this.reset();
        const { errors } = current().counters;
        this.inc({ operation: 'lookup' }, errors.lookup);
        this.inc({ operation: 'fill' }, errors.fill);
      },
    });
  }

  /** The event pipeline: what waits to be stored, what was lost, whether the store answers. */
  watchEvents(stats: () => EventBusStats): void {
    const registers = [this.registry];
    new Gauge({
      name: 'sluice_events_pending',
      help: 'Wide events written but not yet in the store (spooled on disk).',
      registers,
      collect() {
        this.set(stats().pending);
      },
    });
    new Gauge({
      name: 'sluice_events_spool_bytes',
      help: 'Bytes in the event spool.',
      registers,
      collect() {
        this.set(stats().spooledBytes);
      },
    });
    new Counter({
      name: 'sluice_events_dropped_total',
      help: 'Wide events lost because the spool’s disk budget was spent.',
      registers,
      collect() {
        this.reset();
        this.inc(stats().dropped);
      },
    });
    new Gauge({
      name: 'sluice_events_store_healthy',
      help: '1 when the last insert into the event store succeeded.',
      registers,
      collect() {
        this.set(stats().storeHealthy ? 1 : 0);
      },
    });
  }

  // Children of the per-request series, by their label values: prom-client hashes a label object
  // on every call, which is most of what a metric costs on the request path.
  private readonly requestChild = children(this.requests);
  private readonly durationChild = children(this.duration);
  private readonly firstTokenChild = children(this.firstToken);
  private readonly tokensChild = children(this.tokens);
  private readonly attemptsChild = children(this.attempts);
  private readonly costChild = children(this.cost);

  observe(call: Call): void {
    const route = call.route ?? '';
    const target = call.attempts.at(-1)?.target ?? '';
    this.requestChild(route, target, call.operation, String(call.status ?? 0)).inc();
    if (call.totalMs !== undefined)
      this.durationChild(route, target, call.operation).observe(call.totalMs / 1000);
    if (call.firstTokenMs !== undefined)
      this.firstTokenChild(route, target).observe(call.firstTokenMs / 1000);
    if (call.cacheStatus) this.cacheLookups.inc({ route, result: call.cacheStatus });
    const usage = call.usage;
    if (usage && (call.cacheStatus === 'hit' || call.cacheStatus === 'semantic_hit')) {
      this.cacheTokens.inc({ route, kind: 'input' }, usage.inputTokens);
      this.cacheTokens.inc({ route, kind: 'output' }, usage.outputTokens);
    } else if (usage) {
      if (usage.inputTokens) this.tokensChild(route, target, 'input').inc(usage.inputTokens);
      if (usage.outputTokens) this.tokensChild(route, target, 'output').inc(usage.outputTokens);
      if (usage.cachedInputTokens)
        this.tokensChild(route, target, 'cached_input').inc(usage.cachedInputTokens);
      if (usage.reasoningTokens) this.tokensChild(route, target, 'reasoning').inc(usage.reasoningTokens);
    }
    for (const attempt of call.attempts) {
      this.attemptsChild(attempt.target, attempt.reason, attempt.outcome).inc();
      if (attempt.cost) this.costChild(route, attempt.target).inc(toUsd(attempt.cost));
    }
  }
}

/**
 * A metric's children by label values, in the order of its labelNames, made once each. Label
 * values come from the config (routes, targets) and small enums, so the map stays small.
 */
function children<C>(metric: { labels(...values: string[]): C }): (...values: string[]) => C {
  const made = new Map<string, C>();
  return (...values) => {
    const key = values.join('\u0000');
    let child = made.get(key);
    if (!child) {
      child = metric.labels(...values);
      made.set(key, child);
    }
    return child;
  };
}
