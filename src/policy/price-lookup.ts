import type { ModelPrice } from './model-price.js';
import { type CatalogFamily, type PriceCatalog, priceCatalog } from './price-catalog.js';

/** A target's price and where it came from: the catalog's version, or "config" for sluice.yaml. */
export interface TargetPrice {
  price: ModelPrice;
  version: string;
}

/**
 * The catalog families a provider type's models are looked up in. An OpenAI-compatible server
 * (vLLM, Ollama, a reseller) sets its own prices, so it has none: configure them. The simulator
 * answers to any model name, so it is priced as the model it stands for.
 */
const familiesOf: Record<string, readonly CatalogFamily[]> = {
  openai: ['openai'],
  'azure-openai': ['openai'],
  anthropic: ['anthropic'],
  gemini: ['gemini'],
  sim: ['sim', 'openai', 'anthropic', 'gemini'],
};

/**
 * A trailing version stamp: a date (gpt-4o-2024-08-06, claude-3-5-sonnet-20241022, Vertex's
 * @20241022), OpenAI's older month-day (gpt-3.5-turbo-0125), Gemini's revision (-002), or -latest.
 * Preview and experimental names are not stamps: they are often priced apart.
 */
const versionStamp = /(?:-\d{4}-\d{2}-\d{2}|-\d{8}|@\d{8}|-\d{3,4}|-latest)$/;

/**
 * The ids a model may be priced under, most specific first: the id itself (lowercased, without
 * Gemini's "models/" prefix), then with one version stamp after another removed.
 * "gpt-4o-mini-2024-07-18" → ["gpt-4o-mini-2024-07-18", "gpt-4o-mini"].
 */
export function modelCandidates(model: string): string[] {
  let id = model
    .trim()
    .toLowerCase()
    .replace(/^models\//, '');
  const candidates = [id];
  for (;;) {
    const shorter = id.replace(versionStamp, '');
    if (shorter === id || shorter === '') return candidates;
    candidates.push(shorter);
    id = shorter;
  }
}

/** The price of `model` in a table keyed by model id: the first candidate listed wins. */
export function lookupPrice(
  table: Readonly<Record<string, ModelPrice>>,
  model: string,
): ModelPrice | undefined {
  for (const candidate of modelCandidates(model)) {
    if (Object.hasOwn(table, candidate)) return table[candidate];
  }
  return undefined;
}

export interface TargetPriceQuery {
  /** The provider's name in sluice.yaml (a key of `providers`). */
  provider: string;
  /** Its `type`, which picks the catalog families. */
  providerType: string;
  model: string;
  /** The target's own `price:`. */
  price?: ModelPrice;
  /** sluice.yaml's `prices:`, keyed "provider/model". */
  overrides?: Readonly<Record<string, ModelPrice>>;
  catalog?: PriceCatalog;
}

/**
 * A target's price, most specific first: its own `price:`, then `prices:` under
 * "provider/model" (the model matched as in the catalog), then the catalog. Undefined: unknown.
 */
export function targetPrice(query: TargetPriceQuery): TargetPrice | undefined {
  if (query.price) return { price: query.price, version: 'config' };
  const prefix = `${query.provider.toLowerCase()}/`;
  const overrides: Record<string, ModelPrice> = {};
  for (const [key, price] of Object.entries(query.overrides ?? {})) {
    const lower = key.toLowerCase();
    if (lower.startsWith(prefix)) overrides[lower.slice(prefix.length)] = price;
  }
  const configured = lookupPrice(overrides, query.model);
  if (configured) return { price: configured, version: 'config' };
  const catalog = query.catalog ?? priceCatalog;
  for (const family of familiesOf[query.providerType] ?? []) {
    const price = lookupPrice(catalog.families[family], query.model);
    if (price) return { price, version: catalog.version };
  }
  return undefined;
}
