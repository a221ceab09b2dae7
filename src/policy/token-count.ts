import { encode } from 'gpt-tokenizer';
import { type ChatCompletionRequest, contentText, type EmbeddingRequest } from '../http/wire/openai-chat.js';
import type { TokenUsage } from '../providers/canonical.js';

// Client text may contain "<|endoftext|>" and friends: count them as plain text, never throw.
const asPlainText = { disallowedSpecial: new Set<string>() };

/**
 * Token counts made by Sluice itself, with the o200k_base encoding (GPT-4o family): exact for
 * OpenAI's current models, an estimate for others (Claude and Gemini tokenizers differ by some
 * tens of percent). Used where a provider reports nothing, and for reservations ahead of a call.
 */
export function countTokens(text: string): number {
  return text.length === 0 ? 0 : encode(text, asPlainText).length;
}

/**
 * A chat request's prompt tokens, counted as OpenAI frames them: 3 per message, 3 to prime the
 * reply, plus the tool definitions. Images, audio and files count nothing: this is a floor.
 */
export function promptTokens(request: Pick<ChatCompletionRequest, 'messages' | 'tools'>): number {
  let total = 3;
  for (const message of request.messages) {
    total += 3 + countTokens(contentText(message.content));
    if (message.role === 'assistant' && message.tool_calls) {
      for (const call of message.tool_calls)
        total += countTokens(call.function.name + call.function.arguments);
    }
  }
  if (request.tools && request.tools.length > 0) total += countTokens(JSON.stringify(request.tools));
  return total;
}

/** An embeddings request's input tokens: token-id inputs count as they are. */
export function embeddingInputTokens(input: EmbeddingRequest['input']): number {
  if (typeof input === 'string') return countTokens(input);
  let total = 0;
  for (const item of input) {
    if (typeof item === 'string') total += countTokens(item);
    else if (typeof item === 'number') total += 1;
    else total += item.length;
  }
  return total;
}

/** Usage Sluice counted because the provider reported none: marked `estimated`. */
export function estimatedUsage(inputTokens: number, outputText: string): TokenUsage {
  return {
    inputTokens,
    outputTokens: countTokens(outputText),
    cachedInputTokens: 0,
    cacheWriteTokens: 0,
    reasoningTokens: 0,
    estimated: true,
  };
}
