import { timingSafeEqual } from 'node:crypto';
import { type ApiError, apiError, isApiError } from '../http/api-error.js';
import type { Principal } from './call.js';
import { keyDigest, keyDigestHex, type Runtime } from './runtime.js';

const anonymous: Principal = { keyName: null };

type Headers = Record<string, string | string[] | undefined>;

/** The key a client sent: `Authorization: Bearer <key>` (OpenAI SDKs) or `x-api-key` (Anthropic SDKs). */
export function presentedKey(headers: Headers): string | undefined {
  const auth = headers.authorization;
  if (typeof auth === 'string' && auth.length > 7) {
    // "Bearer " as SDKs write it, without lowercasing a copy; any other case too.
    if (auth.startsWith('Bearer ') || auth.slice(0, 7).toLowerCase() === 'bearer ')
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
 * `connection` (the request's socket) lets a keep-alive client's repeated key skip the hash.
 */
export function authenticate(runtime: Runtime, headers: Headers, connection?: object): Principal | ApiError {
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
  const digest = connection === undefined ? keyDigestHex(key) : digestOn(connection, key);
  const configured = runtime.apiKeys.get(digest);
  if (configured) return configured;
  const stored = runtime.virtualKeys.admit(digest);
  if (stored) return isApiError(stored) ? stored : stored.principal;
  if (open) return anonymous;
  return apiError('authentication', 401, 'Invalid API key: check the key or ask an admin for a new one.', {
    code: 'invalid_api_key',
  });
}

/** The last key a connection presented, and its SHA-256 (hex). */
interface KeyMemo {
  key: string;
  digest: string;
}

const lastKeys = new WeakMap<object, KeyMemo>();

/**
 * The key's digest, remembered for its connection: a keep-alive client sends the same key on
 * every request, and in a busy gateway hashing it (OpenSSL's code cold in the CPU's caches) was
 * the dearest single step of admission. Only the digest is remembered, never the principal, so a
 * key revoked or a reload applies to the next request as before. The memo lives as long as the
 * socket, which holds the key in its request headers anyway.
 */
function digestOn(connection: object, key: string): string {
  const memo = lastKeys.get(connection);
  if (memo !== undefined && sameKey(memo.key, key)) return memo.digest;
  const digest = keyDigestHex(key);
  if (memo === undefined) lastKeys.set(connection, { key, digest });
  else {
    memo.key = key;
    memo.digest = digest;
  }
  return digest;
}

/**
 * Whether two keys are equal, in a time that says nothing of where they differ: a connection
 * shared by several clients (a pooling proxy) must not learn another client's key by timing.
 */
function sameKey(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
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
