import { describe, expect, it } from 'vitest';
import { isoTime } from '../../../src/time/iso-time.js';

describe('isoTime: the event time as toISOString writes it', () => {
  it('matches toISOString within a minute, across minutes, hours and years, and for fractional times', () => {
    const starts = [
      Date.parse('2026-11-30T10:04:59.998Z'),
      Date.parse('2026-12-31T23:59:59.000Z'),
      Date.parse('1999-01-01T00:00:00.000Z'),
      0,
    ];
    for (const start of starts) {
      for (const step of [0, 1, 7, 99, 100, 999, 1000, 1001, 59_999, 60_000, 61_234, 3_600_000]) {
        for (const fraction of [0, 0.25, 0.999]) {
          const ms = start + step + fraction;
          expect(isoTime(ms)).toBe(new Date(ms).toISOString());
        }
      }
    }
  });

  it('formats times before 1970 and far in the future like toISOString', () => {
    for (const ms of [
      -1,
      -60_001.5,
      Date.parse('+012345-06-07T08:09:10.011Z'),
      Date.parse('2026-11-30T10:04:05.006Z'),
    ]) {
      expect(isoTime(ms)).toBe(new Date(ms).toISOString());
    }
  });
});
