import { isoMs } from '../time/iso-time.js';
import { attemptsJson } from './attempts-json.js';
import { type WideEvent, wideEventSchema } from './wide-event.js';

/** What a column holds, independent of the engine; each store maps it to its own type. */
export type ColumnKind = 'string' | 'int' | 'bigint' | 'float' | 'bool';

export interface EventColumn {
  readonly name: string;
  readonly kind: ColumnKind;
  readonly nullable: boolean;
}

function column<Name extends string>(name: Name, kind: ColumnKind, nullable = false) {
  return { name, kind, nullable } as const;
}

/**
 * The flat, columnar layout of a wide event, shared by the DuckDB and ClickHouse stores. Nested
 * objects become prefixed columns; `attempts` (a short, variable list rarely filtered on) is kept
 * as a JSON string. `time` is stored as epoch milliseconds, so it reads back as UTC ISO text.
 */
export const eventColumns = [
  column('id', 'string'),
  column('time_ms', 'bigint'),
  column('schema_version', 'int'),
  column('operation', 'string'),
  column('wire', 'string'),
  column('stream', 'bool'),
  column('key_name', 'string', true),
  column('requested_model', 'string'),
  column('route', 'string', true),
  column('target', 'string', true),
  column('provider', 'string', true),
  column('model', 'string', true),
  column('status', 'int'),
  column('error_code', 'string', true),
  column('error_message', 'string', true),
  column('client_aborted', 'bool'),
  column('timings_total_ms', 'float'),
  column('timings_first_token_ms', 'float', true),
  column('tokens_input', 'int'),
  column('tokens_output', 'int'),
  column('tokens_cached_input', 'int'),
  column('tokens_cache_write', 'int'),
  column('tokens_reasoning', 'int'),
  column('attempts', 'string'),
  column('retries', 'int'),
  column('fallbacks', 'int'),
  column('hedges', 'int'),
  column('priority', 'string', true),
  column('queued_ms', 'float'),
  column('shed', 'bool'),
  // Schema version 2: nullable, so rows stored before it read back as null.
  column('trace_id', 'string', true),
  column('key_id', 'string', true),
  column('team', 'string', true),
  column('org', 'string', true),
  column('region', 'string', true),
  column('route_version', 'string', true),
  column('prompt_id', 'string', true),
  column('prompt_version', 'string', true),
  column('retrieval_index_hash', 'string', true),
  column('error_class', 'string', true),
  column('timings_upstream_ms', 'float', true),
  column('cost_usd', 'float', true),
  column('cache_status', 'string', true),
  column('shed_reason', 'string', true),
  column('tags', 'string', true),
  column('request_body', 'string', true),
  column('response_body', 'string', true),
] as const satisfies readonly EventColumn[];

/** The columns each schema version added, for stores migrating a table created by an older version. */
export const columnsAddedInVersion2 = eventColumns.slice(
  eventColumns.findIndex((col) => col.name === 'trace_id'),
);

export type EventColumnName = (typeof eventColumns)[number]['name'];
export type EventRowValue = string | number | boolean | null;
/** Every column, each exactly once: the compiler checks `toRow` against the list above. */
export type EventRow = Record<EventColumnName, EventRowValue>;

const DUCKDB_TYPES: Record<ColumnKind, string> = {
  string: 'VARCHAR',
  int: 'INTEGER',
  bigint: 'BIGINT',
  float: 'DOUBLE',
  bool: 'BOOLEAN',
};

// UInt8 for booleans: ClickHouse 18.16 has no Bool type.
const CLICKHOUSE_TYPES: Record<ColumnKind, string> = {
  string: 'String',
  int: 'Int32',
  bigint: 'Int64',
  float: 'Float64',
  bool: 'UInt8',
};

export function duckdbType(col: EventColumn): string {
  return col.nullable ? DUCKDB_TYPES[col.kind] : `${DUCKDB_TYPES[col.kind]} NOT NULL`;
}

export function clickhouseType(col: EventColumn): string {
  return col.nullable ? `Nullable(${CLICKHOUSE_TYPES[col.kind]})` : CLICKHOUSE_TYPES[col.kind];
}

/**
 * Epoch ms of an event's time. Hot: every stored event needs it; `isoMs` reads the text the
 * record stage writes with integer arithmetic, anything else as `Date.parse` does.
 */
export function eventTimeMs(event: { id: string; time: string }): number {
  const ms = isoMs(event.time);
  if (Number.isNaN(ms)) throw new Error(`wide event ${event.id} has an unreadable time: ${event.time}`);
  return ms;
}

/**
 * How each column is read from an event (booleans stay booleans; stores encode them). Events
 * spooled by an older version lack the newer fields: they read as null. The type makes the
 * compiler check that every column is read exactly once.
 */
export const columnValues: { readonly [Name in EventColumnName]: (event: WideEvent) => EventRowValue } = {
  id: (e) => e.id,
  time_ms: eventTimeMs,
  schema_version: (e) => e.schemaVersion,
  operation: (e) => e.operation,
  wire: (e) => e.wire,
  stream: (e) => e.stream,
  key_name: (e) => e.keyName,
  requested_model: (e) => e.requestedModel,
  route: (e) => e.route,
  target: (e) => e.target,
  provider: (e) => e.provider,
  model: (e) => e.model,
  status: (e) => e.status,
  error_code: (e) => e.errorCode,
  error_message: (e) => e.errorMessage,
  client_aborted: (e) => e.clientAborted,
  timings_total_ms: (e) => e.timings.totalMs,
  timings_first_token_ms: (e) => e.timings.firstTokenMs,
  tokens_input: (e) => e.tokens.input,
  tokens_output: (e) => e.tokens.output,
  tokens_cached_input: (e) => e.tokens.cachedInput,
  tokens_cache_write: (e) => e.tokens.cacheWrite,
  tokens_reasoning: (e) => e.tokens.reasoning,
  attempts: (e) => attemptsJson(e.attempts),
  retries: (e) => e.retries,
  fallbacks: (e) => e.fallbacks,
  hedges: (e) => e.hedges,
  priority: (e) => e.priority,
  queued_ms: (e) => e.queuedMs,
  shed: (e) => e.shed,
  trace_id: (e) => e.traceId ?? null,
  key_id: (e) => e.keyId ?? null,
  team: (e) => e.team ?? null,
  org: (e) => e.org ?? null,
  region: (e) => e.region ?? null,
  route_version: (e) => e.routeVersion ?? null,
  prompt_id: (e) => e.promptId ?? null,
  prompt_version: (e) => e.promptVersion ?? null,
  retrieval_index_hash: (e) => e.retrievalIndexHash ?? null,
  error_class: (e) => e.errorClass ?? null,
  timings_upstream_ms: (e) => e.timings.upstreamMs ?? null,
  cost_usd: (e) => e.costUsd ?? null,
  cache_status: (e) => e.cacheStatus ?? null,
  shed_reason: (e) => e.shedReason ?? null,
  tags: (e) => (e.tags && hasKeys(e.tags) ? JSON.stringify(e.tags) : null),
  request_body: (e) => e.requestBody ?? null,
  response_body: (e) => e.responseBody ?? null,
};

function hasKeys(record: object): boolean {
  for (const _ in record) return true;
  return false;
}

/** The columns with their readers, in table order. */
export const eventColumnReaders = eventColumns.map((col) => ({ ...col, value: columnValues[col.name] }));

/** Flattens an event into one row keyed by column name. */
export function toRow(event: WideEvent): EventRow {
  const row = {} as Record<string, EventRowValue>;
  for (const col of eventColumnReaders) row[col.name] = col.value(event);
  return row as EventRow;
}

/** Engines hand 64-bit integers back as bigint (DuckDB) or quoted text (ClickHouse JSON). */
function num(value: unknown): number {
  return typeof value === 'number' ? value : Number(value);
}

function numOrNull(value: unknown): number | null {
  return value === null || value === undefined ? null : num(value);
}

function bool(value: unknown): boolean {
  return value === true || value === 1 || value === '1' || value === 'true';
}

function str(value: unknown): string {
  return String(value);
}

function strOrNull(value: unknown): string | null {
  return value === null || value === undefined ? null : String(value);
}

/** Rebuilds a wide event from a stored row, validated against the schema so a bad row fails loudly. */
export function fromRow(row: Readonly<Record<string, unknown>>): WideEvent {
  return wideEventSchema.parse({
    schemaVersion: num(row.schema_version),
    id: str(row.id),
    traceId: strOrNull(row.trace_id),
    time: new Date(num(row.time_ms)).toISOString(),
    operation: row.operation,
    wire: row.wire,
    stream: bool(row.stream),
    keyName: strOrNull(row.key_name),
    keyId: strOrNull(row.key_id),
    team: strOrNull(row.team),
    org: strOrNull(row.org),
    requestedModel: str(row.requested_model),
    route: strOrNull(row.route),
    target: strOrNull(row.target),
    provider: strOrNull(row.provider),
    model: strOrNull(row.model),
    region: strOrNull(row.region),
    routeVersion: strOrNull(row.route_version),
    promptId: strOrNull(row.prompt_id),
    promptVersion: strOrNull(row.prompt_version),
    retrievalIndexHash: strOrNull(row.retrieval_index_hash),
    status: num(row.status),
    errorClass: strOrNull(row.error_class),
    errorCode: strOrNull(row.error_code),
    errorMessage: strOrNull(row.error_message),
    clientAborted: bool(row.client_aborted),
    timings: {
      totalMs: num(row.timings_total_ms),
      firstTokenMs: numOrNull(row.timings_first_token_ms),
      upstreamMs: numOrNull(row.timings_upstream_ms),
    },
    tokens: {
      input: num(row.tokens_input),
      output: num(row.tokens_output),
      cachedInput: num(row.tokens_cached_input),
      cacheWrite: num(row.tokens_cache_write),
      reasoning: num(row.tokens_reasoning),
    },
    costUsd: numOrNull(row.cost_usd),
    cacheStatus: strOrNull(row.cache_status),
    attempts: JSON.parse(str(row.attempts)),
    retries: num(row.retries),
    fallbacks: num(row.fallbacks),
    hedges: num(row.hedges),
    priority: strOrNull(row.priority),
    queuedMs: num(row.queued_ms),
    shed: bool(row.shed),
    shedReason: strOrNull(row.shed_reason),
    tags: row.tags === null || row.tags === undefined ? {} : JSON.parse(str(row.tags)),
    requestBody: strOrNull(row.request_body),
    responseBody: strOrNull(row.response_body),
  });
}

/** Keeps the first event for each id, so a batch never carries its own duplicates to a store. */
export function uniqueById(events: readonly WideEvent[]): WideEvent[] {
  const seen = new Set<string>();
  const unique: WideEvent[] = [];
  for (const event of events) {
    if (seen.has(event.id)) continue;
    seen.add(event.id);
    unique.push(event);
  }
  return unique;
}

/** Epoch-ms bounds of a list query: `from` inclusive, `to` exclusive. */
export function timeRange(query: { from?: string; to?: string }): { fromMs?: number; toMs?: number } {
  const parse = (text: string, name: string): number => {
    const ms = Date.parse(text);
    if (Number.isNaN(ms)) throw new Error(`list: ${name} is not an ISO time: ${text}`);
    return ms;
  };
  return {
    ...(query.from === undefined ? {} : { fromMs: parse(query.from, 'from') }),
    ...(query.to === undefined ? {} : { toMs: parse(query.to, 'to') }),
  };
}
