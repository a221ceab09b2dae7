import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { type Priority, parsePriority, priorities } from '../flow/priority.js';
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
import { formatUsd, toUsd } from '../policy/cost.js';
import type { ChatCompletionChunk, EmbeddingResponse } from '../providers/canonical.js';
import {
  AnthropicStreamEncoder,
  anthropicToCanonical,
  canonicalToAnthropic,
  messageId,
} from './anthropic-translate.js';
import { type ApiError, anthropicErrorBody, apiError, isApiError, openAIErrorBody } from './api-error.js';
import { callLabels } from './call-labels.js';
import { writeOrWait } from './stream-writer.js';
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

const sseHeaders = {
  'content-type': 'text/event-stream; charset=utf-8',
  'cache-control': 'no-cache',
  connection: 'keep-alive',
  'x-accel-buffering': 'no',
};

function sluiceHeaders(call: Call, target?: Target): Record<string, string> {
  const headers: Record<string, string> = { 'x-sluice-request-id': call.id };
  if (call.route) headers['x-sluice-route'] = call.route;
  if (target) headers['x-sluice-target'] = target.id;
  if (call.attempts.length > 0) headers['x-sluice-attempts'] = String(call.attempts.length);
  // Known once the call is settled; absent when a price is unknown (docs/keys-and-budgets.md).
  if (typeof call.costUsd === 'number') headers['x-sluice-cost-usd'] = formatUsd(call.costUsd);
  return headers;
}

/** A stream's cost so far: its headers left before usage was known, so it rides in the usage. */
function streamedCost(call: Call): number | null {
  const cost = callCost(call);
  return cost === null ? null : toUsd(cost);
}

/** Aborts when the client goes away before its answer is complete. */
function clientSignal(reply: FastifyReply, call: Call): AbortSignal {
  const controller = new AbortController();
  reply.raw.once('close', () => {
    if (!reply.raw.writableFinished) {
      call.clientAborted = true;
      controller.abort();
    }
  });
  return controller.signal;
}

export function registerGatewayRoutes(app: FastifyInstance, gateway: Gateway): void {
  const fail = (reply: FastifyReply, call: Call, error: ApiError, wire: Call['wire']) => {
    call.error = error;
    gateway.finish(call, error.status);
    if (reply.sent || reply.raw.destroyed) return reply;
    const body = wire === 'anthropic' ? anthropicErrorBody(error) : openAIErrorBody(error);
    return reply
      .code(error.status)
      .headers({ ...sluiceHeaders(call), ...error.headers })
      .send(body);
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

  /** The resolve stage, and the request's flow-control priority and deadline. */
  const prepare = (
    request: FastifyRequest,
    call: Call,
    model: string,
  ): { plan: Plan; flow?: FlowContext } | { error: ApiError } => {
    call.requestedModel = model;
    const labels = callLabels(request.headers);
    if (isApiError(labels)) return { error: labels };
    call.labels = labels;
    const plan = resolvePlan(
      gateway.runtime,
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
    const prepared = prepare(request, call, canonical.model);
    if ('error' in prepared) return fail(reply, call, prepared.error, wire);
    const signal = clientSignal(reply, call);

    if (!call.stream) {
      const result = await dispatchChat(call, prepared.plan, canonical, signal, prepared.flow);
      if (!result.ok) return fail(reply, call, result.error, wire);
      gateway.finish(call, 200);
      const body =
        wire === 'anthropic' ? canonicalToAnthropic(result.value, call.requestedModel) : result.value;
      return reply.headers(sluiceHeaders(call, result.target)).send(body);
    }

    const res = reply.raw;
    const includeUsage = wire === 'openai' && request.body !== null && wantsUsage(request.body);
    let encoder: AnthropicStreamEncoder | undefined;
    const writeAnthropic = (events: ReturnType<AnthropicStreamEncoder['encode']>) => {
      let wait: Promise<void> | undefined;
      for (const e of events)
        wait = writeOrWait(res, `event: ${e.event}\ndata: ${JSON.stringify(e.data)}\n\n`) ?? wait;
      return wait;
    };
    const sink: StreamSink = {
      start(target) {
        reply.hijack();
        res.writeHead(200, { ...sseHeaders, ...sluiceHeaders(call, target) });
        if (wire === 'anthropic')
          encoder = new AnthropicStreamEncoder(call.requestedModel, messageId(call.id));
      },
      write(chunks, event, sameWire) {
        if (encoder) {
          let wait: Promise<void> | undefined;
          for (const chunk of chunks) wait = writeAnthropic(encoder.encode(chunk)) ?? wait;
          return wait;
        }
        // Same wire format: pass the upstream's bytes through untouched, except the usage chunk:
        // dropped when Sluice asked for it on its own account, else given the cost.
        if (sameWire && chunks.length === 1 && !isUsageOnly(chunks[0] as ChatCompletionChunk))
          return writeOrWait(res, event.raw.endsWith('\n\n') ? event.raw : `${event.raw}\n\n`);
        let text = '';
        for (const chunk of chunks) {
          if (!isUsageOnly(chunk)) text += `data: ${JSON.stringify(chunk)}\n\n`;
          else if (includeUsage)
            text += `data: ${JSON.stringify({ ...chunk, x_sluice_cost_usd: streamedCost(call) })}\n\n`;
        }
        return text ? writeOrWait(res, text) : undefined;
      },
      end() {
        if (encoder) writeAnthropic(encoder.finish({ x_sluice_cost_usd: streamedCost(call) }));
        else writeOrWait(res, 'data: [DONE]\n\n');
        res.end();
      },
      fail(error) {
        if (encoder) {
          writeOrWait(res, `event: error\ndata: ${JSON.stringify(anthropicErrorBody(error))}\n\n`);
        } else writeOrWait(res, `data: ${JSON.stringify(openAIErrorBody(error))}\n\n`);
        res.end();
      },
    };
    const result = await dispatchChatStream(call, prepared.plan, canonical, signal, sink, prepared.flow);
    if (result.ok) {
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
    const call = gateway.begin('openai', 'chat', request.principal ?? { keyName: null }, request.id);
    const parsed = parseRequest(chatCompletionRequestSchema, request.body);
    if (!parsed.ok) return fail(reply, call, parsed.error, 'openai');
    return chat(request, reply, call, parsed.data);
  });

  app.post('/v1/messages', async (request, reply) => {
    const call = gateway.begin('anthropic', 'chat', request.principal ?? { keyName: null }, request.id);
    const parsed = parseRequest(messagesRequestSchema, request.body);
    if (!parsed.ok) return fail(reply, call, parsed.error, 'anthropic');
    return chat(request, reply, call, anthropicToCanonical(parsed.data));
  });

  app.post('/v1/embeddings', async (request, reply) => {
    const call = gateway.begin('openai', 'embeddings', request.principal ?? { keyName: null }, request.id);
    const parsed = parseRequest(embeddingRequestSchema, request.body);
    if (!parsed.ok) return fail(reply, call, parsed.error, 'openai');
    const prepared = prepare(request, call, parsed.data.model);
    if ('error' in prepared) return fail(reply, call, prepared.error, 'openai');
    const result = await dispatchEmbeddings(
      call,
      prepared.plan,
      parsed.data,
      clientSignal(reply, call),
      prepared.flow,
    );
    if (!result.ok) return fail(reply, call, result.error, 'openai');
    gateway.finish(call, 200);
    const body = parsed.data.encoding_format === 'base64' ? base64Embeddings(result.value) : result.value;
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

function wantsUsage(body: unknown): boolean {
  const options = (body as { stream_options?: { include_usage?: unknown } }).stream_options;
  return options?.include_usage === true;
}

function isUsageOnly(chunk: ChatCompletionChunk): boolean {
  return chunk.choices.length === 0 && chunk.usage !== undefined && chunk.usage !== null;
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
