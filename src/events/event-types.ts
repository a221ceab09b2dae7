import { randomUUID } from 'node:crypto';
import type { EventFieldConfig, EventTypeConfig } from '../config/schema.js';
import { isoMs, isoTime } from '../time/iso-time.js';
import type { CustomEvent } from './custom-event.js';
import { evaluate, expressionKind, fieldKind, fits, type Scalar, type ValueKind } from './derive.js';
import { compileRedactor, type Redactor } from './redaction.js';

/** Who sent a batch: the event is attributed to the API key, or marked as sent with the admin key. */
export interface Sender {
  keyName: string | null;
  admin: boolean;
}

/** Why one event of a batch was refused; `path` is where in the event, e.g. "user.id". */
export interface Rejection {
  code: string;
  message: string;
  path: string;
}

export interface EventTypes {
  /** One incoming item as the event to store: validated, mapped, derived and redacted. */
  admit(item: unknown, sender: Sender, receivedMs: number): { event: CustomEvent } | { rejection: Rejection };
}

/** Names an incoming event uses for itself, not for its fields. */
const RESERVED = ['type', 'id', 'time', 'requestId'] as const;
/** Ids, the sender's and request ids alike: visible ASCII, short enough for a sorting key. */
const ID = /^[\x21-\x7e]{1,128}$/;
/** Times are accepted up to a day ahead, for senders whose clocks run fast. */
const MAX_AHEAD_MS = 86_400_000;
const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/;
const REDACTED = '[REDACTED]';

/** What the config cannot say in its field types: references, kinds of derived values, enum values. */
export function eventTypeProblems(type: EventTypeConfig): { path: PropertyKey[]; message: string }[] {
  const problems: { path: PropertyKey[]; message: string }[] = [];
  const readable = new Map<string, ValueKind>();
  for (const [name, field] of Object.entries(type.fields)) {
    if (field.derive === undefined) readable.set(name, fieldKind(field.type));
  }
  for (const [name, field] of Object.entries(type.fields)) {
    const at = (...rest: PropertyKey[]) => ['fields', name, ...rest];
    if ((RESERVED as readonly string[]).includes(name)) {
      problems.push({
        path: at(),
        message: `"${name}" is the event's own; name the field differently (and read it with from: ${name} if needed)`,
      });
    }
    if (field.type === 'enum' && field.values === undefined) {
      problems.push({ path: at('values'), message: 'an enum field needs its list of values' });
    }
    if (field.type !== 'enum' && field.values !== undefined) {
      problems.push({ path: at('values'), message: 'values is only for enum fields' });
    }
    if (field.derive === undefined) continue;
    if (field.from !== undefined) {
      problems.push({ path: at('from'), message: 'a field is either read (from) or derived, not both' });
    }
    if (field.required) {
      problems.push({
        path: at('required'),
        message: 'a derived field cannot be required: it is absent when a field it reads is absent',
      });
    }
    const result = expressionKind(field.derive, (ref) => readable.get(ref));
    if ('problem' in result) problems.push({ path: at('derive'), message: result.problem });
    else if (!fits(field.type, result.kind)) {
      problems.push({
        path: at('derive'),
        message: `the expression yields ${result.kind === 'integer' ? 'an integer' : `a ${result.kind}`}, but the field is declared ${field.type}`,
      });
    }
  }
  type.redact.fields.forEach((name, i) => {
    if (!Object.hasOwn(type.fields, name)) {
      problems.push({ path: ['redact', 'fields', i], message: `"${name}" is not a field of this type` });
    }
  });
  return problems;
}

interface ReadField {
  name: string;
  path: string;
  steps: string[];
  config: EventFieldConfig;
  values?: ReadonlySet<string>;
}

interface CompiledType {
  name: string;
  config: EventTypeConfig;
  read: ReadField[];
  derived: { name: string; config: EventFieldConfig; values?: ReadonlySet<string> }[];
  /** Top-level names a declared field reads (the first step of its path). */
  roots: ReadonlySet<string>;
  redactFields: readonly string[];
  redactor?: Redactor;
}

/** Compiles `events.types` once (per config); `admit` then does no lookups it could have done here. */
export function compileEventTypes(
  types: Readonly<Record<string, EventTypeConfig>>,
  newId: () => string = randomUUID,
): EventTypes {
  const compiled = new Map<string, CompiledType>();
  for (const [name, config] of Object.entries(types)) {
    const read: ReadField[] = [];
    const derived: CompiledType['derived'] = [];
    for (const [fieldName, field] of Object.entries(config.fields)) {
      const values = field.values ? new Set(field.values) : undefined;
      if (field.derive !== undefined) derived.push({ name: fieldName, config: field, values });
      else {
        const path = field.from ?? fieldName;
        read.push({ name: fieldName, path, steps: path.split('.'), config: field, values });
      }
    }
    compiled.set(name, {
      name,
      config,
      read,
      derived,
      roots: new Set([...RESERVED, ...read.map((field) => field.steps[0]!)]),
      redactFields: config.redact.fields,
      redactor: compileRedactor(config.redact.patterns),
    });
  }
  const names = [...compiled.keys()];

  return {
    admit(item, sender, receivedMs) {
      if (typeof item !== 'object' || item === null || Array.isArray(item)) {
        return reject('invalid_event', '', `an event is a JSON object with a "type", not ${describe(item)}`);
      }
      const event = item as Record<string, unknown>;
      const typeName = event.type;
      if (typeof typeName !== 'string') {
        return reject('missing_type', 'type', `every event needs a "type": one of ${list(names)}`);
      }
      const type = compiled.get(typeName);
      if (!type) {
        return reject(
          'unknown_type',
          'type',
          names.length === 0
            ? `unknown event type "${typeName}": no types are declared (events.types in sluice.yaml)`
            : `unknown event type "${typeName}": declared types are ${list(names)}`,
        );
      }

      let id: string;
      if (event.id !== undefined) {
        if (typeof event.id !== 'string' || !ID.test(event.id)) {
          return reject('invalid_id', 'id', 'id must be a string of 1 to 128 visible ASCII characters');
        }
        id = event.id;
      } else id = newId();
      let timeMs = receivedMs;
      if (event.time !== undefined) {
        const parsed = parseTime(event.time);
        if (parsed === undefined) {
          return reject(
            'invalid_time',
            'time',
            'time must be an ISO 8601 time with a zone (2026-03-01T12:00:00Z) or epoch milliseconds',
          );
        }
        if (parsed < 0 || parsed > receivedMs + MAX_AHEAD_MS) {
          return reject('invalid_time', 'time', 'time must be after 1970 and at most a day ahead of now');
        }
        timeMs = parsed;
      }
      let requestId: string | null = null;
      const rule = type.config.requestId;
      if (event.requestId !== undefined && event.requestId !== null) {
        if (rule === 'forbidden') {
          return reject(
            'invalid_request_id',
            'requestId',
            `events of type "${type.name}" do not take a requestId`,
          );
        }
        if (typeof event.requestId !== 'string' || !ID.test(event.requestId)) {
          return reject(
            'invalid_request_id',
            'requestId',
            'requestId must be a request id (the x-sluice-request-id header of the request)',
          );
        }
        requestId = event.requestId;
      } else if (rule === 'required') {
        return reject(
          'missing_request_id',
          'requestId',
          `events of type "${type.name}" need the requestId of the request they are about`,
        );
      }

      if (type.config.unknownFields === 'reject') {
        for (const key of Object.keys(event)) {
          if (type.roots.has(key)) continue;
          const declared = type.read.map((field) => field.path);
          return reject(
            'unknown_field',
            key,
            `unknown field "${key}" for type "${type.name}"${declared.length > 0 ? `: it reads ${list(declared)}` : ''}`,
          );
        }
      }

      const fields: Record<string, Scalar> = {};
      for (const field of type.read) {
        const raw = readPath(event, field.steps);
        if (raw === undefined || raw === null) {
          if (field.config.required) {
            return reject('missing_field', field.path, `"${field.path}" is required for type "${type.name}"`);
          }
          continue;
        }
        const value = coerce(raw, field.config.type, field.values);
        if (typeof value === 'object')
          return reject('invalid_field', field.path, `"${field.path}" ${value.problem}`);
        fields[field.name] = value;
      }
      for (const field of type.derived) {
        const value = evaluate(field.config.derive!, fields, receivedMs);
        if (value === undefined) continue;
        if (field.values && !field.values.has(String(value))) {
          return reject(
            'invalid_field',
            field.name,
            `"${field.name}" derived the value ${JSON.stringify(value)}, which is not one of ${list([...field.values])}`,
          );
        }
        fields[field.name] = value;
      }

      for (const name of type.redactFields) if (Object.hasOwn(fields, name)) fields[name] = REDACTED;
      if (type.redactor) {
        for (const name in fields) {
          const value = fields[name];
          if (typeof value === 'string') fields[name] = type.redactor(value);
        }
      }

      return {
        event: {
          schemaVersion: 1,
          id,
          type: type.name,
          time: isoTime(timeMs),
          receivedAt: isoTime(receivedMs),
          requestId,
          keyName: sender.keyName,
          admin: sender.admin,
          fields,
        },
      };
    },
  };
}

function reject(code: string, path: string, message: string): { rejection: Rejection } {
  return { rejection: { code, path, message } };
}

function list(names: readonly string[]): string {
  return names.map((name) => `"${name}"`).join(', ');
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'number') return Number.isInteger(value) ? 'an integer' : 'a decimal';
  if (typeof value === 'object') return 'an object';
  return `a ${typeof value}`;
}

/** Follows a dotted path through objects (and arrays, by index); own properties only. */
function readPath(event: Record<string, unknown>, steps: readonly string[]): unknown {
  let value: unknown = event;
  for (const step of steps) {
    if (typeof value !== 'object' || value === null || !Object.hasOwn(value, step)) return undefined;
    value = (value as Record<string, unknown>)[step];
  }
  return value;
}

function parseTime(value: unknown): number | undefined {
  const ms =
    typeof value === 'number'
      ? value
      : typeof value === 'string' && ISO_TIME.test(value)
        ? isoMs(value)
        : NaN;
  // ±8.64e15 ms is the whole range a Date can hold.
  return Number.isSafeInteger(ms) && Math.abs(ms) <= 8.64e15 ? ms : undefined;
}

/** A raw value as its declared type, or what is wrong with it. Timestamps become ISO text in UTC. */
function coerce(
  raw: unknown,
  type: EventFieldConfig['type'],
  values?: ReadonlySet<string>,
): Scalar | { problem: string } {
  const expected = (what: string) => ({ problem: `must be ${what}, not ${describe(raw)}` });
  switch (type) {
    case 'string':
      return typeof raw === 'string' ? raw : expected('a string');
    case 'number':
      return typeof raw === 'number' && Number.isFinite(raw) ? raw : expected('a number');
    case 'integer':
      return typeof raw === 'number' && Number.isSafeInteger(raw) ? raw : expected('an integer');
    case 'boolean':
      return typeof raw === 'boolean' ? raw : expected('true or false');
    case 'enum':
      if (typeof raw === 'string' && values?.has(raw)) return raw;
      return { problem: `must be one of ${list([...(values ?? [])])}, not ${JSON.stringify(raw)}` };
    case 'timestamp': {
      const ms = parseTime(raw);
      return ms === undefined ? expected('an ISO 8601 time with a zone or epoch milliseconds') : isoTime(ms);
    }
  }
}
