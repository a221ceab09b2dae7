const UNIT_MS = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 } as const;

const DURATION = /^(\d+)(ms|s|m|h|d|w)$/;
const RELATIVE = /^(?:now)?-(\d+)(ms|s|m|h|d|w)$/;

export const MINUTE_MS = 60_000;
export const DAY_MS = 86_400_000;

/** "90s", "5m", "1h", "7d" → milliseconds; undefined when it is not a duration. */
export function parseDuration(text: string): number | undefined {
  const match = DURATION.exec(text.trim());
  if (!match) return undefined;
  return Number(match[1]) * UNIT_MS[match[2] as keyof typeof UNIT_MS];
}

/**
 * A point in time as a client writes it: `now`, relative to now (`-15m`, `now-1h`), ISO text
 * (`2026-03-01T12:00:00Z`) or epoch milliseconds. Undefined when unreadable.
 */
export function parseTime(text: string, nowMs: number): number | undefined {
  const trimmed = text.trim();
  if (trimmed === 'now') return nowMs;
  const relative = RELATIVE.exec(trimmed);
  if (relative) return nowMs - Number(relative[1]) * UNIT_MS[relative[2] as keyof typeof UNIT_MS];
  if (/^\d{10,16}$/.test(trimmed)) return Number(trimmed);
  // Date.parse reads far more than ISO ("March 7"); only ISO dates are part of the contract.
  if (!/^\d{4}-\d{2}-\d{2}/.test(trimmed)) return undefined;
  const ms = Date.parse(trimmed);
  return Number.isNaN(ms) ? undefined : ms;
}

export function isTimeText(text: string): boolean {
  return parseTime(text, 0) !== undefined;
}

/** Steps `auto` picks from: round numbers a chart axis reads well. */
const AUTO_STEPS = [
  10_000,
  60_000,
  5 * 60_000,
  15 * 60_000,
  3_600_000,
  6 * 3_600_000,
  DAY_MS,
  7 * DAY_MS,
] as const;

/** Points `auto` aims at or below: a chart a few hundred pixels wide. */
export const AUTO_POINTS = 360;

/** The smallest round step that keeps a range within AUTO_POINTS buckets. */
export function autoStep(rangeMs: number): number {
  for (const step of AUTO_STEPS) if (rangeMs / step <= AUTO_POINTS) return step;
  return AUTO_STEPS[AUTO_STEPS.length - 1] as number;
}

export function floorTo(ms: number, step: number): number {
  return Math.floor(ms / step) * step;
}

export function ceilTo(ms: number, step: number): number {
  return Math.ceil(ms / step) * step;
}

/** Epoch ms as ISO text; what every response carries. */
export function iso(ms: number): string {
  return new Date(ms).toISOString();
}
