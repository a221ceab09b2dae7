import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import type { SluiceConfigInput } from '../../src/config/schema.js';
import type { Plan } from '../../src/gateway/resolve.js';
import { chatTokenEstimate, worstCaseUsd } from '../../src/gateway/worst-case.js';
import { chatCompletionRequestSchema } from '../../src/http/wire/openai-chat.js';
import { budgetLedger } from '../../src/policy/ledger.js';
import { budgetSchema } from '../../src/policy/limit-rules.js';
import { startSimServer } from '../../src/sim/server.js';
import { redisState } from '../../src/state/redis-state.js';
import { type RunningGateway, startGateway } from '../support/gateway.js';
import { startRedis } from '../support/servers.js';

const key = 'sk-race-0123456789abcdef';
/** USD per million tokens, overriding the catalog's price of the simulated model. */
const price = { input: 10, output: 30 };
const budget = { name: 'race', scope: { key: 'racer' }, period: 'day' as const, limitUsd: 0.05 };
const nanos = (usd: number) => Math.round(usd * 1e9);

/** Every request is different (its number), so answers and their costs vary. */
const requestBody = (i: number) => ({
  model: 'chat',
  messages: [
    {
      role: 'user',
      content: `Summarize the information available regarding international cooperation, part ${i}.`,
    },
  ],
  max_tokens: 16,
});

interface Outcome {
  status: number;
  /** What the gateway reserved for it (worst case) and what its answer cost, in dollars. */
  reserved: number;
  cost: number;
  code?: string;
}

/**
 * Fires `count` requests at once, spread round-robin over the gateways, and prices each answer
 * from the usage it reports, the way a client would.
 */
async function race(gateways: RunningGateway[], count: number): Promise<Outcome[]> {
  return Promise.all(
    Array.from({ length: count }, async (_, i): Promise<Outcome> => {
      const gw = gateways[i % gateways.length] as RunningGateway;
      const body = requestBody(i);
      const route = gw.gateway.runtime.routes.get('chat');
      if (!route) throw new Error('no chat route');
      const plan: Plan = { route, order: route.targets };
      const reserved =
        worstCaseUsd(plan, await chatTokenEstimate(chatCompletionRequestSchema.parse(body), plan)) ?? 0;
      const response = await fetch(`${gw.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
        body: JSON.stringify(body),
      });
      const answer = (await response.json()) as {
        usage?: { prompt_tokens: number; completion_tokens: number };
        error?: { code: string };
      };
      const cost = answer.usage
        ? (answer.usage.prompt_tokens * price.input + answer.usage.completion_tokens * price.output) / 1e6
        : 0;
      return { status: response.status, reserved, cost, code: answer.error?.code };
    }),
  );
}

async function startFleet(count: number, state: SluiceConfigInput['state']) {
  const sim = await startSimServer({
    config: {
      seed: 11,
      models: [
        {
          name: 'sim-fast',
          slots: 512,
          queueLimit: 4096,
          prefillBaseMs: 1,
          prefillMsPerToken: 0,
          decodeMsPerToken: 1,
          batchSlowdown: 0,
          outputTokens: { mean: 8, spread: 0.5 },
        },
      ],
    },
  });
  onTestFinished(() => sim.close());
  const dataDir = await mkdtemp(join(tmpdir(), 'sluice-race-'));
  onTestFinished(() => rm(dataDir, { recursive: true, force: true }));
  const gateways: RunningGateway[] = [];
  for (let i = 0; i < count; i++) {
    const gw = await startGateway(
      {
        providers: { sim: { type: 'sim', baseUrl: sim.url } },
        routes: { chat: { targets: [{ provider: 'sim', model: 'sim-fast' }], retries: { attempts: 0 } } },
        auth: { adminKey: 'race-admin-key-0123456789', apiKeys: [{ name: 'racer', key }] },
        budgets: [budget],
        state,
        dataDir,
        prices: { 'sim/sim-fast': price },
        flow: { enabled: false },
        events: { sink: 'none' },
      },
      { simUrl: sim.url },
    );
    gateways.push(gw);
  }
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    await Promise.all(gateways.map((gw) => gw.close()));
  };
  onTestFinished(close);
  return { sim, gateways, close };
}

/** What every race must show, given the settled spend read back once every gateway has stopped. */
function expectHonestLedger(outcomes: Outcome[], spentUsd: number, reservedUsd: number): void {
  const answered = outcomes.filter((o) => o.status === 200);
  const refused = outcomes.filter((o) => o.status === 402);
  // The budget is small: it both admits and refuses.
  expect(answered.length).toBeGreaterThan(10);
  expect(refused.length).toBeGreaterThan(0);
  expect(answered.length + refused.length).toBe(outcomes.length);
  expect(new Set(refused.map((o) => o.code))).toEqual(new Set(['budget_exceeded']));

  // The spend is exactly the sum of what the answers cost, to the nano-dollar.
  expect(nanos(spentUsd)).toBe(answered.reduce((sum, o) => sum + nanos(o.cost), 0));
  expect(reservedUsd).toBe(0);
  // Spend passes the limit only by what requests cost beyond their own reservation; here every
  // answer cost less than its worst case, so it never passes the limit at all.
  const excess = answered.reduce((sum, o) => sum + Math.max(0, o.cost - o.reserved), 0);
  expect(spentUsd).toBeLessThanOrEqual(budget.limitUsd + excess);
  expect(excess).toBe(0);
  expect(spentUsd).toBeLessThanOrEqual(budget.limitUsd);
}

describe('a small budget under a race of concurrent requests', () => {
  it('holds on 3 gateways sharing Redis: 1,000 requests at once never overspend, and spend is what was settled', async () => {
    const redis = await startRedis();
    onTestFinished(() => redis.stop());
    const { sim, gateways, close } = await startFleet(3, { store: 'redis', redisUrl: redis.url });

    const outcomes = await race(gateways, 1000);
    // Stopping a gateway waits for its settlements in flight.
    await close();

    const state = redisState({ url: redis.url, keyPrefix: 'sluice:limits:', timeoutMs: 2_000 });
    onTestFinished(() => state.close());
    const ledger = budgetLedger({ state, now: Date.now, holdTtlMs: 60_000, onSoftLimit: () => {} });
    const [status] = await ledger.status([budgetSchema.parse(budget)]);
    expectHonestLedger(outcomes, status?.usd?.spent ?? -1, status?.usd?.reserved ?? -1);
    // A refused request never reached the upstream.
    expect(sim.sim.stats().completed).toBe(outcomes.filter((o) => o.status === 200).length);
  }, 240_000);

  it('holds on one gateway with memory state: 300 requests at once', async () => {
    const { sim, gateways } = await startFleet(1, { store: 'memory' });
    const gw = gateways[0] as RunningGateway;
    const outcomes = await race(gateways, 300);
    await expect
      .poll(
        async () => (await gw.gateway.limits.status(gw.gateway.runtime.policy.budgets()))[0]?.usd?.reserved,
      )
      .toBe(0);
    const [status] = await gw.gateway.limits.status(gw.gateway.runtime.policy.budgets());
    expectHonestLedger(outcomes, status?.usd?.spent ?? -1, status?.usd?.reserved ?? -1);
    expect(sim.sim.stats().completed).toBe(outcomes.filter((o) => o.status === 200).length);
  }, 120_000);
});
