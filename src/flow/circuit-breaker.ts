import type { Clock } from '../time/clock.js';

export type BreakerState = 'closed' | 'open' | 'half-open';

export interface CircuitBreakerOptions {
  /** The rolling window failure rates are measured over (ms). */
  windowMs?: number;
  /** Outcomes the window must hold before it may open the breaker. */
  minRequests?: number;
  /** Failure share (0..1) at or above which the breaker opens. */
  failureRate?: number;
  /** How long the breaker stays open the first time (ms); doubled each time a probe fails. */
  openMs?: number;
  /** The most the open time grows to (ms). */
  maxOpenMs?: number;
  /** Concurrent probes allowed while half-open, and the successes needed to close. */
  halfOpenProbes?: number;
  onStateChange?: (state: BreakerState, previous: BreakerState) => void;
}

/** The window is kept in this many buckets; a bucket expires whole. */
const buckets = 10;

/**
 * Stops sending to a target that fails most requests, then lets a few probes through to find
 * out when it has recovered. The open → half-open move happens when the breaker is next
 * asked (`allow()` or `state`), so it needs no timer.
 */
export class CircuitBreaker {
  private readonly bucketMs: number;
  private readonly minRequests: number;
  private readonly failureRate: number;
  private readonly baseOpenMs: number;
  private readonly maxOpenMs: number;
  private readonly halfOpenProbes: number;
  private readonly onStateChange: CircuitBreakerOptions['onStateChange'];
  private readonly successes: number[] = new Array<number>(buckets).fill(0);
  private readonly failures: number[] = new Array<number>(buckets).fill(0);
  private readonly bucketOf: number[] = new Array<number>(buckets).fill(Number.NEGATIVE_INFINITY);
  private current: BreakerState = 'closed';
  private openedAt = 0;
  private openMs: number;
  private probes = 0;
  private probeSuccesses = 0;

  constructor(
    options: CircuitBreakerOptions,
    private readonly clock: Clock,
  ) {
    this.bucketMs = (options.windowMs ?? 10_000) / buckets;
    this.minRequests = options.minRequests ?? 20;
    this.failureRate = options.failureRate ?? 0.5;
    this.baseOpenMs = options.openMs ?? 5_000;
    this.maxOpenMs = Math.max(this.baseOpenMs, options.maxOpenMs ?? 60_000);
    this.halfOpenProbes = options.halfOpenProbes ?? 3;
    this.onStateChange = options.onStateChange;
    this.openMs = this.baseOpenMs;
  }

  get state(): BreakerState {
    return this.refresh();
  }

  /** May a request be sent now? Every `true` must be followed by `record()` or `release()`. */
  allow(): boolean {
    switch (this.refresh()) {
      case 'closed':
        return true;
      case 'open':
        return false;
      case 'half-open':
        if (this.probes >= this.halfOpenProbes) return false;
        this.probes++;
        return true;
    }
  }

  /** The outcome of an allowed request. */
  record(success: boolean): void {
    switch (this.refresh()) {
      case 'closed':
        this.count(success);
        if (this.failing()) this.open(this.baseOpenMs);
        return;
      case 'open':
        // A request allowed before the breaker opened: it says nothing new.
        return;
      case 'half-open':
        this.probes = Math.max(0, this.probes - 1);
        if (!success) {
          this.open(Math.min(this.maxOpenMs, this.openMs * 2));
        } else if (++this.probeSuccesses >= this.halfOpenProbes) {
          this.close();
        }
        return;
    }
  }

  /** An allowed request ended without an outcome (cancelled, client error): frees its probe slot. */
  release(): void {
    if (this.refresh() === 'half-open') this.probes = Math.max(0, this.probes - 1);
  }

  private refresh(): BreakerState {
    if (this.current === 'open' && this.clock.now() - this.openedAt >= this.openMs) {
      this.probes = 0;
      this.probeSuccesses = 0;
      this.move('half-open');
    }
    return this.current;
  }

  private open(openMs: number) {
    this.openMs = openMs;
    this.openedAt = this.clock.now();
    this.move('open');
  }

  private close() {
    this.openMs = this.baseOpenMs;
    this.successes.fill(0);
    this.failures.fill(0);
    this.move('closed');
  }

  private move(state: BreakerState) {
    const previous = this.current;
    this.current = state;
    this.onStateChange?.(state, previous);
  }

  private count(success: boolean) {
    const bucket = Math.floor(this.clock.now() / this.bucketMs);
    const i = ((bucket % buckets) + buckets) % buckets;
    if (this.bucketOf[i] !== bucket) {
      this.bucketOf[i] = bucket;
      this.successes[i] = 0;
      this.failures[i] = 0;
    }
    if (success) this.successes[i]!++;
    else this.failures[i]!++;
  }

  private failing(): boolean {
    const bucket = Math.floor(this.clock.now() / this.bucketMs);
    let ok = 0;
    let failed = 0;
    for (let b = bucket - buckets + 1; b <= bucket; b++) {
      const i = ((b % buckets) + buckets) % buckets;
      if (this.bucketOf[i] !== b) continue;
      ok += this.successes[i]!;
      failed += this.failures[i]!;
    }
    const total = ok + failed;
    return total >= this.minRequests && failed >= this.failureRate * total;
  }
}
