/** Numbers as an operator reads them: units always shown, precision that fits the size. */

const dash = '—';

function trim(value: number, digits: number): string {
  return value.toLocaleString('en-US', { maximumFractionDigits: digits });
}

export function formatMs(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return dash;
  if (ms >= 60_000) return `${trim(ms / 60_000, 1)} min`;
  if (ms >= 1_000) return `${trim(ms / 1_000, 2)} s`;
  return `${trim(ms, ms < 10 ? 1 : 0)} ms`;
}

/** A duration axis in one unit (ms below 2 s, else seconds): the unit for its label, numbers for its ticks. */
export function durationAxis(maxMs: number): { unit: string; tick: (ms: number) => string } {
  return maxMs >= 2_000
    ? { unit: 's', tick: (ms) => trim(ms / 1_000, 1) }
    : { unit: 'ms', tick: (ms) => trim(ms, 0) };
}

export function formatRate(perSecond: number | null | undefined, unit = '/s'): string {
  if (perSecond === null || perSecond === undefined || Number.isNaN(perSecond)) return dash;
  return `${formatCount(perSecond)}${unit}`;
}

export function formatCount(value: number | null | undefined): string {
  if (value === null || value === undefined || Number.isNaN(value)) return dash;
  const abs = Math.abs(value);
  if (abs >= 1e9) return `${trim(value / 1e9, 1)}B`;
  if (abs >= 1e6) return `${trim(value / 1e6, 1)}M`;
  if (abs >= 1e4) return `${trim(value / 1e3, 1)}k`;
  return trim(value, abs < 10 ? 2 : abs < 100 ? 1 : 0);
}

/** A fraction (0.05) as a percentage ("5%"). */
export function formatPercent(fraction: number | null | undefined): string {
  if (fraction === null || fraction === undefined || Number.isNaN(fraction)) return dash;
  const percent = fraction * 100;
  return `${trim(percent, percent !== 0 && Math.abs(percent) < 1 ? 2 : 1)}%`;
}

export function formatUsd(usd: number | null | undefined): string {
  if (usd === null || usd === undefined || Number.isNaN(usd)) return dash;
  if (usd === 0) return '$0';
  const abs = Math.abs(usd);
  if (abs < 0.00001) return '<$0.00001';
  const digits = abs >= 100 ? 0 : abs >= 1 ? 2 : abs >= 0.01 ? 3 : 5;
  return `$${usd.toLocaleString('en-US', { minimumFractionDigits: Math.min(digits, 2), maximumFractionDigits: digits })}`;
}

const two = (n: number) => String(n).padStart(2, '0');
const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** A time-axis label, as precise as the distance between ticks needs (24-hour clock). */
export function formatAxisTime(epochMs: number, tickStepMs: number): string {
  const d = new Date(epochMs);
  if (tickStepMs >= 86_400_000) return `${months[d.getMonth()]} ${d.getDate()}`;
  const time = `${two(d.getHours())}:${two(d.getMinutes())}`;
  if (tickStepMs < 60_000) return `${time}:${two(d.getSeconds())}`;
  // Ticks hours apart cross midnight: say which day the first tick of a day is.
  if (tickStepMs >= 3_600_000 && d.getHours() === 0 && d.getMinutes() === 0)
    return `${months[d.getMonth()]} ${d.getDate()}`;
  return time;
}

/** Time of day for today, date and time otherwise. */
export function formatWhen(epochMs: number | string): string {
  const date = new Date(epochMs);
  return date.toDateString() === new Date().toDateString() ? formatTime(epochMs) : formatDateTime(epochMs);
}

export function formatTime(epochMs: number | string): string {
  return new Date(epochMs).toLocaleTimeString('en-GB', { hour12: false });
}

export function formatDateTime(epochMs: number | string): string {
  const date = new Date(epochMs);
  return `${date.toLocaleDateString('en-CA')} ${date.toLocaleTimeString('en-GB', { hour12: false })}`;
}

export function orDash(value: string | number | null | undefined): string {
  return value === null || value === undefined || value === '' ? dash : String(value);
}
