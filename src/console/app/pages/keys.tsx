import type { Api } from '../api.js';
import { RangeSelect, Updated } from '../controls.js';
import { formatCount, formatUsd } from '../format.js';
import { settled, usePoll } from '../poll.js';
import { href, type Location, replaceParams } from '../router.js';
import { Empty, ErrorNotice, Loading, NoTrafficHint } from '../states.js';
import { rangeParams, timeRange } from '../time-range.js';
import { BudgetSpendTable } from './budget-spend.js';

type KeyRecord = Record<string, unknown>;

/** The key list from GET /admin/keys, whichever envelope it comes in ({data}, {keys} or a bare list). */
function keyList(body: unknown): KeyRecord[] {
  const list = Array.isArray(body)
    ? body
    : body && typeof body === 'object'
      ? ((body as { data?: unknown; keys?: unknown }).data ?? (body as { keys?: unknown }).keys)
      : undefined;
  return Array.isArray(list) ? list.filter((k): k is KeyRecord => Boolean(k) && typeof k === 'object') : [];
}

function text(value: unknown): string {
  if (value === null || value === undefined || value === '') return '—';
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

/** The fields of a key shown as columns, when the gateway's key records have them. */
const keyColumns = [
  { field: 'name', label: 'Name' },
  { field: 'prefix', label: 'Key' },
  { field: 'status', label: 'Status' },
  { field: 'teamId', label: 'Team' },
  { field: 'orgId', label: 'Org' },
  { field: 'priority', label: 'Priority' },
  { field: 'budgets', label: 'Budgets' },
  { field: 'expiresAt', label: 'Expires' },
];

export function KeysPage({ api, location }: { api: Api; location: Location }) {
  const range = timeRange(location.params.get('range') ?? '24h');
  const spenders = usePoll(
    (signal) =>
      api.breakdown(
        {
          ...rangeParams(range),
          by: 'key',
          metrics: ['cost_usd', 'requests', 'tokens_input', 'tokens_output'],
          limit: 20,
        },
        signal,
      ),
    [api, range.id],
    30_000,
  );
  const keys = usePoll(async (signal) => keyList(await api.keys(signal)), [api], 30_000);
  const budgets = usePoll(async (signal) => (await api.budgets(signal)).budgets, [api], 30_000);
  const spendByKey = new Map((spenders.data?.rows ?? []).map((r) => [r.group, r.values.cost_usd]));
  const columns = keyColumns.filter((c) => (keys.data ?? []).some((k) => k[c.field] !== undefined));
  const topCost = Math.max(0, ...(spenders.data?.rows ?? []).map((r) => r.values.cost_usd ?? 0));

  return (
    <section aria-labelledby="keys-title" aria-busy={!settled(spenders, keys)}>
      <div class="page-head">
        <h1 id="keys-title">Keys and budgets</h1>
        <div class="toolbar">
          <RangeSelect value={range} onChange={(id) => replaceParams({ range: id })} />
          <Updated at={spenders.at} loading={spenders.loading} />
        </div>
      </div>
      <div class="card">
        <h2 class="card-title">Top spenders</h2>
        {spenders.error && (
          <ErrorNotice error={spenders.error} what="spend by key" retry={spenders.refresh} />
        )}
        {!spenders.data ? (
          !spenders.error && <Loading what="spend by key" />
        ) : spenders.data.rows.length === 0 ? (
          <Empty title="No requests in this range yet.">
            <NoTrafficHint />
          </Empty>
        ) : (
          <div class="table-wrap">
            <table class="data-table">
              <caption class="sr-only">Keys by cost in the time range, highest first</caption>
              <thead>
                <tr>
                  <th scope="col">Key</th>
                  <th scope="col" class="num">
                    Cost
                  </th>
                  <th scope="col" class="bar-col">
                    <span class="sr-only">Share of the top spender</span>
                  </th>
                  <th scope="col" class="num">
                    Requests
                  </th>
                  <th scope="col" class="num">
                    Tokens in → out
                  </th>
                </tr>
              </thead>
              <tbody>
                {[...spenders.data.rows]
                  .sort((a, b) => (b.values.cost_usd ?? 0) - (a.values.cost_usd ?? 0))
                  .map((row) => (
                    <tr key={row.group ?? '(none)'}>
                      <th scope="row">
                        {row.group === null ? (
                          <span class="muted">(no key)</span>
                        ) : (
                          <a href={href('/requests', { key: row.group, range: range.id })}>{row.group}</a>
                        )}
                      </th>
                      <td class="num">{formatUsd(row.values.cost_usd)}</td>
                      <td class="bar-col">
                        <span
                          class="bar"
                          style={{
                            width: `${topCost > 0 ? ((row.values.cost_usd ?? 0) / topCost) * 100 : 0}%`,
                          }}
                        />
                      </td>
                      <td class="num">{formatCount(row.values.requests)}</td>
                      <td class="num">
                        {formatCount(row.values.tokens_input)} → {formatCount(row.values.tokens_output)}
                      </td>
                    </tr>
                  ))}
              </tbody>
            </table>
          </div>
        )}
      </div>
      <div class="card">
        <h2 class="card-title">Budgets</h2>
        {budgets.error && <ErrorNotice error={budgets.error} what="the budgets" retry={budgets.refresh} />}
        {!budgets.data ? (
          !budgets.error && <Loading what="the budgets" />
        ) : (
          <BudgetSpendTable budgets={budgets.data} />
        )}
      </div>
      <div class="card">
        <h2 class="card-title">Keys</h2>
        {keys.error && <ErrorNotice error={keys.error} what="the keys" retry={keys.refresh} />}
        {!keys.data ? (
          !keys.error && <Loading what="the keys" />
        ) : keys.data.length === 0 ? (
          <Empty title="No keys yet.">Create one with sluice keys create, or POST /admin/keys.</Empty>
        ) : (
          <div class="table-wrap">
            <table class="data-table">
              <caption class="sr-only">Keys with their budgets and spend in the time range</caption>
              <thead>
                <tr>
                  {columns.map((c) => (
                    <th scope="col" key={c.field}>
                      {c.label}
                    </th>
                  ))}
                  <th scope="col" class="num">
                    Spend ({range.label.toLowerCase()})
                  </th>
                </tr>
              </thead>
              <tbody>
                {keys.data.map((k, i) => (
                  <tr key={text(k.id ?? k.name ?? i)}>
                    {columns.map((c) => (
                      <td key={c.field}>{text(k[c.field])}</td>
                    ))}
                    <td class="num">
                      {formatUsd(spendByKey.get(typeof k.name === 'string' ? k.name : null) ?? null)}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </div>
    </section>
  );
}
