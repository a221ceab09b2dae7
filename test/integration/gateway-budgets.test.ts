import pg from 'pg';
import { describe, expect, it, onTestFinished } from 'vitest';
import type { SluiceConfigInput } from '../../src/config/schema.js';
import { type Answer, adminApiFor, request } from '../support/admin-api.js';
import { quickModel, type RunningGateway, startGatewayWithSim } from '../support/gateway.js';
import { serverForSuite, startPostgres } from '../support/servers.js';

const ADMIN_KEY = 'sk-admin-budgets-2b4d6f8a0c2e';
const WEB_KEY = 'sk-web-budgets-0123456789abcdef';
const BATCH_KEY = 'sk-batch-budgets-0123456789abcdef';

const adminApi = adminApiFor(ADMIN_KEY);

const chat = (gw: { url: string }, key: string) =>
  request(gw.url, 'POST', '/v1/chat/completions', {
    key,
    body: { model: 'sim-fast', messages: [{ role: 'user', content: 'What is 12 + 30?' }], max_tokens: 16 },
  });

interface BudgetBody {
  name: string;
  source: 'config' | 'store';
  id: string | null;
  tokens: { limit: number; spent: number; reserved: number } | null;
  [field: string]: unknown;
}

async function budgetNamed(gw: { url: string }, name: string): Promise<BudgetBody | undefined> {
  const list = await adminApi(gw).get('/admin/budgets');
  expect(list.status, list.text).toBe(200);
  return (list.body.budgets as BudgetBody[]).find((b) => b.name === name);
}

/** Settlement runs after the response: the spend once no request holds anything. */
async function settledSpend(gw: { url: string }, name: string): Promise<number> {
  await expect.poll(async () => (await budgetNamed(gw, name))?.tokens?.reserved).toBe(0);
  return (await budgetNamed(gw, name))?.tokens?.spent ?? Number.NaN;
}

async function gatewayWith(config: Partial<SluiceConfigInput> = {}): Promise<RunningGateway> {
  const gw = await startGatewayWithSim(
    {
      flow: { enabled: false },
      ...config,
      auth: {
        adminKey: ADMIN_KEY,
        apiKeys: [
          { name: 'web', key: WEB_KEY, team: 'search', org: 'acme' },
          { name: 'batch', key: BATCH_KEY, team: 'data', org: 'acme' },
        ],
        ...config.auth,
      },
    },
    { config: { seed: 3, models: [{ name: 'sim-fast', ...quickModel }] } },
  );
  onTestFinished(() => gw.close());
  return gw;
}

describe('budgets created over the admin API', () => {
  it('take effect without a reload, keep their spend when edited, and lift when deleted', async () => {
    const gw = await gatewayWith();
    expect((await chat(gw, WEB_KEY)).status).toBe(200);

    const created = await adminApi(gw).post('/admin/budgets', {
      name: 'web-tokens',
      scope: { key: 'web' },
      period: 'day',
      limitTokens: 200,
      softLimitPct: 80,
      webhook: 'https://hooks.example.com/T000/SECRET-PATH',
    });
    expect(created.status, created.text).toBe(201);
    expect(created.body).toMatchObject({
      object: 'budget',
      name: 'web-tokens',
      source: 'store',
      scope: { key: 'web' },
      period: 'day',
      softLimitPct: 80,
      webhook: 'https://hooks.example.com/…',
      usd: null,
      tokens: { limit: 200, spent: 0, reserved: 0 },
    });
    expect(created.body.id).toMatch(/^budget_/);
    expect(created.text).not.toContain('SECRET');

    let refusal: Answer | undefined;
    for (let i = 0; i < 50 && !refusal; i++) {
      const answer = await chat(gw, WEB_KEY);
      if (answer.status !== 200) refusal = answer;
    }
    expect(refusal?.status).toBe(402);
    expect(refusal?.body.error?.code).toBe('budget_exceeded');
    expect(refusal?.body.error?.message).toMatch(/^Budget 'web-tokens' of key 'web' \(day\)/);
    // Another key is not in the budget's scope.
    expect((await chat(gw, BATCH_KEY)).status).toBe(200);

    const spent = await settledSpend(gw, 'web-tokens');
    expect(spent).toBeGreaterThan(0);
    const raised = await adminApi(gw).patch('/admin/budgets/web-tokens', { limitTokens: 1_000_000 });
    expect(raised.status, raised.text).toBe(200);
    expect(raised.body.tokens).toEqual({ limit: 1_000_000, spent, reserved: 0 });
    expect(raised.body.updatedAt).not.toBeNull();
    expect((await chat(gw, WEB_KEY)).status).toBe(200);

    const lowered = await adminApi(gw).patch('/admin/budgets/web-tokens', { limitTokens: 1 });
    expect(lowered.status, lowered.text).toBe(200);
    expect((await chat(gw, WEB_KEY)).status).toBe(402);

    const deleted = await adminApi(gw).delete('/admin/budgets/web-tokens');
    expect(deleted.status, deleted.text).toBe(200);
    expect(deleted.body).toMatchObject({ object: 'budget', name: 'web-tokens', deleted: true });
    expect((await chat(gw, WEB_KEY)).status).toBe(200);
    expect(await budgetNamed(gw, 'web-tokens')).toBeUndefined();
    expect((await adminApi(gw).get('/admin/budgets/web-tokens')).status).toBe(404);
  });

  it('lists config and store budgets side by side, each saying where it is declared', async () => {
    const gw = await gatewayWith({
      budgets: [{ name: 'acme-monthly', scope: { org: 'acme' }, limitUsd: 100 }],
    });
    const created = await adminApi(gw).post('/admin/budgets', {
      name: 'search-daily',
      scope: { team: 'search' },
      period: 'day',
      limitUsd: 5,
    });
    expect(created.status, created.text).toBe(201);
    const list = await adminApi(gw).get('/admin/budgets');
    expect(list.body.budgets).toEqual([
      expect.objectContaining({ name: 'acme-monthly', source: 'config', id: null, period: 'month' }),
      expect.objectContaining({ name: 'search-daily', source: 'store', id: created.body.id, period: 'day' }),
    ]);
    const shown = await adminApi(gw).get('/admin/budgets/acme-monthly');
    expect(shown.body).toMatchObject({ name: 'acme-monthly', source: 'config', usd: { limit: 100 } });
  });

  it('keeps config budgets read-only and their names taken, with 409s that say why', async () => {
    const gw = await gatewayWith({
      budgets: [{ name: 'acme-monthly', scope: { org: 'acme' }, limitUsd: 100 }],
    });
    const api = adminApi(gw);
    const patched = await api.patch('/admin/budgets/acme-monthly', { limitUsd: 200 });
    expect(patched.status).toBe(409);
    expect(patched.body.error).toMatchObject({ code: 'config_budget_read_only' });
    expect(patched.body.error?.message).toContain('sluice.yaml');
    expect((await api.delete('/admin/budgets/acme-monthly')).body.error?.code).toBe(
      'config_budget_read_only',
    );

    const clash = await api.post('/admin/budgets', {
      name: 'acme-monthly',
      scope: { org: 'acme' },
      limitUsd: 1,
    });
    expect(clash.status).toBe(409);
    expect(clash.body.error).toMatchObject({ code: 'budget_name_taken', param: 'name' });
    expect(clash.body.error?.message).toContain('sluice.yaml');

    await api.post('/admin/budgets', { name: 'b1', scope: { key: 'web' }, limitUsd: 1 });
    await api.post('/admin/budgets', { name: 'b2', scope: { key: 'web' }, limitUsd: 1 });
    expect(
      (await api.post('/admin/budgets', { name: 'b1', scope: { key: 'web' }, limitUsd: 1 })).status,
    ).toBe(409);
    const renamed = await api.patch('/admin/budgets/b2', { name: 'acme-monthly' });
    expect(renamed.status).toBe(409);
    expect((await api.patch('/admin/budgets/b2', { name: 'b1' })).body.error?.code).toBe('budget_name_taken');
    expect((await api.patch('/admin/budgets/b2', { name: 'b3' })).body.name).toBe('b3');
  });

  it('answers bad bodies with precise 400s, unknown names with 404, and non-admins with 403', async () => {
    const gw = await gatewayWith();
    const api = adminApi(gw);
    const cases: [unknown, string | null][] = [
      [{ name: 'x', scope: { key: 'web' } }, 'limitUsd'],
      [{ name: 'has space', scope: { key: 'web' }, limitUsd: 1 }, 'name'],
      [{ name: 'x', scope: { user: 'web' }, limitUsd: 1 }, 'scope'],
      [{ name: 'x', scope: { key: 'web' }, period: 'week', limitUsd: 1 }, 'period'],
      [{ name: 'x', scope: { key: 'web' }, limitUsd: -1 }, 'limitUsd'],
      [{ name: 'x', scope: { key: 'web' }, limitUsd: 1, softLimitPct: 150 }, 'softLimitPct'],
      [{ name: 'x', scope: { key: 'web' }, limitUsd: 1, webhook: 'not a url' }, 'webhook'],
      [{ name: 'x', scope: { key: 'web' }, limitUsd: 1, color: 'red' }, null],
    ];
    for (const [body, param] of cases) {
      const answer = await api.post('/admin/budgets', body);
      expect(answer.status, answer.text).toBe(400);
      expect(answer.body.error?.message.length).toBeGreaterThan(10);
      if (param) expect(answer.body.error?.param, answer.text).toMatch(new RegExp(`^${param}`));
    }
    expect((await api.post('/admin/budgets', [])).status).toBe(400);

    await api.post('/admin/budgets', { name: 'web', scope: { key: 'web' }, limitUsd: 1 });
    const noLimit = await api.patch('/admin/budgets/web', { limitUsd: null });
    expect(noLimit.status).toBe(400);
    expect(noLimit.body.error?.message).toContain('limitUsd, limitTokens or both');
    expect((await api.patch('/admin/budgets/web', { limitTokens: 0 })).status).toBe(400);
    expect((await api.patch('/admin/budgets/web', { id: 'budget_x' })).status).toBe(400);
    const swapped = await api.patch('/admin/budgets/web', { limitUsd: null, limitTokens: 10 });
    expect(swapped.body).toMatchObject({ usd: null, tokens: { limit: 10 } });

    const missing = await api.get('/admin/budgets/nope');
    expect(missing.status).toBe(404);
    expect(missing.body.error?.code).toBe('budget_not_found');
    expect((await api.patch('/admin/budgets/nope', { limitUsd: 2 })).status).toBe(404);
    expect((await api.delete('/admin/budgets/nope')).status).toBe(404);

    const asClient = adminApi(gw, WEB_KEY);
    expect(
      (await asClient.post('/admin/budgets', { name: 'y', scope: { key: 'web' }, limitUsd: 1 })).status,
    ).toBe(403);
    expect((await asClient.delete('/admin/budgets/web')).status).toBe(403);
  });
});

describe('budgets across gateways sharing PostgreSQL', () => {
  const postgres = serverForSuite(startPostgres);

  it('a budget created, changed or deleted on one node takes effect on the other at its next reload', async () => {
    const admin = new pg.Client({ connectionString: postgres.url });
    await admin.connect();
    await admin.query('CREATE DATABASE sluice_budgets');
    await admin.end();
    const config = {
      store: { type: 'postgres' as const, url: postgres.url.replace(/\/postgres$/, '/sluice_budgets') },
      auth: { adminKey: ADMIN_KEY, keyRefreshMs: 200 },
    };
    const nodeA = await gatewayWith(config);
    const nodeB = await gatewayWith(config);
    expect((await chat(nodeB, WEB_KEY)).status).toBe(200);

    // Smaller than any request's worst case: refused on its first request, whatever the spend.
    const created = await adminApi(nodeA).post('/admin/budgets', {
      name: 'web-tiny',
      scope: { key: 'web' },
      limitTokens: 1,
    });
    expect(created.status, created.text).toBe(201);
    expect((await chat(nodeA, WEB_KEY)).status).toBe(402);
    await expect.poll(async () => (await chat(nodeB, WEB_KEY)).status, { timeout: 20_000 }).toBe(402);
    expect(await budgetNamed(nodeB, 'web-tiny')).toMatchObject({ source: 'store', id: created.body.id });

    await adminApi(nodeB).patch('/admin/budgets/web-tiny', { limitTokens: 1_000_000 });
    expect((await chat(nodeB, WEB_KEY)).status).toBe(200);
    await expect.poll(async () => (await chat(nodeA, WEB_KEY)).status, { timeout: 20_000 }).toBe(200);

    await adminApi(nodeA).patch('/admin/budgets/web-tiny', { limitTokens: 1 });
    await expect.poll(async () => (await chat(nodeB, WEB_KEY)).status, { timeout: 20_000 }).toBe(402);
    await adminApi(nodeA).delete('/admin/budgets/web-tiny');
    await expect.poll(async () => (await chat(nodeB, WEB_KEY)).status, { timeout: 20_000 }).toBe(200);
    expect(await budgetNamed(nodeB, 'web-tiny')).toBeUndefined();
  });
});
