/**
 * Exponential backoff with full jitter: a delay drawn uniformly from
 * [0, min(maxDelayMs, baseDelayMs · 2^retry)], which spreads retries of many clients apart
 * instead of synchronising them. A provider's Retry-After is a floor, not a suggestion.
 */
export function backoffDelay(
  retry: number,
  policy: { baseDelayMs: number; maxDelayMs: number },
  retryAfterMs: number | undefined,
  random: () => number = Math.random,
): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** retry);
  const jittered = Math.floor(random() * ceiling);
  return retryAfterMs === undefined ? jittered : Math.max(retryAfterMs, jittered);
}
