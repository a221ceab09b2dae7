import { type GcraStep, gcraAdjust, gcraAfter, gcraRemaining, gcraTake } from './gcra.js';
import type {
  Balance,
  BucketState,
  BucketTake,
  CounterCharge,
  CounterHold,
  Reserved,
  Settled,
  SharedState,
  Taken,
} from './shared-state.js';

interface Counter {
  /** Its key in the counters map. */
  readonly name: string;
  /** False once it left the map (expired): a hold that still points at it must look its name up again. */
  live: boolean;
  spent: number;
  /** The sum of the live holds' amounts on this counter. */
  reserved: number;
  expiresAt: number | null;
}

/** One request's hold: the counters it holds room on, the amount on each, and when it lapses. */
interface Hold {
  counters: Counter[];
  amounts: number[];
  expiresAt: number;
}

interface Bucket {
  tatUs: number;
  expiresAt: number;
}

/** Settled spend of every counter, as written to disk and read back (spend-file.ts). */
export interface SpendSnapshot {
  [counter: string]: { spent: number; expiresAt: number | null };
}

/** Every reservation that fits gets this one answer: nothing to allocate. */
const held: Reserved = Object.freeze({ ok: true });

// Expired counters and buckets are swept every this many operations: no timer to manage.
const sweepEvery = 1024;

/**
 * SharedState for one node. JavaScript runs one operation at a time, so every method is atomic
 * as written, and answers at once: no promise for the request path to wait a round for.
 */
export class MemoryState implements SharedState {
  private readonly counters = new Map<string, Counter>();
  /**
   * Every live hold by id, in one map rather than one per counter: a request sets and deletes
   * one entry, however many budgets it holds room on.
   */
  private readonly holds = new Map<string, Hold>();
  /** No hold lapses before this (the earliest expiry, or earlier): until then nothing needs to look for lapsed holds. */
  private holdsLapseFrom = Number.POSITIVE_INFINITY;
  private readonly buckets = new Map<string, Bucket>();
  private operations = 0;
  /** Bumped on every change of settled spend, so a writer knows when to save. */
  version = 0;

  reserve(hold: string, counters: readonly CounterHold[], holdExpiresAt: number, now: number): Reserved {
    this.tick(now);
    if (now >= this.holdsLapseFrom) this.dropLapsed(now);
    // Each counter is looked up once: checked all first, then held (all or none).
    const found: (Counter | undefined)[] = new Array(counters.length);
    for (let i = 0; i < counters.length; i++) {
      const { counter, amount, limit } = counters[i] as CounterHold;
      const c = this.counter(counter, now);
      if (c === undefined) {
        if (amount > limit) return { ok: false, refused: i, balance: { spent: 0, reserved: 0 } };
      } else if (c.spent + c.reserved + amount > limit) {
        return { ok: false, refused: i, balance: { spent: c.spent, reserved: c.reserved } };
      }
      found[i] = c;
    }
    const amounts: number[] = new Array(counters.length);
    for (let i = 0; i < counters.length; i++) {
      const { counter, amount, expiresAt } = counters[i] as CounterHold;
      const c = found[i] ?? this.create(counter, expiresAt);
      found[i] = c;
      c.reserved += amount;
      amounts[i] = amount;
    }
    // The same id again replaces its hold, rather than leaving the first one's room held for good.
    this.drop(hold);
    // Every entry of `found` is a counter now.
    this.holds.set(hold, { counters: found as Counter[], amounts, expiresAt: holdExpiresAt });
    if (holdExpiresAt < this.holdsLapseFrom) this.holdsLapseFrom = holdExpiresAt;
    return held;
  }

  settle(hold: string, charges: readonly CounterCharge[], now: number): Settled[] {
    this.tick(now);
    const h = this.holds.get(hold);
    if (h !== undefined) {
      this.holds.delete(hold);
      free(h);
    }
    const settled: Settled[] = new Array(charges.length);
    for (let i = 0; i < charges.length; i++) {
      const { counter, amount, expiresAt } = charges[i] as CounterCharge;
      // A settlement charges the counters its hold was on, in the same order: no lookup by name then.
      const held = h?.counters[i];
      const c =
        held?.live && held.name === counter && (held.expiresAt === null || held.expiresAt > now)
          ? held
          : (this.counter(counter, now) ?? this.create(counter, expiresAt));
      settled[i] = { before: c.spent, after: c.spent + amount };
      c.spent += amount;
    }
    this.version++;
    return settled;
  }

  /** Ends the hold on all its counters (a request releases every counter it held). */
  release(hold: string, _counters: readonly string[], now: number): void {
    this.tick(now);
    this.drop(hold);
  }

  balances(counters: readonly string[], now: number): Balance[] {
    if (now >= this.holdsLapseFrom) this.dropLapsed(now);
    return counters.map((counter) => {
      const c = this.counter(counter, now);
      return { spent: c?.spent ?? 0, reserved: c?.reserved ?? 0 };
    });
  }

  take(takes: readonly BucketTake[], now: number): Taken {
    this.tick(now);
    const nowUs = Math.round(now * 1000);
    // Arrays of their final size: grown by push, each would get a backing store of 16 or more.
    // The usual answer, every take fits, needs only each bucket's new TAT.
    // Each bucket is looked up once: its entry (live or not) is kept to store the new TAT in.
    const tats: number[] = new Array(takes.length);
    const entries: (Bucket | undefined)[] = new Array(takes.length);
    for (let i = 0; i < takes.length; i++) {
      const t = takes[i] as BucketTake;
      const b = this.buckets.get(t.bucket);
      const live = b !== undefined && b.expiresAt > now ? b.tatUs : undefined;
      const tat = gcraAfter(live, nowUs, t.limit, t.periodMs * 1000, t.amount);
      if (tat === -1) return this.refuse(takes, i, now, nowUs);
      tats[i] = tat;
      entries[i] = b;
    }
    const buckets: BucketState[] = new Array(takes.length);
    for (let i = 0; i < takes.length; i++) {
      const t = takes[i] as BucketTake;
      const tat = tats[i] as number;
      const periodUs = t.periodMs * 1000;
      this.store(t.bucket, tat, nowUs, entries[i]);
      buckets[i] = {
        remaining: gcraRemaining(tat - nowUs, t.limit, periodUs),
        resetMs: (tat - nowUs) / 1000,
      };
    }
    return { ok: true, buckets };
  }

  /** Take `refused` does not fit: nothing is taken, and every bucket reports what it holds now. */
  private refuse(takes: readonly BucketTake[], refused: number, now: number, nowUs: number): Taken {
    const t = takes[refused] as BucketTake;
    const step = gcraTake(this.tat(t.bucket, now), nowUs, t.limit, t.periodMs * 1000, t.amount);
    const buckets = takes.map((t) =>
      bucketState(gcraTake(this.tat(t.bucket, now), nowUs, t.limit, t.periodMs * 1000, 0)),
    );
    return { ok: false, refused, retryAfterMs: step.retryAfterUs / 1000, buckets };
  }

  adjust(takes: readonly BucketTake[], now: number): void {
    this.tick(now);
    const nowUs = Math.round(now * 1000);
    for (const t of takes) {
      const b = this.buckets.get(t.bucket);
      const tat = b !== undefined && b.expiresAt > now ? b.tatUs : undefined;
      if (tat === undefined && t.amount <= 0) continue;
      this.store(t.bucket, gcraAdjust(tat, nowUs, t.limit, t.periodMs * 1000, t.amount), nowUs, b);
    }
  }

  async close(): Promise<void> {}

  /** Settled spend of every live counter; holds are not kept (their requests die with the process). */
  snapshot(now: number): SpendSnapshot {
    const out: SpendSnapshot = {};
    for (const [name, c] of this.counters) {
      if (c.expiresAt !== null && c.expiresAt <= now) continue;
      if (c.spent > 0) out[name] = { spent: c.spent, expiresAt: c.expiresAt };
    }
    return out;
  }

  /** Takes settled spend from a snapshot; counters whose period is over are skipped. */
  restore(snapshot: SpendSnapshot, now: number): void {
    for (const [name, { spent, expiresAt }] of Object.entries(snapshot)) {
      if (expiresAt !== null && expiresAt <= now) continue;
      const c = this.counter(name, now) ?? this.create(name, expiresAt);
      c.spent = spent;
    }
  }

  /** A live counter; undefined when absent or expired. */
  private counter(name: string, now: number): Counter | undefined {
    const c = this.counters.get(name);
    if (!c) return undefined;
    if (c.expiresAt !== null && c.expiresAt <= now) {
      this.counters.delete(name);
      c.live = false;
      return undefined;
    }
    return c;
  }

  /**
   * Drops the holds that lapsed by `now`, so their room counts as free again. Holds lapse only
   * when a request outlived its hold (a node that crashed), so this runs about once per hold TTL:
   * a pass over the holds in flight, which also learns when the next one lapses.
   */
  private dropLapsed(now: number): void {
    let next = Number.POSITIVE_INFINITY;
    for (const [id, h] of this.holds) {
      if (h.expiresAt > now) {
        if (h.expiresAt < next) next = h.expiresAt;
        continue;
      }
      this.holds.delete(id);
      free(h);
    }
    this.holdsLapseFrom = next;
  }

  private create(name: string, expiresAt: number | null): Counter {
    const c: Counter = { name, live: true, spent: 0, reserved: 0, expiresAt };
    this.counters.set(name, c);
    return c;
  }

  private drop(hold: string): void {
    const h = this.holds.get(hold);
    if (h === undefined) return;
    this.holds.delete(hold);
    free(h);
  }

  private tat(bucket: string, now: number): number | undefined {
    const b = this.buckets.get(bucket);
    return b && b.expiresAt > now ? b.tatUs : undefined;
  }

  /**
   * Stores a bucket's TAT. `entry`: its map entry as the caller found it in this same operation
   * (undefined: none then), which spares a second lookup. A bucket taken twice in one operation
   * is looked up again, so the second take updates the entry the first one made.
   */
  private store(bucket: string, tatUs: number, nowUs: number, entry?: Bucket): void {
    // Once the TAT is past, the bucket is full: the same as no entry at all.
    const expiresAt = Math.ceil(Math.max(tatUs, nowUs) / 1000) + 1000;
    const b = entry ?? this.buckets.get(bucket);
    if (b === undefined) this.buckets.set(bucket, { tatUs, expiresAt });
    else {
      b.tatUs = tatUs;
      b.expiresAt = expiresAt;
    }
  }

  private tick(now: number): void {
    if (++this.operations % sweepEvery !== 0) return;
    for (const [name, c] of this.counters)
      if (c.expiresAt !== null && c.expiresAt <= now) {
        this.counters.delete(name);
        c.live = false;
      }
    for (const [name, b] of this.buckets) if (b.expiresAt <= now) this.buckets.delete(name);
  }
}

/** Gives a hold's room back to its counters (a counter expired meanwhile is simply forgotten). */
function free(h: Hold): void {
  for (let i = 0; i < h.counters.length; i++) (h.counters[i] as Counter).reserved -= h.amounts[i] as number;
}

function bucketState(step: GcraStep): BucketState {
  return { remaining: step.remaining, resetMs: step.resetUs / 1000 };
}
