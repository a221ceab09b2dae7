import type { SseEvent } from '../http/sse-parser.js';
import type { ChatCompletionRequest, EmbeddingRequest } from '../http/wire/openai-chat.js';
import type { ChatCompletion, ChatCompletionChunk, EmbeddingResponse } from './canonical.js';
import {
  classifyStatus,
  errorMessage,
  type ProviderAdapter,
  retryAfterMs,
  type StreamDecoder,
  type TargetRef,
  type UpstreamRequest,
} from './provider.js';

export interface OpenAIStyleOptions {
  /** The /v1 base address, without a trailing slash. */
  baseUrl: string;
  /** Request headers (authentication included). */
  headers: Record<string, string>;
  /** Azure names deployments in the path and the API version in the query. */
  path?: (operation: 'chat/completions' | 'embeddings', target: TargetRef) => string;
  /** Azure takes the model from the deployment, not the body. */
  sendModel?: boolean;
}

/**
 * The OpenAI wire format, spoken by OpenAI, Azure OpenAI, the simulator and every
 * OpenAI-compatible server (vLLM, Ollama, llama.cpp, Together, Groq, ...). The canonical
 * shape is this format, so translation is only the model name and route params.
 */
export function openAIStyleAdapter(options: OpenAIStyleOptions): ProviderAdapter {
  const base = options.baseUrl.replace(/\/+$/, '');
  const headers = { 'content-type': 'application/json', ...options.headers };
  const url = (operation: 'chat/completions' | 'embeddings', target: TargetRef) =>
    `${base}/${options.path ? options.path(operation, target) : operation}`;
  const sendModel = options.sendModel ?? true;

  return {
    wire: 'openai',
    chatRequest(request: ChatCompletionRequest, target: TargetRef): UpstreamRequest {
      const body: Record<string, unknown> = { ...request, ...target.params };
      if (sendModel) body.model = target.model;
      else delete body.model;
      // Usage is what cost is computed from: always ask for it in streams.
      if (body.stream) body.stream_options = { ...(request.stream_options ?? {}), include_usage: true };
      return { url: url('chat/completions', target), headers, body: JSON.stringify(body) };
    },
    parseChat(body: unknown): ChatCompletion {
      return body as ChatCompletion;
    },
    streamDecoder(): StreamDecoder {
      let finished = false;
      return {
        get finished() {
          return finished;
        },
        decode(event: SseEvent): ChatCompletionChunk[] {
          if (event.data === '[DONE]') {
            finished = true;
            return [];
          }
          if (event.event === 'error')
            throw new Error(errorMessage(event.data, 'the provider sent an error event'));
          return [JSON.parse(event.data) as ChatCompletionChunk];
        },
      };
    },
    embeddingsRequest(request: EmbeddingRequest, target: TargetRef): UpstreamRequest {
      const body: Record<string, unknown> = { ...request };
      if (sendModel) body.model = target.model;
      else delete body.model;
      return { url: url('embeddings', target), headers, body: JSON.stringify(body) };
    },
    parseEmbeddings(body: unknown): EmbeddingResponse {
      return body as EmbeddingResponse;
    },
    parseError(status, body, responseHeaders) {
      return {
        status,
        message: errorMessage(body, `HTTP ${status}`),
        retryAfterMs: retryAfterMs(responseHeaders),
        ...classifyStatus(status),
      };
    },
  };
}
