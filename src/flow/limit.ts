/**
 * One observation of a finished request, fed to a limit algorithm. The gateway decides what
 * `latencyMs` means for LLM traffic (see docs/flow-control.md): it is never a raw total, which
 * grows with output length, but a signal that grows with congestion.
 */
export interface LimitSample {
  /** The latency signal in milliseconds; meaningless when `dropped`. */
  latencyMs: number;
  /** Requests in flight when this one started (itself included). */
  inflight: number;
  /**
   * Demand exceeds the limit as this request finishes: others are waiting for a permit. Only then
   * would a higher limit be used; a limit that grew on other samples would drift up to what the
   * clients never ask for, or past a burst that is already served (TCP's "cwnd-limited").
   */
  atLimit: boolean;
  /**
   * The request failed in a way that signals congestion: timeout, 429, 529, 503, Retry-After,
   * rate-limit headers at zero. A dropped sample never counts as a latency sample.
   */
  dropped: boolean;
  /** Clock time (ms) when the request finished. */
  at: number;
}

/** A concurrency limit algorithm: it only learns from samples and says the current limit. */
export interface LimitAlgorithm {
  readonly name: string;
  /** The current limit: how many requests may be in flight at once. Always >= 1. */
  readonly limit: number;
  /** Learns from one finished request; returns the new limit. */
  update(sample: LimitSample): number;
}
