import type { ContentBlock, Tool, ToolUseBlock } from '@anthropic-ai/sdk/resources/messages';
import { expect } from 'vitest';
import { ajv, tools as openAITools } from './openai-fixtures.js';

// The same tools as openai-fixtures.ts in Anthropic's shape, and small helpers shared by the
// Anthropic SDK tests of the simulator and the gateway.

export const tools: Tool[] = openAITools.map((t) => ({
  name: t.function.name,
  description: t.function.description,
  input_schema: t.function.parameters as Tool['input_schema'],
}));
const validators = new Map(tools.map((t) => [t.name, ajv.compile(t.input_schema)]));

export function expectValidInput(block: Pick<ToolUseBlock, 'name' | 'input'>): void {
  const validate = validators.get(block.name);
  expect(validate, `a tool named ${block.name}`).toBeDefined();
  expect(validate?.(block.input), `${JSON.stringify(block.input)}: ${ajv.errorsText(validate?.errors)}`).toBe(
    true,
  );
}

export function toolUses(content: readonly ContentBlock[]): ToolUseBlock[] {
  return content.filter((b): b is ToolUseBlock => b.type === 'tool_use');
}

export function textOf(content: readonly ContentBlock[]): string {
  return content.map((b) => (b.type === 'text' ? b.text : '')).join('');
}

/** Event names of a raw SSE body, checking each `data` carries the same `type`. */
export function sseEventNames(body: string): string[] {
  return body
    .split('\n\n')
    .filter((frame) => frame.trim() !== '')
    .map((frame) => {
      const event = /^event: (.+)$/m.exec(frame)?.[1];
      const data = /^data: (.+)$/m.exec(frame)?.[1];
      expect(JSON.parse(data ?? 'null')).toMatchObject({ type: event });
      return event ?? '';
    });
}
