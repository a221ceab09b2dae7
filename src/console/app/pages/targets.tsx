import { useMemo, useState } from 'preact/hooks';
import type { Api, FlowHistoryView, FlowReport } from '../api.js';
import { Chart, type ChartSeries, palette } from '../chart.js';
import { Updated } from '../controls.js';
import { formatCount, formatMs, formatPercent, formatTime } from '../format.js';
import { settled, usePoll } from '../poll.js';
import { href } from '../router.js';
import { Empty, ErrorNotice, Loading, NoTrafficHint } from '../states.js';

const priorities = ['critical', 'high', 'normal', 'low', 'batch'] as const;
const priorityColors: Record<(typeof priorities)[number], string> = {
  critical: '#ef4444',
  high: '#f59e0b',
  normal: '#3b82f6',
  low: '#8b5cf6',
  batch: '#64748b',
};
const windows = [
  { seconds: 300, label: 'Last 5 minutes' },
  { seconds: 900, label: 'Last 15 minutes' },
];

const byTarget = (a: { target: string }, b: { target: string }) => a.target.localeCompare(b.target);

type Health = Map<string, { requests: number | null; error_rate: number | null; latency_p95: number | null }>;

export function TargetsPage({ api }: { api: Api }) {
  const [seconds, setSeconds] = useState(900);
  // The gateway samples its flow state every 2 s: refresh at the same pace.
  const flow = usePoll(
    (signal) => Promise.all([api.flow(signal), api.flowHistory(seconds, signal)]),
    [api, seconds],
    2_000,
  );
  const health = usePoll(
    async (signal): Promise<Health> => {
      const { rows } = await api.breakdown(
        {
          from: '-5m',
          to: 'now',
          by: 'target',
          metrics: ['requests', 'error_rate', 'latency_p95'],
          limit: 200,
        },
        signal,
      );
      return new Map(rows.filter((r) => r.group !== null).map((r) => [r.group!, r.values]));
    },
    [api],
    10_000,
  );

  const [report, history] = flow.data ?? [];
  return (
    <section aria-labelledby="targets-title" aria-busy={!settled(flow, health)}>
      <div class="page-head">
        <h1 id="targets-title">Routes and targets</h1>
        <div class="toolbar">
          <label class="field">
            <span>Charts</span>
            <select
              value={seconds}
              onChange={(e) => setSeconds(Number((e.target as HTMLSelectElement).value))}
            >
              {windows.map((w) => (
                <option key={w.seconds} value={w.seconds}>
                  {w.label}
                </option>
              ))}
            </select>
          </label>
          <Updated at={flow.at} loading={flow.loading} />
        </div>
      </div>
      <p class="muted intro">
        Each target's adaptive concurrency limit, what is in flight and queued against it, the requests shed
        to protect it, and its circuit breaker. Sampled every 2 seconds; history is kept in memory for 15
        minutes.
      </p>
      {flow.error && <ErrorNotice error={flow.error} what="flow control state" retry={flow.refresh} />}
      {health.error && <ErrorNotice error={health.error} what="target health" retry={health.refresh} />}
      {!report || !history ? (
        !flow.error && <Loading what="flow control state" />
      ) : (
        <>
          {!report.enabled && (
            <p class="notice" role="status">
              Flow control is off (<code>flow.enabled: false</code>): targets have no adaptive limits, queues
              or breakers.
            </p>
          )}
          <RoutesTable report={report} />
          <h2>Targets</h2>
          {report.targets.length === 0 ? (
            <Empty title="No target has had traffic since the gateway started.">
              A target appears here after its first request. <NoTrafficHint />
            </Empty>
          ) : (
            <div class="target-list">
              {[...report.targets].sort(byTarget).map((target) => (
                <TargetCard
                  key={target.target}
                  target={target}
                  history={history}
                  health={health.data?.get(target.target)}
                  seconds={seconds}
                />
              ))}
            </div>
          )}
        </>
      )}
    </section>
  );
}

function RoutesTable({ report }: { report: FlowReport }) {
  const routes = Object.entries(report.routes);
  if (routes.length === 0) return <Empty title="No routes are configured.">Add routes to sluice.yaml.</Empty>;
  return (
    <div class="card">
      <h2 class="card-title">Routes</h2>
      <div class="table-wrap">
        <table class="data-table">
          <caption class="sr-only">Routes with their targets, fallbacks and retry budget</caption>
          <thead>
            <tr>
              <th scope="col">Route</th>
              <th scope="col">Targets</th>
              <th scope="col">Fallbacks</th>
              <th scope="col" class="num">
                Retry budget left
              </th>
              <th scope="col" class="num">
                Retries refused
              </th>
            </tr>
          </thead>
          <tbody>
            {routes.map(([name, route]) => {
              const budget = report.retryBudgets[name];
              return (
                <tr key={name}>
                  <th scope="row">
                    <a href={href('/requests', { route: name })}>{name}</a>
                  </th>
                  <td>{route.targets.join(', ')}</td>
                  <td>
                    {route.fallbacks.length ? route.fallbacks.join(', ') : <span class="muted">none</span>}
                  </td>
                  <td class="num">{budget ? formatCount(budget.balance) : '—'}</td>
                  <td class="num">{budget ? formatCount(budget.refused) : '—'}</td>
                </tr>
              );
            })}
          </tbody>
        </table>
      </div>
    </div>
  );
}

function TargetCard({
  target,
  history,
  health,
  seconds,
}: {
  target: FlowReport['targets'][number];
  history: FlowHistoryView;
  health: { requests: number | null; error_rate: number | null; latency_p95: number | null } | undefined;
  seconds: number;
}) {
  const past = history.targets.find((h) => h.target === target.target);
  const end = history.t.at(-1) ?? Date.now();
  const xRange = [end - seconds * 1000, end] as const;
  const concurrency = useMemo(
    (): ChartSeries[] =>
      past
        ? [
            { label: 'Limit', values: past.limit, color: palette[0]!, dash: [6, 4] },
            { label: 'In flight', values: past.inflight, color: palette[3]! },
            { label: 'Queued', values: past.queued, color: palette[1]! },
          ]
        : [],
    [past],
  );
  const shed = useMemo(
    (): ChartSeries[] =>
      past ? priorities.map((p) => ({ label: p, values: past.shed[p], color: priorityColors[p] })) : [],
    [past],
  );
  const totalShed = priorities.reduce((sum, p) => sum + target.shedByPriority[p], 0);
  const id = `target-${target.target.replace(/[^a-zA-Z0-9_-]/g, '-')}`;
  return (
    <article class="card target" aria-labelledby={id} data-testid="target-card">
      <div class="card-head">
        <h3 id={id} class="card-title">
          {target.target}
        </h3>
        <BreakerBadge state={target.breaker} />
      </div>
      <dl class="facts">
        <div>
          <dt>Limit</dt>
          <dd>{formatCount(target.limit)}</dd>
        </div>
        <div>
          <dt>In flight</dt>
          <dd>{formatCount(target.inflight)}</dd>
        </div>
        <div>
          <dt>Queued</dt>
          <dd>{formatCount(target.queued)}</dd>
        </div>
        <div>
          <dt>Shed since start</dt>
          <dd>
            {formatCount(totalShed)}
            {totalShed > 0 && (
              <span class="muted small">
                {' '}
                (
                {priorities
                  .filter((p) => target.shedByPriority[p] > 0)
                  .map((p) => `${p} ${target.shedByPriority[p]}`)
                  .join(', ')}
                )
              </span>
            )}
          </dd>
        </div>
        <div>
          <dt>Latency signal</dt>
          <dd>{formatMs(target.latencyMs)}</dd>
        </div>
        <div>
          <dt>Last 5 min</dt>
          <dd>
            {health ? (
              <>
                {formatCount(health.requests)} req · {formatPercent(health.error_rate)} errors · p95{' '}
                {formatMs(health.latency_p95)}
              </>
            ) : (
              <span class="muted">no requests</span>
            )}
          </dd>
        </div>
      </dl>
      {past && (
        <BreakerTimeline
          t={history.t}
          states={past.breaker}
          window={xRange}
          intervalMs={history.intervalMs}
        />
      )}
      <div class="charts charts-pair">
        <Chart
          title="Concurrency"
          unit="requests"
          format={(v) => formatCount(v)}
          t={history.t}
          xRange={xRange}
          series={concurrency}
          empty={<Empty title="No samples yet: the first arrives within 2 seconds of traffic." />}
        />
        <Chart
          title="Shed per 2 s, by priority"
          unit="requests"
          format={(v) => formatCount(v)}
          t={history.t}
          xRange={xRange}
          series={shed}
          stacked
          empty={
            <Empty title="Nothing shed in this window.">The limiter admitted every request in time.</Empty>
          }
        />
      </div>
    </article>
  );
}

const breakerLabels: Record<string, string> = {
  closed: 'Breaker closed',
  open: 'Breaker open',
  'half-open': 'Breaker half-open',
  disabled: 'Breaker disabled',
};

function BreakerBadge({ state }: { state: string }) {
  return <span class={`badge badge-${state}`}>{breakerLabels[state] ?? `Breaker ${state}`}</span>;
}

/** The breaker's state over the chart window, as coloured spans (one per run of the same state). */
function BreakerTimeline({
  t,
  states,
  window: [start, end],
  intervalMs,
}: {
  t: number[];
  states: Array<string | null>;
  window: readonly [number, number];
  intervalMs: number;
}) {
  const runs: Array<{ state: string; from: number; to: number }> = [];
  states.forEach((state, i) => {
    if (state === null) return;
    // A sample stands for the interval that ends at it.
    const from = t[i]! - intervalMs;
    const last = runs.at(-1);
    if (last && last.state === state && last.to >= from) last.to = t[i]!;
    else runs.push({ state, from, to: t[i]! });
  });
  const span = Math.max(end - start, 1);
  const pct = (ms: number) => `${(Math.min(Math.max(ms - start, 0), span) / span) * 100}%`;
  const description =
    runs.length === 0
      ? 'No breaker state recorded in this window.'
      : runs.length === 1
        ? `Breaker ${runs[0]!.state} since ${formatTime(runs[0]!.from)}.`
        : `Breaker states: ${runs.map((r) => `${r.state} from ${formatTime(r.from)}`).join(', ')}.`;
  return (
    <div class="breaker-timeline">
      <span class="small muted">Breaker</span>
      <div class="breaker-strip" role="img" aria-label={description}>
        {runs.map((run) => (
          <span
            key={run.from}
            class={`breaker-run breaker-${run.state}`}
            style={{ left: pct(run.from), width: `calc(${pct(run.to)} - ${pct(run.from)})` }}
            title={`${run.state} ${formatTime(run.from)}–${formatTime(run.to)}`}
          />
        ))}
      </div>
    </div>
  );
}
