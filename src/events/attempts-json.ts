import type { WideEvent } from './wide-event.js';

type Attempt = WideEvent['attempts'][number];

/**
 * The stored `attempts` column: the same JSON value as `JSON.stringify(attempts)`, keys in the
 * record stage's order, written for the attempt's fixed shape. Why: it runs for every stored
 * event, and on Node 20 `JSON.stringify` spent most of its 2 to 3 µs on the attempt's four or
 * five times (numbers such as 833.07, which the record stage rounds to hundredths: they are
 * written here from their integer hundredths). Half of that here. An attempt of another shape
 * (a field of another type) goes through `JSON.stringify`, the whole list; properties outside the
 * schema are not written.
 */
export function attemptsJson(attempts: readonly Attempt[]): string {
  let out = '[';
  for (let i = 0; i < attempts.length; i++) {
    const json = attemptJson(attempts[i]);
    if (json === undefined) return JSON.stringify(attempts);
    out += i === 0 ? json : `,${json}`;
  }
  return `${out}]`;
}

function attemptJson(a: Attempt | undefined): string | undefined {
  if (typeof a !== 'object' || a === null) return undefined;
  const { target, reason, outcome, status, startMs, durationMs, firstByteMs, queuedMs, error } = a;
  if (typeof target !== 'string' || typeof reason !== 'string' || typeof outcome !== 'string')
    return undefined;
  if (!isNumberOrNull(status) || typeof startMs !== 'number' || !isNumberOrNull(durationMs)) return undefined;
  if (!isNumberOrNull(firstByteMs) || !isNumberOrNull(queuedMs)) return undefined;
  if (error !== null && typeof error !== 'string') return undefined;
  let json =
    `{"target":${quote(target)},"reason":${quote(reason)},"outcome":${quote(outcome)},` +
    `"status":${numberOrNull(status)},"startMs":${jsonNumber(startMs)},"durationMs":${numberOrNull(durationMs)},` +
    `"firstByteMs":${numberOrNull(firstByteMs)},"queuedMs":${numberOrNull(queuedMs)},` +
    `"error":${error === null ? 'null' : quote(error)}`;
  const { costUsd, priceVersion, usageEstimated } = a;
  if (costUsd !== undefined) {
    if (!isNumberOrNull(costUsd)) return undefined;
    json += `,"costUsd":${numberOrNull(costUsd)}`;
  }
  if (priceVersion !== undefined) {
    if (typeof priceVersion !== 'string') return undefined;
    json += `,"priceVersion":${quote(priceVersion)}`;
  }
  if (usageEstimated !== undefined) {
    if (typeof usageEstimated !== 'boolean') return undefined;
    json += `,"usageEstimated":${usageEstimated}`;
  }
  return `${json}}`;
}

function isNumberOrNull(value: unknown): value is number | null {
  return value === null || typeof value === 'number';
}

function numberOrNull(value: number | null): string {
  return value === null ? 'null' : jsonNumber(value);
}

/** ".01" … ".99" without trailing zeros, "" for 0. */
const HUNDREDTHS = Array.from({ length: 100 }, (_, r) =>
  r === 0 ? '' : r % 10 === 0 ? `.${r / 10}` : `.${String(r).padStart(2, '0')}`,
);

/**
 * A number as `JSON.stringify` writes it. A value that is a whole number of hundredths (below
 * 10^13) is written from that integer: the decimal with at most two places is then the shortest
 * text that reads back as the same double, which is what JavaScript writes too. Any other value
 * goes through the engine's conversion; NaN and the infinities are null.
 */
export function jsonNumber(value: number): string {
  const hundredths = Math.round(value * 100);
  if (hundredths / 100 === value && hundredths < 1e15 && hundredths > -1e15) {
    const abs = hundredths < 0 ? -hundredths : hundredths;
    const whole = Math.floor(abs / 100);
    const text = `${whole}${HUNDREDTHS[abs - whole * 100]}`;
    return hundredths < 0 ? `-${text}` : text;
  }
  return Number.isFinite(value) ? `${value}` : 'null';
}

/** Longer strings go to the engine's escaper, which scans them natively. */
const LOOP_MAX = 64;

/**
 * A JSON string literal, as `JSON.stringify` writes it. Most strings need no escaping: a quote, a
 * backslash, a control character or a surrogate (lone ones are escaped) sends it to `JSON.stringify`.
 */
export function quote(text: string): string {
  if (text.length > LOOP_MAX) return JSON.stringify(text);
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x20 || code === 0x22 || code === 0x5c || (code >= 0xd800 && code <= 0xdfff))
      return JSON.stringify(text);
  }
  return `"${text}"`;
}
