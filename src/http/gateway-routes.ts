import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { replayChunks } from '../cache/replay.js';
import type { CacheLookup } from '../cache/response-cache.js';
import { StreamRecorder } from '../cache/stream-recorder.js';
import { Cancellation } from '../flow/cancel.js';
import { type Priority, parsePriority, priorities } from '../flow/priority.js';
import { lookupCache } from '../gateway/cache-stage.js';
import type { Call, Principal } from '../gateway/call.js';
import {
  dispatchChat,
  dispatchChatStream,
  dispatchEmbeddings,
  type FlowContext,
  type StreamSink,
} from '../gateway/dispatch.js';
import type { Gateway } from '../gateway/gateway.js';
import { callCost } from '../gateway/metering.js';
import { type Plan, resolvePlan } from '../gateway/resolve.js';
import type { Route, Target } from '../gateway/runtime.js';
import { chatTokens, embeddingTokens, type TokenEstimator } from '../gateway/worst-case.js';
import { formatUsd, toUsd } from '../policy/cost.js';
import { type EmbeddingResponse, tokenUsage } from '../providers/canonical.js';
import { anthropicToCanonical, canonicalToAnthropic } from './anthropic-translate.js';
import { type ApiError, anthropicErrorBody, apiError, isApiError, openAIErrorBody } from './api-error.js';
import { callLabels } from './call-labels.js';
import { ClientStream } from './client-stream.js';
import { addRateLimitHeaders } from './rate-limit-headers.js';
import { messagesRequestSchema } from './wire/anthropic-messages.js';
import { parseRequest } from './wire/invalid-request.js';
import {
  type ChatCompletionRequest,
  chatCompletionRequestSchema,
  embeddingRequestSchema,
} from './wire/openai-chat.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by the authentication hook on /v1 routes. */
    principal?: Principal;
  }
}

function sluiceHeaders(call: Call, target?: Target): Record<string, string> {
  const headers: Record<string, string> = { 'x-sluice-request-id': call.id };
  if (call.route) headers['x-sluice-route'] = call.route;
  if (target) headers['x-sluice-target'] = target.id;
  if (call.attempts.length > 0) headers['x-sluice-attempts'] = String(call.attempts.length);
  // Known once the call is settled; absent when a price is unknown (docs/keys-and-budgets.md).
  if (typeof call.costUsd === 'number') headers['x-sluice-cost-usd'] = formatUsd(call.costUsd);
  if (call.cacheStatus) headers['x-sluice-cache'] = cacheHeader[call.cacheStatus];
  // The rate limits' state as admission left it (or its correction): x-ratelimit-*.
  const grant = call.admission?.grant;
  if (grant) addRateLimitHeaders(headers, grant.quotas);
  return headers;
}

const cacheHeader = { hit: 'hit', semantic_hit: 'semantic-hit', miss: 'miss' } as const;

/** A stream's cost so far: its headers left before usage was known, so it rides in the usage. */
function streamedCost(call: Call): number | null {
  const cost = callCost(call);
  return cost === null ? null : toUsd(cost);
}

/** Aborts when the client goes away before its answer is complete. */
function clientSignal(reply: FastifyReply, call: Call): Cancellation {
  const client = new Cancellation();
  reply.raw.once('close', () => {
    if (!reply.raw.writableFinished) {
      call.clientAborted = true;
      client.abort();
    }
  });
  return client;
}

export function registerGatewayRoutes(app: FastifyInstance, gateway: Gateway): void {
  /** The begin stage and, when bodies are recorded, the request body as the client sent it. */
  const begin = (request: FastifyRequest, wire: Call['wire'], operation: Call['operation']): Call => {
    const call = gateway.begin(wire, operation, request.principal ?? { keyName: null }, request.id);
    const bodies = gateway.runtime.bodies;
    if (bodies) call.requestBody = bodies.capture(request.body);
    return call;
  };

  /** Records the answer's body (when bodies are recorded) and finishes the call. */
  const finish = (call: Call, status: number, body: unknown) => {
    const bodies = gateway.runtime.bodies;
    if (bodies) call.responseBody = bodies.capture(body);
    gateway.finish(call, status);
  };

  const fail = (reply: FastifyReply, call: Call, error: ApiError, wire: Call['wire']) => {
    call.error = error;
    const body = wire === 'anthropic' ? anthropicErrorBody(error) : openAIErrorBody(error);
    finish(call, error.status, body);
    if (reply.sent || reply.raw.destroyed) return reply;
    return reply
      .code(error.status)
      .headers({ ...sluiceHeaders(call), ...error.headers })
      .send(body);
  };

  /**
   * A cached answer costs nothing upstream: no attempt, and its usage is reported as the stored
   * answer's, marked by the call's cache status. Whole, or replayed as a stream when asked.
   */
  const answerFromCache = (reply: FastifyReply, call: Call, cached: CacheHit, includeUsage: boolean) => {
    const { answer } = cached;
    call.usage = tokenUsage(answer.completion.usage);
    const headers = () => ({
      ...sluiceHeaders(call),
      age: String(Math.max(0, Math.floor((gateway.now() - answer.storedAt) / 1000))),
      ...(cached.status === 'semantic_hit' && { 'x-sluice-cache-similarity': cached.similarity.toFixed(4) }),
    });
    if (!call.stream) {
      const body =
        call.wire === 'anthropic'
          ? canonicalToAnthropic(answer.completion, call.requestedModel)
          : answer.completion;
      finish(call, 200, body);
      return reply.headers(headers()).send(body);
    }
    reply.hijack();
    const stream = new ClientStream(reply.raw, {
      wire: call.wire,
      includeUsage,
      requestedModel: call.requestedModel,
      callId: call.id,
      cost: () => streamedCost(call),
    });
    stream.open(headers());
    call.firstTokenMs = performance.now() - call.startedAt;
    stream.write(replayChunks(answer.completion));
    stream.end();
    finish(call, 200, answer.completion);
    return reply;
  };

  /** The balancer's pick among a route's live targets, informed by their flow state. */
  const choose = (route: Route, live: Target[]): Target => {
    const candidates = live.map((target) => {
      const flow = gateway.flow.target(target);
      return {
        id: target.id,
        weight: target.weight,
        inflight: () => flow.limiter.inflight,
        latency: flow.latency,
        target,
      };
    });
    return gateway.flow.balancer(route).pick(candidates, Math.random).target;
  };

  /** The resolve stage, the request's flow-control priority and deadline, then its budgets and rate limits. */
  const prepare = async (
    request: FastifyRequest,
    call: Call,
    model: string,
    estimate: (plan: Plan) => TokenEstimator,
  ): Promise<{ plan: Plan; flow?: FlowContext } | { error: ApiError }> => {
    call.requestedModel = model;
    const labels = callLabels(request.headers);
    if (isApiError(labels)) return { error: labels };
    // A virtual key's tags are defaults; the request's own x-sluice-tags win.
    if (call.principal.tags) labels.tags = { ...call.principal.tags, ...labels.tags };
    call.labels = labels;
    const runtime = gateway.runtime;
    const plan = resolvePlan(
      runtime,
      model,
      call.principal,
      Math.random,
      gateway.flow.enabled ? choose : undefined,
    );
    if (isApiError(plan)) return { error: plan };
    call.route = plan.route.name;
    call.routeVersion = plan.route.version;
    const flow = flowContext(request, call, plan);
    if (isApiError(flow)) return { error: flow };
    const admitted = gateway.limits.admit(call, plan, runtime.policy, () => estimate(plan));
    // The memory state answers at once: no promise round to wait for.
    const refused = admitted instanceof Promise ? await admitted : admitted;
    if (refused) return { error: refused };
    return { plan, flow };
  };

  const flowContext = (
    request: FastifyRequest,
    call: Call,
    plan: Plan,
  ): FlowContext | undefined | ApiError => {
    const header = request.headers['x-sluice-priority'];
    const priority = typeof header === 'string' ? parsePriority(header) : undefined;
    if (typeof header === 'string' && !priority) {
      return apiError(
        'invalid_request',
        400,
        `Invalid x-sluice-priority '${header}': use one of ${priorities.join(', ')}.`,
        {
          code: 'invalid_priority',
          param: 'x-sluice-priority',
        },
      );
    }
    call.priority = priority ?? call.principal.priority ?? 'normal';
    const deadlineHeader = request.headers['x-sluice-deadline-ms'];
    let budgetMs = plan.route.timeouts.totalMs || Number.POSITIVE_INFINITY;
    if (deadlineHeader !== undefined) {
      const value = Number(deadlineHeader);
      if (!Number.isInteger(value) || value <= 0) {
        return apiError(
          'invalid_request',
          400,
          `Invalid x-sluice-deadline-ms '${deadlineHeader}': a positive number of milliseconds.`,
          {
            code: 'invalid_deadline',
            param: 'x-sluice-deadline-ms',
          },
        );
      }
      budgetMs = value;
    }
    if (!gateway.flow.enabled) return undefined;
    return {
      state: gateway.flow,
      priority: call.priority as Priority,
      deadlineAt: call.startedAt + budgetMs,
    };
  };

  const chat = async (
    request: FastifyRequest,
    reply: FastifyReply,
    call: Call,
    canonical: ChatCompletionRequest,
  ): Promise<unknown> => {
    const wire = call.wire;
    call.stream = canonical.stream === true;
    const prepared = await prepare(request, call, canonical.model, (plan) => chatTokens(canonical, plan));
    if ('error' in prepared) return fail(reply, call, prepared.error, wire);
    const signal = clientSignal(reply, call);
    const includeUsage = wire === 'openai' && request.body !== null && wantsUsage(request.body);
    const cached = await lookupCache(
      gateway,
      call,
      prepared.plan.route,
      canonical,
      request.headers['cache-control'],
      signal,
    );
    if (cached?.status === 'hit' || cached?.status === 'semantic_hit')
      return answerFromCache(reply, call, cached, includeUsage);
    const fill = cached?.status === 'miss' ? cached.fill : undefined;

    if (!call.stream) {
      const result = await dispatchChat(call, prepared.plan, canonical, signal, prepared.flow);
      if (!result.ok) return fail(reply, call, result.error, wire);
      fill?.(result.value, result.target.id);
      const body =
        wire === 'anthropic' ? canonicalToAnthropic(result.value, call.requestedModel) : result.value;
      finish(call, 200, body);
      return reply.headers(sluiceHeaders(call, result.target)).send(body);
    }

    const recorder = fill ? new StreamRecorder() : undefined;
    const stream = new ClientStream(reply.raw, {
      wire,
      includeUsage,
      requestedModel: call.requestedModel,
      callId: call.id,
      cost: () => streamedCost(call),
    });
    // The answer reassembled as it streams by, only when bodies are recorded.
    const streamed = gateway.runtime.bodies?.stream();
    const sink: StreamSink = {
      start(target) {
        reply.hijack();
        stream.open(sluiceHeaders(call, target));
      },
      write(chunks, event, sameWire) {
        streamed?.add(chunks);
        if (recorder) for (const chunk of chunks) recorder.add(chunk);
        stream.write(chunks, sameWire ? event : undefined);
      },
      flush: () => stream.flush(),
      end: () => stream.end(),
      fail: (error) => stream.fail(error),
    };
    const result = await dispatchChatStream(call, prepared.plan, canonical, signal, sink, prepared.flow);
    if (streamed && (result.ok || result.committed)) call.responseBody = streamed.body();
    if (result.ok) {
      const completion = recorder?.completion();
      const answered = call.attempts.find((a) => a.outcome === 'ok');
      if (fill && completion && answered) fill(completion, answered.target);
      gateway.finish(call, 200);
      return reply;
    }
    if (result.committed) {
      call.error = result.error;
      gateway.finish(call, result.error.status);
      return reply;
    }
    return fail(reply, call, result.error, wire);
  };

  app.post('/v1/chat/completions', async (request, reply) => {
    const call = begin(request, 'openai', 'chat');
    const parsed = parseRequest(chatCompletionRequestSchema, request.body);
    if (!parsed.ok) return fail(reply, call, parsed.error, 'openai');
    return chat(request, reply, call, parsed.data);
  });

  app.post('/v1/messages', async (request, reply) => {
    const call = begin(request, 'anthropic', 'chat');
    const parsed = parseRequest(messagesRequestSchema, request.body);
    if (!parsed.ok) return fail(reply, call, parsed.error, 'anthropic');
    return chat(request, reply, call, anthropicToCanonical(parsed.data));
  });

  app.post('/v1/embeddings', async (request, reply) => {
    const call = begin(request, 'openai', 'embeddings');
    const parsed = parseRequest(embeddingRequestSchema, request.body);
    if (!parsed.ok) return fail(reply, call, parsed.error, 'openai');
    const prepared = await prepare(request, call, parsed.data.model, () => embeddingTokens(parsed.data));
    if ('error' in prepared) return fail(reply, call, prepared.error, 'openai');
    const result = await dispatchEmbeddings(
      call,
      prepared.plan,
      parsed.data,
      clientSignal(reply, call),
      prepared.flow,
    );
    if (!result.ok) return fail(reply, call, result.error, 'openai');
    const body = parsed.data.encoding_format === 'base64' ? base64Embeddings(result.value) : result.value;
    finish(call, 200, body);
    return reply.headers(sluiceHeaders(call, result.target)).send(body);
  });

  app.get('/v1/models', async (request) => {
    const principal = request.principal ?? { keyName: null };
    const names = [...gateway.runtime.routes.keys()].filter(
      (name) => principal.routes === undefined || principal.routes.includes(name),
    );
    return {
      object: 'list',
      data: names.map((id) => ({ id, object: 'model', created: 0, owned_by: 'sluice' })),
    };
  });
}

type CacheHit = Extract<CacheLookup, { status: 'hit' | 'semantic_hit' }>;

function wantsUsage(body: unknown): boolean {
  const options = (body as { stream_options?: { include_usage?: unknown } }).stream_options;
  return options?.include_usage === true;
}

/** Providers that only return floats (Gemini) still answer a base64 request, as OpenAI SDKs ask by default. */
function base64Embeddings(response: EmbeddingResponse): EmbeddingResponse {
  return {
    ...response,
    data: response.data.map((item) =>
      Array.isArray(item.embedding)
        ? { ...item, embedding: Buffer.from(new Float32Array(item.embedding).buffer).toString('base64') }
        : item,
    ),
  };
}
