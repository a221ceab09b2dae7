import { Ajv2020 } from 'ajv/dist/2020.js';
import type {
  ChatCompletionFunctionTool,
  ChatCompletionMessageFunctionToolCall,
} from 'openai/resources/chat/completions';
import { expect } from 'vitest';

// Tools, their validators and small helpers shared by the OpenAI SDK tests of the simulator and the gateway.

export const ajv = new Ajv2020({ allErrors: true, strict: false });

export const weatherTool: ChatCompletionFunctionTool = {
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'The current weather in a city.',
    parameters: {
      type: 'object',
      properties: {
        city: { type: 'string' },
        unit: { type: 'string', enum: ['celsius', 'fahrenheit'] },
      },
      required: ['city', 'unit'],
      additionalProperties: false,
    },
  },
};
export const timeTool: ChatCompletionFunctionTool = {
  type: 'function',
  function: {
    name: 'get_time',
    description: 'The local time in a time zone.',
    parameters: {
      type: 'object',
      properties: {
        timezone: { type: 'string' },
        hour24: { type: 'boolean' },
        offsetMinutes: { type: 'integer', minimum: -720, maximum: 840 },
      },
      required: ['timezone', 'hour24'],
      additionalProperties: false,
    },
  },
};
export const tools = [weatherTool, timeTool];
const validators = new Map(tools.map((t) => [t.function.name, ajv.compile(t.function.parameters ?? {})]));

export function expectValidArguments(call: { function: { name: string; arguments: string } }): void {
  const validate = validators.get(call.function.name);
  expect(validate, `a tool named ${call.function.name}`).toBeDefined();
  const args: unknown = JSON.parse(call.function.arguments);
  expect(validate?.(args), `${call.function.arguments}: ${ajv.errorsText(validate?.errors)}`).toBe(true);
}

export function functionCalls(
  calls: readonly { type: string }[] | undefined,
): ChatCompletionMessageFunctionToolCall[] {
  return (calls ?? []).filter((c): c is ChatCompletionMessageFunctionToolCall => c.type === 'function');
}

/** The error a request fails with; fails the test if it succeeds. */
export async function rejection(request: Promise<unknown>): Promise<unknown> {
  return request.then(
    (value) => expect.unreachable(`expected an error, got ${JSON.stringify(value)}`),
    (error: unknown) => error,
  );
}

export function norm(vector: readonly number[]): number {
  return Math.sqrt(vector.reduce((sum, x) => sum + x * x, 0));
}
