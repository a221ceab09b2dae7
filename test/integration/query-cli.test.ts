import { execFile, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { stringify } from 'yaml';
import { analyticsSettings, createAnalytics } from '../../src/analytics/analytics.js';
import { eventsSchema } from '../../src/config/schema.js';
import { duckdbStore } from '../../src/events/duckdb-store.js';
import { SEED_END_MS, SEED_START_MS, seededEvents } from '../support/analytics-seed.js';
import { type RunningGateway, startGateway } from '../support/gateway.js';
import { freePort } from '../support/ports.js';
import { viaSetpriv } from '../support/process.js';

const cli = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));
const ADMIN_KEY = 'sk-admin-query-cli-5e4d3c2b1a09';
const BETA_KEY = 'sk-beta-query-cli-0a1b2c3d4e5f';
const range = [
  `--from=${new Date(SEED_START_MS).toISOString()}`,
  `--to=${new Date(SEED_END_MS).toISOString()}`,
];
const events = seededEvents();

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `sluice query …` as a user would, with only the environment given. */
function query(args: string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [cli, 'query', ...args],
      { env: { PATH: process.env.PATH ?? '', ...env }, timeout: 60_000 },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-query-'));
  onTestFinished(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

describe('sluice query against a gateway', () => {
  let gateway: RunningGateway;
  let store: ReturnType<typeof duckdbStore>;

  beforeAll(async () => {
    store = duckdbStore({ path: ':memory:' });
    await store.open();
    await store.insert(events);
    gateway = await startGateway(
      {
        logLevel: 'silent',
        auth: { adminKey: ADMIN_KEY, apiKeys: [{ name: 'beta', key: BETA_KEY }] },
      },
      { analytics: createAnalytics({ reader: store, settings: analyticsSettings(eventsSchema.parse({})) }) },
    );
  });
  afterAll(async () => {
    await gateway?.close();
    await store?.close();
  });

  it('prints a breakdown as JSON, the API’s own answer', async () => {
    const run = await query(
      [
        'breakdown',
        '--by',
        'route',
        '--metrics',
        'requests,errors',
        ...range,
        '--format',
        'json',
        '--url',
        gateway.url,
      ],
      { SLUICE_ADMIN_KEY: ADMIN_KEY },
    );
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const answer = JSON.parse(run.stdout);
    expect(answer.by).toBe('route');
    expect(
      Object.fromEntries(
        answer.rows.map((row: { group: string; values: { requests: number } }) => [
          row.group,
          row.values.requests,
        ]),
      ),
    ).toEqual({
      chat: events.filter((e) => e.route === 'chat').length,
      search: events.filter((e) => e.route === 'search').length,
    });
  });

  it('prints a time series as an aligned table, one row per bucket and group', async () => {
    const run = await query([
      'timeseries',
      '--step',
      '5m',
      '--by',
      'route',
      ...range,
      '--url',
      gateway.url,
      '--key',
      ADMIN_KEY,
    ]);
    expect(run.code).toBe(0);
    const lines = run.stdout.trimEnd().split('\n');
    expect(lines[0]?.split(/\s+/)).toEqual(['time', 'route', 'requests']);
    expect(lines.slice(1).map((line) => line.split(/\s+/))).toEqual([
      ['2026-03-01T12:00:00.000Z', 'chat', '150'],
      ['2026-03-01T12:00:00.000Z', 'search', '150'],
      ['2026-03-01T12:05:00.000Z', 'chat', '150'],
      ['2026-03-01T12:05:00.000Z', 'search', '150'],
    ]);
  });

  it('prints requests as CSV, filtered by dimension=value arguments, with only the key’s own events', async () => {
    const run = await query(
      ['requests', '--limit', '500', ...range, '--format', 'csv', 'status_class=5xx', '--url', gateway.url],
      {
        SLUICE_API_KEY: BETA_KEY,
      },
    );
    expect(run.code).toBe(0);
    const [header, ...rows] = run.stdout.trimEnd().split('\r\n');
    expect(header).toBe('time,id,key,route,target,status,total_ms,ttft_ms,tokens_in,tokens_out');
    const expected = events.filter((e) => e.keyName === 'beta' && e.status >= 500);
    expect(expected.length).toBeGreaterThan(0);
    expect(rows).toHaveLength(expected.length);
    expect(new Set(rows.map((row) => row.split(',')[2]))).toEqual(new Set(['beta']));
  });

  it('says why a query failed and exits 1', async () => {
    const denied = await query(['sql', 'SELECT 1', '--url', gateway.url, '--key', BETA_KEY]);
    expect(denied.code).toBe(1);
    expect(denied.stderr).toContain('403: SQL is for the admin key only');
    const bad = await query(['summary', '--metrics', 'joy', '--url', gateway.url, '--key', ADMIN_KEY]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('metrics[0]');
  });
});

describe('sluice query on a stopped gateway’s data', () => {
  it('reads the DuckDB file directly, read-only', async () => {
    const dir = await tempDir();
    const store = duckdbStore({ path: join(dir, 'events.duckdb') });
    await store.open();
    await store.insert(events);
    await store.close();

    const summary = await query([
      'summary',
      '--metrics',
      'requests,tokens_input',
      ...range,
      '--data-dir',
      dir,
      '--format',
      'json',
    ]);
    expect(summary.stderr).toBe('');
    expect(JSON.parse(summary.stdout).values).toEqual({
      requests: events.length,
      tokens_input: events.reduce((total, e) => total + e.tokens.input, 0),
    });
    const sql = await query([
      'sql',
      "SELECT count(*) AS n FROM events WHERE key_name = 'gamma'",
      '--data-dir',
      dir,
    ]);
    expect(
      sql.stdout
        .trimEnd()
        .split('\n')
        .map((line) => line.trim()),
    ).toEqual(['n', String(events.filter((e) => e.keyName === 'gamma').length)]);
    const write = await query(['sql', 'DELETE FROM events', '--data-dir', dir]);
    expect(write.code).toBe(1);
    expect(write.stderr).toContain('must start with SELECT or WITH');
  });

  it('refuses a file a running gateway holds, and says what to do instead', async () => {
    const dir = await tempDir();
    const store = duckdbStore({ path: join(dir, 'events.duckdb') });
    await store.open();
    onTestFinished(() => store.close());
    const run = await query(['summary', '--data-dir', dir]);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('is open in a running gateway');
    expect(run.stderr).toContain('--url');
  });

  it('explains usage mistakes with the generated help and exits 2', async () => {
    const run = await query(['breakdown', '--data-dir', '/nonexistent']);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('breakdown needs --by <dimension>');
    expect(run.stderr).toContain('Usage: sluice query');
    const help = await query(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('--data-dir <dir>');
    expect(help.stdout).toContain('--format <fmt>');
  });
});

describe('sluice up with DuckDB, then sluice query', () => {
  it('answers for the requests it served, rolls them up, and leaves a file to read once stopped', async () => {
    const dir = await tempDir();
    const file = join(dir, 'sluice.yaml');
    await writeFile(
      file,
      stringify({
        logLevel: 'warn',
        dataDir: dir,
        auth: { adminKey: ADMIN_KEY, apiKeys: [{ name: 'beta', key: BETA_KEY }] },
        providers: { sim: { type: 'sim' } },
        routes: { chat: { targets: [{ provider: 'sim', model: 'sim-fast' }] } },
        events: { sink: 'duckdb' },
      }),
    );
    const port = await freePort();
    const [command, args] = viaSetpriv(process.execPath, [
      cli,
      'up',
      '--config',
      file,
      '--port',
      String(port),
    ]);
    const child = spawn(command, args, { env: { PATH: process.env.PATH ?? '' }, stdio: 'ignore' });
    const exited = new Promise((resolve) => child.once('exit', resolve));
    onTestFinished(async () => {
      if (child.exitCode === null) {
        child.kill('SIGKILL');
        await exited;
      }
    });
    const url = `http://127.0.0.1:${port}`;
    await expect
      .poll(
        () =>
          fetch(`${url}/healthz`).then(
            (r) => r.ok,
            () => false,
          ),
        { timeout: 30_000, interval: 100 },
      )
      .toBe(true);

    const served = await fetch(`${url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${BETA_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'chat', messages: [{ role: 'user', content: 'What is 12 + 30?' }] }),
    });
    expect(served.status).toBe(200);
    const id = served.headers.get('x-sluice-request-id') as string;

    // The bus stores events in batches: poll until this one is there.
    let listed: { data: { id: string; keyName: string }[] } = { data: [] };
    for (let tries = 0; tries < 100 && listed.data.length === 0; tries++) {
      const run = await query(['requests', '--format', 'json', '--url', url], { SLUICE_API_KEY: BETA_KEY });
      if (run.code === 0) listed = JSON.parse(run.stdout);
      if (listed.data.length === 0) await sleep(200);
    }
    expect(listed.data.map((event) => [event.id, event.keyName])).toEqual([[id, 'beta']]);

    // The maintenance job ran at start: one watermark per rollup tier (wide and narrow, minutes and hours) says how far it goes.
    const watermark = await query(
      ['sql', 'SELECT count(*) AS n FROM events_rollup_watermark', '--format', 'json', '--url', url],
      {
        SLUICE_ADMIN_KEY: ADMIN_KEY,
      },
    );
    expect(JSON.parse(watermark.stdout).rows).toEqual([[6]]);

    child.kill('SIGTERM');
    await exited;
    const offline = await query(['request', id, '--data-dir', dir, '--format', 'json']);
    expect(offline.stderr).toBe('');
    expect(JSON.parse(offline.stdout).event).toMatchObject({
      id,
      keyName: 'beta',
      route: 'chat',
      status: 200,
    });
  });
});
