/** The ranges the console offers, as the analytics API's relative `from` (ending now). */
export const timeRanges = [
  { id: '5m', label: 'Last 5 minutes', seconds: 300 },
  { id: '15m', label: 'Last 15 minutes', seconds: 900 },
  { id: '1h', label: 'Last hour', seconds: 3_600 },
  { id: '6h', label: 'Last 6 hours', seconds: 21_600 },
  { id: '24h', label: 'Last 24 hours', seconds: 86_400 },
  { id: '7d', label: 'Last 7 days', seconds: 604_800 },
] as const;

export type TimeRange = (typeof timeRanges)[number];

export const defaultRange: TimeRange = timeRanges[1];

export function timeRange(id: string | null | undefined): TimeRange {
  return timeRanges.find((r) => r.id === id) ?? defaultRange;
}

/** `from`/`to` parameters for the analytics API. */
export function rangeParams(range: TimeRange): { from: string; to: string } {
  return { from: `-${range.id}`, to: 'now' };
}
