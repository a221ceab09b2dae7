import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { type ApiError, apiError, geminiErrorBody } from '../http/api-error.js';
import { frameworkError } from '../http/framework-error.js';
import { parseRequest } from '../http/wire/invalid-request.js';
import type { Completion, SimChoice, SimPrompt } from './completion.js';
import type { ModelProfile } from './config.js';
import { embed } from './embedding.js';
import { timingHeaders } from './openai-routes.js';
import { awaitGeneration, randomId, sendError, whenClosed } from './reply.js';
import type { Generation, Simulator } from './simulator.js';

/*
 * The Gemini API (v1beta) on the simulator: generateContent, streamGenerateContent,
 * embedContent, batchEmbedContents and the model list, in Google's JSON names and error shape.
 */

const schemaObject = z.record(z.string(), z.unknown());

const partSchema = z.strictObject({
  text: z.string().optional(),
  inlineData: z.strictObject({ mimeType: z.string(), data: z.string() }).optional(),
  fileData: z.strictObject({ mimeType: z.string().optional(), fileUri: z.string() }).optional(),
  functionCall: z
    .strictObject({ id: z.string().optional(), name: z.string().min(1), args: schemaObject.optional() })
    .optional(),
  functionResponse: z
    .looseObject({ id: z.string().optional(), name: z.string().min(1), response: schemaObject })
    .optional(),
  executableCode: z.unknown().optional(),
  codeExecutionResult: z.unknown().optional(),
  thought: z.boolean().optional(),
  thoughtSignature: z.string().optional(),
  videoMetadata: z.unknown().optional(),
  partMetadata: z.unknown().optional(),
  mediaResolution: z.unknown().optional(),
});

type Part = z.infer<typeof partSchema>;

/** The `data` oneof of a Part: exactly one of these is set. */
const DATA_FIELDS = [
  'text',
  'inlineData',
  'fileData',
  'functionCall',
  'functionResponse',
  'executableCode',
  'codeExecutionResult',
] as const;

const contentSchema = z.strictObject({
  role: z.enum(['user', 'model']).optional(),
  parts: z.array(partSchema).min(1),
});

const functionDeclarationSchema = z.strictObject({
  name: z
    .string()
    .regex(
      /^[A-Za-z_][A-Za-z0-9_.:-]{0,63}$/,
      'must start with a letter or underscore, then letters, digits, _ . : - (at most 64)',
    ),
  description: z.string().optional(),
  behavior: z.string().optional(),
  parameters: schemaObject.optional(),
  parametersJsonSchema: z.unknown().optional(),
  response: schemaObject.optional(),
  responseJsonSchema: z.unknown().optional(),
});

const toolSchema = z.strictObject({
  functionDeclarations: z.array(functionDeclarationSchema).optional(),
  googleSearch: z.unknown().optional(),
  googleSearchRetrieval: z.unknown().optional(),
  codeExecution: z.unknown().optional(),
  urlContext: z.unknown().optional(),
  computerUse: z.unknown().optional(),
  fileSearch: z.unknown().optional(),
  googleMaps: z.unknown().optional(),
});

const generationConfigSchema = z.strictObject({
  stopSequences: z.array(z.string()).max(5).optional(),
  // text/x.enum is left out: the simulator cannot answer in it, so it says so.
  responseMimeType: z.enum(['text/plain', 'application/json']).optional(),
  responseSchema: schemaObject.optional(),
  responseJsonSchema: z.unknown().optional(),
  responseModalities: z.array(z.string()).optional(),
  candidateCount: z.int().min(1).max(8).optional(),
  maxOutputTokens: z.int().min(1).optional(),
  temperature: z.number().min(0).max(2).optional(),
  topP: z.number().min(0).max(1).optional(),
  topK: z.int().min(1).optional(),
  seed: z.int().optional(),
  presencePenalty: z.number().optional(),
  frequencyPenalty: z.number().optional(),
  responseLogprobs: z.boolean().optional(),
  logprobs: z.int().optional(),
  enableEnhancedCivicAnswers: z.boolean().optional(),
  speechConfig: z.unknown().optional(),
  thinkingConfig: z.unknown().optional(),
  imageConfig: z.unknown().optional(),
  mediaResolution: z.unknown().optional(),
});

const generateContentSchema = z.strictObject({
  model: z.string().optional(),
  contents: z.array(contentSchema).min(1),
  systemInstruction: contentSchema.optional(),
  tools: z.array(toolSchema).optional(),
  toolConfig: z
    .strictObject({
      functionCallingConfig: z
        .strictObject({
          mode: z.enum(['MODE_UNSPECIFIED', 'AUTO', 'ANY', 'NONE', 'VALIDATED']).optional(),
          allowedFunctionNames: z.array(z.string()).optional(),
        })
        .optional(),
      retrievalConfig: z.unknown().optional(),
    })
    .optional(),
  generationConfig: generationConfigSchema.optional(),
  safetySettings: z.array(z.looseObject({ category: z.string(), threshold: z.string() })).optional(),
  cachedContent: z.string().optional(),
});

export type GenerateContentRequest = z.infer<typeof generateContentSchema>;

const embedContentSchema = z.strictObject({
  model: z.string().optional(),
  content: contentSchema,
  taskType: z.string().optional(),
  title: z.string().optional(),
  outputDimensionality: z.int().min(1).max(8192).optional(),
});

const batchEmbedSchema = z.strictObject({ requests: z.array(embedContentSchema).min(1).max(100) });

/** Fields whose values are free-form (arguments, schemas): their keys are the caller's, never renamed. */
const FREE_FORM = new Set([
  'args',
  'response',
  'parameters',
  'parametersJsonSchema',
  'responseSchema',
  'responseJsonSchema',
]);

/** Proto JSON takes snake_case names too (Google's curl examples use them): read both. */
function camelKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(camelKeys);
  if (!value || typeof value !== 'object') return value;
  // fromEntries defines own properties, so a "__proto__" key stays plain data.
  return Object.fromEntries(
    Object.entries(value).map(([key, field]) => {
      const name = key.replace(/_([a-z])/g, (_, letter: string) => letter.toUpperCase());
      return [name, FREE_FORM.has(name) ? field : camelKeys(field)];
    }),
  );
}

const invalid = (message: string, param: string | null = null): ApiError =>
  apiError('invalid_request', 400, message, { param, code: 'invalid_argument' });

/**
 * Gemini's `parameters` / `responseSchema` are an OpenAPI subset (type "OBJECT", `nullable`,
 * int64 bounds as strings): the JSON Schema the simulator generates values from.
 */
function openApiToJsonSchema(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(openApiToJsonSchema);
  if (!schema || typeof schema !== 'object') return schema;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(schema)) {
    if (key === 'type' && typeof value === 'string') out.type = value.toLowerCase();
    else if (key === 'properties' && value && typeof value === 'object') {
      out.properties = Object.fromEntries(
        Object.entries(value).map(([name, property]) => [name, openApiToJsonSchema(property)]),
      );
    } else if (/^(min|max)(Items|Length|Properties)$/.test(key) && typeof value === 'string') {
      out[key] = Number(value);
    } else if (key === 'items' || key === 'anyOf') out[key] = openApiToJsonSchema(value);
    else if (key !== 'nullable' && key !== 'propertyOrdering') out[key] = value;
  }
  if ((schema as { nullable?: unknown }).nullable === true && typeof out.type === 'string') {
    out.type = [out.type, 'null'];
  }
  return out;
}

function partText(part: Part): string {
  if (part.thought) return '';
  if (part.text !== undefined) return part.text;
  if (part.functionCall) return `${part.functionCall.name}(${JSON.stringify(part.functionCall.args ?? {})})`;
  if (part.functionResponse) return JSON.stringify(part.functionResponse.response);
  return '';
}

function contentText(parts: readonly Part[]): string {
  return parts
    .map(partText)
    .filter((text) => text !== '')
    .join('\n');
}

/** The checks Gemini makes on a conversation before it generates anything. */
function checkContents(body: GenerateContentRequest, reasoning: boolean): ApiError | undefined {
  const contents = [...(body.systemInstruction ? [body.systemInstruction] : []), ...body.contents];
  const offset = body.systemInstruction ? 1 : 0;
  for (const [c, content] of contents.entries()) {
    const at = c < offset ? 'systemInstruction' : `contents[${c - offset}]`;
    for (const [p, part] of content.parts.entries()) {
      const set = DATA_FIELDS.filter((field) => part[field] !== undefined).length;
      if (set !== 1) {
        return invalid(
          `${at}.parts[${p}]: a part holds exactly one of ${DATA_FIELDS.join(', ')} (found ${set}).`,
          `${at}.parts[${p}]`,
        );
      }
    }
  }
  const calls = (c: number) => body.contents[c]?.parts.filter((p) => p.functionCall).length ?? 0;
  for (const [c, content] of body.contents.entries()) {
    const responses = content.parts.filter((p) => p.functionResponse).length;
    if (responses === 0) continue;
    const previous = body.contents[c - 1];
    if (previous?.role !== 'model' || calls(c - 1) === 0) {
      return invalid(
        'Please ensure that function response turn comes immediately after a function call turn.',
        `contents[${c}]`,
      );
    }
    if (responses !== calls(c - 1)) {
      return invalid(
        'Please ensure that the number of function response parts is equal to the number of function call parts of the function call turn.',
        `contents[${c}]`,
      );
    }
  }
  if (!reasoning) return undefined;
  // Thinking models sign the first call of each step and, in the current turn (since the last
  // user text), reject a history that does not send the signature back.
  let turnStart = 0;
  body.contents.forEach((content, c) => {
    if (content.role !== 'model' && content.parts.some((p) => p.text !== undefined)) turnStart = c;
  });
  for (let c = turnStart; c < body.contents.length; c++) {
    const content = body.contents[c];
    if (content?.role !== 'model') continue;
    const first = content.parts.findIndex((p) => p.functionCall);
    if (first >= 0 && !content.parts[first]?.thoughtSignature) {
      return invalid(
        `Function call is missing a thought_signature in functionCall parts. This is required for tools to work correctly. Function call \`${content.parts[first]?.functionCall?.name}\`, position ${c + 1}. See https://ai.google.dev/gemini-api/docs/thought-signatures.`,
        `contents[${c}].parts[${first}]`,
      );
    }
  }
  return undefined;
}

/** The simulator's view of a generateContent request. */
export function geminiPrompt(
  model: string,
  body: GenerateContentRequest,
  reasoning = false,
): SimPrompt | ApiError {
  const problem = checkContents(body, reasoning);
  if (problem) return problem;
  const tools: Array<SimPrompt['tools'][number]> = [];
  for (const [t, tool] of (body.tools ?? []).entries()) {
    for (const [d, declaration] of (tool.functionDeclarations ?? []).entries()) {
      const at = `tools[${t}].functionDeclarations[${d}]`;
      if (declaration.parameters && declaration.parametersJsonSchema !== undefined) {
        return invalid(`${at}: set parameters or parametersJsonSchema, not both.`, at);
      }
      tools.push({
        name: declaration.name,
        description: declaration.description,
        parameters: declaration.parametersJsonSchema ?? openApiToJsonSchema(declaration.parameters),
      });
    }
  }

  const calling = body.toolConfig?.functionCallingConfig;
  const mode = calling?.mode === undefined || calling.mode === 'MODE_UNSPECIFIED' ? 'AUTO' : calling.mode;
  const allowed = calling?.allowedFunctionNames ?? [];
  const configAt = 'toolConfig.functionCallingConfig';
  if (allowed.length > 0 && mode !== 'ANY') {
    return invalid(`${configAt}.allowedFunctionNames may only be set when mode is ANY.`, configAt);
  }
  const unknown = allowed.find((name) => !tools.some((t) => t.name === name));
  if (unknown !== undefined) {
    return invalid(
      `${configAt}.allowedFunctionNames: '${unknown}' is not among the function declarations in tools.`,
      `${configAt}.allowedFunctionNames`,
    );
  }
  if (mode === 'ANY' && tools.length === 0) {
    return invalid(`${configAt}.mode ANY needs function declarations in tools.`, `${configAt}.mode`);
  }
  let toolChoice: SimPrompt['toolChoice'] = 'auto';
  if (tools.length === 0 || mode === 'NONE') toolChoice = 'none';
  else if (mode === 'ANY') toolChoice = allowed.length === 1 ? { name: allowed[0] as string } : 'required';

  const config = body.generationConfig ?? {};
  const hasSchema = config.responseSchema !== undefined || config.responseJsonSchema !== undefined;
  if (config.responseSchema !== undefined && config.responseJsonSchema !== undefined) {
    return invalid(
      'generationConfig: set responseSchema or responseJsonSchema, not both.',
      'generationConfig.responseJsonSchema',
    );
  }
  if (hasSchema && config.responseMimeType !== 'application/json') {
    return invalid(
      "generationConfig: a response schema needs responseMimeType 'application/json'.",
      'generationConfig.responseMimeType',
    );
  }
  let responseFormat: SimPrompt['responseFormat'] = { type: 'text' };
  if (config.responseMimeType === 'application/json') {
    const schema = config.responseJsonSchema ?? openApiToJsonSchema(config.responseSchema);
    responseFormat = schema === undefined ? { type: 'json_object' } : { type: 'json_schema', schema };
  }

  const messages: Array<{ role: string; text: string }> = [];
  if (body.systemInstruction)
    messages.push({ role: 'system', text: contentText(body.systemInstruction.parts) });
  for (const content of body.contents) {
    messages.push({
      role: content.role === 'model' ? 'assistant' : 'user',
      text: contentText(content.parts),
    });
  }
  const last = body.contents.at(-1);
  return {
    model,
    messages,
    tools: allowed.length > 1 ? tools.filter((t) => allowed.includes(t.name)) : tools,
    toolChoice,
    // Gemini has no switch for it: a model may call several functions in one turn.
    parallelToolCalls: true,
    answeringToolResults: last?.parts.some((p) => p.functionResponse !== undefined) ?? false,
    responseFormat,
    maxTokens: config.maxOutputTokens,
    stop: config.stopSequences ?? [],
    n: config.candidateCount ?? 1,
  };
}

const finishReasons: Record<SimChoice['finish'], string> = {
  stop: 'STOP',
  length: 'MAX_TOKENS',
  // Gemini ends a turn of function calls with STOP too.
  tool_calls: 'STOP',
};

export function geminiUsage(completion: Completion, cachedTokens: number) {
  return {
    promptTokenCount: completion.promptTokens,
    candidatesTokenCount: completion.completionTokens - completion.reasoningTokens,
    totalTokenCount: completion.promptTokens + completion.completionTokens,
    ...(cachedTokens > 0 && { cachedContentTokenCount: cachedTokens }),
    promptTokensDetails: [{ modality: 'TEXT', tokenCount: completion.promptTokens }],
    ...(completion.reasoningTokens > 0 && { thoughtsTokenCount: completion.reasoningTokens }),
  };
}

function functionCallPart(choice: SimChoice, call: number, signature: string | undefined) {
  const toolCall = choice.toolCalls[call] as SimChoice['toolCalls'][number];
  return {
    functionCall: { name: toolCall.name, args: JSON.parse(toolCall.arguments) as unknown },
    ...(call === 0 && signature !== undefined && { thoughtSignature: signature }),
  };
}

function candidateParts(choice: SimChoice, signature: string | undefined): unknown[] {
  if (choice.toolCalls.length === 0) return [{ text: choice.text }];
  return choice.toolCalls.map((_, call) => functionCallPart(choice, call, signature));
}

/** What a candidate streams at a visible decode step: a text piece, or a function call once it is whole. */
function stepParts(choice: SimChoice, step: number, signature: string | undefined): unknown[] {
  const emission = choice.emissions[step];
  if (!emission) return [];
  if (emission.kind === 'text') return [{ text: emission.text }];
  const next = choice.emissions[step + 1];
  if (next?.kind === 'tool-args' && next.call === emission.call) return [];
  return [functionCallPart(choice, emission.call, signature)];
}

/** Thinking models sign their function calls; the signature is opaque to clients. */
function thoughtSignature(profile: ModelProfile): string | undefined {
  return profile.reasoningTokens > 0 ? Buffer.from(randomId('sig', 48)).toString('base64') : undefined;
}

function fail(reply: FastifyReply, error: ApiError): FastifyReply {
  // Gemini says when to retry in a RetryInfo detail, not in a Retry-After header.
  const { 'retry-after': _, ...headers } = error.headers ?? {};
  return sendError(reply, { ...error, headers }, () => geminiErrorBody(error));
}

function modelNotFound(model: string, method: string): ApiError {
  return apiError(
    'not_found',
    404,
    `models/${model} is not found for API version v1beta, or is not supported for ${method}. Call ListModels to see the list of available models and their supported methods.`,
    { code: 'model_not_found' },
  );
}

function resolve(sim: Simulator, model: string, kind: ModelProfile['kind'], method: string) {
  const resolved = sim.resolveModel(model, kind);
  return resolved.ok ? resolved : { ok: false as const, error: modelNotFound(model, method) };
}

async function generateContent(
  sim: Simulator,
  request: FastifyRequest<{ Querystring: { alt?: string } }>,
  reply: FastifyReply,
  model: string,
  stream: boolean,
): Promise<unknown> {
  const method = stream ? 'streamGenerateContent' : 'generateContent';
  const parsed = parseRequest(generateContentSchema, camelKeys(request.body));
  if (!parsed.ok) return fail(reply, parsed.error);
  const resolved = resolve(sim, model, 'chat', method);
  if (!resolved.ok) return fail(reply, resolved.error);
  const profile = resolved.value;
  const prompt = geminiPrompt(model, parsed.data, profile.reasoningTokens > 0);
  if ('kind' in prompt) return fail(reply, prompt);
  const responseId = randomId('', 22);
  const signature = thoughtSignature(profile);
  const envelope = (candidates: unknown[], usage?: unknown) => ({
    candidates,
    ...(usage !== undefined && { usageMetadata: usage }),
    modelVersion: model,
    responseId,
  });

  if (!stream) {
    const { outcome, finished } = awaitGeneration(request, reply, (listener) =>
      sim.generate(prompt, profile, listener),
    );
    if (!outcome.ok) return fail(reply, outcome.error);
    const generation = outcome.value;
    if (!(await finished)) return reply.hijack();
    const { completion } = generation;
    return reply.headers(timingHeaders(generation)).send(
      envelope(
        completion.choices.map((choice, index) => ({
          content: { parts: candidateParts(choice, signature), role: 'model' },
          finishReason: finishReasons[choice.finish],
          index,
        })),
        geminiUsage(completion, generation.cachedTokens),
      ),
    );
  }

  // alt=sse streams Server-Sent Events; without it, Gemini streams one JSON array.
  const sse = request.query.alt === 'sse';
  const res = reply.raw;
  let written = 0;
  const write = (payload: unknown): void => {
    if (res.destroyed || res.writableEnded) return;
    const json = JSON.stringify(payload);
    res.write(sse ? `data: ${json}\r\n\r\n` : `${written === 0 ? '[' : ',\r\n'}${json}`);
    written++;
  };
  let generation: Generation | undefined;
  // The last decode step's parts ride in the final event, with finishReason and usage.
  let lastStep: unknown[][] = [];
  let done: () => void = () => {};
  const ended = new Promise<void>((resolve) => {
    done = resolve;
  });
  const outcome = sim.generate(prompt, profile, {
    onToken: (step) => {
      if (!generation) return;
      const { completion } = generation;
      const visible = step - completion.reasoningTokens;
      if (visible < 0) return;
      if (visible === 0) {
        reply.hijack();
        res.writeHead(200, {
          'content-type': sse ? 'text/event-stream' : 'application/json; charset=UTF-8',
          'cache-control': 'no-cache',
          'x-accel-buffering': 'no',
        });
        res.flushHeaders();
      }
      const parts = completion.choices.map((choice) => stepParts(choice, visible, signature));
      if (step === completion.decodeSteps - 1) {
        lastStep = parts;
        return;
      }
      const candidates = parts.flatMap((p, index) =>
        p.length > 0 ? [{ content: { parts: p, role: 'model' }, index }] : [],
      );
      if (candidates.length > 0) write(envelope(candidates));
    },
    onFinish: () => {
      if (!generation) return;
      const { completion } = generation;
      write(
        envelope(
          completion.choices.map((choice, index) => {
            const parts = lastStep[index] ?? [];
            return {
              content: { parts: parts.length > 0 ? parts : [{ text: '' }], role: 'model' },
              finishReason: finishReasons[choice.finish],
              index,
            };
          }),
          geminiUsage(completion, generation.cachedTokens),
        ),
      );
      if (!sse) res.write(']');
      res.end();
      done();
    },
    onCut: () => {
      res.destroy();
      request.raw.socket?.destroy();
      done();
    },
  });
  if (!outcome.ok) return fail(reply, outcome.error);
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

type EmbedRequest = z.infer<typeof embedContentSchema>;

/** Embeds each request's content; resolves undefined when the client left. */
async function embedAll(
  sim: Simulator,
  reply: FastifyReply,
  model: string,
  method: string,
  requests: readonly EmbedRequest[],
): Promise<{ values: number[] }[] | ApiError | undefined> {
  const qualified = `models/${model}`;
  const stray = requests.findIndex(
    (r) => r.model !== undefined && r.model.replace(/^models\//, '') !== model,
  );
  if (stray >= 0) {
    return invalid(
      `requests[${stray}].model: the model '${requests[stray]?.model}' does not match the request's model '${qualified}'.`,
      `requests[${stray}].model`,
    );
  }
  const resolved = resolve(sim, model, 'embedding', method);
  if (!resolved.ok) return resolved.error;
  const profile = resolved.value;
  const texts = requests.map((r) => contentText(r.content.parts));
  const dimensions = requests.map((r) => r.outputDimensionality ?? profile.embeddingDimensions);
  const batchDimensions = dimensions[0] ?? profile.embeddingDimensions;
  let settle: (vectors: Float32Array[] | undefined) => void = () => {};
  const result = new Promise<Float32Array[] | undefined>((resolve) => {
    settle = resolve;
  });
  const outcome = sim.embed(texts, profile, batchDimensions, (vectors) => settle(vectors));
  if (!outcome.ok) return outcome.error;
  const { cancel } = outcome.value;
  void whenClosed(reply, () => {
    cancel();
    settle(undefined);
  });
  const vectors = await result;
  if (!vectors) return undefined;
  return vectors.map((vector, i) => {
    const size = dimensions[i] ?? batchDimensions;
    // A request asking for another size than the batch's is embedded at its own size.
    const own = size === batchDimensions ? vector : embed(texts[i] ?? '', size, sim.config.seed);
    return { values: Array.from(own) };
  });
}

async function embedContents(
  sim: Simulator,
  request: FastifyRequest,
  reply: FastifyReply,
  model: string,
  batch: boolean,
): Promise<unknown> {
  const method = batch ? 'batchEmbedContents' : 'embedContent';
  const body = camelKeys(request.body);
  let requests: EmbedRequest[];
  if (batch) {
    const parsed = parseRequest(batchEmbedSchema, body);
    if (!parsed.ok) return fail(reply, parsed.error);
    requests = parsed.data.requests;
  } else {
    const parsed = parseRequest(embedContentSchema, body);
    if (!parsed.ok) return fail(reply, parsed.error);
    requests = [parsed.data];
  }
  const embeddings = await embedAll(sim, reply, model, method, requests);
  if (embeddings === undefined) return reply.hijack();
  if ('kind' in embeddings) return fail(reply, embeddings);
  return reply.send(batch ? { embeddings } : { embedding: embeddings[0] });
}

function modelInfo(profile: ModelProfile) {
  const chat = profile.kind === 'chat';
  return {
    name: `models/${profile.name}`,
    version: '001',
    displayName: profile.name,
    description: `A simulated ${chat ? 'chat' : 'embedding'} model (sluice sim).`,
    inputTokenLimit: profile.contextWindow,
    outputTokenLimit: chat ? profile.contextWindow : 1,
    supportedGenerationMethods: chat
      ? ['generateContent', 'streamGenerateContent']
      : ['embedContent', 'batchEmbedContents'],
    ...(chat && {
      temperature: 1,
      topP: 0.95,
      topK: 64,
      maxTemperature: 2,
      thinking: profile.reasoningTokens > 0,
    }),
  };
}

/** `{model}:{method}` from the path tail after /v1beta/models/. */
function modelAndMethod(tail: string): { model: string; method: string } {
  const colon = tail.lastIndexOf(':');
  return colon < 0
    ? { model: tail, method: '' }
    : { model: tail.slice(0, colon), method: tail.slice(colon + 1) };
}

function unknownUrl(request: FastifyRequest): ApiError {
  return apiError(
    'not_found',
    404,
    `Unknown request URL: ${request.method} ${request.url.split('?')[0]}. The Gemini API here serves /v1beta/models and /v1beta/models/{model}:generateContent, :streamGenerateContent, :embedContent, :batchEmbedContents.`,
    { code: 'unknown_url' },
  );
}

export function registerGeminiRoutes(app: FastifyInstance, sim: Simulator): void {
  void app.register(
    async (scope) => {
      // Errors from body parsing (bad JSON, size, content type) and unknown paths, in Google's shape.
      scope.setErrorHandler((error: FastifyError, request, reply) => {
        const apiErr = frameworkError(error);
        if (apiErr.status >= 500) request.log.error({ err: error }, 'simulator error');
        return fail(reply, apiErr);
      });
      scope.setNotFoundHandler((request, reply) => fail(reply, unknownUrl(request)));
      // Like Google, check the key before reading the body; any value is accepted.
      scope.addHook('onRequest', async (request, reply) => {
        const query = request.query as { key?: unknown };
        if (request.headers['x-goog-api-key'] || query.key) return;
        return fail(
          reply,
          apiError(
            'authentication',
            401,
            'Missing API key: send it in the x-goog-api-key header (or the key query parameter). The simulator accepts any value.',
            { code: 'api_key_missing' },
          ),
        );
      });

      scope.get('/models', async () => ({ models: sim.models.map(modelInfo) }));
      scope.get<{ Params: { '*': string } }>('/models/*', async (request, reply) => {
        const profile = sim.models.find((m) => m.name === request.params['*']);
        if (!profile) return fail(reply, modelNotFound(request.params['*'], 'get'));
        return modelInfo(profile);
      });
      scope.post<{ Params: { '*': string }; Querystring: { alt?: string } }>(
        '/models/*',
        (request, reply) => {
          const { model, method } = modelAndMethod(request.params['*']);
          switch (method) {
            case 'generateContent':
              return generateContent(sim, request, reply, model, false);
            case 'streamGenerateContent':
              return generateContent(sim, request, reply, model, true);
            case 'embedContent':
              return embedContents(sim, request, reply, model, false);
            case 'batchEmbedContents':
              return embedContents(sim, request, reply, model, true);
            default:
              return fail(reply, unknownUrl(request));
          }
        },
      );
    },
    { prefix: '/v1beta' },
  );
}
