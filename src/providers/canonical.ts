/**
 * The canonical response shapes: OpenAI Chat Completions (ARCHITECTURE.md, "Canonical types").
 * The canonical request is `ChatCompletionRequest` in src/http/wire/openai-chat.ts. Adapters
 * translate every provider to and from these, streaming included.
 */

export interface ToolCall {
  id: string;
  type: 'function';
  function: { name: string; arguments: string };
}

export type FinishReason = 'stop' | 'length' | 'tool_calls' | 'content_filter' | 'function_call';

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  prompt_tokens_details?: {
    cached_tokens?: number;
    /** Not OpenAI's: Anthropic's cache writes, which are priced apart. */
    cache_write_tokens?: number;
    audio_tokens?: number;
  };
  completion_tokens_details?: { reasoning_tokens?: number; audio_tokens?: number };
}

export interface ChatCompletion {
  id: string;
  object: 'chat.completion';
  created: number;
  model: string;
  choices: Array<{
    index: number;
    message: {
      role: 'assistant';
      content: string | null;
      tool_calls?: ToolCall[];
      refusal?: string | null;
      [extra: string]: unknown;
    };
    finish_reason: FinishReason | null;
    /** Not OpenAI's; vLLM's convention: the stop sequence that ended the text, so Anthropic clients get it. */
    stop_reason?: string | number | null;
    logprobs?: unknown;
  }>;
  usage?: Usage;
  system_fingerprint?: string | null;
  [extra: string]: unknown;
}

export interface ToolCallDelta {
  index: number;
  id?: string;
  type?: 'function';
  function?: { name?: string; arguments?: string };
}

export interface ChatCompletionChunk {
  id: string;
  object: 'chat.completion.chunk';
  created: number;
  model: string;
  choices: Array<{
    index: number;
    delta: {
      role?: 'assistant';
      content?: string | null;
      tool_calls?: ToolCallDelta[];
      refusal?: string | null;
      [extra: string]: unknown;
    };
    finish_reason: FinishReason | null;
    stop_reason?: string | number | null;
    logprobs?: unknown;
  }>;
  usage?: Usage | null;
  system_fingerprint?: string | null;
  [extra: string]: unknown;
}

export interface EmbeddingResponse {
  object: 'list';
  data: Array<{ object: 'embedding'; index: number; embedding: number[] | string }>;
  model: string;
  usage: { prompt_tokens: number; total_tokens: number };
}

/** Usage in Sluice's own terms, whatever the provider called it; what cost and budgets are computed from. */
export interface TokenUsage {
  /** All prompt tokens, cached and cache writes included. */
  inputTokens: number;
  outputTokens: number;
  cachedInputTokens: number;
  cacheWriteTokens: number;
  reasoningTokens: number;
  /**
   * Sluice counted these itself (tokenizer) because the provider reported no usage: a stream
   * cut short, a hedge cancelled mid-answer, a server that omits usage.
   */
  estimated?: boolean;
}

export function tokenUsage(usage: Usage | null | undefined): TokenUsage | undefined {
  if (!usage) return undefined;
  return {
    inputTokens: usage.prompt_tokens ?? 0,
    outputTokens: usage.completion_tokens ?? 0,
    cachedInputTokens: usage.prompt_tokens_details?.cached_tokens ?? 0,
    cacheWriteTokens: usage.prompt_tokens_details?.cache_write_tokens ?? 0,
    reasoningTokens: usage.completion_tokens_details?.reasoning_tokens ?? 0,
  };
}
