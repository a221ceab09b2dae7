import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it, onTestFinished } from 'vitest';
import type { SluiceConfigInput } from '../../src/config/schema.js';
import type { WideEvent } from '../../src/events/wide-event.js';
import type { Priority } from '../../src/flow/priority.js';
import type { SimConfigInput } from '../../src/sim/config.js';
import type { FaultInput } from '../../src/sim/faults.js';
import type { RunningSimulator } from '../../src/sim/server.js';
import { quickModel, quickModels, type RunningGateway, startGatewayWithSim } from '../support/gateway.js';

type RouteInput = NonNullable<SluiceConfigInput['routes']>[string];
type FlowInput = NonNullable<SluiceConfigInput['flow']>;
type ModelInput = NonNullable<SimConfigInput['models']>[number];
type Running = RunningGateway & { sim: RunningSimulator };

const adminKey = 'flow-tests-admin-key-0001';

const fast = { provider: 'sim', model: 'sim-fast' };
const smart = { provider: 'sim', model: 'sim-smart' };
const noRetries = { attempts: 0, baseDelayMs: 1, maxDelayMs: 5 };
const fixed = (limit: number) => ({ algorithm: 'fixed' as const, limit });

/**
 * Flow control as each test wants it, always given explicitly (the test harness relaxes the
 * retry budget otherwise): large fixed limits, a generous budget and no breaker unless asked.
 */
function flowWith(overrides: Partial<FlowInput> = {}): FlowInput {
  return {
    enabled: true,
    limit: fixed(100),
    queue: { maxQueue: 100 },
    retryBudget: { ratio: 1, minPerSecond: 100 },
    breaker: { enabled: false },
    ...overrides,
  };
}

interface Harness extends Running {
  /** Starts a request that the test will abandon (it is aborted when the test ends, at the latest). */
  hold(options?: AskOptions): { answer: Promise<Answer | 'aborted'>; release(): void };
}

async function start(
  config: Partial<SluiceConfigInput> & { routes: Record<string, RouteInput>; flow: FlowInput },
  sim: { models?: ModelInput[]; faults?: FaultInput[] } = {},
): Promise<Harness> {
  const running = await startGatewayWithSim(
    { auth: { adminKey }, ...config },
    { config: { seed: 7, models: sim.models ?? quickModels, faults: sim.faults ?? [] } },
  );
  const held: AbortController[] = [];
  // Requests held open must go before the gateway closes: it waits for open requests.
  onTestFinished(async () => {
    for (const controller of held) controller.abort();
    await running.close();
  });
  return Object.assign(running, {
    hold(options: AskOptions = {}) {
      const controller = new AbortController();
      held.push(controller);
      const answer = ask(running, { ...options, signal: controller.signal }).catch(() => 'aborted' as const);
      return { answer, release: () => controller.abort() };
    },
  });
}

interface AskOptions {
  model?: string;
  headers?: Record<string, string>;
  signal?: AbortSignal;
  stream?: boolean;
  key?: string;
}

interface Answer {
  status: number;
  headers: Headers;
  text: string;
}

async function ask(gw: Running, options: AskOptions = {}): Promise<Answer> {
  const headers: Record<string, string> = { 'content-type': 'application/json', ...options.headers };
  if (options.key) headers.authorization = `Bearer ${options.key}`;
  const response = await fetch(`${gw.url}/v1/chat/completions`, {
    method: 'POST',
    headers,
    body: JSON.stringify({
      model: options.model ?? 'chat',
      max_tokens: 8,
      stream: options.stream,
      messages: [{ role: 'user', content: 'Tell me about sluice gates.' }],
    }),
    signal: options.signal,
  });
  return { status: response.status, headers: response.headers, text: await response.text() };
}

const asPriority = (priority: Priority) => ({ 'x-sluice-priority': priority });

interface ErrorBody {
  error: { message: string; type: string; code: string | null; param: string | null };
}
const errorOf = (answer: Answer) => (JSON.parse(answer.text) as ErrorBody).error;

/** The Retry-After header as a number, checked to be whole seconds. */
function retryAfter(answer: Answer): number {
  const header = answer.headers.get('retry-after');
  expect(header).toMatch(/^\d+$/);
  return Number(header);
}

interface FlowTarget {
  target: string;
  limit: number;
  inflight: number;
  queued: number;
  queuedByPriority: Record<Priority, number>;
  shedByPriority: Record<Priority, number>;
  cancelled: number;
  dropped: number;
  admitted: number;
  breaker: string;
  latencyMs: number | null;
}
interface FlowView {
  enabled: boolean;
  targets: FlowTarget[];
  retryBudgets: Record<string, { balance: number; withdrawn: number; refused: number }>;
}

async function flowView(gw: Running): Promise<FlowView> {
  const response = await fetch(`${gw.url}/admin/flow`, { headers: { authorization: `Bearer ${adminKey}` } });
  expect(response.status).toBe(200);
  return (await response.json()) as FlowView;
}

async function targetFlow(gw: Running, id: string): Promise<FlowTarget> {
  const row = (await flowView(gw)).targets.find((t) => t.target === id);
  if (!row) throw new Error(`/admin/flow shows no target ${id}`);
  return row;
}

/** Waits until sim/sim-fast's row in /admin/flow (there once a request has used it) passes `check`. */
async function untilFlow(what: string, gw: Running, check: (flow: FlowTarget) => boolean): Promise<void> {
  await until(async () => {
    const row = (await flowView(gw)).targets.find((t) => t.target === 'sim/sim-fast');
    return row !== undefined && check(row);
  }, what);
}

interface Counters {
  inFlight: number;
  queued: number;
  completed: number;
  faulted: number;
}
async function simStats(gw: Running): Promise<Counters & { models: Record<string, Counters> }> {
  return (await (await fetch(`${gw.sim.url}/sim/stats`)).json()) as Counters & {
    models: Record<string, Counters>;
  };
}

async function clearFaults(gw: Running): Promise<void> {
  const response = await fetch(`${gw.sim.url}/sim/faults`, { method: 'DELETE' });
  expect(response.status).toBe(200);
}

async function addFault(gw: Running, fault: FaultInput): Promise<void> {
  const response = await fetch(`${gw.sim.url}/sim/faults`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(fault),
  });
  expect(response.status).toBe(201);
}

async function until(check: () => Promise<boolean> | boolean, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`gave up waiting until ${what}`);
    await sleep(5);
  }
}

/** Waits until `count` requests are recorded (streams and aborted requests record theirs as they end). */
async function recorded(gw: Running, count: number): Promise<WideEvent[]> {
  await until(() => gw.events.length >= count, `${count} requests are recorded`);
  expect(gw.events).toHaveLength(count);
  return gw.events;
}

const attemptsOf = (event: WideEvent | undefined) =>
  (event?.attempts ?? []).map(({ target, reason, outcome }) => ({ target, reason, outcome }));

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** The Prometheus text exposition as samples. */
async function scrape(gw: Running): Promise<{ text: string; samples: Sample[] }> {
  const text = await (await fetch(`${gw.url}/metrics`)).text();
  const samples = text
    .split('\n')
    .filter((line) => line && !line.startsWith('#'))
    .map((line) => {
      const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
      if (!match) throw new Error(`not a metric sample: ${line}`);
      const labels = Object.fromEntries(
        [...(match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1], m[2]]),
      );
      return { name: match[1] as string, labels, value: Number(match[3]) };
    });
  return { text, samples };
}

function sampleValue(samples: Sample[], name: string, labels: Record<string, string>): number | undefined {
  const found = samples.filter(
    (s) =>
      s.name === name &&
      Object.keys(s.labels).length === Object.keys(labels).length &&
      Object.entries(labels).every(([k, v]) => s.labels[k] === v),
  );
  expect(found.length).toBeLessThanOrEqual(1);
  return found[0]?.value;
}

const zeroes: Record<Priority, number> = { critical: 0, high: 0, normal: 0, low: 0, batch: 0 };

describe('admission by priority', () => {
  it('sheds batch traffic for critical requests: criticals displace batch waiters from a full queue', async () => {
    // The simulator hangs every request until the fault is cleared: the two permits stay taken
    // for as long as the test needs, whatever the machine's speed.
    const gw = await start(
      {
        routes: { chat: { targets: [{ ...fast, limit: fixed(2) }], retries: noRetries } },
        // Batch may fill the whole queue, so a critical arrival finds it full and must displace.
        flow: flowWith({ queue: { maxQueue: 4, shares: { batch: 1 } } }),
      },
      { faults: [{ kind: 'hang', models: ['sim-fast'] }] },
    );
    const holders = [gw.hold({ headers: asPriority('batch') }), gw.hold({ headers: asPriority('batch') })];
    await untilFlow('both permits are taken', gw, (f) => f.inflight === 2);
    const waiting = Array.from({ length: 4 }, () => ask(gw, { headers: asPriority('batch') }));
    await untilFlow('the queue is full', gw, (f) => f.queued === 4);

    // More batch traffic finds the queue full: shed at once.
    const refused = await Promise.all([
      ask(gw, { headers: asPriority('batch') }),
      ask(gw, { headers: asPriority('batch') }),
    ]);
    for (const answer of refused) {
      expect(answer.status).toBe(429);
      expect(retryAfter(answer)).toBeGreaterThanOrEqual(1);
      expect(errorOf(answer)).toMatchObject({ type: 'rate_limit_error', code: 'shed_queue_full' });
      expect(errorOf(answer).message).toContain('sim/sim-fast');
    }

    // Critical requests take the places of the last batch waiters.
    const criticals = [
      ask(gw, { headers: asPriority('critical') }),
      ask(gw, { headers: asPriority('critical') }),
    ];
    await untilFlow('two batch waiters are displaced', gw, (f) => f.shedByPriority.batch === 4);
    expect((await targetFlow(gw, 'sim/sim-fast')).queuedByPriority).toEqual({
      ...zeroes,
      critical: 2,
      batch: 2,
    });

    await clearFaults(gw);
    for (const holder of holders) holder.release();
    for (const answer of await Promise.all(criticals)) expect(answer.status).toBe(200);
    const waited = await Promise.all(waiting);
    expect(waited.map((a) => a.status).sort()).toEqual([200, 200, 429, 429]);
    for (const answer of waited.filter((a) => a.status === 429)) {
      expect(retryAfter(answer)).toBeGreaterThanOrEqual(1);
      expect(errorOf(answer).code).toBe('shed_queue_full');
      expect(errorOf(answer).message).toContain('higher-priority request took');
    }

    const flow = await targetFlow(gw, 'sim/sim-fast');
    expect(flow).toMatchObject({ inflight: 0, queued: 0, cancelled: 0, limit: 2 });
    expect(flow.shedByPriority).toEqual({ ...zeroes, batch: 4 });

    const events = await recorded(gw, 2 + 4 + 2 + 2);
    const shed = events.filter((e) => e.shed);
    expect(shed).toHaveLength(4);
    for (const event of shed) {
      expect(event).toMatchObject({ status: 429, priority: 'batch', errorCode: 'shed_queue_full' });
      expect(attemptsOf(event)).toEqual([{ target: 'sim/sim-fast', reason: 'first', outcome: 'shed' }]);
    }
    const critical = events.filter((e) => e.priority === 'critical');
    expect(critical).toHaveLength(2);
    for (const event of critical) {
      expect(event).toMatchObject({ status: 200, shed: false });
      // They waited in the queue for a permit.
      expect(event.queuedMs).toBeGreaterThan(0);
      expect(event.attempts[0]?.queuedMs).toBe(event.queuedMs);
    }
  });

  it("gives a key's requests its default priority: a batch key is shed before a normal one", async () => {
    const reports = 'sk-reports-key-batch-0001';
    const app = 'sk-app-key-normal-000001';
    const gw = await start(
      {
        auth: {
          adminKey,
          apiKeys: [
            { name: 'reports', key: reports, priority: 'batch' },
            { name: 'app', key: app },
          ],
        },
        routes: { chat: { targets: [{ ...fast, limit: fixed(1) }], retries: noRetries } },
        // Default shares: batch may fill 1 of the 4 places, normal 3.
        flow: flowWith({ queue: { maxQueue: 4 } }),
      },
      { faults: [{ kind: 'hang', models: ['sim-fast'] }] },
    );
    const holder = gw.hold({ key: app });
    await untilFlow('the permit is taken', gw, (f) => f.inflight === 1);
    const batchWaiting = ask(gw, { key: reports });
    await untilFlow('batch waits', gw, (f) => f.queuedByPriority.batch === 1);

    const batchShed = await ask(gw, { key: reports });
    expect(batchShed.status).toBe(429);
    expect(errorOf(batchShed).code).toBe('shed_queue_full');

    // The same queue still has room for normal traffic, and for the batch key asking for more.
    const normalWaiting = ask(gw, { key: app });
    const highWaiting = ask(gw, { key: reports, headers: asPriority('high') });
    await untilFlow('three requests wait', gw, (f) => f.queued === 3);
    expect((await targetFlow(gw, 'sim/sim-fast')).queuedByPriority).toEqual({
      ...zeroes,
      high: 1,
      normal: 1,
      batch: 1,
    });

    await clearFaults(gw);
    holder.release();
    const answers = await Promise.all([highWaiting, normalWaiting, batchWaiting]);
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200]);
    expect((await targetFlow(gw, 'sim/sim-fast')).shedByPriority).toEqual({ ...zeroes, batch: 1 });

    const events = await recorded(gw, 5);
    expect(events.find((e) => e.shed)).toMatchObject({ keyName: 'reports', priority: 'batch', status: 429 });
    // One permit: the waiters were served one at a time, highest priority first.
    expect(events.filter((e) => e.status === 200).map((e) => [e.keyName, e.priority])).toEqual([
      ['reports', 'high'],
      ['app', 'normal'],
      ['reports', 'batch'],
    ]);
  });
});

describe('deadlines', () => {
  it('sheds at once a request whose predicted wait is past its deadline; one that can wait queues', async () => {
    const gw = await start(
      {
        routes: { chat: { targets: [{ ...fast, limit: fixed(1) }], retries: noRetries } },
        flow: flowWith(),
      },
      { faults: [{ kind: 'hang', models: ['sim-fast'] }] },
    );
    const holder = gw.hold();
    let holderDone = false;
    void holder.answer.then(() => {
      holderDone = true;
    });
    await untilFlow('the permit is taken', gw, (f) => f.inflight === 1);

    // Before any permit was released, a permit is assumed to be held 1 s: 50 ms is too short.
    const late = await ask(gw, { headers: { 'x-sluice-deadline-ms': '50' } });
    expect(late.status).toBe(429);
    expect(retryAfter(late)).toBeGreaterThanOrEqual(1);
    expect(errorOf(late)).toMatchObject({ type: 'rate_limit_error', code: 'shed_deadline' });
    expect(errorOf(late).message).toContain('deadline');
    // It did not wait for the permit: that is still held.
    expect(holderDone).toBe(false);
    let flow = await targetFlow(gw, 'sim/sim-fast');
    expect(flow).toMatchObject({ inflight: 1, queued: 0 });
    expect(flow.shedByPriority).toEqual({ ...zeroes, normal: 1 });
    const [event] = await recorded(gw, 1);
    expect(event).toMatchObject({ status: 429, shed: true, errorCode: 'shed_deadline', priority: 'normal' });
    expect(event?.attempts.map((a) => [a.outcome, a.queuedMs])).toEqual([['shed', null]]);

    // A deadline the predicted wait fits in: the request queues, and is shed when it passes.
    const patient = ask(gw, { headers: { 'x-sluice-deadline-ms': '1500' } });
    await untilFlow('the request waits', gw, (f) => f.queued === 1);
    const expired = await patient;
    expect(expired.status).toBe(429);
    expect(errorOf(expired).code).toBe('shed_deadline');
    expect(errorOf(expired).message).toContain('the deadline passed');
    expect(holderDone).toBe(false);
    flow = await targetFlow(gw, 'sim/sim-fast');
    expect(flow).toMatchObject({ inflight: 1, queued: 0 });
    expect(flow.shedByPriority.normal).toBe(2);
  });

  it.each([
    ['x-sluice-deadline-ms', 'soon', 'invalid_deadline'],
    ['x-sluice-deadline-ms', '0', 'invalid_deadline'],
    ['x-sluice-deadline-ms', '-50', 'invalid_deadline'],
    ['x-sluice-deadline-ms', '1.5', 'invalid_deadline'],
    ['x-sluice-priority', 'urgent', 'invalid_priority'],
    ['x-sluice-priority', '', 'invalid_priority'],
  ])('answers 400 naming the header for %s: %j', async (header, value, code) => {
    const gw = await start({ routes: { chat: { targets: [fast] } }, flow: flowWith() });
    const answer = await ask(gw, { headers: { [header]: value } });
    expect(answer.status).toBe(400);
    const error = errorOf(answer);
    expect(error).toMatchObject({ type: 'invalid_request_error', code, param: header });
    expect(error.message).toContain(header);
    if (header === 'x-sluice-priority') expect(error.message).toContain('critical, high, normal, low, batch');
    expect((await simStats(gw)).completed).toBe(0);
  });
});

describe('a client that goes away', () => {
  it('leaves the queue at once and is counted as cancelled, not shed', async () => {
    const gw = await start(
      {
        routes: { chat: { targets: [{ ...fast, limit: fixed(1) }], retries: noRetries } },
        flow: flowWith(),
      },
      { faults: [{ kind: 'hang', models: ['sim-fast'] }] },
    );
    const holder = gw.hold();
    await untilFlow('the permit is taken', gw, (f) => f.inflight === 1);
    const waiter = gw.hold({ headers: asPriority('low') });
    await untilFlow('the request waits', gw, (f) => f.queued === 1);

    waiter.release();
    expect(await waiter.answer).toBe('aborted');
    await untilFlow('the queue is empty', gw, (f) => f.queued === 0);
    const flow = await targetFlow(gw, 'sim/sim-fast');
    expect(flow).toMatchObject({
      inflight: 1,
      cancelled: 1,
      queuedByPriority: zeroes,
      shedByPriority: zeroes,
    });

    const [event] = await recorded(gw, 1);
    expect(event).toMatchObject({ clientAborted: true, shed: false, priority: 'low' });
    expect(attemptsOf(event)).toEqual([{ target: 'sim/sim-fast', reason: 'first', outcome: 'aborted' }]);

    // Nothing stale is left behind: once the permit is free, the next request goes straight through.
    await clearFaults(gw);
    holder.release();
    await untilFlow('the permit is free', gw, (f) => f.inflight === 0);
    const next = await ask(gw);
    expect(next.status).toBe(200);
    expect((await targetFlow(gw, 'sim/sim-fast')).admitted).toBe(2);
  });
});

describe('circuit breaker', () => {
  it('opens on a failing target, skips it for the fallback, and closes after successful probes', async () => {
    const gw = await start(
      {
        routes: {
          chat: { targets: [fast], fallbacks: [smart], retries: noRetries },
          solo: { targets: [fast], retries: noRetries },
        },
        flow: flowWith({
          breaker: {
            enabled: true,
            windowMs: 10_000,
            minRequests: 5,
            failureRate: 0.5,
            openMs: 500,
            halfOpenProbes: 2,
          },
        }),
      },
      { faults: [{ kind: 'error', status: 500, models: ['sim-fast'] }] },
    );
    for (let i = 0; i < 5; i++) {
      const answer = await ask(gw);
      expect(answer.status).toBe(200);
      expect(answer.headers.get('x-sluice-target')).toBe('sim/sim-smart');
    }
    expect(attemptsOf((await recorded(gw, 5))[4])).toEqual([
      { target: 'sim/sim-fast', reason: 'first', outcome: 'error' },
      { target: 'sim/sim-smart', reason: 'fallback', outcome: 'ok' },
    ]);
    expect((await targetFlow(gw, 'sim/sim-fast')).breaker).toBe('open');
    expect((await targetFlow(gw, 'sim/sim-smart')).breaker).toBe('closed');
    expect(
      sampleValue((await scrape(gw)).samples, 'sluice_flow_breaker_open', { target: 'sim/sim-fast' }),
    ).toBe(1);

    // Open: the failing target is skipped without a request, straight to the fallback.
    const skipped = await ask(gw);
    expect(skipped.status).toBe(200);
    expect(skipped.headers.get('x-sluice-target')).toBe('sim/sim-smart');
    expect(attemptsOf((await recorded(gw, 6))[5])).toEqual([
      { target: 'sim/sim-fast', reason: 'first', outcome: 'skipped' },
      { target: 'sim/sim-smart', reason: 'fallback', outcome: 'ok' },
    ]);
    // A route with no other target answers 503 at once.
    const solo = await ask(gw, { model: 'solo' });
    expect(solo.status).toBe(503);
    expect(retryAfter(solo)).toBeGreaterThanOrEqual(1);
    expect(errorOf(solo).code).toBe('circuit_open');
    expect((await recorded(gw, 7))[6]).toMatchObject({ status: 503, shed: true, errorCode: 'circuit_open' });
    expect((await simStats(gw)).models['sim-fast']).toMatchObject({ faulted: 5, completed: 0 });

    // Recovered: after openMs the breaker lets probes through, and their successes close it.
    await clearFaults(gw);
    await untilFlow('it half-opens', gw, (f) => f.breaker === 'half-open');
    for (let i = 0; i < 2; i++) {
      const probe = await ask(gw);
      expect(probe.status).toBe(200);
      expect(probe.headers.get('x-sluice-target')).toBe('sim/sim-fast');
    }
    expect((await targetFlow(gw, 'sim/sim-fast')).breaker).toBe('closed');
    expect(
      sampleValue((await scrape(gw)).samples, 'sluice_flow_breaker_open', { target: 'sim/sim-fast' }),
    ).toBe(0);
    expect((await simStats(gw)).models['sim-fast']).toMatchObject({ faulted: 5, completed: 2 });
  });
});

describe('retry budget', () => {
  it('bounds the extra attempts against a failing target to ratio × requests plus the floor', async () => {
    const ratio = 0.1;
    const minPerSecond = 1;
    const gw = await start(
      {
        routes: { chat: { targets: [fast], retries: { attempts: 3, baseDelayMs: 1, maxDelayMs: 2 } } },
        flow: flowWith({ retryBudget: { ratio, minPerSecond } }),
      },
      { faults: [{ kind: 'error', status: 500, models: ['sim-fast'] }] },
    );
    const requests = 40;
    const answers: Answer[] = [];
    const started = performance.now();
    for (let i = 0; i < requests; i++) answers.push(await ask(gw));
    const seconds = Math.floor((performance.now() - started) / 1000) + 1;

    const upstream = (await simStats(gw)).models['sim-fast']?.faulted ?? 0;
    const extra = upstream - requests;
    expect(extra).toBeGreaterThan(0);
    expect(extra).toBeLessThanOrEqual(ratio * requests + minPerSecond * seconds);

    expect(answers.every((a) => a.status === 502)).toBe(true);
    const exhausted = answers.filter((a) => errorOf(a).code === 'retry_budget_exhausted');
    // Only a request granted all three retries may end otherwise.
    expect(exhausted.length).toBeGreaterThanOrEqual(requests - extra / 3);
    expect(errorOf(exhausted[0] as Answer).message).toContain("retry budget of route 'chat' is spent");
    expect(errorOf(exhausted[0] as Answer).message).toContain('sim/sim-fast answered 500');
    expect((await flowView(gw)).retryBudgets.chat).toMatchObject({
      withdrawn: extra,
      refused: exhausted.length,
    });
  });
});

describe('hedging', () => {
  const hedgedRoute: RouteInput = {
    targets: [smart],
    fallbacks: [fast],
    retries: noRetries,
    hedge: { delayMs: 50 },
  };
  const slowFirstByte: FaultInput = { kind: 'slow-first-byte', delayMs: '1s', models: ['sim-smart'] };

  it.each([false, true])(
    'answers from the second target when the first is slow, and cancels the first (stream: %s)',
    async (stream) => {
      const gw = await start(
        { routes: { chat: hedgedRoute }, flow: flowWith() },
        { faults: [slowFirstByte] },
      );
      const answer = await ask(gw, { stream });
      expect(answer.status).toBe(200);
      expect(answer.headers.get('x-sluice-target')).toBe('sim/sim-fast');
      if (stream) {
        // One clean stream: one completion's chunks, one finish, one [DONE] at the end, no error.
        const data = answer.text
          .split('\n\n')
          .filter((block) => block.trim() !== '')
          .map((block) => {
            expect(block.startsWith('data: ')).toBe(true);
            return block.slice('data: '.length);
          });
        expect(data.at(-1)).toBe('[DONE]');
        expect(data.filter((d) => d === '[DONE]')).toHaveLength(1);
        const chunks = data.slice(0, -1).map(
          (d) =>
            JSON.parse(d) as {
              id: string;
              model: string;
              error?: unknown;
              choices: Array<{ finish_reason: string | null }>;
            },
        );
        expect(chunks.length).toBeGreaterThan(2);
        expect(new Set(chunks.map((c) => c.id)).size).toBe(1);
        expect(chunks.every((c) => c.error === undefined && c.model === 'sim-fast')).toBe(true);
        expect(chunks.filter((c) => c.choices[0]?.finish_reason)).toHaveLength(1);
      } else {
        const body = JSON.parse(answer.text) as {
          model: string;
          choices: Array<{ message: { content: string } }>;
        };
        expect(body.model).toBe('sim-fast');
        expect(body.choices[0]?.message.content).toBeTruthy();
      }

      const [event] = await recorded(gw, 1);
      expect(event).toMatchObject({ status: 200, stream, hedges: 1, target: 'sim/sim-fast' });
      expect(attemptsOf(event)).toEqual([
        { target: 'sim/sim-smart', reason: 'first', outcome: 'aborted' },
        { target: 'sim/sim-fast', reason: 'hedge', outcome: 'ok' },
      ]);
      // The slow attempt was cancelled upstream: it gave its slot back without completing.
      await until(async () => (await simStats(gw)).inFlight === 0, 'the simulator is idle');
      const stats = await simStats(gw);
      expect(stats.models['sim-smart']).toMatchObject({ completed: 0, inFlight: 0 });
      expect(stats.models['sim-fast']).toMatchObject({ completed: 1, inFlight: 0 });
      expect((await flowView(gw)).retryBudgets.chat?.withdrawn).toBe(1);
    },
  );
});

describe('adaptive limits', () => {
  it('brings a gradient2 limit down under sustained overload, and counts 429/529 as drops', async () => {
    const initialLimit = 40;
    const gw = await start(
      {
        routes: {
          chat: {
            targets: [{ ...fast, limit: { algorithm: 'gradient2', initialLimit } }],
            retries: noRetries,
          },
        },
        // 40 closed-loop clients on 4 slots is a standing queue, which the queue-delay target
        // would shed; this test is about the limit, so waits are bounded by deadlines alone.
        flow: flowWith({ queue: { maxQueue: 100, delayTarget: 0 } }),
      },
      {
        models: [
          {
            name: 'sim-fast',
            slots: 4,
            queueLimit: 10_000,
            prefillBaseMs: 2,
            prefillMsPerToken: 0,
            decodeMsPerToken: 2,
            batchSlowdown: 0.05,
            outputTokens: { mean: 8, spread: 0 },
          },
        ],
      },
    );
    expect((await ask(gw)).status).toBe(200);
    expect((await targetFlow(gw, 'sim/sim-fast')).limit).toBe(initialLimit);

    // 40 clients against 4 slots: most of each request's time is spent queueing in the simulator.
    const clients = 40;
    const each = 5;
    const statuses = await Promise.all(
      Array.from({ length: clients }, async () => {
        const seen: number[] = [];
        for (let i = 0; i < each; i++) seen.push((await ask(gw)).status);
        return seen;
      }),
    );
    expect(statuses.flat().every((s) => s === 200)).toBe(true);
    const after = await targetFlow(gw, 'sim/sim-fast');
    expect(after.limit).toBeLessThan(initialLimit);
    expect(after.dropped).toBe(0);

    const dropped = async () =>
      sampleValue((await scrape(gw)).samples, 'sluice_flow_dropped_total', { target: 'sim/sim-fast' });
    expect(await dropped()).toBe(0);
    await addFault(gw, { kind: 'error', status: 429, models: ['sim-fast'] });
    for (let i = 0; i < 3; i++) expect((await ask(gw)).status).toBe(429);
    await clearFaults(gw);
    await addFault(gw, { kind: 'error', status: 529, models: ['sim-fast'] });
    for (let i = 0; i < 3; i++) expect((await ask(gw)).status).toBe(503);
    expect(await dropped()).toBe(6);
    expect((await targetFlow(gw, 'sim/sim-fast')).dropped).toBe(6);
  });
});

describe('balancing', () => {
  it('p2c with peak-EWMA sends most requests to the fast target, and some to the slow one', async () => {
    const profile = { ...quickModel, prefillBaseMs: 10, decodeMsPerToken: 5 };
    const gw = await start(
      {
        routes: { chat: { targets: [fast, smart], balancer: 'p2c-peak-ewma', retries: noRetries } },
        flow: flowWith(),
      },
      {
        models: [
          { name: 'sim-fast', ...profile },
          { name: 'sim-smart', ...profile },
        ],
        // Peak-EWMA holds a target's slowest recent sample for seconds, so a stall of the test
        // process (a busy machine) raises the fast target's cost too: the slow one is made
        // 20 times slower so that such a stall cannot close the gap.
        faults: [{ kind: 'latency', multiplier: 20, models: ['sim-smart'] }],
      },
    );
    const counts: Record<string, number> = {};
    await Promise.all(
      Array.from({ length: 12 }, async () => {
        for (let i = 0; i < 10; i++) {
          const answer = await ask(gw);
          expect(answer.status).toBe(200);
          const target = answer.headers.get('x-sluice-target') ?? '';
          counts[target] = (counts[target] ?? 0) + 1;
        }
      }),
    );
    const toFast = counts['sim/sim-fast'] ?? 0;
    const toSlow = counts['sim/sim-smart'] ?? 0;
    expect(toFast + toSlow).toBe(120);
    expect(toFast).toBeGreaterThan(2 * toSlow);
    expect(toSlow).toBeGreaterThan(0);
    const flow = await flowView(gw);
    const latency = (id: string) => flow.targets.find((t) => t.target === id)?.latencyMs ?? 0;
    expect(latency('sim/sim-smart')).toBeGreaterThan(latency('sim/sim-fast'));
  });
});

describe('metrics and the off switch', () => {
  it('exports the sluice_flow_* series per target, and per priority where it applies', async () => {
    const gw = await start(
      {
        routes: { chat: { targets: [{ ...fast, limit: fixed(1) }], retries: noRetries } },
        flow: flowWith({ queue: { maxQueue: 0 } }),
      },
      { faults: [{ kind: 'hang', models: ['sim-fast'] }] },
    );
    gw.hold();
    await untilFlow('the permit is taken', gw, (f) => f.inflight === 1);
    const shed = await ask(gw, { headers: asPriority('batch') });
    expect(shed.status).toBe(429);

    const { text, samples } = await scrape(gw);
    const target = 'sim/sim-fast';
    for (const name of [
      'sluice_flow_limit',
      'sluice_flow_inflight',
      'sluice_flow_queued',
      'sluice_flow_shed_total',
      'sluice_flow_dropped_total',
      'sluice_flow_breaker_open',
    ]) {
      expect(text).toContain(`# TYPE ${name} `);
    }
    expect(sampleValue(samples, 'sluice_flow_limit', { target })).toBe(1);
    expect(sampleValue(samples, 'sluice_flow_inflight', { target })).toBe(1);
    expect(sampleValue(samples, 'sluice_flow_dropped_total', { target })).toBe(0);
    expect(sampleValue(samples, 'sluice_flow_breaker_open', { target })).toBe(0);
    for (const priority of Object.keys(zeroes)) {
      expect(sampleValue(samples, 'sluice_flow_queued', { target, priority })).toBe(0);
      expect(sampleValue(samples, 'sluice_flow_shed_total', { target, priority })).toBe(
        priority === 'batch' ? 1 : 0,
      );
    }
    const flowSamples = samples.filter((s) => s.name.startsWith('sluice_flow_'));
    expect(flowSamples.every((s) => s.labels.target === target)).toBe(true);
  });

  it('with flow.enabled false, nothing is limited, queued or shed, even with tiny limits configured', async () => {
    const gw = await start(
      {
        routes: { chat: { targets: [{ ...fast, limit: fixed(1) }], retries: noRetries } },
        flow: {
          enabled: false,
          limit: fixed(1),
          queue: { maxQueue: 0 },
          retryBudget: { ratio: 0, minPerSecond: 0 },
        },
      },
      { faults: [{ kind: 'slow-first-byte', delayMs: '500ms', models: ['sim-fast'] }] },
    );
    const answers = Array.from({ length: 8 }, () => ask(gw, { headers: asPriority('batch') }));
    // All eight are upstream at once, which a limit of 1 with no queue would never allow.
    await until(async () => (await simStats(gw)).models['sim-fast']?.inFlight === 8, 'all are upstream');
    for (const answer of await Promise.all(answers)) expect(answer.status).toBe(200);

    expect(await flowView(gw)).toEqual({
      enabled: false,
      targets: [],
      retryBudgets: {},
      routes: { chat: { targets: ['sim/sim-fast'], fallbacks: [] } },
    });
    const { samples } = await scrape(gw);
    expect(samples.filter((s) => s.name.startsWith('sluice_flow_'))).toEqual([]);
    for (const event of await recorded(gw, 8)) {
      expect(event).toMatchObject({ status: 200, shed: false, queuedMs: 0 });
      expect(event.attempts.map((a) => a.queuedMs)).toEqual([null]);
    }
  });
});
