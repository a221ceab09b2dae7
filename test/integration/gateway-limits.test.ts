import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type IncomingMessage } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import type { SluiceConfigInput } from '../../src/config/schema.js';
import type { Plan } from '../../src/gateway/resolve.js';
import { chatTokenEstimate, chatTokens } from '../../src/gateway/worst-case.js';
import { chatCompletionRequestSchema } from '../../src/http/wire/openai-chat.js';
import type { SimConfigInput } from '../../src/sim/config.js';
import { quickModels, type RunningGateway, startGatewayWithSim } from '../support/gateway.js';
import { freePort } from '../support/ports.js';
import { serverForSuite, startRedis } from '../support/servers.js';

const adminKey = 'limits-tests-admin-key-0001';
const webKey = 'sk-web-0123456789abcdef';
const batchKey = 'sk-batch-0123456789abcdef';
/** USD per million tokens of both simulated models, overriding the catalog's. */
const price = { input: 10, output: 30 };

const simConfig: SimConfigInput = {
  seed: 7,
  models: quickModels,
};

const keys = [
  { name: 'web', key: webKey, team: 'search', org: 'acme' },
  { name: 'batch', key: batchKey, team: 'data', org: 'acme' },
];

type Running = RunningGateway & { sim: { url: string } };

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-limits-'));
  onTestFinished(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function start(overrides: Partial<SluiceConfigInput>, dataDir?: string): Promise<Running> {
  const running = await startGatewayWithSim(
    {
      auth: { adminKey, apiKeys: keys },
      dataDir: dataDir ?? (await tempDir()),
      flow: { enabled: false },
      prices: { 'sim/sim-fast': price, 'sim/sim-smart': price },
      ...overrides,
    },
    { config: simConfig },
  );
  // Restart tests close a gateway themselves; closing it twice is a no-op.
  let closing: Promise<void> | undefined;
  running.close = ((close) => () => {
    closing ??= close();
    return closing;
  })(running.close);
  onTestFinished(() => running.close());
  return running;
}

const question = (extra: Record<string, unknown> = {}) => ({
  model: 'sim-fast',
  messages: [
    { role: 'user', content: 'Summarize the information available regarding international cooperation.' },
  ],
  max_tokens: 16,
  ...extra,
});

function chat(url: string, key: string, body: unknown = question()): Promise<Response> {
  return fetch(`${url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
    body: JSON.stringify(body),
  });
}

interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
}

/** What a 200 answer cost at the test's price, from the usage it reports. */
const costOfAnswer = (usage: Usage) =>
  (usage.prompt_tokens * price.input + usage.completion_tokens * price.output) / 1e6;

interface BudgetBody {
  name: string;
  usd: { limit: number; spent: number; reserved: number } | null;
  tokens: { limit: number; spent: number; reserved: number } | null;
  resetsAt: string | null;
}

async function budgets(url: string): Promise<Record<string, BudgetBody>> {
  const response = await fetch(`${url}/admin/budgets`, { headers: { authorization: `Bearer ${adminKey}` } });
  expect(response.status).toBe(200);
  const body = (await response.json()) as { budgets: BudgetBody[] };
  return Object.fromEntries(body.budgets.map((b) => [b.name, b]));
}

/** Settlement runs after the response: wait until no request holds anything. */
async function settled(url: string, name: string): Promise<BudgetBody> {
  await expect
    .poll(async () => {
      const b = (await budgets(url))[name];
      return (b?.usd?.reserved ?? 0) + (b?.tokens?.reserved ?? 0);
    })
    .toBe(0);
  return (await budgets(url))[name] as BudgetBody;
}

/** Sends requests one by one until one is refused; returns the answers' costs and the refusal. */
async function spendUntilRefused(url: string, key: string, max = 50) {
  const costs: number[] = [];
  for (let i = 0; i < max; i++) {
    const response = await chat(url, key);
    if (response.status !== 200) return { costs, refusal: response };
    costs.push(costOfAnswer(((await response.json()) as { usage: Usage }).usage));
  }
  throw new Error(`no refusal after ${max} requests`);
}

const sum = (values: number[]) => values.reduce((a, b) => a + b, 0);

describe('budgets through the gateway', () => {
  it('refuses with 402 before calling upstream, naming the budget, scope, limit, spend and reset', async () => {
    const gw = await start({
      budgets: [{ name: 'web-daily', scope: { key: 'web' }, period: 'day', limitUsd: 0.003 }],
    });
    const before = Date.now();
    const { costs, refusal } = await spendUntilRefused(gw.url, webKey);
    const after = Date.now();
    expect(costs.length).toBeGreaterThan(0);
    expect(refusal.status).toBe(402);
    const body = (await refusal.json()) as { error: Record<string, unknown> };
    const spent = sum(costs);
    const nextMidnight = (t: number) => {
      const d = new Date(t);
      return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate() + 1);
    };
    expect(body.error).toMatchObject({
      type: 'insufficient_quota',
      code: 'budget_exceeded',
      param: null,
      budget: {
        name: 'web-daily',
        scope: { key: 'web' },
        period: 'day',
        unit: 'usd',
        limit: 0.003,
        reserved: 0,
        resetsAt: new Date(nextMidnight(after)).toISOString(),
      },
    });
    const detail = body.error.budget as { spent: number; requested: number };
    expect(detail.spent).toBeCloseTo(spent, 9);
    expect(detail.spent + detail.requested).toBeGreaterThan(0.003);
    expect(body.error.message).toMatch(
      /^Budget 'web-daily' of key 'web' \(day\) cannot cover this request: \$0\.00\d+ of \$0\.003 spent, \$0 held by requests in flight, and this request could cost up to \$0\.000\d+\. .*It resets at \d{4}-\d\d-\d\dT00:00:00\.000Z\.$/,
    );
    // Until the next UTC midnight, as seen from either side of the request.
    const retryAfter = Number(refusal.headers.get('retry-after'));
    expect(retryAfter).toBeLessThanOrEqual(Math.ceil((nextMidnight(before) - before) / 1000));
    expect(retryAfter).toBeGreaterThanOrEqual(Math.floor((nextMidnight(after) - after) / 1000));

    const refused = gw.events.filter((e) => e.status === 402);
    expect(refused).toHaveLength(1);
    expect(refused[0]?.attempts).toEqual([]);
    expect(gw.events.filter((e) => e.status === 200)).toHaveLength(costs.length);
  });

  it('admits a request its prompt’s byte bound would not fit when its exact count does, and refuses with the exact count', async () => {
    const request = chatCompletionRequestSchema.parse(question());
    const probe = await start({});
    const route = probe.gateway.runtime.routes.get('sim-fast');
    if (!route) throw new Error('no sim-fast route');
    const plan = { route, order: route.targets };
    const { bound } = chatTokens(request, plan);
    const exact = await chatTokenEstimate(request, plan);
    const exactTotal = exact.input + exact.output;
    expect(bound.input + bound.output).toBeGreaterThan(exactTotal);

    const gw = await start({
      budgets: [{ name: 'web-tokens', scope: { key: 'web' }, period: 'total', limitTokens: exactTotal }],
    });
    expect((await chat(gw.url, webKey)).status).toBe(200);
    await settled(gw.url, 'web-tokens');
    const refused = await chat(gw.url, webKey);
    expect(refused.status).toBe(402);
    const body = (await refused.json()) as { error: { budget: { requested: number } } };
    expect(body.error.budget.requested).toBe(exactTotal);
  });

  it('answers an Anthropic client with a billing_error in its own shape', async () => {
    const gw = await start({
      budgets: [{ name: 'tiny', scope: { key: 'web' }, period: 'total', limitTokens: 10 }],
    });
    const response = await fetch(`${gw.url}/v1/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': webKey, 'anthropic-version': '2023-06-01' },
      body: JSON.stringify({
        model: 'sim-fast',
        max_tokens: 16,
        messages: [{ role: 'user', content: 'Hello there.' }],
      }),
    });
    expect(response.status).toBe(402);
    expect(response.headers.get('retry-after')).toBeNull();
    const body = (await response.json()) as { type: string; error: { type: string; message: string } };
    expect(body.type).toBe('error');
    expect(body.error.type).toBe('billing_error');
    expect(body.error.message).toMatch(
      /^Budget 'tiny' of key 'web' \(total\) cannot cover this request: 0 tokens of 10 tokens spent, 0 tokens held by requests in flight, and this request could cost up to \d+ tokens\. Lower max_tokens \(or shorten the prompt\) to fit what is left\. This budget never resets: ask an admin to raise it\.$/,
    );
  });

  it('counts the actual cost of each answer, not its reservation', async () => {
    const gw = await start({
      budgets: [{ name: 'web-month', scope: { key: 'web' }, limitUsd: 5, limitTokens: 1e6 }],
    });
    const costs: number[] = [];
    let tokens = 0;
    for (let i = 0; i < 5; i++) {
      const response = await chat(gw.url, webKey);
      const { usage } = (await response.json()) as { usage: Usage };
      costs.push(costOfAnswer(usage));
      tokens += usage.prompt_tokens + usage.completion_tokens;
    }
    const status = await settled(gw.url, 'web-month');
    expect(status.usd?.spent).toBeCloseTo(sum(costs), 9);
    expect(status.tokens?.spent).toBe(tokens);
  });

  it('releases the reservation of a request whose upstream failed', async () => {
    const gw = await start({
      budgets: [{ name: 'web-month', scope: { key: 'web' }, limitUsd: 5 }],
      routes: {
        'sim-fast': { targets: [{ provider: 'sim', model: 'sim-fast' }], retries: { attempts: 0 } },
      },
    });
    await fetch(`${gw.sim.url}/sim/faults`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ faults: [{ kind: 'error', status: 500 }] }),
    }).then((r) => expect(r.ok).toBe(true));
    const response = await chat(gw.url, webKey);
    expect(response.status).toBe(502);
    const status = await settled(gw.url, 'web-month');
    expect(status.usd).toEqual({ limit: 5, spent: 0, reserved: 0 });
  });

  it('applies the budgets of the key’s team and org, each to its own members only', async () => {
    const gw = await start({
      budgets: [
        { name: 'search-team', scope: { team: 'search' }, limitTokens: 60 },
        { name: 'acme-org', scope: { org: 'acme' }, limitUsd: 100 },
      ],
    });
    const { refusal } = await spendUntilRefused(gw.url, webKey);
    expect(refusal.status).toBe(402);
    const body = (await refusal.json()) as { error: { message: string; budget: { name: string } } };
    expect(body.error.budget.name).toBe('search-team');
    expect(body.error.message).toContain("of team 'search'");
    // The batch key is in another team of the same org: its requests still go through.
    expect((await chat(gw.url, batchKey)).status).toBe(200);
    const status = await settled(gw.url, 'acme-org');
    expect(status.usd?.spent).toBeGreaterThan(0);
  });

  it('logs, counts and posts to the webhook once when spend crosses the soft limit, without holding requests', async () => {
    const received: { body: Record<string, unknown>; contentType?: string }[] = [];
    const hook = createServer((req: IncomingMessage, res) => {
      let text = '';
      req.on('data', (chunk) => {
        text += chunk;
      });
      req.on('end', () => {
        received.push({ body: JSON.parse(text), contentType: req.headers['content-type'] });
        res.end('ok');
      });
    });
    await new Promise<void>((resolve) => hook.listen(0, '127.0.0.1', resolve));
    onTestFinished(() => new Promise<void>((resolve) => hook.close(() => resolve())));
    const port = (hook.address() as { port: number }).port;
    const unreachable = `http://127.0.0.1:${await freePort()}/hook`;
    const gw = await start({
      budgets: [
        {
          name: 'web-soft',
          scope: { key: 'web' },
          limitUsd: 1,
          limitTokens: 1000,
          softLimitPct: 10,
          webhook: `http://127.0.0.1:${port}/budget-alerts/SECRET-TOKEN`,
        },
        {
          name: 'org-soft',
          scope: { org: 'acme' },
          limitTokens: 1000,
          softLimitPct: 1,
          webhook: unreachable,
        },
      ],
    });
    const send = async () => {
      expect((await chat(gw.url, webKey)).status).toBe(200);
      await settled(gw.url, 'web-soft');
    };
    for (let i = 0; i < 20 && received.length === 0; i++) {
      await send();
      // The webhook is posted in the background: give it its moment before the next request.
      const spent = (await budgets(gw.url))['web-soft']?.tokens?.spent ?? 0;
      if (spent >= 100) await expect.poll(() => received.length).toBe(1);
    }
    await send();
    await send();
    expect(received).toHaveLength(1);
    expect(received[0]?.contentType).toBe('application/json');
    expect(received[0]?.body).toMatchObject({
      type: 'budget.soft_limit_crossed',
      budget: 'web-soft',
      scope: { key: 'web' },
      period: 'month',
      unit: 'tokens',
      limit: 1000,
      softLimit: 100,
    });
    expect(received[0]?.body.spent).toBeGreaterThanOrEqual(100);

    const metrics = await (await fetch(`${gw.url}/metrics`)).text();
    expect(metrics).toContain('sluice_budget_soft_limit_crossings_total{budget="web-soft",unit="tokens"} 1');
    expect(metrics).toContain('sluice_budget_soft_limit_crossings_total{budget="org-soft",unit="tokens"} 1');
    await expect.poll(() => gw.logs.some((line) => line.includes('budget webhook failed'))).toBe(true);
    const crossed = gw.logs.filter((line) => line.includes('crossed its soft limit'));
    expect(crossed).toHaveLength(2);
    // Webhook URLs carry secrets in their path: they are never logged.
    expect(gw.logs.some((line) => line.includes('SECRET-TOKEN'))).toBe(false);
  });

  it('keeps settled spend across a restart of a single node (memory state, spend file)', async () => {
    const dataDir = await tempDir();
    const config = {
      budgets: [{ name: 'web-total', scope: { key: 'web' }, period: 'total' as const, limitUsd: 0.002 }],
    };
    const first = await start(config, dataDir);
    const { costs, refusal } = await spendUntilRefused(first.url, webKey);
    expect(refusal.status).toBe(402);
    const before = await settled(first.url, 'web-total');
    await first.close();

    const second = await start(config, dataDir);
    const after = (await budgets(second.url))['web-total'];
    expect(after?.usd?.spent).toBe(before.usd?.spent);
    expect(after?.usd?.spent).toBeCloseTo(sum(costs), 9);
    expect((await chat(second.url, webKey)).status).toBe(402);
  });
});

describe('rate limits through the gateway', () => {
  const planFor = (gw: Running): Plan => {
    const route = gw.gateway.runtime.routes.get('sim-fast');
    if (!route) throw new Error('no sim-fast route');
    return { route, order: route.targets };
  };

  it('sends OpenAI’s x-ratelimit headers with each answer', async () => {
    const gw = await start({
      rateLimits: [{ scope: { key: 'web' }, requestsPerMinute: 3, tokensPerMinute: 600 }],
    });
    const response = await chat(gw.url, webKey);
    expect(response.status).toBe(200);
    const h = (name: string) => response.headers.get(name);
    expect(h('x-ratelimit-limit-requests')).toBe('3');
    expect(h('x-ratelimit-remaining-requests')).toBe('2');
    expect(h('x-ratelimit-reset-requests')).toBe('20s');
    expect(h('x-ratelimit-limit-tokens')).toBe('600');
    // Far from the limit, the prompt's byte bound is what admission holds until the answer settles.
    const { bound } = chatTokens(chatCompletionRequestSchema.parse(question()), planFor(gw));
    const reserved = bound.input + bound.output;
    expect(Number(h('x-ratelimit-remaining-tokens'))).toBe(600 - reserved);
    // 600 tokens a minute is 100 ms a token.
    expect(h('x-ratelimit-reset-tokens')).toBe(`${(reserved * 100) / 1000}s`);
  });

  it('refuses with 429, Retry-After and rate_limit_exceeded naming the limit that ran out', async () => {
    const gw = await start({ rateLimits: [{ scope: { key: 'web' }, requestsPerMinute: 3 }] });
    for (let i = 0; i < 3; i++) expect((await chat(gw.url, webKey)).status).toBe(200);
    const refused = await chat(gw.url, webKey);
    expect(refused.status).toBe(429);
    const retryAfter = Number(refused.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(20);
    expect(Number(refused.headers.get('retry-after-ms'))).toBeLessThanOrEqual(20_000);
    expect(refused.headers.get('x-ratelimit-remaining-requests')).toBe('0');
    const body = (await refused.json()) as { error: Record<string, unknown> };
    expect(body.error).toMatchObject({
      type: 'rate_limit_error',
      code: 'rate_limit_exceeded',
      rate_limit: { scope: { key: 'web' }, kind: 'requests', limit: 3, requested: 1 },
    });
    expect(body.error.message).toMatch(
      /^Rate limit of 3 requests per minute of key 'web' reached: retry in [\d.]+s\.$/,
    );
    expect(gw.events.find((e) => e.status === 429)?.attempts).toEqual([]);
    // Other keys have limits of their own (none here).
    expect((await chat(gw.url, batchKey)).status).toBe(200);
  });

  it('shares a route’s limit among every caller of the route', async () => {
    const gw = await start({ rateLimits: [{ scope: { route: 'sim-fast' }, requestsPerMinute: 2 }] });
    expect((await chat(gw.url, webKey)).status).toBe(200);
    expect((await chat(gw.url, batchKey)).status).toBe(200);
    const refused = await chat(gw.url, webKey);
    expect(refused.status).toBe(429);
    expect(((await refused.json()) as { error: { message: string } }).error.message).toContain(
      "of route 'sim-fast'",
    );
    expect((await chat(gw.url, webKey, question({ model: 'sim-smart' }))).status).toBe(200);
  });

  it('reserves prompt plus max_tokens on admission and gives back what the answer did not use', async () => {
    const gw = await start({ rateLimits: [{ scope: { team: 'search' }, tokensPerMinute: 2000 }] });
    const big = question({ max_tokens: 1500 });
    // Without the correction, two such reservations would not fit in 2000 tokens.
    expect((await chat(gw.url, webKey, big)).status).toBe(200);
    expect((await chat(gw.url, webKey, big)).status).toBe(200);
    const tooLarge = await chat(gw.url, webKey, question({ max_tokens: 2500 }));
    expect(tooLarge.status).toBe(429);
    expect(tooLarge.headers.get('retry-after')).toBeNull();
    const body = (await tooLarge.json()) as {
      error: { message: string; rate_limit: Record<string, unknown> };
    };
    expect(body.error.message).toMatch(
      /^Request too large for the limit of 2000 tokens per minute of team 'search': it may use \d+ \(prompt plus max_tokens\)\./,
    );
    expect(body.error.rate_limit).toMatchObject({ kind: 'tokens', limit: 2000, retryAfterMs: null });
  });

  it('admits a request that its prompt’s byte bound would not fit but its exact count does', async () => {
    const request = chatCompletionRequestSchema.parse(question());
    const probe = await start({});
    const { bound } = chatTokens(request, planFor(probe));
    const exact = await chatTokenEstimate(request, planFor(probe));
    const exactTotal = exact.input + exact.output;
    expect(bound.input + bound.output).toBeGreaterThan(exactTotal);

    const gw = await start({ rateLimits: [{ scope: { key: 'web' }, tokensPerMinute: exactTotal }] });
    const admitted = await chat(gw.url, webKey);
    expect(admitted.status).toBe(200);
    expect(admitted.headers.get('x-ratelimit-remaining-tokens')).toBe('0');
  });

  it('counts the prompt exactly, giving back the bound’s excess, when the bound leaves a token limit too little room', async () => {
    const request = chatCompletionRequestSchema.parse(question());
    const probe = await start({});
    const { bound } = chatTokens(request, planFor(probe));
    const exact = await chatTokenEstimate(request, planFor(probe));
    const boundTotal = bound.input + bound.output;
    // One bound fits, but what it leaves would not fit a second one.
    const limit = 2 * boundTotal - 1;
    const gw = await start({ rateLimits: [{ scope: { key: 'web' }, tokensPerMinute: limit }] });
    const response = await chat(gw.url, webKey);
    expect(response.status).toBe(200);
    // The bucket as it is after the correction: what the exact count left (a give-back rounds down,
    // so up to one token less), not what the bound left.
    const remaining = Number(response.headers.get('x-ratelimit-remaining-tokens'));
    const exactLeft = limit - (exact.input + exact.output);
    expect(remaining).toBeLessThanOrEqual(exactLeft);
    expect(remaining).toBeGreaterThanOrEqual(exactLeft - 1);
    expect(exactLeft - 1).toBeGreaterThan(limit - boundTotal);
  });

  it('refuses with 503, sending nothing upstream, when the shared state does not answer', async () => {
    const gw = await start({
      rateLimits: [{ scope: { key: 'web' }, requestsPerMinute: 100 }],
      state: { store: 'redis', redisUrl: `redis://127.0.0.1:${await freePort()}`, timeoutMs: 200 },
    });
    const response = await chat(gw.url, webKey);
    expect(response.status).toBe(503);
    expect(response.headers.get('retry-after')).toBe('1');
    const body = (await response.json()) as { error: { code: string } };
    expect(body.error.code).toBe('limits_unavailable');
    expect(gw.events[0]?.attempts).toEqual([]);
    // Keys without limits need no shared state.
    expect((await chat(gw.url, batchKey)).status).toBe(200);
  });
});

describe('budgets and rate limits on Redis', () => {
  const redis = serverForSuite(startRedis);

  it('keep spend and rate-limit state across a gateway restart', async () => {
    const state = { store: 'redis' as const, redisUrl: redis.url, keyPrefix: `t:${randomUUID()}:` };
    const config = {
      budgets: [{ name: 'web-total', scope: { key: 'web' }, period: 'total' as const, limitUsd: 0.002 }],
      rateLimits: [{ scope: { key: 'batch' }, requestsPerMinute: 2 }],
      state,
    };
    const first = await start(config);
    const { costs } = await spendUntilRefused(first.url, webKey);
    expect((await chat(first.url, batchKey)).status).toBe(200);
    expect((await chat(first.url, batchKey)).status).toBe(200);
    await settled(first.url, 'web-total');
    await first.close();

    const second = await start(config);
    expect((await budgets(second.url))['web-total']?.usd?.spent).toBeCloseTo(sum(costs), 9);
    expect((await chat(second.url, webKey)).status).toBe(402);
    expect((await chat(second.url, batchKey)).status).toBe(429);
  });
});
