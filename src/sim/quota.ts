/** One per-minute allowance, refilled continuously, as providers meter requests and tokens. */
export interface Allowance {
  limit: number;
  remaining: number;
  /** Until the allowance is full again. */
  resetMs: number;
}

export interface QuotaState {
  requests?: Allowance;
  tokens?: Allowance;
}

export type QuotaDecision =
  | { allowed: true; state: QuotaState }
  | { allowed: false; state: QuotaState; retryAfterMs: number; exhausted: 'requests' | 'tokens' };

class Bucket {
  private level: number;
  private updatedAt: number;

  constructor(
    readonly limit: number,
    now: number,
  ) {
    this.level = limit;
    this.updatedAt = now;
  }

  private refill(now: number): void {
    this.level = Math.min(this.limit, this.level + ((now - this.updatedAt) * this.limit) / 60_000);
    this.updatedAt = now;
  }

  /** Milliseconds until `amount` is available (0 when it is now). */
  waitFor(amount: number, now: number): number {
    this.refill(now);
    const need = Math.min(amount, this.limit) - this.level;
    return need <= 0 ? 0 : Math.ceil((need * 60_000) / this.limit);
  }

  take(amount: number): void {
    this.level -= amount;
  }

  allowance(now: number): Allowance {
    this.refill(now);
    const remaining = Math.max(0, Math.floor(this.level));
    return {
      limit: this.limit,
      remaining,
      resetMs: Math.ceil(((this.limit - this.level) * 60_000) / this.limit),
    };
  }
}

/** Requests-per-minute and tokens-per-minute quotas of one model, like a provider's organisation limits. */
export class Quota {
  private readonly requests?: Bucket;
  private readonly tokens?: Bucket;

  constructor(limits: { requestsPerMinute?: number; tokensPerMinute?: number }, now: number) {
    if (limits.requestsPerMinute) this.requests = new Bucket(limits.requestsPerMinute, now);
    if (limits.tokensPerMinute) this.tokens = new Bucket(limits.tokensPerMinute, now);
  }

  /** Takes one request and `tokens` (prompt plus requested output) if both are available. */
  take(tokens: number, now: number): QuotaDecision {
    const requestWait = this.requests?.waitFor(1, now) ?? 0;
    const tokenWait = this.tokens?.waitFor(tokens, now) ?? 0;
    if (requestWait > 0 || tokenWait > 0) {
      const exhausted = requestWait >= tokenWait ? 'requests' : 'tokens';
      return {
        allowed: false,
        state: this.state(now),
        retryAfterMs: Math.max(requestWait, tokenWait),
        exhausted,
      };
    }
    this.requests?.take(1);
    this.tokens?.take(tokens);
    return { allowed: true, state: this.state(now) };
  }

  private state(now: number): QuotaState {
    const state: QuotaState = {};
    if (this.requests) state.requests = this.requests.allowance(now);
    if (this.tokens) state.tokens = this.tokens.allowance(now);
    return state;
  }
}

/** "6m0s", "1.5s", "20ms": the duration style of OpenAI's x-ratelimit-reset-* headers. */
export function formatResetDuration(ms: number): string {
  if (ms < 1000) return `${Math.max(0, Math.round(ms))}ms`;
  const totalSeconds = ms / 1000;
  const minutes = Math.floor(totalSeconds / 60);
  const seconds = totalSeconds - minutes * 60;
  const secondsText = `${Number.isInteger(seconds) ? seconds : Number(seconds.toFixed(3))}s`;
  return minutes > 0 ? `${minutes}m${secondsText}` : secondsText;
}
