/**
 * Deterministic example values for the JSON Schema subset LLM APIs accept (OpenAI `response_format`
 * json_schema, tool `parameters`), so the simulator's structured output validates like a real model's.
 */
import type { Rng } from './rng.js';

type Schema = { readonly [keyword: string]: unknown };

interface Context {
  readonly root: unknown;
  readonly rng: Rng;
  /** Nesting depth; past SHALLOW_DEPTH values take their shortest valid shape so recursive schemas end. */
  readonly depth: number;
  /** The nearest property name, so strings can read like what the property holds. */
  readonly name: string;
}

const SHALLOW_DEPTH = 12;
// Only a schema that demands infinite nesting reaches this; give up rather than overflow the stack.
const MAX_DEPTH = 48;

const WORDS = ['alpha', 'harbor', 'meadow', 'orbit', 'pebble', 'quartz', 'river', 'summit', 'willow'];
const VOCABULARY: ReadonlyArray<readonly [RegExp, readonly string[]]> = [
  [/city|town/, ['Lisbon', 'Osaka', 'Nairobi', 'Denver', 'Tallinn']],
  [/country|nation/, ['Portugal', 'Japan', 'Kenya', 'Chile', 'Estonia']],
  [/name|author|user/, ['Ada Lovelace', 'Alan Turing', 'Grace Hopper', 'Katherine Johnson']],
  [/colou?r/, ['red', 'teal', 'amber', 'indigo', 'olive']],
  [/lang/, ['English', 'Portuguese', 'Japanese', 'Swahili']],
  [/tag|label|categor|topic|keyword/, ['billing', 'travel', 'support', 'weather', 'sports']],
  [/status|state/, ['active', 'pending', 'done']],
];
const NUMERIC_KEYWORDS = ['minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum', 'multipleOf'];
const PROSE = /description|summary|reason|text|content|message|explanation|answer|comment/;

export function generateJsonValue(schema: unknown, rng: Rng): unknown {
  return generate(schema, { root: schema, rng, depth: 0, name: '' });
}

function generate(schema: unknown, ctx: Context): unknown {
  if (ctx.depth >= MAX_DEPTH || schema === false) return null;
  if (!isSchema(schema)) return words(ctx);
  // Keywords beside $ref / allOf / anyOf / oneOf must hold too, so each is merged with its siblings.
  if (typeof schema.$ref === 'string') {
    const { $ref, ...siblings } = schema;
    return generate(merge(siblings, resolve(ctx.root, $ref)), deeper(ctx));
  }
  if (Array.isArray(schema.allOf)) {
    const { allOf, ...siblings } = schema;
    const branches = allOf.map((b) =>
      isSchema(b) && typeof b.$ref === 'string' ? resolve(ctx.root, b.$ref) : b,
    );
    return generate(branches.reduce(merge, siblings), deeper(ctx));
  }
  if (Array.isArray(schema.anyOf) && schema.anyOf.length > 0) {
    const { anyOf, ...siblings } = schema;
    return generate(merge(siblings, choose(anyOf, ctx, true)), deeper(ctx));
  }
  if (Array.isArray(schema.oneOf) && schema.oneOf.length > 0) {
    const { oneOf, ...siblings } = schema;
    // A random branch might also match another one; the first is the conventional safe choice.
    return generate(merge(siblings, choose(oneOf, ctx, false)), deeper(ctx));
  }
  if ('const' in schema) return schema.const;
  if (Array.isArray(schema.enum) && schema.enum.length > 0) return ctx.rng.pick(schema.enum);
  switch (typeOf(schema, ctx)) {
    case 'null':
      return null;
    case 'boolean':
      return ctx.rng.next() < 0.5;
    case 'integer':
      return number(schema, ctx.rng, true);
    case 'number':
      return number(schema, ctx.rng, false);
    case 'object':
      return object(schema, ctx);
    case 'array':
      return array(schema, ctx);
    default:
      return string(schema, ctx);
  }
}

function deeper(ctx: Context, name = ctx.name): Context {
  return { ...ctx, depth: ctx.depth + 1, name };
}

function isSchema(value: unknown): value is Schema {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function finite(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) ? value : undefined;
}

/** Follows a local JSON pointer (`#`, `#/$defs/node`, `#/definitions/node`); anything else allows any value. */
function resolve(root: unknown, ref: string): unknown {
  if (ref !== '#' && !ref.startsWith('#/')) return true;
  let node = root;
  for (const token of ref === '#' ? [] : ref.slice(2).split('/')) {
    const key = decodeURIComponent(token).replaceAll('~1', '/').replaceAll('~0', '~');
    if (typeof node !== 'object' || node === null || !Object.hasOwn(node, key)) return true;
    node = (node as Record<string, unknown>)[key];
  }
  return node;
}

/** Combines two schemas that must both hold; properties and required lists are unioned, not replaced. */
function merge(base: unknown, extra: unknown): unknown {
  if (base === false || extra === false) return false;
  if (!isSchema(extra)) return base;
  if (!isSchema(base)) return extra;
  const merged: Record<string, unknown> = { ...base };
  for (const [keyword, value] of Object.entries(extra)) {
    if (value !== undefined) merged[keyword] = value;
  }
  if (isSchema(base.properties) && isSchema(extra.properties)) {
    merged.properties = { ...base.properties, ...extra.properties };
  }
  if (Array.isArray(base.required) && Array.isArray(extra.required)) {
    merged.required = [...new Set([...base.required, ...extra.required])];
  }
  return merged;
}

function isNullable(schema: unknown): boolean {
  if (!isSchema(schema)) return false;
  return schema.type === 'null' || (Array.isArray(schema.type) && schema.type.includes('null'));
}

function choose(branches: readonly unknown[], ctx: Context, random: boolean): unknown {
  if (ctx.depth >= SHALLOW_DEPTH) {
    return branches.find(isNullable) ?? branches.find((b) => !isSchema(b) || !('$ref' in b)) ?? branches[0];
  }
  return random ? ctx.rng.pick(branches) : branches[0];
}

function typeOf(schema: Schema, ctx: Context): string {
  const { type } = schema;
  if (typeof type === 'string') return type;
  const types = Array.isArray(type) ? type.filter((t): t is string => typeof t === 'string') : [];
  if (types.length > 0) {
    if (ctx.depth < SHALLOW_DEPTH) return ctx.rng.pick(types);
    return types.includes('null')
      ? 'null'
      : (types.find((t) => t !== 'object' && t !== 'array') ?? types[0]!);
  }
  if ('properties' in schema || 'required' in schema || 'additionalProperties' in schema) return 'object';
  if ('items' in schema || 'prefixItems' in schema) return 'array';
  if (NUMERIC_KEYWORDS.some((keyword) => keyword in schema)) return 'number';
  return 'string';
}

/** Picks a multiple of the step (multipleOf, 1 or 0.01) inside the bounds; with no bounds, 0..100. */
function number(schema: Schema, rng: Rng, integer: boolean): number {
  const multipleOf = finite(schema.multipleOf);
  const step = multipleOf !== undefined && multipleOf > 0 ? multipleOf : integer ? 1 : 0.01;
  const [mantissa = '', exponent = '0'] = step.toExponential().split('e');
  const decimals = Math.max(0, (mantissa.split('.')[1]?.length ?? 0) - Number(exponent));
  // Rounding to the step's decimals keeps 7 * 0.01 at 0.07 rather than 0.07000000000000001.
  const at = (k: number) => Number((k * step).toFixed(decimals));
  // A nudge or two absorbs float error; the cap stops bounds beyond float precision from spinning forever.
  const first = (bound: number, open: boolean) => {
    let k = Math.ceil(bound / step);
    for (let i = 0; i < 4 && (at(k) < bound || (open && at(k) === bound)); i++) k++;
    return k;
  };
  const last = (bound: number, open: boolean) => {
    let k = Math.floor(bound / step);
    for (let i = 0; i < 4 && (at(k) > bound || (open && at(k) === bound)); i++) k--;
    return k;
  };
  const [min, max] = [finite(schema.minimum), finite(schema.maximum)];
  const [exclusiveMin, exclusiveMax] = [finite(schema.exclusiveMinimum), finite(schema.exclusiveMaximum)];
  const low = min ?? exclusiveMin ?? (max ?? exclusiveMax ?? 100) - 100;
  const high = max ?? exclusiveMax ?? low + 100;
  // Draft-04 spelled exclusive bounds as booleans beside minimum / maximum.
  let kLow = first(low, schema.exclusiveMinimum === true);
  if (exclusiveMin !== undefined) kLow = Math.max(kLow, first(exclusiveMin, true));
  let kHigh = last(high, schema.exclusiveMaximum === true);
  if (exclusiveMax !== undefined) kHigh = Math.min(kHigh, last(exclusiveMax, true));
  return kLow <= kHigh ? at(rng.int(kLow, kHigh)) : (low + high) / 2;
}

function object(schema: Schema, ctx: Context): Record<string, unknown> {
  const properties = isSchema(schema.properties) ? schema.properties : {};
  const required = Array.isArray(schema.required) ? schema.required.filter((k) => typeof k === 'string') : [];
  // OpenAI strict mode requires every property, so all are emitted unless recursion must be cut short.
  const keys = ctx.depth < SHALLOW_DEPTH ? new Set([...Object.keys(properties), ...required]) : required;
  const entries = [...keys].map((key) => {
    const property = Object.hasOwn(properties, key) ? properties[key] : (schema.additionalProperties ?? true);
    return [key, generate(property, deeper(ctx, key))] as const;
  });
  // fromEntries defines own properties, so a key such as "__proto__" stays plain data.
  return Object.fromEntries(entries);
}

function array(schema: Schema, ctx: Context): unknown[] {
  const { items, prefixItems } = schema;
  const tuple = Array.isArray(prefixItems) ? prefixItems : Array.isArray(items) ? items : [];
  // Draft-04 tuples put the schema for the remaining items under additionalItems.
  const restItems = Array.isArray(items) ? (schema.additionalItems ?? true) : (items ?? true);
  const min = finite(schema.minItems) ?? 0;
  const max = finite(schema.maxItems) ?? Number.POSITIVE_INFINITY;
  const clamp = (n: number) => Math.min(max, Math.max(min, n));
  let count = min;
  if (ctx.depth < SHALLOW_DEPTH) {
    count = ctx.rng.int(clamp(1), clamp(3));
    if (tuple.length > 0) count = clamp(restItems === false ? tuple.length : Math.max(count, tuple.length));
  }
  const values: unknown[] = [];
  const seen = new Set<string>();
  // uniqueItems over a small enum may not allow `count` distinct values, so attempts are bounded.
  for (let attempt = 0; values.length < count && attempt < count * 20; attempt++) {
    const itemSchema = values.length < tuple.length ? tuple[values.length] : restItems;
    const value = generate(itemSchema, deeper(ctx));
    if (schema.uniqueItems === true) {
      const key = JSON.stringify(value);
      if (seen.has(key)) continue;
      seen.add(key);
    }
    values.push(value);
  }
  return values;
}

function string(schema: Schema, ctx: Context): string {
  const formatted = typeof schema.format === 'string' ? format(schema.format, ctx.rng) : undefined;
  if (formatted !== undefined) return formatted;
  let text = words(ctx);
  const minLength = finite(schema.minLength) ?? 0;
  while (text.length < minLength) text += ` ${ctx.rng.pick(WORDS)}`;
  return text.slice(0, finite(schema.maxLength));
}

/** A short string that suits the property name: a city for `city`, a phrase for `description`. */
function words(ctx: Context): string {
  const name = ctx.name.toLowerCase();
  if (PROSE.test(name)) {
    return Array.from({ length: ctx.rng.int(3, 6) }, () => ctx.rng.pick(WORDS)).join(' ');
  }
  const vocabulary = VOCABULARY.find(([hint]) => hint.test(name))?.[1] ?? WORDS;
  return ctx.rng.pick(vocabulary);
}

function format(name: string, rng: Rng): string | undefined {
  const pad = (n: number) => String(n).padStart(2, '0');
  const date = () => `${rng.int(2020, 2026)}-${pad(rng.int(1, 12))}-${pad(rng.int(1, 28))}`;
  const time = () => `${pad(rng.int(0, 23))}:${pad(rng.int(0, 59))}:${pad(rng.int(0, 59))}Z`;
  const hex = (length: number) => Array.from({ length }, () => rng.int(0, 15).toString(16)).join('');
  switch (name) {
    case 'date-time':
      return `${date()}T${time()}`;
    case 'date':
      return date();
    case 'time':
      return time();
    case 'email':
      return `${rng.pick(WORDS)}@example.com`;
    case 'hostname':
      return `${rng.pick(WORDS)}.example.com`;
    case 'uri':
    case 'url':
      return `https://example.com/${rng.pick(WORDS)}`;
    case 'uuid':
      return `${hex(8)}-${hex(4)}-4${hex(3)}-${rng.pick(['8', '9', 'a', 'b'])}${hex(3)}-${hex(12)}`;
    case 'ipv4':
      return [rng.int(1, 223), rng.int(0, 255), rng.int(0, 255), rng.int(1, 254)].join('.');
    default:
      return undefined;
  }
}
