import type { RateKind, RateQuota } from '../policy/rate-limiter.js';

/**
 * OpenAI's rate-limit headers, so clients that read them (and their SDKs) work unchanged:
 * x-ratelimit-limit-requests, x-ratelimit-remaining-requests, x-ratelimit-reset-requests, and
 * the same for tokens. The reset is the time until the bucket is full again.
 */
export function rateLimitHeaders(quotas: Partial<Record<RateKind, RateQuota>>): Record<string, string> {
  return addRateLimitHeaders({}, quotas);
}

/**
 * rateLimitHeaders written into `headers` (a response's other headers), which it returns: an
 * answer's headers are made once, with no object of their own to copy over.
 */
export function addRateLimitHeaders(
  headers: Record<string, string>,
  quotas: Partial<Record<RateKind, RateQuota>>,
): Record<string, string> {
  const { requests, tokens } = quotas;
  if (requests) {
    headers['x-ratelimit-limit-requests'] = String(requests.limit);
    headers['x-ratelimit-remaining-requests'] = String(requests.remaining);
    headers['x-ratelimit-reset-requests'] = resetDuration(requests.resetMs);
  }
  if (tokens) {
    headers['x-ratelimit-limit-tokens'] = String(tokens.limit);
    headers['x-ratelimit-remaining-tokens'] = String(tokens.remaining);
    headers['x-ratelimit-reset-tokens'] = resetDuration(tokens.resetMs);
  }
  return headers;
}

/** A duration the way OpenAI writes it (Go's format): "20ms", "1.5s", "6m0s", "1h2m3s". */
export function resetDuration(ms: number): string {
  if (ms <= 0) return '0s';
  if (ms < 1000) return `${Math.ceil(ms)}ms`;
  const totalMs = Math.ceil(ms);
  const hours = Math.floor(totalMs / 3_600_000);
  const minutes = Math.floor((totalMs % 3_600_000) / 60_000);
  const seconds = Number(((totalMs % 60_000) / 1000).toFixed(3));
  if (hours > 0) return `${hours}h${minutes}m${seconds}s`;
  if (minutes > 0) return `${minutes}m${seconds}s`;
  return `${seconds}s`;
}
