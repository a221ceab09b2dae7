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
 */
export function formatUsd(usd: number): string {
  return usd.toFixed(12).replace(/0+$/, '').replace(/\.$/, '');
}

function clamp(tokens: number, max: number): number {
  return Math.min(Math.max(0, tokens), Math.max(0, max));
}
