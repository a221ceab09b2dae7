import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { pino } from 'pino';
import { afterAll, beforeAll, beforeEach, describe, expect, it, onTestFinished } from 'vitest';
import { stringify } from 'yaml';
import { loadConfigFile } from '../../src/config/load.js';
import type { SluiceConfigInput } from '../../src/config/schema.js';
import { jsonlSink } from '../../src/events/jsonl-sink.js';
import type { EventSink } from '../../src/events/sink.js';
import { type WideEvent, wideEventSchema } from '../../src/events/wide-event.js';
import { buildGatewayServer } from '../../src/http/gateway-server.js';
import type { FaultInput } from '../../src/sim/faults.js';
import { type RunningSimulator, startSimServer } from '../../src/sim/server.js';
import { sqliteStore } from '../../src/store/sqlite-store.js';
import { memorySink, type RunningGateway, startGateway, startGatewayWithSim } from '../support/gateway.js';
import { freePort } from '../support/ports.js';
import { viaSetpriv } from '../support/process.js';

const cli = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));

// Recognisable secrets: each contains SECRET, which nothing else the gateway says does.
const PROVIDER_KEY = 'sk-provider-SECRET-5f1d7a2c9e3b4d6a';
const CLIENT_KEY = 'sk-client-SECRET-8c2e4a6b0d1f3e5c';
const BATCH_KEY = 'sk-batch-SECRET-1a3c5e7b9d2f4a6c';
const ADMIN_KEY = 'sk-admin-SECRET-7e9a1c3e5b7d9f1b';
const WRONG_KEY = 'sk-wrong-SECRET-4b6d8f0a2c4e6a8d';

/** A model that streams 30 tokens 40 ms apart: slow enough to act while it is in flight. */
const slowModel = {
  name: 'sim-slow',
  slots: 8,
  prefillBaseMs: 5,
  prefillMsPerToken: 0,
  decodeMsPerToken: 40,
  batchSlowdown: 0,
  outputTokens: { mean: 30, spread: 0 },
};
const fastModel = {
  name: 'sim-fast',
  slots: 32,
  prefillBaseMs: 2,
  prefillMsPerToken: 0,
  decodeMsPerToken: 1,
  batchSlowdown: 0,
  outputTokens: { mean: 12, spread: 0.5 },
};

const ask = (model: string, extra: Record<string, unknown> = {}) => ({
  model,
  messages: [{ role: 'user', content: 'What is 12 + 30?' }],
  max_tokens: 8,
  ...extra,
});

/** A streamed request for the slow model: an open question, so the whole 30-token answer comes. */
const slowStream = (model: string) =>
  ask(model, {
    messages: [{ role: 'user', content: 'Tell me about rivers.' }],
    max_tokens: 100,
    stream: true,
  });

const bearer = (key: string) => ({ authorization: `Bearer ${key}` });

function post(
  url: string,
  path: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<Response> {
  return fetch(`${url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

async function json(response: Response): Promise<Record<string, unknown>> {
  return (await response.json()) as Record<string, unknown>;
}

interface OpenStream {
  /** Everything received up to the first complete event. */
  first: string;
  /** Reads to the end; resolves with the whole body. */
  rest(): Promise<string>;
}

/** Reads an SSE response up to its first event, leaving the rest for later. */
async function openStream(response: Response): Promise<OpenStream> {
  const reader = response.body!.getReader();
  const decoder = new TextDecoder();
  let text = '';
  while (!text.includes('\n\n')) {
    const { done, value } = await reader.read();
    if (done) break;
    text += decoder.decode(value, { stream: true });
  }
  return {
    first: text,
    rest: async () => {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return text + decoder.decode();
        text += decoder.decode(value, { stream: true });
      }
    },
  };
}

function sseData(text: string): string[] {
  return text
    .split('\n')
    .filter((line) => line.startsWith('data: '))
    .map((line) => line.slice('data: '.length));
}

/** The usage an OpenAI stream reported in its last chunk. */
function streamUsage(text: string): { prompt_tokens: number; completion_tokens: number } {
  const chunks = sseData(text)
    .filter((data) => data !== '[DONE]')
    .map((data) => JSON.parse(data) as { usage?: { prompt_tokens: number; completion_tokens: number } });
  const usage = chunks.at(-1)?.usage;
  if (!usage) throw new Error(`the stream carried no usage:\n${text}`);
  return usage;
}

async function addFault(sim: RunningSimulator, fault: FaultInput): Promise<void> {
  const response = await post(sim.url, '/sim/faults', fault);
  expect(response.status).toBe(201);
}

async function clearFaults(sim: RunningSimulator): Promise<void> {
  await fetch(`${sim.url}/sim/faults`, { method: 'DELETE' });
}

async function tempDir(name: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), `sluice-${name}-`));
  onTestFinished(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function writeConfig(file: string, config: SluiceConfigInput): Promise<void> {
  await writeFile(file, stringify(config));
}

interface FileGateway {
  url: string;
  logs: string[];
  close(): Promise<void>;
}

/** A gateway in this process that loads `file` and reloads it, as `sluice up --config file` does. */
async function startFromFile(
  file: string,
  options: { sink?: EventSink; logLevel?: string } = {},
): Promise<FileGateway> {
  const logs: string[] = [];
  const logger = pino({ level: options.logLevel ?? 'info' }, { write: (line: string) => logs.push(line) });
  const { app } = buildGatewayServer({
    config: await loadConfigFile(file),
    sink: options.sink ?? memorySink(),
    logger,
    loadConfig: () => loadConfigFile(file),
    store: sqliteStore({ path: join(dirname(file), 'control.db') }),
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return { url: `http://127.0.0.1:${port}`, logs, close: () => app.close() };
}

interface Sample {
  labels: Record<string, string>;
  value: number;
}

/** The samples of one metric in Prometheus text format. */
function samples(text: string, name: string): Sample[] {
  return text
    .split('\n')
    .filter((line) => line.startsWith(`${name}{`) || line.startsWith(`${name} `))
    .map((line) => {
      const match = /^[^{ ]+(?:\{(.*)\})? (\S+)$/.exec(line);
      if (!match) throw new Error(`not a sample: ${line}`);
      const labels = Object.fromEntries(
        [...(match[1] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]),
      );
      return { labels, value: Number(match[2]) };
    });
}

function sampleValue(text: string, name: string, labels: Record<string, string>): number | undefined {
  return samples(text, name).find((s) => Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;
}

describe('client authentication', () => {
  let gw: RunningGateway & { sim: RunningSimulator };

  beforeAll(async () => {
    gw = await startGatewayWithSim({
      auth: {
        apiKeys: [
          { name: 'web', key: CLIENT_KEY },
          { name: 'batch', key: BATCH_KEY, routes: ['sim-fast'] },
        ],
      },
    });
  });
  afterAll(() => gw.close());

  it('answers a chat completion without a key with 401 in the OpenAI shape', async () => {
    const response = await post(gw.url, '/v1/chat/completions', ask('sim-fast'));
    expect(response.status).toBe(401);
    expect(response.headers.get('x-sluice-request-id')).toBeTruthy();
    expect(await json(response)).toEqual({
      error: {
        message: expect.stringContaining('Missing API key'),
        type: 'invalid_request_error',
        param: null,
        code: 'missing_api_key',
      },
    });
  });

  it('answers a chat completion with a wrong key with 401 invalid_api_key', async () => {
    const response = await post(gw.url, '/v1/chat/completions', ask('sim-fast'), bearer(WRONG_KEY));
    expect(response.status).toBe(401);
    expect(await json(response)).toEqual({
      error: {
        message: expect.stringContaining('Invalid API key'),
        type: 'invalid_request_error',
        param: null,
        code: 'invalid_api_key',
      },
    });
  });

  it('answers /v1/messages without a key or with a wrong x-api-key with 401 in the Anthropic shape', async () => {
    const missing = await post(gw.url, '/v1/messages', ask('sim-fast'));
    expect(missing.status).toBe(401);
    expect(await json(missing)).toEqual({
      type: 'error',
      error: { type: 'authentication_error', message: expect.stringContaining('Missing API key') },
    });
    const wrong = await post(gw.url, '/v1/messages', ask('sim-fast'), { 'x-api-key': WRONG_KEY });
    expect(wrong.status).toBe(401);
    expect(await json(wrong)).toEqual({
      type: 'error',
      error: { type: 'authentication_error', message: expect.stringContaining('Invalid API key') },
    });
  });

  it('serves the right key sent as a Bearer token or as x-api-key, on both endpoints', async () => {
    for (const headers of [bearer(CLIENT_KEY), { 'x-api-key': CLIENT_KEY }]) {
      const chat = await post(gw.url, '/v1/chat/completions', ask('sim-fast'), headers);
      expect(chat.status).toBe(200);
      expect(await json(chat)).toMatchObject({ object: 'chat.completion' });
      const messages = await post(gw.url, '/v1/messages', ask('sim-fast'), headers);
      expect(messages.status).toBe(200);
      expect(await json(messages)).toMatchObject({ type: 'message', role: 'assistant' });
    }
  });

  it('answers 401 before reading the body, so a malformed body from a stranger is never parsed', async () => {
    const malformed = await post(gw.url, '/v1/chat/completions', '{"model": "sim-fast", "messages": [');
    expect(malformed.status).toBe(401);
    expect(await json(malformed)).toMatchObject({ error: { code: 'missing_api_key' } });
    const notJson = await fetch(`${gw.url}/v1/messages`, {
      method: 'POST',
      headers: { 'content-type': 'text/plain', 'x-api-key': WRONG_KEY },
      body: 'hello',
    });
    expect(notJson.status).toBe(401);
    expect(await json(notJson)).toMatchObject({ type: 'error', error: { type: 'authentication_error' } });

    // The same body with the right key is a client error, so the 401 above came first.
    const parsed = await post(gw.url, '/v1/chat/completions', '{"model": "sim-fast", "messages": [', {
      ...bearer(CLIENT_KEY),
    });
    expect(parsed.status).toBe(400);
    expect(await json(parsed)).toMatchObject({ error: { code: 'invalid_json' } });
  });

  it('authenticates a path spelled with %-escapes, which the router decodes to /v1', async () => {
    const response = await post(gw.url, '/%761/chat/completions', ask('sim-fast'));
    expect(response.status).toBe(401);
    expect(await json(response)).toMatchObject({ error: { code: 'missing_api_key' } });
    const models = await fetch(`${gw.url}/v%31/models`);
    expect(models.status).toBe(401);
  });

  it('gives a key limited to some routes 403 on the others, in each wire’s shape', async () => {
    const chat = await post(gw.url, '/v1/chat/completions', ask('sim-smart'), bearer(BATCH_KEY));
    expect(chat.status).toBe(403);
    expect(await json(chat)).toEqual({
      error: {
        message: "This API key may not use the route 'sim-smart'.",
        type: 'invalid_request_error',
        param: 'model',
        code: 'route_not_allowed',
      },
    });
    const messages = await post(gw.url, '/v1/messages', ask('default'), { 'x-api-key': BATCH_KEY });
    expect(messages.status).toBe(403);
    expect(await json(messages)).toMatchObject({ type: 'error', error: { type: 'permission_error' } });
    const allowed = await post(gw.url, '/v1/chat/completions', ask('sim-fast'), bearer(BATCH_KEY));
    expect(allowed.status).toBe(200);
  });

  it('lists only the routes a key may use on /v1/models', async () => {
    const limited = await fetch(`${gw.url}/v1/models`, { headers: bearer(BATCH_KEY) });
    expect(limited.status).toBe(200);
    expect(((await json(limited)).data as Array<{ id: string }>).map((m) => m.id)).toEqual(['sim-fast']);
    const full = await fetch(`${gw.url}/v1/models`, { headers: { 'x-api-key': CLIENT_KEY } });
    expect(((await json(full)).data as Array<{ id: string }>).map((m) => m.id).sort()).toEqual([
      'default',
      'sim-embed',
      'sim-fast',
      'sim-reasoner',
      'sim-smart',
    ]);
  });

  it('answers /healthz and /readyz without a key, so probes need none', async () => {
    const health = await fetch(`${gw.url}/healthz`);
    expect(health.status).toBe(200);
    expect(await json(health)).toEqual({ status: 'ok' });
    const ready = await fetch(`${gw.url}/readyz`);
    expect(ready.status).toBe(200);
    expect(await json(ready)).toEqual({ status: 'ready', routes: 5, providers: 1 });
  });
});

describe('health', () => {
  it('/readyz answers 503 while no route is configured', async () => {
    const gw = await startGateway({ events: { sink: 'none' } });
    onTestFinished(() => gw.close());
    expect((await fetch(`${gw.url}/healthz`)).status).toBe(200);
    const ready = await fetch(`${gw.url}/readyz`);
    expect(ready.status).toBe(503);
    expect(await json(ready)).toMatchObject({ status: 'not ready' });
  });
});

describe('the admin API', () => {
  let sim: RunningSimulator;

  beforeAll(async () => {
    sim = await startSimServer({ config: { models: [fastModel] } });
  });
  afterAll(() => sim.close());

  it('answers 403 admin_disabled when no auth.adminKey is configured, whatever key is sent', async () => {
    const gw = await startGatewayWithSim({ auth: { apiKeys: [{ name: 'web', key: CLIENT_KEY }] } });
    onTestFinished(() => gw.close());
    for (const headers of [{}, bearer(CLIENT_KEY), bearer(ADMIN_KEY)]) {
      const response = await fetch(`${gw.url}/admin/config/reload`, { method: 'POST', headers });
      expect(response.status).toBe(403);
      expect(await json(response)).toMatchObject({ error: { code: 'admin_disabled' } });
    }
  });

  it('answers 401 without the admin key, 403 for a client key, and 200 with the admin key', async () => {
    const dir = await tempDir('admin');
    const file = join(dir, 'sluice.yaml');
    await writeConfig(file, {
      auth: { adminKey: ADMIN_KEY, apiKeys: [{ name: 'web', key: CLIENT_KEY }] },
      providers: { sim: { type: 'sim', baseUrl: sim.url } },
      routes: { chat: { targets: [{ provider: 'sim', model: 'sim-fast' }] } },
      events: { sink: 'none' },
    });
    const gw = await startFromFile(file);
    onTestFinished(() => gw.close());
    const reload = (headers: Record<string, string>) =>
      fetch(`${gw.url}/admin/config/reload`, { method: 'POST', headers });

    for (const headers of [{}, bearer(WRONG_KEY)]) {
      const response = await reload(headers);
      expect(response.status).toBe(401);
      expect(await json(response)).toMatchObject({ error: { code: 'invalid_admin_key' } });
    }
    const clientKey = await reload(bearer(CLIENT_KEY));
    expect(clientKey.status).toBe(403);
    expect(await json(clientKey)).toMatchObject({ error: { code: 'admin_scope_required' } });
    const escaped = await fetch(`${gw.url}/%61dmin/config/reload`, { method: 'POST' });
    expect(escaped.status).toBe(401);

    const ok = await reload(bearer(ADMIN_KEY));
    expect(ok.status).toBe(200);
    expect(await json(ok)).toEqual({ reloaded: true, routes: ['chat'], providers: ['sim'] });

    // The admin key opens the admin API only, not the client API.
    const client = await post(gw.url, '/v1/chat/completions', ask('chat'), bearer(ADMIN_KEY));
    expect(client.status).toBe(401);
  });
});

describe('secrets', () => {
  it('never appear in a response, a log line or a wide event', async () => {
    const sim = await startSimServer({ config: { models: [fastModel] } });
    onTestFinished(() => sim.close());
    const dir = await tempDir('secrets');
    const file = join(dir, 'sluice.yaml');
    const config: SluiceConfigInput = {
      logLevel: 'trace',
      auth: {
        adminKey: ADMIN_KEY,
        apiKeys: [
          { name: 'web', key: CLIENT_KEY },
          { name: 'batch', key: BATCH_KEY, routes: ['chat'] },
        ],
      },
      // An OpenAI-compatible upstream, so the provider has a key to send (the simulator ignores it).
      providers: { upstream: { type: 'openai-compatible', baseUrl: `${sim.url}/v1`, apiKey: PROVIDER_KEY } },
      routes: {
        chat: { targets: [{ provider: 'upstream', model: 'sim-fast' }], retries: { attempts: 0 } },
      },
      events: { sink: 'none' },
    };
    await writeConfig(file, config);
    const sink = memorySink();
    const gw = await startFromFile(file, { sink, logLevel: 'trace' });
    onTestFinished(() => gw.close());

    const seen: string[] = [];
    const keep = async (response: Promise<Response>): Promise<number> => {
      const r = await response;
      seen.push(`${r.status} ${JSON.stringify([...r.headers])}\n${await r.text()}`);
      return r.status;
    };
    const chat = (headers: Record<string, string>, extra: Record<string, unknown> = {}) =>
      post(gw.url, '/v1/chat/completions', ask('chat', extra), headers);
    const reload = () =>
      fetch(`${gw.url}/admin/config/reload`, { method: 'POST', headers: bearer(ADMIN_KEY) });

    // Successes, on both wires, streaming and not.
    expect(await keep(chat(bearer(CLIENT_KEY)))).toBe(200);
    expect(await keep(chat(bearer(BATCH_KEY), { stream: true }))).toBe(200);
    expect(await keep(post(gw.url, '/v1/messages', ask('chat'), { 'x-api-key': CLIENT_KEY }))).toBe(200);
    expect(await keep(fetch(`${gw.url}/v1/models`, { headers: bearer(CLIENT_KEY) }))).toBe(200);
    // Failed authentication, with keys in the wrong places.
    expect(await keep(chat(bearer(WRONG_KEY)))).toBe(401);
    expect(await keep(chat({ 'x-api-key': ADMIN_KEY }))).toBe(401);
    expect(await keep(post(gw.url, '/v1/messages', ask('chat'), { 'x-api-key': PROVIDER_KEY }))).toBe(401);
    expect(
      await keep(fetch(`${gw.url}/admin/config/reload`, { method: 'POST', headers: bearer(CLIENT_KEY) })),
    ).toBe(403);
    // A key limited to other routes.
    await writeConfig(file, {
      ...config,
      routes: { ...config.routes, other: { targets: [{ provider: 'upstream', model: 'sim-fast' }] } },
    });
    expect(await keep(reload())).toBe(200);
    expect(await keep(post(gw.url, '/v1/chat/completions', ask('other'), bearer(BATCH_KEY)))).toBe(403);
    // Upstream failures.
    await addFault(sim, { kind: 'error', status: 500 });
    expect(await keep(chat(bearer(CLIENT_KEY)))).toBe(502);
    expect(await keep(chat(bearer(CLIENT_KEY), { stream: true }))).toBe(502);
    expect(await keep(post(gw.url, '/v1/messages', ask('chat'), { 'x-api-key': CLIENT_KEY }))).toBe(502);
    await clearFaults(sim);
    // A reload of a file that is invalid but full of secrets.
    await writeFile(
      file,
      stringify({
        ...config,
        auth: { adminKey: ADMIN_KEY, apiKeys: [{ name: 'web', key: CLIENT_KEY, routes: ['nope'] }] },
        logLevel: 'loud',
      }),
    );
    expect(await keep(reload())).toBe(400);
    expect(await keep(fetch(`${gw.url}/metrics`))).toBe(200);

    // Seven answered requests, and the three refused /v1 calls, which are recorded too.
    await expect.poll(() => sink.events.length).toBe(10);
    const places = {
      responses: seen.join('\n'),
      logs: gw.logs.join(''),
      events: JSON.stringify(sink.events),
    };
    expect(places.logs).toContain('configuration reloaded');
    expect(places.events).toContain('"keyName":"batch"');
    for (const [place, text] of Object.entries(places)) {
      for (const secret of [PROVIDER_KEY, CLIENT_KEY, BATCH_KEY, ADMIN_KEY, WRONG_KEY, 'SECRET']) {
        expect(text.includes(secret), `${place} contain ${secret}`).toBe(false);
      }
    }
  });
});

describe('metrics', () => {
  it('counts requests by route, target and status, with latency histograms and token counters', async () => {
    const gw = await startGatewayWithSim();
    onTestFinished(() => gw.close());
    let input = 0;
    let output = 0;
    for (let i = 0; i < 2; i++) {
      const response = await post(gw.url, '/v1/chat/completions', ask('sim-fast'));
      expect(response.status).toBe(200);
      const { usage } = (await response.json()) as {
        usage: { prompt_tokens: number; completion_tokens: number };
      };
      input += usage.prompt_tokens;
      output += usage.completion_tokens;
    }
    const stream = await post(
      gw.url,
      '/v1/chat/completions',
      ask('sim-fast', { stream: true, stream_options: { include_usage: true } }),
    );
    expect(stream.status).toBe(200);
    const usage = streamUsage(await stream.text());
    input += usage.prompt_tokens;
    output += usage.completion_tokens;
    expect((await post(gw.url, '/v1/chat/completions', ask('no-such-route'))).status).toBe(404);

    const response = await fetch(`${gw.url}/metrics`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toContain('text/plain');
    const text = await response.text();
    const fast = { route: 'sim-fast', target: 'sim/sim-fast' };

    expect(sampleValue(text, 'sluice_requests_total', { ...fast, operation: 'chat', status: '200' })).toBe(3);
    expect(sampleValue(text, 'sluice_requests_total', { route: '', status: '404' })).toBe(1);

    const buckets = samples(text, 'sluice_request_duration_seconds_bucket').filter(
      (s) => s.labels.route === 'sim-fast',
    );
    expect(buckets.length).toBeGreaterThan(5);
    const counts = buckets.map((b) => b.value);
    expect(counts).toEqual([...counts].sort((a, b) => a - b));
    expect(buckets.find((b) => b.labels.le === '+Inf')?.value).toBe(3);
    expect(sampleValue(text, 'sluice_request_duration_seconds_count', fast)).toBe(3);
    expect(sampleValue(text, 'sluice_request_duration_seconds_sum', fast)).toBeGreaterThan(0);
    expect(sampleValue(text, 'sluice_time_to_first_token_seconds_count', fast)).toBe(1);

    expect(sampleValue(text, 'sluice_tokens_total', { ...fast, kind: 'input' })).toBe(input);
    expect(sampleValue(text, 'sluice_tokens_total', { ...fast, kind: 'output' })).toBe(output);
    expect(
      sampleValue(text, 'sluice_upstream_attempts_total', {
        target: 'sim/sim-fast',
        reason: 'first',
        outcome: 'ok',
      }),
    ).toBe(3);
  });
});

describe('limits', () => {
  let gw: RunningGateway & { sim: RunningSimulator };

  beforeAll(async () => {
    gw = await startGatewayWithSim({ server: { bodyLimitBytes: 2048, headerLimitBytes: 1024 } });
  });
  afterAll(() => gw.close());

  it('answers a body over server.bodyLimitBytes with 413 in the client’s wire shape', async () => {
    const big = ask('sim-fast', { messages: [{ role: 'user', content: 'x'.repeat(4096) }] });
    const chat = await post(gw.url, '/v1/chat/completions', big);
    expect(chat.status).toBe(413);
    expect(await json(chat)).toEqual({
      error: {
        message: expect.stringContaining('too large'),
        type: 'invalid_request_error',
        param: null,
        code: 'request_too_large',
      },
    });
    const messages = await post(gw.url, '/v1/messages', big);
    expect(messages.status).toBe(413);
    expect(await json(messages)).toMatchObject({ type: 'error', error: { type: 'request_too_large' } });
    // Just under the limit is served.
    expect((await post(gw.url, '/v1/chat/completions', ask('sim-fast'))).status).toBe(200);
  });

  it('answers a header over server.headerLimitBytes with 431 and keeps serving', async () => {
    const reply = await new Promise<string>((resolve, reject) => {
      const socket = connect(Number(new URL(gw.url).port), '127.0.0.1');
      let received = '';
      socket.on('data', (chunk) => {
        received += chunk.toString('latin1');
      });
      socket.on('close', () => resolve(received));
      socket.on('error', (error) => (received ? resolve(received) : reject(error)));
      socket.write(`GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: ${'a'.repeat(2048)}\r\n\r\n`);
    });
    expect(reply).toMatch(/^HTTP\/1\.1 431 /);

    expect((await fetch(`${gw.url}/healthz`)).status).toBe(200);
    expect((await post(gw.url, '/v1/chat/completions', ask('sim-fast'))).status).toBe(200);
  });
});

describe('wide events', () => {
  let gw: RunningGateway & { sim: RunningSimulator };

  beforeAll(async () => {
    gw = await startGatewayWithSim({ auth: { apiKeys: [{ name: 'web', key: CLIENT_KEY }] } });
  });
  afterAll(() => gw.close());

  const eventOf = async (response: Response): Promise<WideEvent> => {
    const id = response.headers.get('x-sluice-request-id');
    expect(id).toBeTruthy();
    await expect.poll(() => gw.events.some((e) => e.id === id)).toBe(true);
    const matching = gw.events.filter((e) => e.id === id);
    expect(matching).toHaveLength(1);
    return wideEventSchema.parse(matching[0]);
  };

  it('records one event per request with route, target, status, tokens, attempts, timings and key name', async () => {
    const before = gw.events.length;
    const chat = await post(gw.url, '/v1/chat/completions', ask('sim-fast'), bearer(CLIENT_KEY));
    const chatUsage = ((await chat.json()) as { usage: { prompt_tokens: number; completion_tokens: number } })
      .usage;
    const stream = await post(
      gw.url,
      '/v1/chat/completions',
      ask('sim-smart', { stream: true }),
      bearer(CLIENT_KEY),
    );
    await stream.text();
    const messages = await post(gw.url, '/v1/messages', ask('sim-fast'), { 'x-api-key': CLIENT_KEY });
    const messagesUsage = (
      (await messages.json()) as { usage: { input_tokens: number; output_tokens: number } }
    ).usage;
    const unknown = await post(gw.url, '/v1/chat/completions', ask('nope'), bearer(CLIENT_KEY));
    expect([chat.status, stream.status, messages.status, unknown.status]).toEqual([200, 200, 200, 404]);

    expect(await eventOf(chat)).toMatchObject({
      operation: 'chat',
      wire: 'openai',
      stream: false,
      keyName: 'web',
      requestedModel: 'sim-fast',
      route: 'sim-fast',
      target: 'sim/sim-fast',
      provider: 'sim',
      model: 'sim-fast',
      status: 200,
      errorCode: null,
      tokens: { input: chatUsage.prompt_tokens, output: chatUsage.completion_tokens },
      timings: { firstTokenMs: null },
      attempts: [{ target: 'sim/sim-fast', reason: 'first', outcome: 'ok', status: 200 }],
      retries: 0,
      fallbacks: 0,
    });

    const streamed = await eventOf(stream);
    expect(streamed).toMatchObject({
      stream: true,
      route: 'sim-smart',
      target: 'sim/sim-smart',
      status: 200,
    });
    expect(streamed.tokens.input).toBeGreaterThan(0);
    expect(streamed.tokens.output).toBeGreaterThan(0);
    expect(streamed.timings.firstTokenMs).toBeGreaterThan(0);
    expect(streamed.timings.firstTokenMs).toBeLessThanOrEqual(streamed.timings.totalMs);
    expect(streamed.attempts[0]?.firstByteMs).toBeGreaterThan(0);

    expect(await eventOf(messages)).toMatchObject({
      wire: 'anthropic',
      keyName: 'web',
      route: 'sim-fast',
      status: 200,
      tokens: { input: messagesUsage.input_tokens, output: messagesUsage.output_tokens },
    });
    expect(await eventOf(unknown)).toMatchObject({
      route: null,
      target: null,
      status: 404,
      errorCode: 'model_not_found',
      attempts: [],
      keyName: 'web',
    });
    expect(gw.events.length - before).toBe(4);
    for (const event of gw.events.slice(before)) expect(event.timings.totalMs).toBeGreaterThan(0);
  });

  it('lists every attempt with its reason and outcome when a route retries and falls back', async () => {
    await addFault(gw.sim, { kind: 'error', status: 500, models: ['sim-fast'] });
    onTestFinished(() => clearFaults(gw.sim));
    const response = await post(gw.url, '/v1/chat/completions', ask('default'), bearer(CLIENT_KEY));
    expect(response.status).toBe(200);
    expect(response.headers.get('x-sluice-target')).toBe('sim/sim-smart');
    const event = await eventOf(response);
    expect(event).toMatchObject({ route: 'default', target: 'sim/sim-smart', status: 200 });
    expect(event.attempts.map((a) => [a.target, a.reason, a.outcome, a.status])).toEqual([
      ['sim/sim-fast', 'first', 'error', 500],
      ['sim/sim-fast', 'retry', 'error', 500],
      ['sim/sim-fast', 'retry', 'error', 500],
      ['sim/sim-smart', 'fallback', 'ok', 200],
    ]);
    expect(event).toMatchObject({ retries: 2, fallbacks: 1 });
  });

  it('appends one valid JSON line per request to the JSONL sink', async () => {
    const dir = await tempDir('events');
    const file = join(dir, 'sluice.yaml');
    await writeConfig(file, {
      providers: { sim: { type: 'sim', baseUrl: gw.sim.url } },
      routes: { chat: { targets: [{ provider: 'sim', model: 'sim-fast' }] } },
    });
    const path = join(dir, 'nested', 'events.jsonl');
    const fileGw = await startFromFile(file, { sink: jsonlSink({ path }) });
    const ids: string[] = [];
    for (const body of [ask('chat'), ask('chat', { stream: true }), ask('missing')]) {
      const response = await post(fileGw.url, '/v1/chat/completions', body);
      await response.text();
      ids.push(response.headers.get('x-sluice-request-id') ?? '');
    }
    const messages = await post(fileGw.url, '/v1/messages', ask('chat'));
    await messages.text();
    ids.push(messages.headers.get('x-sluice-request-id') ?? '');
    await fileGw.close(); // flushes the sink

    const text = await readFile(path, 'utf8');
    expect(text.endsWith('\n')).toBe(true);
    const events = text
      .trimEnd()
      .split('\n')
      .map((line) => wideEventSchema.parse(JSON.parse(line)));
    expect(events.map((e) => e.id).sort()).toEqual([...ids].sort());
    expect(events.map((e) => e.status).sort()).toEqual([200, 200, 200, 404]);
  });
});

describe('reloading the configuration through the admin API', () => {
  let sim: RunningSimulator;
  let dir: string;
  let file: string;
  let gw: FileGateway;
  const base: SluiceConfigInput = {
    auth: { adminKey: ADMIN_KEY },
    events: { sink: 'none' },
  };
  const withRoutes = (routes: string[], simUrl = sim.url): SluiceConfigInput => ({
    ...base,
    providers: { sim: { type: 'sim', baseUrl: simUrl } },
    routes: Object.fromEntries(
      routes.map((name) => [
        name,
        { targets: [{ provider: 'sim', model: name === 'slow' ? 'sim-slow' : 'sim-fast' }] },
      ]),
    ),
  });
  const reload = () => fetch(`${gw.url}/admin/config/reload`, { method: 'POST', headers: bearer(ADMIN_KEY) });

  beforeAll(async () => {
    sim = await startSimServer({ config: { models: [fastModel, slowModel] } });
    dir = await mkdtemp(join(tmpdir(), 'sluice-reload-'));
    file = join(dir, 'sluice.yaml');
    await writeConfig(file, withRoutes(['chat', 'slow']));
    gw = await startFromFile(file);
  });
  afterAll(async () => {
    await gw.close();
    await sim.close();
    await rm(dir, { recursive: true, force: true });
  });
  beforeEach(async () => {
    await writeConfig(file, withRoutes(['chat', 'slow']));
    expect((await reload()).status).toBe(200);
  });

  it('serves a route added to the file once reloaded', async () => {
    const before = await post(gw.url, '/v1/chat/completions', ask('extra'));
    expect(before.status).toBe(404);
    await writeConfig(file, withRoutes(['chat', 'slow', 'extra']));
    const response = await reload();
    expect(response.status).toBe(200);
    expect(await json(response)).toEqual({
      reloaded: true,
      routes: ['chat', 'slow', 'extra'],
      providers: ['sim'],
    });
    const after = await post(gw.url, '/v1/chat/completions', ask('extra'));
    expect(after.status).toBe(200);
    expect(after.headers.get('x-sluice-route')).toBe('extra');
    expect(gw.logs.some((line) => line.includes('"msg":"configuration reloaded"'))).toBe(true);
  });

  it('answers 400 naming every problem of an invalid file, and keeps serving the running config', async () => {
    await writeFile(
      file,
      stringify({
        ...withRoutes(['chat']),
        routes: { chat: { targets: [{ provider: 'nope', model: 'sim-fast' }] } },
        logLevel: 'loud',
      }),
    );
    const response = await reload();
    expect(response.status).toBe(400);
    const body = (await response.json()) as { error: { message: string; code: string } };
    expect(body.error.code).toBe('invalid_config');
    expect(body.error.message).toContain('routes.chat.targets[0].provider: unknown provider "nope"');
    expect(body.error.message).toContain('logLevel: invalid value "loud"');

    expect((await post(gw.url, '/v1/chat/completions', ask('chat'))).status).toBe(200);
    expect((await post(gw.url, '/v1/chat/completions', ask('slow', { max_tokens: 1 }))).status).toBe(200);
  });

  it('lets a stream in flight during a reload finish normally on the config it started with', async () => {
    const response = await post(gw.url, '/v1/chat/completions', slowStream('slow'));
    expect(response.status).toBe(200);
    const stream = await openStream(response);
    expect(stream.first).toContain('data: ');

    // The new config drops the route and points the provider somewhere dead.
    await writeConfig(file, withRoutes(['chat'], `http://127.0.0.1:${await freePort()}`));
    const reloaded = await reload();
    expect(reloaded.status).toBe(200);
    expect(await json(reloaded)).toMatchObject({ routes: ['chat'] });
    expect((await post(gw.url, '/v1/chat/completions', ask('slow'))).status).toBe(404);

    const text = await stream.rest();
    const data = sseData(text);
    expect(data.at(-1)).toBe('[DONE]');
    const chunks = data
      .slice(0, -1)
      .map((d) => JSON.parse(d) as { choices: Array<{ finish_reason: unknown }> });
    expect(chunks.length).toBeGreaterThan(10);
    expect(chunks.at(-1)?.choices[0]?.finish_reason).toBe('stop');
    expect(text).not.toContain('"error"');
  });
});

interface SluiceProcess {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** The exit code (null when killed by a signal). */
  exited: Promise<number | null>;
  waitForOutput(text: string): Promise<void>;
}

function withoutProviderKeys(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const name of ['OPENAI_API_KEY', 'ANTHROPIC_API_KEY', 'GEMINI_API_KEY', 'SLUICE_ADMIN_KEY'])
    delete env[name];
  return env;
}

/** Runs `sluice up ...` until it answers /healthz; killed at the end of the test if still running. */
async function startSluice(args: string[], cwd?: string): Promise<SluiceProcess & { url: string }> {
  const port = await freePort();
  const [command, commandArgs] = viaSetpriv(process.execPath, [cli, 'up', ...args, '--port', String(port)]);
  const child = spawn(command, commandArgs, { cwd, env: withoutProviderKeys(), stdio: 'pipe' });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString('utf8');
  });
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString('utf8');
  });
  let running = true;
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => {
      running = false;
      resolve(code);
    }),
  );
  onTestFinished(async () => {
    if (running) {
      child.kill('SIGKILL');
      await exited;
    }
  });
  const output = () => `stdout:\n${stdout}\nstderr:\n${stderr}`;
  const until = async (done: () => Promise<boolean> | boolean, what: string) => {
    const deadline = Date.now() + 20_000;
    while (!(await Promise.resolve(done()).catch(() => false))) {
      if (!running) throw new Error(`sluice exited before ${what}:\n${output()}`);
      if (Date.now() > deadline) throw new Error(`sluice: no ${what} after 20 s:\n${output()}`);
      await sleep(25);
    }
  };
  const url = `http://127.0.0.1:${port}`;
  await until(async () => (await fetch(`${url}/healthz`)).ok, 'answer on /healthz');
  return {
    url,
    child,
    stdout: () => stdout,
    stderr: () => stderr,
    exited,
    waitForOutput: (text) => until(() => stdout.includes(text) || stderr.includes(text), `"${text}"`),
  };
}

describe('sluice up as a process', () => {
  let sim: RunningSimulator;

  beforeAll(async () => {
    sim = await startSimServer({ config: { models: [fastModel, slowModel] } });
  });
  afterAll(() => sim.close());

  const configFor = (dir: string, routes: string[]): SluiceConfigInput => ({
    logLevel: 'info',
    dataDir: join(dir, 'data'),
    server: { shutdownGraceMs: 20_000 },
    providers: { sim: { type: 'sim', baseUrl: sim.url } },
    routes: Object.fromEntries(
      routes.map((name) => [
        name,
        { targets: [{ provider: 'sim', model: name === 'slow' ? 'sim-slow' : 'sim-fast' }] },
      ]),
    ),
    events: { sink: 'jsonl', path: join(dir, 'events', 'events.jsonl') },
  });

  it('reloads its config file on SIGHUP, and keeps the running one when the file is invalid', async () => {
    const dir = await tempDir('up-sighup');
    const file = join(dir, 'sluice.yaml');
    await writeConfig(file, configFor(dir, ['chat']));
    const sluice = await startSluice(['--config', file]);

    expect((await post(sluice.url, '/v1/chat/completions', ask('chat'))).status).toBe(200);
    expect((await post(sluice.url, '/v1/chat/completions', ask('extra'))).status).toBe(404);

    await writeConfig(file, configFor(dir, ['chat', 'extra']));
    sluice.child.kill('SIGHUP');
    await sluice.waitForOutput('"msg":"configuration reloaded"');
    const models = (await json(await fetch(`${sluice.url}/v1/models`))).data as Array<{ id: string }>;
    expect(models.map((m) => m.id)).toEqual(['chat', 'extra']);
    expect((await post(sluice.url, '/v1/chat/completions', ask('extra'))).status).toBe(200);

    await writeFile(file, 'routes:\n  chat:\n    targets: [{ provider: nope, model: x }]\n');
    sluice.child.kill('SIGHUP');
    await sluice.waitForOutput('reload failed: keeping the running configuration');
    expect(sluice.stdout()).toContain('unknown provider \\"nope\\"');
    expect((await post(sluice.url, '/v1/chat/completions', ask('extra'))).status).toBe(200);

    sluice.child.kill('SIGTERM');
    expect(await sluice.exited).toBe(0);
    const lines = (await readFile(join(dir, 'events', 'events.jsonl'), 'utf8')).trimEnd().split('\n');
    const events = lines.map((line) => wideEventSchema.parse(JSON.parse(line)));
    expect(events.map((e) => [e.requestedModel, e.status])).toEqual([
      ['chat', 200],
      ['extra', 404],
      ['extra', 200],
      ['extra', 200],
    ]);
  });

  it('on SIGTERM lets a slow stream in flight complete, then exits 0', async () => {
    const dir = await tempDir('up-sigterm');
    const file = join(dir, 'sluice.yaml');
    await writeConfig(file, configFor(dir, ['slow']));
    const sluice = await startSluice(['--config', file]);

    const response = await post(sluice.url, '/v1/chat/completions', slowStream('slow'));
    expect(response.status).toBe(200);
    const stream = await openStream(response);
    expect(stream.first).toContain('data: ');
    sluice.child.kill('SIGTERM');
    await sluice.waitForOutput('draining in-flight requests');

    const data = sseData(await stream.rest());
    expect(data.at(-1)).toBe('[DONE]');
    expect(data.length).toBeGreaterThan(10);
    expect(await sluice.exited).toBe(0);
    const lines = (await readFile(join(dir, 'events', 'events.jsonl'), 'utf8')).trimEnd().split('\n');
    expect(lines.map((line) => wideEventSchema.parse(JSON.parse(line)).status)).toEqual([200]);
  });

  it('without a config file starts the built-in simulator and serves model "default"', async () => {
    const dir = await tempDir('up-builtin');
    const sluice = await startSluice([], dir);
    await sluice.waitForOutput('Sluice is up at');
    expect(sluice.stderr()).toContain(`Sluice is up at ${sluice.url}`);

    const response = await post(sluice.url, '/v1/chat/completions', ask('default'));
    expect(response.status).toBe(200);
    expect(response.headers.get('x-sluice-route')).toBe('default');
    const body = (await response.json()) as { choices: Array<{ message: { content: string } }> };
    expect(body.choices[0]?.message.content.length).toBeGreaterThan(0);

    sluice.child.kill('SIGTERM');
    expect(await sluice.exited).toBe(0);
  });

  it('refuses an invalid config file, printing every problem, and exits non-zero', async () => {
    const dir = await tempDir('up-bad');
    const file = join(dir, 'bad.yaml');
    await writeFile(
      file,
      [
        'logLevel: loud',
        'auth:',
        '  apiKeys: [{ name: web, key: short }]',
        'providers:',
        '  sim: { type: sim }',
        'routes:',
        '  chat:',
        '    targets: [{ provider: nope, model: sim-fast }]',
        '',
      ].join('\n'),
    );
    const result = await promisify(execFile)(
      process.execPath,
      [cli, 'up', '--config', file, '--port', String(await freePort())],
      { env: withoutProviderKeys(), timeout: 20_000 },
    ).then(
      () => ({ code: 0, stderr: '' }),
      (error: { code: number; stderr: string }) => error,
    );
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain(`${file} is invalid`);
    expect(result.stderr).toContain('logLevel: invalid value "loud"');
    expect(result.stderr).toContain('auth.apiKeys[0].key: ');
    expect(result.stderr).toContain('routes.chat.targets[0].provider: unknown provider "nope"');
  });
});
