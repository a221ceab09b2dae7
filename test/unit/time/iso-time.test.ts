import { describe, expect, it } from 'vitest';
import { isoMs, isoTime } from '../../../src/time/iso-time.js';
import { seededRandom } from '../../support/seeded-random.js';

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

  it('matches toISOString for times all over 1970 to 9999 AD, leap days and century years included', () => {
    const random = seededRandom(12345);
    const times = [
      Date.parse('2000-02-29T23:59:59.999Z'),
      Date.parse('2100-02-28T23:59:59.999Z'),
      Date.parse('2100-03-01T00:00:00.000Z'),
      Date.parse('2400-02-29T12:00:00.000Z'),
      Date.parse('9999-12-31T23:59:59.999Z'),
      Date.parse('1970-01-01T00:00:00.000Z'),
    ];
    for (let i = 0; i < 20_000; i++) times.push(Math.floor(random() * 253_402_300_800_000));
    for (const ms of times) expect(isoTime(ms)).toBe(new Date(ms).toISOString());
  });
});

describe('isoMs: ISO text as Date.parse reads it', () => {
  it('reads the text toISOString writes, all over 1970 to 9999 AD', () => {
    const random = seededRandom(777);
    for (let i = 0; i < 20_000; i++) {
      const ms = Math.floor(random() * 253_402_300_800_000);
      expect(isoMs(new Date(ms).toISOString())).toBe(ms);
    }
  });

  it('gives what Date.parse gives for every other text, rolled-over dates and garbage included', () => {
    for (const text of [
      '2026-02-30T00:00:00.000Z', // Date.parse rolls it over to March 2
      '2026-02-29T00:00:00.000Z',
      '2024-02-29T00:00:00.000Z',
      '2026-04-31T10:00:00.000Z',
      '2026-01-01T24:00:00.000Z',
      '2026-01-01T23:60:00.000Z',
      '1969-12-31T23:59:59.999Z',
      '2026-13-01T00:00:00.000Z',
      '2026-11-30T10:04:05.006+01:00',
      '2026-11-30T10:04:05Z',
      '2026-11-30',
      '2026-11-30T10:04:05.0a6Z',
      '2026/11/30T10:04:05.006Z',
      '+012345-06-07T08:09:10.011Z',
      'not a time at all, 24 ch',
      '',
    ]) {
      expect(isoMs(text)).toEqual(Date.parse(text));
    }
  });
});
