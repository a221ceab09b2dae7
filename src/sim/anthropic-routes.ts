import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { type ApiError, anthropicErrorBody, apiError } from '../http/api-error.js';
import { startEventStream, writeEvent } from '../http/sse.js';
import { type MessagesRequest, messagesRequestSchema } from '../http/wire/anthropic-messages.js';
import { parseRequest } from '../http/wire/invalid-request.js';
import type { Completion, SimChoice, SimPrompt } from './completion.js';
import type { QuotaState } from './quota.js';
import { awaitGeneration, randomId, sendError, whenClosed } from './reply.js';
import type { Generation, Simulator } from './simulator.js';

export function anthropicRateLimitHeaders(
  quota: QuotaState | undefined,
  now = Date.now(),
): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const unit of ['requests', 'tokens'] as const) {
    const allowance = quota?.[unit];
    if (!allowance) continue;
    headers[`anthropic-ratelimit-${unit}-limit`] = String(allowance.limit);
    headers[`anthropic-ratelimit-${unit}-remaining`] = String(allowance.remaining);
    headers[`anthropic-ratelimit-${unit}-reset`] = new Date(now + allowance.resetMs).toISOString();
  }
  return headers;
}

function fail(reply: FastifyReply, error: ApiError, quota?: QuotaState): FastifyReply {
  return sendError(reply, error, anthropicErrorBody, anthropicRateLimitHeaders(quota));
}

function blockText(block: { type: string } & Record<string, unknown>): string {
  switch (block.type) {
    case 'text':
      return String(block.text);
    case 'tool_use':
      return `${String(block.name)}(${JSON.stringify(block.input)})`;
    case 'tool_result':
      return typeof block.content === 'string'
        ? block.content
        : Array.isArray(block.content)
          ? block.content.map((b: { text?: unknown }) => (typeof b.text === 'string' ? b.text : '')).join('')
          : '';
    case 'thinking':
      return String(block.thinking);
    default:
      return '';
  }
}

/** The simulator's view of an Anthropic Messages request. */
export function anthropicPrompt(body: MessagesRequest): SimPrompt | ApiError {
  if (body.messages.length === 0) {
    return apiError('invalid_request', 400, 'messages: at least one message is required', {
      param: 'messages',
    });
  }
  const tools = (body.tools ?? []).map((t) => ({
    name: t.name,
    description: t.description,
    parameters: t.input_schema,
  }));
  const choice = body.tool_choice;
  let toolChoice: SimPrompt['toolChoice'] = tools.length > 0 ? 'auto' : 'none';
  if (choice?.type === 'any') toolChoice = 'required';
  else if (choice?.type === 'none') toolChoice = 'none';
  else if (choice?.type === 'tool') {
    if (!tools.some((t) => t.name === choice.name)) {
      return apiError(
        'invalid_request',
        400,
        `tool_choice: the tool '${choice.name}' is not among the request's tools`,
        {
          param: 'tool_choice',
        },
      );
    }
    toolChoice = { name: choice.name };
  }
  if (toolChoice !== 'none' && toolChoice !== 'auto' && tools.length === 0) {
    return apiError('invalid_request', 400, 'tool_choice: requires tools to be specified', {
      param: 'tool_choice',
    });
  }
  const messages: Array<{ role: string; text: string }> = [];
  if (body.system !== undefined) {
    messages.push({
      role: 'system',
      text: typeof body.system === 'string' ? body.system : body.system.map((b) => b.text).join(''),
    });
  }
  for (const m of body.messages) {
    messages.push({
      role: m.role,
      text: typeof m.content === 'string' ? m.content : m.content.map(blockText).join('\n'),
    });
  }
  const last = body.messages.at(-1);
  const answeringToolResults =
    last?.role === 'user' &&
    Array.isArray(last.content) &&
    last.content.some((b) => b.type === 'tool_result');
  const parallel = !(
    choice &&
    'disable_parallel_tool_use' in choice &&
    choice.disable_parallel_tool_use === true
  );
  return {
    model: body.model,
    messages,
    tools,
    toolChoice,
    parallelToolCalls: parallel,
    answeringToolResults,
    responseFormat: { type: 'text' },
    maxTokens: body.max_tokens,
    stop: body.stop_sequences ?? [],
    n: 1,
  };
}

const stopReasons: Record<SimChoice['finish'], string> = {
  stop: 'end_turn',
  length: 'max_tokens',
  tool_calls: 'tool_use',
};

function stopReason(choice: SimChoice): string {
  return choice.stopSequence ? 'stop_sequence' : stopReasons[choice.finish];
}

function contentBlocks(choice: SimChoice) {
  if (choice.toolCalls.length > 0) {
    return choice.toolCalls.map((c) => ({
      type: 'tool_use',
      id: `toolu_${c.id}`,
      name: c.name,
      input: JSON.parse(c.arguments) as unknown,
    }));
  }
  return [{ type: 'text', text: choice.text }];
}

export function anthropicUsage(
  completion: Completion,
  cachedTokens: number,
  outputTokens = completion.completionTokens,
) {
  return {
    input_tokens: completion.promptTokens - cachedTokens,
    cache_creation_input_tokens: 0,
    cache_read_input_tokens: cachedTokens,
    output_tokens: outputTokens,
  };
}

async function messages(sim: Simulator, request: FastifyRequest, reply: FastifyReply): Promise<unknown> {
  const parsed = parseRequest(messagesRequestSchema, request.body);
  if (!parsed.ok) return fail(reply, parsed.error);
  const body = parsed.data;
  const resolved = sim.resolveModel(body.model, 'chat');
  if (!resolved.ok) {
    return fail(reply, { ...resolved.error, message: `model: ${body.model}`, param: null });
  }
  const prompt = anthropicPrompt(body);
  if ('kind' in prompt) return fail(reply, prompt);
  const id = randomId('msg_');
  const baseHeaders = { 'request-id': randomId('req_', 32) };

  if (!body.stream) {
    const { outcome, finished } = awaitGeneration(request, reply, (listener) =>
      sim.generate(prompt, resolved.value, listener),
    );
    if (!outcome.ok) return fail(reply, outcome.error, outcome.quota);
    const generation = outcome.value;
    if (!(await finished)) return reply.hijack();
    const choice = generation.completion.choices[0] as SimChoice;
    return reply.headers({ ...baseHeaders, ...anthropicRateLimitHeaders(generation.quota) }).send({
      id,
      type: 'message',
      role: 'assistant',
      model: body.model,
      content: contentBlocks(choice),
      stop_reason: stopReason(choice),
      stop_sequence: choice.stopSequence ?? null,
      usage: anthropicUsage(generation.completion, generation.cachedTokens),
    });
  }

  const res = reply.raw;
  let generation: Generation | undefined;
  const send = (event: string, data: Record<string, unknown>): void => {
    writeEvent(res, JSON.stringify({ type: event, ...data }), event);
  };
  let openBlock = -1;
  let block = -1;
  const closeBlock = (): void => {
    if (openBlock >= 0) send('content_block_stop', { index: openBlock });
    openBlock = -1;
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
      const choice = completion.choices[0] as SimChoice;
      if (visible === 0) {
        reply.hijack();
        startEventStream(res, { ...baseHeaders, ...anthropicRateLimitHeaders(generation.quota) });
        send('message_start', {
          message: {
            id,
            type: 'message',
            role: 'assistant',
            model: body.model,
            content: [],
            stop_reason: null,
            stop_sequence: null,
            usage: anthropicUsage(completion, generation.cachedTokens, 1),
          },
        });
        if (choice.emissions[0]?.kind === 'text') {
          openBlock = ++block;
          send('content_block_start', { index: openBlock, content_block: { type: 'text', text: '' } });
        }
        send('ping', {});
      }
      const emission = choice.emissions[visible];
      if (!emission) return;
      if (emission.kind === 'text') {
        send('content_block_delta', { index: openBlock, delta: { type: 'text_delta', text: emission.text } });
      } else if (emission.kind === 'tool-start') {
        closeBlock();
        openBlock = ++block;
        send('content_block_start', {
          index: openBlock,
          content_block: { type: 'tool_use', id: `toolu_${emission.id}`, name: emission.name, input: {} },
        });
      } else {
        send('content_block_delta', {
          index: openBlock,
          delta: { type: 'input_json_delta', partial_json: emission.text },
        });
      }
    },
    onFinish: () => {
      if (!generation) return;
      const choice = generation.completion.choices[0] as SimChoice;
      closeBlock();
      send('message_delta', {
        delta: { stop_reason: stopReason(choice), stop_sequence: choice.stopSequence ?? null },
        usage: { output_tokens: generation.completion.completionTokens },
      });
      send('message_stop', {});
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

export function registerAnthropicRoutes(app: FastifyInstance, sim: Simulator): void {
  app.post('/v1/messages', (request, reply) => messages(sim, request, reply));
}
