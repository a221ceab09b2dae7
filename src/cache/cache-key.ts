import { createHash } from 'node:crypto';
import type { ChatCompletionRequest, ChatMessage } from '../http/wire/openai-chat.js';
import type { CachePolicy } from './cache-policy.js';
import { canonicalJson } from './canonical-json.js';

/**
 * Request fields that do not change the answer: how it is delivered (`stream`, `stream_options`)
 * and who it is attributed to (`user`, `metadata`, `store`). `model` is the route, keyed apart.
 */
const answerNeutral = new Set(['model', 'stream', 'stream_options', 'user', 'metadata', 'store']);

/** Bumped when the key's composition changes, so old entries are never read with a new meaning. */
const keyVersion = 1;

/**
 * What a request asks, minus fields that do not change the answer. `null` means "the default" in
 * the OpenAI API, so it is the same as leaving the field out; `n: 1` is the default too.
 */
export function answerFields(request: ChatCompletionRequest): Record<string, unknown> {
  const fields: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(request)) {
    if (answerNeutral.has(name) || value === null || value === undefined) continue;
    if (name === 'n' && value === 1) continue;
    fields[name] = value;
  }
  return fields;
}

/** Whose entries these are: null when every key allowed on the route shares them. */
export type Owner = string | null;

/** The exact-match key: the route and its version, the owner, and the request's answer fields. */
export function exactKey(policy: CachePolicy, owner: Owner, request: ChatCompletionRequest): string {
  return digest({
    v: keyVersion,
    kind: 'exact',
    route: policy.route,
    version: policy.version,
    owner,
    request: answerFields(request),
  });
}

/**
 * The semantic scope: everything but the text that is embedded. Two requests meet in one scope
 * only when their route, model parameters, tools, system prompt and earlier turns are identical,
 * so similarity decides between last user messages alone.
 */
export function semanticScope(
  policy: CachePolicy & { embedding: NonNullable<CachePolicy['embedding']> },
  owner: Owner,
  request: ChatCompletionRequest,
  context: readonly ChatMessage[],
): string {
  return digest({
    v: keyVersion,
    kind: 'semantic',
    route: policy.route,
    version: policy.version,
    embedding: policy.embedding,
    owner,
    request: { ...answerFields(request), messages: context },
  });
}

function digest(parts: unknown): string {
  return createHash('sha256').update(canonicalJson(parts)).digest('hex');
}
