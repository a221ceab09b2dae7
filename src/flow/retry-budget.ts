import type { Clock } from '../time/clock.js';

export interface RetryBudgetOptions {
  /** Tokens each first attempt deposits: the share of traffic that may be extra attempts. */
  ratio?: number;
  /** Extra attempts allowed each second whatever the deposits, so quiet routes can still retry. */
  minPerSecond?: number;
  /** How long a deposit stays usable (ms). */
  ttlMs?: number;
}

export interface RetryBudgetSnapshot {
  /** Extra attempts that would be allowed right now (deposits, plus this second's floor). */
  balance: number;
  withdrawn: number;
  refused: number;
}

/** Token units per token: integers, so that ten deposits of 0.1 make exactly one token. */
const unit = 1_000_000;
/** Deposits are kept in this many slices of ttl; a slice expires whole. */
const slices = 10;

/**
 * A retry budget (Finagle): retries, hedges and fallbacks spend tokens that first attempts earn,
 * so when an upstream fails completely the extra load it receives is bounded:
 * withdrawals ≤ ratio × deposits + minPerSecond × seconds.
 */
export class RetryBudget {
  private readonly depositUnits: number;
  private readonly minPerSecond: number;
  private readonly sliceMs: number;
  /** Unspent deposit units per slice, indexed by slice number modulo `slices`. */
  private readonly units: number[] = new Array<number>(slices).fill(0);
  private readonly sliceOf: number[] = new Array<number>(slices).fill(Number.NEGATIVE_INFINITY);
  private readonly startedAt: number;
  private floorSecond = 0;
  private floorUsed = 0;
  private withdrawn = 0;
  private refused = 0;

  constructor(
    options: RetryBudgetOptions,
    private readonly clock: Clock,
  ) {
    this.depositUnits = Math.round((options.ratio ?? 0.1) * unit);
    this.minPerSecond = options.minPerSecond ?? 5;
    this.sliceMs = (options.ttlMs ?? 10_000) / slices;
    this.startedAt = clock.now();
  }

  /** A first attempt: earns `ratio` tokens, usable for the next ttl. */
  deposit(): void {
    const slice = Math.floor(this.clock.now() / this.sliceMs);
    const i = index(slice);
    if (this.sliceOf[i] !== slice) {
      this.sliceOf[i] = slice;
      this.units[i] = 0;
    }
    this.units[i]! += this.depositUnits;
  }

  /** Asks for one extra attempt (retry, hedge, fallback); false means do not send it. */
  tryWithdraw(): boolean {
    const now = this.clock.now();
    // The per-second floor first: what it does not give this second is lost anyway.
    if (this.floorLeft(now) >= 1) {
      this.floorUsed++;
      this.withdrawn++;
      return true;
    }
    const current = Math.floor(now / this.sliceMs);
    if (this.liveUnits(current) < unit) {
      this.refused++;
      return false;
    }
    // Spend the oldest deposits first: they expire soonest.
    let owed = unit;
    for (let slice = current - slices + 1; owed > 0; slice++) {
      const i = index(slice);
      if (this.sliceOf[i] !== slice) continue;
      const taken = Math.min(owed, this.units[i]!);
      this.units[i]! -= taken;
      owed -= taken;
    }
    this.withdrawn++;
    return true;
  }

  snapshot(): RetryBudgetSnapshot {
    const now = this.clock.now();
    const balance = this.liveUnits(Math.floor(now / this.sliceMs)) / unit + this.floorLeft(now);
    return { balance, withdrawn: this.withdrawn, refused: this.refused };
  }

  private liveUnits(current: number): number {
    let total = 0;
    for (let slice = current - slices + 1; slice <= current; slice++) {
      const i = index(slice);
      if (this.sliceOf[i] === slice) total += this.units[i]!;
    }
    return total;
  }

  /**
   * Floor withdrawals left in the current second since the budget was made. Second k allows
   * ⌊(k+1)·m⌋ − ⌊k·m⌋, so a fractional rate is honoured and k seconds never allow more than k·m.
   */
  private floorLeft(now: number): number {
    const second = Math.floor((now - this.startedAt) / 1000);
    if (second !== this.floorSecond) {
      this.floorSecond = second;
      this.floorUsed = 0;
    }
    const allowed = Math.floor((second + 1) * this.minPerSecond) - Math.floor(second * this.minPerSecond);
    return allowed - this.floorUsed;
  }
}

function index(slice: number): number {
  return ((slice % slices) + slices) % slices;
}
