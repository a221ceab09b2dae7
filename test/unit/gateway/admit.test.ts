import { describe, expect, it, onTestFinished } from 'vitest';
import { sluiceConfigSchema } from '../../../src/config/schema.js';
import { authenticate } from '../../../src/gateway/admit.js';
import { buildRuntime, keyDigestHex } from '../../../src/gateway/runtime.js';
import { type ApiError, apiError, isApiError } from '../../../src/http/api-error.js';
import type { KeyEntry, VirtualKeys } from '../../../src/policy/key-directory.js';

const configKey = 'sk-config-0123456789abcdef';
const storedKey = 'sk-stored-0123456789abcdef';

/** A runtime with one config key and one virtual key that the test can revoke. */
function runtimeWithKeys() {
  const revoked = { now: false };
  const entry: KeyEntry = {
    principal: { keyName: 'stored', keyId: 'k1', team: null, org: null, priority: 'normal', tags: {} },
    admin: false,
    expiresAt: null,
    revokedAt: null,
  };
  const virtualKeys: VirtualKeys = {
    size: 1,
    admins: 0,
    admit: (digest): KeyEntry | ApiError | undefined => {
      if (digest !== keyDigestHex(storedKey)) return undefined;
      return revoked.now ? apiError('authentication', 401, 'revoked', { code: 'revoked_api_key' }) : entry;
    },
  };
  const runtime = buildRuntime(
    sluiceConfigSchema.parse({
      auth: { apiKeys: [{ name: 'config', key: configKey }] },
      providers: { sim: { type: 'sim', baseUrl: 'http://127.0.0.1:1' } },
      routes: { chat: { targets: [{ provider: 'sim', model: 'sim-fast' }] } },
    }),
    { virtualKeys },
  );
  onTestFinished(() => runtime.close());
  return { runtime, revoked };
}

const bearer = (key: string) => ({ authorization: `Bearer ${key}` });
const nameOf = (result: ReturnType<typeof authenticate>) =>
  isApiError(result) ? result.code : result.keyName;

describe('authenticate on a keep-alive connection', () => {
  it('authenticates the same key on every request of a connection', () => {
    const { runtime } = runtimeWithKeys();
    const connection = {};
    for (let i = 0; i < 3; i++)
      expect(nameOf(authenticate(runtime, bearer(configKey), connection))).toBe('config');
  });

  it('authenticates each key a connection presents, not the one it presented before', () => {
    const { runtime } = runtimeWithKeys();
    const connection = {};
    expect(nameOf(authenticate(runtime, bearer(configKey), connection))).toBe('config');
    expect(nameOf(authenticate(runtime, bearer(storedKey), connection))).toBe('stored');
    // Same length as the config key, one character apart.
    const wrong = `${configKey.slice(0, -1)}0`;
    expect(nameOf(authenticate(runtime, bearer(wrong), connection))).toBe('invalid_api_key');
    expect(nameOf(authenticate(runtime, { 'x-api-key': configKey }, connection))).toBe('config');
  });

  it('refuses a key revoked between two requests of one connection', () => {
    const { runtime, revoked } = runtimeWithKeys();
    const connection = {};
    expect(nameOf(authenticate(runtime, bearer(storedKey), connection))).toBe('stored');
    revoked.now = true;
    expect(nameOf(authenticate(runtime, bearer(storedKey), connection))).toBe('revoked_api_key');
  });

  it('keeps connections apart', () => {
    const { runtime } = runtimeWithKeys();
    const first = {};
    const second = {};
    expect(nameOf(authenticate(runtime, bearer(configKey), first))).toBe('config');
    expect(nameOf(authenticate(runtime, bearer('sk-nobody-0123456789abcd'), second))).toBe('invalid_api_key');
    expect(nameOf(authenticate(runtime, bearer(configKey), first))).toBe('config');
    expect(nameOf(authenticate(runtime, {}, second))).toBe('missing_api_key');
  });
});
