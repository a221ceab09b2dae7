import type { SseEvent } from '../http/sse-parser.js';
import type { ChatCompletionRequest, EmbeddingRequest } from '../http/wire/openai-chat.js';
import type { ChatCompletion, ChatCompletionChunk, EmbeddingResponse } from './canonical.js';

/** An HTTP request to send upstream, built by an adapter. */
export interface UpstreamRequest {
  url: string;
  headers: Record<string, string>;
  body: string;
}

/** What an adapter needs to know about the target it is calling. */
export interface TargetRef {
  /** The provider's model id. */
  model: string;
  /** Fields the route sets on every call to this target (temperature, ...). */
  params?: Record<string, unknown>;
}

/** An upstream failure, classified so dispatch can decide to retry, fall back or give up. */
export interface UpstreamFailure {
  status: number;
  message: string;
  /** 429, 5xx, 529, timeouts and resets may succeed on another try. */
  retryable: boolean;
  /** From Retry-After / retry-after-ms, when the provider said. */
  retryAfterMs?: number;
  /** The provider told us it is out of capacity or quota (429, 529, 503): a congestion signal. */
  overloaded: boolean;
}

/** Turns one provider's SSE events into canonical chunks; one per stream, it keeps state. */
export interface StreamDecoder {
  decode(event: SseEvent): ChatCompletionChunk[];
  /** True once the provider said the stream is complete ([DONE], message_stop, ...). */
  readonly finished: boolean;
}

/**
 * One provider's wire format. Pure translation, no I/O: dispatch sends what `chatRequest`
 * builds and hands back what comes in, so each adapter is tested against fixtures alone.
 */
export interface ProviderAdapter {
  /** The wire format; an adapter whose wire is "openai" can stream to an OpenAI client byte for byte. */
  readonly wire: 'openai' | 'anthropic' | 'gemini';
  chatRequest(request: ChatCompletionRequest, target: TargetRef): UpstreamRequest;
  parseChat(body: unknown, target: TargetRef): ChatCompletion;
  streamDecoder(target: TargetRef): StreamDecoder;
  embeddingsRequest?(request: EmbeddingRequest, target: TargetRef): UpstreamRequest;
  parseEmbeddings?(body: unknown, target: TargetRef): EmbeddingResponse;
  /** Classifies an error response; `body` is its text (possibly empty or not JSON). */
  parseError(
    status: number,
    body: string,
    headers: Record<string, string | string[] | undefined>,
  ): UpstreamFailure;
}

/** Reads Retry-After (seconds or an HTTP date) and retry-after-ms. */
export function retryAfterMs(
  headers: Record<string, string | string[] | undefined>,
  now: number = Date.now(),
): number | undefined {
  const first = (name: string) => {
    const value = headers[name];
    return Array.isArray(value) ? value[0] : value;
  };
  const precise = first('retry-after-ms');
  if (precise !== undefined && Number.isFinite(Number(precise))) return Math.max(0, Number(precise));
  const value = first('retry-after');
  if (value === undefined || value === '') return undefined;
  if (/^\d+(\.\d+)?$/.test(value.trim())) return Math.max(0, Number(value) * 1000);
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/** The usual meaning of an HTTP status from a model provider. */
export function classifyStatus(status: number): Pick<UpstreamFailure, 'retryable' | 'overloaded'> {
  const overloaded = status === 429 || status === 529 || status === 503;
  const retryable = overloaded || status === 408 || status === 409 || status >= 500;
  return { retryable, overloaded };
}

/** The message inside a provider's error body, whichever shape it has. */
export function errorMessage(body: string, fallback: string): string {
  try {
    const parsed = JSON.parse(body) as { error?: { message?: unknown } | string; message?: unknown };
    if (typeof parsed.error === 'string') return parsed.error;
    if (parsed.error && typeof parsed.error.message === 'string') return parsed.error.message;
    if (typeof parsed.message === 'string') return parsed.message;
  } catch {
    // Not JSON: fall through to the raw text.
  }
  const text = body.trim().slice(0, 500);
  return text || fallback;
}

/** The provider says a quota is spent (x-ratelimit-remaining-* or anthropic-ratelimit-*-remaining at 0). */
export function quotaExhausted(headers: Record<string, string | string[] | undefined>): boolean {
  for (const name of [
    'x-ratelimit-remaining-requests',
    'x-ratelimit-remaining-tokens',
    'anthropic-ratelimit-requests-remaining',
    'anthropic-ratelimit-tokens-remaining',
  ]) {
    if (headers[name] === '0') return true;
  }
  return false;
}
