import type { Clock, Timer } from '../time/clock.js';
import type { CancelSignal } from './cancel.js';
import type { LimitAlgorithm } from './limit.js';
import { type Priority, priorities, priorityRank } from './priority.js';

/**
 * The right to send one request to a target. Exactly one of the three verbs ends it (later
 * calls do nothing); each frees the slot and lets the next waiter in.
 */
export interface Permit {
  readonly priority: Priority;
  /** How long the request waited in the queue; 0 when admitted at once. */
  readonly queuedMs: number;
  /** The request succeeded; `latencyMs` is the congestion signal the algorithm learns from. */
  success(latencyMs: number): void;
  /** The request failed from congestion (timeout, 429, 529): the algorithm learns a drop. */
  dropped(): void;
  /** The outcome says nothing about congestion (client error, cancelled): no sample. */
  ignore(): void;
}

export interface AcquireRequest {
  priority: Priority;
  /** Clock time (ms) by which the request must have started; `Infinity` for none. */
  deadlineAt: number;
  /** Aborts when the client goes away: a queued request then leaves the queue. */
  signal?: CancelSignal;
}

export type ShedReason = 'queue_full' | 'queue_delay' | 'deadline' | 'cancelled';

/** A request the limiter refused or gave up on; `status` is the HTTP status it maps to. */
export class ShedError extends Error {
  readonly code: 'overloaded' | 'client_closed_request';
  readonly status: 503 | 499;

  constructor(
    readonly reason: ShedReason,
    readonly priority: Priority,
    /** How long the caller should wait before trying again (ms); the HTTP layer rounds it for `Retry-After`. */
    readonly retryAfterMs: number,
    message: string,
  ) {
    super(message);
    this.name = 'ShedError';
    this.code = reason === 'cancelled' ? 'client_closed_request' : 'overloaded';
    this.status = reason === 'cancelled' ? 499 : 503;
  }
}

export interface LimiterOptions {
  /** Names the target in messages, e.g. `sim/sim-fast`. */
  target: string;
  algorithm: LimitAlgorithm;
  /** Most requests that may wait at once. */
  maxQueue?: number;
  /**
   * The fraction of `maxQueue` a priority may fill: an arrival finding the queue at least that
   * long is shed (or displaces a lower priority), so low priorities are shed first as it grows.
   */
  queueShare?: Partial<Record<Priority, number>>;
  /** How long a permit is assumed to be held before any has been released (ms). */
  initialHoldMs?: number;
  /**
   * The queue-delay target, as a fraction of the average time a permit is held (CoDel's target,
   * relative to the target's own latency). Once the queue has stood, never empty, for
   * `delayInterval` hold times (and until it has been empty as long), a request of a priority not
   * in `delayExempt` is shed rather than left waiting longer than this. 0 turns it off: only
   * deadlines and the queue's length bound waits.
   */
  delayTarget?: number;
  /** How long (in hold times) the queue must stand before the delay target applies; a burst that drains sooner waits. */
  delayInterval?: number;
  /** Priorities the delay target never sheds: they wait until their deadline. */
  delayExempt?: readonly Priority[];
  /**
   * Floors, in ms, under the delay target and the interval. Relative to a fast target's hold time
   * (an embedding, a cached answer: a few ms) the target would be a fraction of a millisecond and
   * a closed loop of clients slightly larger than the limit would be shed for waits nobody
   * notices; CoDel's own constants (5 ms and 100 ms) are absolute for the same reason.
   */
  delayTargetMinMs?: number;
  delayIntervalMinMs?: number;
}

export const defaultDelay = {
  target: 0.1,
  interval: 0.5,
  exempt: ['critical'],
  targetMinMs: 50,
  intervalMinMs: 100,
} as const;

export const defaultQueueShare: Readonly<Record<Priority, number>> = {
  critical: 1,
  high: 1,
  normal: 0.8,
  low: 0.5,
  batch: 0.25,
};

export interface LimiterSnapshot {
  limit: number;
  inflight: number;
  queued: number;
  queuedByPriority: Record<Priority, number>;
  /** Requests shed for a full queue, a deadline or the queue-delay target; cancellations are counted in `cancelled`. */
  shedByPriority: Record<Priority, number>;
  cancelled: number;
  /** Permits released as dropped. */
  dropped: number;
  admitted: number;
}

interface Waiter {
  priority: Priority;
  rank: number;
  deadlineAt: number;
  enqueuedAt: number;
  resolve(permit: Permit): void;
  reject(error: ShedError): void;
  timer: Timer | undefined;
  signal: CancelSignal | undefined;
  onAbort: (() => void) | undefined;
}

/** Weight of a new observation in the hold-time and release-interval averages. */
const alpha = 0.2;

/**
 * The admission gate in front of one target: a limit algorithm says how many requests may be
 * in flight, and the rest wait in a bounded queue ordered by priority, then earliest deadline.
 * Requests that cannot be served in time are shed at once rather than left to time out, and a
 * queue that stands sheds, lowest priority first, whoever would wait past the delay target.
 */
export class Limiter {
  private readonly target: string;
  private readonly algorithm: LimitAlgorithm;
  private readonly maxQueue: number;
  /** How many waiters a priority may find in the queue and still join it. */
  private readonly caps: Record<Priority, number>;
  /** Sorted by rank, then deadline, then arrival. Short (≤ maxQueue), so a sorted array is enough. */
  private readonly queue: Waiter[] = [];
  private current = 0;
  private admitted = 0;
  private droppedCount = 0;
  private cancelled = 0;
  private readonly queuedByPriority = zeroes();
  private readonly shedByPriority = zeroes();
  /** Average time a permit is held (ms). */
  private holdMs: number;
  /** Average time between releases while requests wait: the reciprocal of admission throughput. */
  private intervalMs: number | undefined;
  private lastReleaseAt = Number.NEGATIVE_INFINITY;
  /** When the queue last became non-empty; undefined while it is empty. */
  private waitingSince: number | undefined;
  /** When the queue last became empty. */
  private emptySince = Number.NEGATIVE_INFINITY;
  /**
   * Since when the queue has been standing: non-empty for a whole interval without draining, and
   * not empty for a whole interval since. Shedding overdue waiters may empty it for a moment; that
   * is no relief.
   */
  private standingSince: number | undefined;
  /** The start of the interval being judged, and the queue's length then (undefined: at the first). */
  private judgedFrom = 0;
  private judgedLength: number | undefined;
  /**
   * Permits handed on since `judgedFrom`. Requests that started together finish together: an
   * interval in which none finished says nothing about whether the queue drains.
   */
  private servedSinceJudged = 0;
  /** Whether any permit has been released: until then `holdMs` is a guess, too weak to shed on. */
  private holdMeasured = false;
  private readonly delayTarget: number;
  private readonly delayInterval: number;
  private readonly delayTargetMinMs: number;
  private readonly delayIntervalMinMs: number;
  private readonly delayExempt: ReadonlySet<Priority>;

  constructor(
    options: LimiterOptions,
    private readonly clock: Clock,
  ) {
    this.target = options.target;
    this.algorithm = options.algorithm;
    this.maxQueue = options.maxQueue ?? 64;
    this.holdMs = options.initialHoldMs ?? 1_000;
    this.delayTarget = options.delayTarget ?? defaultDelay.target;
    this.delayInterval = options.delayInterval ?? defaultDelay.interval;
    this.delayTargetMinMs = options.delayTargetMinMs ?? defaultDelay.targetMinMs;
    this.delayIntervalMinMs = options.delayIntervalMinMs ?? defaultDelay.intervalMinMs;
    this.delayExempt = new Set(options.delayExempt ?? defaultDelay.exempt);
    const share = { ...defaultQueueShare, ...options.queueShare };
    this.caps = zeroes();
    for (const p of priorities) this.caps[p] = Math.floor(Math.min(1, Math.max(0, share[p])) * this.maxQueue);
  }

  get limit(): number {
    return this.algorithm.limit;
  }

  get inflight(): number {
    return this.current;
  }

  acquire({ priority, deadlineAt, signal }: AcquireRequest): Promise<Permit> {
    const now = this.clock.now();
    if (signal?.aborted) return Promise.reject(this.cancelledError(priority));
    if (this.queue.length === 0 && this.current < this.limit) {
      return Promise.resolve(this.grant(priority, now, 0));
    }
    this.shedOverdue(now);

    const rank = priorityRank(priority);
    let displaced: Waiter | undefined;
    if (this.queue.length >= this.caps[priority]) {
      const last = this.queue.at(-1);
      if (!last || last.rank <= rank) return this.refuse(priority, this.queueFullError(priority, now));
      displaced = last;
    }

    const ahead = this.positionFor(rank, deadlineAt);
    const waitMs = (ahead + 1) * this.releaseIntervalMs(now);
    if (now + waitMs > deadlineAt) {
      return this.refuse(priority, this.lateError(priority, waitMs, deadlineAt - now));
    }
    if (waitMs > this.delayBudgetMs(priority, now)) {
      return this.refuse(priority, this.standingError(priority, waitMs, now));
    }
    if (displaced) {
      const error = this.displacedError(displaced.priority, now);
      this.remove(displaced);
      this.shed(displaced, error);
    }

    return new Promise<Permit>((resolve, reject) => {
      const waiter: Waiter = {
        priority,
        rank,
        deadlineAt,
        enqueuedAt: now,
        resolve,
        reject,
        timer: undefined,
        signal,
        onAbort: undefined,
      };
      if (Number.isFinite(deadlineAt)) {
        waiter.timer = this.clock.setTimer(deadlineAt - now, () => this.expire(waiter));
      }
      if (signal) {
        waiter.onAbort = () => this.abandon(waiter);
        signal.addEventListener('abort', waiter.onAbort, { once: true });
      }
      if (this.queue.length === 0) this.filled(now);
      this.queue.splice(ahead, 0, waiter);
      this.queuedByPriority[priority]++;
    });
  }

  snapshot(): LimiterSnapshot {
    return {
      limit: this.limit,
      inflight: this.current,
      queued: this.queue.length,
      queuedByPriority: { ...this.queuedByPriority },
      shedByPriority: { ...this.shedByPriority },
      cancelled: this.cancelled,
      dropped: this.droppedCount,
      admitted: this.admitted,
    };
  }

  private grant(priority: Priority, now: number, queuedMs: number): Permit {
    this.current++;
    this.admitted++;
    const inflight = this.current;
    let settled = false;
    const settle = (kind: 'success' | 'dropped' | 'ignore', latencyMs: number) => {
      if (settled) return;
      settled = true;
      this.release(now, inflight, kind, latencyMs);
    };
    return {
      priority,
      queuedMs,
      success: (latencyMs) => settle('success', latencyMs),
      dropped: () => settle('dropped', 0),
      ignore: () => settle('ignore', 0),
    };
  }

  private release(
    grantedAt: number,
    inflight: number,
    kind: 'success' | 'dropped' | 'ignore',
    latencyMs: number,
  ) {
    const now = this.clock.now();
    this.current--;
    this.holdMs += alpha * (now - grantedAt - this.holdMs);
    this.holdMeasured = true;
    // Only gaps while requests wait measure capacity; otherwise releases follow demand.
    if (this.waitingSince !== undefined) {
      const gap = now - Math.max(this.lastReleaseAt, this.waitingSince);
      const previous = this.intervalMs ?? this.coldIntervalMs();
      this.intervalMs = previous + alpha * (gap - previous);
    }
    this.lastReleaseAt = now;
    if (kind !== 'ignore') {
      const dropped = kind === 'dropped';
      if (dropped) this.droppedCount++;
      this.algorithm.update({
        latencyMs: dropped ? now - grantedAt : latencyMs,
        inflight,
        // Requests wait for a permit as this one finishes: a higher limit would be used now.
        atLimit: this.queue.length > 0,
        dropped,
        at: now,
      });
    }
    this.shedOverdue(now);
    while (this.queue.length > 0 && this.current < this.limit) {
      const waiter = this.queue.shift()!;
      this.detach(waiter);
      waiter.resolve(this.grant(waiter.priority, now, now - waiter.enqueuedAt));
      this.servedSinceJudged++;
    }
    if (this.queue.length === 0) this.emptied(now);
  }

  private filled(now: number) {
    this.standing(now);
    this.waitingSince = now;
    this.judgedFrom = now;
    this.judgedLength = undefined;
    this.servedSinceJudged = 0;
  }

  private emptied(now: number) {
    if (this.waitingSince === undefined) return;
    this.standing(now);
    this.waitingSince = undefined;
    this.emptySince = now;
  }

  /** Whether the queue is standing at `now`, bringing `standingSince` up to date. */
  private standing(now: number): boolean {
    const interval = Math.max(this.delayInterval * this.holdMs, this.delayIntervalMinMs);
    if (this.waitingSince !== undefined) {
      if (
        this.standingSince === undefined &&
        now - this.judgedFrom >= interval &&
        this.servedSinceJudged > 0
      ) {
        // A queue that got shorter over the interval is draining: a burst being served, or a limit
        // catching up with demand (slow start); judge the next interval. One that did not is fed
        // as fast as it drains: overload. The first interval only sets the length to compare with.
        if (this.judgedLength === undefined || this.queue.length < this.judgedLength) {
          this.judgedFrom = now;
          this.judgedLength = this.queue.length;
          this.servedSinceJudged = 0;
        } else {
          this.standingSince = now;
        }
      }
    } else if (now - this.emptySince >= interval) {
      this.standingSince = undefined;
    }
    return this.standingSince !== undefined;
  }

  /** Before any gap has been measured, Little's law at the limit: limit permits per hold time. */
  private coldIntervalMs(): number {
    return this.holdMs / this.limit;
  }

  private releaseIntervalMs(now: number): number {
    const interval = this.intervalMs ?? this.coldIntervalMs();
    // A stalled target shows at once: the gap still open is a lower bound on the next one.
    if (this.waitingSince === undefined) return interval;
    return Math.max(interval, now - Math.max(this.lastReleaseAt, this.waitingSince));
  }

  /**
   * How long a request of this priority may wait now: without limit while the queue absorbs a
   * burst, the delay target once the queue has stood for the interval (CoDel's "standing queue":
   * a queue that never drains is latency added for nothing, however long it is).
   */
  private delayBudgetMs(priority: Priority, now: number): number {
    return this.delayExempt.has(priority) ? Number.POSITIVE_INFINITY : this.standingBudgetMs(now);
  }

  private standingBudgetMs(now: number): number {
    if (this.delayTarget <= 0 || !this.holdMeasured || !this.standing(now)) return Number.POSITIVE_INFINITY;
    return Math.max(this.delayTarget * this.holdMs, this.delayTargetMinMs);
  }

  /** Sheds the waiters that have waited longer than the delay target; lower priorities wait longest, so go first. */
  private shedOverdue(now: number) {
    if (this.waitingSince === undefined) return;
    const budget = this.standingBudgetMs(now);
    if (budget === Number.POSITIVE_INFINITY) return;
    for (let i = this.queue.length - 1; i >= 0; i--) {
      const waiter = this.queue[i]!;
      if (this.delayExempt.has(waiter.priority) || now - waiter.enqueuedAt <= budget) continue;
      this.remove(waiter);
      this.shed(waiter, this.overdueError(waiter, i, budget, now));
      if (this.waitingSince === undefined) return;
    }
  }

  /** Waiters that would be served before a new one of this rank and deadline. */
  private positionFor(rank: number, deadlineAt: number): number {
    let low = 0;
    let high = this.queue.length;
    while (low < high) {
      const mid = (low + high) >>> 1;
      const w = this.queue[mid]!;
      if (w.rank < rank || (w.rank === rank && w.deadlineAt <= deadlineAt)) low = mid + 1;
      else high = mid;
    }
    return low;
  }

  private expire(waiter: Waiter) {
    const now = this.clock.now();
    const ahead = this.queue.indexOf(waiter);
    if (ahead < 0) return;
    this.remove(waiter);
    const retryAfterMs = Math.ceil((ahead + 1) * this.releaseIntervalMs(now));
    const message =
      `Shed: the deadline passed after ${seconds(now - waiter.enqueuedAt)} in the queue for ${this.target} ` +
      `(${this.waiting()}). Retry after ${retrySeconds(retryAfterMs)}s.`;
    this.shed(waiter, new ShedError('deadline', waiter.priority, retryAfterMs, message));
  }

  private abandon(waiter: Waiter) {
    if (!this.queue.includes(waiter)) return;
    this.remove(waiter);
    this.cancelled++;
    waiter.reject(this.cancelledError(waiter.priority));
  }

  private remove(waiter: Waiter) {
    this.queue.splice(this.queue.indexOf(waiter), 1);
    this.detach(waiter);
    if (this.queue.length === 0) this.emptied(this.clock.now());
  }

  /** Stops watching a waiter that has left the queue. */
  private detach(waiter: Waiter) {
    this.queuedByPriority[waiter.priority]--;
    waiter.timer?.cancel();
    if (waiter.onAbort) waiter.signal?.removeEventListener('abort', waiter.onAbort);
  }

  private shed(waiter: Waiter, error: ShedError) {
    this.shedByPriority[waiter.priority]++;
    waiter.reject(error);
  }

  private refuse(priority: Priority, error: ShedError): Promise<never> {
    this.shedByPriority[priority]++;
    return Promise.reject(error);
  }

  /** How long until the queue is short enough for this priority to join it. */
  private drainMs(priority: Priority, now: number): number {
    const excess = Math.max(0, this.queue.length - this.caps[priority] + 1);
    return Math.ceil(excess * this.releaseIntervalMs(now));
  }

  private queueFullError(priority: Priority, now: number): ShedError {
    const retryAfterMs = this.drainMs(priority, now);
    const where =
      this.queue.length >= this.maxQueue
        ? `the queue for ${this.target} is full (${this.waiting()})`
        : `the queue for ${this.target} holds as many as ${priority}-priority traffic may fill ` +
          `(${this.waiting()}; ${priority} may fill ${this.caps[priority]} of ${this.maxQueue} places)`;
    return new ShedError(
      'queue_full',
      priority,
      retryAfterMs,
      `Shed: ${where}; lower-priority traffic is shed first. Retry after ${retrySeconds(retryAfterMs)}s.`,
    );
  }

  private displacedError(priority: Priority, now: number): ShedError {
    const retryAfterMs = this.drainMs(priority, now);
    return new ShedError(
      'queue_full',
      priority,
      retryAfterMs,
      `Shed: a higher-priority request took this ${priority}-priority request's place in the full queue ` +
        `for ${this.target} (${this.waiting()}). Retry after ${retrySeconds(retryAfterMs)}s.`,
    );
  }

  private lateError(priority: Priority, waitMs: number, remainingMs: number): ShedError {
    const retryAfterMs = Math.ceil(waitMs - remainingMs);
    return new ShedError(
      'deadline',
      priority,
      retryAfterMs,
      `Shed: ${this.target} would start this request in about ${seconds(waitMs)} (${this.waiting()}), ` +
        `after its deadline in ${seconds(Math.max(0, remainingMs))}; allow more time or retry after ` +
        `${retrySeconds(retryAfterMs)}s.`,
    );
  }

  private standingError(priority: Priority, waitMs: number, now: number): ShedError {
    const budget = this.delayBudgetMs(priority, now);
    const retryAfterMs = Math.ceil(waitMs - budget);
    return new ShedError(
      'queue_delay',
      priority,
      retryAfterMs,
      `Shed: the queue for ${this.target} has been standing for ${seconds(now - (this.standingSince ?? now))} ` +
        `(${this.waiting()}), and a ${priority}-priority request would wait about ${milliseconds(waitMs)}, ` +
        `beyond the queue-delay target of ${milliseconds(budget)}; lower-priority traffic is shed first. ` +
        `Retry after ${retrySeconds(retryAfterMs)}s.`,
    );
  }

  private overdueError(waiter: Waiter, ahead: number, budget: number, now: number): ShedError {
    const retryAfterMs = Math.ceil((ahead + 1) * this.releaseIntervalMs(now));
    return new ShedError(
      'queue_delay',
      waiter.priority,
      retryAfterMs,
      `Shed: this ${waiter.priority}-priority request waited ${milliseconds(now - waiter.enqueuedAt)} ` +
        `in the queue for ${this.target}, which has been standing for ${seconds(now - (this.standingSince ?? now))} ` +
        `(${this.waiting()}): beyond the queue-delay target of ${milliseconds(budget)}; ` +
        `lower-priority traffic is shed first. Retry after ${retrySeconds(retryAfterMs)}s.`,
    );
  }

  private cancelledError(priority: Priority): ShedError {
    return new ShedError(
      'cancelled',
      priority,
      0,
      `Cancelled: the client went away while waiting in the queue for ${this.target}.`,
    );
  }

  private waiting(): string {
    return `${this.queue.length} waiting, limit ${this.limit}`;
  }
}

function zeroes(): Record<Priority, number> {
  return { critical: 0, high: 0, normal: 0, low: 0, batch: 0 };
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)}s`;
}

function milliseconds(ms: number): string {
  return `${Math.round(ms)} ms`;
}

function retrySeconds(ms: number): number {
  return Math.max(1, Math.ceil(ms / 1000));
}
