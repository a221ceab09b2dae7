import { hash, randomBytes } from 'node:crypto';
import type { KeyRecord } from '../store/control-store.js';

/** Every virtual key starts with it, so people and secret scanners recognise one. */
export const SECRET_PREFIX = 'sk-sluice-';
/** The prefix plus this many characters of the secret are shown in lists, never more. */
const VISIBLE_CHARS = 4;

export interface NewSecret {
  /** Shown once, to whoever created or rotated the key. */
  secret: string;
  /** What the store keeps instead: SHA-256, hex. */
  digest: string;
  prefix: string;
}

/** A fresh secret: 192 random bits, base64url, after the recognisable prefix. */
export function newSecret(): NewSecret {
  const secret = `${SECRET_PREFIX}${randomBytes(24).toString('base64url')}`;
  return {
    secret,
    digest: secretDigest(secret),
    prefix: secret.slice(0, SECRET_PREFIX.length + VISIBLE_CHARS),
  };
}

export function secretDigest(secret: string): string {
  return hash('sha256', secret, 'hex');
}

export type KeyStatus = 'active' | 'expired' | 'revoked';

export function keyStatus(key: Pick<KeyRecord, 'revokedAt' | 'expiresAt'>, now: number): KeyStatus {
  if (key.revokedAt !== null) return 'revoked';
  if (key.expiresAt !== null && key.expiresAt <= now) return 'expired';
  return 'active';
}
