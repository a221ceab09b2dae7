import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type ApiError, isApiError } from '../../../src/http/api-error.js';
import { KeyDirectory, type KeyEntry } from '../../../src/policy/key-directory.js';
import type { ControlStore } from '../../../src/store/control-store.js';
import { ManualClock } from '../../../src/time/manual-clock.js';
import { key, org, team } from '../../support/control-store-contract.js';
import { openTwoNodes, type TwoNodes } from '../../support/two-nodes.js';

const T0 = Date.parse('2026-03-01T12:00:00.000Z');
const REFRESH_MS = 5_000;

let nodes: TwoNodes;
let store: ControlStore;
let otherNode: ControlStore;
let clock: ManualClock;
let errors: unknown[];
let directory: KeyDirectory;

beforeEach(async () => {
  nodes = await openTwoNodes('sluice-keys-');
  ({ store, otherNode } = nodes);
  await store.orgs.insert(org(1, { name: 'acme' }));
  await store.teams.insert(team(1, 'org_1', { name: 'search' }));
  clock = new ManualClock(T0);
  errors = [];
  directory = new KeyDirectory({
    store,
    refreshMs: REFRESH_MS,
    clock,
    now: () => clock.now(),
    onRefreshError: (error) => errors.push(error),
  });
});

afterEach(async () => {
  directory.stop();
  await nodes.close();
});

function entry(result: KeyEntry | ApiError | undefined): KeyEntry {
  if (!result || isApiError(result)) throw new Error(`expected a key, got ${JSON.stringify(result)}`);
  return result;
}

describe('KeyDirectory', () => {
  it('loads every key at start, with its team and org names, scope and metadata', async () => {
    await store.keys.insert(
      key(1, {
        name: 'search-prod',
        orgId: 'org_1',
        teamId: 'team_1',
        routes: ['chat'],
        priority: 'high',
        tags: { env: 'prod' },
      }),
    );
    await store.keys.insert(key(2, { name: 'ops', admin: true }));
    expect(directory.admit(key(1).digest)).toBeUndefined();

    await directory.start();
    expect(entry(directory.admit(key(1).digest))).toEqual({
      principal: {
        keyName: 'search-prod',
        keyId: 'key_1',
        team: 'search',
        org: 'acme',
        routes: ['chat'],
        priority: 'high',
        tags: { env: 'prod' },
      },
      admin: false,
      expiresAt: null,
      revokedAt: null,
    });
    expect(entry(directory.admit(key(2).digest)).principal).toMatchObject({ team: null, org: null });
    expect(entry(directory.admit(key(2).digest)).principal.routes).toBeUndefined();
    expect(directory.admit('0'.repeat(64))).toBeUndefined();
    expect([directory.size, directory.admins]).toEqual([2, 1]);
  });

  it('refuses a revoked key with revoked_api_key, whatever its other state', async () => {
    await store.keys.insert(key(1, { revokedAt: T0 - 1_000, expiresAt: T0 - 500 }));
    await directory.start();
    const refused = directory.admit(key(1).digest) as ApiError;
    expect(refused).toMatchObject({ status: 401, code: 'revoked_api_key' });
    expect(refused.message).toContain('key_1');
    expect(refused.message).toContain('2026-03-01T11:59:59.000Z');
    // Revoked keys still count: revoking the last key must not open the API.
    expect([directory.size, directory.admins]).toEqual([1, 0]);
  });

  it('refuses a key with expired_api_key from the moment it expires', async () => {
    await store.keys.insert(key(1, { expiresAt: T0 + 60_000 }));
    await directory.start();
    clock.advance(59_999);
    expect(entry(directory.admit(key(1).digest)).principal.keyId).toBe('key_1');
    clock.advance(1);
    expect(directory.admit(key(1).digest)).toMatchObject({
      status: 401,
      code: 'expired_api_key',
      message: expect.stringContaining('expired at 2026-03-01T12:01:00.000Z'),
    });
  });

  it('puts a key changed on this node in force at once, and drops a rotated-out secret', async () => {
    await directory.start();
    directory.put(key(1, { admin: true }), { team: 'search', org: 'acme' });
    expect(entry(directory.admit(key(1).digest)).principal.team).toBe('search');
    expect(directory.admins).toBe(1);

    const rotated = key(1, { admin: true, digest: 'f'.repeat(64) });
    directory.put(rotated, { team: 'search', org: 'acme' }, key(1).digest);
    expect(directory.admit(key(1).digest)).toBeUndefined();
    expect(entry(directory.admit(rotated.digest)).principal.keyId).toBe('key_1');
    expect([directory.size, directory.admins]).toEqual([1, 1]);

    directory.put({ ...rotated, revokedAt: T0 }, { team: 'search', org: 'acme' });
    expect(directory.admit(rotated.digest)).toMatchObject({ code: 'revoked_api_key' });
    expect(directory.admins).toBe(0);
  });

  it('finds keys another node created or revoked at the next reload, every refreshMs', async () => {
    await otherNode.keys.insert(key(1));
    await directory.start();
    await otherNode.keys.insert(key(2));
    await otherNode.keys.update('key_1', { revokedAt: T0 });

    clock.advance(REFRESH_MS - 1);
    await directory.settled();
    expect(directory.admit(key(2).digest)).toBeUndefined();
    expect(entry(directory.admit(key(1).digest)).principal.keyId).toBe('key_1');

    clock.advance(1);
    await directory.settled();
    expect(entry(directory.admit(key(2).digest)).principal.keyId).toBe('key_2');
    expect(directory.admit(key(1).digest)).toMatchObject({ code: 'revoked_api_key' });

    await otherNode.keys.insert(key(3));
    clock.advance(REFRESH_MS);
    await directory.settled();
    expect(entry(directory.admit(key(3).digest)).principal.keyId).toBe('key_3');
  });

  it('keeps a key put during a reload that read the store before it was written', async () => {
    await directory.start();
    const reload = directory.refresh();
    directory.put(key(1), { team: null, org: null });
    await reload;
    expect(entry(directory.admit(key(1).digest)).principal.keyId).toBe('key_1');
  });

  it('keeps the keys it has when the store is unavailable, reports it, and recovers', async () => {
    await store.keys.insert(key(1));
    await directory.start();
    await store.close();
    clock.advance(REFRESH_MS);
    await directory.settled();
    expect(errors).toHaveLength(1);
    expect(entry(directory.admit(key(1).digest)).principal.keyId).toBe('key_1');

    await store.open();
    await store.keys.insert(key(2));
    clock.advance(REFRESH_MS);
    await directory.settled();
    expect(errors).toHaveLength(1);
    expect(entry(directory.admit(key(2).digest)).principal.keyId).toBe('key_2');
  });

  it('stops reloading when stopped', async () => {
    await directory.start();
    directory.stop();
    await otherNode.keys.insert(key(1));
    clock.advance(REFRESH_MS * 3);
    await directory.settled();
    expect(directory.admit(key(1).digest)).toBeUndefined();
    expect(clock.pending).toBe(0);
  });
});
