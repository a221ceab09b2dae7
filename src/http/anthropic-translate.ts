import type {
  ChatCompletion,
  ChatCompletionChunk,
  FinishReason,
  ToolCall,
  Usage,
} from '../providers/canonical.js';
import type { AnthropicMessage, MessagesRequest } from './wire/anthropic-messages.js';
import type { ChatCompletionRequest, ChatMessage } from './wire/openai-chat.js';

/**
 * The client-facing Anthropic Messages endpoint: requests are translated to the canonical
 * (OpenAI) shape at ingress and responses back at egress, so an Anthropic SDK client can
 * call any provider.
 */

export type StopReason = 'end_turn' | 'max_tokens' | 'stop_sequence' | 'tool_use' | 'refusal';

export interface AnthropicUsage {
  /** Prompt tokens that were neither read from nor written to the cache. */
  input_tokens: number;
  output_tokens: number;
  cache_read_input_tokens: number;
  cache_creation_input_tokens: number;
}

export type ResponseBlock =
  | { type: 'text'; text: string }
  | { type: 'tool_use'; id: string; name: string; input: Record<string, unknown> };

/** A Messages API response body. */
export interface MessagesResponse {
  id: string;
  type: 'message';
  role: 'assistant';
  model: string;
  content: ResponseBlock[];
  stop_reason: StopReason;
  stop_sequence: string | null;
  usage: AnthropicUsage;
}

/** One Messages stream event: `event` is the SSE event name, `data` its JSON. */
export interface AnthropicEvent {
  event: string;
  data: { type: string } & Record<string, unknown>;
}

type Part = Exclude<Extract<ChatMessage, { role: 'user' }>['content'], string>;
type Block = Exclude<AnthropicMessage['content'], string>[number];

export function anthropicToCanonical(body: MessagesRequest): ChatCompletionRequest {
  const messages: ChatMessage[] = [];
  if (typeof body.system === 'string') messages.push({ role: 'system', content: body.system });
  else if (body.system && body.system.length > 0) {
    messages.push({ role: 'system', content: body.system.map((b) => ({ type: 'text', text: b.text })) });
  }
  for (const message of body.messages) {
    if (typeof message.content === 'string') messages.push({ role: message.role, content: message.content });
    else if (message.role === 'assistant') messages.push(assistantMessage(message.content));
    else messages.push(...userMessages(message.content));
  }

  const request: ChatCompletionRequest = { model: body.model, messages, max_tokens: body.max_tokens };
  if (body.tools && body.tools.length > 0) {
    request.tools = body.tools.map((tool) => ({
      type: 'function',
      function: {
        name: tool.name,
        ...(tool.description !== undefined ? { description: tool.description } : {}),
        parameters: tool.input_schema,
      },
    }));
  }
  const choice = body.tool_choice;
  if (choice) {
    if (choice.type === 'any') request.tool_choice = 'required';
    else if (choice.type === 'tool')
      request.tool_choice = { type: 'function', function: { name: choice.name } };
    else request.tool_choice = choice.type;
    if ('disable_parallel_tool_use' in choice && choice.disable_parallel_tool_use === true) {
      request.parallel_tool_calls = false;
    }
  }
  if (body.stop_sequences && body.stop_sequences.length > 0) request.stop = body.stop_sequences;
  if (body.temperature !== undefined) request.temperature = body.temperature;
  if (body.top_p !== undefined) request.top_p = body.top_p;
  if (typeof body.metadata?.user_id === 'string') request.user = body.metadata.user_id;
  if (body.stream) {
    request.stream = true;
    // The usage chunk is what message_delta's output_tokens is filled from.
    request.stream_options = { include_usage: true };
  }
  return request;
}

function assistantMessage(blocks: Block[]): ChatMessage {
  let text = '';
  const toolCalls: Array<ToolCall & Record<string, unknown>> = [];
  for (const block of blocks) {
    if (block.type === 'text') text += block.text;
    else if (block.type === 'tool_use') {
      toolCalls.push({
        id: block.id,
        type: 'function',
        function: { name: block.name, arguments: JSON.stringify(block.input) },
      });
    }
    // Thinking blocks have no canonical place and are dropped.
  }
  return {
    role: 'assistant',
    content: text || null,
    ...(toolCalls.length > 0 ? { tool_calls: toolCalls } : {}),
  };
}

/**
 * Tool results become `tool` messages placed before the rest of the user's content, which
 * is where OpenAI-style providers expect them (right after the assistant's tool calls).
 */
function userMessages(blocks: Block[]): ChatMessage[] {
  const results: ChatMessage[] = [];
  const parts: Part = [];
  for (const block of blocks) {
    if (block.type === 'tool_result') {
      const text = blockText(block.content);
      results.push({
        role: 'tool',
        tool_call_id: block.tool_use_id,
        content: block.is_error ? `Error: ${text}` : text,
      });
    } else if (block.type === 'text') parts.push({ type: 'text', text: block.text });
    else if (block.type === 'image') {
      const url = imageUrl(block.source);
      if (url) parts.push({ type: 'image_url', image_url: { url } });
    }
  }
  return parts.length > 0 ? [...results, { role: 'user', content: parts }] : results;
}

/** A tool result's text; images in tool results have no place in a canonical tool message. */
function blockText(content: string | Array<{ type: string; text?: unknown }> | undefined): string {
  if (typeof content === 'string') return content;
  let text = '';
  for (const block of content ?? []) if (typeof block.text === 'string') text += block.text;
  return text;
}

function imageUrl(source: { type: string } & Record<string, unknown>): string | undefined {
  if (source.type === 'base64') return `data:${String(source.media_type)};base64,${String(source.data)}`;
  if (source.type === 'url' && typeof source.url === 'string') return source.url;
  return undefined;
}

const stopReasons: Record<FinishReason, StopReason> = {
  // Canonical "stop" does not say whether a stop sequence matched.
  stop: 'end_turn',
  length: 'max_tokens',
  tool_calls: 'tool_use',
  function_call: 'tool_use',
  content_filter: 'refusal',
};

export function canonicalToAnthropic(completion: ChatCompletion, requestedModel: string): MessagesResponse {
  const message = completion.choices[0]?.message;
  const content: ResponseBlock[] = [];
  const text = message?.content || message?.refusal;
  if (text) content.push({ type: 'text', text });
  for (const call of message?.tool_calls ?? []) {
    content.push({
      type: 'tool_use',
      id: call.id,
      name: call.function.name,
      input: toolInput(call.function.arguments),
    });
  }
  const finish = completion.choices[0]?.finish_reason;
  const stopSequence = completion.choices[0]?.stop_reason;
  return {
    id: messageId(completion.id),
    type: 'message',
    role: 'assistant',
    model: requestedModel,
    content,
    stop_reason:
      typeof stopSequence === 'string' ? 'stop_sequence' : finish ? stopReasons[finish] : 'end_turn',
    stop_sequence: typeof stopSequence === 'string' ? stopSequence : null,
    usage: anthropicUsage(completion.usage),
  };
}

/** Anthropic ids start with msg_; keep the upstream id recognisable inside it. */
export function messageId(completionId: string): string {
  return completionId.startsWith('msg_') ? completionId : `msg_${completionId.replace(/^chatcmpl-/, '')}`;
}

/** Canonical prompt_tokens includes cache reads and writes; Anthropic counts them apart. */
function anthropicUsage(usage: Usage | null | undefined): AnthropicUsage {
  const cacheRead = usage?.prompt_tokens_details?.cached_tokens ?? 0;
  const cacheWrite = usage?.prompt_tokens_details?.cache_write_tokens ?? 0;
  return {
    input_tokens: Math.max(0, (usage?.prompt_tokens ?? 0) - cacheRead - cacheWrite),
    output_tokens: usage?.completion_tokens ?? 0,
    cache_read_input_tokens: cacheRead,
    cache_creation_input_tokens: cacheWrite,
  };
}

/** Tool arguments are model output and may not be valid JSON; Anthropic clients expect an object. */
function toolInput(args: string): Record<string, unknown> {
  try {
    const input: unknown = JSON.parse(args);
    if (input && typeof input === 'object' && !Array.isArray(input)) return input as Record<string, unknown>;
  } catch {
    // Fall through to an empty input.
  }
  return {};
}

/**
 * Canonical stream chunks → the Messages event sequence: message_start, ping, one
 * content_block_start/delta…/stop per text run or tool call, message_delta, message_stop.
 * Usage arrives in the last chunk, so message_delta and message_stop wait for `finish()`.
 */
export class AnthropicStreamEncoder {
  private started = false;
  private done = false;
  private blocks = 0;
  private open: { index: number; kind: 'text' | 'tool' } | undefined;
  /** Canonical tool call index → content block index. */
  private readonly toolBlocks = new Map<number, number>();
  private stopReason: StopReason | undefined;
  private stopSequence: string | null = null;
  private usage: Usage | undefined;

  constructor(
    private readonly requestedModel: string,
    private readonly messageId: string,
  ) {}

  encode(chunk: ChatCompletionChunk): AnthropicEvent[] {
    const events: AnthropicEvent[] = [];
    if (this.done) return events;
    if (chunk.usage) this.usage = chunk.usage;
    this.start(events);
    // Anthropic has no `n`: only the first choice is spoken.
    const choice = chunk.choices.find((c) => c.index === 0);
    if (!choice) return events;
    const text = (choice.delta.content ?? '') + (choice.delta.refusal ?? '');
    if (text) {
      const index = this.openBlock(events, 'text', { type: 'text', text: '' });
      events.push(event('content_block_delta', { index, delta: { type: 'text_delta', text } }));
    }
    for (const call of choice.delta.tool_calls ?? []) this.toolDelta(events, call);
    if (choice.finish_reason) this.stopReason = stopReasons[choice.finish_reason];
    if (typeof choice.stop_reason === 'string') {
      this.stopReason = 'stop_sequence';
      this.stopSequence = choice.stop_reason;
    }
    return events;
  }

  /**
   * Ends the message; safe to call without any chunk, and more than once. `extraUsage` joins
   * message_delta's usage (Sluice's x_sluice_cost_usd).
   */
  finish(extraUsage: Record<string, unknown> = {}): AnthropicEvent[] {
    const events: AnthropicEvent[] = [];
    if (this.done) return events;
    this.start(events);
    this.closeBlock(events);
    const usage = anthropicUsage(this.usage);
    events.push(
      event('message_delta', {
        delta: { stop_reason: this.stopReason ?? 'end_turn', stop_sequence: this.stopSequence },
        // Cumulative totals: the Anthropic SDK overwrites message_start's counts with these.
        usage: { ...(this.usage ? usage : { output_tokens: 0 }), ...extraUsage },
      }),
      event('message_stop', {}),
    );
    this.done = true;
    return events;
  }

  private start(events: AnthropicEvent[]): void {
    if (this.started) return;
    this.started = true;
    const usage = anthropicUsage(this.usage);
    events.push(
      event('message_start', {
        message: {
          id: this.messageId,
          type: 'message',
          role: 'assistant',
          model: this.requestedModel,
          content: [],
          stop_reason: null,
          stop_sequence: null,
          usage: { ...usage, output_tokens: 0 },
        },
      }),
      event('ping', {}),
    );
  }

  private toolDelta(
    events: AnthropicEvent[],
    call: NonNullable<ChatCompletionChunk['choices'][number]['delta']['tool_calls']>[number],
  ): void {
    let index = this.toolBlocks.get(call.index);
    if (index === undefined) {
      index = this.openBlock(events, 'tool', {
        type: 'tool_use',
        id: call.id ?? `toolu_${this.messageId}_${call.index}`,
        name: call.function?.name ?? '',
        input: {},
      });
      this.toolBlocks.set(call.index, index);
    }
    // OpenAI-style upstreams stream one tool call after another, so `index` is the open block.
    const partial = call.function?.arguments;
    if (partial)
      events.push(
        event('content_block_delta', { index, delta: { type: 'input_json_delta', partial_json: partial } }),
      );
  }

  /** The open block of this kind (text only: each tool call opens its own), or a new one. */
  private openBlock(events: AnthropicEvent[], kind: 'text' | 'tool', block: Record<string, unknown>): number {
    if (kind === 'text' && this.open?.kind === 'text') return this.open.index;
    this.closeBlock(events);
    const index = this.blocks++;
    this.open = { index, kind };
    events.push(event('content_block_start', { index, content_block: block }));
    return index;
  }

  private closeBlock(events: AnthropicEvent[]): void {
    if (!this.open) return;
    events.push(event('content_block_stop', { index: this.open.index }));
    this.open = undefined;
  }
}

function event(type: string, data: Record<string, unknown>): AnthropicEvent {
  return { event: type, data: { type, ...data } };
}
