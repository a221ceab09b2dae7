import type { BudgetPeriod } from './limit-rules.js';

/** One period of a budget: which counter it is, and when it resets. */
export interface PeriodWindow {
  /** "2026-03-14" (day), "2026-03" (month) or "total". */
  id: string;
  /** Epoch ms the period began; null for total. */
  startsAt: number | null;
  /** Epoch ms the next period begins; null for total, which never resets. */
  resetsAt: number | null;
}

/** The period of `now` (epoch ms). Days and months begin at 00:00 UTC, whatever the server's zone. */
export function periodAt(period: BudgetPeriod, now: number): PeriodWindow {
  if (period === 'total') return { id: 'total', startsAt: null, resetsAt: null };
  const date = new Date(now);
  const year = date.getUTCFullYear();
  const month = date.getUTCMonth();
  if (period === 'month') {
    return {
      id: `${year}-${pad(month + 1)}`,
      startsAt: Date.UTC(year, month, 1),
      resetsAt: Date.UTC(year, month + 1, 1),
    };
  }
  const day = date.getUTCDate();
  return {
    id: `${year}-${pad(month + 1)}-${pad(day)}`,
    startsAt: Date.UTC(year, month, day),
    resetsAt: Date.UTC(year, month, day + 1),
  };
}

const pad = (n: number) => String(n).padStart(2, '0');
