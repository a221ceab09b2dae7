import { describe, expect, it } from 'vitest';
import { replayChunks } from '../../../src/cache/replay.js';
import { StreamRecorder } from '../../../src/cache/stream-recorder.js';
import type { ChatCompletion, ChatCompletionChunk } from '../../../src/providers/canonical.js';

const chunk = (
  delta: ChatCompletionChunk['choices'][number]['delta'],
  finish: ChatCompletionChunk['choices'][number]['finish_reason'] = null,
): ChatCompletionChunk => ({
  id: 'chatcmpl-1',
  object: 'chat.completion.chunk',
  created: 1_700_000_000,
  model: 'sim-fast',
  system_fingerprint: 'fp_1',
  choices: [{ index: 0, delta, finish_reason: finish }],
});
const usage = { prompt_tokens: 9, completion_tokens: 4, total_tokens: 13 };
const usageChunk: ChatCompletionChunk = { ...chunk({}), choices: [], usage };

function record(chunks: ChatCompletionChunk[]): ChatCompletion | undefined {
  const recorder = new StreamRecorder();
  for (const c of chunks) recorder.add(c);
  return recorder.completion();
}

describe('stream recorder', () => {
  it('joins text deltas into the message the client read, byte for byte', () => {
    const completion = record([
      chunk({ role: 'assistant', content: '' }),
      chunk({ content: 'Sluice ' }),
      chunk({ content: 'gates — ' }),
      chunk({ content: 'tidal 🌊' }),
      chunk({}, 'stop'),
      usageChunk,
    ]);
    expect(completion).toEqual({
      id: 'chatcmpl-1',
      object: 'chat.completion',
      created: 1_700_000_000,
      model: 'sim-fast',
      choices: [
        {
          index: 0,
          message: { role: 'assistant', content: 'Sluice gates — tidal 🌊', refusal: null },
          finish_reason: 'stop',
        },
      ],
      usage,
      system_fingerprint: 'fp_1',
    });
  });

  it('joins tool call arguments by index, with their id and name, and provider extras like reasoning', () => {
    const completion = record([
      chunk({ role: 'assistant', reasoning_content: 'Need ' }),
      chunk({ reasoning_content: 'weather.' }),
      chunk({
        tool_calls: [
          { index: 0, id: 'call_a', type: 'function', function: { name: 'get_weather', arguments: '' } },
        ],
      }),
      chunk({ tool_calls: [{ index: 0, function: { arguments: '{"city":' } }] }),
      chunk({
        tool_calls: [
          { index: 1, id: 'call_b', type: 'function', function: { name: 'get_time', arguments: '{}' } },
        ],
      }),
      chunk({ tool_calls: [{ index: 0, function: { arguments: '"Lyon"}' } }] }),
      chunk({}, 'tool_calls'),
    ]);
    expect(completion?.choices[0]?.message).toEqual({
      role: 'assistant',
      reasoning_content: 'Need weather.',
      content: null,
      refusal: null,
      tool_calls: [
        { id: 'call_a', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Lyon"}' } },
        { id: 'call_b', type: 'function', function: { name: 'get_time', arguments: '{}' } },
      ],
    });
  });

  it('has no completion until the answer has finished', () => {
    expect(record([chunk({ role: 'assistant', content: 'Half an ans' })])).toBeUndefined();
    expect(record([])).toBeUndefined();
  });
});

describe('replayed stream', () => {
  it('records back into the completion it was replayed from', () => {
    const stored: ChatCompletion = {
      id: 'chatcmpl-2',
      object: 'chat.completion',
      created: 1_700_000_001,
      model: 'sim-smart',
      choices: [
        {
          index: 0,
          message: {
            role: 'assistant',
            content: 'Calling two tools.',
            refusal: null,
            tool_calls: [
              {
                id: 'call_a',
                type: 'function',
                function: { name: 'get_weather', arguments: '{"city":"Lyon"}' },
              },
              { id: 'call_b', type: 'function', function: { name: 'get_time', arguments: '{}' } },
            ],
          },
          finish_reason: 'tool_calls',
          stop_reason: 'END',
        },
      ],
      usage,
      system_fingerprint: 'fp_2',
    };
    const chunks = replayChunks(stored);
    expect(chunks.at(-1)).toMatchObject({ choices: [], usage });
    expect(record(chunks)).toEqual(stored);
  });
});
