import type { ChatCompletion, ChatCompletionChunk, ToolCallDelta } from '../providers/canonical.js';

/**
 * A cached completion as the canonical chunks of a stream: per choice, one chunk with the role
 * and the whole text, one per tool call with its whole arguments, one with the finish reason;
 * then the usage chunk. The client's wire format writes them like any upstream's chunks.
 */
export function replayChunks(completion: ChatCompletion): ChatCompletionChunk[] {
  const chunk = (choices: ChatCompletionChunk['choices'], usage?: ChatCompletionChunk['usage']) => ({
    id: completion.id,
    object: 'chat.completion.chunk' as const,
    created: completion.created,
    model: completion.model,
    ...(completion.system_fingerprint !== undefined && { system_fingerprint: completion.system_fingerprint }),
    choices,
    ...(usage !== undefined && { usage }),
  });
  const chunks: ChatCompletionChunk[] = [];
  for (const choice of completion.choices) {
    const { role: _role, content, refusal, tool_calls, ...extras } = choice.message;
    const { index } = choice;
    const text: ChatCompletionChunk['choices'][number]['delta'] = { role: 'assistant' };
    for (const [name, value] of Object.entries(extras)) if (typeof value === 'string') text[name] = value;
    text.content = content ?? null;
    if (typeof refusal === 'string') text.refusal = refusal;
    chunks.push(chunk([{ index, delta: text, finish_reason: null }]));
    (tool_calls ?? []).forEach((call, i) => {
      const delta: ToolCallDelta = {
        index: i,
        id: call.id,
        type: 'function',
        function: { name: call.function.name, arguments: call.function.arguments },
      };
      chunks.push(chunk([{ index, delta: { tool_calls: [delta] }, finish_reason: null }]));
    });
    chunks.push(
      chunk([
        {
          index,
          delta: {},
          finish_reason: choice.finish_reason,
          ...(choice.stop_reason !== undefined && { stop_reason: choice.stop_reason }),
        },
      ]),
    );
  }
  if (completion.usage) chunks.push(chunk([], completion.usage));
  return chunks;
}
