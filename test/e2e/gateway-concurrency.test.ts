import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import type { SimConfigInput } from '../../src/sim/config.js';
import { type RunningSimulator, startSimServer } from '../../src/sim/server.js';
import { type RunningGateway, startGateway } from '../support/gateway.js';

const STREAMS = 200;

// Enough slots and queue for every stream at once, short answers, and decoding slow enough
// that streams are really in flight together.
const simConfig: SimConfigInput = {
  slots: 64,
  models: [
    {
      name: 'sim-fast',
      queueLimit: 512,
      prefillBaseMs: 1,
      prefillMsPerToken: 0,
      decodeMsPerToken: 1,
      batchSlowdown: 0,
      outputTokens: { mean: 16, spread: 0.5 },
      quality: { invalidJsonRate: 0, wrongAnswerRate: 0 },
    },
  ],
};

let sim: RunningSimulator;
let gw: RunningGateway;
let openai: OpenAI;
let anthropic: Anthropic;

beforeAll(async () => {
  sim = await startSimServer({ config: simConfig });
  gw = await startGateway(
    {
      providers: {
        sim: { type: 'sim', baseUrl: sim.url },
        claude: { type: 'anthropic', apiKey: 'test-key-not-secret', baseUrl: sim.url },
      },
      routes: {
        'sim-fast': { targets: [{ provider: 'sim', model: 'sim-fast' }] },
        'claude-fast': { targets: [{ provider: 'claude', model: 'sim-fast' }] },
      },
      events: { sink: 'none' },
      logLevel: 'silent',
    },
    { simUrl: sim.url },
  );
  openai = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: 'test', maxRetries: 0 });
  anthropic = new Anthropic({ baseURL: gw.url, apiKey: 'test', maxRetries: 0 });
});

afterAll(async () => {
  await gw?.close();
  await sim?.close();
});

type Client = 'openai-sdk' | 'openai-raw' | 'anthropic-sdk' | 'anthropic-raw';

interface Case {
  client: Client;
  route: 'sim-fast' | 'claude-fast';
  prompt: string;
}

const clients: Client[] = ['openai-sdk', 'openai-raw', 'anthropic-sdk', 'anthropic-raw'];

/** Every client style against both provider styles, each request with its own prompt. */
const cases: Case[] = Array.from({ length: STREAMS }, (_, i) => ({
  client: clients[i % clients.length] as Client,
  route: i % 8 < 4 ? 'sim-fast' : 'claude-fast',
  prompt: `Request ${i}: tell me how a gateway sheds load under pressure number ${i * 7}.`,
}));

/** The answer to a non-streaming request for the same prompt, in the same client style. */
async function wholeText(c: Case): Promise<string> {
  const content = [{ role: 'user' as const, content: c.prompt }];
  if (c.client.startsWith('openai')) {
    const response = await openai.chat.completions.create({ model: c.route, messages: content });
    return response.choices[0]?.message.content ?? '';
  }
  const message = await anthropic.messages.create({ model: c.route, max_tokens: 256, messages: content });
  return message.content.map((b) => (b.type === 'text' ? b.text : '')).join('');
}

/** SSE frames of a raw body: `event` (if named) and `data` of each. */
function frames(body: string): Array<{ event?: string; data: string }> {
  expect(body.endsWith('\n\n'), 'the body ends with a complete frame').toBe(true);
  return body
    .split('\n\n')
    .filter((frame) => frame.trim() !== '')
    .map((frame) => {
      const event = /^event: (.*)$/m.exec(frame)?.[1];
      const data = /^data: (.*)$/m.exec(frame)?.[1];
      expect(data, `a data line in ${frame}`).toBeDefined();
      return { event, data: data as string };
    });
}

/** Streams one case; returns its text after checking the stream is whole and ends properly. */
async function streamText(c: Case): Promise<string> {
  const messages = [{ role: 'user' as const, content: c.prompt }];
  switch (c.client) {
    case 'openai-sdk': {
      const stream = await openai.chat.completions.create({ model: c.route, messages, stream: true });
      let text = '';
      const ids = new Set<string>();
      const finishes: string[] = [];
      for await (const chunk of stream) {
        ids.add(chunk.id);
        text += chunk.choices[0]?.delta.content ?? '';
        for (const choice of chunk.choices) if (choice.finish_reason) finishes.push(choice.finish_reason);
      }
      expect(ids.size, 'every chunk belongs to one completion').toBe(1);
      expect(finishes).toEqual(['stop']);
      return text;
    }
    case 'openai-raw': {
      const response = await openai.chat.completions
        .create({ model: c.route, messages, stream: true })
        .asResponse();
      expect(response.status).toBe(200);
      const all = frames(await response.text());
      expect(all.at(-1)?.data).toBe('[DONE]');
      expect(all.filter((f) => f.data === '[DONE]')).toHaveLength(1);
      const chunks = all.slice(0, -1).map((f) => JSON.parse(f.data) as OpenAI.ChatCompletionChunk);
      expect(new Set(chunks.map((chunk) => chunk.id)).size).toBe(1);
      expect(chunks.filter((chunk) => chunk.choices[0]?.finish_reason)).toHaveLength(1);
      return chunks.map((chunk) => chunk.choices[0]?.delta.content ?? '').join('');
    }
    case 'anthropic-sdk': {
      const stream = await anthropic.messages.create({
        model: c.route,
        max_tokens: 256,
        messages,
        stream: true,
      });
      const types: string[] = [];
      let text = '';
      for await (const event of stream) {
        types.push(event.type);
        if (event.type === 'content_block_delta' && event.delta.type === 'text_delta')
          text += event.delta.text;
      }
      expect(types[0]).toBe('message_start');
      expect(types.slice(-2)).toEqual(['message_delta', 'message_stop']);
      expect(types.filter((t) => t === 'message_stop')).toHaveLength(1);
      return text;
    }
    case 'anthropic-raw': {
      const response = await anthropic.messages
        .create({ model: c.route, max_tokens: 256, messages, stream: true })
        .asResponse();
      expect(response.status).toBe(200);
      const all = frames(await response.text());
      const events = all.map((f) => ({ name: f.event, data: JSON.parse(f.data) as Record<string, unknown> }));
      for (const e of events) expect(e.data.type).toBe(e.name);
      const names = events.map((e) => e.name);
      expect(names[0]).toBe('message_start');
      expect(names.slice(-2)).toEqual(['message_delta', 'message_stop']);
      expect(names.filter((n) => n === 'message_start')).toHaveLength(1);
      expect(names.filter((n) => n === 'message_stop')).toHaveLength(1);
      let text = '';
      for (const e of events) {
        const delta = e.data.delta as { type?: string; text?: string } | undefined;
        if (e.name === 'content_block_delta' && delta?.type === 'text_delta') text += delta.text ?? '';
      }
      return text;
    }
  }
}

describe('the gateway under concurrent streams', () => {
  it(`delivers ${STREAMS} concurrent streams, each equal to its non-streaming answer`, async () => {
    const expected = await Promise.all(cases.map(wholeText));
    expect(new Set(expected).size, 'different prompts get different answers').toBe(STREAMS);
    expect(expected.every((text) => text.length > 0)).toBe(true);
    const eventsBefore = gw.events.length;

    const streamed = await Promise.all(cases.map(streamText));

    for (const [i, text] of streamed.entries()) {
      expect(text, `stream ${i} (${cases[i]?.client} via ${cases[i]?.route})`).toBe(expected[i]);
    }
    // The simulator really ran them together, and the gateway recorded each as a success.
    const stats = (await (await fetch(`${sim.url}/sim/stats`)).json()) as { rejected: number };
    expect(stats.rejected).toBe(0);
    const streams = gw.events.slice(eventsBefore).filter((e) => e.stream);
    expect(streams).toHaveLength(STREAMS);
    expect(streams.every((e) => e.status === 200 && e.attempts.length === 1)).toBe(true);
  }, 60_000);

  it('keeps serving while bad requests arrive among good streams', async () => {
    const strict = await startGateway(
      {
        server: { bodyLimitBytes: 2048 },
        auth: { apiKeys: [{ name: 'load', key: 'sk-sluice-load-0123456789' }] },
        providers: { sim: { type: 'sim', baseUrl: sim.url } },
        routes: { 'sim-fast': { targets: [{ provider: 'sim', model: 'sim-fast' }] } },
        events: { sink: 'none' },
        logLevel: 'silent',
      },
      { simUrl: sim.url },
    );
    onTestFinished(() => strict.close());
    const good = new OpenAI({
      baseURL: `${strict.url}/v1`,
      apiKey: 'sk-sluice-load-0123456789',
      maxRetries: 0,
    });
    const post = (path: string, body: string, headers: Record<string, string>) =>
      fetch(`${strict.url}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body,
      });
    const auth = { authorization: 'Bearer sk-sluice-load-0123456789' };
    const messages = [{ role: 'user' as const, content: 'Tell me how a gateway sheds load.' }];

    const bad = Array.from({ length: 40 }, (_, i) => {
      switch (i % 5) {
        case 0:
          return post('/v1/chat/completions', '{"model": ', auth).then((r) => [r.status, 400]);
        case 1:
          return post('/v1/chat/completions', JSON.stringify({ model: 'nope', messages }), auth).then((r) => [
            r.status,
            404,
          ]);
        case 2:
          return post('/v1/messages', JSON.stringify({ model: 'sim-fast', messages }), auth).then((r) => [
            r.status,
            400,
          ]);
        case 3:
          return post(
            '/v1/chat/completions',
            JSON.stringify({ model: 'sim-fast', messages: [{ role: 'user', content: 'x'.repeat(4096) }] }),
            auth,
          ).then((r) => [r.status, 413]);
        default:
          return post('/v1/messages', JSON.stringify({ model: 'sim-fast', max_tokens: 5, messages }), {
            'x-api-key': 'sk-wrong-0000000000000',
          }).then((r) => [r.status, 401]);
      }
    });
    const streams = Array.from({ length: 20 }, async () => {
      let text = '';
      for await (const chunk of await good.chat.completions.create({
        model: 'sim-fast',
        messages,
        stream: true,
      }))
        text += chunk.choices[0]?.delta.content ?? '';
      return text;
    });
    const [statuses, texts] = await Promise.all([Promise.all(bad), Promise.all(streams)]);
    for (const [actual, wanted] of statuses) expect(actual).toBe(wanted);
    const reference = (await good.chat.completions.create({ model: 'sim-fast', messages })).choices[0]
      ?.message.content;
    expect(texts.every((text) => text === reference)).toBe(true);
  }, 60_000);
});
