import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { SimConfigInput } from '../../src/sim/config.js';
import { type DemoTraffic, demoCallers, startDemoTraffic } from '../../src/sim/demo-traffic.js';
import type { RunningSimulator } from '../../src/sim/server.js';
import { ManualClock } from '../../src/time/manual-clock.js';
import { type RunningGateway, startGatewayWithSim } from '../support/gateway.js';

type ModelInput = NonNullable<SimConfigInput['models']>[number];

/** Quick, roomy models: a request takes a few milliseconds and never queues in the simulator. */
const quick = {
  slots: 256,
  queueLimit: 1024,
  prefillBaseMs: 1,
  prefillMsPerToken: 0,
  decodeMsPerToken: 0.2,
  batchSlowdown: 0,
  outputTokens: { mean: 8, spread: 0 },
};
const models: ModelInput[] = [
  { name: 'sim-fast', ...quick },
  { name: 'sim-smart', ...quick },
  { name: 'sim-reasoner', ...quick },
  { name: 'sim-embed', kind: 'embedding', ...quick },
];

const callers = demoCallers({
  'web-app': 'demo-test-key-web-app-0001',
  'support-bot': 'demo-test-key-support-0001',
  search: 'demo-test-key-search-00001',
  'nightly-batch': 'demo-test-key-batch-000001',
});

let gw: RunningGateway & { sim: RunningSimulator; close(): Promise<void> };
let clock: ManualClock;
let traffic: DemoTraffic | undefined;

beforeEach(async () => {
  gw = await startGatewayWithSim(
    { auth: { apiKeys: callers.map((c) => ({ name: c.name, key: c.key, priority: c.priority })) } },
    { config: { seed: 3, models } },
  );
  clock = new ManualClock();
});

afterEach(async () => {
  await traffic?.stop();
  traffic = undefined;
  await gw.close();
});

/** Waits until every request sent so far has its answer (faults may hold one back for seconds). */
async function settled(demo: DemoTraffic): Promise<void> {
  for (let i = 0; i < 1_200; i++) {
    const s = demo.stats();
    if (s.answered + s.failed >= s.sent) return;
    await sleep(25);
  }
  throw new Error(`requests still in flight: ${JSON.stringify(demo.stats())}`);
}

/** Moves the demo's clock on in small steps, letting each step's requests finish. */
async function run(demo: DemoTraffic, ms: number): Promise<void> {
  for (let done = 0; done < ms; done += 250) {
    clock.advance(Math.min(250, ms - done));
    await settled(demo);
  }
}

function start(options: Partial<Parameters<typeof startDemoTraffic>[0]> = {}): DemoTraffic {
  traffic = startDemoTraffic({
    gatewayUrl: gw.url,
    simUrl: gw.sim.url,
    callers,
    ratePerSecond: 40,
    faultEveryMs: 60_000,
    burstEveryMs: 90_000,
    burstSize: 10,
    seed: 11,
    clock,
    ...options,
  });
  return traffic;
}

describe('demo traffic', () => {
  it('sends chat, streamed chat and embeddings, OpenAI and Anthropic style, from every caller', async () => {
    const demo = start();
    await run(demo, 5_000);

    const { events } = gw;
    expect(demo.stats().sent).toBeGreaterThan(100);
    expect(demo.stats().skipped).toBe(0);
    expect(demo.stats().failed).toBe(0);
    expect(new Set(events.map((e) => e.keyName))).toEqual(
      new Set(['web-app', 'support-bot', 'search', 'nightly-batch']),
    );
    expect(new Set(events.map((e) => e.operation))).toEqual(new Set(['chat', 'embeddings']));
    expect(new Set(events.map((e) => e.wire))).toEqual(new Set(['openai', 'anthropic']));
    expect(events.some((e) => e.stream)).toBe(true);
    expect(events.some((e) => e.operation === 'chat' && !e.stream)).toBe(true);
    expect(new Set(events.map((e) => e.route))).toEqual(
      new Set(['default', 'sim-fast', 'sim-smart', 'sim-reasoner', 'sim-embed']),
    );
    expect(events.every((e) => e.status === 200)).toBe(true);
  });

  it('gives each caller its priority and tags its requests by feature', async () => {
    const demo = start();
    await run(demo, 3_000);

    const priorityOf = Object.fromEntries(callers.map((c) => [c.name, c.priority]));
    for (const event of gw.events) {
      expect(event.priority).toBe(priorityOf[event.keyName ?? '']);
      expect(event.tags.feature).toBeTruthy();
    }
    expect(new Set(gw.events.map((e) => e.priority))).toEqual(new Set(['high', 'normal', 'batch']));
    expect(new Set(gw.events.flatMap((e) => (e.tags.tier ? [e.tags.tier] : [])))).toEqual(
      new Set(['pro', 'free']),
    );
  });

  it('injects a fault into the simulator now and then', async () => {
    const demo = start({ ratePerSecond: 0.001, faultEveryMs: 60_000 });
    clock.advance(29_999);
    expect(demo.stats().faults).toBe(0);
    clock.advance(1);
    expect(demo.stats().faults).toBe(1);
    let faults: Array<{ kind: string }> = [];
    for (let i = 0; i < 100 && faults.length === 0; i++) {
      await sleep(20);
      faults = ((await (await fetch(`${gw.sim.url}/sim/faults`)).json()) as { faults: typeof faults }).faults;
    }
    expect(faults).toHaveLength(1);
    expect(faults[0]?.kind).toBe('error');
    clock.advance(120_000);
    expect(demo.stats().faults).toBeGreaterThanOrEqual(2);
  });

  it('sends a burst of batch work every so often', async () => {
    const demo = start({ ratePerSecond: 0.001, burstEveryMs: 90_000, burstSize: 10 });
    clock.advance(30_000);
    await settled(demo);
    expect(demo.stats().bursts).toBe(1);
    const batch = gw.events.filter((e) => e.keyName === 'nightly-batch');
    expect(batch.length).toBeGreaterThanOrEqual(10);
    expect(batch.every((e) => e.priority === 'batch' && e.route === 'sim-reasoner')).toBe(true);
  });

  it('never has more than maxInflight requests out: the rest are skipped', async () => {
    const demo = start({ ratePerSecond: 0.001, burstSize: 25, maxInflight: 10 });
    clock.advance(30_000);
    const stats = demo.stats();
    expect(stats.sent).toBe(10);
    expect(stats.skipped).toBeGreaterThanOrEqual(15);
    await settled(demo);
  });

  it('sends nothing more once stopped', async () => {
    const demo = start();
    clock.advance(1_000);
    await demo.stop();
    const sent = demo.stats().sent;
    clock.advance(60_000);
    expect(demo.stats().sent).toBe(sent);
    expect(clock.pending).toBe(0);
  });
});
