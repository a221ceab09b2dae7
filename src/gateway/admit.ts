import { timingSafeEqual } from 'node:crypto';
import { type ApiError, apiError } from '../http/api-error.js';
import type { Principal } from './call.js';
import { keyDigest, type Runtime } from './runtime.js';

const anonymous: Principal = { keyName: null };

/** The key a client sent: `Authorization: Bearer <key>` (OpenAI SDKs) or `x-api-key` (Anthropic SDKs). */
export function presentedKey(headers: Record<string, string | string[] | undefined>): string | undefined {
  const auth = headers.authorization;
  if (typeof auth === 'string' && auth.length > 7 && auth.slice(0, 7).toLowerCase() === 'bearer ') {
    return auth.slice(7).trim();
  }
  const apiKey = headers['x-api-key'];
  return typeof apiKey === 'string' && apiKey ? apiKey.trim() : undefined;
}

/**
 * The admit stage's authentication: which principal is calling. Keys are looked up by their
 * SHA-256 digest, so no secret is ever compared byte by byte (no timing side channel).
 * Budgets and rate limits will hang off the principal found here.
 */
export function authenticate(
  runtime: Runtime,
  headers: Record<string, string | string[] | undefined>,
): Principal | ApiError {
  if (runtime.apiKeys.size === 0) return anonymous;
  const key = presentedKey(headers);
  if (!key) {
    return apiError(
      'authentication',
      401,
      'Missing API key: send it as "Authorization: Bearer <key>" or "x-api-key: <key>".',
      { code: 'missing_api_key' },
    );
  }
  const principal = runtime.apiKeys.get(keyDigest(key).toString('hex'));
  if (!principal) {
    return apiError('authentication', 401, 'Invalid API key: check the key or ask an admin for a new one.', {
      code: 'invalid_api_key',
    });
  }
  return principal;
}

/** True when `headers` carry the admin key. */
export function isAdmin(runtime: Runtime, headers: Record<string, string | string[] | undefined>): boolean {
  const key = presentedKey(headers);
  if (!key || !runtime.adminKeyDigest) return false;
  return timingSafeEqual(keyDigest(key), runtime.adminKeyDigest);
}
