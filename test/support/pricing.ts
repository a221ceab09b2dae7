import type { Call } from '../../src/gateway/call.js';
import type { Pricing } from '../../src/gateway/pricing.js';

export interface FixedPrice {
  inputPerMTok: number;
  outputPerMTok: number;
}

/** What `usage` costs at `price`, the way a test computes it from a response. */
export function costOf(price: FixedPrice, usage: { inputTokens: number; outputTokens: number }): number {
  return (usage.inputTokens * price.inputPerMTok + usage.outputTokens * price.outputPerMTok) / 1e6;
}

/** One price for every target: USD budgets in tests, until a price catalog exists. */
export function fixedPricing(price: FixedPrice): Pricing {
  return {
    worstCaseUsd: (_plan, tokens) =>
      costOf(price, { inputTokens: tokens.input, outputTokens: tokens.output }),
    costUsd: (call: Call) => (call.usage ? costOf(price, call.usage) : null),
  };
}
