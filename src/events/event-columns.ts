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
 * Flattens an event into one row keyed by column name (booleans stay booleans; stores encode them).
 * Events spooled by an older version lack the newer fields: they become null.
 */
export function toRow(event: WideEvent): EventRow {
  const timeMs = Date.parse(event.time);
  if (Number.isNaN(timeMs)) throw new Error(`wide event ${event.id} has an unreadable time: ${event.time}`);
  return {
    id: event.id,
    time_ms: timeMs,
    schema_version: event.schemaVersion,
    operation: event.operation,
    wire: event.wire,
    stream: event.stream,
    key_name: event.keyName,
    requested_model: event.requestedModel,
    route: event.route,
    target: event.target,
    provider: event.provider,
    model: event.model,
    status: event.status,
    error_code: event.errorCode,
    error_message: event.errorMessage,
    client_aborted: event.clientAborted,
    timings_total_ms: event.timings.totalMs,
    timings_first_token_ms: event.timings.firstTokenMs,
    tokens_input: event.tokens.input,
    tokens_output: event.tokens.output,
    tokens_cached_input: event.tokens.cachedInput,
    tokens_cache_write: event.tokens.cacheWrite,
    tokens_reasoning: event.tokens.reasoning,
    attempts: JSON.stringify(event.attempts),
    retries: event.retries,
    fallbacks: event.fallbacks,
    hedges: event.hedges,
    priority: event.priority,
    queued_ms: event.queuedMs,
    shed: event.shed,
    trace_id: event.traceId ?? null,
    key_id: event.keyId ?? null,
    team: event.team ?? null,
    org: event.org ?? null,
    region: event.region ?? null,
    route_version: event.routeVersion ?? null,
    prompt_id: event.promptId ?? null,
    prompt_version: event.promptVersion ?? null,
    retrieval_index_hash: event.retrievalIndexHash ?? null,
    error_class: event.errorClass ?? null,
    timings_upstream_ms: event.timings.upstreamMs ?? null,
    cost_usd: event.costUsd ?? null,
    cache_status: event.cacheStatus ?? null,
    shed_reason: event.shedReason ?? null,
    tags: event.tags && Object.keys(event.tags).length > 0 ? JSON.stringify(event.tags) : null,
    request_body: event.requestBody ?? null,
    response_body: event.responseBody ?? null,
  };
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
