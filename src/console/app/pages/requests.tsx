import { useEffect, useState } from 'preact/hooks';
import type { Api, RequestPage, RequestRow } from '../api.js';
import { RangeSelect, Updated } from '../controls.js';
import { formatCount, formatDateTime, formatMs, formatUsd, formatWhen, orDash } from '../format.js';
import { settled, usePoll } from '../poll.js';
import { href, type Location, navigate, replaceParams } from '../router.js';
import { Empty, ErrorNotice, Loading, NoTrafficHint } from '../states.js';
import { rangeParams, timeRange } from '../time-range.js';

/** Filters with a control of their own; any other dimension in the URL (team, tag.x, ...) is shown as a chip. */
const textFilters = [
  { name: 'route', label: 'Route' },
  { name: 'model', label: 'Model' },
  { name: 'key', label: 'Key' },
] as const;
const priorities = ['critical', 'high', 'normal', 'low', 'batch'];
const statusClasses = [
  { id: '2xx', label: 'Success (2xx)' },
  { id: '4xx', label: 'Client errors (4xx)' },
  { id: '5xx', label: 'Server errors (5xx)' },
];
/** Parameters of the page itself, not filters of the request list. */
const pageParams = new Set(['range']);

const pageSize = 50;

export function RequestsPage({ api, location }: { api: Api; location: Location }) {
  const { params } = location;
  const range = timeRange(params.get('range'));
  const filters: Record<string, string[]> = {};
  for (const [name, value] of params) {
    if (pageParams.has(name) || !value) continue;
    filters[name] = [...(filters[name] ?? []), value];
  }
  const filterKey = JSON.stringify(filters);
  const set = (name: string, value: string | null) => {
    const next = new URLSearchParams(params);
    next.delete(name);
    if (value) next.set(name, value);
    replaceParams(Object.fromEntries(next));
  };

  const first = usePoll(
    (signal) => api.requests({ ...rangeParams(range), limit: pageSize, ...filters }, signal),
    [api, range.id, filterKey],
  );
  const [older, setOlder] = useState<RequestPage[]>([]);
  const [loadingMore, setLoadingMore] = useState(false);
  const [moreError, setMoreError] = useState<Error | null>(null);
  useEffect(() => {
    setOlder([]);
    setMoreError(null);
  }, [first.data]);

  const choices = usePoll(
    async (signal) => {
      const dims = await Promise.all(
        textFilters.map((f) =>
          api
            .breakdown({ ...rangeParams(range), by: f.name, metrics: ['requests'], limit: 50 }, signal)
            .then((b) => b.rows.map((r) => r.group).filter((g): g is string => g !== null)),
        ),
      );
      return Object.fromEntries(textFilters.map((f, i) => [f.name, dims[i] ?? []]));
    },
    [api, range.id],
  );

  const pages = first.data ? [first.data, ...older] : [];
  const rows = pages.flatMap((p) => p.data);
  const cursor = pages.at(-1)?.nextCursor ?? null;
  const loadMore = async () => {
    if (!cursor) return;
    setLoadingMore(true);
    setMoreError(null);
    try {
      const page = await api.requests({ ...rangeParams(range), limit: pageSize, ...filters, cursor });
      setOlder((o) => [...o, page]);
    } catch (error) {
      setMoreError(error as Error);
    } finally {
      setLoadingMore(false);
    }
  };

  const known = new Set<string>([
    ...textFilters.map((f) => f.name),
    'priority',
    'status_class',
    'errors_only',
  ]);
  const extra = Object.entries(filters).filter(([name]) => !known.has(name));
  const filtered = Object.keys(filters).length > 0;
  return (
    <section aria-labelledby="requests-title" aria-busy={!settled(first, choices)}>
      <div class="page-head">
        <h1 id="requests-title">Requests</h1>
        <div class="toolbar">
          <RangeSelect value={range} onChange={(id) => set('range', id)} />
          <button type="button" class="button button-quiet" onClick={first.refresh}>
            Refresh
          </button>
          <Updated at={first.at} loading={first.loading} />
        </div>
      </div>
      <form class="filters card" aria-label="Filter requests" onSubmit={(e) => e.preventDefault()}>
        {textFilters.map((f) => (
          <label class="field" key={f.name}>
            <span>{f.label}</span>
            <input
              name={f.name}
              list={`choices-${f.name}`}
              value={filters[f.name]?.[0] ?? ''}
              placeholder="any"
              onChange={(e) => set(f.name, (e.target as HTMLInputElement).value.trim() || null)}
            />
            <datalist id={`choices-${f.name}`}>
              {(choices.data?.[f.name] ?? []).map((v) => (
                <option key={v} value={v} />
              ))}
            </datalist>
          </label>
        ))}
        <label class="field">
          <span>Status</span>
          <select
            name="status_class"
            value={filters.status_class?.[0] ?? ''}
            onChange={(e) => set('status_class', (e.target as HTMLSelectElement).value || null)}
          >
            <option value="">any</option>
            {statusClasses.map((s) => (
              <option key={s.id} value={s.id}>
                {s.label}
              </option>
            ))}
          </select>
        </label>
        <label class="field">
          <span>Priority</span>
          <select
            name="priority"
            value={filters.priority?.[0] ?? ''}
            onChange={(e) => set('priority', (e.target as HTMLSelectElement).value || null)}
          >
            <option value="">any</option>
            {priorities.map((p) => (
              <option key={p} value={p}>
                {p}
              </option>
            ))}
          </select>
        </label>
        <label class="field field-check">
          <input
            type="checkbox"
            name="errors_only"
            checked={filters.errors_only?.[0] === 'true'}
            onChange={(e) => set('errors_only', (e.target as HTMLInputElement).checked ? 'true' : null)}
          />
          <span>Errors only</span>
        </label>
        {extra.map(([name, values]) => (
          <span class="chip" key={name}>
            {name} = {values.join(' or ')}
            <button
              type="button"
              class="chip-remove"
              aria-label={`Remove filter ${name}`}
              onClick={() => set(name, null)}
            >
              ×
            </button>
          </span>
        ))}
        {filtered && (
          <a class="link-button" href={href('/requests', { range: params.get('range') })}>
            Clear filters
          </a>
        )}
      </form>
      {first.error && <ErrorNotice error={first.error} what="requests" retry={first.refresh} />}
      {!first.data ? (
        !first.error && <Loading what="requests" />
      ) : rows.length === 0 ? (
        filtered ? (
          <Empty title="No requests match these filters in this range.">
            Widen the time range or{' '}
            <a href={href('/requests', { range: params.get('range') })}>clear the filters</a>.
          </Empty>
        ) : (
          <Empty title="No requests in this range yet.">
            <NoTrafficHint />
          </Empty>
        )
      ) : (
        <>
          <RequestTable rows={rows} />
          <div class="pager">
            <span class="muted small" aria-live="polite">
              {formatCount(rows.length)} requests shown, newest first
            </span>
            {cursor && (
              <button type="button" class="button" onClick={loadMore} disabled={loadingMore}>
                {loadingMore ? 'Loading…' : 'Load older requests'}
              </button>
            )}
          </div>
          {moreError && <ErrorNotice error={moreError} what="older requests" retry={loadMore} />}
        </>
      )}
    </section>
  );
}

export function StatusBadge({ event }: { event: Pick<RequestRow, 'status' | 'shed'> }) {
  const kind = event.status >= 500 ? 'error' : event.status >= 400 ? 'warn' : 'ok';
  return (
    <span class={`badge badge-${kind}`}>
      {event.status}
      {event.shed ? ' shed' : ''}
    </span>
  );
}

function RequestTable({ rows }: { rows: RequestRow[] }) {
  return (
    <div class="table-wrap">
      <table class="data-table requests-table" data-testid="requests-table">
        <caption class="sr-only">Requests, newest first; open one for its attempts and timings</caption>
        <thead>
          <tr>
            <th scope="col">Time</th>
            <th scope="col">Status</th>
            <th scope="col">Route</th>
            <th scope="col">Target</th>
            <th scope="col">Key</th>
            <th scope="col">Priority</th>
            <th scope="col" class="num">
              Latency
            </th>
            <th scope="col" class="num">
              TTFT
            </th>
            <th scope="col" class="num">
              Tokens in → out
            </th>
            <th scope="col" class="num">
              Cost
            </th>
          </tr>
        </thead>
        <tbody>
          {rows.map((e) => (
            <tr
              key={e.id}
              class="clickable"
              onClick={(event) => {
                // The time cell's link is the keyboard's way in; a click anywhere else on the row does the same.
                if ((event.target as HTMLElement).closest('a')) return;
                navigate(`/requests/${encodeURIComponent(e.id)}`);
              }}
            >
              <td>
                <a
                  href={href(`/requests/${encodeURIComponent(e.id)}`)}
                  title={formatDateTime(e.time)}
                  aria-label={`Request at ${formatDateTime(e.time)}, id ${e.id}`}
                >
                  {formatWhen(e.time)}
                </a>
              </td>
              <td>
                <StatusBadge event={e} />
              </td>
              <td>{orDash(e.route)}</td>
              <td>{orDash(e.target)}</td>
              <td>{orDash(e.keyName)}</td>
              <td>{orDash(e.priority)}</td>
              <td class="num">{formatMs(e.timings.totalMs)}</td>
              <td class="num">{formatMs(e.timings.firstTokenMs)}</td>
              <td class="num">
                {formatCount(e.tokens.input)} → {formatCount(e.tokens.output)}
              </td>
              <td class="num">{formatUsd(e.costUsd)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
