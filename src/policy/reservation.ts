import type { ChatCompletionRequest } from '../http/wire/openai-chat.js';
import { type PicoUsd, perToken, priceTier, toUsd } from './cost.js';
import type { ModelPrice } from './model-price.js';
import { tokenCounter } from './token-count.js';

/** The most a call may cost before it is sent, for budgets to hold back; settled with the real usage. */
export interface Reservation {
  promptTokens: number;
  /** The answer's ceiling: max tokens per choice times `n`. */
  maxOutputTokens: number;
  /** promptTokens + maxOutputTokens. */
  tokens: number;
  /** Worst-case cost in pico-dollars; null when the target's price is unknown. */
  picoUsd: PicoUsd | null;
  usd: number | null;
}

/**
 * The worst case for a prompt of at most `promptTokens` and an answer of at most `maxOutputTokens`:
 * every prompt token at the dearer of the input and cache-write rates, every output token at
 * the dearer of the output and reasoning rates.
 */
export function worstCase(
  price: ModelPrice | undefined,
  promptTokens: number,
  maxOutputTokens: number,
): Reservation {
  const tokens = promptTokens + maxOutputTokens;
  const picoUsd = worstCasePicoUsd(price, promptTokens, maxOutputTokens);
  return { promptTokens, maxOutputTokens, tokens, picoUsd, usd: picoUsd === null ? null : toUsd(picoUsd) };
}

/** `worstCase(…).picoUsd` alone, for admission, which needs no more of it. */
export function worstCasePicoUsd(
  price: ModelPrice | undefined,
  promptTokens: number,
  maxOutputTokens: number,
): PicoUsd | null {
  if (!price) return null;
  const tier = priceTier(price, promptTokens);
  let input = Math.max(tier.input, tier.cacheWrite ?? tier.input);
  let output = Math.max(tier.output, tier.reasoning ?? tier.output);
  if (tier !== price) {
    // `promptTokens` may be a bound on a prompt short enough for the base tier: the dearer rates count.
    input = Math.max(input, price.input, price.cacheWrite ?? price.input);
    output = Math.max(output, price.output, price.reasoning ?? price.output);
  }
  return promptTokens * perToken(input) + maxOutputTokens * perToken(output);
}

/** The answer's ceiling: the request's max_completion_tokens or max_tokens, else the default, per choice. */
export function maxOutputTokens(
  request: Pick<ChatCompletionRequest, 'max_tokens' | 'max_completion_tokens' | 'n'>,
  defaultMaxOutputTokens: number,
): number {
  const perChoice = request.max_completion_tokens ?? request.max_tokens ?? defaultMaxOutputTokens;
  return perChoice * (request.n ?? 1);
}

/**
 * The reservation for a chat request against a target priced `price`: its prompt counted with
 * the tokenizer (src/policy/token-count.ts, loaded on first use), its answer at its ceiling.
 */
export async function chatReservation(
  price: ModelPrice | undefined,
  request: Pick<ChatCompletionRequest, 'messages' | 'tools' | 'max_tokens' | 'max_completion_tokens' | 'n'>,
  options: { defaultMaxOutputTokens: number },
): Promise<Reservation> {
  const counter = await tokenCounter();
  return worstCase(price, counter.prompt(request), maxOutputTokens(request, options.defaultMaxOutputTokens));
}
