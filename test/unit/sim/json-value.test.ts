import { Ajv2020 } from 'ajv/dist/2020.js';
import { describe, expect, it } from 'vitest';
import { generateJsonValue } from '../../../src/sim/json-value.js';
import { createRng } from '../../../src/sim/rng.js';

// Formats are checked by hand below (ajv-formats is not a dependency); untyped schemas are under test.
const ajv = new Ajv2020({ allErrors: true, validateFormats: false, strictTypes: false });
const SEEDS = Array.from({ length: 40 }, (_, i) => i + 1);

function generateAll(schema: unknown): unknown[] {
  return SEEDS.map((seed) => generateJsonValue(schema, createRng(seed)));
}

function expectValid(schema: object): unknown[] {
  const validate = ajv.compile(schema);
  const values = generateAll(schema);
  for (const value of values) {
    expect(validate(value), `${JSON.stringify(value)}: ${ajv.errorsText(validate.errors)}`).toBe(true);
  }
  return values;
}

function depth(node: { children: unknown[] }): number {
  return 1 + Math.max(0, ...node.children.map((child) => depth(child as { children: unknown[] })));
}

describe('generateJsonValue', () => {
  it('produces nested objects that validate', () => {
    expectValid({
      type: 'object',
      properties: {
        user: {
          type: 'object',
          properties: { name: { type: 'string' }, age: { type: 'integer', minimum: 0, maximum: 120 } },
          required: ['name'],
        },
        address: { type: 'object', properties: { city: { type: 'string' }, zip: { type: 'string' } } },
      },
      required: ['user'],
    });
  });

  it('emits every property, not only the required ones', () => {
    const [value] = expectValid({
      type: 'object',
      properties: { a: { type: 'string' }, b: { type: 'number' }, c: { type: 'boolean' } },
      required: ['a'],
    });
    expect(Object.keys(value as object)).toEqual(['a', 'b', 'c']);
  });

  it('fills arrays of objects with one to three items by default', () => {
    const values = expectValid({
      type: 'array',
      items: { type: 'object', properties: { id: { type: 'integer' }, tag: { type: 'string' } } },
    });
    const lengths = new Set(values.map((value) => (value as unknown[]).length));
    expect([...lengths].sort()).toEqual([1, 2, 3]);
  });

  it('honours minItems, maxItems and uniqueItems', () => {
    expectValid({ type: 'array', items: { type: 'integer' }, minItems: 5, maxItems: 6 });
    expectValid({ type: 'array', items: { type: 'string' }, maxItems: 0 });
    expectValid({ type: 'array', items: { enum: ['x', 'y', 'z'] }, minItems: 3, uniqueItems: true });
  });

  it('fills prefixItems tuples position by position', () => {
    const values = expectValid({
      type: 'array',
      prefixItems: [{ type: 'string' }, { type: 'integer' }, { type: 'boolean' }],
      items: false,
    });
    expect(values.every((value) => (value as unknown[]).length === 3)).toBe(true);
  });

  it('picks enum members and returns const values as given', () => {
    const values = expectValid({ enum: ['low', 'medium', 'high'] });
    expect(new Set(values).size).toBe(3);
    expectValid({ type: 'object', properties: { kind: { const: 'event' }, version: { const: 2 } } });
  });

  it('emits both null and the other type for nullable type arrays', () => {
    const values = expectValid({ type: ['string', 'null'] });
    expect(values).toContain(null);
    expect(values.some((value) => typeof value === 'string')).toBe(true);
  });

  it('chooses among anyOf branches, merged with sibling keywords', () => {
    const values = expectValid({
      type: 'object',
      properties: { id: { type: 'string' } },
      required: ['id'],
      anyOf: [
        { properties: { email: { type: 'string', format: 'email' } }, required: ['email'] },
        { properties: { phone: { type: 'string' } }, required: ['phone'] },
      ],
    });
    expect(values.some((value) => 'email' in (value as object))).toBe(true);
    expect(values.some((value) => 'phone' in (value as object))).toBe(true);
  });

  it('produces a value matching exactly one oneOf branch', () => {
    expectValid({
      oneOf: [
        {
          type: 'object',
          properties: { type: { const: 'click' }, x: { type: 'integer' } },
          required: ['type'],
        },
        {
          type: 'object',
          properties: { type: { const: 'scroll' }, dy: { type: 'number' } },
          required: ['type'],
        },
      ],
    });
  });

  it('merges allOf object branches, including referenced ones', () => {
    const values = expectValid({
      $defs: { named: { type: 'object', properties: { name: { type: 'string' } }, required: ['name'] } },
      allOf: [{ $ref: '#/$defs/named' }, { type: 'object', properties: { size: { type: 'integer' } } }],
    });
    expect(Object.keys(values[0] as object).sort()).toEqual(['name', 'size']);
  });

  it('resolves $ref against $defs and definitions', () => {
    expectValid({
      type: 'object',
      properties: { home: { $ref: '#/$defs/place' }, work: { $ref: '#/definitions/place' } },
      $defs: { place: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } },
      definitions: { place: { type: 'object', properties: { country: { type: 'string' } } } },
    });
  });

  it('ends a recursive tree within a bounded depth', () => {
    const values = expectValid({
      $ref: '#/$defs/node',
      $defs: {
        node: {
          type: 'object',
          properties: {
            label: { type: 'string' },
            children: { type: 'array', items: { $ref: '#/$defs/node' } },
          },
          required: ['label', 'children'],
          additionalProperties: false,
        },
      },
    });
    for (const tree of values) expect(depth(tree as { children: unknown[] })).toBeLessThanOrEqual(5);
  });

  it('takes the null branch of a required recursive link once deep', () => {
    expectValid({
      type: 'object',
      properties: { value: { type: 'integer' }, next: { anyOf: [{ $ref: '#' }, { type: 'null' }] } },
      required: ['value', 'next'],
      additionalProperties: false,
    });
  });

  it('terminates on a schema that demands infinite nesting', () => {
    const schema = { type: 'object', properties: { next: { $ref: '#' } }, required: ['next'] };
    expect(() => generateJsonValue(schema, createRng(1))).not.toThrow();
  });

  it('keeps numbers inside inclusive and exclusive bounds', () => {
    expectValid({ type: 'number', minimum: -5, maximum: 5 });
    expectValid({ type: 'number', exclusiveMinimum: 0, exclusiveMaximum: 0.05 });
    expectValid({ type: 'integer', exclusiveMinimum: 1, exclusiveMaximum: 3 });
    expectValid({ type: 'integer', minimum: 1_000_000 });
    expectValid({ type: 'number', maximum: -1000 });
  });

  it('lands numbers on multipleOf', () => {
    expectValid({ type: 'integer', multipleOf: 5, minimum: 1, maximum: 99 });
    expectValid({ type: 'number', multipleOf: 0.25, exclusiveMinimum: 0, maximum: 2 });
    const values = generateAll({ type: 'number', multipleOf: 0.01, minimum: 0, maximum: 1 });
    for (const value of values) expect(String(value)).toMatch(/^(0(\.\d{1,2})?|1)$/);
  });

  it('fits strings between minLength and maxLength', () => {
    expectValid({ type: 'string', minLength: 40 });
    expectValid({ type: 'string', maxLength: 3 });
    expectValid({ type: 'string', minLength: 8, maxLength: 8 });
  });

  it('produces valid examples for common string formats', () => {
    const patterns: Record<string, RegExp> = {
      'date-time': /^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d)T([01]\d|2[0-3]):[0-5]\d:[0-5]\dZ$/,
      date: /^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d)$/,
      time: /^([01]\d|2[0-3]):[0-5]\d:[0-5]\dZ$/,
      email: /^[a-z]+@example\.com$/,
      uri: /^https:\/\/example\.com\/[a-z]+$/,
      uuid: /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
      ipv4: /^((25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(25[0-5]|2[0-4]\d|1?\d?\d)$/,
    };
    for (const [format, pattern] of Object.entries(patterns)) {
      for (const value of generateAll({ type: 'string', format })) expect(value).toMatch(pattern);
    }
  });

  it('reads strings from the property name', () => {
    const values = generateAll({ type: 'object', properties: { city: { type: 'string' }, summary: {} } });
    for (const value of values as Array<{ city: string; summary: string }>) {
      expect(value.city).toMatch(/^[A-Z][a-z]+$/);
      expect(value.summary.split(' ').length).toBeGreaterThanOrEqual(3);
    }
  });

  it('treats true and {} as any value and answers with a short string', () => {
    for (const schema of [true, {}]) {
      const value = generateJsonValue(schema, createRng(7));
      expect(typeof value).toBe('string');
      expect((value as string).length).toBeLessThan(40);
    }
  });

  it('treats a schema with properties but no type as an object', () => {
    const values = expectValid({ properties: { ok: { type: 'boolean' } }, required: ['ok'] });
    expect(typeof (values[0] as { ok: unknown }).ok).toBe('boolean');
  });

  it('ignores keywords it does not know', () => {
    const schema = { type: 'string', pattern: '^x', 'x-display': 'wide', description: 'anything' };
    expect(typeof generateJsonValue(schema, createRng(3))).toBe('string');
  });

  it('satisfies a realistic OpenAI strict-mode schema with every property present', () => {
    const schema = {
      type: 'object',
      properties: {
        intent: { type: 'string', enum: ['book_flight', 'cancel', 'ask_question'] },
        confidence: { type: 'number', minimum: 0, maximum: 1 },
        passengers: {
          type: 'array',
          items: {
            type: 'object',
            properties: {
              name: { type: 'string' },
              age: { type: ['integer', 'null'] },
              seat: { anyOf: [{ $ref: '#/$defs/seat' }, { type: 'null' }] },
            },
            required: ['name', 'age', 'seat'],
            additionalProperties: false,
          },
        },
        departure: { type: 'string', format: 'date-time' },
        notes: { type: ['string', 'null'] },
      },
      required: ['intent', 'confidence', 'passengers', 'departure', 'notes'],
      additionalProperties: false,
      $defs: {
        seat: {
          type: 'object',
          properties: {
            row: { type: 'integer', minimum: 1, maximum: 40 },
            letter: { enum: ['A', 'B', 'C', 'D'] },
          },
          required: ['row', 'letter'],
          additionalProperties: false,
        },
      },
    };
    for (const value of expectValid(schema)) {
      expect(Object.keys(value as object)).toEqual(schema.required);
    }
  });

  it('returns the same value for the same seed', () => {
    const schema = { type: 'object', properties: { a: { type: 'string' }, b: { type: 'array', items: {} } } };
    expect(generateJsonValue(schema, createRng(42))).toEqual(generateJsonValue(schema, createRng(42)));
  });

  it('returns different values for different seeds', () => {
    const schema = { type: 'object', properties: { a: { type: 'string' }, n: { type: 'number' } } };
    const values = [1, 2, 3, 4, 5].map((seed) => JSON.stringify(generateJsonValue(schema, createRng(seed))));
    expect(new Set(values).size).toBeGreaterThan(1);
  });
});
