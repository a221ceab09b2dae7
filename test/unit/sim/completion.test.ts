import { describe, expect, it } from 'vitest';
import {
  countPromptTokens,
  planCompletion,
  rememberedPlanner,
  type SimPrompt,
} from '../../../src/sim/completion.js';
import { modelProfileSchema } from '../../../src/sim/config.js';
import { countTokens } from '../../../src/sim/tokens.js';

const profile = modelProfileSchema.parse({ name: 'm', outputTokens: { mean: 40, spread: 0.5 } });

const prompt = (overrides: Partial<SimPrompt> = {}): SimPrompt => ({
  model: 'm',
  messages: [{ role: 'user', text: 'Tell me about queues.' }],
  tools: [],
  toolChoice: 'none',
  parallelToolCalls: true,
  answeringToolResults: false,
  responseFormat: { type: 'text' },
  stop: [],
  n: 1,
  ...overrides,
});

const weatherTool = {
  name: 'get_weather',
  parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
};
const timeTool = {
  name: 'get_time',
  parameters: { type: 'object', properties: { zone: { type: 'string' } } },
};

describe('planCompletion', () => {
  it('answers the same request the same way under the same seed, and differently under another', () => {
    const a = planCompletion(prompt(), profile, 1);
    const b = planCompletion(prompt(), profile, 1);
    const c = planCompletion(prompt(), profile, 2);
    expect(a.choices[0]?.text).toBe(b.choices[0]?.text);
    expect(a.choices[0]?.text).not.toBe(c.choices[0]?.text);
  });

  it('counts completion tokens with the real tokenizer and streams pieces that join to the text', () => {
    const plan = planCompletion(prompt(), profile, 7);
    const choice = plan.choices[0]!;
    expect(plan.completionTokens).toBe(countTokens(choice.text));
    expect(choice.emissions.map((e) => (e.kind === 'text' ? e.text : '')).join('')).toBe(choice.text);
    expect(choice.tokens).toBeGreaterThanOrEqual(20);
    expect(choice.tokens).toBeLessThanOrEqual(60);
  });

  it('counts prompt tokens as message text plus framing', () => {
    const p = prompt();
    expect(countPromptTokens(p)).toBe(3 + 3 + countTokens('Tell me about queues.'));
  });

  it('stops at max tokens with finish "length"', () => {
    const plan = planCompletion(prompt({ maxTokens: 5 }), profile, 1);
    expect(plan.choices[0]?.finish).toBe('length');
    expect(plan.completionTokens).toBe(5);
  });

  it('cuts the text before the earliest stop sequence', () => {
    const full = planCompletion(prompt(), profile, 1).choices[0]!.text;
    const word = full.split(' ')[3]!;
    const stopped = planCompletion(prompt({ stop: ['zzz-never', ` ${word}`] }), profile, 1).choices[0]!;
    expect(stopped.text).toBe(full.slice(0, full.indexOf(` ${word}`)));
    expect(stopped.stopSequence).toBe(` ${word}`);
    expect(stopped.finish).toBe('stop');
  });

  it('gives n different choices', () => {
    const plan = planCompletion(prompt({ n: 3 }), profile, 1);
    expect(new Set(plan.choices.map((c) => c.text)).size).toBe(3);
    expect(plan.completionTokens).toBe(plan.choices.reduce((s, c) => s + c.tokens, 0));
  });

  it('solves arithmetic exactly when its wrong-answer rate is zero', () => {
    const plan = planCompletion(
      prompt({ messages: [{ role: 'user', text: 'What is 17 * 3?' }] }),
      profile,
      1,
    );
    expect(plan.choices[0]?.text).toBe('The answer is 51.');
  });

  it('answers some arithmetic wrongly at its wrong-answer rate', () => {
    const sloppy = { ...profile, quality: { invalidJsonRate: 0, wrongAnswerRate: 0.5 } };
    let wrong = 0;
    for (let i = 0; i < 100; i++) {
      const text = planCompletion(
        prompt({ messages: [{ role: 'user', text: `What is ${i} + 1?` }] }),
        sloppy,
        1,
      ).choices[0]?.text;
      if (text !== `The answer is ${i + 1}.`) wrong++;
    }
    expect(wrong).toBeGreaterThan(25);
    expect(wrong).toBeLessThan(75);
  });

  it('echoes "Repeat after me"', () => {
    const plan = planCompletion(
      prompt({ messages: [{ role: 'user', text: 'Repeat after me: the tide is out' }] }),
      profile,
      1,
    );
    expect(plan.choices[0]?.text).toBe('the tide is out');
  });

  it('calls the tools named in the question, in parallel unless told not to', () => {
    const ask = [{ role: 'user', text: 'Use get_time and get_weather for Paris.' }];
    const both = planCompletion(
      prompt({ messages: ask, tools: [weatherTool, timeTool], toolChoice: 'auto' }),
      profile,
      1,
    ).choices[0]!;
    expect(both.finish).toBe('tool_calls');
    expect(both.toolCalls.map((c) => c.name)).toEqual(['get_weather', 'get_time']);
    expect(new Set(both.toolCalls.map((c) => c.id)).size).toBe(2);
    expect(JSON.parse(both.toolCalls[0]!.arguments)).toHaveProperty('city');
    const one = planCompletion(
      prompt({ messages: ask, tools: [weatherTool, timeTool], toolChoice: 'auto', parallelToolCalls: false }),
      profile,
      1,
    ).choices[0]!;
    expect(one.toolCalls).toHaveLength(1);
  });

  it('answers in text once tool results are in, or when tools are switched off', () => {
    const tools = [weatherTool];
    const after = planCompletion(
      prompt({ tools, toolChoice: 'auto', answeringToolResults: true }),
      profile,
      1,
    );
    expect(after.choices[0]?.finish).toBe('stop');
    expect(after.choices[0]?.text).toMatch(/^Based on the tool results/);
    const none = planCompletion(prompt({ tools, toolChoice: 'none' }), profile, 1);
    expect(none.choices[0]?.toolCalls).toHaveLength(0);
  });

  it('forces the named tool', () => {
    const plan = planCompletion(
      prompt({ tools: [weatherTool, timeTool], toolChoice: { name: 'get_time' } }),
      profile,
      1,
    );
    expect(plan.choices[0]?.toolCalls.map((c) => c.name)).toEqual(['get_time']);
  });

  it('returns JSON matching the schema, and breaks it at the invalid-JSON rate', () => {
    const schema = { type: 'object', properties: { score: { type: 'integer' } }, required: ['score'] };
    const good = planCompletion(prompt({ responseFormat: { type: 'json_schema', schema } }), profile, 1);
    expect(Number.isInteger(JSON.parse(good.choices[0]!.text).score)).toBe(true);
    const broken = { ...profile, quality: { invalidJsonRate: 1, wrongAnswerRate: 0 } };
    const bad = planCompletion(prompt({ responseFormat: { type: 'json_schema', schema } }), broken, 1);
    expect(() => JSON.parse(bad.choices[0]!.text)).toThrow();
  });

  it('decodes hidden reasoning tokens before the answer', () => {
    const reasoner = { ...profile, reasoningTokens: 30 };
    const plan = planCompletion(prompt(), reasoner, 1);
    expect(plan.reasoningTokens).toBe(30);
    expect(plan.decodeSteps).toBe(30 + plan.choices[0]!.emissions.length);
    expect(plan.completionTokens).toBe(30 + plan.choices[0]!.tokens);
  });
});

describe('rememberedPlanner', () => {
  it('plans a prompt as planCompletion does, once, and shares the frozen plan', () => {
    const plan = rememberedPlanner(1);
    const first = plan(prompt(), profile);
    expect(first).toEqual(planCompletion(prompt(), profile, 1));
    expect(plan(prompt(), profile)).toBe(first);
    expect(Object.isFrozen(first.choices[0]?.emissions)).toBe(true);
    expect(() => {
      (first.choices as SimChoiceList).push(first.choices[0]!);
    }).toThrow(TypeError);
  });

  it('plans every field of the prompt apart: another stop, limit or profile is another plan', () => {
    const plan = rememberedPlanner(1);
    const base = plan(prompt(), profile);
    expect(plan(prompt({ maxTokens: 5 }), profile).choices[0]?.finish).toBe('length');
    expect(plan(prompt({ n: 2 }), profile).choices).toHaveLength(2);
    const other = modelProfileSchema.parse({
      name: 'm',
      outputTokens: { mean: 40, spread: 0.5 },
      reasoningTokens: 30,
    });
    expect(plan(prompt(), other).reasoningTokens).toBe(30);
    expect(plan(prompt(), profile)).toBe(base);
  });

  it('plans long prompts afresh rather than remember their text', () => {
    const plan = rememberedPlanner(1);
    const long = prompt({ messages: [{ role: 'user', text: 'queue '.repeat(1000) }] });
    const first = plan(long, profile);
    expect(plan(long, profile)).not.toBe(first);
    expect(plan(long, profile)).toEqual(first);
  });
});

type SimChoiceList = Array<ReturnType<typeof planCompletion>['choices'][number]>;
