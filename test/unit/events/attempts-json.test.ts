import { describe, expect, it } from 'vitest';
import { attemptsJson, jsonNumber, quote } from '../../../src/events/attempts-json.js';
import type { WideEvent } from '../../../src/events/wide-event.js';
import { seededRandom } from '../../support/seeded-random.js';

type Attempt = WideEvent['attempts'][number];

const attempt = (overrides: Partial<Attempt> = {}): Attempt => ({
  target: 'openai/gpt-4o-mini',
  reason: 'first',
  outcome: 'ok',
  status: 200,
  startMs: 0.41,
  durationMs: 833.07,
  firstByteMs: null,
  queuedMs: 4.3,
  error: null,
  ...overrides,
});

describe('attemptsJson', () => {
  it('writes exactly what JSON.stringify writes for the record stage’s attempts', () => {
    const lists: Attempt[][] = [
      [],
      [attempt()],
      [
        attempt({ outcome: 'timeout', status: null, error: 'deadline exceeded', durationMs: 500 }),
        attempt({ reason: 'fallback', startMs: 501.5, costUsd: 0.0003096, priceVersion: '2026-11-01' }),
        attempt({
          reason: 'hedge',
          outcome: 'aborted',
          costUsd: null,
          usageEstimated: true,
          durationMs: null,
        }),
      ],
      [attempt({ error: 'upstream said "no" \\ twice\n', target: 'naïve/😀', startMs: -0, queuedMs: 0 })],
      [attempt({ error: `${'long '.repeat(30)}\ud800`, startMs: 0.1 + 0.2, durationMs: 1e21 })],
    ];
    for (const list of lists) expect(attemptsJson(list)).toBe(JSON.stringify(list));
  });

  it('gives an attempt of another shape to JSON.stringify, the whole list', () => {
    const odd = [attempt(), { ...attempt(), status: '200' }] as unknown as Attempt[];
    expect(attemptsJson(odd)).toBe(JSON.stringify(odd));
    const nan = [attempt({ durationMs: Number.NaN, startMs: Number.POSITIVE_INFINITY })];
    expect(attemptsJson(nan)).toBe(JSON.stringify(nan));
  });
});

describe('jsonNumber', () => {
  it('writes every number as JavaScript does: hundredths, other fractions, integers, tiny and huge', () => {
    const random = seededRandom(7);
    const values = [0, -0, 1, -1, 0.1, 0.29, 1.005, 100, 833.07, 2 ** 53, 1e13, 1e15, 1e21, 1e-7, 5e-324];
    for (let i = 0; i < 200_000; i++) {
      const scale = 10 ** Math.floor(random() * 14);
      const value = (random() - 0.3) * scale;
      values.push(value, Math.round(value * 100) / 100, Math.round(value));
    }
    for (const value of values) expect(jsonNumber(value), String(value)).toBe(JSON.stringify(value));
    expect(jsonNumber(Number.NaN)).toBe('null');
    expect(jsonNumber(Number.NEGATIVE_INFINITY)).toBe('null');
  });
});

describe('quote', () => {
  it('quotes as JSON.stringify does', () => {
    for (const text of ['', 'plain', 'a"b', 'a\\b', '\u0000\u001f', 'é', '😀', '\udc00', 'x'.repeat(100)])
      expect(quote(text)).toBe(JSON.stringify(text));
  });
});
