import type { ChatCompletionRequest, ChatMessage } from '../http/wire/openai-chat.js';

/** What a semantic lookup compares: the text that is embedded, and the turns before it, matched exactly. */
export interface SemanticQuery {
  text: string;
  context: ChatMessage[];
}

/**
 * The trailing user messages of a request, as text, and what precedes them; undefined when a
 * paraphrase may not share an answer (docs/caching.md): the request offers tools or carries tool
 * calls or results (answers depend on exact arguments), or the last user turn has images, audio or
 * files (text similarity says nothing about them), or it does not end with a user message.
 */
export function semanticQuery(request: ChatCompletionRequest): SemanticQuery | undefined {
  if (request.tools && request.tools.length > 0) return undefined;
  const { messages } = request;
  for (const message of messages) {
    if (message.role === 'tool' || message.role === 'function') return undefined;
    if (message.role === 'assistant' && message.tool_calls && message.tool_calls.length > 0) return undefined;
  }
  let start = messages.length;
  while (start > 0 && messages[start - 1]?.role === 'user') start--;
  if (start === messages.length) return undefined;
  const texts: string[] = [];
  for (const message of messages.slice(start)) {
    const text = textOnly(message.content);
    if (text === undefined) return undefined;
    texts.push(text);
  }
  const text = texts.join('\n');
  if (text.trim() === '') return undefined;
  return { text, context: messages.slice(0, start) };
}

function textOnly(content: unknown): string | undefined {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return undefined;
  let text = '';
  for (const part of content as Array<{ type?: unknown; text?: unknown }>) {
    if (part.type !== 'text' || typeof part.text !== 'string') return undefined;
    text += part.text;
  }
  return text;
}
