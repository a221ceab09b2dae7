import { useMemo } from 'preact/hooks';
import type { Api, Metric, Timeseries } from '../api.js';
import { Chart, palette } from '../chart.js';
import { LiveToggle, RangeSelect, Updated } from '../controls.js';
import { durationAxis, formatCount, formatMs, formatPercent, formatRate, formatUsd } from '../format.js';
import { settled, usePoll } from '../poll.js';
import { href, type Location, replaceParams } from '../router.js';
import { Empty, ErrorNotice, NoTrafficHint } from '../states.js';
import { rangeParams, timeRange } from '../time-range.js';

const trendMetrics = [
  'rps',
  'error_rate',
  'latency_p50',
  'latency_p95',
  'latency_p99',
  'ttft_p50',
  'ttft_p95',
  'ttft_p99',
  'tokens_per_s',
  'cost_per_hour',
] as const satisfies readonly Metric[];

const summaryMetrics = [
  ...trendMetrics,
  'requests',
  'errors',
  'cost_usd',
] as const satisfies readonly Metric[];

const breakdownMetrics = [
  'requests',
  'rps',
  'error_rate',
  'latency_p95',
  'ttft_p95',
  'tokens_per_s',
  'cost_usd',
] as const satisfies readonly Metric[];

export const dimensions = [
  { id: 'route', label: 'Route' },
  { id: 'model', label: 'Model' },
  { id: 'provider', label: 'Provider' },
  { id: 'key', label: 'Key' },
  { id: 'team', label: 'Team' },
  { id: 'tag', label: 'Tag' },
] as const;

type Dimension = (typeof dimensions)[number]['id'];

/** Quiet ranges need no 5-second refresh: a point there spans minutes. */
function refreshMs(seconds: number): number {
  return seconds <= 3_600 ? 5_000 : 30_000;
}

export function OverviewPage({ api, location }: { api: Api; location: Location }) {
  const { params } = location;
  const range = timeRange(params.get('range'));
  const live = params.get('live') !== 'off';
  const by = (dimensions.find((d) => d.id === params.get('by'))?.id ?? 'route') as Dimension;
  const tagName = params.get('tag') ?? '';
  const groupBy = by === 'tag' ? (tagName ? `tag.${tagName}` : null) : by;
  const set = (changes: Record<string, string | null>) =>
    replaceParams({ ...Object.fromEntries(params), ...changes });

  const every = live ? refreshMs(range.seconds) : undefined;
  const span = rangeParams(range);
  const trends = usePoll(
    (signal) =>
      Promise.all([
        api.timeseries({ ...span, step: 'auto', metrics: trendMetrics }, signal),
        api.summary({ ...span, metrics: summaryMetrics }, signal),
      ]),
    [api, range.id],
    every,
  );
  const breakdown = usePoll(
    async (signal) =>
      groupBy
        ? Promise.all([
            api.breakdown({ ...span, by: groupBy, metrics: breakdownMetrics, limit: 20 }, signal),
            api.timeseries({ ...span, step: 'auto', metrics: ['rps'], groupBy, limit: 8 }, signal),
          ])
        : null,
    [api, range.id, groupBy],
    every,
  );
  // Tag names seen lately, to offer in the tag box.
  const tagNames = usePoll(
    async (signal) => {
      if (by !== 'tag') return [];
      const page = await api.requests({ ...span, limit: 200 }, signal);
      return [...new Set(page.data.flatMap((e) => Object.keys(e.tags ?? {})))].sort();
    },
    [api, range.id, by === 'tag'],
  );

  const [series, summary] = trends.data ?? [];
  const now = trends.at ?? Date.now();
  const xRange = [now - range.seconds * 1000, now] as const;
  return (
    <section aria-labelledby="overview-title" aria-busy={!settled(trends, breakdown, tagNames)}>
      <div class="page-head">
        <h1 id="overview-title">Overview</h1>
        <div class="toolbar">
          <RangeSelect value={range} onChange={(id) => set({ range: id })} />
          <LiveToggle live={live} onChange={(on) => set({ live: on ? null : 'off' })} />
          <Updated at={trends.at} loading={trends.loading} />
        </div>
      </div>
      {trends.error && <ErrorNotice error={trends.error} what="the overview" retry={trends.refresh} />}
      <Summary values={summary?.values} />
      <Trends series={series} xRange={xRange} />
      <section class="card breakdown" aria-labelledby="breakdown-title">
        <div class="card-head">
          <h2 id="breakdown-title">Breakdown</h2>
          <div class="toolbar">
            <label class="field">
              <span>By</span>
              <select value={by} onChange={(e) => set({ by: (e.target as HTMLSelectElement).value })}>
                {dimensions.map((d) => (
                  <option key={d.id} value={d.id}>
                    {d.label}
                  </option>
                ))}
              </select>
            </label>
            {by === 'tag' && (
              <label class="field">
                <span>Tag name</span>
                <input
                  list="tag-names"
                  value={tagName}
                  placeholder="e.g. feature"
                  onChange={(e) => set({ tag: (e.target as HTMLInputElement).value.trim() || null })}
                />
                <datalist id="tag-names">
                  {(tagNames.data ?? []).map((name) => (
                    <option key={name} value={name} />
                  ))}
                </datalist>
              </label>
            )}
          </div>
        </div>
        {breakdown.error && (
          <ErrorNotice error={breakdown.error} what="the breakdown" retry={breakdown.refresh} />
        )}
        {groupBy === null ? (
          <Empty title="Name a tag to break traffic down by it.">
            Clients tag requests with <code>x-sluice-tags: feature=search,tier=free</code>.
            {tagNames.data && tagNames.data.length > 0 && <> Tags seen lately: {tagNames.data.join(', ')}.</>}
          </Empty>
        ) : (
          breakdown.data && (
            <BreakdownView
              label={dimensions.find((d) => d.id === by)!.label}
              filter={groupBy}
              rows={breakdown.data[0].rows}
              series={breakdown.data[1]}
              xRange={xRange}
              rangeId={range.id}
            />
          )
        )}
      </section>
    </section>
  );
}

function Summary({ values }: { values: Record<(typeof summaryMetrics)[number], number | null> | undefined }) {
  const v = values;
  const tiles = [
    {
      label: 'Requests/s',
      value: formatRate(v?.rps ?? null, ''),
      sub: `${formatCount(v?.requests)} requests`,
    },
    {
      label: 'Error rate',
      value: formatPercent(v?.error_rate),
      sub: `${formatCount(v?.errors)} errors`,
      alert: (v?.error_rate ?? 0) >= 0.05,
    },
    {
      label: 'Latency p50 / p95 / p99',
      value: formatMs(v?.latency_p50),
      sub: `${formatMs(v?.latency_p95)} · ${formatMs(v?.latency_p99)}`,
    },
    {
      label: 'Time to first token p50 / p95 / p99',
      value: formatMs(v?.ttft_p50),
      sub: `${formatMs(v?.ttft_p95)} · ${formatMs(v?.ttft_p99)}`,
    },
    { label: 'Tokens/s', value: formatCount(v?.tokens_per_s), sub: 'input + output' },
    { label: 'Cost per hour', value: formatUsd(v?.cost_per_hour), sub: `${formatUsd(v?.cost_usd)} in range` },
  ];
  return (
    <dl class="tiles" aria-label="Summary of the time range">
      {tiles.map((tile) => (
        <div class={tile.alert ? 'tile tile-alert' : 'tile'} key={tile.label}>
          <dt>{tile.label}</dt>
          <dd class="tile-value" data-testid={`tile-${tile.label}`}>
            {tile.value}
          </dd>
          <dd class="tile-sub">{tile.sub}</dd>
        </div>
      ))}
    </dl>
  );
}

function Trends({
  series,
  xRange,
}: {
  series: Timeseries<(typeof trendMetrics)[number]> | undefined;
  xRange: readonly [number, number];
}) {
  const t = series?.t ?? [];
  const values = series?.series[0]?.values;
  const column = (metric: (typeof trendMetrics)[number]) => values?.[metric] ?? [];
  const empty = (
    <Empty title="No requests in this range yet.">
      <NoTrafficHint />
    </Empty>
  );
  const percentiles = (prefix: 'latency' | 'ttft') => [
    { label: 'p50', values: column(`${prefix}_p50`), color: palette[0]! },
    { label: 'p95', values: column(`${prefix}_p95`), color: palette[1]! },
    { label: 'p99', values: column(`${prefix}_p99`), color: palette[2]! },
  ];
  const axisFor = (prefix: 'latency' | 'ttft') =>
    durationAxis(Math.max(0, ...column(`${prefix}_p99`).filter((v): v is number => v !== null)));
  const latencyAxis = axisFor('latency');
  const ttftAxis = axisFor('ttft');
  return (
    <div class="charts">
      <Chart
        title="Requests per second"
        unit="req/s"
        format={(v) => formatCount(v)}
        t={t}
        xRange={xRange}
        series={[{ label: 'Requests/s', values: column('rps'), color: palette[0]! }]}
        empty={empty}
      />
      <Chart
        title="Latency"
        unit={latencyAxis.unit}
        tick={latencyAxis.tick}
        format={formatMs}
        t={t}
        xRange={xRange}
        series={percentiles('latency')}
        empty={empty}
      />
      <Chart
        title="Time to first token (streams)"
        unit={ttftAxis.unit}
        tick={ttftAxis.tick}
        format={formatMs}
        t={t}
        xRange={xRange}
        series={percentiles('ttft')}
        empty={
          <Empty title="No streamed requests in this range.">
            Time to first token is measured on streams (<code>"stream": true</code>).
          </Empty>
        }
      />
      <Chart
        title="Error rate"
        unit="%"
        format={formatPercent}
        t={t}
        xRange={xRange}
        series={[{ label: 'Errors', values: column('error_rate'), color: palette[2]! }]}
        empty={<Empty title="No errors in this range." />}
      />
      <Chart
        title="Tokens per second"
        unit="tokens/s"
        format={(v) => formatCount(v)}
        t={t}
        xRange={xRange}
        series={[{ label: 'Tokens/s', values: column('tokens_per_s'), color: palette[3]! }]}
        empty={empty}
      />
      <Chart
        title="Cost per hour"
        unit="USD/h"
        format={formatUsd}
        t={t}
        xRange={xRange}
        series={[{ label: 'Cost/h', values: column('cost_per_hour'), color: palette[4]! }]}
        empty={
          <Empty title="No cost in this range.">
            Cost needs a price for the model: simulated and self-hosted models cost $0 unless priced.
          </Empty>
        }
      />
    </div>
  );
}

function BreakdownView({
  label,
  filter,
  rows,
  series,
  xRange,
  rangeId,
}: {
  label: string;
  filter: string;
  rows: Array<{ group: string | null; values: Record<(typeof breakdownMetrics)[number], number | null> }>;
  series: Timeseries<'rps'>;
  xRange: readonly [number, number];
  rangeId: string;
}) {
  const chartSeries = useMemo(
    () =>
      series.series.map((s, i) => ({
        label: s.group ?? '(none)',
        values: s.values.rps,
        color: palette[i % palette.length]!,
      })),
    [series],
  );
  if (rows.length === 0) {
    return (
      <Empty title="No requests in this range yet.">
        <NoTrafficHint />
      </Empty>
    );
  }
  return (
    <>
      <Chart
        title={`Requests per second by ${label.toLowerCase()}`}
        unit="req/s"
        format={(v) => formatCount(v)}
        t={series.t}
        xRange={xRange}
        series={chartSeries}
        empty={<Empty title="No requests in this range yet." />}
      />
      <div class="table-wrap">
        <table class="data-table" data-testid="breakdown-table">
          <caption class="sr-only">Traffic by {label.toLowerCase()}, busiest first</caption>
          <thead>
            <tr>
              <th scope="col">{label}</th>
              <th scope="col" class="num">
                Requests
              </th>
              <th scope="col" class="num">
                Req/s
              </th>
              <th scope="col" class="num">
                Error rate
              </th>
              <th scope="col" class="num">
                Latency p95
              </th>
              <th scope="col" class="num">
                TTFT p95
              </th>
              <th scope="col" class="num">
                Tokens/s
              </th>
              <th scope="col" class="num">
                Cost
              </th>
            </tr>
          </thead>
          <tbody>
            {rows.map((row) => (
              <tr key={row.group ?? '(none)'}>
                <th scope="row">
                  {row.group === null ? (
                    <span class="muted">(none)</span>
                  ) : (
                    <a
                      href={href('/requests', { [filter]: row.group, range: rangeId })}
                      title={`Requests with ${filter} ${row.group}`}
                    >
                      {row.group}
                    </a>
                  )}
                </th>
                <td class="num">{formatCount(row.values.requests)}</td>
                <td class="num">{formatCount(row.values.rps)}</td>
                <td class="num">{formatPercent(row.values.error_rate)}</td>
                <td class="num">{formatMs(row.values.latency_p95)}</td>
                <td class="num">{formatMs(row.values.ttft_p95)}</td>
                <td class="num">{formatCount(row.values.tokens_per_s)}</td>
                <td class="num">{formatUsd(row.values.cost_usd)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </>
  );
}
