import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import type { WideEvent } from '../../src/events/wide-event.js';
import { type RunningGateway, startGatewayWithSim } from '../support/gateway.js';
import { weatherTool } from '../support/openai-fixtures.js';

const SECRET_PROMPT =
  'I am jane.doe@example.com, my key is sk-proj-Zx9Yw8Vu7Ts6Rq5Po4Nm and my card 4111 1111 1111 1111.';

/** The wide event of one request; a stream records its event just after the client read its end. */
async function eventOf(gw: RunningGateway, id: string): Promise<WideEvent> {
  for (;;) {
    const event = gw.events.find((e) => e.id === id);
    if (event) return event;
    await sleep(5);
  }
}

async function call(
  gw: RunningGateway,
  path: string,
  body: object,
): Promise<{ id: string; status: number; text: string }> {
  const response = await fetch(`${gw.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return {
    id: response.headers.get('x-sluice-request-id')!,
    status: response.status,
    text: await response.text(),
  };
}

/** The content and tool calls a client reads from an OpenAI stream. */
function readStream(text: string): { content: string; toolCalls: { name: string; arguments: string }[] } {
  let content = '';
  const toolCalls: { name: string; arguments: string }[] = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith('data: ') || line === 'data: [DONE]') continue;
    const chunk = JSON.parse(line.slice(6)) as {
      choices: {
        delta: {
          content?: string;
          tool_calls?: { index: number; function?: { name?: string; arguments?: string } }[];
        };
      }[];
    };
    for (const choice of chunk.choices) {
      content += choice.delta.content ?? '';
      for (const delta of choice.delta.tool_calls ?? []) {
        toolCalls[delta.index] ??= { name: '', arguments: '' };
        toolCalls[delta.index]!.name += delta.function?.name ?? '';
        toolCalls[delta.index]!.arguments += delta.function?.arguments ?? '';
      }
    }
  }
  return { content, toolCalls };
}

describe('request and response bodies on the wide event', () => {
  describe('when events.bodies is not enabled (the default)', () => {
    let gw: RunningGateway;
    beforeAll(async () => {
      gw = await startGatewayWithSim();
    });
    afterAll(() => gw?.close());

    it('records neither body', async () => {
      const sent = await call(gw, '/v1/chat/completions', {
        model: 'sim-fast',
        messages: [{ role: 'user', content: SECRET_PROMPT }],
      });
      expect(sent.status).toBe(200);
      expect(await eventOf(gw, sent.id)).toMatchObject({ requestBody: null, responseBody: null });
    });
  });

  describe('when enabled', () => {
    let gw: RunningGateway;
    beforeAll(async () => {
      gw = await startGatewayWithSim({
        events: {
          sink: 'none',
          bodies: {
            enabled: true,
            maxBytes: 4096,
            redact: ['api-key', 'email', 'credit-card', { name: 'order', regex: 'ORD-\\d{6}' }],
          },
        },
      });
    });
    afterAll(() => gw?.close());

    it('records the request as sent and the answer as received, with secrets and personal data replaced', async () => {
      const request = {
        model: 'sim-fast',
        messages: [{ role: 'user', content: `${SECRET_PROMPT} About order ORD-123456.` }],
        max_tokens: 16,
      };
      const sent = await call(gw, '/v1/chat/completions', request);
      expect(sent.status).toBe(200);
      const event = await eventOf(gw, sent.id);
      expect(JSON.parse(event.requestBody!)).toEqual({
        ...request,
        messages: [
          {
            role: 'user',
            content:
              'I am [REDACTED:email], my key is [REDACTED:api-key] and my card [REDACTED:credit-card]. About order [REDACTED:order].',
          },
        ],
      });
      const answer = JSON.parse(sent.text) as { choices: { message: { content: string } }[] };
      expect(JSON.parse(event.responseBody!)).toEqual(answer);
      expect(event.requestBody).not.toContain('jane');
    });

    it('records a stream as the answer it adds up to: the text the client read', async () => {
      const sent = await call(gw, '/v1/chat/completions', {
        model: 'sim-fast',
        messages: [{ role: 'user', content: 'Tell me a story.' }],
        max_tokens: 40,
        stream: true,
      });
      expect(sent.status).toBe(200);
      const event = await eventOf(gw, sent.id);
      const recorded = JSON.parse(event.responseBody!) as {
        object: string;
        choices: { message: { content: string }; finish_reason: string }[];
      };
      expect(recorded.object).toBe('chat.completion');
      expect(recorded.choices[0]?.message.content).toBe(readStream(sent.text).content);
      expect(recorded.choices[0]?.message.content.length).toBeGreaterThan(0);
      expect(recorded.choices[0]?.finish_reason).toBe('length');
    });

    it('records the tool calls of a stream, reassembled from their deltas', async () => {
      const sent = await call(gw, '/v1/chat/completions', {
        model: 'sim-fast',
        messages: [{ role: 'user', content: 'What is the weather in Paris?' }],
        tools: [weatherTool],
        tool_choice: 'required',
        stream: true,
      });
      expect(sent.status).toBe(200);
      const streamed = readStream(sent.text).toolCalls;
      expect(streamed.length).toBeGreaterThan(0);
      const recorded = JSON.parse((await eventOf(gw, sent.id)).responseBody!) as {
        choices: { message: { tool_calls: { function: { name: string; arguments: string } }[] } }[];
      };
      expect(recorded.choices[0]?.message.tool_calls.map((c) => c.function)).toEqual(streamed);
    });

    it('records the Anthropic wire as the client spoke it', async () => {
      const request = {
        model: 'sim-fast',
        max_tokens: 16,
        messages: [{ role: 'user', content: 'Write to jane@example.com' }],
      };
      const sent = await call(gw, '/v1/messages', request);
      expect(sent.status).toBe(200);
      const event = await eventOf(gw, sent.id);
      expect(JSON.parse(event.requestBody!)).toEqual({
        ...request,
        messages: [{ role: 'user', content: 'Write to [REDACTED:email]' }],
      });
      expect(JSON.parse(event.responseBody!)).toMatchObject({ type: 'message', role: 'assistant' });
    });

    it('records the error a client was sent', async () => {
      const sent = await call(gw, '/v1/chat/completions', {
        model: 'no-such-route',
        messages: [{ role: 'user', content: 'hi' }],
      });
      expect(sent.status).toBe(404);
      expect(JSON.parse((await eventOf(gw, sent.id)).responseBody!)).toEqual(JSON.parse(sent.text));
    });

    it('cuts a body over maxBytes, marking where', async () => {
      const sent = await call(gw, '/v1/embeddings', {
        model: 'sim-embed',
        input: Array.from({ length: 20 }, (_, i) => `document ${i} `.repeat(50)),
      });
      expect(sent.status).toBe(200);
      const event = await eventOf(gw, sent.id);
      for (const body of [event.requestBody!, event.responseBody!]) {
        expect(body.endsWith('…[truncated at 4096 bytes]')).toBe(true);
        expect(Buffer.byteLength(body)).toBeLessThanOrEqual(
          4096 + Buffer.byteLength('…[truncated at 4096 bytes]'),
        );
      }
      expect(event.requestBody!.startsWith('{"model":"sim-embed","input":["document 0 document 0')).toBe(
        true,
      );
    });
  });

  it('redacts before the event is spooled: neither the spool nor the store ever holds the secret', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sluice-bodies-'));
    onTestFinished(() => rm(dir, { recursive: true, force: true }));
    const gw = await startGatewayWithSim(
      { dataDir: dir, events: { sink: 'duckdb', bodies: { enabled: true } } },
      {},
      { realEvents: true },
    );
    let open = true;
    onTestFinished(async () => {
      if (open) await gw.close();
    });
    const sent = await call(gw, '/v1/chat/completions', {
      model: 'sim-fast',
      messages: [{ role: 'user', content: SECRET_PROMPT }],
      stream: true,
    });
    expect(sent.status).toBe(200);
    const pipeline = gw.pipeline!;
    while ((await pipeline.store!.count()) === 0) await sleep(20);
    const spooled = await Promise.all(
      (await readdir(join(dir, 'spool')))
        .filter((name) => name.endsWith('.seg'))
        .map((name) => readFile(join(dir, 'spool', name), 'utf8')),
    );
    expect(spooled.join('')).toContain('[REDACTED:email]');
    const [stored] = await pipeline.store!.list({ limit: 1 });
    await gw.close();
    open = false;
    expect(stored?.id).toBe(sent.id);
    expect(JSON.parse(stored!.requestBody!).messages[0].content).toBe(
      'I am [REDACTED:email], my key is [REDACTED:api-key] and my card [REDACTED:credit-card].',
    );
    for (const text of [...spooled, JSON.stringify(stored)]) {
      for (const secret of ['jane.doe', 'Zx9Yw8Vu7Ts6Rq5Po4Nm', '4111 1111'])
        expect(text).not.toContain(secret);
    }
  });
});
