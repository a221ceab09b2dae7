import type { SseEvent } from '../http/sse-parser.js';
import { type ChatCompletionRequest, type ChatMessage, contentText } from '../http/wire/openai-chat.js';
import type { ChatCompletion, ChatCompletionChunk, FinishReason, ToolCall, Usage } from './canonical.js';
import {
  classifyStatus,
  errorMessage,
  type ProviderAdapter,
  retryAfterMs,
  type StreamDecoder,
  type TargetRef,
  type UpstreamRequest,
} from './provider.js';

export interface AnthropicOptions {
  /** Without a trailing slash or /v1. */
  baseUrl?: string;
  apiKey: string;
  /** The `anthropic-version` header. */
  version?: string;
  /** Extra request headers (anthropic-beta, ...); they win over the defaults. */
  headers?: Record<string, string>;
}

/** Anthropic's usage block, in messages and in message_start / message_delta events. */
interface AnthropicUsage {
  input_tokens?: number | null;
  output_tokens?: number | null;
  cache_creation_input_tokens?: number | null;
  cache_read_input_tokens?: number | null;
}

interface AnthropicBlock {
  type: string;
  text?: string;
  id?: string;
  name?: string;
  input?: unknown;
}

/** The parts of a Messages response this adapter reads. */
interface AnthropicResponse {
  id?: string;
  model?: string;
  content?: AnthropicBlock[];
  stop_reason?: string | null;
  stop_sequence?: string | null;
  usage?: AnthropicUsage;
}

/** One streaming event's data; every event carries its `type`. */
interface AnthropicStreamEvent {
  type: string;
  message?: AnthropicResponse;
  index?: number;
  content_block?: AnthropicBlock;
  delta?: {
    type?: string;
    text?: string;
    partial_json?: string;
    stop_reason?: string | null;
    stop_sequence?: string | null;
  };
  usage?: AnthropicUsage;
  error?: { type?: string; message?: string };
}

type Block = { type: string } & Record<string, unknown>;
type Turn = { role: 'user' | 'assistant'; content: Block[] };

const finishReasons: Record<string, FinishReason> = {
  end_turn: 'stop',
  stop_sequence: 'stop',
  pause_turn: 'stop',
  max_tokens: 'length',
  model_context_window_exceeded: 'length',
  tool_use: 'tool_calls',
  refusal: 'content_filter',
};

/**
 * The Anthropic Messages API (https://docs.anthropic.com/en/api/messages). Translates the
 * canonical (OpenAI) request to a Messages request and responses, streams and errors back.
 */
export function anthropicAdapter(options: AnthropicOptions): ProviderAdapter {
  const base = (options.baseUrl ?? 'https://api.anthropic.com').replace(/\/+$/, '');
  const headers = {
    'content-type': 'application/json',
    'x-api-key': options.apiKey,
    'anthropic-version': options.version ?? '2023-06-01',
    ...options.headers,
  };

  return {
    wire: 'anthropic',
    chatRequest(request: ChatCompletionRequest, target: TargetRef): UpstreamRequest {
      const body = { ...messagesBody(request), ...target.params, model: target.model };
      return { url: `${base}/v1/messages`, headers, body: JSON.stringify(body) };
    },
    parseChat(body: unknown, target: TargetRef): ChatCompletion {
      const message = body as AnthropicResponse;
      const blocks = Array.isArray(message.content) ? message.content : [];
      const texts = blocks.filter((b) => b.type === 'text').map((b) => b.text ?? '');
      const toolCalls: ToolCall[] = blocks
        .filter((b) => b.type === 'tool_use')
        .map((b) => ({
          id: b.id ?? '',
          type: 'function',
          function: { name: b.name ?? '', arguments: JSON.stringify(b.input ?? {}) },
        }));
      return {
        id: message.id ?? '',
        object: 'chat.completion',
        created: nowSeconds(),
        model: message.model ?? target.model,
        choices: [
          {
            index: 0,
            message: {
              role: 'assistant',
              content: texts.length > 0 ? texts.join('') : null,
              ...(toolCalls.length > 0 ? { tool_calls: toolCalls } : {}),
            },
            finish_reason: finishReason(message.stop_reason),
            ...(message.stop_sequence ? { stop_reason: message.stop_sequence } : {}),
          },
        ],
        usage: canonicalUsage(message.usage ?? {}),
      };
    },
    streamDecoder(target: TargetRef): StreamDecoder {
      return anthropicStreamDecoder(target);
    },
    parseError(status, body, responseHeaders) {
      // Anthropic says {"type":"error","error":{"type":"overloaded_error","message":...}}.
      let type: unknown;
      try {
        type = (JSON.parse(body) as AnthropicStreamEvent).error?.type;
      } catch {
        // Not JSON: the status alone decides.
      }
      const classified = classifyStatus(status);
      const overloaded = classified.overloaded || type === 'overloaded_error' || type === 'rate_limit_error';
      return {
        status,
        message: errorMessage(body, `HTTP ${status}`),
        retryAfterMs: retryAfterMs(responseHeaders),
        retryable: classified.retryable || overloaded,
        overloaded,
      };
    },
  };
}

/** The Messages request body for a canonical request, before route params and model. */
function messagesBody(request: ChatCompletionRequest): Record<string, unknown> {
  const { system, turns } = splitMessages(request.messages);
  const instruction = jsonInstruction(request.response_format);
  if (instruction) system.push(instruction);

  const body: Record<string, unknown> = {
    // Anthropic requires max_tokens; OpenAI callers often leave it out.
    max_tokens: request.max_completion_tokens ?? request.max_tokens ?? 4096,
    messages: turns.map(simplifyTurn),
  };
  if (system.length > 0) body.system = system.join('\n\n');
  if (request.stop != null) {
    const stop = typeof request.stop === 'string' ? [request.stop] : request.stop;
    if (stop.length > 0) body.stop_sequences = stop;
  }
  // OpenAI's temperature runs to 2, Anthropic's to 1.
  if (request.temperature != null) body.temperature = Math.min(1, Math.max(0, request.temperature));
  if (request.top_p != null) body.top_p = request.top_p;
  if (request.user) body.metadata = { user_id: request.user };
  if (request.stream) body.stream = true;

  if (request.tools && request.tools.length > 0) {
    body.tools = request.tools.map((tool) => ({
      name: tool.function.name,
      ...(tool.function.description !== undefined ? { description: tool.function.description } : {}),
      input_schema: tool.function.parameters ?? { type: 'object', properties: {} },
    }));
    const choice = toolChoice(request.tool_choice);
    if (request.parallel_tool_calls === false && choice?.type !== 'none') {
      body.tool_choice = { ...(choice ?? { type: 'auto' }), disable_parallel_tool_use: true };
    } else if (choice) {
      body.tool_choice = choice;
    }
  }
  return body;
}

/**
 * Anthropic has no JSON mode, so response_format is emulated with an instruction in the
 * system prompt. No assistant prefill ("{"): it would have to be stitched back onto the
 * answer, and Anthropic rejects prefill together with extended thinking.
 */
function jsonInstruction(format: ChatCompletionRequest['response_format']): string | undefined {
  if (format?.type === 'json_object') {
    return 'Respond with only a valid JSON object: no other text, no code fences.';
  }
  if (format?.type === 'json_schema') {
    const schema = JSON.stringify(format.json_schema.schema ?? {});
    return `Respond with only a JSON value that matches this JSON Schema: no other text, no code fences.\n${schema}`;
  }
  return undefined;
}

function toolChoice(choice: ChatCompletionRequest['tool_choice']): Block | undefined {
  if (choice === undefined) return undefined;
  if (choice === 'required') return { type: 'any' };
  if (choice === 'auto' || choice === 'none') return { type: choice };
  return { type: 'tool', name: choice.function.name };
}

/**
 * System and developer messages become the system prompt; the rest become turns that
 * alternate user/assistant, as Anthropic requires: tool results ride in a user turn and
 * consecutive same-role messages are merged.
 */
function splitMessages(messages: ChatMessage[]): { system: string[]; turns: Turn[] } {
  const system: string[] = [];
  const turns: Turn[] = [];
  const push = (role: Turn['role'], blocks: Block[]) => {
    if (blocks.length === 0) return;
    const last = turns.at(-1);
    if (last?.role === role) last.content.push(...blocks);
    else turns.push({ role, content: blocks });
  };
  for (const message of messages) {
    switch (message.role) {
      case 'system':
      case 'developer':
        system.push(contentText(message.content));
        break;
      case 'user':
        push('user', userBlocks(message.content));
        break;
      case 'assistant':
        push('assistant', assistantBlocks(message));
        break;
      case 'tool': {
        const text = contentText(message.content);
        push('user', [
          { type: 'tool_result', tool_use_id: message.tool_call_id, ...(text ? { content: text } : {}) },
        ]);
        break;
      }
      // The legacy `function` role has no call id to pair a tool_result with: it is dropped.
    }
  }
  return { system, turns };
}

function userBlocks(content: Extract<ChatMessage, { role: 'user' }>['content']): Block[] {
  if (typeof content === 'string') return content ? [{ type: 'text', text: content }] : [];
  const blocks: Block[] = [];
  for (const part of content) {
    if (part.type === 'text' && part.text) blocks.push({ type: 'text', text: part.text });
    else if (part.type === 'image_url')
      blocks.push({ type: 'image', source: imageSource(part.image_url.url) });
    // Audio and files have no Messages equivalent here.
  }
  return blocks;
}

function imageSource(url: string): Record<string, string> {
  const data = /^data:([^;,]+);base64,(.*)$/s.exec(url);
  if (data) return { type: 'base64', media_type: data[1] ?? '', data: data[2] ?? '' };
  return { type: 'url', url };
}

function assistantBlocks(message: Extract<ChatMessage, { role: 'assistant' }>): Block[] {
  const blocks: Block[] = [];
  // Anthropic rejects empty text blocks.
  const text = typeof message.content === 'string' ? message.content : assistantText(message.content);
  if (text) blocks.push({ type: 'text', text });
  for (const call of message.tool_calls ?? []) {
    blocks.push({
      type: 'tool_use',
      id: call.id,
      name: call.function.name,
      input: toolInput(call.function.arguments),
    });
  }
  return blocks;
}

function assistantText(
  parts: Array<{ type: string; text?: unknown; refusal?: unknown }> | null | undefined,
): string {
  let text = '';
  for (const part of parts ?? []) {
    if (typeof part.text === 'string') text += part.text;
    else if (typeof part.refusal === 'string') text += part.refusal;
  }
  return text;
}

/** A turn that is one text block is sent as a plain string, as people write them. */
function simplifyTurn(turn: Turn): { role: Turn['role']; content: string | Block[] } {
  const only = turn.content.length === 1 ? turn.content[0] : undefined;
  if (only?.type === 'text' && Object.keys(only).length === 2)
    return { role: turn.role, content: String(only.text) };
  return turn;
}

/** Tool arguments are model output and may not be valid JSON; Anthropic needs an object. */
function toolInput(args: string): Record<string, unknown> {
  try {
    const input: unknown = JSON.parse(args);
    if (input && typeof input === 'object' && !Array.isArray(input)) return input as Record<string, unknown>;
  } catch {
    // Fall through to an empty input.
  }
  return {};
}

function finishReason(stopReason: string | null | undefined): FinishReason {
  return (stopReason && finishReasons[stopReason]) || 'stop';
}

/** Anthropic counts cache reads and writes apart from input_tokens; canonical prompt_tokens includes them. */
function canonicalUsage(usage: AnthropicUsage): Usage {
  const cacheRead = usage.cache_read_input_tokens ?? 0;
  const cacheWrite = usage.cache_creation_input_tokens ?? 0;
  const prompt = (usage.input_tokens ?? 0) + cacheRead + cacheWrite;
  const completion = usage.output_tokens ?? 0;
  return {
    prompt_tokens: prompt,
    completion_tokens: completion,
    total_tokens: prompt + completion,
    prompt_tokens_details: { cached_tokens: cacheRead, cache_write_tokens: cacheWrite },
  };
}

function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

/** Messages stream events → canonical chunks, ending with a usage chunk as include_usage does. */
function anthropicStreamDecoder(target: TargetRef): StreamDecoder {
  let finished = false;
  let id = '';
  let model = target.model;
  let created = nowSeconds();
  let stopReason: string | null | undefined;
  let stopSequence: string | null | undefined;
  const usage: AnthropicUsage = {};
  // Content block index → canonical tool call index, so argument deltas find their call.
  const toolCalls = new Map<number, number>();

  const chunk = (
    delta: ChatCompletionChunk['choices'][number]['delta'],
    finish: FinishReason | null = null,
  ): ChatCompletionChunk => ({
    id,
    object: 'chat.completion.chunk',
    created,
    model,
    choices: [{ index: 0, delta, finish_reason: finish }],
  });
  const mergeUsage = (from: AnthropicUsage | undefined) => {
    // message_delta counts are cumulative: overwrite, never add.
    for (const [key, value] of Object.entries(from ?? {})) {
      if (typeof value === 'number') usage[key as keyof AnthropicUsage] = value;
    }
  };

  return {
    get finished() {
      return finished;
    },
    decode(event: SseEvent): ChatCompletionChunk[] {
      if (event.event === 'error')
        throw new Error(errorMessage(event.data, 'the provider sent an error event'));
      const data = JSON.parse(event.data) as AnthropicStreamEvent;
      switch (data.type) {
        case 'message_start':
          id = data.message?.id ?? id;
          model = data.message?.model ?? model;
          created = nowSeconds();
          mergeUsage(data.message?.usage);
          return [chunk({ role: 'assistant', content: '' })];
        case 'content_block_start': {
          const block = data.content_block;
          if (block?.type === 'text' && block.text) return [chunk({ content: block.text })];
          if (block?.type !== 'tool_use') return [];
          const index = toolCalls.size;
          toolCalls.set(data.index ?? -1, index);
          const call = {
            index,
            id: block.id ?? '',
            type: 'function' as const,
            function: { name: block.name ?? '', arguments: '' },
          };
          return [chunk({ tool_calls: [call] })];
        }
        case 'content_block_delta': {
          const delta = data.delta;
          if (delta?.type === 'text_delta' && delta.text) return [chunk({ content: delta.text })];
          if (delta?.type !== 'input_json_delta' || !delta.partial_json) return [];
          const index = toolCalls.get(data.index ?? -1);
          if (index === undefined) return [];
          return [chunk({ tool_calls: [{ index, function: { arguments: delta.partial_json } }] })];
        }
        case 'message_delta':
          stopReason = data.delta?.stop_reason ?? stopReason;
          stopSequence = data.delta?.stop_sequence ?? stopSequence;
          mergeUsage(data.usage);
          return [];
        case 'message_stop':
          finished = true;
          return [
            stopSequence
              ? {
                  ...chunk({}),
                  choices: [
                    {
                      index: 0,
                      delta: {},
                      finish_reason: finishReason(stopReason),
                      stop_reason: stopSequence,
                    },
                  ],
                }
              : chunk({}, finishReason(stopReason)),
            { ...chunk({}), choices: [], usage: canonicalUsage(usage) },
          ];
        case 'error':
          throw new Error(errorMessage(event.data, 'the provider sent an error event'));
        default:
          // ping, content_block_stop, thinking and signature deltas carry nothing canonical.
          return [];
      }
    },
  };
}
