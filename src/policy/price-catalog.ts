import type { ModelPrice } from './model-price.js';

/**
 * The built-in price catalog: public list prices (standard tier, no batch or regional
 * discounts) in USD per million tokens, as published on `version`. Change a price here only
 * with a new `version`: every priced call records the version that priced it, so old costs
 * stay explainable. sluice.yaml's `prices:` and a target's `price:` override it
 * (docs/keys-and-budgets.md).
 */
export interface PriceCatalog {
  version: string;
  /** Per model family; which ones a provider type consults is `catalogFamilies`. */
  families: Record<CatalogFamily, Record<string, ModelPrice>>;
}

export type CatalogFamily = 'openai' | 'anthropic' | 'gemini' | 'sim';

const claudeSonnet: ModelPrice = { input: 3, cacheWrite: 3.75, cachedInput: 0.3, output: 15 };
const claudeOpus: ModelPrice = { input: 15, cacheWrite: 18.75, cachedInput: 1.5, output: 75 };
const o1: ModelPrice = { input: 15, cachedInput: 7.5, output: 60 };
const oMini: ModelPrice = { input: 1.1, cachedInput: 0.55, output: 4.4 };

export const priceCatalog: PriceCatalog = {
  version: '2025-08-15',
  families: {
    openai: {
      'gpt-5': { input: 1.25, cachedInput: 0.125, output: 10 },
      'gpt-5-mini': { input: 0.25, cachedInput: 0.025, output: 2 },
      'gpt-5-nano': { input: 0.05, cachedInput: 0.005, output: 0.4 },
      'gpt-4.1': { input: 2, cachedInput: 0.5, output: 8 },
      'gpt-4.1-mini': { input: 0.4, cachedInput: 0.1, output: 1.6 },
      'gpt-4.1-nano': { input: 0.1, cachedInput: 0.025, output: 0.4 },
      'gpt-4o': { input: 2.5, cachedInput: 1.25, output: 10 },
      // The first gpt-4o snapshot kept its launch price.
      'gpt-4o-2024-05-13': { input: 5, output: 15 },
      'chatgpt-4o-latest': { input: 5, output: 15 },
      'gpt-4o-mini': { input: 0.15, cachedInput: 0.075, output: 0.6 },
      o1,
      'o1-preview': o1,
      'o1-mini': oMini,
      'o1-pro': { input: 150, output: 600 },
      o3: { input: 2, cachedInput: 0.5, output: 8 },
      'o3-pro': { input: 20, output: 80 },
      'o3-mini': oMini,
      'o4-mini': { input: 1.1, cachedInput: 0.275, output: 4.4 },
      'gpt-4-turbo': { input: 10, output: 30 },
      'gpt-4': { input: 30, output: 60 },
      'gpt-3.5-turbo': { input: 0.5, output: 1.5 },
      'text-embedding-3-small': { input: 0.02, output: 0 },
      'text-embedding-3-large': { input: 0.13, output: 0 },
      'text-embedding-ada-002': { input: 0.1, output: 0 },
    },
    anthropic: {
      'claude-opus-4-1': claudeOpus,
      'claude-opus-4': claudeOpus,
      'claude-opus-4-0': claudeOpus,
      'claude-sonnet-4': {
        ...claudeSonnet,
        // The 1M-token context beta: past 200k prompt tokens the whole request costs more.
        longContext: { aboveInputTokens: 200_000, input: 6, cacheWrite: 7.5, cachedInput: 0.6, output: 22.5 },
      },
      'claude-sonnet-4-0': {
        ...claudeSonnet,
        longContext: { aboveInputTokens: 200_000, input: 6, cacheWrite: 7.5, cachedInput: 0.6, output: 22.5 },
      },
      'claude-3-7-sonnet': claudeSonnet,
      'claude-3-5-sonnet': claudeSonnet,
      'claude-3-5-haiku': { input: 0.8, cacheWrite: 1, cachedInput: 0.08, output: 4 },
      'claude-3-haiku': { input: 0.25, cacheWrite: 0.3, cachedInput: 0.03, output: 1.25 },
      'claude-3-opus': claudeOpus,
    },
    gemini: {
      'gemini-2.5-pro': {
        input: 1.25,
        cachedInput: 0.31,
        output: 10,
        longContext: { aboveInputTokens: 200_000, input: 2.5, cachedInput: 0.625, output: 15 },
      },
      'gemini-2.5-flash': { input: 0.3, cachedInput: 0.075, output: 2.5 },
      'gemini-2.5-flash-lite': { input: 0.1, cachedInput: 0.025, output: 0.4 },
      'gemini-2.0-flash': { input: 0.1, cachedInput: 0.025, output: 0.4 },
      'gemini-2.0-flash-lite': { input: 0.075, output: 0.3 },
      'gemini-1.5-pro': {
        input: 1.25,
        cachedInput: 0.3125,
        output: 5,
        longContext: { aboveInputTokens: 128_000, input: 2.5, cachedInput: 0.625, output: 10 },
      },
      'gemini-1.5-flash': {
        input: 0.075,
        cachedInput: 0.01875,
        output: 0.3,
        longContext: { aboveInputTokens: 128_000, input: 0.15, cachedInput: 0.0375, output: 0.6 },
      },
      'gemini-1.5-flash-8b': {
        input: 0.0375,
        cachedInput: 0.01,
        output: 0.15,
        longContext: { aboveInputTokens: 128_000, input: 0.075, cachedInput: 0.02, output: 0.3 },
      },
      'gemini-embedding-001': { input: 0.15, output: 0 },
      // Free of charge on the Gemini API: a known price of zero, not an unknown one.
      'text-embedding-004': { input: 0, output: 0 },
    },
    // The simulator's built-in models (src/sim/config.ts), priced like the models they stand for,
    // so a setup without a config file shows real cost numbers.
    sim: {
      'sim-fast': { input: 0.15, cachedInput: 0.075, output: 0.6 },
      'sim-smart': { input: 2.5, cachedInput: 1.25, output: 10 },
      'sim-reasoner': { input: 1.1, cachedInput: 0.275, output: 4.4 },
      'sim-embed': { input: 0.02, output: 0 },
    },
  },
};
