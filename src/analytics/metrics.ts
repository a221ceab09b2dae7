/**
 * The metrics a query may ask for, each defined once from a few aggregates that both the raw
 * events and the per-minute rollups can supply: additive sums (counts, tokens, cost) and
 * percentiles (exact or t-digest over raw events, histograms over rollups).
 */
export const metricNames = [
  'requests',
  'rps',
  'errors',
  'error_rate',
  'latency_p50',
  'latency_p95',
  'latency_p99',
  'ttft_p50',
  'ttft_p95',
  'ttft_p99',
  'tokens_input',
  'tokens_output',
  'tokens_per_s',
  'cost_usd',
  'cost_per_hour',
  'shed',
  'cache_hit_rate',
] as const;

export type MetricName = (typeof metricNames)[number];

/** Aggregates that add up across minutes and groups: what a rollup row keeps. */
export const sumNames = [
  'requests',
  'errors',
  'shed',
  'tokens_input',
  'tokens_output',
  'cost_usd',
  'cache_hits',
  'cache_lookups',
] as const;

export type SumName = (typeof sumNames)[number];

/** A timing with a percentile: `latency` is timings.totalMs, `ttft` is timings.firstTokenMs. */
export type Timing = 'latency' | 'ttft';

export const timingColumns: Record<Timing, string> = {
  latency: 'timings_total_ms',
  ttft: 'timings_first_token_ms',
};

/** The aggregates one result row carries, whichever table they came from. */
export interface Aggregates {
  sum(name: SumName): number | null;
  quantile(timing: Timing, q: number): number | null;
}

interface MetricDef {
  sums: readonly SumName[];
  quantile?: { timing: Timing; q: number };
  /** A bucket without requests reads 0 (counts, rates per second), not null (ratios, percentiles). */
  zeroWhenEmpty: boolean;
  value(aggregates: Aggregates, seconds: number): number | null;
}

function ratio(numerator: number | null, denominator: number | null): number | null {
  return numerator === null || !denominator ? null : numerator / denominator;
}

function perSecond(amount: number | null, seconds: number): number | null {
  return amount === null || seconds <= 0 ? null : amount / seconds;
}

function percentile(timing: Timing, q: number): MetricDef {
  return {
    sums: [],
    quantile: { timing, q },
    zeroWhenEmpty: false,
    value: (a) => a.quantile(timing, q),
  };
}

function total(name: SumName): MetricDef {
  return { sums: [name], zeroWhenEmpty: true, value: (a) => a.sum(name) };
}

export const metrics: Record<MetricName, MetricDef> = {
  requests: total('requests'),
  rps: { sums: ['requests'], zeroWhenEmpty: true, value: (a, s) => perSecond(a.sum('requests'), s) },
  errors: total('errors'),
  error_rate: {
    sums: ['requests', 'errors'],
    zeroWhenEmpty: false,
    value: (a) => ratio(a.sum('errors'), a.sum('requests')),
  },
  latency_p50: percentile('latency', 0.5),
  latency_p95: percentile('latency', 0.95),
  latency_p99: percentile('latency', 0.99),
  ttft_p50: percentile('ttft', 0.5),
  ttft_p95: percentile('ttft', 0.95),
  ttft_p99: percentile('ttft', 0.99),
  tokens_input: total('tokens_input'),
  tokens_output: total('tokens_output'),
  tokens_per_s: {
    sums: ['tokens_output'],
    zeroWhenEmpty: true,
    value: (a, s) => perSecond(a.sum('tokens_output'), s),
  },
  // Null, not 0, when every request's price was unknown: an unknown cost is not a free one.
  cost_usd: { sums: ['cost_usd'], zeroWhenEmpty: true, value: (a) => a.sum('cost_usd') },
  cost_per_hour: {
    sums: ['cost_usd'],
    zeroWhenEmpty: true,
    value: (a, s) => perSecond(a.sum('cost_usd'), s / 3600),
  },
  shed: total('shed'),
  cache_hit_rate: {
    sums: ['cache_hits', 'cache_lookups'],
    zeroWhenEmpty: false,
    value: (a) => ratio(a.sum('cache_hits'), a.sum('cache_lookups')),
  },
};

/** What a set of metrics needs computed in SQL: `requests` always, to rank and to tell empty buckets. */
export function neededAggregates(names: readonly MetricName[]): {
  sums: SumName[];
  quantiles: { timing: Timing; q: number }[];
} {
  const sums = new Set<SumName>(['requests']);
  const quantiles = new Map<string, { timing: Timing; q: number }>();
  for (const name of names) {
    const def = metrics[name];
    for (const sum of def.sums) sums.add(sum);
    if (def.quantile) quantiles.set(`${def.quantile.timing}:${def.quantile.q}`, def.quantile);
  }
  return { sums: sumNames.filter((name) => sums.has(name)), quantiles: [...quantiles.values()] };
}

/** The value of `name` in a bucket of `seconds`; `aggregates` undefined means no requests at all. */
export function metricValue(
  name: MetricName,
  aggregates: Aggregates | undefined,
  seconds: number,
): number | null {
  const def = metrics[name];
  if (!aggregates) return def.zeroWhenEmpty ? 0 : null;
  const value = def.value(aggregates, seconds);
  return value === null || Number.isFinite(value) ? value : null;
}
