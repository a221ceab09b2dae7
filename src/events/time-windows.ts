/** An inclusive range of epoch milliseconds. */
export interface TimeWindow {
  fromMs: number;
  toMs: number;
}

/**
 * The few time windows that cover a batch's event times, for looking up which of its ids are
 * already stored without scanning everything in between. An event's time is when its request
 * arrived, so a batch is mostly a narrow band plus a few long requests from minutes earlier (or
 * a replay from hours ago): times further apart than `gapMs` start a new window, and beyond
 * `maxWindows` the closest windows are merged.
 */
export function timeWindows(times: readonly number[], gapMs = 60_000, maxWindows = 8): TimeWindow[] {
  if (times.length === 0) return [];
  const sorted = Float64Array.from(times).sort();
  const windows: TimeWindow[] = [];
  let current: TimeWindow = { fromMs: sorted[0]!, toMs: sorted[0]! };
  for (let i = 1; i < sorted.length; i++) {
    const time = sorted[i]!;
    if (time - current.toMs > gapMs) {
      windows.push(current);
      current = { fromMs: time, toMs: time };
    } else {
      current.toMs = time;
    }
  }
  windows.push(current);
  while (windows.length > maxWindows) {
    let closest = 0;
    for (let i = 1; i < windows.length - 1; i++) {
      if (windows[i + 1]!.fromMs - windows[i]!.toMs < windows[closest + 1]!.fromMs - windows[closest]!.toMs) {
        closest = i;
      }
    }
    windows.splice(closest, 2, { fromMs: windows[closest]!.fromMs, toMs: windows[closest + 1]!.toMs });
  }
  return windows;
}
