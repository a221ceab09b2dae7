import { eventColumns, fromRow } from '../events/event-columns.js';
import type { EventReader, QueryLimits, QueryResult } from '../events/event-reader.js';
import { requestIdTimeMs } from '../events/request-id.js';
import type { WideEvent } from '../events/wide-event.js';
import { type CompileContext, conditions, timeRange } from './compile.js';
import type { Scope, Selection } from './query.js';
import { encodeCursor, type RequestCursor } from './request-cursor.js';
import { params } from './sql-dialect.js';

/** A request in a list: the wide event without its captured bodies. */
export type RequestListItem = Omit<WideEvent, 'requestBody' | 'responseBody'>;

export interface RequestsPage {
  data: RequestListItem[];
  nextCursor: string | null;
}

type Row = Record<string, unknown>;

const BODY_COLUMNS = new Set(['request_body', 'response_body']);

/** The request list first looks this far back, then four times further each step. */
const FIRST_WINDOW_MS = 15 * 60_000;

export function rowObjects(result: QueryResult): Row[] {
  return result.rows.map((row) => Object.fromEntries(result.columns.map((col, i) => [col.name, row[i]])));
}

/** The wide event's columns that the table has (an older table lacks newer ones; they read as null). */
function storedColumns(ctx: CompileContext): string[] {
  return eventColumns.map((col) => col.name).filter((name) => ctx.eventColumns.has(name));
}

function withoutBodies(event: WideEvent): RequestListItem {
  const { requestBody: _request, responseBody: _response, ...listed } = event;
  return listed;
}

/**
 * One page of requests, newest first, after `cursor` (keyset pagination on time and id). It
 * reads growing windows of time back from the cursor, each with the time index, until the page
 * is full: a page costs what its windows hold, never a sort of the whole range.
 */
export async function listRequests(
  reader: EventReader,
  ctx: CompileContext,
  limits: QueryLimits,
  page: { selection: Selection; scope: Scope; limit: number; cursor?: RequestCursor },
): Promise<RequestsPage> {
  const { selection, scope, cursor } = page;
  const dialect = ctx.dialect;
  const columns = storedColumns(ctx).filter((name) => !BODY_COLUMNS.has(name));
  const wanted = page.limit + 1;
  const found: Row[] = [];
  let high = cursor ? Math.min(selection.toMs, cursor.timeMs + 1) : selection.toMs;
  let span = FIRST_WINDOW_MS;
  while (found.length < wanted && high > selection.fromMs) {
    const low = Math.max(selection.fromMs, high - span);
    const p = params(dialect);
    const where = [...timeRange(dialect, p, low, high), ...conditions(ctx, 'raw', { selection, scope }, p)];
    if (cursor) {
      const time = p.add(cursor.timeMs, 'Int64');
      where.push(`(time_ms < ${time} OR (time_ms = ${time} AND id < ${p.add(cursor.id, 'String')}))`);
    }
    const result = await reader.query(
      {
        sql: `SELECT ${columns.join(', ')} FROM ${dialect.from('events')}
WHERE ${where.join('\n  AND ')}
ORDER BY time_ms DESC, id DESC
LIMIT ${wanted - found.length}`,
        params: p.values,
      },
      limits,
    );
    found.push(...rowObjects(result));
    high = low;
    span *= 4;
  }
  const rows = found.slice(0, page.limit);
  const last = rows.at(-1);
  return {
    data: rows.map((row) => withoutBodies(fromRow(row))),
    nextCursor:
      found.length > page.limit && last
        ? encodeCursor({ timeMs: Number(last.time_ms), id: String(last.id) })
        : null,
  };
}

const idTimeMarginMs = 60 * 60_000;

/** One request, bodies included, if it exists and `scope` may see it. */
export async function findRequest(
  reader: EventReader,
  ctx: CompileContext,
  limits: QueryLimits,
  id: string,
  scope: Scope,
): Promise<WideEvent | undefined> {
  const p = params(ctx.dialect);
  const everything: Selection = { fromMs: 0, toMs: 0, filters: [], errorsOnly: false };
  const where = [
    `id = ${p.add(id, 'String')}`,
    ...conditions(ctx, 'raw', { selection: everything, scope }, p),
  ];
  // A Sluice request id carries its arrival time: read only the hour around it. The event's time
  // is its arrival, taken a moment before or after the id; the margin covers clocks set back.
  const madeAt = requestIdTimeMs(id);
  if (madeAt !== undefined)
    where.push(...timeRange(ctx.dialect, p, madeAt - idTimeMarginMs, madeAt + idTimeMarginMs));
  const result = await reader.query(
    {
      sql: `SELECT ${storedColumns(ctx).join(', ')} FROM ${ctx.dialect.from('events')} WHERE ${where.join(' AND ')} LIMIT 1`,
      params: p.values,
    },
    limits,
  );
  const [row] = rowObjects(result);
  return row ? fromRow(row) : undefined;
}
