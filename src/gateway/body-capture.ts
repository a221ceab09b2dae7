import type { SluiceConfig } from '../config/schema.js';
import { compileRedactor, type Redactor } from '../events/redaction.js';
import type { ChatCompletionChunk, ToolCall } from '../providers/canonical.js';

/**
 * Request and response bodies on the wide event (events.bodies): redacted, then cut to
 * `maxBytes`, before the event is written to the spool. Built once per config; absent when
 * disabled, so the request path pays one property read and nothing else.
 */
export interface BodyCapture {
  /** A JSON body as kept on the event. */
  capture(body: unknown): string;
  /** Collects a streamed answer; `body()` captures the reassembled completion (text and tool calls). */
  stream(): StreamCapture;
}

export interface StreamCapture {
  add(chunks: readonly ChatCompletionChunk[]): void;
  body(): string;
}

/**
 * Extra characters kept past the cut while redacting, so a secret that straddles the cut is still
 * seen whole (and replaced) rather than leaving its first half behind. Secrets are shorter.
 */
const SLACK = 512;

export function bodyCapture(config: SluiceConfig['events']['bodies']): BodyCapture | undefined {
  if (!config.enabled) return undefined;
  const redact = compileRedactor(config.redact);
  const { maxBytes } = config;
  const capture = (body: unknown) =>
    cut(JSON.stringify(bounded(body, maxBytes + SLACK, redact)) ?? 'null', maxBytes);
  return {
    capture,
    stream: () => streamCapture(maxBytes + SLACK, capture),
  };
}

/**
 * A copy of `value` with every string (and key) redacted, walked in the order JSON.stringify
 * writes it, that stops once `budget` characters are written: what follows would be cut anyway,
 * so a 10 MB body costs no more than `maxBytes` of work. Lengths are counted low (content only,
 * never escapes or punctuation), so nothing before the cut is ever skipped.
 */
function bounded(value: unknown, budget: number, redact: Redactor | undefined): unknown {
  let left = budget;
  const text = (input: string): string => {
    const kept = input.length > left ? input.slice(0, Math.max(0, left)) : input;
    const out = redact ? redact(kept) : kept;
    left -= out.length;
    return out;
  };
  const walk = (node: unknown): unknown => {
    if (typeof node === 'string') return text(node);
    if (typeof node !== 'object' || node === null) {
      left -= 1;
      return node;
    }
    if (Array.isArray(node)) {
      const out: unknown[] = [];
      for (const item of node) {
        if (left <= 0) break;
        out.push(walk(item));
      }
      return out;
    }
    const out: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(node)) {
      if (left <= 0) break;
      if (item === undefined || typeof item === 'function') continue;
      out[text(key)] = walk(item);
    }
    return out;
  };
  return walk(value);
}

/** The text cut to `maxBytes` of UTF-8 (never inside a character), with a marker saying so. */
export function cut(text: string, maxBytes: number): string {
  // Up to 3 bytes per UTF-16 unit: most bodies are shorter than the cap without measuring.
  if (text.length * 3 <= maxBytes) return text;
  const bytes = Buffer.from(text, 'utf8');
  if (bytes.length <= maxBytes) return text;
  let end = maxBytes;
  while (end > 0 && (bytes[end]! & 0xc0) === 0x80) end--;
  return `${bytes.subarray(0, end).toString('utf8')}…[truncated at ${maxBytes} bytes]`;
}

interface ChoiceSoFar {
  content: string[];
  refusal: string[];
  toolCalls: Map<number, { id?: string; name: string; arguments: string[] }>;
  finishReason: string | null;
}

/**
 * Reassembles a stream into the completion it adds up to, in the OpenAI shape whatever the wire.
 * Pieces beyond the budget are not kept: the capture would cut them, and memory stays bounded.
 */
function streamCapture(budget: number, capture: (body: unknown) => string): StreamCapture {
  let id: string | undefined;
  let model: string | undefined;
  let usage: ChatCompletionChunk['usage'];
  let kept = 0;
  const choices = new Map<number, ChoiceSoFar>();
  const keep = (pieces: string[], piece: string | null | undefined) => {
    if (!piece || kept >= budget) return;
    pieces.push(piece);
    kept += piece.length;
  };
  return {
    add(chunks) {
      for (const chunk of chunks) {
        id ??= chunk.id;
        model ??= chunk.model;
        if (chunk.usage) usage = chunk.usage;
        for (const choice of chunk.choices) {
          let soFar = choices.get(choice.index);
          if (!soFar) {
            soFar = { content: [], refusal: [], toolCalls: new Map(), finishReason: null };
            choices.set(choice.index, soFar);
          }
          keep(soFar.content, choice.delta.content);
          keep(soFar.refusal, choice.delta.refusal);
          for (const delta of choice.delta.tool_calls ?? []) {
            let call = soFar.toolCalls.get(delta.index);
            if (!call) {
              call = { name: '', arguments: [] };
              soFar.toolCalls.set(delta.index, call);
            }
            call.id ??= delta.id;
            // Names come whole (some providers repeat them in every delta); arguments in pieces.
            if (delta.function?.name) call.name = delta.function.name;
            keep(call.arguments, delta.function?.arguments);
          }
          if (choice.finish_reason) soFar.finishReason = choice.finish_reason;
        }
      }
    },
    body() {
      return capture({
        id: id ?? null,
        object: 'chat.completion',
        model: model ?? null,
        choices: [...choices.entries()]
          .sort(([a], [b]) => a - b)
          .map(([index, soFar]) => {
            const toolCalls: ToolCall[] = [...soFar.toolCalls.entries()]
              .sort(([a], [b]) => a - b)
              .map(([, call]) => ({
                id: call.id ?? '',
                type: 'function',
                function: { name: call.name, arguments: call.arguments.join('') },
              }));
            return {
              index,
              message: {
                role: 'assistant',
                content: soFar.content.length > 0 ? soFar.content.join('') : null,
                ...(soFar.refusal.length > 0 && { refusal: soFar.refusal.join('') }),
                ...(toolCalls.length > 0 && { tool_calls: toolCalls }),
              },
              finish_reason: soFar.finishReason,
            };
          }),
        ...(usage && { usage }),
      });
    },
  };
}
