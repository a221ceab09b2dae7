import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FlowHistoryView } from '../../src/gateway/flow-history.js';
import { type RunningGateway, startGatewayWithSim } from '../support/gateway.js';

const adminKey = 'console-tests-admin-key-01';
const admin = { authorization: `Bearer ${adminKey}` };

/** A console build as Vite lays it out: index.html and content-hashed assets. */
function builtConsole(): string {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-console-'));
  mkdirSync(join(dir, 'assets'));
  writeFileSync(
    join(dir, 'index.html'),
    '<!doctype html><title>Sluice console</title><script type="module" src="/assets/index-abc123.js"></script>',
  );
  writeFileSync(join(dir, 'assets', 'index-abc123.js'), 'console.log("console");');
  return dir;
}

describe('the gateway serves the web console', () => {
  let gw: RunningGateway & { close(): Promise<void> };
  let dir: string;

  beforeAll(async () => {
    dir = builtConsole();
    gw = await startGatewayWithSim({ auth: { adminKey } }, {}, { consoleDir: dir });
  });
  afterAll(async () => {
    await gw?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves index.html at / with a content security policy that allows only its own origin', async () => {
    const response = await fetch(`${gw.url}/`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/html/);
    expect(response.headers.get('cache-control')).toBe('no-cache');
    const csp = response.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("default-src 'self'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(await response.text()).toContain('<title>Sluice console</title>');
  });

  it('serves hashed assets as cacheable for a year', async () => {
    const response = await fetch(`${gw.url}/assets/index-abc123.js`);
    expect(response.status).toBe(200);
    expect(response.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    expect(await response.text()).toBe('console.log("console");');
  });

  it('leaves every other URL to the API: /v1, /admin, health, metrics and the JSON 404', async () => {
    const chat = await fetch(`${gw.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'sim-fast', messages: [{ role: 'user', content: 'hi' }] }),
    });
    expect(chat.status).toBe(200);
    expect((await fetch(`${gw.url}/healthz`)).status).toBe(200);
    expect((await fetch(`${gw.url}/metrics`)).status).toBe(200);
    expect((await fetch(`${gw.url}/admin/flow`)).status).toBe(401);

    for (const path of ['/requests', '/index.htm', '/assets/missing.js', '/console']) {
      const response = await fetch(`${gw.url}${path}`);
      expect(response.status, path).toBe(404);
      const body = (await response.json()) as { error: { code: string } };
      expect(body.error.code).toBe('unknown_url');
    }
  });
});

describe('a gateway whose console was not built', () => {
  it('says at / how to build it, and the API still works', async () => {
    const empty = mkdtempSync(join(tmpdir(), 'sluice-no-console-'));
    const gw = await startGatewayWithSim({}, {}, { consoleDir: empty });
    try {
      const response = await fetch(`${gw.url}/`);
      expect(response.status).toBe(503);
      expect(response.headers.get('content-type')).toMatch(/^text\/html/);
      expect(await response.text()).toContain('npm run build');
      expect((await fetch(`${gw.url}/v1/models`)).status).toBe(200);
    } finally {
      await gw.close();
      rmSync(empty, { recursive: true, force: true });
    }
  });
});

describe('GET /admin/flow and /admin/flow/history', () => {
  let gw: RunningGateway & { close(): Promise<void> };

  beforeAll(async () => {
    gw = await startGatewayWithSim({ auth: { adminKey } });
  });
  afterAll(async () => gw?.close());

  const history = async (query = '') => {
    const response = await fetch(`${gw.url}/admin/flow/history${query}`, { headers: admin });
    return {
      status: response.status,
      body: (await response.json()) as FlowHistoryView & { error?: unknown },
    };
  };

  it('lists every route with its targets and fallbacks', async () => {
    const response = await fetch(`${gw.url}/admin/flow`, { headers: admin });
    const body = (await response.json()) as {
      routes: Record<string, { targets: string[]; fallbacks: string[] }>;
    };
    expect(body.routes.default).toEqual({ targets: ['sim/sim-fast'], fallbacks: ['sim/sim-smart'] });
    expect(body.routes['sim-embed']).toEqual({ targets: ['sim/sim-embed'], fallbacks: [] });
  });

  it('needs the admin key', async () => {
    expect((await fetch(`${gw.url}/admin/flow/history`)).status).toBe(401);
  });

  it('charts a target from its first request on: limit, in flight, queue, shed, breaker', async () => {
    const chat = await fetch(`${gw.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'sim-fast', messages: [{ role: 'user', content: 'hi' }] }),
    });
    expect(chat.status).toBe(200);
    // The ring samples every 2 s: wait for the first sample that has seen the target.
    let view = (await history()).body;
    for (let i = 0; i < 50 && !view.targets.some((t) => t.target === 'sim/sim-fast'); i++) {
      await sleep(200);
      view = (await history()).body;
    }
    expect(view.intervalMs).toBe(2_000);
    const fast = view.targets.find((t) => t.target === 'sim/sim-fast');
    expect(fast).toBeDefined();
    const last = view.t.length - 1;
    expect(view.t[last]).toBeGreaterThan(Date.now() - 60_000);
    expect(fast?.limit[last]).toBeGreaterThan(0);
    expect(fast?.inflight[last]).toBe(0);
    expect(fast?.queued[last]).toBe(0);
    expect(fast?.breaker[last]).toBe('closed');
    expect(Object.keys(fast?.shed ?? {})).toEqual(['critical', 'high', 'normal', 'low', 'batch']);
    expect(fast?.shed.normal[last]).toBe(0);
  });

  it('refuses a window it does not keep, naming the limit', async () => {
    for (const query of ['?seconds=0', '?seconds=901', '?seconds=abc', '?seconds=1.5']) {
      const { status, body } = await history(query);
      expect(status, query).toBe(400);
      expect(body.error).toMatchObject({ param: 'seconds', type: 'invalid_request_error' });
    }
    const { status, body } = await history('?seconds=60');
    expect(status).toBe(200);
    expect(body.t.every((t) => t > Date.now() - 62_000)).toBe(true);
  });
});
