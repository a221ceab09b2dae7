import { StringDecoder } from 'node:string_decoder';
import { backoffDelay } from '../flow/backoff.js';
import { Cancellation, type CancelSignal } from '../flow/cancel.js';
import { type Permit, ShedError } from '../flow/limiter.js';
import type { Priority } from '../flow/priority.js';
import type { RetryBudget } from '../flow/retry-budget.js';
import { type ApiError, apiError } from '../http/api-error.js';
import { type SseEvent, SseParser } from '../http/sse-parser.js';
import type { ChatCompletionRequest, EmbeddingRequest } from '../http/wire/openai-chat.js';
import { tokenCounter } from '../policy/token-count.js';
import {
  type ChatCompletion,
  type ChatCompletionChunk,
  type EmbeddingResponse,
  tokenUsage,
} from '../providers/canonical.js';
import { quotaExhausted, type UpstreamFailure, type UpstreamRequest } from '../providers/provider.js';
import type { Attempt, Call } from './call.js';
import type { FlowState } from './flow-state.js';
import { completionText, embeddingUsage, meterAttempt, type StreamMeter, streamMeter } from './metering.js';
import type { Plan } from './resolve.js';
import type { Target } from './runtime.js';

/** Where a stream goes once it is committed: the client's wire format writes it. */
export interface StreamSink {
  /** The first chunk is ready: send the status line and headers. After this there is no fallback. */
  start(target: Target): void;
  /** Chunks decoded from one upstream event; `sameWire` when the event is already in the client's format. */
  write(chunks: ChatCompletionChunk[], event: SseEvent, sameWire: boolean): void;
  /**
   * Sends the chunks of one upstream read together. A returned promise means the client is slow:
   * reading upstream pauses until it resolves.
   */
  flush(): Promise<void> | undefined;
  end(): void;
  /** The stream broke after it was committed. */
  fail(error: ApiError): void;
}

type Outcome<T> =
  /** `congested`: it worked, but the provider said its quota is spent (rate-limit headers at zero). */
  | { ok: true; value: T; congested?: boolean }
  /** `final`: no other attempt may follow (a stream already reached the client). */
  | { ok: false; failure: UpstreamFailure; timeout?: boolean; aborted?: boolean; final?: boolean };

/** Client errors a provider reports: the request itself is at fault, so no other target will do better. */
const clientFaults = new Set([400, 413, 422]);

const sleep = (ms: number, signal: CancelSignal) =>
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

/** Flow control for one call: the shared state, and this request's priority and deadline. */
export interface FlowContext {
  state: FlowState;
  priority: Priority;
  /** performance.now() time by which the request must have been admitted to a target. */
  deadlineAt: number;
}

type AttemptOnce<T> = (
  target: Target,
  attempt: Attempt,
  signal: CancelSignal,
  deadline: Deadline,
) => Promise<Outcome<T>>;

interface Last {
  target: Target;
  failure: UpstreamFailure;
  timeout?: boolean;
  shed?: ShedError;
}

type Result<T> = { ok: true; value: T; target: Target } | { ok: false; error: ApiError };

/**
 * The dispatch stage: tries the plan's targets in order, each with retries (exponential
 * backoff, full jitter, Retry-After honoured), under the route's connect, first-token and total
 * deadlines. With flow control, each attempt first passes the target's breaker and limiter
 * (queueing by priority and deadline), and every attempt after the first spends the route's
 * retry budget. `clientSignal` aborts everything when the client goes away.
 */
async function runAttempts<T>(
  call: Call,
  plan: Plan,
  clientSignal: CancelSignal,
  once: AttemptOnce<T>,
  flow: FlowContext | undefined,
  signalOf: (attempt: Attempt) => number,
): Promise<Result<T>> {
  const { retries } = plan.route;
  const budget = flow?.state.budget(plan.route);
  budget?.deposit();
  let last: Last | undefined;
  for (let index = 0; index < plan.order.length; index++) {
    const target = plan.order[index] as Target;
    for (let retry = 0; retry <= retries.attempts; retry++) {
      if (clientSignal.aborted) return { ok: false, error: clientGone() };
      const reason: Attempt['reason'] = retry > 0 ? 'retry' : index > 0 ? 'fallback' : 'first';
      // Moving on after a shed or an open breaker sends nothing extra upstream: it is free.
      if (budget && reason !== 'first' && !last?.shed && last?.failure.status !== circuitOpenStatus) {
        if (!budget.tryWithdraw()) return { ok: false, error: budgetExhausted(plan.route.name, last) };
      }
      if (retry > 0) {
        await sleep(backoffDelay(retry - 1, retries, last?.failure.retryAfterMs), clientSignal);
        if (clientSignal.aborted) return { ok: false, error: clientGone() };
      }
      const hedgeTo = index === 0 && retry === 0 ? hedgeTarget(plan, flow) : undefined;
      const tried = hedgeTo
        ? await hedged(call, plan, clientSignal, once, flow, signalOf, target, hedgeTo, budget)
        : await tryTarget(call, plan, clientSignal, once, flow, signalOf, target, reason);
      if ('result' in tried) return tried.result;
      last = tried.last;
      if (tried.stop) return { ok: false, error: tried.stop };
      if (tried.next) break;
      const after = last.failure.retryAfterMs;
      if (after !== undefined && after > retries.maxRetryAfterMs) break;
    }
  }
  return { ok: false, error: exhausted(last) };
}

const circuitOpenStatus = 503.1;

type Tried<T> =
  | { result: Result<T> }
  /** `next`: move on to the next target; `stop`: give up with this error. */
  | { last: Last; next?: boolean; stop?: ApiError };

/** One attempt against one target, through its breaker and limiter when flow control is on. */
async function tryTarget<T>(
  call: Call,
  plan: Plan,
  clientSignal: CancelSignal,
  once: AttemptOnce<T>,
  flow: FlowContext | undefined,
  signalOf: (attempt: Attempt) => number,
  target: Target,
  reason: Attempt['reason'],
  deadline: Deadline = new Deadline(clientSignal, plan.route.timeouts),
): Promise<Tried<T>> {
  const attempt: Attempt = {
    target: target.id,
    provider: target.provider.name,
    model: target.ref.model,
    startMs: performance.now() - call.startedAt,
    outcome: 'pending',
    reason,
  };
  call.attempts.push(attempt);
  const targetFlow = flow?.state.target(target);
  const breaker = targetFlow?.breaker;
  if (breaker && !breaker.allow()) {
    deadline.clear();
    attempt.outcome = 'skipped';
    attempt.error = `${target.id}: circuit open`;
    attempt.durationMs = 0;
    const failure = { status: circuitOpenStatus, message: attempt.error, retryable: false, overloaded: true };
    return { last: { target, failure }, next: true };
  }
  let permit: Permit | undefined;
  if (targetFlow && flow) {
    try {
      permit = await targetFlow.limiter.acquire({
        priority: flow.priority,
        deadlineAt: flow.deadlineAt,
        signal: deadline.signal,
      });
      attempt.queuedMs = permit.queuedMs;
    } catch (error) {
      deadline.clear();
      breaker?.release();
      attempt.durationMs = performance.now() - call.startedAt - attempt.startMs;
      if (!(error instanceof ShedError) || error.reason === 'cancelled' || clientSignal.aborted) {
        attempt.outcome = 'aborted';
        return { result: { ok: false, error: clientGone() } };
      }
      attempt.outcome = 'shed';
      attempt.error = error.message;
      attempt.status = 429;
      const failure = {
        status: 429,
        message: error.message,
        retryable: false,
        overloaded: true,
        retryAfterMs: error.retryAfterMs,
      };
      return { last: { target, failure, shed: error }, next: true };
    }
  }
  let outcome: Outcome<T>;
  try {
    outcome = await once(target, attempt, deadline.signal, deadline);
  } finally {
    deadline.clear();
  }
  attempt.durationMs = performance.now() - call.startedAt - attempt.startMs;
  if (outcome.ok) {
    attempt.outcome = 'ok';
    const signal = signalOf(attempt);
    if (outcome.congested) permit?.dropped();
    else permit?.success(signal);
    breaker?.record(true);
    if (targetFlow && flow) flow.state.recordSuccess(targetFlow, attempt.durationMs, signal);
    return { result: { ok: true, value: outcome.value, target } };
  }
  attempt.outcome = outcome.aborted ? 'aborted' : outcome.timeout ? 'timeout' : 'error';
  attempt.status ??= outcome.failure.status;
  attempt.error = outcome.failure.message;
  const clientFault = clientFaults.has(outcome.failure.status);
  // Congestion (timeouts, 429/529/503) lowers the limit; other failures say nothing about load.
  if (outcome.failure.overloaded || outcome.timeout) permit?.dropped();
  else permit?.ignore();
  if (outcome.aborted || clientFault) breaker?.release();
  else breaker?.record(false);
  if (outcome.aborted) return { result: { ok: false, error: clientGone() } };
  const last: Last = { target, failure: outcome.failure, timeout: outcome.timeout };
  if (outcome.final) return { last, stop: exhausted(last) };
  if (clientFault) return { last, stop: providerRejected(outcome.failure) };
  return { last, next: !outcome.failure.retryable };
}

/** The target a hedge goes to: the plan's next one, when the route opts in and a delay is known. */
function hedgeTarget(
  plan: Plan,
  flow: FlowContext | undefined,
): { target: Target; delayMs: number } | undefined {
  const hedge = plan.route.hedge;
  const target = plan.order[1];
  if (!hedge || !target || !plan.order[0]) return undefined;
  const first = flow?.state.target(plan.order[0] as Target);
  const delayMs = hedge.delayMs ?? (first && flow ? flow.state.p95(first) : undefined);
  return delayMs === undefined ? undefined : { target, delayMs };
}

/**
 * The first attempt, hedged: when it has not answered after the delay, a second attempt goes
 * to the next target (spending the retry budget); the first success wins and the other is
 * cancelled. Both attempts are recorded, so both costs are counted.
 */
async function hedged<T>(
  call: Call,
  plan: Plan,
  clientSignal: CancelSignal,
  once: AttemptOnce<T>,
  flow: FlowContext | undefined,
  signalOf: (attempt: Attempt) => number,
  target: Target,
  hedge: { target: Target; delayMs: number },
  budget: RetryBudget | undefined,
): Promise<Tried<T>> {
  const primaryDeadline = new Deadline(clientSignal, plan.route.timeouts);
  const primary = tryTarget(call, plan, clientSignal, once, flow, signalOf, target, 'first', primaryDeadline);
  let timer: NodeJS.Timeout | undefined;
  const delay = new Promise<'hedge'>((resolve) => {
    timer = setTimeout(() => resolve('hedge'), hedge.delayMs);
  });
  const early = await Promise.race([primary, delay]);
  clearTimeout(timer);
  if (early !== 'hedge') return early;
  if (clientSignal.aborted || (budget && !budget.tryWithdraw())) return primary;
  const secondDeadline = new Deadline(clientSignal, plan.route.timeouts);
  const second = tryTarget(
    call,
    plan,
    clientSignal,
    once,
    flow,
    signalOf,
    hedge.target,
    'hedge',
    secondDeadline,
  );
  const settled = [primary.then((t) => ({ t, from: 0 })), second.then((t) => ({ t, from: 1 }))] as const;
  const firstDone = await Promise.race(settled);
  const other = firstDone.from === 0 ? settled[1] : settled[0];
  if ('result' in firstDone.t && firstDone.t.result.ok) {
    (firstDone.from === 0 ? secondDeadline : primaryDeadline).abort('hedge');
    await other;
    return firstDone.t;
  }
  // The first to finish failed: the other may still succeed.
  return (await other).t;
}

/** The per-attempt deadlines as one abort signal; `reason` says which fired. */
class Deadline {
  private readonly controller = new Cancellation();
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly onClientAbort = () => this.abort('client');
  reason: 'client' | 'connect' | 'first-token' | 'total' | 'hedge' | undefined;

  constructor(
    private readonly client: CancelSignal,
    private readonly timeouts: Plan['route']['timeouts'],
  ) {
    client.addEventListener('abort', this.onClientAbort, { once: true });
    if (timeouts.totalMs > 0) this.timers.push(setTimeout(() => this.abort('total'), timeouts.totalMs));
  }

  get connectMs(): number {
    return this.timeouts.connectMs;
  }

  get signal(): CancelSignal {
    return this.controller;
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
    if (this.reason === 'client' || this.reason === 'hedge') {
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

async function send(target: Target, upstream: UpstreamRequest, signal: CancelSignal, deadline: Deadline) {
  const firstToken = deadline.armFirstToken();
  const response = await post(target, upstream, signal, deadline);
  return { response, firstToken };
}

/** POSTs through the provider's pool, to the endpoint it parsed once (undici's top-level `request` parses every time). */
function post(target: Target, upstream: UpstreamRequest, signal: CancelSignal, deadline: Deadline) {
  const { origin, path } = target.provider.endpoint(upstream.url);
  return target.provider.agent(deadline.connectMs).request({
    origin,
    path,
    method: 'POST',
    headers: upstream.headers,
    body: upstream.body,
    // undici takes any object with addEventListener as a signal (it checks for the method), and
    // only listens for 'abort' and reads `aborted`: a Cancellation is cheaper than an AbortSignal.
    signal: signal as AbortSignal,
  });
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
  clientSignal: CancelSignal,
  flow?: FlowContext,
): ReturnType<typeof runAttempts<ChatCompletion>> {
  return runAttempts<ChatCompletion>(
    call,
    plan,
    clientSignal,
    async (target, attempt, signal, deadline) => {
      const adapter = target.provider.adapter;
      const upstream = translate(target, () => adapter.chatRequest(request, target.ref));
      if (!('url' in upstream)) return { ok: false, failure: upstream };
      return sendWhole(call, target, upstream, attempt, signal, deadline, async (body) => {
        const completion = adapter.parseChat(body, target.ref);
        let usage = tokenUsage(completion.usage);
        if (!usage) {
          const counter = await tokenCounter();
          usage = counter.estimate(counter.prompt(request), completionText(completion));
        }
        meterAttempt(call, attempt, target, usage, true);
        return completion;
      });
    },
    flow,
    perOutputToken(call),
  );
}

/**
 * One request whose answer arrives whole (non-streaming chat, embeddings): only the total
 * deadline applies, since a provider sends nothing until the answer is complete.
 */
async function sendWhole<T>(
  call: Call,
  target: Target,
  upstream: UpstreamRequest,
  attempt: Attempt,
  signal: CancelSignal,
  deadline: Deadline,
  parse: (body: unknown) => Promise<T>,
): Promise<Outcome<T>> {
  try {
    const response = await post(target, upstream, signal, deadline);
    attempt.status = response.statusCode;
    attempt.firstByteMs = performance.now() - call.startedAt - attempt.startMs;
    if (response.statusCode >= 400) {
      return {
        ok: false,
        failure: await failureOf(target, response.statusCode, response.body, response.headers),
      };
    }
    const value = await parse(await response.body.json());
    return { ok: true, value, congested: quotaExhausted(response.headers) };
  } catch (error) {
    return { ok: false, ...deadline.failure(error, target) };
  }
}

/**
 * The latency signal limit algorithms learn from, for LLM calls: the attempt's time (less its
 * wait in Sluice's own queue) per output token. A raw total grows with the answer's length;
 * this grows with the provider's queueing and batch slowdown, which is what congestion is.
 */
function perOutputToken(call: Call): (attempt: Attempt) => number {
  return (attempt) =>
    ((attempt.durationMs ?? 0) - (attempt.queuedMs ?? 0)) / ((call.usage?.outputTokens ?? 0) + 1);
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

/** Dispatches a streaming chat call into `sink`; falls back only until the first chunk was committed. */
export async function dispatchChatStream(
  call: Call,
  plan: Plan,
  request: ChatCompletionRequest,
  clientSignal: CancelSignal,
  sink: StreamSink,
  flow?: FlowContext,
): Promise<{ ok: true } | { ok: false; error: ApiError; committed: boolean }> {
  // The attempt whose chunks reached the client; with a hedge, the other one then stands down.
  let owner: Attempt | undefined;
  const result = await runAttempts<true>(
    call,
    plan,
    clientSignal,
    async (target, attempt, signal, deadline) => {
      const adapter = target.provider.adapter;
      let firstToken: NodeJS.Timeout | undefined;
      let meter: StreamMeter | undefined;
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
        meter = streamMeter();
        const parser = new SseParser();
        const text = new StringDecoder('utf8');
        const sameWire = adapter.wire === 'openai';
        const handle = async (events: SseEvent[]) => {
          for (const event of events) {
            const chunks = decoder.decode(event);
            if (chunks.length === 0) continue;
            const usage = meter?.see(chunks);
            if (owner !== undefined && owner !== attempt) {
              deadline.abort('hedge');
              return;
            }
            if (owner === undefined) {
              owner = attempt;
              clearTimeout(firstToken);
              const now = performance.now() - call.startedAt;
              attempt.firstByteMs = now - attempt.startMs;
              call.firstTokenMs = now;
              sink.start(target);
            }
            // Metered before the write, so the usage chunk can carry the cost.
            if (usage) meterAttempt(call, attempt, target, usage, true);
            sink.write(chunks, event, sameWire);
          }
          if (owner === attempt) {
            const backpressure = sink.flush();
            if (backpressure) await backpressure;
          }
        };
        for await (const piece of response.body) await handle(parser.push(text.write(piece as Buffer)));
        await handle(parser.push(text.end()));
        await handle(parser.flush());
        if (owner !== undefined && owner !== attempt)
          return { ok: false, ...deadline.failure(lostHedge, target) };
        if (!decoder.finished) {
          const failure: UpstreamFailure = {
            status: 502,
            message: `${target.id} ended the stream before it was complete`,
            retryable: true,
            overloaded: false,
          };
          if (owner === attempt) return { ok: false, failure, final: true };
          return { ok: false, failure };
        }
        return { ok: true, value: true, congested: quotaExhausted(response.headers) };
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
        if (owner === attempt && !classified.aborted) return { ok: false, ...classified, final: true };
        return { ok: false, ...classified };
      } finally {
        // A stream that ended without usage (cut, cancelled, or a server that omits it) was
        // still billed for what it generated: estimate it with the tokenizer.
        if (meter?.started && attempt.usage === undefined) {
          const counter = await tokenCounter();
          const usage = counter.estimate(counter.prompt(request), meter.text());
          meterAttempt(call, attempt, target, usage, owner === attempt);
        }
      }
    },
    flow,
    perOutputToken(call),
  );
  if (result.ok) {
    sink.end();
    return { ok: true };
  }
  if (owner) sink.fail(result.error);
  return { ok: false, error: result.error, committed: owner !== undefined };
}

const lostHedge = new Error('another attempt answered first');

/** Dispatches an embeddings call. */
export function dispatchEmbeddings(
  call: Call,
  plan: Plan,
  request: EmbeddingRequest,
  clientSignal: CancelSignal,
  flow?: FlowContext,
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
      const { embeddingsRequest, parseEmbeddings } = adapter;
      const upstream = translate(target, () => embeddingsRequest.call(adapter, request, target.ref));
      if (!('url' in upstream)) return { ok: false, failure: upstream };
      return sendWhole(call, target, upstream, attempt, signal, deadline, async (body) => {
        const embeddings = parseEmbeddings.call(adapter, body, target.ref);
        meterAttempt(call, attempt, target, await embeddingUsage(embeddings, request, tokenCounter), true);
        return embeddings;
      });
    },
    flow,
    // Embeddings have no output: their whole time is the signal.
    (attempt) => (attempt.durationMs ?? 0) - (attempt.queuedMs ?? 0),
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

function budgetExhausted(route: string, last: Last | undefined): ApiError {
  const cause = last ? ` The last failure: ${last.failure.message}.` : '';
  return apiError(
    'server_error',
    last?.timeout ? 504 : 502,
    `The retry budget of route '${route}' is spent: a failing upstream gets no extra load.${cause}`,
    { code: 'retry_budget_exhausted' },
  );
}

/** The error code a client gets when every target shed its request, by the reason of the last shed. */
const shedCodes: Record<ShedError['reason'], string> = {
  queue_full: 'shed_queue_full',
  queue_delay: 'shed_queue_delay',
  deadline: 'shed_deadline',
  cancelled: 'client_closed_request',
};

function exhausted(last: Last | undefined): ApiError {
  if (!last)
    return apiError('server_error', 502, 'No target could be tried for this route.', { code: 'no_target' });
  const { failure } = last;
  if (last.shed) {
    const seconds = Math.max(1, Math.ceil(last.shed.retryAfterMs / 1000));
    return apiError('rate_limit', 429, last.shed.message, {
      code: shedCodes[last.shed.reason],
      headers: { 'retry-after': String(seconds) },
    });
  }
  if (failure.status === circuitOpenStatus) {
    return apiError(
      'overloaded',
      503,
      `Every target of this route is failing and its circuit is open (${failure.message}). Retry shortly.`,
      {
        code: 'circuit_open',
        headers: { 'retry-after': '1' },
      },
    );
  }
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
