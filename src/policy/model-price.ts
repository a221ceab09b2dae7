import { z } from 'zod';

/**
 * One model's list price, in USD per million tokens: the unit every provider publishes, so a
 * price can be copied from a pricing page as it stands. Declared once: the built-in catalog,
 * sluice.yaml's `prices:` and a target's `price:` all use it.
 */

// Cost math runs in integer pico-dollars (see cost.ts): a price with more than six decimals
// would not be a whole number of pico-dollars per token, and above $1000 a long prompt could
// pass 2^53 pico-dollars.
const usdPerMTok = z
  .number()
  .min(0)
  .max(1000)
  .refine((usd) => Math.abs(usd * 1e6 - Math.round(usd * 1e6)) < 1e-6, {
    message: 'at most 6 decimal places (USD per million tokens)',
  });

const tierPrices = {
  input: usdPerMTok.describe('Prompt tokens neither read from nor written to a cache.'),
  output: usdPerMTok.describe('Completion tokens, hidden reasoning included unless `reasoning` is set.'),
  cachedInput: usdPerMTok
    .optional()
    .describe('Prompt tokens read from the provider’s prompt cache; absent: priced as `input`.'),
  cacheWrite: usdPerMTok
    .optional()
    .describe('Prompt tokens written to the prompt cache (Anthropic); absent: priced as `input`.'),
  reasoning: usdPerMTok
    .optional()
    .describe('Hidden reasoning tokens, where priced apart from output; absent: priced as `output`.'),
};

export const modelPriceSchema = z.strictObject({
  ...tierPrices,
  longContext: z
    .strictObject({
      aboveInputTokens: z
        .int()
        .min(1)
        .describe('These prices apply to the whole request when its prompt has more tokens than this.'),
      ...tierPrices,
    })
    .optional()
    .describe(
      'The higher tier of models priced by prompt length (Gemini Pro, Claude Sonnet 4 long context).',
    ),
});

export type ModelPrice = z.infer<typeof modelPriceSchema>;

/** The prices of one tier: the base one, or the long-context one. */
export type TierPrice = Omit<ModelPrice, 'longContext'>;
