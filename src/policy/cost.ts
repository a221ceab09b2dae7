import type { TokenUsage } from '../providers/canonical.js';
import type { ModelPrice, TierPrice } from './model-price.js';

/**
 * An amount of money in pico-dollars (1e-12 USD), always a whole number. Prices have at most six
 * decimals per million tokens, so every token costs a whole number of pico-dollars and sums are
 * exact; a Number holds them exactly up to 2^53 pico-dollars, about $9,007, far beyond one request.
 */
export type PicoUsd = number;

const picoPerUsd = 1e12;

/** $1 per million tokens is 1e-6 USD, 1e6 pico-dollars, per token. */
export function perToken(usdPerMTok: number): PicoUsd {
  return Math.round(usdPerMTok * 1e6);
}

/** The prices that apply to a request with this many prompt tokens. */
export function priceTier(price: ModelPrice, inputTokens: number): TierPrice {
  return price.longContext && inputTokens > price.longContext.aboveInputTokens ? price.longContext : price;
}

/**
 * What one upstream answer costs. Canonical usage counts cache reads and writes inside
 * `inputTokens` and reasoning inside `outputTokens` (src/providers/canonical.ts), so each token
 * is priced once: cache reads at the cached rate, cache writes at the write rate, the rest of
 * the prompt at the input rate; reasoning at its own rate where it has one, else as output.
 */
export function usageCost(usage: TokenUsage, price: ModelPrice): PicoUsd {
  const tier = priceTier(price, usage.inputTokens);
  const input = Math.max(0, usage.inputTokens);
  const cached = clamp(usage.cachedInputTokens, input);
  const written = clamp(usage.cacheWriteTokens, input - cached);
  const output = Math.max(0, usage.outputTokens);
  const reasoning = clamp(usage.reasoningTokens, output);
  return (
    (input - cached - written) * perToken(tier.input) +
    cached * perToken(tier.cachedInput ?? tier.input) +
    written * perToken(tier.cacheWrite ?? tier.input) +
    (output - reasoning) * perToken(tier.output) +
    reasoning * perToken(tier.reasoning ?? tier.output)
  );
}

/** Pico-dollars as USD: the nearest double, which prints as the exact decimal. */
export function toUsd(pico: PicoUsd): number {
  return pico / picoPerUsd;
}

/**
 * USD as a plain decimal, never in exponent notation (for headers): 0.000001234 → "0.000001234".
 * Twelve places hold every pico-dollar, and the double from `toUsd` rounds back to it exactly.
 * The text is `usd.toFixed(12)` without its trailing zeros (and point). A whole number of
 * pico-dollars below $4,096 (every request's cost) is written from that integer, which is exact:
 * its double lies within half an ulp (under 5e-13) of the pico-dollar, so toFixed(12) would
 * round to that very pico-dollar. Any other number takes toFixed itself.
 */
export function formatUsd(usd: number): string {
  const pico = Math.round(usd * picoPerUsd);
  if (pico / picoPerUsd !== usd || !(pico > -exactPico && pico < exactPico)) return formatUsdFixed(usd);
  // -0 and every fraction under half a pico-dollar print as "0" (toFixed drops the sign of -0).
  if (pico === 0) return '0';
  const negative = pico < 0;
  const abs = negative ? -pico : pico;
  // Integers below 2^53: % and the division of an exact multiple are exact.
  let fraction = abs % picoPerUsd;
  const whole = (abs - fraction) / picoPerUsd;
  const sign = negative ? '-' : '';
  if (fraction === 0) return `${sign}${whole}`;
  let places = 12;
  while (fraction % 10 === 0) {
    fraction /= 10;
    places--;
  }
  const digits = `${fraction}`;
  return `${sign}${whole}.${zeros[places - digits.length]}${digits}`;
}

/** Pico-dollars from which a dollar amount's double may be a pico-dollar or more off: $4,096. */
const exactPico = 4096 * picoPerUsd;
const zeros = [
  '',
  '0',
  '00',
  '000',
  '0000',
  '00000',
  '000000',
  '0000000',
  '00000000',
  '000000000',
  '0000000000',
  '00000000000',
];

/** formatUsd's definition, for the numbers its integer path does not cover. */
export function formatUsdFixed(usd: number): string {
  return usd.toFixed(12).replace(/0+$/, '').replace(/\.$/, '');
}

function clamp(tokens: number, max: number): number {
  return Math.min(Math.max(0, tokens), Math.max(0, max));
}
