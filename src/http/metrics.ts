import { Counter, Gauge, Registry } from 'prom-client';
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
  // The per-request series keep their totals here, outside prom-client, which reads them when
  // scraped: prom-client's inc and observe hash and validate a label object on every call (its
  // labels() children as well), which was most of what metrics cost the request path.
  private readonly requests = counterSeries(this.registry, {
    name: 'sluice_requests_total',
    help: 'Requests answered, by route, target, operation and HTTP status.',
    labelNames: ['route', 'target', 'operation', 'status'],
  });
  private readonly duration = new HistogramSeries(this.registry, {
    name: 'sluice_request_duration_seconds',
    help: 'Time from request received to response complete.',
    labelNames: ['route', 'target', 'operation'],
    buckets: latencyBuckets,
  });
  private readonly firstToken = new HistogramSeries(this.registry, {
    name: 'sluice_time_to_first_token_seconds',
    help: 'Time from request received to the first streamed chunk sent.',
    labelNames: ['route', 'target'],
    buckets: latencyBuckets,
  });
  private readonly tokens = counterSeries(this.registry, {
    name: 'sluice_tokens_total',
    help: 'Tokens by route, target and kind (input, output, cached_input, reasoning).',
    labelNames: ['route', 'target', 'kind'],
  });
  private readonly cost = counterSeries(this.registry, {
    name: 'sluice_cost_usd_total',
    help: 'USD spent upstream, by route and the target each attempt went to (unknown prices count nothing).',
    labelNames: ['route', 'target'],
  });
  private readonly attempts = counterSeries(this.registry, {
    name: 'sluice_upstream_attempts_total',
    help: 'Upstream attempts by target, reason (first, retry, fallback) and outcome.',
    labelNames: ['target', 'reason', 'outcome'],
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

  observe(call: Call): void {
    const route = call.route ?? '';
    const target = call.attempts.at(-1)?.target ?? '';
    this.requests.add(1, route, target, call.operation, String(call.status ?? 0));
    if (call.totalMs !== undefined) this.duration.observe(call.totalMs / 1000, route, target, call.operation);
    if (call.firstTokenMs !== undefined) this.firstToken.observe(call.firstTokenMs / 1000, route, target);
    if (call.cacheStatus) this.cacheLookups.inc({ route, result: call.cacheStatus });
    const usage = call.usage;
    if (usage && (call.cacheStatus === 'hit' || call.cacheStatus === 'semantic_hit')) {
      this.cacheTokens.inc({ route, kind: 'input' }, usage.inputTokens);
      this.cacheTokens.inc({ route, kind: 'output' }, usage.outputTokens);
    } else if (usage) {
      if (usage.inputTokens) this.tokens.add(usage.inputTokens, route, target, 'input');
      if (usage.outputTokens) this.tokens.add(usage.outputTokens, route, target, 'output');
      if (usage.cachedInputTokens) this.tokens.add(usage.cachedInputTokens, route, target, 'cached_input');
      if (usage.reasoningTokens) this.tokens.add(usage.reasoningTokens, route, target, 'reasoning');
    }
    for (const attempt of call.attempts) {
      this.attempts.add(1, attempt.target, attempt.reason, attempt.outcome);
      if (attempt.cost) this.cost.add(toUsd(attempt.cost), route, attempt.target);
    }
  }
}

/** Label values, in the order of a metric's labelNames, as one map key. */
const keyOf = (values: readonly string[]) => values.join('\u0000');

interface SeriesOptions {
  name: string;
  help: string;
  labelNames: readonly string[];
}

/**
 * A counter whose totals by label values live in a Map; the prom-client Counter registered under
 * its name is filled from them when scraped, so its output is prom-client's own. Label values come
 * from the config (routes, targets) and small enums, so the map stays small.
 */
function counterSeries(registry: Registry, options: SeriesOptions) {
  const totals = new Map<string, { labels: Record<string, string>; value: number }>();
  new Counter({
    ...options,
    labelNames: [...options.labelNames],
    registers: [registry],
    collect() {
      this.reset();
      for (const { labels, value } of totals.values()) this.inc(labels, value);
    },
  });
  return {
    add(by: number, ...values: string[]): void {
      const key = keyOf(values);
      const total = totals.get(key);
      if (total) total.value += by;
      else totals.set(key, { labels: labelsOf(options.labelNames, values), value: by });
    },
  };
}

function labelsOf(names: readonly string[], values: readonly string[]): Record<string, string> {
  const labels: Record<string, string> = {};
  names.forEach((name, i) => {
    labels[name] = values[i] as string;
  });
  return labels;
}

interface Bins {
  labels: Record<string, string>;
  /** Observations per bucket, not cumulative; the last is above every bound. */
  counts: number[];
  sum: number;
  count: number;
}

/**
 * A histogram whose bins by label values live in a Map, registered as a metric that reads like
 * prom-client's Histogram when scraped (the same `_bucket`, `_sum` and `_count` lines).
 */
class HistogramSeries {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  readonly name: string;
  readonly help: string;
  private readonly bins = new Map<string, Bins>();

  constructor(
    registry: Registry,
    private readonly options: SeriesOptions & { buckets: readonly number[] },
  ) {
    this.name = options.name;
    this.help = options.help;
    registry.registerMetric(this as unknown as Parameters<Registry['registerMetric']>[0]);
  }

  observe(value: number, ...values: string[]): void {
    const key = keyOf(values);
    let bins = this.bins.get(key);
    if (!bins) {
      bins = {
        labels: labelsOf(this.options.labelNames, values),
        counts: new Array(this.options.buckets.length + 1).fill(0),
        sum: 0,
        count: 0,
      };
      this.bins.set(key, bins);
    }
    const { buckets } = this.options;
    let at = 0;
    while (at < buckets.length && value > (buckets[at] as number)) at++;
    bins.counts[at] = (bins.counts[at] as number) + 1;
    bins.sum += value;
    bins.count++;
  }

  /** What prom-client's Registry formats: each series' labels shared by its lines, `le` on each bucket. */
  getForPromString() {
    const values: object[] = [];
    for (const { labels, counts, sum, count } of this.bins.values()) {
      let cumulative = 0;
      this.options.buckets.forEach((le, i) => {
        cumulative += counts[i] as number;
        values.push({
          labels: { le },
          sharedLabels: labels,
          value: cumulative,
          metricName: `${this.name}_bucket`,
        });
      });
      values.push(
        { labels: { le: '+Inf' }, sharedLabels: labels, value: count, metricName: `${this.name}_bucket` },
        { labels: {}, sharedLabels: labels, value: sum, metricName: `${this.name}_sum` },
        { labels: {}, sharedLabels: labels, value: count, metricName: `${this.name}_count` },
      );
    }
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator };
  }

  get() {
    const data = this.getForPromString();
    return {
      ...data,
      values: data.values.map((v) => {
        const { labels, sharedLabels, ...rest } = v as { labels: object; sharedLabels: object };
        return { ...rest, labels: { ...labels, ...sharedLabels } };
      }),
    };
  }

  reset(): void {
    this.bins.clear();
  }
}
