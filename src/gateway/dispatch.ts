import { StringDecoder } from 'node:string_decoder';
import { request as undiciRequest } from 'undici';
import { backoffDelay } from '../flow/backoff.js';
import { type ApiError, apiError } from '../http/api-error.js';
import { type SseEvent, SseParser } from '../http/sse-parser.js';
import type { ChatCompletionRequest, EmbeddingRequest } from '../http/wire/openai-chat.js';
import {
  type ChatCompletion,
  type ChatCompletionChunk,
  type EmbeddingResponse,
  tokenUsage,
} from '../providers/canonical.js';
import type { UpstreamFailure, UpstreamRequest } from '../providers/provider.js';
import type { Attempt, Call } from './call.js';
import type { Plan } from './resolve.js';
import type { Target } from './runtime.js';

/** Where a stream goes once it is committed: the client's wire format writes it. */
export interface StreamSink {
  /** The first chunk is ready: send the status line and headers. After this there is no fallback. */
  start(target: Target): void;
  /**
   * Chunks decoded from one upstream event; `sameWire` when the event is already in the client's
   * format. A returned promise means the client is slow: reading upstream pauses until it resolves.
   */
  write(chunks: ChatCompletionChunk[], event: SseEvent, sameWire: boolean): Promise<void> | undefined;
  end(): void;
  /** The stream broke after it was committed. */
  fail(error: ApiError): void;
}

type Outcome<T> =
  | { ok: true; value: T }
  /** `final`: no other attempt may follow (a stream already reached the client). */
  | { ok: false; failure: UpstreamFailure; timeout?: boolean; aborted?: boolean; final?: boolean };

/** Client errors a provider reports: the request itself is at fault, so no other target will do better. */
const clientFaults = new Set([400, 413, 422]);

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    if (ms <= 0 || signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });

/**
 * The dispatch stage: tries the plan's targets in order, each with retries (exponential
 * backoff, full jitter, Retry-After honoured), under the route's connect, first-token and total
 * deadlines. `clientSignal` aborts everything when the client goes away.
 */
async function runAttempts<T>(
  call: Call,
  plan: Plan,
  clientSignal: AbortSignal,
  once: (target: Target, attempt: Attempt, signal: AbortSignal, deadline: Deadline) => Promise<Outcome<T>>,
): Promise<{ ok: true; value: T; target: Target } | { ok: false; error: ApiError }> {
  const { retries, timeouts } = plan.route;
  let last: { target: Target; failure: UpstreamFailure; timeout?: boolean } | undefined;
  for (let index = 0; index < plan.order.length; index++) {
    const target = plan.order[index] as Target;
    for (let retry = 0; retry <= retries.attempts; retry++) {
      if (clientSignal.aborted) return { ok: false, error: clientGone() };
      if (retry > 0) {
        const wait = backoffDelay(retry - 1, retries, last?.failure.retryAfterMs);
        await sleep(wait, clientSignal);
        if (clientSignal.aborted) return { ok: false, error: clientGone() };
      }
      const attempt: Attempt = {
        target: target.id,
        provider: target.provider.name,
        model: target.ref.model,
        startMs: performance.now() - call.startedAt,
        outcome: 'pending',
        reason: retry > 0 ? 'retry' : index > 0 ? 'fallback' : 'first',
      };
      call.attempts.push(attempt);
      const deadline = new Deadline(clientSignal, timeouts);
      let outcome: Outcome<T>;
      try {
        outcome = await once(target, attempt, deadline.signal, deadline);
      } finally {
        deadline.clear();
      }
      attempt.durationMs = performance.now() - call.startedAt - attempt.startMs;
      if (outcome.ok) {
        attempt.outcome = 'ok';
        return { ok: true, value: outcome.value, target };
      }
      attempt.outcome = outcome.aborted ? 'aborted' : outcome.timeout ? 'timeout' : 'error';
      attempt.status ??= outcome.failure.status;
      attempt.error = outcome.failure.message;
      if (outcome.aborted) return { ok: false, error: clientGone() };
      last = { target, failure: outcome.failure, timeout: outcome.timeout };
      if (outcome.final) return { ok: false, error: exhausted(last) };
      if (clientFaults.has(outcome.failure.status))
        return { ok: false, error: providerRejected(outcome.failure) };
      if (!outcome.failure.retryable) break;
      const after = outcome.failure.retryAfterMs;
      if (after !== undefined && after > retries.maxRetryAfterMs) break;
    }
  }
  return { ok: false, error: exhausted(last) };
}

/** The per-attempt deadlines as one abort signal; `reason` says which fired. */
class Deadline {
  private readonly controller = new AbortController();
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly onClientAbort = () => this.abort('client');
  reason: 'client' | 'connect' | 'first-token' | 'total' | undefined;

  constructor(
    private readonly client: AbortSignal,
    private readonly timeouts: Plan['route']['timeouts'],
  ) {
    client.addEventListener('abort', this.onClientAbort, { once: true });
    if (timeouts.totalMs > 0) this.timers.push(setTimeout(() => this.abort('total'), timeouts.totalMs));
  }

  get connectMs(): number {
    return this.timeouts.connectMs;
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /** Arms the first-token deadline (time to headers, or to the first stream event). */
  armFirstToken(): NodeJS.Timeout | undefined {
    if (this.timeouts.firstTokenMs <= 0) return undefined;
    const timer = setTimeout(() => this.abort('first-token'), this.timeouts.firstTokenMs);
    this.timers.push(timer);
    return timer;
  }

  abort(reason: NonNullable<Deadline['reason']>): void {
    if (this.reason) return;
    this.reason = reason;
    this.controller.abort();
  }

  clear(): void {
    for (const t of this.timers) clearTimeout(t);
    this.client.removeEventListener('abort', this.onClientAbort);
  }

  /** Classifies an error thrown while the deadline was armed. */
  failure(
    error: unknown,
    target: Target,
  ): { failure: UpstreamFailure; timeout?: boolean; aborted?: boolean } {
    if (this.reason === 'client') {
      return {
        aborted: true,
        failure: { status: 499, message: 'client closed the request', retryable: false, overloaded: false },
      };
    }
    if (this.reason === 'first-token' || this.reason === 'total') {
      const ms = this.reason === 'total' ? this.timeouts.totalMs : this.timeouts.firstTokenMs;
      return {
        timeout: true,
        failure: {
          status: 504,
          message: `${target.id} did not ${this.reason === 'total' ? 'finish' : 'answer'} within ${ms} ms (${this.reason} timeout)`,
          retryable: true,
          overloaded: false,
        },
      };
    }
    const code = (error as { code?: string }).code ?? '';
    const connectTimeout = code === 'UND_ERR_CONNECT_TIMEOUT';
    return {
      timeout: connectTimeout,
      failure: {
        status: connectTimeout ? 504 : 502,
        message: `${target.id}: ${connectTimeout ? `could not connect within ${this.timeouts.connectMs} ms` : describeNetworkError(error)}`,
        retryable: true,
        overloaded: false,
      },
    };
  }
}

function describeNetworkError(error: unknown): string {
  const e = error as { code?: string; message?: string; cause?: { code?: string; message?: string } };
  const code = e.cause?.code ?? e.code;
  const message = e.cause?.message ?? e.message ?? String(error);
  return code ? `${message} (${code})` : message;
}

async function send(target: Target, upstream: UpstreamRequest, signal: AbortSignal, deadline: Deadline) {
  const firstToken = deadline.armFirstToken();
  const response = await undiciRequest(upstream.url, {
    ...requestOptions(upstream),
    signal,
    dispatcher: target.provider.agent(deadline.connectMs),
  });
  return { response, firstToken };
}

async function failureOf(
  target: Target,
  status: number,
  body: { text(): Promise<string> },
  headers: Record<string, string | string[] | undefined>,
): Promise<UpstreamFailure> {
  const text = await body.text().catch(() => '');
  const failure = target.provider.adapter.parseError(status, text, headers);
  return { ...failure, message: `${target.id} answered ${status}: ${failure.message}` };
}

/** Dispatches a non-streaming chat call; resolves with the canonical completion. */
export function dispatchChat(
  call: Call,
  plan: Plan,
  request: ChatCompletionRequest,
  clientSignal: AbortSignal,
): ReturnType<typeof runAttempts<ChatCompletion>> {
  return runAttempts<ChatCompletion>(call, plan, clientSignal, async (target, attempt, signal, deadline) => {
    const adapter = target.provider.adapter;
    const upstream = translate(target, () => adapter.chatRequest(request, target.ref));
    if (!('url' in upstream)) return { ok: false, failure: upstream };
    try {
      // Non-streaming answers arrive whole at the end: only the total deadline applies.
      const response = await undiciRequest(upstream.url, {
        ...requestOptions(upstream),
        signal,
        dispatcher: target.provider.agent(plan.route.timeouts.connectMs),
      });
      attempt.status = response.statusCode;
      attempt.firstByteMs = performance.now() - call.startedAt - attempt.startMs;
      if (response.statusCode >= 400) {
        return {
          ok: false,
          failure: await failureOf(target, response.statusCode, response.body, response.headers),
        };
      }
      const completion = adapter.parseChat(await response.body.json(), target.ref);
      call.usage = tokenUsage(completion.usage);
      return { ok: true, value: completion };
    } catch (error) {
      return { ok: false, ...deadline.failure(error, target) };
    }
  });
}

/** An adapter that cannot express a request (e.g. an input type the provider lacks) fails it as the client's. */
function translate(target: Target, build: () => UpstreamRequest): UpstreamRequest | UpstreamFailure {
  try {
    return build();
  } catch (error) {
    return {
      status: 400,
      message: `${target.id} cannot take this request: ${(error as Error).message}`,
      retryable: false,
      overloaded: false,
    };
  }
}

function requestOptions(upstream: UpstreamRequest) {
  return { method: 'POST' as const, headers: upstream.headers, body: upstream.body };
}

/** Dispatches a streaming chat call into `sink`; falls back only until the first chunk was committed. */
export async function dispatchChatStream(
  call: Call,
  plan: Plan,
  request: ChatCompletionRequest,
  clientSignal: AbortSignal,
  sink: StreamSink,
): Promise<{ ok: true } | { ok: false; error: ApiError; committed: boolean }> {
  let committed = false;
  const result = await runAttempts<true>(
    call,
    plan,
    clientSignal,
    async (target, attempt, signal, deadline) => {
      const adapter = target.provider.adapter;
      let firstToken: NodeJS.Timeout | undefined;
      const upstream = translate(target, () => adapter.chatRequest(request, target.ref));
      if (!('url' in upstream)) return { ok: false, failure: upstream };
      try {
        const sent = await send(target, upstream, signal, deadline);
        firstToken = sent.firstToken;
        const { response } = sent;
        attempt.status = response.statusCode;
        if (response.statusCode >= 400) {
          return {
            ok: false,
            failure: await failureOf(target, response.statusCode, response.body, response.headers),
          };
        }
        const decoder = adapter.streamDecoder(target.ref);
        const parser = new SseParser();
        const text = new StringDecoder('utf8');
        const sameWire = adapter.wire === 'openai';
        const handle = async (events: SseEvent[]) => {
          for (const event of events) {
            const chunks = decoder.decode(event);
            if (chunks.length === 0) continue;
            if (!committed) {
              committed = true;
              clearTimeout(firstToken);
              const now = performance.now() - call.startedAt;
              attempt.firstByteMs = now - attempt.startMs;
              call.firstTokenMs = now;
              sink.start(target);
            }
            for (const chunk of chunks) if (chunk.usage) call.usage = tokenUsage(chunk.usage);
            const backpressure = sink.write(chunks, event, sameWire);
            if (backpressure) await backpressure;
          }
        };
        for await (const piece of response.body) await handle(parser.push(text.write(piece as Buffer)));
        await handle(parser.push(text.end()));
        await handle(parser.flush());
        if (!decoder.finished) {
          const failure: UpstreamFailure = {
            status: 502,
            message: `${target.id} ended the stream before it was complete`,
            retryable: true,
            overloaded: false,
          };
          if (committed) return { ok: false, failure, final: true };
          return { ok: false, failure };
        }
        return { ok: true, value: true };
      } catch (error) {
        const classified =
          error instanceof SyntaxError ||
          (error instanceof Error && !('code' in error) && deadline.reason === undefined)
            ? {
                failure: {
                  status: 502,
                  message: `${target.id} sent a malformed stream: ${error.message}`,
                  retryable: true,
                  overloaded: false,
                },
              }
            : deadline.failure(error, target);
        // Once bytes reached the client, another target would duplicate or garble the answer.
        if (committed && !classified.aborted) return { ok: false, ...classified, final: true };
        return { ok: false, ...classified };
      }
    },
  );
  if (result.ok) {
    sink.end();
    return { ok: true };
  }
  if (committed) sink.fail(result.error);
  return { ok: false, error: result.error, committed };
}

/** Dispatches an embeddings call. */
export function dispatchEmbeddings(
  call: Call,
  plan: Plan,
  request: EmbeddingRequest,
  clientSignal: AbortSignal,
): ReturnType<typeof runAttempts<EmbeddingResponse>> {
  return runAttempts<EmbeddingResponse>(
    call,
    plan,
    clientSignal,
    async (target, attempt, signal, deadline) => {
      const adapter = target.provider.adapter;
      if (!adapter.embeddingsRequest || !adapter.parseEmbeddings) {
        return {
          ok: false,
          failure: {
            status: 400,
            message: `${target.id} does not offer embeddings: route embeddings to an OpenAI-style or Gemini target`,
            retryable: false,
            overloaded: false,
          },
        };
      }
      const embeddingsRequest = adapter.embeddingsRequest.bind(adapter);
      const upstream = translate(target, () => embeddingsRequest(request, target.ref));
      if (!('url' in upstream)) return { ok: false, failure: upstream };
      try {
        const response = await undiciRequest(upstream.url, {
          ...requestOptions(upstream),
          signal,
          dispatcher: target.provider.agent(plan.route.timeouts.connectMs),
        });
        attempt.status = response.statusCode;
        if (response.statusCode >= 400) {
          return {
            ok: false,
            failure: await failureOf(target, response.statusCode, response.body, response.headers),
          };
        }
        const embeddings = adapter.parseEmbeddings(await response.body.json(), target.ref);
        call.usage = {
          inputTokens: embeddings.usage?.prompt_tokens ?? 0,
          outputTokens: 0,
          cachedInputTokens: 0,
          cacheWriteTokens: 0,
          reasoningTokens: 0,
        };
        return { ok: true, value: embeddings };
      } catch (error) {
        return { ok: false, ...deadline.failure(error, target) };
      }
    },
  );
}

function clientGone(): ApiError {
  return apiError('invalid_request', 499, 'The client closed the request.', {
    code: 'client_closed_request',
  });
}

function providerRejected(failure: UpstreamFailure): ApiError {
  return apiError(
    'invalid_request',
    failure.status,
    `The provider rejected the request: ${failure.message}`,
    {
      code: 'upstream_rejected_request',
    },
  );
}

function exhausted(
  last: { target: Target; failure: UpstreamFailure; timeout?: boolean } | undefined,
): ApiError {
  if (!last)
    return apiError('server_error', 502, 'No target could be tried for this route.', { code: 'no_target' });
  const { failure } = last;
  if (last.timeout) {
    return apiError(
      'timeout',
      504,
      `Upstream timeout: ${failure.message}. Last target tried: ${last.target.id}.`,
      {
        code: 'upstream_timeout',
      },
    );
  }
  if (failure.status === 429 || failure.overloaded) {
    const seconds = Math.max(1, Math.ceil((failure.retryAfterMs ?? 1000) / 1000));
    return apiError(
      'rate_limit',
      failure.status === 429 ? 429 : 503,
      `Every target is overloaded or rate limited; last target tried: ${last.target.id} (${failure.message}). Retry after ${seconds}s.`,
      { code: 'upstream_overloaded', headers: { 'retry-after': String(seconds) } },
    );
  }
  return apiError(
    'server_error',
    502,
    `Upstream error: ${failure.message}. Last target tried: ${last.target.id}.`,
    {
      code: 'upstream_error',
    },
  );
}
