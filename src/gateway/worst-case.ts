import type { ChatCompletionRequest, EmbeddingRequest } from '../http/wire/openai-chat.js';
import { toUsd } from '../policy/cost.js';
import { worstCasePicoUsd } from '../policy/reservation.js';
import { embeddingTokenBound, promptTokenBound, tokenCounter } from '../policy/token-count.js';
import type { Plan } from './resolve.js';

/** Tokens a request may use, known before it is sent: budgets and rate limits reserve them. */
export interface TokenEstimate {
  input: number;
  /** The most the answer may have: its max tokens (or the default) times the number of choices. */
  output: number;
}

/**
 * A request's tokens as admission needs them: a bound at once, and the tokenizer's count only
 * when the bound is refused or leaves a limit close (src/gateway/limits.ts). Counting a prompt
 * costs about 25 µs per KB of text; the bound, a pass over its bytes.
 */
export interface TokenEstimator {
  /** Never below `exact()`, the output the same. */
  bound: TokenEstimate;
  exact(): Promise<TokenEstimate>;
}

/** An image, audio clip or file part: a typical size, as the tokenizer counts only text. */
const perMedia = 1000;
/** When neither the request nor the target sets max tokens, the answer is assumed to stay below this. */
export const defaultMaxOutputTokens = 4096;

/**
 * A chat request's worst case in tokens: its prompt (bounded by its bytes, or counted with the
 * tokenizer as OpenAI frames it), and the most output any target of the plan may produce. A
 * target's params override the client's max_tokens, and a fallback may be tried, so the largest
 * ceiling counts.
 */
export function chatTokens(request: ChatCompletionRequest, plan: Plan): TokenEstimator {
  const media = mediaParts(request);
  const output = outputCeiling(request, plan);
  return {
    bound: { input: promptTokenBound(request) + media * perMedia, output },
    exact: async () => ({ input: (await tokenCounter()).prompt(request) + media * perMedia, output }),
  };
}

/** The exact worst case of `chatTokens`: the prompt counted with the tokenizer. */
export function chatTokenEstimate(request: ChatCompletionRequest, plan: Plan): Promise<TokenEstimate> {
  return chatTokens(request, plan).exact();
}

export function embeddingTokens(request: EmbeddingRequest): TokenEstimator {
  return {
    bound: { input: embeddingTokenBound(request.input), output: 0 },
    exact: async () => ({ input: (await tokenCounter()).embeddingInput(request.input), output: 0 }),
  };
}

export function embeddingTokenEstimate(request: EmbeddingRequest): Promise<TokenEstimate> {
  return embeddingTokens(request).exact();
}

function mediaParts(request: ChatCompletionRequest): number {
  let media = 0;
  for (const message of request.messages) {
    const content = (message as { content?: unknown }).content;
    if (Array.isArray(content))
      for (const part of content) if ((part as { type?: unknown }).type !== 'text') media++;
  }
  return media;
}

function outputCeiling(request: ChatCompletionRequest, plan: Plan): number {
  const requested = request.max_completion_tokens ?? request.max_tokens ?? undefined;
  let output = plan.order.length === 0 ? (requested ?? defaultMaxOutputTokens) : 0;
  for (const target of plan.order) {
    const params = target.ref.params;
    const max = positive(params?.max_completion_tokens) ?? positive(params?.max_tokens) ?? requested;
    output = Math.max(output, max ?? defaultMaxOutputTokens);
  }
  return output * (request.n ?? 1);
}

/**
 * The most `tokens` may cost on any target the plan may try, at the dearest rates of each
 * (src/policy/reservation.ts); null when none of them has a price.
 */
export function worstCaseUsd(plan: Plan, tokens: TokenEstimate): number | null {
  let most: number | null = null;
  for (const target of plan.order) {
    const picoUsd = worstCasePicoUsd(target.price?.price, tokens.input, tokens.output);
    if (picoUsd !== null && (most === null || picoUsd > most)) most = picoUsd;
  }
  return most === null ? null : toUsd(most);
}

function positive(value: unknown): number | undefined {
  return typeof value === 'number' && value > 0 ? value : undefined;
}
