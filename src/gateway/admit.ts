import { timingSafeEqual } from 'node:crypto';
import { type ApiError, apiError, isApiError } from '../http/api-error.js';
import type { Principal } from './call.js';
import { keyDigest, keyDigestHex, type Runtime } from './runtime.js';

const anonymous: Principal = { keyName: null };

type Headers = Record<string, string | string[] | undefined>;

/** The key a client sent: `Authorization: Bearer <key>` (OpenAI SDKs) or `x-api-key` (Anthropic SDKs). */
export function presentedKey(headers: Headers): string | undefined {
  const auth = headers.authorization;
  if (typeof auth === 'string' && auth.length > 7 && auth.slice(0, 7).toLowerCase() === 'bearer ') {
    return auth.slice(7).trim();
  }
  const apiKey = headers['x-api-key'];
  return typeof apiKey === 'string' && apiKey ? apiKey.trim() : undefined;
}

/**
 * The admit stage's authentication: which principal is calling. Keys from the config and the
 * control store's virtual keys are looked up in memory by their SHA-256 digest, so no secret is
 * compared byte by byte (no timing side channel) and no request waits on storage.
 * While no key exists at all the API is open; once one does (even revoked), every call needs one.
 */
export function authenticate(runtime: Runtime, headers: Headers): Principal | ApiError {
  const open = runtime.apiKeys.size === 0 && runtime.virtualKeys.size === 0;
  const key = presentedKey(headers);
  if (!key) {
    if (open) return anonymous;
    return apiError(
      'authentication',
      401,
      'Missing API key: send it as "Authorization: Bearer <key>" or "x-api-key: <key>".',
      { code: 'missing_api_key' },
    );
  }
  const digest = keyDigestHex(key);
  const configured = runtime.apiKeys.get(digest);
  if (configured) return configured;
  const stored = runtime.virtualKeys.admit(digest);
  if (stored) return isApiError(stored) ? stored : stored.principal;
  if (open) return anonymous;
  return apiError('authentication', 401, 'Invalid API key: check the key or ask an admin for a new one.', {
    code: 'invalid_api_key',
  });
}

/**
 * Who may use the admin API: the configured admin key, or a virtual key with admin scope.
 * Returns true, or the error to answer: 401 for no or an unknown key, 403 for a client key
 * without admin scope (or when nothing can unlock the admin API).
 */
export function authorizeAdmin(runtime: Runtime, headers: Headers): true | ApiError {
  const enabled = runtime.adminKeyDigest !== undefined || runtime.virtualKeys.admins > 0;
  if (!enabled) {
    return apiError(
      'permission',
      403,
      'The admin API is disabled: set auth.adminKey in the config (e.g. ${SLUICE_ADMIN_KEY}).',
      { code: 'admin_disabled' },
    );
  }
  const key = presentedKey(headers);
  if (key) {
    const digest = keyDigest(key);
    if (runtime.adminKeyDigest && timingSafeEqual(digest, runtime.adminKeyDigest)) return true;
    const hex = digest.toString('hex');
    const stored = runtime.virtualKeys.admit(hex);
    if (isApiError(stored)) return stored;
    if (stored?.admin) return true;
    if (stored || runtime.apiKeys.has(hex)) {
      return apiError(
        'permission',
        403,
        'This API key has no admin scope: use the admin key, or a key created with "admin": true.',
        { code: 'admin_scope_required' },
      );
    }
  }
  return apiError(
    'authentication',
    401,
    'The admin API needs the admin key (or a key with admin scope) as "Authorization: Bearer <key>".',
    { code: 'invalid_admin_key' },
  );
}

/** True when `headers` carry the admin key or an active key with admin scope. */
export function isAdmin(runtime: Runtime, headers: Headers): boolean {
  return authorizeAdmin(runtime, headers) === true;
}
