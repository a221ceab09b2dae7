/**
 * The generic cell rate algorithm: a rate-limit bucket is one number, its theoretical arrival
 * time (TAT), the moment it would be full again. Taking n units moves the TAT n emission
 * intervals (period / limit) later; a take is refused when that would put the TAT more than one
 * period ahead of now. It behaves like a token bucket of `limit` units refilled continuously
 * over `period`, with no timer and one value to store, so Redis can run it in a short script.
 *
 * Times are integer microseconds and intervals are rounded up per take, so this code and the
 * Lua copy in redis-state.ts compute the very same numbers.
 */
export interface GcraStep {
  allowed: boolean;
  /** The TAT to store (unchanged when refused). */
  tat: number;
  /** Units that could still be taken now. */
  remaining: number;
  /** Microseconds until the bucket is full. */
  resetUs: number;
  /** Microseconds until the take would fit; 0 when allowed. */
  retryAfterUs: number;
}

/** Microseconds that `amount` units occupy in a bucket of `limit` per `periodUs`. */
export function gcraCost(amount: number, limit: number, periodUs: number): number {
  return Math.ceil((amount * periodUs) / limit);
}

/**
 * The TAT after taking `amount`, or -1 when the take does not fit (then nothing may be taken):
 * gcraTake's decision alone, for callers that need no more than the new TAT.
 */
export function gcraAfter(
  tat: number | undefined,
  nowUs: number,
  limit: number,
  periodUs: number,
  amount: number,
): number {
  const base = tat === undefined || tat < nowUs ? nowUs : tat;
  const next = base + gcraCost(amount, limit, periodUs);
  return next - nowUs > periodUs ? -1 : next;
}

export function gcraTake(
  tat: number | undefined,
  nowUs: number,
  limit: number,
  periodUs: number,
  amount: number,
): GcraStep {
  const base = tat === undefined || tat < nowUs ? nowUs : tat;
  const next = base + gcraCost(amount, limit, periodUs);
  if (next - nowUs > periodUs) {
    return {
      allowed: false,
      tat: base,
      remaining: gcraRemaining(base - nowUs, limit, periodUs),
      resetUs: base - nowUs,
      retryAfterUs: next - periodUs - nowUs,
    };
  }
  return {
    allowed: true,
    tat: next,
    remaining: gcraRemaining(next - nowUs, limit, periodUs),
    resetUs: next - nowUs,
    retryAfterUs: 0,
  };
}

/** The TAT after charging (amount > 0) or giving back (amount < 0) units without refusing. */
export function gcraAdjust(
  tat: number | undefined,
  nowUs: number,
  limit: number,
  periodUs: number,
  amount: number,
): number {
  const base = tat === undefined || tat < nowUs ? nowUs : tat;
  if (amount >= 0) return base + gcraCost(amount, limit, periodUs);
  // Give back rounded down, so rounding never hands out more than was taken.
  const back = Math.floor((-amount * periodUs) / limit);
  return Math.max(nowUs, base - back);
}

export function gcraRemaining(usedUs: number, limit: number, periodUs: number): number {
  return Math.max(0, Math.floor(((periodUs - usedUs) * limit) / periodUs));
}
