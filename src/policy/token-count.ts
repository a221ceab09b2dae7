import type { ChatCompletionRequest, EmbeddingRequest } from '../http/wire/openai-chat.js';
import { contentText } from '../http/wire/openai-chat.js';
import type { TokenUsage } from '../providers/canonical.js';

/**
 * Token counts made by Sluice itself, with the o200k_base encoding (GPT-4o family): exact for
 * OpenAI's current models, an estimate for others (Claude and Gemini tokenizers differ by some
 * tens of percent). Used where a provider reports nothing, and for reservations ahead of a call.
 */
export interface TokenCounter {
  count(text: string): number;
  /**
   * A chat request's prompt tokens, framed as OpenAI frames them: 3 per message, 3 to prime the
   * reply, plus the tool definitions. Images, audio and files count nothing: this is a floor.
   */
  prompt(request: Pick<ChatCompletionRequest, 'messages' | 'tools'>): number;
  /** An embeddings request's input tokens: token-id inputs count as they are. */
  embeddingInput(input: EmbeddingRequest['input']): number;
  /** Usage Sluice counted because the provider reported none: marked `estimated`. */
  estimate(inputTokens: number, outputText: string): TokenUsage;
}

/** Counts one text: the tokenizer, or its byte length as a bound. */
type CountText = (text: string) => number;

/** A chat request's prompt tokens as OpenAI frames them, each text counted by `count`. */
function framedPrompt(request: Pick<ChatCompletionRequest, 'messages' | 'tools'>, count: CountText): number {
  let total = 3;
  for (const message of request.messages) {
    total += 3 + count(contentText(message.content));
    if (message.role === 'assistant' && message.tool_calls) {
      for (const call of message.tool_calls) total += count(call.function.name + call.function.arguments);
    }
  }
  if (request.tools && request.tools.length > 0) total += count(JSON.stringify(request.tools));
  return total;
}

/** An embeddings request's input tokens, each text counted by `count`; token-id inputs count as they are. */
function embeddingInputWith(input: EmbeddingRequest['input'], count: CountText): number {
  if (typeof input === 'string') return count(input);
  let total = 0;
  for (const item of input) {
    if (typeof item === 'string') total += count(item);
    else if (typeof item === 'number') total += 1;
    else total += item.length;
  }
  return total;
}

const utf8Bytes: CountText = (text) => Buffer.byteLength(text);

/**
 * At least `TokenCounter.prompt(request)`, without the tokenizer: every token of o200k_base (as of
 * any byte-level BPE) stands for at least one byte of UTF-8, so a text has at most as many tokens
 * as bytes. About four times the count for English text, at a tiny fraction of the cost of
 * encoding it (and without loading the tokenizer's tables). Framed as `prompt` frames it.
 */
export function promptTokenBound(request: Pick<ChatCompletionRequest, 'messages' | 'tools'>): number {
  return framedPrompt(request, utf8Bytes);
}

/** At least `TokenCounter.embeddingInput(input)`, without the tokenizer (see promptTokenBound). */
export function embeddingTokenBound(input: EmbeddingRequest['input']): number {
  return embeddingInputWith(input, utf8Bytes);
}

let loading: Promise<TokenCounter> | undefined;

/**
 * The counter, loaded on first use: the tokenizer's tables weigh some 80 MB, which a gateway
 * whose providers always report usage never needs to pay.
 */
export function tokenCounter(): Promise<TokenCounter> {
  loading ??= import('gpt-tokenizer').then(({ encode }) => counterWith(encode));
  return loading;
}

type Encode = (text: string, options: { disallowedSpecial: Set<string> }) => number[];

function counterWith(encode: Encode): TokenCounter {
  // Client text may contain "<|endoftext|>" and friends: count them as plain text, never throw.
  const asPlainText = { disallowedSpecial: new Set<string>() };
  const count = (text: string) => (text.length === 0 ? 0 : encode(text, asPlainText).length);
  return {
    count,
    prompt: (request) => framedPrompt(request, count),
    embeddingInput: (input) => embeddingInputWith(input, count),
    estimate(inputTokens, outputText) {
      return {
        inputTokens,
        outputTokens: count(outputText),
        cachedInputTokens: 0,
        cacheWriteTokens: 0,
        reasoningTokens: 0,
        estimated: true,
      };
    },
  };
}
