import { isoMs } from '../time/iso-time.js';
import { type CustomEvent, customEventSchema } from './custom-event.js';
import type { EventColumn } from './event-columns.js';

function column<Name extends string>(name: Name, kind: EventColumn['kind'], nullable = false) {
  return { name, kind, nullable } as const;
}

/**
 * The `custom_events` table, shared by the DuckDB and ClickHouse stores: the typed columns every
 * custom event has, and its declared fields as one JSON string (ClickHouse 18.16 has no JSON type;
 * DuckDB reads it with json_extract, ClickHouse with visitParamExtract*). Times are epoch ms.
 */
export const customEventColumns = [
  column('id', 'string'),
  column('time_ms', 'bigint'),
  column('received_ms', 'bigint'),
  column('schema_version', 'int'),
  column('type', 'string'),
  column('request_id', 'string', true),
  column('key_name', 'string', true),
  column('admin', 'bool'),
  column('fields', 'string'),
] as const satisfies readonly EventColumn[];

export type CustomEventColumnName = (typeof customEventColumns)[number]['name'];
export type CustomEventRow = Record<CustomEventColumnName, string | number | boolean | null>;

export function toCustomRow(event: CustomEvent): CustomEventRow {
  return {
    id: event.id,
    time_ms: isoMs(event.time),
    received_ms: isoMs(event.receivedAt),
    schema_version: event.schemaVersion,
    type: event.type,
    request_id: event.requestId,
    key_name: event.keyName,
    admin: event.admin,
    fields: JSON.stringify(event.fields),
  };
}

/** Rebuilds a custom event from a stored row; ClickHouse keeps "no request" as '' (a sorting key is never NULL). */
export function fromCustomRow(row: Readonly<Record<string, unknown>>): CustomEvent {
  const requestId = row.request_id === null || row.request_id === '' ? null : String(row.request_id);
  return customEventSchema.parse({
    schemaVersion: Number(row.schema_version),
    id: String(row.id),
    type: String(row.type),
    time: new Date(Number(row.time_ms)).toISOString(),
    receivedAt: new Date(Number(row.received_ms)).toISOString(),
    requestId,
    keyName: row.key_name === null || row.key_name === undefined ? null : String(row.key_name),
    admin: row.admin === true || row.admin === 1 || row.admin === '1',
    fields: JSON.parse(String(row.fields)),
  });
}

/** Keeps the first event for each id, so a batch never carries its own duplicates to a store. */
export function uniqueCustomById(events: readonly CustomEvent[]): CustomEvent[] {
  const seen = new Set<string>();
  return events.filter((event) => !seen.has(event.id) && seen.add(event.id) !== undefined);
}
