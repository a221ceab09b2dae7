/**
 * Counters that every gateway node must agree on: budget spend and rate-limit buckets
 * (ARCHITECTURE.md). One node keeps them in memory; a cluster keeps them in Redis. Both
 * implementations pass one contract suite (test/support/shared-state-contract.ts).
 *
 * Amounts are integers (tokens, nano-dollars): sums stay exact in doubles up to 2^53 and in
 * Redis's 64-bit counters. Times are epoch milliseconds, passed in by the caller so that every
 * node, and every test, decides with the clock it was handed.
 *
 * Each operation answers with a value or a promise of it (`Maybe`): the memory state answers at
 * once, so a single node's admission and settlement take no promise round at all; Redis answers
 * after its round trip. A memory operation that throws, throws at once.
 */
export interface SharedState {
  /**
   * Holds `amount` on every counter, all or none: refused when one counter's settled spend plus
   * its live holds plus this amount would pass its limit. The hold lapses at `holdExpiresAt`
   * unless settled or released first (a node that crashed mid-request never settles).
   */
  reserve(
    hold: string,
    counters: readonly CounterHold[],
    holdExpiresAt: number,
    now: number,
  ): Maybe<Reserved>;
  /**
   * Ends a hold with what was actually spent: the held amounts are dropped and `amount` is added
   * to each counter's spend (also when the hold had lapsed: the spend happened).
   */
  settle(hold: string, charges: readonly CounterCharge[], now: number): Maybe<Settled[]>;
  /** Ends a hold with nothing spent. */
  release(hold: string, counters: readonly string[], now: number): Maybe<void>;
  /** Spend and live holds of each counter; a counter never touched reads as zero. */
  balances(counters: readonly string[], now: number): Maybe<Balance[]>;
  /**
   * Takes `amount` from every rate-limit bucket, all or none (GCRA, src/state/gcra.ts).
   * Refused when one bucket has not refilled enough; nothing is taken then.
   */
  take(takes: readonly BucketTake[], now: number): Maybe<Taken>;
  /**
   * Charges (amount > 0) or gives back (amount < 0) bucket units without refusing: a request's
   * actual tokens correct what `take` reserved.
   */
  adjust(takes: readonly BucketTake[], now: number): Maybe<void>;
  close(): Promise<void>;
}

/** A value now, or a promise of it later. */
export type Maybe<T> = T | Promise<T>;

/** `next` of the value: called at once when there is one, once it resolves when it is a promise. */
export function andThen<T, U>(value: Maybe<T>, next: (value: T) => Maybe<U>): Maybe<U> {
  return value instanceof Promise ? value.then(next) : next(value);
}

export interface CounterHold {
  /** The counter's name, e.g. "spend:key:web-app:usd:month:2026-03". */
  counter: string;
  amount: number;
  /** The most settled spend plus live holds may reach. */
  limit: number;
  /** When the counter may be forgotten (its period is over); null: never. */
  expiresAt: number | null;
}

export interface CounterCharge {
  counter: string;
  amount: number;
  expiresAt: number | null;
}

export interface Balance {
  spent: number;
  /** Held by requests in flight. */
  reserved: number;
}

/** A counter's settled spend before and after one settlement: a soft limit crossed in between fires once. */
export interface Settled {
  before: number;
  after: number;
}

export type Reserved =
  | { ok: true }
  /** `refused`: index of the first counter that would pass its limit, and its balance. */
  | { ok: false; refused: number; balance: Balance };

export interface BucketTake {
  bucket: string;
  /** Units per period, which is also the burst a full bucket allows. */
  limit: number;
  periodMs: number;
  amount: number;
}

export interface BucketState {
  /** Units that could be taken right now. */
  remaining: number;
  /** Until the bucket is full again. */
  resetMs: number;
}

export type Taken =
  | { ok: true; buckets: BucketState[] }
  /** `refused`: index of the first bucket without room; `retryAfterMs`: until it has room. */
  | { ok: false; refused: number; retryAfterMs: number; buckets: BucketState[] };
