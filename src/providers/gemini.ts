import { randomBytes } from 'node:crypto';
import type { SseEvent } from '../http/sse-parser.js';
import {
  type ChatCompletionRequest,
  type ChatMessage,
  contentText,
  type EmbeddingRequest,
} from '../http/wire/openai-chat.js';
import type {
  ChatCompletion,
  ChatCompletionChunk,
  EmbeddingResponse,
  FinishReason,
  ToolCall,
  ToolCallDelta,
  Usage,
} from './canonical.js';
import {
  classifyStatus,
  errorMessage,
  type ProviderAdapter,
  retryAfterMs,
  type StreamDecoder,
  type TargetRef,
  type UpstreamFailure,
  type UpstreamRequest,
} from './provider.js';

export interface GeminiOptions {
  /** Without the /v1beta suffix; defaults to Google AI Studio. */
  baseUrl?: string;
  apiKey: string;
  /** Extra request headers. */
  headers?: Record<string, string>;
}

type GeminiPart = Record<string, unknown>;
interface GeminiContent {
  role: 'user' | 'model';
  parts: GeminiPart[];
}

/** The parts of a GenerateContentResponse the adapter reads. */
interface GeminiResponse {
  candidates?: Array<{
    index?: number;
    content?: { parts?: Array<ResponsePart> };
    finishReason?: string;
  }>;
  promptFeedback?: { blockReason?: string };
  usageMetadata?: UsageMetadata;
  modelVersion?: string;
  responseId?: string;
}

interface ResponsePart {
  text?: string;
  thought?: boolean;
  thoughtSignature?: string;
  functionCall?: { id?: string; name?: string; args?: Record<string, unknown> };
}

interface UsageMetadata {
  promptTokenCount?: number;
  candidatesTokenCount?: number;
  totalTokenCount?: number;
  cachedContentTokenCount?: number;
  thoughtsTokenCount?: number;
  toolUsePromptTokenCount?: number;
}

/**
 * Gemini 3 rejects a function-calling history whose calls lack the thought signature it
 * returned. It travels in the tool call the way Google's own OpenAI-compatible endpoint
 * carries it, so clients that send tool calls back as received keep it.
 */
type SignedToolCall = ToolCall & { extra_content?: { google?: { thought_signature?: string } } };

/** Google's documented stand-in for a history Gemini did not produce (another provider, a fallback). */
const UNSIGNED = 'skip_thought_signature_validator';

/** generationConfig fields a route may set in Gemini's own names (topK, thinkingConfig, ...). */
const GENERATION_FIELDS = new Set([
  'stopSequences',
  'responseMimeType',
  'responseSchema',
  'responseJsonSchema',
  'responseModalities',
  'candidateCount',
  'maxOutputTokens',
  'temperature',
  'topP',
  'topK',
  'seed',
  'presencePenalty',
  'frequencyPenalty',
  'responseLogprobs',
  'logprobs',
  'speechConfig',
  'thinkingConfig',
  'imageConfig',
  'mediaResolution',
]);

/** Request fields outside generationConfig that a route may set. */
const REQUEST_FIELDS = new Set(['safetySettings', 'cachedContent']);

const FILTERED = new Set(['SAFETY', 'RECITATION', 'BLOCKLIST', 'PROHIBITED_CONTENT', 'SPII', 'IMAGE_SAFETY']);

/**
 * The Google Gemini API (v1beta generateContent / streamGenerateContent / batchEmbedContents).
 * The key goes in the x-goog-api-key header, never in the URL, so URLs can be logged.
 */
export function geminiAdapter(options: GeminiOptions): ProviderAdapter {
  const base = (options.baseUrl ?? 'https://generativelanguage.googleapis.com')
    .replace(/\/+$/, '')
    .replace(/\/v1beta$/, '');
  const headers = {
    'content-type': 'application/json',
    ...options.headers,
    'x-goog-api-key': options.apiKey,
  };
  const url = (target: TargetRef, method: string) => `${base}/v1beta/models/${modelId(target)}:${method}`;

  return {
    wire: 'gemini',
    chatRequest(request: ChatCompletionRequest, target: TargetRef): UpstreamRequest {
      const method = request.stream ? 'streamGenerateContent?alt=sse' : 'generateContent';
      return {
        url: url(target, method),
        headers,
        body: JSON.stringify(generateContentBody(request, target)),
      };
    },
    parseChat(body: unknown, target: TargetRef): ChatCompletion {
      const response = body as GeminiResponse;
      const candidates = response.candidates ?? [];
      const choices: ChatCompletion['choices'] = candidates.map((candidate, position) => {
        const parts = candidate.content?.parts ?? [];
        const text = textOf(parts);
        const toolCalls = parts.flatMap((part) => (part.functionCall ? [toolCall(part)] : []));
        return {
          index: candidate.index ?? position,
          message: {
            role: 'assistant',
            content: text ?? (toolCalls.length ? null : ''),
            ...(toolCalls.length > 0 && { tool_calls: toolCalls }),
          },
          finish_reason: finishReason(candidate.finishReason, toolCalls.length > 0),
        };
      });
      // A prompt blocked before generation comes back without candidates.
      if (choices.length === 0) {
        const blocked = response.promptFeedback?.blockReason !== undefined;
        choices.push({
          index: 0,
          message: { role: 'assistant', content: '' },
          finish_reason: blocked ? 'content_filter' : 'stop',
        });
      }
      const usage = response.usageMetadata && toUsage(response.usageMetadata);
      return {
        id: response.responseId ?? completionId(),
        object: 'chat.completion',
        created: nowSeconds(),
        model: response.modelVersion ?? target.model,
        choices,
        ...(usage && { usage }),
      };
    },
    streamDecoder(target: TargetRef): StreamDecoder {
      return geminiStreamDecoder(target);
    },
    embeddingsRequest(request: EmbeddingRequest, target: TargetRef): UpstreamRequest {
      const inputs: unknown[] = typeof request.input === 'string' ? [request.input] : request.input;
      if (!inputs.every((input): input is string => typeof input === 'string')) {
        throw new Error('Gemini embeds text only: send `input` as strings, not token ids.');
      }
      const model = `models/${modelId(target)}`;
      const requests = inputs.map((text) => ({
        model,
        content: { parts: [{ text }] },
        ...(request.dimensions !== undefined && { outputDimensionality: request.dimensions }),
      }));
      return { url: url(target, 'batchEmbedContents'), headers, body: JSON.stringify({ requests }) };
    },
    parseEmbeddings(body: unknown, target: TargetRef): EmbeddingResponse {
      const embeddings = (body as { embeddings?: Array<{ values?: number[] }> }).embeddings ?? [];
      // Always floats: this method does not see the request, so a client that asked for
      // base64 (the OpenAI SDKs do by default) is served by the embeddings egress encoding them.
      return {
        object: 'list',
        data: embeddings.map((embedding, index) => ({
          object: 'embedding',
          index,
          embedding: embedding.values ?? [],
        })),
        model: target.model,
        // batchEmbedContents reports no token counts; 0 means unknown, not free.
        usage: { prompt_tokens: 0, total_tokens: 0 },
      };
    },
    parseError(status, body, responseHeaders): UpstreamFailure {
      const error = googleError(body);
      const classified = classifyStatus(status);
      // Quota and capacity errors say so in `status` whatever the HTTP code.
      const congested = error?.status === 'RESOURCE_EXHAUSTED' || error?.status === 'UNAVAILABLE';
      return {
        status,
        message: typeof error?.message === 'string' ? error.message : errorMessage(body, `HTTP ${status}`),
        retryAfterMs: retryAfterMs(responseHeaders) ?? retryDelayMs(error?.details),
        retryable: classified.retryable || congested,
        overloaded: classified.overloaded || congested,
      };
    },
  };
}

function modelId(target: TargetRef): string {
  return target.model.replace(/^models\//, '');
}

function generateContentBody(request: ChatCompletionRequest, target: TargetRef): Record<string, unknown> {
  const { systemInstruction, contents } = toContents(request.messages);
  const body: Record<string, unknown> = { contents };
  if (systemInstruction.length) body.systemInstruction = { parts: systemInstruction };
  if (request.tools?.length) {
    body.tools = [
      {
        functionDeclarations: request.tools.map(({ function: fn }) => ({
          name: fn.name,
          ...(fn.description !== undefined && { description: fn.description }),
          // parametersJsonSchema takes JSON Schema as is (additionalProperties, $ref, anyOf, ...),
          // where `parameters` takes Google's OpenAPI subset and rejects what it does not know.
          // Rewriting schemas would be lossy; only the $schema marker, which carries no
          // constraint, is dropped.
          ...(fn.parameters && { parametersJsonSchema: withoutSchemaMarker(fn.parameters) }),
        })),
      },
    ];
    if (request.tool_choice !== undefined)
      body.toolConfig = { functionCallingConfig: callingConfig(request.tool_choice) };
  }
  const generationConfig = toGenerationConfig(request, target.params ?? {});
  if (Object.keys(generationConfig).length) body.generationConfig = generationConfig;
  for (const [key, value] of Object.entries(target.params ?? {}))
    if (REQUEST_FIELDS.has(key)) body[key] = value;
  return body;
}

function toContents(messages: ChatMessage[]): { systemInstruction: GeminiPart[]; contents: GeminiContent[] } {
  const systemInstruction: GeminiPart[] = [];
  const contents: GeminiContent[] = [];
  // Gemini names the function a result answers; OpenAI names the call: remember which is which.
  const toolNames = new Map<string, string>();
  // Gemini wants turns to alternate, so consecutive turns of one role become one.
  const append = (role: GeminiContent['role'], parts: GeminiPart[]) => {
    if (parts.length === 0) return;
    const last = contents.at(-1);
    if (last?.role === role) last.parts.push(...parts);
    else contents.push({ role, parts });
  };
  for (const message of messages) {
    switch (message.role) {
      case 'system':
      case 'developer':
        systemInstruction.push(...contentParts(message.content));
        break;
      case 'user':
        append('user', contentParts(message.content));
        break;
      case 'assistant': {
        const parts = message.content ? contentParts(message.content) : [];
        message.tool_calls?.forEach((call, position) => {
          toolNames.set(call.id, call.function.name);
          // Gemini signs the first call of each step; a history without one gets the stand-in.
          const thoughtSignature =
            (call as SignedToolCall).extra_content?.google?.thought_signature ??
            (position === 0 ? UNSIGNED : undefined);
          parts.push({
            functionCall: { name: call.function.name, args: parseArguments(call.function.arguments) },
            ...(thoughtSignature !== undefined && { thoughtSignature }),
          });
        });
        append('model', parts);
        break;
      }
      case 'tool':
        append('user', [
          functionResponse(toolNames.get(message.tool_call_id) ?? message.tool_call_id, message.content),
        ]);
        break;
      case 'function':
        append('user', [functionResponse(message.name, message.content ?? '')]);
        break;
    }
  }
  return { systemInstruction, contents };
}

function contentParts(content: unknown): GeminiPart[] {
  if (typeof content === 'string') return content ? [{ text: content }] : [];
  if (!Array.isArray(content)) return [];
  const parts: GeminiPart[] = [];
  for (const part of content as Array<{ type: string; [field: string]: unknown }>) {
    switch (part.type) {
      case 'text':
        if (part.text) parts.push({ text: part.text });
        break;
      case 'refusal':
        if (part.refusal) parts.push({ text: part.refusal });
        break;
      case 'image_url': {
        const address = (part.image_url as { url: string }).url;
        const inline = dataUrl(address);
        parts.push(
          inline
            ? { inlineData: inline }
            : { fileData: { fileUri: address, mimeType: guessMimeType(address) } },
        );
        break;
      }
      case 'input_audio': {
        const audio = part.input_audio as { data: string; format: string };
        parts.push({ inlineData: { mimeType: `audio/${audio.format}`, data: audio.data } });
        break;
      }
      case 'file': {
        const file = part.file as { file_data?: string; file_id?: string };
        const inline = file.file_data ? dataUrl(file.file_data) : undefined;
        if (!inline)
          throw new Error('Gemini cannot read OpenAI file ids: send the file inline as `file_data`.');
        parts.push({ inlineData: inline });
        break;
      }
    }
  }
  return parts;
}

/** `data:image/png;base64,...` → Gemini inlineData; undefined for any other address. */
function dataUrl(address: string): { mimeType: string; data: string } | undefined {
  if (!address.startsWith('data:')) return undefined;
  const comma = address.indexOf(',');
  if (comma < 0) return undefined;
  const meta = address.slice(5, comma).split(';');
  const payload = address.slice(comma + 1);
  return {
    mimeType: meta[0] || 'application/octet-stream',
    data: meta.includes('base64') ? payload : Buffer.from(decodeURIComponent(payload)).toString('base64'),
  };
}

const MIME_TYPES: Record<string, string> = {
  png: 'image/png',
  jpg: 'image/jpeg',
  jpeg: 'image/jpeg',
  gif: 'image/gif',
  webp: 'image/webp',
  heic: 'image/heic',
  heif: 'image/heif',
  pdf: 'application/pdf',
};

/** Gemini requires a MIME type for file URIs; OpenAI image URLs do not carry one. */
function guessMimeType(address: string): string {
  let path = address;
  try {
    path = new URL(address).pathname;
  } catch {
    // Not a URL Node can parse: read the extension from the raw text.
  }
  const extension = /\.([a-z0-9]+)$/i.exec(path)?.[1]?.toLowerCase();
  return (extension && MIME_TYPES[extension]) || 'image/jpeg';
}

/** Gemini takes arguments as an object; "" (no arguments) and unparseable text become {}. */
function parseArguments(text: string): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(text);
    if (value && typeof value === 'object' && !Array.isArray(value)) return value as Record<string, unknown>;
  } catch {
    // Not JSON.
  }
  return {};
}

function functionResponse(name: string, content: unknown): GeminiPart {
  const text = contentText(content);
  let value: unknown = text;
  try {
    const parsed: unknown = JSON.parse(text);
    if (parsed && typeof parsed === 'object') value = parsed;
  } catch {
    // Plain text result.
  }
  return { functionResponse: { name, response: { content: value } } };
}

function withoutSchemaMarker(schema: Record<string, unknown>): Record<string, unknown> {
  if (!('$schema' in schema)) return schema;
  const { $schema: _, ...rest } = schema;
  return rest;
}

function callingConfig(choice: NonNullable<ChatCompletionRequest['tool_choice']>): Record<string, unknown> {
  if (choice === 'none') return { mode: 'NONE' };
  if (choice === 'auto') return { mode: 'AUTO' };
  if (choice === 'required') return { mode: 'ANY' };
  return { mode: 'ANY', allowedFunctionNames: [choice.function.name] };
}

/** OpenAI generation fields (the route's params override the client's) → generationConfig. */
function toGenerationConfig(
  request: ChatCompletionRequest,
  params: Record<string, unknown>,
): Record<string, unknown> {
  const merged = { ...request, ...params } as ChatCompletionRequest;
  const config: Record<string, unknown> = {};
  const maxTokens = merged.max_completion_tokens ?? merged.max_tokens;
  if (maxTokens != null) config.maxOutputTokens = maxTokens;
  if (merged.temperature != null) config.temperature = merged.temperature;
  if (merged.top_p != null) config.topP = merged.top_p;
  if (merged.stop != null)
    config.stopSequences = typeof merged.stop === 'string' ? [merged.stop] : merged.stop;
  if (merged.n != null) config.candidateCount = merged.n;
  if (merged.seed != null) config.seed = merged.seed;
  if (typeof merged.presence_penalty === 'number') config.presencePenalty = merged.presence_penalty;
  if (typeof merged.frequency_penalty === 'number') config.frequencyPenalty = merged.frequency_penalty;
  const format = merged.response_format;
  if (format?.type === 'json_object') config.responseMimeType = 'application/json';
  if (format?.type === 'json_schema') {
    config.responseMimeType = 'application/json';
    // responseJsonSchema takes JSON Schema as is, like parametersJsonSchema above.
    if (format.json_schema.schema) config.responseJsonSchema = withoutSchemaMarker(format.json_schema.schema);
  }
  for (const [key, value] of Object.entries(params)) if (GENERATION_FIELDS.has(key)) config[key] = value;
  return config;
}

/** The answer's text, thoughts left out; undefined when there is none. */
function textOf(parts: ResponsePart[]): string | undefined {
  let text: string | undefined;
  for (const part of parts) {
    if (typeof part.text === 'string' && !part.thought) text = (text ?? '') + part.text;
  }
  return text;
}

/** Gemini calls carry no id (except in the Live API): make one the client can answer to. */
function toolCall(part: ResponsePart): SignedToolCall {
  const call: SignedToolCall = {
    id: part.functionCall?.id ?? `call_${randomBytes(12).toString('hex')}`,
    type: 'function',
    function: {
      name: part.functionCall?.name ?? '',
      arguments: JSON.stringify(part.functionCall?.args ?? {}),
    },
  };
  if (part.thoughtSignature) call.extra_content = { google: { thought_signature: part.thoughtSignature } };
  return call;
}

function finishReason(reason: string | undefined, calledTools: boolean): FinishReason | null {
  if (reason === undefined || reason === 'FINISH_REASON_UNSPECIFIED') return null;
  if (reason === 'MAX_TOKENS') return 'length';
  if (FILTERED.has(reason)) return 'content_filter';
  // STOP, and the rest (OTHER, LANGUAGE, MALFORMED_FUNCTION_CALL, ...) that have no OpenAI word.
  return calledTools ? 'tool_calls' : 'stop';
}

function toUsage(metadata: UsageMetadata): Usage {
  // Tool-use prompt tokens (search results and the like) are billed as input.
  const prompt = (metadata.promptTokenCount ?? 0) + (metadata.toolUsePromptTokenCount ?? 0);
  // Thinking is billed as output; candidatesTokenCount leaves it out.
  const completion = (metadata.candidatesTokenCount ?? 0) + (metadata.thoughtsTokenCount ?? 0);
  return {
    prompt_tokens: prompt,
    completion_tokens: completion,
    total_tokens: metadata.totalTokenCount ?? prompt + completion,
    ...(metadata.cachedContentTokenCount !== undefined && {
      prompt_tokens_details: { cached_tokens: metadata.cachedContentTokenCount },
    }),
    ...(metadata.thoughtsTokenCount !== undefined && {
      completion_tokens_details: { reasoning_tokens: metadata.thoughtsTokenCount },
    }),
  };
}

function completionId(): string {
  return `chatcmpl-${randomBytes(12).toString('hex')}`;
}

function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

/**
 * Every SSE event is a partial GenerateContentResponse. There is no [DONE]: the stream is
 * complete once every candidate seen has a finishReason, and the usage rides on that event.
 */
function geminiStreamDecoder(target: TargetRef): StreamDecoder {
  let finished = false;
  let id: string | undefined;
  let model = target.model;
  let usage: Usage | undefined;
  const created = nowSeconds();
  /** Per candidate index: tool calls emitted so far; presence means the role chunk went out. */
  const toolCounts = new Map<number, number>();
  const done = new Set<number>();

  return {
    get finished() {
      return finished;
    },
    decode(event: SseEvent): ChatCompletionChunk[] {
      if (!event.data.trim()) return [];
      const response = JSON.parse(event.data) as GeminiResponse & { error?: unknown };
      if (response.error) throw new Error(errorMessage(event.data, 'Gemini sent an error in the stream'));
      id ??= response.responseId ?? completionId();
      if (response.modelVersion) model = response.modelVersion;
      if (response.usageMetadata) usage = toUsage(response.usageMetadata);

      const chunks: ChatCompletionChunk[] = [];
      const emit = (choice: ChatCompletionChunk['choices'][number], extra?: { usage: Usage }) =>
        chunks.push({
          id: id!,
          object: 'chat.completion.chunk',
          created,
          model,
          choices: [choice],
          ...extra,
        });
      const start = (index: number) => {
        if (toolCounts.has(index)) return;
        toolCounts.set(index, 0);
        emit({ index, delta: { role: 'assistant', content: '' }, finish_reason: null });
      };

      const candidates = response.candidates ?? [];
      candidates.forEach((candidate, position) => {
        const index = candidate.index ?? position;
        start(index);
        const parts = candidate.content?.parts ?? [];
        const text = textOf(parts);
        if (text) emit({ index, delta: { content: text }, finish_reason: null });
        const calls: ToolCallDelta[] = [];
        for (const part of parts) {
          if (!part.functionCall) continue;
          // Gemini sends each call whole, so one delta carries id, name and all arguments.
          const count = toolCounts.get(index) ?? 0;
          toolCounts.set(index, count + 1);
          calls.push({ index: count, ...toolCall(part) });
        }
        if (calls.length) emit({ index, delta: { tool_calls: calls }, finish_reason: null });
        if (candidate.finishReason && !done.has(index)) {
          done.add(index);
          const reason = finishReason(candidate.finishReason, (toolCounts.get(index) ?? 0) > 0) ?? 'stop';
          emit({ index, delta: {}, finish_reason: reason });
        }
      });
      if (candidates.length === 0 && response.promptFeedback?.blockReason !== undefined && !done.has(0)) {
        start(0);
        done.add(0);
        emit({ index: 0, delta: {}, finish_reason: 'content_filter' });
      }

      if (!finished && done.size > 0 && [...toolCounts.keys()].every((index) => done.has(index))) {
        finished = true;
        if (usage) chunks.push({ id, object: 'chat.completion.chunk', created, model, choices: [], usage });
      }
      return chunks;
    },
  };
}

interface GoogleError {
  message?: unknown;
  status?: string;
  details?: unknown;
}

/** `{error:{code,message,status,details}}`, sometimes wrapped in an array. */
function googleError(body: string): GoogleError | undefined {
  try {
    let parsed: unknown = JSON.parse(body);
    if (Array.isArray(parsed)) parsed = parsed[0];
    const error = (parsed as { error?: unknown } | null)?.error;
    return error && typeof error === 'object' ? (error as GoogleError) : undefined;
  } catch {
    return undefined;
  }
}

/** A quota error's google.rpc.RetryInfo ("retryDelay": "37s"), when there is no Retry-After header. */
function retryDelayMs(details: unknown): number | undefined {
  if (!Array.isArray(details)) return undefined;
  for (const detail of details as Array<{ retryDelay?: unknown } | null>) {
    if (typeof detail?.retryDelay !== 'string') continue;
    const seconds = /^(\d+(?:\.\d+)?)s$/.exec(detail.retryDelay)?.[1];
    if (seconds !== undefined) return Number(seconds) * 1000;
  }
  return undefined;
}
