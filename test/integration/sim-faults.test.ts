import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import type { FaultInput } from '../../src/sim/faults.js';
import { type RunningSimulator, startSimServer } from '../../src/sim/server.js';
import { ManualClock } from '../../src/time/manual-clock.js';
import { freePort } from '../support/ports.js';
import { startProcess } from '../support/process.js';

const fast = {
  slots: 32,
  queueLimit: 256,
  prefillBaseMs: 2,
  prefillMsPerToken: 0,
  decodeMsPerToken: 1,
  batchSlowdown: 0,
};
const models = [
  { name: 'sim-a', ...fast },
  { name: 'sim-b', ...fast },
];

let sim: RunningSimulator;

beforeAll(async () => {
  sim = await startSimServer({ config: { seed: 7, models } });
});

afterAll(() => sim.close());

afterEach(async () => {
  await fetch(`${sim.url}/sim/faults`, { method: 'DELETE' });
});

interface Counters {
  inFlight: number;
  queued: number;
  completed: number;
  rejected: number;
  faulted: number;
  cut: number;
}
type Stats = Counters & { models: Record<string, Counters> };

async function stats(base: RunningSimulator): Promise<Stats> {
  return (await (await fetch(`${base.url}/sim/stats`)).json()) as Stats;
}

async function addFaults(
  base: RunningSimulator,
  body: FaultInput | FaultInput[] | { faults: FaultInput[] },
): Promise<{ ids: string[]; faults: Array<FaultInput & { id: string; active: boolean }> }> {
  const response = await fetch(`${base.url}/sim/faults`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  expect(response.status).toBe(201);
  return (await response.json()) as Awaited<ReturnType<typeof addFaults>>;
}

async function listFaults(base: RunningSimulator): Promise<Array<{ id: string; active: boolean }>> {
  return ((await (await fetch(`${base.url}/sim/faults`)).json()) as { faults: [] }).faults;
}

function post(
  base: RunningSimulator,
  path: '/v1/chat/completions' | '/v1/messages',
  body: Record<string, unknown>,
  signal?: AbortSignal,
): Promise<Response> {
  return fetch(`${base.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
    signal,
  });
}

const ask = (model: string, extra: Record<string, unknown> = {}) => ({
  model,
  max_tokens: 4,
  messages: [{ role: 'user', content: 'Tell me about queues.' }],
  ...extra,
});

const chat = (model = 'sim-a', extra: Record<string, unknown> = {}, base = sim, signal?: AbortSignal) =>
  post(base, '/v1/chat/completions', ask(model, extra), signal);

/** The `data:` payloads of a Server-Sent Events body, and how the body ended. */
async function readEvents(response: Response): Promise<{ data: string[]; broken: boolean }> {
  const reader = (response.body as ReadableStream<Uint8Array>).getReader();
  const decoder = new TextDecoder();
  let text = '';
  let broken = false;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
    }
  } catch {
    broken = true;
  }
  const data = text
    .split('\n\n')
    .flatMap((event) => event.split('\n').filter((line) => line.startsWith('data: ')))
    .map((line) => line.slice('data: '.length));
  return { data, broken };
}

async function until(check: () => Promise<boolean> | boolean, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`gave up waiting until ${what}`);
    await sleep(5);
  }
}

describe('the fault control API', () => {
  it('accepts one fault, a list, or {faults: [...]} and lists them with ids', async () => {
    const one = await addFaults(sim, { kind: 'latency', multiplier: 2 });
    const list = await addFaults(sim, [{ kind: 'hang', rate: 0, models: ['sim-b'] }]);
    const wrapped = await addFaults(sim, { faults: [{ kind: 'slow-first-byte', delayMs: '1ms' }] });
    const ids = [...one.ids, ...list.ids, ...wrapped.ids];
    expect(new Set(ids).size).toBe(3);
    expect(wrapped.faults.map((f) => f.id)).toEqual(ids);
    expect(await listFaults(sim)).toMatchObject([
      { kind: 'latency', multiplier: 2, active: true },
      { kind: 'hang', rate: 0, models: ['sim-b'], active: true },
      { kind: 'slow-first-byte', delayMs: 1, active: true },
    ]);
    expect(await (await fetch(`${sim.url}/sim/faults`, { method: 'DELETE' })).json()).toEqual({ faults: [] });
    expect(await listFaults(sim)).toEqual([]);
  });

  it('rejects a fault it does not understand with a 400 naming the field', async () => {
    const response = await fetch(`${sim.url}/sim/faults`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ kind: 'error', status: 418 }),
    });
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({
      error: { type: 'invalid_request_error', param: 'faults[0].status' },
    });
  });

  it('answers 404 to deleting a fault id it does not know', async () => {
    const response = await fetch(`${sim.url}/sim/faults/fault_999`, { method: 'DELETE' });
    expect(response.status).toBe(404);
    expect(await response.json()).toMatchObject({ error: { message: "No fault with id 'fault_999'." } });
  });
});

describe('an error fault', () => {
  it.each([
    [500, 'server_error', 'server_error'],
    [502, 'server_error', 'bad_gateway'],
    [503, 'server_error', 'service_unavailable'],
    [529, 'server_error', 'overloaded'],
    [429, 'rate_limit_error', 'rate_limit_exceeded'],
  ] as const)('answers %i (%s, %s) until DELETE removes it', async (status, type, code) => {
    const { ids } = await addFaults(sim, { kind: 'error', status });
    const failed = await chat();
    expect(failed.status).toBe(status);
    expect(await failed.json()).toEqual({
      error: { message: expect.stringContaining('injected fault'), type, param: null, code },
    });
    if (status === 429) expect(failed.headers.get('retry-after')).toBe('1');

    const deleted = await fetch(`${sim.url}/sim/faults/${ids[0]}`, { method: 'DELETE' });
    expect(await deleted.json()).toEqual({ deleted: ids[0] });
    expect((await chat()).status).toBe(200);
  });

  it.each([
    [529, 'overloaded_error'],
    [503, 'overloaded_error'],
    [500, 'api_error'],
    [429, 'rate_limit_error'],
  ] as const)('answers %i as an Anthropic %s on /v1/messages', async (status, type) => {
    await addFaults(sim, { kind: 'error', status });
    const failed = await post(sim, '/v1/messages', ask('sim-a'));
    expect(failed.status).toBe(status);
    expect(await failed.json()).toEqual({
      type: 'error',
      error: { type, message: expect.stringContaining('injected fault') },
    });
  });

  it('fails streaming requests before any event and counts every failure as faulted', async () => {
    const before = await stats(sim);
    await addFaults(sim, { kind: 'error', status: 502 });
    const streamed = await chat('sim-a', { stream: true });
    expect(streamed.status).toBe(502);
    expect(streamed.headers.get('content-type')).toMatch(/^application\/json/);
    await streamed.body?.cancel();
    expect((await chat('sim-b')).status).toBe(502);
    const after = await stats(sim);
    expect(after.faulted - before.faulted).toBe(2);
    expect(after.completed).toBe(before.completed);
  });
});

describe('a hang fault', () => {
  it.each([false, true])(
    'accepts the request and never answers (stream: %s); the client abort ends it and nothing stays in flight',
    async (stream) => {
      await addFaults(sim, { kind: 'hang' });
      const before = await stats(sim);
      const hung = chat('sim-a', { stream }, sim, AbortSignal.timeout(300));
      await expect(hung).rejects.toMatchObject({ name: 'TimeoutError' });
      const after = await stats(sim);
      expect(after).toMatchObject({ inFlight: 0, queued: 0, completed: before.completed });

      await fetch(`${sim.url}/sim/faults`, { method: 'DELETE' });
      expect((await chat('sim-a', { stream })).status).toBe(200);
    },
  );

  it('is ended by an AbortController like any other client timeout', async () => {
    await addFaults(sim, { kind: 'hang', models: ['sim-b'] });
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), 300);
    onTestFinished(() => clearTimeout(timer));
    await expect(chat('sim-b', {}, sim, controller.signal)).rejects.toMatchObject({ name: 'AbortError' });
    expect(await stats(sim)).toMatchObject({ inFlight: 0, queued: 0 });
  });
});

describe('a cut fault', () => {
  const afterTokens = 3;

  it('gives a stream exactly afterTokens content deltas, then breaks the connection without [DONE]', async () => {
    const before = await stats(sim);
    await addFaults(sim, { kind: 'cut', afterTokens });
    const response = await chat('sim-a', { stream: true, max_tokens: 10 });
    expect(response.status).toBe(200);
    const { data, broken } = await readEvents(response);
    expect(broken).toBe(true);
    expect(data).not.toContain('[DONE]');
    const deltas = data.map((d) => JSON.parse(d) as { choices: Array<{ delta: Record<string, unknown> }> });
    const content = deltas.filter(
      (c) => c.choices[0]?.delta.role === undefined && c.choices[0]?.delta.content,
    );
    expect(content).toHaveLength(afterTokens);
    expect((await stats(sim)).cut - before.cut).toBe(1);
  });

  it('gives an Anthropic stream afterTokens text deltas and no message_stop', async () => {
    await addFaults(sim, { kind: 'cut', afterTokens });
    const response = await post(sim, '/v1/messages', ask('sim-a', { stream: true, max_tokens: 10 }));
    expect(response.status).toBe(200);
    const { data, broken } = await readEvents(response);
    expect(broken).toBe(true);
    const types = data.map((d) => (JSON.parse(d) as { type: string }).type);
    expect(types.filter((t) => t === 'content_block_delta')).toHaveLength(afterTokens);
    expect(types).toContain('message_start');
    expect(types).not.toContain('message_stop');
  });

  it('drops a non-streaming request without any response', async () => {
    await addFaults(sim, { kind: 'cut', afterTokens });
    await expect(chat('sim-a', { max_tokens: 10 })).rejects.toThrow(TypeError);
    expect(await stats(sim)).toMatchObject({ inFlight: 0, queued: 0 });
    await fetch(`${sim.url}/sim/faults`, { method: 'DELETE' });
    expect((await chat('sim-a', { max_tokens: 10 })).status).toBe(200);
  });
});

describe('a slow-first-byte fault', () => {
  it('holds back the first byte of a stream for at least delayMs', async () => {
    const delayMs = 250;
    await addFaults(sim, { kind: 'slow-first-byte', delayMs: `${delayMs}ms` });
    const started = performance.now();
    const response = await chat('sim-a', { stream: true });
    // Stream headers go out with the first token, so headers arriving is the first byte.
    expect(performance.now() - started).toBeGreaterThanOrEqual(delayMs);
    expect(response.status).toBe(200);
    expect((await readEvents(response)).data.at(-1)).toBe('[DONE]');
  });
});

describe('a models filter', () => {
  it('limits a fault to the models it names', async () => {
    await addFaults(sim, { kind: 'error', status: 503, models: ['sim-b'] });
    expect((await chat('sim-a')).status).toBe(200);
    expect((await chat('sim-b')).status).toBe(503);
    expect((await post(sim, '/v1/messages', ask('sim-b'))).status).toBe(503);
  });
});

describe('a rate below 1', () => {
  async function faultedOutOf200(seed: number): Promise<{ failed: number; stats: Stats }> {
    const fresh = await startSimServer({ config: { seed, models } });
    onTestFinished(() => fresh.close());
    await addFaults(fresh, { kind: 'error', status: 500, rate: 0.25 });
    let failed = 0;
    for (let batch = 0; batch < 5; batch++) {
      const responses = await Promise.all(
        Array.from({ length: 40 }, () => chat('sim-a', { max_tokens: 1 }, fresh)),
      );
      for (const response of responses) {
        if (response.status === 500) failed++;
        else expect(response.status).toBe(200);
        await response.arrayBuffer();
      }
    }
    return { failed, stats: await stats(fresh) };
  }

  it('faults some but not all of 200 requests, the same number again with the same seed', async () => {
    const first = await faultedOutOf200(2024);
    const second = await faultedOutOf200(2024);
    // Deterministic under the seed, so a band this wide is never flaky: it states "about a quarter".
    expect(first.failed).toBeGreaterThan(20);
    expect(first.failed).toBeLessThan(80);
    expect(second.failed).toBe(first.failed);
    expect(first.stats).toMatchObject({ faulted: first.failed, completed: 200 - first.failed });
  });
});

describe('faults on a simulator driven by a manual clock', () => {
  const prefillBaseMs = 40;
  let clock: ManualClock;
  let manual: RunningSimulator;

  beforeAll(async () => {
    clock = new ManualClock(1_000);
    manual = await startSimServer({
      clock,
      config: {
        models: [{ name: 'sim-m', ...fast, prefillBaseMs, decodeMsPerToken: 5 }],
      },
    });
  });

  afterAll(() => manual.close());

  afterEach(async () => {
    await fetch(`${manual.url}/sim/faults`, { method: 'DELETE' });
  });

  /** Waits until the request holds a slot, then runs simulated time until it is answered. */
  async function served(pending: Promise<Response>): Promise<Response> {
    let settled = false;
    void pending.then(
      () => {
        settled = true;
      },
      () => {
        settled = true;
      },
    );
    await until(async () => settled || (await stats(manual)).inFlight >= 1, 'the request holds a slot');
    clock.runAll();
    return pending;
  }

  const manualChat = (extra: Record<string, unknown> = {}) => chat('sim-m', extra, manual);

  it('a latency multiplier scales the time to first token exactly (x-sim-ttft-ms)', async () => {
    const normal = await served(manualChat());
    expect(normal.headers.get('x-sim-queue-ms')).toBe('0');
    expect(normal.headers.get('x-sim-ttft-ms')).toBe(String(prefillBaseMs));

    await addFaults(manual, { kind: 'latency', multiplier: 3 });
    const slowed = await served(manualChat());
    expect(slowed.headers.get('x-sim-queue-ms')).toBe('0');
    expect(Number(slowed.headers.get('x-sim-ttft-ms')) / Number(normal.headers.get('x-sim-ttft-ms'))).toBe(3);
  });

  it('a slow-first-byte fault sends nothing until delayMs after the prefill', async () => {
    const delayMs = 500;
    await addFaults(manual, { kind: 'slow-first-byte', delayMs });
    let answered = false;
    const pending = manualChat({ stream: true }).then((response) => {
      answered = true;
      return response;
    });
    await until(async () => (await stats(manual)).inFlight >= 1, 'the stream holds a slot');
    clock.advance(prefillBaseMs + delayMs - 1);
    await sleep(100);
    expect(answered).toBe(false);
    clock.advance(1);
    const response = await pending;
    expect(response.status).toBe(200);
    clock.runAll();
    expect((await readEvents(response)).data.at(-1)).toBe('[DONE]');

    await fetch(`${manual.url}/sim/faults`, { method: 'DELETE' });
    const normal = await served(manualChat());
    expect(normal.headers.get('x-sim-ttft-ms')).toBe(String(prefillBaseMs));
  });

  it('a fault with from/to is active exactly from its start until its end', async () => {
    const addedAt = clock.now();
    await addFaults(manual, { kind: 'error', status: 503, from: '2s', to: 4000 });
    expect(await listFaults(manual)).toMatchObject([{ from: 2000, to: 4000, active: false }]);
    expect((await served(manualChat({ max_tokens: 1 }))).status).toBe(200);

    clock.advanceTo(addedAt + 1999);
    expect(await listFaults(manual)).toMatchObject([{ active: false }]);
    clock.advanceTo(addedAt + 2000);
    expect(await listFaults(manual)).toMatchObject([{ active: true }]);
    expect((await manualChat()).status).toBe(503);
    clock.advanceTo(addedAt + 3999);
    expect((await manualChat()).status).toBe(503);
    clock.advanceTo(addedAt + 4000);
    expect(await listFaults(manual)).toMatchObject([{ active: false }]);
    expect((await served(manualChat())).status).toBe(200);
  });
});

describe('the sim CLI with a fault timeline file', () => {
  const cli = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));

  function acceptsConnections(port: number): Promise<boolean> {
    return new Promise((resolve) => {
      const socket = connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
  }

  it('starts with the file’s faults in force, each active from its own offset', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sluice-sim-faults-'));
    onTestFinished(() => rm(dir, { recursive: true, force: true }));
    const faultsFile = join(dir, 'faults.yaml');
    await writeFile(
      faultsFile,
      [
        '# sim-smart fails at once; everything slows down in an hour',
        'faults:',
        '  - kind: error',
        '    status: 503',
        '    models: [sim-smart]',
        '  - kind: latency',
        '    multiplier: 10',
        '    from: 1h',
        '',
      ].join('\n'),
    );
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const child = await startProcess({
      name: 'sluice sim',
      command: process.execPath,
      args: [cli, 'sim', '--port', String(port), '--seed', '5', '--faults', faultsFile],
      ready: async () => (await fetch(`${url}/healthz`)).ok,
    });
    onTestFinished(() => child.stop());

    const faults = ((await (await fetch(`${url}/sim/faults`)).json()) as { faults: unknown[] }).faults;
    expect(faults).toMatchObject([
      { kind: 'error', status: 503, active: true },
      { kind: 'latency', multiplier: 10, from: 3_600_000, active: false },
    ]);
    const failed = await fetch(`${url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(ask('sim-smart')),
    });
    expect(failed.status).toBe(503);
    expect(await failed.json()).toMatchObject({ error: { code: 'service_unavailable' } });
    const served = await fetch(`${url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(ask('sim-fast', { max_tokens: 2 })),
    });
    expect(served.status).toBe(200);

    await child.stop();
    expect(await acceptsConnections(port)).toBe(false);
  });
});
