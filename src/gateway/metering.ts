import type { EmbeddingRequest } from '../http/wire/openai-chat.js';
import { type PicoUsd, usageCost } from '../policy/cost.js';
import type { TokenCounter } from '../policy/token-count.js';
import {
  type ChatCompletion,
  type ChatCompletionChunk,
  type EmbeddingResponse,
  type TokenUsage,
  tokenUsage,
} from '../providers/canonical.js';
import type { Attempt, Call } from './call.js';
import type { Target } from './runtime.js';

/**
 * Records what one attempt was billed for and what that cost at its target's price. Every
 * attempt that used tokens is metered, so retries and hedges that lost still count; the one
 * whose answer reached the client (`answered`) also gives the call its usage.
 */
export function meterAttempt(
  call: Call,
  attempt: Attempt,
  target: Target,
  usage: TokenUsage,
  answered: boolean,
): void {
  attempt.usage = usage;
  attempt.cost = target.price ? usageCost(usage, target.price.price) : null;
  attempt.priceVersion = target.price?.version;
  if (target.price) call.priceVersion = target.price.version;
  if (answered) call.usage = usage;
}

/** The call's cost so far, in pico-dollars: the sum over its metered attempts; null when one has no price. */
export function callCost(call: Call): PicoUsd | null {
  let total = 0;
  for (const attempt of call.attempts) {
    if (attempt.cost === null) return null;
    if (attempt.cost !== undefined) total += attempt.cost;
  }
  return total;
}

/**
 * Watches one streaming attempt: the usage the provider reports (OpenAI's include_usage chunk,
 * Anthropic's message_start and message_delta, Gemini's usageMetadata, all decoded into a usage
 * chunk), and the text it streamed, from which usage is estimated if the stream ends without it.
 */
export interface StreamMeter {
  /** Returns the usage these chunks reported, if any. */
  see(chunks: readonly ChatCompletionChunk[]): TokenUsage | undefined;
  /**
   * The provider began its answer: its prompt was processed and is billed, even if the stream
   * is cut or cancelled now. An attempt cut before that is not estimated.
   */
  readonly started: boolean;
  /** Everything streamed so far, for the tokenizer. */
  text(): string;
}

export function streamMeter(): StreamMeter {
  const pieces: string[] = [];
  let started = false;
  return {
    see(chunks) {
      let reported: TokenUsage | undefined;
      for (const chunk of chunks) {
        started = true;
        if (chunk.usage) reported = tokenUsage(chunk.usage);
        for (const choice of chunk.choices) collect(pieces, choice.delta);
      }
      return reported;
    },
    get started() {
      return started;
    },
    text: () => pieces.join(''),
  };
}

/** A whole completion's text and tool calls, for the tokenizer when the provider reported no usage. */
export function completionText(completion: ChatCompletion): string {
  const pieces: string[] = [];
  for (const choice of completion.choices) collect(pieces, choice.message);
  return pieces.join('');
}

function collect(
  pieces: string[],
  message: {
    content?: string | null;
    refusal?: string | null;
    tool_calls?: ReadonlyArray<{ function?: { name?: string; arguments?: string } }>;
  },
): void {
  if (message.content) pieces.push(message.content);
  if (message.refusal) pieces.push(message.refusal);
  for (const call of message.tool_calls ?? []) {
    if (call.function?.name) pieces.push(call.function.name);
    if (call.function?.arguments) pieces.push(call.function.arguments);
  }
}

/**
 * An embeddings answer's usage: input only. No input is free, so a count of zero means the
 * provider did not say (Gemini's batch embeddings): then `count` counts it, marked estimated.
 */
export async function embeddingUsage(
  response: EmbeddingResponse,
  request: EmbeddingRequest,
  count: () => Promise<TokenCounter>,
): Promise<TokenUsage> {
  const reported = response.usage?.prompt_tokens ?? 0;
  const inputTokens = reported > 0 ? reported : (await count()).embeddingInput(request.input);
  return {
    inputTokens,
    outputTokens: 0,
    cachedInputTokens: 0,
    cacheWriteTokens: 0,
    reasoningTokens: 0,
    ...(reported === 0 && { estimated: true }),
  };
}
