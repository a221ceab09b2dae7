import type { ModelProfile } from './config.js';
import { generateJsonValue } from './json-value.js';
import { createRng, hashSeed, type Rng } from './rng.js';
import { countTokens, tokenPieces, truncateToTokens } from './tokens.js';

/** A request as the simulator sees it, whichever wire format it came in. */
export interface SimPrompt {
  model: string;
  messages: ReadonlyArray<{ role: string; text: string }>;
  tools: ReadonlyArray<{ name: string; description?: string; parameters?: unknown }>;
  toolChoice: 'auto' | 'none' | 'required' | { name: string };
  parallelToolCalls: boolean;
  /** The conversation ends with tool results, so the model answers in text. */
  answeringToolResults: boolean;
  responseFormat: { type: 'text' } | { type: 'json_object' } | { type: 'json_schema'; schema?: unknown };
  maxTokens?: number;
  stop: readonly string[];
  n: number;
}

/** One step of a choice's stream: a text piece, the start of a tool call, or a piece of its arguments. */
export type Emission =
  | { kind: 'text'; text: string }
  | { kind: 'tool-start'; call: number; id: string; name: string }
  | { kind: 'tool-args'; call: number; text: string };

export interface SimToolCall {
  /** 24 letters and digits; wire formats add their prefix ("call_", "toolu_"). */
  id: string;
  name: string;
  arguments: string;
}

export interface SimChoice {
  text: string;
  toolCalls: SimToolCall[];
  finish: 'stop' | 'length' | 'tool_calls';
  /** The stop sequence that ended the text, if one did. */
  stopSequence?: string;
  emissions: Emission[];
  tokens: number;
}

export interface Completion {
  promptTokens: number;
  reasoningTokens: number;
  completionTokens: number;
  choices: SimChoice[];
  /** Decode steps: hidden reasoning first, then the longest choice. */
  decodeSteps: number;
}

const words = `the a of to and in for on with as by at from about system model data request token latency
cost stream route target budget cache queue limit signal error retry window batch slot prompt answer
value result quality version rollout review agent tool call plan state event metric trace region cluster
fast slow steady careful simple clear useful small large early late new old first next last good better
measure check build keep send read write learn serve route choose balance shed wait return explain compare
because while when where which that this these those it they we you our your their each every some many`
  .split(/\s+/)
  .filter(Boolean);

/** Prompt tokens: each message's text plus 3 framing tokens, 3 to prime the reply, and the tool definitions. */
export function countPromptTokens(prompt: Pick<SimPrompt, 'messages' | 'tools'>): number {
  let total = 3;
  for (const m of prompt.messages) total += 3 + countTokens(m.text);
  if (prompt.tools.length > 0) total += countTokens(JSON.stringify(prompt.tools));
  return total;
}

/** Decides deterministically what the model "says" for this prompt under this simulator seed. */
export function planCompletion(prompt: SimPrompt, profile: ModelProfile, seed: number): Completion {
  const base = hashSeed(
    seed,
    prompt.model,
    prompt.messages.map((m) => `${m.role}:${m.text}`).join('\u0000'),
    prompt.tools.map((t) => t.name).join(','),
    prompt.responseFormat.type,
  );
  const choices: SimChoice[] = [];
  for (let i = 0; i < prompt.n; i++) choices.push(planChoice(prompt, profile, createRng(hashSeed(base, i))));
  const reasoningTokens = profile.reasoningTokens;
  const longest = Math.max(0, ...choices.map((c) => c.emissions.length));
  const visibleTokens = choices.reduce((sum, c) => sum + c.tokens, 0);
  return {
    promptTokens: countPromptTokens(prompt),
    reasoningTokens,
    completionTokens: visibleTokens + reasoningTokens,
    choices,
    decodeSteps: reasoningTokens + Math.max(1, longest),
  };
}

/** Prompts whose JSON is longer than this are planned afresh: remembering them would hold their text. */
const MEMO_MAX_KEY_CHARS = 4096;
/** Plans remembered per profile before the memory starts over. */
const MEMO_MAX_PLANS = 1000;

/**
 * `planCompletion` for one simulator, remembered. A plan is a pure function of the prompt, the
 * profile and the seed, and tokenizing its answer is most of what a request costs the simulator,
 * which shares a core with the benchmark's load generator: a load test that repeats its prompts
 * plans each once. Plans are frozen, since every request with that prompt shares one.
 */
export function rememberedPlanner(seed: number): (prompt: SimPrompt, profile: ModelProfile) => Completion {
  const memo = new Map<ModelProfile, Map<string, Completion>>();
  return (prompt, profile) => {
    const key = JSON.stringify(prompt);
    if (key.length > MEMO_MAX_KEY_CHARS) return planCompletion(prompt, profile, seed);
    let plans = memo.get(profile);
    if (!plans) {
      plans = new Map();
      memo.set(profile, plans);
    }
    let plan = plans.get(key);
    if (!plan) {
      plan = deepFreeze(planCompletion(prompt, profile, seed));
      if (plans.size >= MEMO_MAX_PLANS) plans.clear();
      plans.set(key, plan);
    }
    return plan;
  };
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const inner of Object.values(value)) deepFreeze(inner);
  }
  return value;
}

function planChoice(prompt: SimPrompt, profile: ModelProfile, rng: Rng): SimChoice {
  const calls = chooseToolCalls(prompt);
  if (calls.length > 0) return toolCallChoice(calls, rng);
  const natural = naturalLength(profile, rng);
  let text = answerText(prompt, profile, rng, natural);
  let finish: SimChoice['finish'] = 'stop';
  let stopSequence: string | undefined;
  const cut = earliestStop(text, prompt.stop);
  if (cut) {
    text = text.slice(0, cut.at);
    stopSequence = cut.sequence;
  }
  if (prompt.maxTokens !== undefined && countTokens(text) > prompt.maxTokens) {
    text = truncateToTokens(text, prompt.maxTokens);
    finish = 'length';
    stopSequence = undefined;
  }
  const emissions: Emission[] = tokenPieces(text).map((piece) => ({ kind: 'text', text: piece }));
  return { text, toolCalls: [], finish, stopSequence, emissions, tokens: countTokens(text) };
}

function naturalLength(profile: ModelProfile, rng: Rng): number {
  const { mean, spread } = profile.outputTokens;
  return Math.max(1, Math.round(mean * (1 + spread * (2 * rng.next() - 1))));
}

function lastUserText(prompt: SimPrompt): string {
  for (let i = prompt.messages.length - 1; i >= 0; i--) {
    const m = prompt.messages[i] as { role: string; text: string };
    if (m.role === 'user') return m.text;
  }
  return '';
}

function answerText(prompt: SimPrompt, profile: ModelProfile, rng: Rng, length: number): string {
  const format = prompt.responseFormat;
  if (format.type !== 'text') {
    const schema =
      format.type === 'json_schema' && format.schema
        ? format.schema
        : { type: 'object', properties: { answer: { type: 'string' }, confidence: { type: 'number' } } };
    const json = JSON.stringify(generateJsonValue(schema, rng));
    // A weaker model sometimes breaks the format: drop the closing characters.
    if (rng.next() < profile.quality.invalidJsonRate) return json.slice(0, Math.max(1, json.length - 2));
    return json;
  }
  const task = knownTask(lastUserText(prompt), rng, profile.quality.wrongAnswerRate);
  if (task !== undefined) return task;
  if (prompt.answeringToolResults) return `Based on the tool results: ${prose(rng, length)}`;
  return prose(rng, length);
}

/**
 * Questions with a checkable answer, so evals can measure a model's quality knob:
 * "What is 12 + 30?" and "Repeat after me: <text>".
 */
function knownTask(text: string, rng: Rng, wrongRate: number): string | undefined {
  const repeat = /repeat after me:\s*([\s\S]+)$/i.exec(text);
  if (repeat) return (repeat[1] as string).trim();
  const sum = /what is\s+(-?\d+)\s*([-+*x×])\s*(-?\d+)/i.exec(text);
  if (!sum) return undefined;
  const a = Number(sum[1]);
  const b = Number(sum[3]);
  const op = sum[2];
  let answer = op === '+' ? a + b : op === '-' ? a - b : a * b;
  if (rng.next() < wrongRate) answer += rng.int(1, 9) * (rng.next() < 0.5 ? -1 : 1);
  return `The answer is ${answer}.`;
}

/** Sentences of plain words, `length` tokens long. */
function prose(rng: Rng, length: number): string {
  let text = '';
  let tokens = 0;
  while (tokens < length) {
    const sentenceLength = rng.int(6, 14);
    const sentence: string[] = [];
    for (let i = 0; i < sentenceLength; i++) sentence.push(rng.pick(words));
    const first = sentence[0] as string;
    sentence[0] = first.charAt(0).toUpperCase() + first.slice(1);
    const piece = `${text ? ' ' : ''}${sentence.join(' ')}.`;
    text += piece;
    tokens += sentenceLength + 1;
  }
  return truncateToTokens(text, length);
}

function earliestStop(text: string, stops: readonly string[]): { at: number; sequence: string } | undefined {
  let best: { at: number; sequence: string } | undefined;
  for (const sequence of stops) {
    if (!sequence) continue;
    const at = text.indexOf(sequence);
    if (at >= 0 && (!best || at < best.at)) best = { at, sequence };
  }
  return best;
}

function chooseToolCalls(prompt: SimPrompt): SimPrompt['tools'] {
  const { tools, toolChoice } = prompt;
  if (tools.length === 0 || toolChoice === 'none') return [];
  if (typeof toolChoice === 'object') return tools.filter((t) => t.name === toolChoice.name).slice(0, 1);
  if (toolChoice === 'auto' && prompt.answeringToolResults) return [];
  const asked = lastUserText(prompt).toLowerCase();
  const mentioned = tools.filter((t) => asked.includes(t.name.toLowerCase()));
  const picked = mentioned.length > 0 ? mentioned : tools.slice(0, 1);
  return prompt.parallelToolCalls ? picked : picked.slice(0, 1);
}

const idAlphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

function toolCallChoice(calls: SimPrompt['tools'], rng: Rng): SimChoice {
  const toolCalls: SimToolCall[] = [];
  const emissions: Emission[] = [];
  let tokens = 0;
  calls.forEach((tool, call) => {
    let id = '';
    for (let i = 0; i < 24; i++) id += rng.pick([...idAlphabet]);
    const args = JSON.stringify(
      generateJsonValue(tool.parameters ?? { type: 'object', properties: {} }, rng),
    );
    toolCalls.push({ id, name: tool.name, arguments: args });
    emissions.push({ kind: 'tool-start', call, id, name: tool.name });
    for (const piece of tokenPieces(args)) emissions.push({ kind: 'tool-args', call, text: piece });
    // One token for the call's name, then its arguments.
    tokens += 1 + countTokens(args);
  });
  return { text: '', toolCalls, finish: 'tool_calls', emissions, tokens };
}
