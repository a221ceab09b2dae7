import type { ChatCompletionRequest, EmbeddingRequest } from '../http/wire/openai-chat.js';
import { contentText } from '../http/wire/openai-chat.js';
import type { Plan } from './resolve.js';

/** Tokens a request may use, known before it is sent: budgets and rate limits reserve them. */
export interface TokenEstimate {
  input: number;
  /** The most the answer may have: max_tokens (or its default) times the number of choices. */
  output: number;
}

/*
 * Counting prompt tokens exactly would mean tokenizing every prompt on the hot path, with the
 * tokenizer of whichever model answers. Like OpenAI's own rate limiter, estimate from the
 * character count instead; settlement replaces the estimate with the provider's count.
 */
const charsPerToken = 4;
/** Role and framing tokens of each message, and of the reply's start. */
const perMessage = 4;
const replyPriming = 3;
/** An image, audio clip or file: a typical size, as its bytes say little about its tokens. */
const perMedia = 1000;
/** When neither the request nor the target sets max_tokens, the answer is assumed to stay below this. */
export const defaultMaxOutputTokens = 4096;

export function chatTokenEstimate(request: ChatCompletionRequest, plan: Plan): TokenEstimate {
  let chars = 0;
  let tokens = replyPriming;
  for (const message of request.messages) {
    tokens += perMessage;
    const content = (message as { content?: unknown }).content;
    chars += contentText(content).length;
    if (Array.isArray(content)) {
      for (const part of content) if ((part as { type?: unknown }).type !== 'text') tokens += perMedia;
    }
    const calls = (message as { tool_calls?: { function: { name: string; arguments: string } }[] })
      .tool_calls;
    for (const call of calls ?? []) chars += call.function.name.length + call.function.arguments.length;
  }
  if (request.tools) chars += JSON.stringify(request.tools).length;
  if (request.response_format) chars += JSON.stringify(request.response_format).length;
  const requested = request.max_completion_tokens ?? request.max_tokens ?? undefined;
  let output = 0;
  // A target's params override the client's max_tokens; the plan may try any of its targets.
  for (const target of plan.order) {
    const params = target.ref.params;
    const max = numberParam(params?.max_completion_tokens) ?? numberParam(params?.max_tokens) ?? requested;
    output = Math.max(output, max ?? defaultMaxOutputTokens);
  }
  if (plan.order.length === 0) output = requested ?? defaultMaxOutputTokens;
  return { input: tokens + Math.ceil(chars / charsPerToken), output: output * (request.n ?? 1) };
}

export function embeddingTokenEstimate(request: EmbeddingRequest): TokenEstimate {
  const { input } = request;
  if (typeof input === 'string') return { input: Math.ceil(input.length / charsPerToken), output: 0 };
  let tokens = 0;
  for (const item of input) {
    if (typeof item === 'string') tokens += Math.ceil(item.length / charsPerToken);
    else if (typeof item === 'number') tokens += 1;
    else tokens += item.length;
  }
  return { input: tokens, output: 0 };
}

function numberParam(value: unknown): number | undefined {
  return typeof value === 'number' && value > 0 ? value : undefined;
}
