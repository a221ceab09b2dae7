import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Budget, ControlStore, KeyRecord, Org, Team } from '../../src/store/control-store.js';

export interface ControlStoreUnderTest {
  /** A store on an empty database, not yet opened. */
  store: ControlStore;
  /** Removes what the store left behind (a file, a database); the store is closed already. */
  cleanup(): Promise<void>;
}

const T0 = Date.parse('2026-03-01T12:00:00.000Z');

export const org = (n: number, overrides: Partial<Org> = {}): Org => ({
  id: `org_${n}`,
  name: `org-${n}`,
  createdAt: T0 + n,
  ...overrides,
});

export const team = (n: number, orgId: string, overrides: Partial<Team> = {}): Team => ({
  id: `team_${n}`,
  orgId,
  name: `team-${n}`,
  createdAt: T0 + n,
  ...overrides,
});

export const key = (n: number, overrides: Partial<KeyRecord> = {}): KeyRecord => ({
  id: `key_${n}`,
  name: `key-${n}`,
  orgId: null,
  teamId: null,
  digest: `digest-${n}`.padEnd(64, '0'),
  prefix: `sk-sluice-k${n}`,
  admin: false,
  routes: null,
  priority: 'normal',
  tags: {},
  createdAt: T0 + n,
  expiresAt: null,
  revokedAt: null,
  rotatedAt: null,
  ...overrides,
});

export const budget = (n: number, overrides: Partial<Budget> = {}): Budget => ({
  id: `budget_${n}`,
  name: `budget-${n}`,
  scope: 'team',
  scopeName: 'team-1',
  period: 'month',
  limitUsd: 250.5,
  limitTokens: null,
  softLimitPct: 80,
  webhook: null,
  createdAt: T0 + n,
  updatedAt: T0 + n,
  ...overrides,
});

/** The behaviour every ControlStore promises; each engine runs this suite against a real database. */
export function describeControlStoreContract(
  name: string,
  makeStore: () => Promise<ControlStoreUnderTest>,
): void {
  describe(`${name} control store contract`, () => {
    let store: ControlStore;
    let cleanup: () => Promise<void>;

    beforeEach(async () => {
      ({ store, cleanup } = await makeStore());
      await store.open();
    });

    afterEach(async () => {
      await store.close();
      await cleanup();
    });

    describe('orgs', () => {
      it('returns what it inserted, by id and in lists oldest first', async () => {
        expect(await store.orgs.insert(org(2))).toEqual(org(2));
        await store.orgs.insert(org(1));
        expect(await store.orgs.get('org_2')).toEqual(org(2));
        expect(await store.orgs.list()).toEqual([org(1), org(2)]);
        expect(await store.orgs.list({ name: 'org-2' })).toEqual([org(2)]);
      });

      it('refuses a second org with the same name as a conflict', async () => {
        await store.orgs.insert(org(1));
        expect(await store.orgs.insert(org(2, { name: 'org-1' }))).toBe('conflict');
        expect(await store.orgs.insert(org(1, { name: 'other' }))).toBe('conflict');
        expect(await store.orgs.list()).toEqual([org(1)]);
      });

      it('answers undefined or missing for an id it does not hold', async () => {
        expect(await store.orgs.get('org_none')).toBeUndefined();
        expect(await store.orgs.update('org_none', { name: 'x' })).toBe('missing');
        expect(await store.orgs.delete('org_none')).toBe('missing');
      });

      it('deletes an org nothing refers to, and refuses one that still has teams', async () => {
        await store.orgs.insert(org(1));
        await store.orgs.insert(org(2));
        await store.teams.insert(team(1, 'org_1'));
        expect(await store.orgs.delete('org_1')).toBe('in_use');
        expect(await store.orgs.delete('org_2')).toBe('deleted');
        expect(await store.orgs.list()).toEqual([org(1)]);
      });
    });

    describe('teams', () => {
      beforeEach(async () => {
        await store.orgs.insert(org(1));
        await store.orgs.insert(org(2));
      });

      it('keeps team names unique within an org, not across orgs', async () => {
        expect(await store.teams.insert(team(1, 'org_1', { name: 'search' }))).toEqual(
          team(1, 'org_1', { name: 'search' }),
        );
        expect(await store.teams.insert(team(2, 'org_2', { name: 'search' }))).toMatchObject({
          id: 'team_2',
        });
        expect(await store.teams.insert(team(3, 'org_1', { name: 'search' }))).toBe('conflict');
        expect((await store.teams.list({ orgId: 'org_1' })).map((t) => t.id)).toEqual(['team_1']);
        expect((await store.teams.list({ name: 'search' })).map((t) => t.id)).toEqual(['team_1', 'team_2']);
      });

      it('refuses a team of an org that does not exist as dangling', async () => {
        expect(await store.teams.insert(team(1, 'org_none'))).toBe('dangling');
        expect(await store.teams.list()).toEqual([]);
      });

      it('deletes a team without keys, and refuses one that still has keys', async () => {
        await store.teams.insert(team(1, 'org_1'));
        await store.teams.insert(team(2, 'org_1'));
        await store.keys.insert(key(1, { orgId: 'org_1', teamId: 'team_1' }));
        expect(await store.teams.delete('team_1')).toBe('in_use');
        expect(await store.teams.delete('team_2')).toBe('deleted');
        expect(await store.teams.get('team_2')).toBeUndefined();
      });
    });

    describe('keys', () => {
      beforeEach(async () => {
        await store.orgs.insert(org(1));
        await store.teams.insert(team(1, 'org_1'));
        await store.teams.insert(team(2, 'org_1'));
      });

      it('round-trips every field: booleans, lists, tags and times', async () => {
        const full = key(1, {
          orgId: 'org_1',
          teamId: 'team_1',
          admin: true,
          routes: ['chat', 'openai/gpt-4o'],
          priority: 'batch',
          tags: { env: 'prod', owner: 'search' },
          expiresAt: T0 + 86_400_000,
          revokedAt: T0 + 5,
          rotatedAt: T0 + 3,
        });
        expect(await store.keys.insert(full)).toEqual(full);
        expect(await store.keys.get('key_1')).toEqual(full);
        await store.keys.insert(key(2));
        expect(await store.keys.get('key_2')).toEqual(key(2));
      });

      it('finds keys by digest, team, org, and keys of no team', async () => {
        await store.keys.insert(key(1, { orgId: 'org_1', teamId: 'team_1' }));
        await store.keys.insert(key(2, { orgId: 'org_1', teamId: 'team_2' }));
        await store.keys.insert(key(3, { orgId: 'org_1' }));
        await store.keys.insert(key(4));
        const ids = (keys: KeyRecord[]) => keys.map((k) => k.id);
        expect(ids(await store.keys.list({ digest: key(2).digest }))).toEqual(['key_2']);
        expect(ids(await store.keys.list({ teamId: 'team_1' }))).toEqual(['key_1']);
        expect(ids(await store.keys.list({ orgId: 'org_1' }))).toEqual(['key_1', 'key_2', 'key_3']);
        expect(ids(await store.keys.list({ teamId: null }))).toEqual(['key_3', 'key_4']);
        expect(ids(await store.keys.list({ orgId: null, teamId: null }))).toEqual(['key_4']);
        expect(ids(await store.keys.list())).toEqual(['key_1', 'key_2', 'key_3', 'key_4']);
      });

      it('keeps live key names unique per team, per org and among keys of neither', async () => {
        const named = (n: number, scope: Partial<KeyRecord>) => key(n, { name: 'ci', ...scope });
        expect(await store.keys.insert(named(1, { orgId: 'org_1', teamId: 'team_1' }))).toMatchObject({
          id: 'key_1',
        });
        expect(await store.keys.insert(named(2, { orgId: 'org_1', teamId: 'team_2' }))).toMatchObject({
          id: 'key_2',
        });
        expect(await store.keys.insert(named(3, { orgId: 'org_1' }))).toMatchObject({ id: 'key_3' });
        expect(await store.keys.insert(named(4, {}))).toMatchObject({ id: 'key_4' });

        expect(await store.keys.insert(named(5, { orgId: 'org_1', teamId: 'team_1' }))).toBe('conflict');
        expect(await store.keys.insert(named(6, { orgId: 'org_1' }))).toBe('conflict');
        expect(await store.keys.insert(named(7, {}))).toBe('conflict');
      });

      it('gives a revoked key’s name back to a new key', async () => {
        await store.keys.insert(key(1, { name: 'ci', teamId: 'team_1', orgId: 'org_1' }));
        expect(await store.keys.update('key_1', { revokedAt: T0 + 10 })).toMatchObject({
          revokedAt: T0 + 10,
        });
        expect(
          await store.keys.insert(key(2, { name: 'ci', teamId: 'team_1', orgId: 'org_1' })),
        ).toMatchObject({
          id: 'key_2',
        });
        expect(await store.keys.update('key_1', { revokedAt: null })).toBe('conflict');
      });

      it('refuses a second key with the same digest', async () => {
        await store.keys.insert(key(1));
        expect(await store.keys.insert(key(2, { digest: key(1).digest }))).toBe('conflict');
      });

      it('updates the given fields only, null clearing a field', async () => {
        await store.keys.insert(key(1, { routes: ['chat'], expiresAt: T0 + 100, tags: { a: '1' } }));
        const updated = await store.keys.update('key_1', {
          name: 'renamed',
          routes: null,
          expiresAt: undefined,
          tags: { b: '2' },
          digest: 'f'.repeat(64),
          prefix: 'sk-sluice-ffff',
          rotatedAt: T0 + 50,
        });
        const expected = key(1, {
          name: 'renamed',
          routes: null,
          expiresAt: T0 + 100,
          tags: { b: '2' },
          digest: 'f'.repeat(64),
          prefix: 'sk-sluice-ffff',
          rotatedAt: T0 + 50,
        });
        expect(updated).toEqual(expected);
        expect(await store.keys.get('key_1')).toEqual(expected);
        expect(await store.keys.update('key_1', {})).toEqual(expected);
      });

      it('refuses to move a key to a team that does not exist, or to a taken name', async () => {
        await store.keys.insert(key(1, { name: 'a' }));
        await store.keys.insert(key(2, { name: 'b' }));
        expect(await store.keys.update('key_1', { teamId: 'team_none' })).toBe('dangling');
        expect(await store.keys.update('key_1', { name: 'b' })).toBe('conflict');
        expect(await store.keys.get('key_1')).toEqual(key(1, { name: 'a' }));
      });
    });

    describe('budgets', () => {
      it('round-trips budget definitions, absent limits as null', async () => {
        const usd = budget(1);
        const tokens = budget(2, {
          scope: 'key',
          scopeName: 'key-9',
          period: 'day',
          limitUsd: null,
          limitTokens: 5_000_000_000,
          softLimitPct: null,
          webhook: 'https://hooks.example.com/budget',
        });
        expect(await store.budgets.insert(usd)).toEqual(usd);
        expect(await store.budgets.insert(tokens)).toEqual(tokens);
        expect(await store.budgets.get('budget_2')).toEqual(tokens);
        expect(await store.budgets.list()).toEqual([usd, tokens]);
      });

      it('lists the budgets of one scope', async () => {
        await store.budgets.insert(budget(1, { scope: 'org', scopeName: 'org-1' }));
        await store.budgets.insert(budget(2, { scope: 'team', scopeName: 'team-1' }));
        await store.budgets.insert(budget(3, { scope: 'team', scopeName: 'team-1', period: 'total' }));
        await store.budgets.insert(budget(4, { scope: 'team', scopeName: 'team-2' }));
        const ids = (list: Budget[]) => list.map((b) => b.id);
        expect(ids(await store.budgets.list({ scope: 'team', scopeName: 'team-1' }))).toEqual([
          'budget_2',
          'budget_3',
        ]);
        expect(ids(await store.budgets.list({ scope: 'org' }))).toEqual(['budget_1']);
        expect(ids(await store.budgets.list({ name: 'budget-4' }))).toEqual(['budget_4']);
      });

      it('refuses a second budget with a taken name, on insert and on rename', async () => {
        await store.budgets.insert(budget(1));
        await store.budgets.insert(budget(2));
        expect(await store.budgets.insert(budget(3, { name: 'budget-1' }))).toBe('conflict');
        expect(await store.budgets.update('budget_2', { name: 'budget-1' })).toBe('conflict');
        expect(await store.budgets.list()).toEqual([budget(1), budget(2)]);
      });

      it('updates and deletes a budget', async () => {
        await store.budgets.insert(budget(1));
        const change = { limitUsd: 99.25, limitTokens: 1000, softLimitPct: null, updatedAt: T0 + 100 };
        expect(await store.budgets.update('budget_1', change)).toEqual(budget(1, change));
        expect(await store.budgets.update('budget_9', change)).toBe('missing');
        expect(await store.budgets.delete('budget_1')).toBe('deleted');
        expect(await store.budgets.get('budget_1')).toBeUndefined();
        expect(await store.budgets.delete('budget_1')).toBe('missing');
      });
    });

    describe('lifecycle', () => {
      it('keeps every record across close and open', async () => {
        await store.orgs.insert(org(1));
        await store.teams.insert(team(1, 'org_1'));
        await store.keys.insert(key(1, { orgId: 'org_1', teamId: 'team_1', tags: { env: 'prod' } }));
        await store.budgets.insert(budget(1));
        await store.close();
        await store.open();
        expect(await store.orgs.list()).toEqual([org(1)]);
        expect(await store.teams.list()).toEqual([team(1, 'org_1')]);
        expect(await store.keys.list()).toEqual([
          key(1, { orgId: 'org_1', teamId: 'team_1', tags: { env: 'prod' } }),
        ]);
        expect(await store.budgets.list()).toEqual([budget(1)]);
      });

      it('opens again without harm', async () => {
        await store.orgs.insert(org(1));
        await store.open();
        expect(await store.orgs.list()).toEqual([org(1)]);
      });

      it('says where it is without a password', () => {
        expect(store.description).toMatch(/^(sqlite|postgres) /);
        expect(store.description).not.toContain('@');
      });
    });
  });
}
