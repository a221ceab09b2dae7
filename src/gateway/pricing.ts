import type { Call } from './call.js';
import type { Plan } from './resolve.js';
import type { TokenEstimate } from './token-estimate.js';

/**
 * Prices as budgets need them: the worst case before a request is sent, and the cost after.
 * The price catalog implements it; USD budgets see only what it can price.
 */
export interface Pricing {
  /** The most the request could cost on any target of its plan (fallbacks included); null: no price known. */
  worstCaseUsd(plan: Plan, tokens: TokenEstimate): number | null;
  /** What a finished call cost on the target that answered; null: no price known. */
  costUsd(call: Call): number | null;
}

/** No prices: USD budgets count no spend, and refuse only once priced spend has filled them. */
export const unpriced: Pricing = {
  worstCaseUsd: () => null,
  costUsd: () => null,
};
