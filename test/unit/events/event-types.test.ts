import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from '../../../src/config/load.js';
import type { EventTypeConfig } from '../../../src/config/schema.js';
import { compileEventTypes, type Sender } from '../../../src/events/event-types.js';

const NOW = Date.parse('2026-03-01T12:00:00.000Z');
const key: Sender = { keyName: 'support-desk', admin: false };

/** Declared types as sluice.yaml would hold them, parsed (defaults applied) by the config schema. */
function declare(types: Record<string, unknown>): Record<string, EventTypeConfig> {
  return parseConfig({ events: { types } }, {}).events.types;
}

function problemsOf(types: Record<string, unknown>): { path: string; message: string }[] {
  try {
    parseConfig({ events: { types } }, {});
  } catch (error) {
    if (error instanceof ConfigError) return error.problems.map(({ path, message }) => ({ path, message }));
    throw error;
  }
  return [];
}

function typesWith(types: Record<string, unknown>) {
  let n = 0;
  return compileEventTypes(declare(types), () => `gen-${++n}`);
}

const feedback = {
  requestId: 'required',
  fields: {
    score: { type: 'integer', required: true },
    rating: { type: 'enum', values: ['up', 'down'] },
    comment: { type: 'string' },
    userId: { type: 'string', from: 'user.id' },
    at: { type: 'timestamp' },
    helpful: { type: 'boolean' },
    weight: { type: 'number' },
  },
};

describe('admitting an event of a declared type', () => {
  it('keeps its declared fields, reads mapped ones from their path and attributes it to the key', () => {
    const types = typesWith({ feedback });
    const result = types.admit(
      {
        type: 'feedback',
        id: 'fb-1',
        time: '2026-03-01T13:30:00+02:00',
        requestId: 'req-42',
        score: 4,
        rating: 'up',
        comment: 'good answer',
        user: { id: 'u-7', name: 'Jane' },
        at: 1772366400000,
        helpful: false,
        weight: 0.5,
      },
      key,
      NOW,
    );
    expect(result).toEqual({
      event: {
        schemaVersion: 1,
        id: 'fb-1',
        type: 'feedback',
        time: '2026-03-01T11:30:00.000Z',
        receivedAt: '2026-03-01T12:00:00.000Z',
        requestId: 'req-42',
        keyName: 'support-desk',
        admin: false,
        fields: {
          score: 4,
          rating: 'up',
          comment: 'good answer',
          userId: 'u-7',
          at: '2026-03-01T12:00:00.000Z',
          helpful: false,
          weight: 0.5,
        },
      },
    });
  });

  it('generates an id and takes the arrival time when the sender gives neither; optional fields may be absent or null', () => {
    const types = typesWith({ feedback });
    const first = types.admit({ type: 'feedback', requestId: 'r', score: 1, comment: null }, key, NOW);
    const second = types.admit(
      { type: 'feedback', requestId: 'r', score: 2 },
      { keyName: null, admin: true },
      NOW,
    );
    expect(first).toMatchObject({
      event: { id: 'gen-1', time: '2026-03-01T12:00:00.000Z', fields: { score: 1 } },
    });
    expect(second).toMatchObject({
      event: { id: 'gen-2', keyName: null, admin: true, fields: { score: 2 } },
    });
  });

  it('refuses an unknown or missing type, naming the declared ones', () => {
    const types = typesWith({ feedback, outcome: {} });
    expect(types.admit({ type: 'feedbak' }, key, NOW)).toEqual({
      rejection: {
        code: 'unknown_type',
        path: 'type',
        message: 'unknown event type "feedbak": declared types are "feedback", "outcome"',
      },
    });
    expect(types.admit({ score: 1 }, key, NOW)).toMatchObject({
      rejection: { code: 'missing_type', path: 'type' },
    });
    expect(types.admit([1, 2], key, NOW)).toMatchObject({
      rejection: { code: 'invalid_event', message: 'an event is a JSON object with a "type", not an array' },
    });
    expect(typesWith({}).admit({ type: 'x' }, key, NOW)).toMatchObject({
      rejection: { message: 'unknown event type "x": no types are declared (events.types in sluice.yaml)' },
    });
  });

  it('refuses a field of the wrong type, saying what it must be and where it is', () => {
    const types = typesWith({ feedback });
    const admit = (fields: object) =>
      types.admit({ type: 'feedback', requestId: 'r', score: 1, ...fields }, key, NOW);
    expect(admit({ score: '4' })).toEqual({
      rejection: {
        code: 'invalid_field',
        path: 'score',
        message: '"score" must be an integer, not a string',
      },
    });
    expect(admit({ score: 4.5 })).toMatchObject({
      rejection: { message: '"score" must be an integer, not a decimal' },
    });
    expect(admit({ rating: 'meh' })).toMatchObject({
      rejection: { path: 'rating', message: '"rating" must be one of "up", "down", not "meh"' },
    });
    expect(admit({ user: { id: 7 } })).toMatchObject({
      rejection: { path: 'user.id', message: '"user.id" must be a string, not an integer' },
    });
    expect(admit({ helpful: 'yes' })).toMatchObject({
      rejection: { message: '"helpful" must be true or false, not a string' },
    });
    expect(admit({ at: '2026-03-01 12:00' })).toMatchObject({
      rejection: { path: 'at', code: 'invalid_field' },
    });
    expect(types.admit({ type: 'feedback', requestId: 'r' }, key, NOW)).toEqual({
      rejection: { code: 'missing_field', path: 'score', message: '"score" is required for type "feedback"' },
    });
  });

  it('refuses a bad id, time or request id', () => {
    const types = typesWith({ feedback, signup: { requestId: 'forbidden' } });
    const admit = (fields: object) =>
      types.admit({ type: 'feedback', requestId: 'r', score: 1, ...fields }, key, NOW);
    expect(admit({ id: '' })).toMatchObject({ rejection: { code: 'invalid_id', path: 'id' } });
    expect(admit({ id: 'has space' })).toMatchObject({ rejection: { code: 'invalid_id' } });
    expect(admit({ id: 'x'.repeat(129) })).toMatchObject({ rejection: { code: 'invalid_id' } });
    expect(admit({ time: 'yesterday' })).toMatchObject({ rejection: { code: 'invalid_time', path: 'time' } });
    expect(admit({ time: '2026-03-01T12:00:00' })).toMatchObject({ rejection: { code: 'invalid_time' } });
    expect(admit({ time: '2026-03-03T12:00:00Z' })).toMatchObject({
      rejection: { message: 'time must be after 1970 and at most a day ahead of now' },
    });
    expect(admit({ requestId: 42 })).toMatchObject({
      rejection: { code: 'invalid_request_id', path: 'requestId' },
    });
    expect(types.admit({ type: 'feedback', score: 1 }, key, NOW)).toMatchObject({
      rejection: { code: 'missing_request_id', path: 'requestId' },
    });
    expect(types.admit({ type: 'signup', requestId: 'r' }, key, NOW)).toMatchObject({
      rejection: { code: 'invalid_request_id', message: 'events of type "signup" do not take a requestId' },
    });
  });

  it('refuses fields nothing reads, unless the type drops them', () => {
    const strict = typesWith({ feedback });
    const lenient = typesWith({ feedback: { ...feedback, unknownFields: 'drop' } });
    const event = { type: 'feedback', requestId: 'r', score: 1, scroe: 2, user: { id: 'u', extra: true } };
    expect(strict.admit(event, key, NOW)).toEqual({
      rejection: {
        code: 'unknown_field',
        path: 'scroe',
        message:
          'unknown field "scroe" for type "feedback": it reads "score", "rating", "comment", "user.id", "at", "helpful", "weight"',
      },
    });
    expect(lenient.admit(event, key, NOW)).toMatchObject({ event: { fields: { score: 1, userId: 'u' } } });
  });
});

describe('derived fields', () => {
  const order = {
    fields: {
      first: { type: 'string' },
      last: { type: 'string' },
      email: { type: 'string' },
      amount: { type: 'number' },
      cents: { type: 'integer' },
      fullName: { type: 'string', derive: { concat: ['first', { literal: ' ' }, { upper: 'last' }] } },
      domain: { type: 'string', derive: { lower: 'email' } },
      amountEur: { type: 'number', derive: { round: { multiply: ['amount', 0.92] }, digits: 2 } },
      whole: { type: 'integer', derive: { round: 'amount' } },
      dollars: { type: 'number', derive: { divide: ['cents', 100] } },
      doubled: { type: 'integer', derive: { multiply: ['cents', 2] } },
      nameLength: { type: 'integer', derive: { length: 'first' } },
      seenAt: { type: 'timestamp', derive: { now: true } },
      tier: { type: 'enum', values: ['gold', 'silver'], derive: { lower: 'last' } },
    },
  };

  it('computes each operator from the validated fields', () => {
    const result = typesWith({ order }).admit(
      { type: 'order', first: 'Ada', last: 'Gold', email: 'Ada@Example.COM', amount: 10.555, cents: 1999 },
      key,
      NOW,
    );
    expect(result).toMatchObject({
      event: {
        fields: {
          fullName: 'Ada GOLD',
          domain: 'ada@example.com',
          amountEur: 9.71,
          whole: 11,
          dollars: 19.99,
          doubled: 3998,
          nameLength: 3,
          seenAt: '2026-03-01T12:00:00.000Z',
          tier: 'gold',
        },
      },
    });
  });

  it('leaves a derived field out when a field it reads is absent', () => {
    const result = typesWith({ order }).admit({ type: 'order', first: 'Ada' }, key, NOW);
    expect(result).toEqual({
      event: expect.objectContaining({
        fields: { first: 'Ada', nameLength: 3, seenAt: '2026-03-01T12:00:00.000Z' },
      }),
    });
  });

  it('refuses an event whose derived enum value is not allowed', () => {
    expect(typesWith({ order }).admit({ type: 'order', last: 'Bronze' }, key, NOW)).toMatchObject({
      rejection: { code: 'invalid_field', path: 'tier', message: expect.stringContaining('"bronze"') },
    });
  });
});

describe('redaction of custom events', () => {
  it('replaces listed fields whole and patterns inside every text field', () => {
    const types = typesWith({
      ticket: {
        fields: {
          email: { type: 'string' },
          body: { type: 'string' },
          phone: { type: 'string' },
          n: { type: 'integer' },
        },
        redact: { fields: ['phone', 'n'], patterns: ['email', 'credit-card'] },
      },
    });
    const result = types.admit(
      {
        type: 'ticket',
        email: 'jane@example.com',
        body: 'card 4111 1111 1111 1111 please',
        phone: '+1 555',
        n: 3,
      },
      key,
      NOW,
    );
    expect(result).toMatchObject({
      event: {
        fields: {
          email: '[REDACTED:email]',
          body: 'card [REDACTED:credit-card] please',
          phone: '[REDACTED]',
          n: '[REDACTED]',
        },
      },
    });
  });
});

describe('declaring event types in sluice.yaml', () => {
  it('says what is wrong with each declaration, where', () => {
    expect(
      problemsOf({
        feedback: {
          fields: {
            id: { type: 'string' },
            rating: { type: 'enum' },
            score: { type: 'integer', values: ['a'] },
            label: { type: 'string', derive: { lower: 'missing' } },
            half: { type: 'integer', derive: { divide: ['score', 2] } },
            shout: { type: 'string', derive: { upper: 'score' }, required: true, from: 'x' },
          },
          redact: { fields: ['nope'] },
        },
        ticket: {
          redact: { patterns: ['emails', { name: 'bad', regex: '(' }, { name: 'empty', regex: 'a*' }] },
        },
      }),
    ).toEqual(
      expect.arrayContaining([
        {
          path: 'events.types.feedback.fields.id',
          message: expect.stringContaining('"id" is the event\'s own'),
        },
        {
          path: 'events.types.feedback.fields.rating.values',
          message: 'an enum field needs its list of values',
        },
        { path: 'events.types.feedback.fields.score.values', message: 'values is only for enum fields' },
        {
          path: 'events.types.feedback.fields.label.derive',
          message: '"missing" is not a field it can read (a declared field that is not derived)',
        },
        {
          path: 'events.types.feedback.fields.half.derive',
          message: 'the expression yields a number, but the field is declared integer',
        },
        { path: 'events.types.feedback.fields.shout.derive', message: 'upper needs text, not an integer' },
        { path: 'events.types.feedback.fields.shout.from', message: expect.stringContaining('either read') },
        {
          path: 'events.types.feedback.fields.shout.required',
          message: expect.stringContaining('cannot be required'),
        },
        { path: 'events.types.feedback.redact.fields[0]', message: '"nope" is not a field of this type' },
        {
          path: 'events.types.ticket.redact.patterns[0]',
          message:
            'unknown pattern "emails": the built-in ones are api-key, bearer-token, email, credit-card, ip, phone',
        },
        {
          path: 'events.types.ticket.redact.patterns[1].regex',
          message: expect.stringContaining('not a valid regular'),
        },
        {
          path: 'events.types.ticket.redact.patterns[2].regex',
          message: expect.stringContaining('empty string'),
        },
      ]),
    );
  });

  it('accepts the documented example', () => {
    expect(problemsOf({ feedback })).toEqual([]);
  });
});
