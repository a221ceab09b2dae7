import { describe, expect, it } from 'vitest';
import { modelPriceSchema } from '../../../src/policy/model-price.js';
import { priceCatalog } from '../../../src/policy/price-catalog.js';
import { modelCandidates, targetPrice } from '../../../src/policy/price-lookup.js';

const catalogPrice = (providerType: string, model: string) =>
  targetPrice({ provider: providerType, providerType, model })?.price;

describe('the price catalog', () => {
  it('is versioned by the date its prices were read', () => {
    expect(priceCatalog.version).toMatch(/^\d{4}-\d{2}-\d{2}$/);
  });

  it('holds only prices the config schema would accept', () => {
    for (const [family, models] of Object.entries(priceCatalog.families)) {
      for (const [model, price] of Object.entries(models)) {
        const parsed = modelPriceSchema.safeParse(price);
        expect(parsed.success, `${family}/${model}: ${parsed.error?.message}`).toBe(true);
        expect(model, 'catalog ids are lowercase').toBe(model.toLowerCase());
      }
    }
  });

  it('prices the simulator’s built-in models, so a setup without config shows cost', () => {
    for (const model of ['sim-fast', 'sim-smart', 'sim-reasoner', 'sim-embed'])
      expect(catalogPrice('sim', model), model).toBeDefined();
  });
});

describe('matching a model to its price', () => {
  it('tries the exact id first, then without one version stamp after another', () => {
    expect(modelCandidates('gpt-4o-mini-2024-07-18')).toEqual(['gpt-4o-mini-2024-07-18', 'gpt-4o-mini']);
    expect(modelCandidates('claude-3-5-sonnet-20241022')).toEqual([
      'claude-3-5-sonnet-20241022',
      'claude-3-5-sonnet',
    ]);
    expect(modelCandidates('models/gemini-1.5-pro-002')).toEqual(['gemini-1.5-pro-002', 'gemini-1.5-pro']);
    expect(modelCandidates('claude-3-5-haiku@20241022')).toEqual([
      'claude-3-5-haiku@20241022',
      'claude-3-5-haiku',
    ]);
    expect(modelCandidates('gpt-3.5-turbo-0125')).toEqual(['gpt-3.5-turbo-0125', 'gpt-3.5-turbo']);
    expect(modelCandidates('claude-3-7-sonnet-latest')).toEqual([
      'claude-3-7-sonnet-latest',
      'claude-3-7-sonnet',
    ]);
  });

  it('prices a dated snapshot as its model, unless the snapshot is listed with a price of its own', () => {
    expect(catalogPrice('openai', 'gpt-4o-2024-08-06')).toEqual(catalogPrice('openai', 'gpt-4o'));
    expect(catalogPrice('openai', 'gpt-4o-2024-05-13')).toMatchObject({ input: 5, output: 15 });
    expect(catalogPrice('openai', 'gpt-4o-mini-2024-07-18')).toMatchObject({ input: 0.15 });
    expect(catalogPrice('anthropic', 'claude-sonnet-4-20250514')).toMatchObject({
      input: 3,
      cacheWrite: 3.75,
    });
    expect(catalogPrice('anthropic', 'claude-opus-4-1-20250805')).toMatchObject({ input: 15, output: 75 });
    expect(catalogPrice('gemini', 'GEMINI-2.0-FLASH-001')).toMatchObject({ input: 0.1 });
  });

  it('does not guess: previews, fine-tunes and unknown models have no price', () => {
    expect(catalogPrice('gemini', 'gemini-2.5-flash-preview-04-17')).toBeUndefined();
    expect(catalogPrice('openai', 'ft:gpt-4o-mini-2024-07-18:acme::abc123')).toBeUndefined();
    expect(catalogPrice('openai', 'gpt-4o-mini-search-preview')).toBeUndefined();
    expect(catalogPrice('openai', 'gpt-99')).toBeUndefined();
  });

  it('looks a provider type up only in its own family; OpenAI-compatible servers set their own prices', () => {
    expect(catalogPrice('azure-openai', 'gpt-4.1')).toMatchObject({ input: 2, output: 8 });
    expect(catalogPrice('anthropic', 'gpt-4o')).toBeUndefined();
    expect(catalogPrice('openai-compatible', 'gpt-4o')).toBeUndefined();
    // The simulator answers to any name, so it is priced as the model it stands in for.
    expect(catalogPrice('sim', 'claude-3-5-haiku-20241022')).toMatchObject({ input: 0.8 });
  });

  it('says which catalog version priced it', () => {
    expect(targetPrice({ provider: 'openai', providerType: 'openai', model: 'gpt-4o' })?.version).toBe(
      priceCatalog.version,
    );
  });
});

describe('prices from sluice.yaml', () => {
  const overrides = {
    'openai/gpt-4o': { input: 2, output: 8 },
    'vllm/llama-3.1-70b': { input: 0.5, output: 0.5 },
    'vllm/meta-llama/Llama-3.1-8B-Instruct': { input: 0.05, output: 0.05 },
  };

  it('override the catalog by "provider/model", dated variants included', () => {
    expect(
      targetPrice({ provider: 'openai', providerType: 'openai', model: 'gpt-4o-2024-11-20', overrides }),
    ).toEqual({ price: { input: 2, output: 8 }, version: 'config' });
  });

  it('price models the catalog lacks', () => {
    expect(
      targetPrice({ provider: 'vllm', providerType: 'openai-compatible', model: 'llama-3.1-70b', overrides }),
    ).toEqual({ price: { input: 0.5, output: 0.5 }, version: 'config' });
    // Model ids may hold slashes (Hugging Face names): only the first one ends the provider.
    expect(
      targetPrice({
        provider: 'vllm',
        providerType: 'openai-compatible',
        model: 'meta-llama/Llama-3.1-8B-Instruct',
        overrides,
      })?.price,
    ).toEqual({ input: 0.05, output: 0.05 });
  });

  it('apply to the provider they name only', () => {
    expect(
      targetPrice({ provider: 'openai-eu', providerType: 'openai', model: 'gpt-4o', overrides })?.price,
    ).toMatchObject({ input: 2.5 });
  });

  it('give way to a target’s own price', () => {
    expect(
      targetPrice({
        provider: 'openai',
        providerType: 'openai',
        model: 'gpt-4o',
        overrides,
        price: { input: 1, output: 1 },
      }),
    ).toEqual({ price: { input: 1, output: 1 }, version: 'config' });
  });
});

describe('the price schema', () => {
  it('refuses what the exact arithmetic cannot hold', () => {
    expect(modelPriceSchema.safeParse({ input: 0.0000001, output: 1 }).success).toBe(false);
    expect(modelPriceSchema.safeParse({ input: -1, output: 1 }).success).toBe(false);
    expect(modelPriceSchema.safeParse({ input: 1, output: 5000 }).success).toBe(false);
    expect(modelPriceSchema.safeParse({ input: 1, output: 2, cachedInptu: 0.5 }).success).toBe(false);
    expect(modelPriceSchema.safeParse({ input: 0.000001, output: 0.01875 }).success).toBe(true);
  });
});
