import { describe, expect, it } from 'vitest';
import { timeWindows } from '../../../src/events/time-windows.js';

describe('time windows of a batch', () => {
  it('is empty for no times', () => {
    expect(timeWindows([])).toEqual([]);
  });

  it('covers close times, in any order, with one window', () => {
    expect(timeWindows([5_000, 1_000, 3_000])).toEqual([{ fromMs: 1_000, toMs: 5_000 }]);
  });

  it('starts a new window after a gap, so a long request from minutes ago scans little', () => {
    const now = 10 * 60_000;
    expect(timeWindows([now, now + 20, 0, now + 10], 60_000)).toEqual([
      { fromMs: 0, toMs: 0 },
      { fromMs: now, toMs: now + 20 },
    ]);
  });

  it('merges the closest windows beyond the maximum, still covering every time', () => {
    const times = [0, 100, 300, 1_000, 1_100];
    const windows = timeWindows(times, 10, 2);
    expect(windows).toEqual([
      { fromMs: 0, toMs: 300 },
      { fromMs: 1_000, toMs: 1_100 },
    ]);
    for (const time of times) {
      expect(windows.some((w) => w.fromMs <= time && time <= w.toMs)).toBe(true);
    }
  });
});
