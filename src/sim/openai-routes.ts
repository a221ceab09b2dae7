import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { type ApiError, apiError, openAIErrorBody } from '../http/api-error.js';
import { startEventStream, writeEvent } from '../http/sse.js';
import { parseRequest } from '../http/wire/invalid-request.js';
import {
  type ChatCompletionRequest,
  chatCompletionRequestSchema,
  contentText,
  embeddingRequestSchema,
} from '../http/wire/openai-chat.js';
import type { Completion, SimChoice, SimPrompt } from './completion.js';
import { vectorToBase64 } from './embedding.js';
import { formatResetDuration, type QuotaState } from './quota.js';
import { awaitGeneration, randomId, sendError, whenClosed } from './reply.js';
import type { Generation, Simulator } from './simulator.js';

const fingerprint = 'fp_sluice_sim';

export function openAIRateLimitHeaders(quota: QuotaState | undefined): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const unit of ['requests', 'tokens'] as const) {
    const allowance = quota?.[unit];
    if (!allowance) continue;
    headers[`x-ratelimit-limit-${unit}`] = String(allowance.limit);
    headers[`x-ratelimit-remaining-${unit}`] = String(allowance.remaining);
    headers[`x-ratelimit-reset-${unit}`] = formatResetDuration(allowance.resetMs);
  }
  return headers;
}

function fail(reply: FastifyReply, error: ApiError, quota?: QuotaState): FastifyReply {
  return sendError(reply, error, openAIErrorBody, openAIRateLimitHeaders(quota));
}

/** The simulator's view of an OpenAI chat request. */
export function openAIPrompt(body: ChatCompletionRequest): SimPrompt | ApiError {
  const tools = (body.tools ?? []).map((t) => ({
    name: t.function.name,
    description: t.function.description,
    parameters: t.function.parameters,
  }));
  const choice = body.tool_choice;
  let toolChoice: SimPrompt['toolChoice'] = tools.length > 0 ? 'auto' : 'none';
  if (typeof choice === 'string') toolChoice = choice;
  else if (choice) {
    if (!tools.some((t) => t.name === choice.function.name)) {
      return apiError(
        'invalid_request',
        400,
        `Invalid value for 'tool_choice': the function '${choice.function.name}' is not among the request's tools.`,
        { param: 'tool_choice', code: 'invalid_value' },
      );
    }
    toolChoice = { name: choice.function.name };
  }
  if ((toolChoice === 'required' || typeof toolChoice === 'object') && tools.length === 0) {
    return apiError(
      'invalid_request',
      400,
      "Invalid value for 'tool_choice': it needs 'tools' to be specified.",
      {
        param: 'tool_choice',
        code: 'invalid_value',
      },
    );
  }
  const messages = body.messages.map((m) => {
    let text = contentText(m.content);
    if (m.role === 'assistant' && m.tool_calls) {
      for (const call of m.tool_calls) text += `\n${call.function.name}(${call.function.arguments})`;
    }
    return { role: m.role, text };
  });
  const format = body.response_format ?? { type: 'text' as const };
  if (format.type === 'json_object' && !messages.some((m) => /json/i.test(m.text))) {
    return apiError(
      'invalid_request',
      400,
      "'messages' must contain the word 'json' in some form, to use 'response_format' of type 'json_object'.",
      { param: 'messages', code: null },
    );
  }
  const last = body.messages.at(-1);
  return {
    model: body.model,
    messages,
    tools,
    toolChoice,
    parallelToolCalls: body.parallel_tool_calls ?? true,
    answeringToolResults: last?.role === 'tool' || last?.role === 'function',
    responseFormat:
      format.type === 'json_schema'
        ? { type: 'json_schema', schema: format.json_schema.schema }
        : { type: format.type },
    maxTokens: body.max_completion_tokens ?? body.max_tokens ?? undefined,
    stop: typeof body.stop === 'string' ? [body.stop] : (body.stop ?? []),
    n: body.n ?? 1,
  };
}

export function openAIUsage(completion: Completion, cachedTokens: number) {
  return {
    prompt_tokens: completion.promptTokens,
    completion_tokens: completion.completionTokens,
    total_tokens: completion.promptTokens + completion.completionTokens,
    prompt_tokens_details: { cached_tokens: cachedTokens, audio_tokens: 0 },
    completion_tokens_details: {
      reasoning_tokens: completion.reasoningTokens,
      audio_tokens: 0,
      accepted_prediction_tokens: 0,
      rejected_prediction_tokens: 0,
    },
  };
}

function message(choice: SimChoice) {
  return {
    role: 'assistant' as const,
    content: choice.toolCalls.length > 0 ? null : choice.text,
    refusal: null,
    ...(choice.toolCalls.length > 0 && {
      tool_calls: choice.toolCalls.map((c) => ({
        id: `call_${c.id}`,
        type: 'function',
        function: { name: c.name, arguments: c.arguments },
      })),
    }),
    annotations: [],
  };
}

export function timingHeaders(generation: Generation): Record<string, string> {
  const headers: Record<string, string> = {};
  if (generation.timings.queuedMs !== undefined)
    headers['x-sim-queue-ms'] = String(Math.round(generation.timings.queuedMs));
  if (generation.timings.firstTokenMs !== undefined) {
    headers['x-sim-ttft-ms'] = String(Math.round(generation.timings.firstTokenMs));
  }
  return headers;
}

/** Azure names the model by its deployment in the path; the body's `model` is then ignored. */
function withModel(body: unknown, deployment: string | undefined): unknown {
  if (deployment === undefined || !body || typeof body !== 'object' || Array.isArray(body)) return body;
  return { ...body, model: deployment };
}

async function chatCompletions(
  sim: Simulator,
  request: FastifyRequest,
  reply: FastifyReply,
  deployment?: string,
): Promise<unknown> {
  const parsed = parseRequest(chatCompletionRequestSchema, withModel(request.body, deployment));
  if (!parsed.ok) return fail(reply, parsed.error);
  const body = parsed.data;
  const resolved = sim.resolveModel(body.model, 'chat');
  if (!resolved.ok) return fail(reply, resolved.error);
  const prompt = openAIPrompt(body);
  if ('kind' in prompt) return fail(reply, prompt);
  const id = randomId('chatcmpl-');
  const created = Math.floor(Date.now() / 1000);
  const requestId = randomId('req_', 32);
  const baseHeaders = {
    'x-request-id': requestId,
    'openai-organization': 'sluice-sim',
    'openai-version': '2020-10-01',
  };
  const receivedAt = performance.now();

  if (!body.stream) {
    const { outcome, finished } = awaitGeneration(request, reply, (listener) =>
      sim.generate(prompt, resolved.value, listener),
    );
    if (!outcome.ok) return fail(reply, outcome.error, outcome.quota);
    const generation = outcome.value;
    if (!(await finished)) return reply.hijack();
    return reply
      .headers({
        ...baseHeaders,
        ...openAIRateLimitHeaders(generation.quota),
        ...timingHeaders(generation),
        'openai-processing-ms': String(Math.round(performance.now() - receivedAt)),
      })
      .send({
        id,
        object: 'chat.completion',
        created,
        model: body.model,
        choices: generation.completion.choices.map((choice, index) => ({
          index,
          message: message(choice),
          logprobs: null,
          finish_reason: choice.finish,
          // vLLM's field: which stop sequence ended the text.
          stop_reason: choice.stopSequence ?? null,
        })),
        usage: openAIUsage(generation.completion, generation.cachedTokens),
        service_tier: 'default',
        system_fingerprint: fingerprint,
      });
  }

  const includeUsage = body.stream_options?.include_usage === true;
  const res = reply.raw;
  let generation: Generation | undefined;
  const chunk = (choices: unknown[], usage?: unknown): void => {
    const payload: Record<string, unknown> = {
      id,
      object: 'chat.completion.chunk',
      created,
      model: body.model,
      service_tier: 'default',
      system_fingerprint: fingerprint,
      choices,
    };
    if (includeUsage) payload.usage = usage ?? null;
    writeEvent(res, JSON.stringify(payload));
  };
  let done: () => void = () => {};
  const ended = new Promise<void>((resolve) => {
    done = resolve;
  });
  const outcome = sim.generate(prompt, resolved.value, {
    onToken: (step) => {
      if (!generation) return;
      const { completion } = generation;
      const visible = step - completion.reasoningTokens;
      if (visible < 0) return;
      if (visible === 0) {
        reply.hijack();
        startEventStream(res, { ...baseHeaders, ...openAIRateLimitHeaders(generation.quota) });
        chunk(
          completion.choices.map((_, index) => ({
            index,
            delta: { role: 'assistant', content: '', refusal: null },
            logprobs: null,
            finish_reason: null,
          })),
        );
      }
      completion.choices.forEach((choice, index) => {
        const emission = choice.emissions[visible];
        if (!emission) return;
        let delta: Record<string, unknown>;
        if (emission.kind === 'text') delta = { content: emission.text };
        else if (emission.kind === 'tool-start') {
          delta = {
            tool_calls: [
              {
                index: emission.call,
                id: `call_${emission.id}`,
                type: 'function',
                function: { name: emission.name, arguments: '' },
              },
            ],
          };
        } else delta = { tool_calls: [{ index: emission.call, function: { arguments: emission.text } }] };
        chunk([{ index, delta, logprobs: null, finish_reason: null }]);
      });
    },
    onFinish: () => {
      if (!generation) return;
      const { completion } = generation;
      completion.choices.forEach((choice, index) => {
        chunk([
          {
            index,
            delta: {},
            logprobs: null,
            finish_reason: choice.finish,
            stop_reason: choice.stopSequence ?? null,
          },
        ]);
      });
      if (includeUsage) chunk([], openAIUsage(completion, generation.cachedTokens));
      writeEvent(res, '[DONE]');
      res.end();
      done();
    },
    onCut: () => {
      res.destroy();
      request.raw.socket?.destroy();
      done();
    },
  });
  if (!outcome.ok) return fail(reply, outcome.error, outcome.quota);
  generation = outcome.value;
  const live = generation;
  void whenClosed(reply, () => {
    live.cancel();
    done();
  });
  await ended;
  if (!reply.sent) reply.hijack();
  return reply;
}

async function embeddings(
  sim: Simulator,
  request: FastifyRequest,
  reply: FastifyReply,
  deployment?: string,
): Promise<unknown> {
  const parsed = parseRequest(embeddingRequestSchema, withModel(request.body, deployment));
  if (!parsed.ok) return fail(reply, parsed.error);
  const body = parsed.data;
  const resolved = sim.resolveModel(body.model, 'embedding');
  if (!resolved.ok) return fail(reply, resolved.error);
  const inputs = normaliseInputs(body.input);
  const dimensions = body.dimensions ?? resolved.value.embeddingDimensions;
  let settle: (result: { vectors: Float32Array[]; promptTokens: number } | undefined) => void = () => {};
  const result = new Promise<{ vectors: Float32Array[]; promptTokens: number } | undefined>((resolve) => {
    settle = resolve;
  });
  const outcome = sim.embed(inputs, resolved.value, dimensions, (vectors, promptTokens) =>
    settle({ vectors, promptTokens }),
  );
  if (!outcome.ok) return fail(reply, outcome.error, outcome.quota);
  const { cancel, quota } = outcome.value;
  void whenClosed(reply, () => {
    cancel();
    settle(undefined);
  });
  const done = await result;
  if (!done) return reply.hijack();
  const base64 = body.encoding_format === 'base64';
  return reply.headers({ 'x-request-id': randomId('req_', 32), ...openAIRateLimitHeaders(quota) }).send({
    object: 'list',
    data: done.vectors.map((vector, index) => ({
      object: 'embedding',
      index,
      embedding: base64 ? vectorToBase64(vector) : Array.from(vector),
    })),
    model: body.model,
    usage: { prompt_tokens: done.promptTokens, total_tokens: done.promptTokens },
  });
}

/** Token-id inputs are embedded as their decimal text: deterministic, which is all a simulator needs. */
function normaliseInputs(input: string | string[] | number[] | number[][]): string[] {
  if (typeof input === 'string') return [input];
  if (input.length > 0 && typeof input[0] === 'number') return [(input as number[]).join(' ')];
  return (input as Array<string | number[]>).map((item) =>
    typeof item === 'string' ? item : item.join(' '),
  );
}

function modelEntry(sim: Simulator, name: string) {
  const profile = sim.models.find((m) => m.name === name);
  return {
    id: name,
    object: 'model',
    created: 1_700_000_000,
    owned_by: profile?.ownedBy ?? 'sluice-sim',
    ...(profile?.price && { pricing: profile.price }),
  };
}

export function registerOpenAIRoutes(app: FastifyInstance, sim: Simulator): void {
  app.get('/v1/models', async () => ({
    object: 'list',
    data: sim.models.map((m) => modelEntry(sim, m.name)),
  }));
  app.get<{ Params: { model: string } }>('/v1/models/:model', async (request, reply) => {
    if (!sim.models.some((m) => m.name === request.params.model)) {
      return fail(
        reply,
        apiError('not_found', 404, `The model '${request.params.model}' does not exist`, {
          code: 'model_not_found',
          param: 'model',
        }),
      );
    }
    return modelEntry(sim, request.params.model);
  });
  app.post('/v1/chat/completions', (request, reply) => chatCompletions(sim, request, reply));
  app.post('/v1/embeddings', (request, reply) => embeddings(sim, request, reply));

  // Azure OpenAI: the deployment in the path is the model, and every call names its api-version.
  type AzureRequest = FastifyRequest<{
    Params: { deployment: string };
    Querystring: { 'api-version'?: string };
  }>;
  const azure = (handler: typeof chatCompletions) => (request: AzureRequest, reply: FastifyReply) => {
    if (!request.query['api-version']) {
      return fail(
        reply,
        apiError(
          'invalid_request',
          400,
          "Missing required query parameter: 'api-version', e.g. ?api-version=2024-10-21.",
          { param: 'api-version', code: 'missing_required_parameter' },
        ),
      );
    }
    return handler(sim, request, reply, request.params.deployment);
  };
  app.post('/openai/deployments/:deployment/chat/completions', azure(chatCompletions));
  app.post('/openai/deployments/:deployment/embeddings', azure(embeddings));
}
