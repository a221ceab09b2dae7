import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningGateway, startGatewayWithSim } from '../support/gateway.js';
import { freePort } from '../support/ports.js';

const cli = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));
const ADMIN_KEY = 'sk-admin-SECRET-5c7e9a1b3d5f7a9c';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

let gw: RunningGateway;

beforeAll(async () => {
  gw = await startGatewayWithSim({ auth: { adminKey: ADMIN_KEY } });
});
afterAll(() => gw.close());

/** Runs the compiled CLI against the test gateway (SLUICE_URL, SLUICE_ADMIN_KEY unless `env` says otherwise). */
function sluice(args: string[], env: Record<string, string | undefined> = {}): Promise<Run> {
  const environment: NodeJS.ProcessEnv = { ...process.env, SLUICE_URL: gw.url, SLUICE_ADMIN_KEY: ADMIN_KEY };
  for (const [name, value] of Object.entries(env)) {
    if (value === undefined) delete environment[name];
    else environment[name] = value;
  }
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [cli, ...args],
      { env: environment, timeout: 60_000 },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

async function ok(args: string[], env: Record<string, string | undefined> = {}): Promise<string> {
  const run = await sluice(args, env);
  expect(run, `sluice ${args.join(' ')}`).toMatchObject({ code: 0 });
  return run.stdout;
}

/** The value of one "field  value" line of a key's printout. */
function field(stdout: string, name: string): string {
  const line = stdout.split('\n').find((l) => l.startsWith(`${name} `));
  if (!line) throw new Error(`no "${name}" line in:\n${stdout}`);
  return line.slice(name.length).trim();
}

const chat = (key: string, model = 'default') =>
  fetch(`${gw.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
    body: JSON.stringify({ model, messages: [{ role: 'user', content: 'Hi' }], max_tokens: 4 }),
  });

// Each test runs the CLI several times, a process start each: generous time on a busy machine.
describe('sluice keys against a running gateway', { timeout: 180_000 }, () => {
  it('creates a key whose printed secret calls the gateway, and lists it without the secret', async () => {
    const created = await sluice([
      'keys',
      'create',
      '--name',
      'cli-key',
      '--routes',
      'sim-fast',
      '--priority',
      'high',
      '--tags',
      'env=ci,owner=tests',
      '--expires',
      '30d',
    ]);
    expect(created.code).toBe(0);
    expect(created.stderr).toContain('The secret is shown this once');
    const secret = field(created.stdout, 'secret');
    const id = field(created.stdout, 'id');
    expect(secret).toMatch(/^sk-sluice-/);
    expect(field(created.stdout, 'prefix')).toBe(`${secret.slice(0, 14)}…`);
    expect(field(created.stdout, 'routes')).toBe('sim-fast');
    expect(field(created.stdout, 'tags')).toBe('env=ci,owner=tests');
    const expires = Date.parse(field(created.stdout, 'expires'));
    expect(expires - Date.now()).toBeGreaterThan(29 * 86_400_000);
    expect((await chat(secret, 'sim-fast')).status).toBe(200);

    const table = await ok(['keys', 'list']);
    const [header, ...rows] = table.trimEnd().split('\n');
    expect(header?.split(/\s+/)).toEqual([
      'ID',
      'NAME',
      'PREFIX',
      'STATUS',
      'TEAM',
      'ORG',
      'ROUTES',
      'PRIORITY',
      'ADMIN',
      'EXPIRES',
    ]);
    const row = rows.find((r) => r.startsWith(id))?.split(/\s+/);
    expect(row?.slice(0, 9)).toEqual([
      id,
      'cli-key',
      `${secret.slice(0, 14)}…`,
      'active',
      '-',
      '-',
      'sim-fast',
      'high',
      'no',
    ]);
    expect(table).not.toContain(secret);

    const listed = JSON.parse(await ok(['keys', 'list', '--json'])) as {
      data: Array<Record<string, unknown>>;
    };
    expect(listed.data.find((k) => k.id === id)).toMatchObject({
      name: 'cli-key',
      tags: { env: 'ci', owner: 'tests' },
    });
    expect(JSON.stringify(listed)).not.toContain(secret);
    const shown = await ok(['keys', 'show', id, '--url', gw.url], { SLUICE_URL: 'http://127.0.0.1:9' });
    expect(field(shown, 'name')).toBe('cli-key');
    expect(shown).not.toContain(secret);
  });

  it('rotates, updates and revokes a key', async () => {
    const created = await ok(['keys', 'create', '--name', 'to-rotate', '--routes', 'sim-fast']);
    const id = field(created, 'id');
    const first = field(created, 'secret');

    const rotated = await sluice(['keys', 'rotate', id]);
    expect(rotated.stderr).toContain('shown this once');
    const second = field(rotated.stdout, 'secret');
    expect(second).not.toBe(first);
    expect((await chat(first, 'sim-fast')).status).toBe(401);
    expect((await chat(second, 'sim-fast')).status).toBe(200);

    const updated = await ok(['keys', 'update', id, '--all-routes', '--admin', '--expires', '2099-01-01']);
    expect([field(updated, 'routes'), field(updated, 'admin'), field(updated, 'expires')]).toEqual([
      'all',
      'yes',
      '2099-01-01T00:00:00.000Z',
    ]);
    expect(updated).not.toContain('secret');
    expect((await chat(second)).status).toBe(200);

    const revoked = await ok(['keys', 'revoke', id]);
    expect(field(revoked, 'status')).toBe('revoked');
    const refused = await chat(second);
    expect(refused.status).toBe(401);
    expect(((await refused.json()) as { error: { code: string } }).error.code).toBe('revoked_api_key');
    expect(
      (await ok(['keys', 'list', '--status', 'revoked'])).split('\n').some((l) => l.startsWith(id)),
    ).toBe(true);
  });

  it('creates orgs and teams, and keys in them', async () => {
    const org = JSON.parse(await ok(['orgs', 'create', '--name', 'acme', '--json'])) as { id: string };
    const team = JSON.parse(await ok(['teams', 'create', '--org', org.id, '--name', 'search', '--json'])) as {
      id: string;
    };
    expect(team).toMatchObject({ object: 'team', orgId: org.id, name: 'search' });
    const key = JSON.parse(
      await ok(['keys', 'create', '--name', 'search-ci', '--team', team.id, '--json']),
    ) as {
      teamId: string;
      orgId: string;
      secret: string;
    };
    expect(key).toMatchObject({ teamId: team.id, orgId: org.id });
    expect(key.secret).toMatch(/^sk-sluice-/);

    const teamKeys = (await ok(['keys', 'list', '--team', team.id])).trimEnd().split('\n');
    expect(teamKeys).toHaveLength(2);
    expect(teamKeys[1]).toContain('search-ci');
    expect(await ok(['teams', 'list', '--org', org.id])).toContain(`${team.id}  search`);
    expect(field(await ok(['orgs', 'show', org.id]), 'name')).toBe('acme');

    const busy = await sluice(['orgs', 'delete', org.id]);
    expect(busy.code).toBe(1);
    expect(busy.stderr).toContain("The org 'acme' still has 1 team, 1 key");
    expect(busy.stderr).toContain('(HTTP 409, org_in_use)');
    const spare = JSON.parse(await ok(['orgs', 'create', '--name', 'spare', '--json'])) as { id: string };
    expect(await ok(['orgs', 'delete', spare.id])).toBe(`Deleted org ${spare.id}.\n`);
  });

  it('explains what went wrong, exiting 2 for usage and 1 for refusals, never echoing the admin key', async () => {
    const noKey = await sluice(['keys', 'list'], { SLUICE_ADMIN_KEY: undefined });
    expect(noKey.code).toBe(2);
    expect(noKey.stderr).toContain('no admin key: set SLUICE_ADMIN_KEY or pass --admin-key');

    const wrongKey = 'sk-wrong-SECRET-0a2c4e6b8d0f2a4c';
    const wrong = await sluice(['keys', 'list', '--admin-key', wrongKey], { SLUICE_ADMIN_KEY: undefined });
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toContain('(HTTP 401, invalid_admin_key)');

    const port = await freePort();
    const down = await sluice(['keys', 'list', '--url', `http://127.0.0.1:${port}`]);
    expect(down.code).toBe(1);
    expect(down.stderr).toContain(`cannot reach the gateway at http://127.0.0.1:${port} (ECONNREFUSED)`);

    const missing = await sluice(['keys', 'show', 'key_none']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain("No key with id 'key_none'");
    expect(missing.stderr).toContain('(HTTP 404, key_not_found)');

    const badPriority = await sluice(['keys', 'create', '--name', 'x', '--priority', 'urgent']);
    expect(badPriority.code).toBe(1);
    expect(badPriority.stderr).toContain("Invalid value for 'priority'");

    for (const args of [
      ['keys'],
      ['keys', 'destroy'],
      ['keys', 'create'],
      ['keys', 'show'],
      ['keys', 'create', '--name', 'x', '--expires', 'soon'],
      ['keys', 'update', 'key_x'],
      ['keys', 'list', '--bogus'],
    ]) {
      const run = await sluice(args);
      expect([run.code, args.join(' ')]).toEqual([2, args.join(' ')]);
      expect(run.stderr).toContain('Usage: sluice keys');
    }

    for (const run of [noKey, wrong, down, missing, badPriority]) {
      expect(run.stdout + run.stderr).not.toContain('SECRET');
    }
  });

  it('is listed by sluice --help, with its subcommands in sluice keys --help', async () => {
    const help = await ok(['--help']);
    for (const command of ['keys', 'teams', 'orgs']) expect(help).toMatch(new RegExp(`\\n  ${command}\\s`));
    const keysHelp = await ok(['keys', '--help']);
    for (const sub of ['create', 'list', 'show', 'update', 'rotate', 'revoke'])
      expect(keysHelp).toContain(`  ${sub}`);
    expect(keysHelp).toContain('--admin-key <key>');
  });
});

describe('sluice budgets against a running gateway', { timeout: 180_000 }, () => {
  it('creates, lists, shows, updates and deletes a budget, as a table and as JSON', async () => {
    const created = await ok([
      'budgets',
      'create',
      '--name',
      'cli-daily',
      '--team',
      'search',
      '--period',
      'day',
      '--usd',
      '50',
      '--soft-limit',
      '80',
    ]);
    expect(field(created, 'source')).toBe('store');
    expect(field(created, 'scope')).toBe('team search');
    expect(field(created, 'usd')).toBe('$0 / $50 (0%)');
    expect(field(created, 'soft limit')).toBe('80%');

    const table = await ok(['budgets', 'list']);
    expect(table.split('\n')[0]).toMatch(/^NAME\s+SOURCE\s+SCOPE\s+PERIOD\s+USD\s+TOKENS\s+RESETS$/);
    expect(table).toMatch(/\ncli-daily\s+store\s+team search\s+day\s+\$0 \/ \$50 \(0%\)\s+-\s+\d{4}-/);

    const updated = await ok([
      'budgets',
      'update',
      'cli-daily',
      '--tokens',
      '1000',
      '--no-usd',
      '--no-soft-limit',
      '--rename',
      'cli-tokens',
    ]);
    expect(field(updated, 'name')).toBe('cli-tokens');
    expect(field(updated, 'usd')).toBe('-');
    expect(field(updated, 'tokens')).toBe('0 / 1000 (0%)');
    expect(field(updated, 'soft limit')).toBe('-');

    const shown = JSON.parse(await ok(['budgets', 'show', 'cli-tokens', '--json'])) as Record<
      string,
      unknown
    >;
    expect(shown).toMatchObject({ object: 'budget', name: 'cli-tokens', usd: null, tokens: { limit: 1000 } });

    expect(await ok(['budgets', 'delete', 'cli-tokens'])).toBe('Deleted budget cli-tokens.\n');
    expect(await ok(['budgets', 'list'])).toContain('No budgets. Create one with `sluice budgets create');
    const json = JSON.parse(await ok(['budgets', 'list', '--json'])) as { budgets: unknown[] };
    expect(json.budgets).toEqual([]);
  });

  it('explains mistakes: usage errors exit 2, the gateway’s refusals exit 1 with its message', async () => {
    const noLimit = await sluice(['budgets', 'create', '--name', 'x', '--key', 'web']);
    expect(noLimit.code).toBe(1);
    expect(noLimit.stderr).toContain('a budget needs limitUsd, limitTokens or both');
    expect(noLimit.stderr).toContain('(HTTP 400');

    const missing = await sluice(['budgets', 'delete', 'nope']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain("No budget named 'nope'");
    expect(missing.stderr).toContain('(HTTP 404, budget_not_found)');

    for (const args of [
      ['budgets'],
      ['budgets', 'create', '--key', 'web', '--usd', '1'],
      ['budgets', 'create', '--name', 'x', '--usd', '1'],
      ['budgets', 'create', '--name', 'x', '--key', 'a', '--team', 'b', '--usd', '1'],
      ['budgets', 'create', '--name', 'x', '--key', 'a', '--usd', 'lots'],
      ['budgets', 'create', '--name', 'x', '--key', 'a', '--usd', '1', '--no-tokens'],
      ['budgets', 'update', 'x'],
      ['budgets', 'show'],
    ]) {
      const run = await sluice(args);
      expect([run.code, args.join(' ')]).toEqual([2, args.join(' ')]);
      expect(run.stderr).toContain('Usage: sluice budgets');
    }
  });

  it('is listed by sluice --help, with its subcommands in sluice budgets --help', async () => {
    expect(await ok(['--help'])).toMatch(/\n {2}budgets\s/);
    const help = await ok(['budgets', '--help']);
    for (const sub of ['list', 'show', 'create', 'update', 'delete']) expect(help).toContain(`  ${sub}`);
    expect(help).toContain('--soft-limit <pct>');
  });
});
