import { describe, expect, it } from 'vitest';
import { autoStep, parseDuration, parseTime } from '../../../src/analytics/time-range.js';

const NOW = Date.parse('2026-03-01T12:00:00.000Z');

describe('query times', () => {
  it('reads now, times relative to now, ISO times and epoch milliseconds', () => {
    expect(parseTime('now', NOW)).toBe(NOW);
    expect(parseTime('-1h', NOW)).toBe(NOW - 3_600_000);
    expect(parseTime('now-15m', NOW)).toBe(NOW - 900_000);
    expect(parseTime('-7d', NOW)).toBe(NOW - 7 * 86_400_000);
    expect(parseTime('2026-02-28T00:00:00Z', NOW)).toBe(Date.parse('2026-02-28T00:00:00Z'));
    expect(parseTime('2026-02-28', NOW)).toBe(Date.parse('2026-02-28'));
    expect(parseTime('1772366400000', NOW)).toBe(1_772_366_400_000);
  });

  it('refuses what is not one of those', () => {
    for (const text of ['yesterday', 'March 7', '-1y', '1h', '', 'now+1h', '2026-13-45']) {
      expect(parseTime(text, NOW)).toBeUndefined();
    }
  });

  it('reads steps as durations', () => {
    expect(parseDuration('10s')).toBe(10_000);
    expect(parseDuration('5m')).toBe(300_000);
    expect(parseDuration('1h')).toBe(3_600_000);
    expect(parseDuration('auto')).toBeUndefined();
    expect(parseDuration('-1m')).toBeUndefined();
  });

  it('picks a round step that keeps a chart under a few hundred points', () => {
    expect(autoStep(3_600_000)).toBe(10_000);
    expect(autoStep(6 * 3_600_000)).toBe(60_000);
    expect(autoStep(86_400_000)).toBe(300_000);
    expect(autoStep(7 * 86_400_000)).toBe(3_600_000);
    expect(autoStep(90 * 86_400_000)).toBe(6 * 3_600_000);
  });
});
