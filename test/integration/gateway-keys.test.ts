import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import type { SluiceConfigInput } from '../../src/config/schema.js';
import { type Answer, adminApiFor, request } from '../support/admin-api.js';
import { type RunningGateway, startGatewayWithSim } from '../support/gateway.js';
import { serverForSuite, startPostgres } from '../support/servers.js';

// Recognisable secrets: each contains SECRET, which nothing else the gateway says does.
const ADMIN_KEY = 'sk-admin-SECRET-2b4d6f8a0c2e4a6c';
const CONFIG_KEY = 'sk-config-SECRET-9d7b5f3a1c8e6b4d';

const adminApi = adminApiFor(ADMIN_KEY);

const chat = (gw: { url: string }, key: string | undefined, model = 'default') =>
  request(gw.url, 'POST', '/v1/chat/completions', {
    key,
    body: { model, messages: [{ role: 'user', content: 'What is 12 + 30?' }], max_tokens: 8 },
  });

interface CreatedKey {
  id: string;
  secret: string;
  prefix: string;
  status: string;
  [field: string]: unknown;
}

async function createKey(gw: { url: string }, body: Record<string, unknown>): Promise<CreatedKey> {
  const created = await adminApi(gw).post('/admin/keys', body);
  expect(created.status, created.text).toBe(201);
  return created.body as unknown as CreatedKey;
}

async function createTeam(gw: { url: string }, orgName: string, teamName: string) {
  const org = await adminApi(gw).post('/admin/orgs', { name: orgName });
  expect(org.status, org.text).toBe(201);
  const team = await adminApi(gw).post('/admin/teams', { orgId: org.body.id, name: teamName });
  expect(team.status, team.text).toBe(201);
  return { orgId: org.body.id as string, teamId: team.body.id as string };
}

async function gatewayWith(config: Partial<SluiceConfigInput> = {}): Promise<RunningGateway> {
  const gw = await startGatewayWithSim({ auth: { adminKey: ADMIN_KEY }, ...config });
  onTestFinished(() => gw.close());
  return gw;
}

describe('virtual keys through the admin API', () => {
  let gw: RunningGateway;

  beforeAll(async () => {
    gw = await startGatewayWithSim({ auth: { adminKey: ADMIN_KEY }, logLevel: 'trace' });
  });
  afterAll(() => gw.close());

  it('a created key calls the API until it is revoked, then gets 401 revoked_api_key', async () => {
    const key = await createKey(gw, { name: 'ci' });
    expect(key).toMatchObject({
      object: 'api_key',
      name: 'ci',
      status: 'active',
      admin: false,
      routes: null,
    });
    expect(key.secret).toMatch(/^sk-sluice-[A-Za-z0-9_-]{32}$/);
    expect(key.prefix).toBe(key.secret.slice(0, 'sk-sluice-'.length + 4));
    expect(Object.keys(key)).not.toContain('digest');

    expect((await chat(gw, key.secret)).status).toBe(200);
    const anthropic = await request(gw.url, 'POST', '/v1/messages', {
      headers: { 'x-api-key': key.secret },
      body: { model: 'default', max_tokens: 8, messages: [{ role: 'user', content: 'Hi' }] },
    });
    expect(anthropic.status).toBe(200);
    expect(gw.events.at(-1)).toMatchObject({ keyName: 'ci', status: 200 });

    const revoked = await adminApi(gw).post(`/admin/keys/${key.id}/revoke`);
    expect(revoked.status).toBe(200);
    expect(revoked.body).toMatchObject({ id: key.id, status: 'revoked', revokedAt: expect.any(String) });
    expect(revoked.body.secret).toBeUndefined();

    const refused = await chat(gw, key.secret);
    expect(refused.status).toBe(401);
    expect(refused.body.error).toMatchObject({ code: 'revoked_api_key', type: 'invalid_request_error' });
    expect(refused.body.error?.message).toContain(`This API key (${key.id}, "ci") was revoked at`);

    // Revoking again changes nothing; a revoked key cannot be rotated or changed.
    expect((await adminApi(gw).post(`/admin/keys/${key.id}/revoke`)).body).toEqual(revoked.body);
    const rotate = await adminApi(gw).post(`/admin/keys/${key.id}/rotate`);
    expect([rotate.status, rotate.body.error?.code]).toEqual([409, 'key_revoked']);
    const patch = await adminApi(gw).patch(`/admin/keys/${key.id}`, { priority: 'high' });
    expect([patch.status, patch.body.error?.code]).toEqual([409, 'key_revoked']);
  });

  it('rotation gives a new secret; the old one stops at once', async () => {
    const key = await createKey(gw, { name: 'rotating' });
    const rotated = await adminApi(gw).post(`/admin/keys/${key.id}/rotate`);
    expect(rotated.status).toBe(200);
    const secret = rotated.body.secret as string;
    expect(secret).toMatch(/^sk-sluice-/);
    expect(secret).not.toBe(key.secret);
    expect(rotated.body).toMatchObject({
      id: key.id,
      status: 'active',
      prefix: secret.slice(0, 14),
      rotatedAt: expect.any(String),
    });

    const old = await chat(gw, key.secret);
    expect([old.status, old.body.error?.code]).toEqual([401, 'invalid_api_key']);
    expect((await chat(gw, secret)).status).toBe(200);
  });

  it('refuses a key past its expiresAt with 401 expired_api_key, until it is extended', async () => {
    const inAnHour = new Date(Date.now() + 3_600_000).toISOString();
    const key = await createKey(gw, { name: 'temporary', expiresAt: inAnHour });
    expect(key.expiresAt).toBe(inAnHour);
    expect((await chat(gw, key.secret)).status).toBe(200);

    const past = new Date(Date.now() - 1_000).toISOString();
    const expired = await adminApi(gw).patch(`/admin/keys/${key.id}`, { expiresAt: past });
    expect(expired.body).toMatchObject({ status: 'expired', expiresAt: past });
    const refused = await chat(gw, key.secret);
    expect([refused.status, refused.body.error?.code]).toEqual([401, 'expired_api_key']);
    expect(refused.body.error?.message).toContain(`expired at ${past}`);

    const rotate = await adminApi(gw).post(`/admin/keys/${key.id}/rotate`);
    expect([rotate.status, rotate.body.error?.code]).toEqual([409, 'key_expired']);

    const extended = await adminApi(gw).patch(`/admin/keys/${key.id}`, { expiresAt: null });
    expect(extended.body).toMatchObject({ status: 'active', expiresAt: null });
    expect((await chat(gw, key.secret)).status).toBe(200);

    const born = await adminApi(gw).post('/admin/keys', { name: 'born-expired', expiresAt: past });
    expect(born.status).toBe(400);
    expect(born.body.error).toMatchObject({ code: 'expires_in_past', param: 'expiresAt' });
  });

  it('a key scoped to routes reaches only those, and /v1/models lists only those', async () => {
    const key = await createKey(gw, { name: 'fast-only', routes: ['sim-fast'] });
    expect((await chat(gw, key.secret, 'sim-fast')).status).toBe(200);
    const refused = await chat(gw, key.secret, 'default');
    expect([refused.status, refused.body.error?.code]).toEqual([403, 'route_not_allowed']);
    const models = await request(gw.url, 'GET', '/v1/models', { key: key.secret });
    expect((models.body.data as { id: string }[]).map((m) => m.id)).toEqual(['sim-fast']);

    const unknown = await adminApi(gw).post('/admin/keys', {
      name: 'typo',
      routes: ['sim-fast', 'sim-fats'],
    });
    expect(unknown.status).toBe(400);
    expect(unknown.body.error).toMatchObject({ code: 'unknown_route', param: 'routes[1]' });
    expect(unknown.body.error?.message).toContain("Unknown route 'sim-fats'");

    const widened = await adminApi(gw).patch(`/admin/keys/${key.id}`, { routes: null });
    expect(widened.body.routes).toBeNull();
    expect((await chat(gw, key.secret, 'default')).status).toBe(200);
  });

  it('sends a key’s requests at its default priority, with its tags under the request’s own', async () => {
    const key = await createKey(gw, {
      name: 'nightly',
      priority: 'batch',
      tags: { job: 'reports', env: 'prod' },
    });
    expect(key).toMatchObject({ priority: 'batch', tags: { job: 'reports', env: 'prod' } });
    expect((await chat(gw, key.secret)).status).toBe(200);
    expect(gw.events.at(-1)).toMatchObject({
      keyName: 'nightly',
      keyId: key.id,
      team: null,
      org: null,
      priority: 'batch',
      tags: { job: 'reports', env: 'prod' },
    });
    const tagged = await request(gw.url, 'POST', '/v1/chat/completions', {
      key: key.secret,
      headers: { 'x-sluice-tags': 'job=adhoc,ticket=42' },
      body: { model: 'default', messages: [{ role: 'user', content: 'Hi' }], max_tokens: 4 },
    });
    expect(tagged.status).toBe(200);
    expect(gw.events.at(-1)?.tags).toEqual({ job: 'adhoc', env: 'prod', ticket: '42' });
  });

  it('places keys in teams and orgs, lists them by either, and keeps live names unique per team', async () => {
    const { orgId, teamId } = await createTeam(gw, 'acme', 'search');
    const other = await adminApi(gw).post('/admin/teams', { orgId, name: 'ads' });
    const key = await createKey(gw, { name: 'search-prod', teamId });
    expect(key).toMatchObject({ teamId, orgId });
    expect((await chat(gw, key.secret)).status).toBe(200);
    expect(gw.events.at(-1)).toMatchObject({
      keyName: 'search-prod',
      keyId: key.id,
      team: 'search',
      org: 'acme',
    });
    const orgKey = await createKey(gw, { name: 'acme-wide', orgId });
    expect(orgKey).toMatchObject({ teamId: null, orgId });

    const again = await adminApi(gw).post('/admin/keys', { name: 'search-prod', teamId });
    expect([again.status, again.body.error?.code]).toEqual([409, 'key_name_taken']);
    expect(
      (await adminApi(gw).post('/admin/keys', { name: 'search-prod', teamId: other.body.id })).status,
    ).toBe(201);

    const ids = (answer: Answer) => (answer.body.data as { id: string }[]).map((k) => k.id);
    expect(ids(await adminApi(gw).get(`/admin/keys?teamId=${teamId}`))).toEqual([key.id]);
    expect(ids(await adminApi(gw).get(`/admin/keys?orgId=${orgId}`))).toHaveLength(3);
    await adminApi(gw).post(`/admin/keys/${key.id}/revoke`);
    expect(ids(await adminApi(gw).get(`/admin/keys?orgId=${orgId}&status=revoked`))).toEqual([key.id]);
    expect(ids(await adminApi(gw).get(`/admin/keys?orgId=${orgId}&status=active`))).not.toContain(key.id);
    // The name of a revoked key is free again.
    expect((await adminApi(gw).post('/admin/keys', { name: 'search-prod', teamId })).status).toBe(201);

    const shown = await adminApi(gw).get(`/admin/keys/${orgKey.id}`);
    expect(shown.body).toMatchObject({ id: orgKey.id, name: 'acme-wide', status: 'active' });
    expect(shown.body.secret).toBeUndefined();
  });

  it('answers 404 and 409 for missing and clashing orgs and teams', async () => {
    const org = await adminApi(gw).post('/admin/orgs', { name: 'globex' });
    const orgId = org.body.id as string;
    const clash = await adminApi(gw).post('/admin/orgs', { name: 'globex' });
    expect([clash.status, clash.body.error?.code]).toEqual([409, 'org_name_taken']);
    const team = await adminApi(gw).post('/admin/teams', { orgId, name: 'infra' });
    const teamClash = await adminApi(gw).post('/admin/teams', { orgId, name: 'infra' });
    expect([teamClash.status, teamClash.body.error?.code]).toEqual([409, 'team_name_taken']);
    const orphan = await adminApi(gw).post('/admin/teams', { orgId: 'org_none', name: 'x' });
    expect(orphan.status).toBe(404);
    expect(orphan.body.error).toMatchObject({ code: 'org_not_found', param: 'orgId' });

    const noTeam = await adminApi(gw).post('/admin/keys', { name: 'k', teamId: 'team_none' });
    expect(noTeam.body.error).toMatchObject({ code: 'team_not_found', param: 'teamId' });
    expect(noTeam.status).toBe(404);
    const otherOrg = await adminApi(gw).post('/admin/orgs', { name: 'initech' });
    const mismatch = await adminApi(gw).post('/admin/keys', {
      name: 'k',
      teamId: team.body.id,
      orgId: otherOrg.body.id,
    });
    expect([mismatch.status, mismatch.body.error?.code]).toEqual([400, 'team_not_in_org']);

    for (const path of ['/admin/keys/key_none', '/admin/teams/team_none', '/admin/orgs/org_none']) {
      const missing = await adminApi(gw).get(path);
      expect(missing.status).toBe(404);
      expect(missing.body.error?.code).toMatch(/^(key|team|org)_not_found$/);
    }
    expect((await adminApi(gw).post('/admin/keys/key_none/rotate')).status).toBe(404);
    expect((await adminApi(gw).post('/admin/keys/key_none/revoke')).status).toBe(404);

    await createKey(gw, { name: 'infra-ci', teamId: team.body.id });
    const busyTeam = await adminApi(gw).delete(`/admin/teams/${team.body.id}`);
    expect([busyTeam.status, busyTeam.body.error?.code]).toEqual([409, 'team_in_use']);
    expect(busyTeam.body.error?.message).toContain("The team 'infra' still has 1 key");
    const busyOrg = await adminApi(gw).delete(`/admin/orgs/${orgId}`);
    expect([busyOrg.status, busyOrg.body.error?.code]).toEqual([409, 'org_in_use']);

    const empty = await adminApi(gw).post('/admin/teams', { orgId, name: 'empty' });
    expect((await adminApi(gw).delete(`/admin/teams/${empty.body.id}`)).body).toEqual({
      id: empty.body.id,
      object: 'team',
      deleted: true,
    });
    expect((await adminApi(gw).get(`/admin/teams/${empty.body.id}`)).status).toBe(404);
    expect((await adminApi(gw).delete(`/admin/orgs/${otherOrg.body.id}`)).status).toBe(200);
    const teams = await adminApi(gw).get(`/admin/teams?orgId=${orgId}`);
    expect((teams.body.data as { name: string }[]).map((t) => t.name)).toEqual(['infra']);
  });

  it('answers bad bodies and queries with precise 400s', async () => {
    const cases: [unknown, string, string | null][] = [
      [{}, 'missing_required_parameter', 'name'],
      [{ name: '' }, 'string_below_min_length', 'name'],
      [{ name: 'x', priority: 'urgent' }, 'invalid_value', 'priority'],
      [{ name: 'x', admin: 'yes' }, 'invalid_type', 'admin'],
      [{ name: 'x', routes: [] }, 'empty_array', 'routes'],
      [{ name: 'x', expiresAt: 'tomorrow' }, 'invalid_value', 'expiresAt'],
      [{ name: 'x', tags: { 'has space': 'v' } }, 'invalid_value', 'tags.has space'],
    ];
    for (const [body, code, param] of cases) {
      const answer = await adminApi(gw).post('/admin/keys', body);
      expect(
        [answer.status, answer.body.error?.code, answer.body.error?.param],
        JSON.stringify(body),
      ).toEqual([400, code, param]);
    }
    const unknownField = await adminApi(gw).post('/admin/keys', { name: 'x', secret: 'mine' });
    expect(unknownField.status).toBe(400);
    expect(unknownField.body.error?.message).toContain('secret');
    const query = await adminApi(gw).get('/admin/keys?team=search');
    expect(query.status).toBe(400);
    expect(query.body.error).toMatchObject({ code: 'unknown_parameter', param: 'team' });
    expect(query.body.error?.message).toBe("Unknown query parameter 'team': use teamId, orgId, status.");
    const notJson = await request(gw.url, 'POST', '/admin/keys', {
      key: ADMIN_KEY,
      headers: { 'content-type': 'application/json' },
      body: undefined,
    });
    expect(notJson.status).toBe(400);
  });
});

describe('virtual keys and the client API', () => {
  it('leaves the API open until the first key exists; after that every call needs a key, even once all are revoked', async () => {
    const gw = await gatewayWith();
    expect((await chat(gw, undefined)).status).toBe(200);
    const key = await createKey(gw, { name: 'first' });
    const anonymous = await chat(gw, undefined);
    expect([anonymous.status, anonymous.body.error?.code]).toEqual([401, 'missing_api_key']);
    const stranger = await chat(gw, 'sk-sluice-not-a-key-of-this-gateway');
    expect([stranger.status, stranger.body.error?.code]).toEqual([401, 'invalid_api_key']);
    await adminApi(gw).post(`/admin/keys/${key.id}/revoke`);
    expect((await chat(gw, undefined)).status).toBe(401);
  });

  it('authenticates config keys and virtual keys side by side', async () => {
    const gw = await gatewayWith({
      auth: {
        adminKey: ADMIN_KEY,
        apiKeys: [{ name: 'from-config', key: CONFIG_KEY, routes: ['sim-smart'] }],
      },
    });
    const key = await createKey(gw, { name: 'from-store' });
    expect((await chat(gw, CONFIG_KEY, 'sim-smart')).status).toBe(200);
    expect(gw.events.at(-1)?.keyName).toBe('from-config');
    expect((await chat(gw, key.secret)).status).toBe(200);
    expect(gw.events.at(-1)?.keyName).toBe('from-store');
    // The admin key is for the admin API only.
    expect((await chat(gw, ADMIN_KEY)).status).toBe(401);
  });

  it('keeps its keys across a restart on the same data dir, and an admin-scoped key opens the admin API without auth.adminKey', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'sluice-keys-restart-'));
    onTestFinished(() => rm(dataDir, { recursive: true, force: true }));
    const first = await startGatewayWithSim({ auth: { adminKey: ADMIN_KEY }, dataDir });
    const client = await createKey(first, { name: 'client' });
    const admin = await createKey(first, { name: 'ops', admin: true });
    await first.close();

    const second = await startGatewayWithSim({ dataDir });
    onTestFinished(() => second.close());
    expect((await chat(second, client.secret)).status).toBe(200);
    const listed = await adminApi(second, admin.secret).get('/admin/keys');
    expect(listed.status).toBe(200);
    expect((listed.body.data as { name: string }[]).map((k) => k.name)).toEqual(['client', 'ops']);
    const denied = await adminApi(second, client.secret).get('/admin/keys');
    expect([denied.status, denied.body.error?.code]).toEqual([403, 'admin_scope_required']);
  });
});

describe('tenants', () => {
  it('a key of one team cannot see or change the keys of another through any path but the admin API', async () => {
    const gw = await gatewayWith();
    const a = await createTeam(gw, 'org-a', 'team-a');
    const b = await createTeam(gw, 'org-b', 'team-b');
    const keyA = await createKey(gw, { name: 'a-key', teamId: a.teamId, routes: ['sim-fast'] });
    const keyB = await createKey(gw, { name: 'b-key', teamId: b.teamId, routes: ['sim-smart'] });
    const asA = adminApi(gw, keyA.secret);

    const attempts = [
      await asA.get('/admin/keys'),
      await asA.get(`/admin/keys?teamId=${b.teamId}`),
      await asA.get(`/admin/keys/${keyB.id}`),
      await asA.patch(`/admin/keys/${keyB.id}`, { routes: null }),
      await asA.post(`/admin/keys/${keyB.id}/rotate`),
      await asA.post(`/admin/keys/${keyB.id}/revoke`),
      await asA.post('/admin/keys', { name: 'escalate', teamId: b.teamId, admin: true }),
      await asA.get('/admin/teams'),
      await asA.get(`/admin/teams/${b.teamId}`),
      await asA.delete(`/admin/teams/${b.teamId}`),
      await asA.get('/admin/orgs'),
      await asA.post('/admin/config/reload'),
    ];
    for (const answer of attempts) {
      expect([answer.status, answer.body.error?.code]).toEqual([403, 'admin_scope_required']);
      for (const hidden of [keyB.id, keyB.prefix, 'b-key', b.teamId, 'team-b'])
        expect(answer.text).not.toContain(hidden);
    }

    // Through the client API, A sees only its own routes; B's key is untouched.
    const models = await request(gw.url, 'GET', '/v1/models', { key: keyA.secret });
    expect((models.body.data as { id: string }[]).map((m) => m.id)).toEqual(['sim-fast']);
    const other = await chat(gw, keyA.secret, 'sim-smart');
    expect([other.status, other.body.error?.code]).toEqual([403, 'route_not_allowed']);
    expect(other.text).not.toContain('b-key');
    expect((await chat(gw, keyB.secret, 'sim-smart')).status).toBe(200);
    expect((await adminApi(gw).get(`/admin/keys/${keyB.id}`)).body).toMatchObject({
      status: 'active',
      routes: ['sim-smart'],
      rotatedAt: null,
    });
    expect((await adminApi(gw).get('/admin/keys')).body.data).toHaveLength(2);
  });

  it('answers 401 on /admin for no key, an unknown key, and a revoked or expired admin-scoped key', async () => {
    const gw = await gatewayWith();
    const admin = await createKey(gw, { name: 'ops', admin: true });
    expect((await adminApi(gw, admin.secret).get('/admin/orgs')).status).toBe(200);
    expect((await request(gw.url, 'GET', '/admin/keys')).status).toBe(401);
    const unknown = await adminApi(gw, 'sk-sluice-unknown-key-000000000000').get('/admin/keys');
    expect([unknown.status, unknown.body.error?.code]).toEqual([401, 'invalid_admin_key']);

    const expiring = await createKey(gw, { name: 'ops-2', admin: true });
    await adminApi(gw).patch(`/admin/keys/${expiring.id}`, {
      expiresAt: new Date(Date.now() - 1).toISOString(),
    });
    const expired = await adminApi(gw, expiring.secret).get('/admin/keys');
    expect([expired.status, expired.body.error?.code]).toEqual([401, 'expired_api_key']);

    // An admin-scoped key can revoke itself, and is refused from then on.
    await adminApi(gw, admin.secret).post(`/admin/keys/${admin.id}/revoke`);
    const revoked = await adminApi(gw, admin.secret).get('/admin/keys');
    expect([revoked.status, revoked.body.error?.code]).toEqual([401, 'revoked_api_key']);
  });
});

describe('secrets', () => {
  it('never appear in logs, lists, shown keys or error messages: only at creation and rotation', async () => {
    const gw = await gatewayWith({ logLevel: 'trace' });
    const { teamId } = await createTeam(gw, 'secretive', 'vault');
    const kept = await createKey(gw, { name: 'kept', teamId, routes: ['sim-fast'] });
    const revoked = await createKey(gw, { name: 'revoked' });
    const rotated = await createKey(gw, { name: 'rotated' });
    const rotation = await adminApi(gw).post(`/admin/keys/${rotated.id}/rotate`);
    const secrets = [kept.secret, revoked.secret, rotated.secret, rotation.body.secret as string];

    await adminApi(gw).post(`/admin/keys/${revoked.id}/revoke`);
    const said: string[] = [
      (await chat(gw, kept.secret, 'sim-fast')).text,
      (await chat(gw, kept.secret, 'default')).text,
      (await chat(gw, revoked.secret)).text,
      (await chat(gw, rotated.secret)).text,
      (await adminApi(gw).get('/admin/keys')).text,
      (await adminApi(gw).get(`/admin/keys/${kept.id}`)).text,
      (await adminApi(gw).get(`/admin/keys?teamId=${teamId}`)).text,
      (await adminApi(gw).patch(`/admin/keys/${kept.id}`, { tags: { a: 'b' } })).text,
      (await adminApi(gw).post(`/admin/keys/${revoked.id}/rotate`)).text,
      (await adminApi(gw, kept.secret).get('/admin/keys')).text,
      (await adminApi(gw).post('/admin/keys', { name: 'kept', teamId })).text,
    ];
    const digests = (await adminApi(gw).get('/admin/keys')).text;
    expect(digests).not.toMatch(/[0-9a-f]{64}/);
    for (const text of [...said, ...gw.logs]) {
      for (const secret of secrets) expect(text).not.toContain(secret);
      expect(text).not.toContain('SECRET');
    }
    expect(gw.logs.length).toBeGreaterThan(0);
  });
});

describe('virtual keys across gateways sharing PostgreSQL', () => {
  const postgres = serverForSuite(startPostgres);

  /** Retries `check` until it passes: another node learns of changes on its next reload. */
  async function eventually(check: () => Promise<void>): Promise<void> {
    for (let tries = 0; ; tries++) {
      try {
        return await check();
      } catch (error) {
        if (tries >= 400) throw error;
        await sleep(50);
      }
    }
  }

  it('a key created, rotated or revoked on one node takes effect on the other at its next reload', async () => {
    const admin = new pg.Client({ connectionString: postgres.url });
    await admin.connect();
    await admin.query('CREATE DATABASE sluice_cluster');
    await admin.end();
    const url = postgres.url.replace(/\/postgres$/, '/sluice_cluster');
    const config = {
      store: { type: 'postgres' as const, url },
      auth: { adminKey: ADMIN_KEY, keyRefreshMs: 200 },
    };
    const nodeA = await gatewayWith(config);
    const nodeB = await gatewayWith(config);

    const key = await createKey(nodeA, { name: 'shared' });
    expect((await chat(nodeA, key.secret)).status).toBe(200);
    await eventually(async () => expect((await chat(nodeB, key.secret)).status).toBe(200));

    const rotated = await adminApi(nodeA).post(`/admin/keys/${key.id}/rotate`);
    const secret = rotated.body.secret as string;
    await eventually(async () => {
      expect((await chat(nodeB, secret)).status).toBe(200);
      expect((await chat(nodeB, key.secret)).body.error?.code).toBe('invalid_api_key');
    });

    await adminApi(nodeB).post(`/admin/keys/${key.id}/revoke`);
    expect((await chat(nodeB, secret)).body.error?.code).toBe('revoked_api_key');
    await eventually(async () =>
      expect((await chat(nodeA, secret)).body.error?.code).toBe('revoked_api_key'),
    );
    expect((await adminApi(nodeA).get(`/admin/keys/${key.id}`)).body.status).toBe('revoked');
  });
});
