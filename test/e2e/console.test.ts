import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningPlatform, startPlatform } from '../../src/cli/platform.js';
import { sluiceConfigSchema } from '../../src/config/schema.js';
import { artifactsDir, buildConsole, launchBrowser } from '../support/browser.js';

const adminKey = 'console-e2e-admin-key-0001';
const tenantA = { name: 'tenant-a', key: 'console-e2e-tenant-a-key-01' };
const tenantB = { name: 'tenant-b', key: 'console-e2e-tenant-b-key-01' };

let platform: RunningPlatform;
let browser: Awaited<ReturnType<typeof launchBrowser>>;
let built: Awaited<ReturnType<typeof buildConsole>>;
let dataDir: string;
/** Request ids the gateway gave each tenant's requests. */
const sent: Record<string, string[]> = { [tenantA.name]: [], [tenantB.name]: [] };

async function call(key: string, path: string, body: object, headers: Record<string, string> = {}) {
  const response = await fetch(platform.url + path, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${key}`, ...headers },
    body: JSON.stringify(body),
  });
  await response.arrayBuffer();
  expect(response.status).toBe(200);
  return response.headers.get('x-sluice-request-id')!;
}

const chat = (model: string, stream = false) => ({
  model,
  stream,
  max_tokens: 24,
  messages: [{ role: 'user', content: 'What is 12 + 30?' }],
});

/** The simulator's traffic: tenant A on three routes, streams and embeddings; tenant B on one. */
async function sendTraffic(): Promise<void> {
  const a = (path: string, body: object) =>
    call(tenantA.key, path, body, { 'x-sluice-tags': 'feature=search' }).then((id) =>
      sent[tenantA.name]!.push(id),
    );
  const b = (path: string, body: object) =>
    call(tenantB.key, path, body, { 'x-sluice-tags': 'feature=support' }).then((id) =>
      sent[tenantB.name]!.push(id),
    );
  await Promise.all([
    ...Array.from({ length: 5 }, () => a('/v1/chat/completions', chat('sim-fast'))),
    ...Array.from({ length: 3 }, () => a('/v1/chat/completions', chat('default', true))),
    ...Array.from({ length: 2 }, () => a('/v1/embeddings', { model: 'sim-embed', input: 'hello' })),
    ...Array.from({ length: 4 }, () => b('/v1/chat/completions', chat('sim-smart'))),
  ]);
}

async function open(path = '/'): Promise<Page> {
  const page = await browser.context.newPage();
  await page.goto(`${platform.url}/#${path}`);
  return page;
}

async function signIn(page: Page, key: string): Promise<void> {
  await page.getByLabel('Key').fill(key);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('button', { name: 'Sign out' }).waitFor();
}

const screenshot = (page: Page, name: string) =>
  page.screenshot({ path: join(artifactsDir, `console-${name}.png`), fullPage: true });

/** The texts of one column of a table's body rows. */
const column = (page: Page, table: string, index: number) =>
  page.locator(`[data-testid=${table}] tbody tr td:nth-child(${index})`).allTextContents();

beforeAll(async () => {
  built = await buildConsole();
  dataDir = mkdtempSync(join(tmpdir(), 'sluice-console-e2e-'));
  const config = sluiceConfigSchema.parse({
    server: { host: '127.0.0.1', port: 0 },
    dataDir,
    logLevel: 'warn',
    auth: {
      adminKey,
      apiKeys: [tenantA, tenantB].map((t) => ({ ...t, priority: 'normal' })),
    },
    providers: { sim: { type: 'sim' } },
    routes: {
      default: {
        targets: [{ provider: 'sim', model: 'sim-fast' }],
        fallbacks: [{ provider: 'sim', model: 'sim-smart' }],
      },
      'sim-fast': { targets: [{ provider: 'sim', model: 'sim-fast' }] },
      'sim-smart': { targets: [{ provider: 'sim', model: 'sim-smart' }] },
      'sim-embed': { targets: [{ provider: 'sim', model: 'sim-embed' }] },
    },
    events: { sink: 'duckdb' },
  });
  platform = await startPlatform(config, { logger: pino({ level: 'warn' }), consoleDir: built.dir });
  browser = await launchBrowser();
  await sendTraffic();
}, 180_000);

afterAll(async () => {
  await browser?.close();
  await platform?.close();
  built?.remove();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

describe('the web console, in Chromium', () => {
  it('refuses a wrong admin key with a clear message', async () => {
    const page = await open();
    await page.getByLabel('Key').fill('not-the-admin-key-at-all');
    await page.getByRole('button', { name: 'Sign in' }).click();
    const alert = page.getByRole('alert');
    await alert.waitFor();
    expect(await alert.textContent()).toContain('This key was refused');
    expect(await page.getByRole('button', { name: 'Sign out' }).count()).toBe(0);
    expect(await page.evaluate('sessionStorage.length')).toBe(0);
    await screenshot(page, 'sign-in');
    await page.close();
  });

  it('signs in with the admin key and shows the simulator’s traffic in the overview charts', async () => {
    const page = await open();
    await signIn(page, adminKey);
    expect(await page.getByTestId('who').textContent()).toBe('Admin');
    // Every request reaches the summary once its event is stored (the page refreshes every 5 s).
    await page.getByText('14 requests', { exact: true }).waitFor({ timeout: 60_000 });
    for (const chart of [
      'Requests per second',
      'Latency',
      'Time to first token (streams)',
      'Tokens per second',
    ]) {
      await page.getByRole('img', { name: new RegExp(`^${chart.replace(/[()]/g, '\\$&')}\\. `) }).waitFor();
    }
    const rps = await page.getByRole('img', { name: /^Requests per second\. / }).getAttribute('aria-label');
    expect(rps).not.toContain('no data');
    const routes = await page.locator('[data-testid=breakdown-table] tbody th').allTextContents();
    expect(new Set(routes)).toEqual(new Set(['sim-fast', 'sim-smart', 'default', 'sim-embed']));
    await screenshot(page, 'overview');

    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByText('You are signed out.').waitFor();
    expect(await page.evaluate('sessionStorage.length')).toBe(0);
    await page.close();
  });

  it('shows each target’s limit, in-flight, queue and breaker on Routes and targets', async () => {
    const page = await open('/targets');
    await signIn(page, adminKey);
    const cards = page.getByTestId('target-card');
    await cards.first().waitFor();
    const names = await page.locator('[data-testid=target-card] h3').allTextContents();
    expect(names).toEqual(['sim/sim-embed', 'sim/sim-fast', 'sim/sim-smart']);
    expect(await cards.first().getByText('Breaker closed').count()).toBe(1);
    await page
      .getByRole('img', { name: /^Concurrency\. Limit: latest/ })
      .first()
      .waitFor();
    await screenshot(page, 'targets');
    await page.close();
  });

  it('filters the request list and opens a request’s waterfall', async () => {
    const page = await open('/requests');
    await signIn(page, adminKey);
    await page.getByTestId('requests-table').waitFor();
    expect(await page.locator('[data-testid=requests-table] tbody tr').count()).toBe(14);

    await page.getByLabel('Route').fill('sim-smart');
    await page.getByLabel('Route').press('Enter');
    // The list reloads with the filter applied: wait until every route cell reads sim-smart.
    for (let i = 0; i < 100; i++) {
      const routes = await column(page, 'requests-table', 3);
      if (routes.length > 0 && routes.every((route) => route === 'sim-smart')) break;
      await page.waitForTimeout(100);
    }
    expect(page.url()).toContain('route=sim-smart');
    expect(await column(page, 'requests-table', 3)).toEqual([
      'sim-smart',
      'sim-smart',
      'sim-smart',
      'sim-smart',
    ]);
    await screenshot(page, 'requests');

    await page.locator('[data-testid=requests-table] tbody tr td a').first().click();
    await page.getByTestId('waterfall').waitFor();
    const id = decodeURIComponent(page.url().split('#/requests/')[1] ?? '');
    expect(sent[tenantB.name]).toContain(id);
    expect(await page.getByRole('heading', { level: 1 }).textContent()).toContain(id);
    const attempts = page.getByTestId('attempt');
    expect(await attempts.count()).toBe(1);
    expect(await attempts.first().textContent()).toContain('sim/sim-smart');
    expect(await attempts.first().getByRole('img').getAttribute('aria-label')).toMatch(
      /^Starts at .* queued .* waiting .* receiving/,
    );
    await screenshot(page, 'request');
    await page.close();
  });

  it('shows a scoped key only its own requests, and no admin pages', async () => {
    const page = await open('/requests');
    await signIn(page, tenantA.key);
    expect(await page.getByTestId('who').textContent()).toBe('tenant-a');
    expect(await page.getByRole('link', { name: 'Routes and targets' }).count()).toBe(0);
    await page.getByTestId('requests-table').waitFor();
    const keys = await column(page, 'requests-table', 5);
    expect(keys).toHaveLength(10);
    expect(new Set(keys)).toEqual(new Set(['tenant-a']));
    await screenshot(page, 'scoped-key');

    await page.goto(`${platform.url}/#/requests/${sent[tenantB.name]![0]}`);
    await page.getByText('No such request.').waitFor();
    await page.goto(`${platform.url}/#/targets`);
    await page.getByRole('heading', { name: 'Page not found' }).waitFor();
    await page.close();
  });

  it('shows each budget’s spend against its limit on Keys and budgets, after an empty state that says how to make one', async () => {
    const page = await open('/keys');
    await signIn(page, adminKey);
    await page.getByText('No budgets yet.').waitFor();
    expect(await page.getByText('sluice budgets create').count()).toBe(1);

    const created = await fetch(`${platform.url}/admin/budgets`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${adminKey}` },
      body: JSON.stringify({
        name: 'tenant-b-daily',
        scope: { key: tenantB.name },
        period: 'day',
        limitTokens: 10_000,
      }),
    });
    expect(created.status).toBe(201);
    await call(tenantB.key, '/v1/chat/completions', chat('sim-smart'));
    // Settlement follows the response: wait until the spend is counted and nothing is held.
    await expect
      .poll(async () => {
        const response = await fetch(`${platform.url}/admin/budgets/tenant-b-daily`, {
          headers: { authorization: `Bearer ${adminKey}` },
        });
        const { tokens } = (await response.json()) as { tokens: { spent: number; reserved: number } };
        return tokens.spent > 0 && tokens.reserved === 0;
      })
      .toBe(true);

    await page.reload();
    const row = page.locator('[data-testid=budgets-table] tbody tr[data-budget="tenant-b-daily"]');
    await row.waitFor();
    const cells = await row.locator('th, td').allTextContents();
    expect(cells[0]).toBe('tenant-b-daily');
    expect(cells[1]).toBe('key tenant-b');
    expect(cells[2]).toBe('day');
    expect(cells[3]).toMatch(/^\d+ tokens of 10k tokens$/);
    expect(cells[5]).toMatch(/^\d+(\.\d+)?%$/);
    expect(cells[5]).not.toBe('0%');
    expect(cells[6]).not.toBe('never');
    expect(await row.locator('.bar').getAttribute('style')).toMatch(/width: [\d.]+%/);
    expect(await page.getByRole('table', { name: /^Budgets with their spend/ }).count()).toBe(1);
    await screenshot(page, 'budgets');
    await page.close();
  });
});
