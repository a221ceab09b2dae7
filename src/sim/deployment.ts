import type { Clock, Timer } from '../time/clock.js';
import type { ModelProfile } from './config.js';

/** The work one request asks of a model: read the prompt, then decode a number of tokens. */
export interface SequenceSpec {
  promptTokens: number;
  decodeSteps: number;
  /** From latency faults: scales prefill and decode time. */
  latencyMultiplier: number;
  /** From slow-first-byte faults: added before the first token. */
  extraFirstTokenMs: number;
}

export interface SequenceListener {
  /** A slot was granted at `at` (after `at - enqueuedAt` ms in the queue). */
  onStart?(at: number): void;
  /** Token `index` (0-based) was decoded at `at`. */
  onToken(index: number, at: number): void;
  onFinish(at: number): void;
}

export interface Sequence {
  readonly enqueuedAt: number;
  /** Leaves the queue or frees the slot; no further callbacks. */
  cancel(): void;
}

export type Admission = { admitted: true; sequence: Sequence } | { admitted: false; retryAfterMs: number };

type Timing = Pick<
  ModelProfile,
  | 'slots'
  | 'queueLimit'
  | 'prefillBaseMs'
  | 'prefillMsPerToken'
  | 'decodeMsPerToken'
  | 'batchSlowdown'
  | 'outputTokens'
>;

interface Entry {
  spec: SequenceSpec;
  listener: SequenceListener;
  enqueuedAt: number;
  startedAt?: number;
  timer?: Timer;
  done: boolean;
}

/**
 * One model served with continuous batching: `slots` sequences decode together, each
 * token slower as more slots are busy; the rest wait in a bounded FIFO queue.
 *
 *   prefill(p)  = (prefillBaseMs + prefillMsPerToken · p) · m + extraFirstTokenMs
 *   token(b)    = decodeMsPerToken · (1 + batchSlowdown · (b − 1)) · m     (b = busy slots)
 *   TTFT        = queue wait + prefill(p);  each next token after token(b) at that moment
 */
export class Deployment {
  private readonly running = new Set<Entry>();
  private readonly queue: Entry[] = [];
  private meanServiceMs: number;

  constructor(
    private readonly timing: Timing,
    private readonly clock: Clock,
  ) {
    this.meanServiceMs = timing.prefillBaseMs + timing.outputTokens.mean * timing.decodeMsPerToken;
  }

  get busy(): number {
    return this.running.size;
  }

  get queued(): number {
    return this.queue.length;
  }

  prefillMs(spec: SequenceSpec): number {
    const t = this.timing;
    return (
      (t.prefillBaseMs + t.prefillMsPerToken * spec.promptTokens) * spec.latencyMultiplier +
      spec.extraFirstTokenMs
    );
  }

  tokenMs(busy: number, latencyMultiplier: number): number {
    const t = this.timing;
    return t.decodeMsPerToken * (1 + t.batchSlowdown * Math.max(0, busy - 1)) * latencyMultiplier;
  }

  /** How long a request arriving now would wait for a slot, from recent service times. */
  predictedWaitMs(): number {
    const ahead = this.queue.length + Math.max(0, this.running.size - this.timing.slots + 1);
    return Math.ceil((ahead / this.timing.slots) * this.meanServiceMs);
  }

  submit(spec: SequenceSpec, listener: SequenceListener): Admission {
    if (this.running.size >= this.timing.slots && this.queue.length >= this.timing.queueLimit) {
      return { admitted: false, retryAfterMs: Math.max(1000, this.predictedWaitMs()) };
    }
    const entry: Entry = { spec, listener, enqueuedAt: this.clock.now(), done: false };
    if (this.running.size < this.timing.slots) this.start(entry);
    else this.queue.push(entry);
    return { admitted: true, sequence: { enqueuedAt: entry.enqueuedAt, cancel: () => this.cancel(entry) } };
  }

  private start(entry: Entry): void {
    entry.startedAt = this.clock.now();
    this.running.add(entry);
    entry.listener.onStart?.(entry.startedAt);
    const steps = entry.spec.decodeSteps;
    let index = 0;
    const step = (): void => {
      for (;;) {
        if (entry.done) return;
        if (index >= steps) {
          this.finish(entry);
          return;
        }
        entry.listener.onToken(index, this.clock.now());
        index++;
        if (index >= steps) {
          this.finish(entry);
          return;
        }
        const next = this.tokenMs(this.running.size, entry.spec.latencyMultiplier);
        // A model configured with no decode time emits its tokens at once: a timer per token would
        // cost a timer tick each (Node's shortest is 1 ms) and CPU the benchmarks must not spend.
        if (next > 0) {
          entry.timer = this.clock.setTimer(next, step);
          return;
        }
      }
    };
    entry.timer = this.clock.setTimer(this.prefillMs(entry.spec), step);
  }

  private finish(entry: Entry): void {
    const now = this.clock.now();
    const service = now - (entry.startedAt ?? now);
    this.meanServiceMs = this.meanServiceMs * 0.9 + service * 0.1;
    this.release(entry);
    entry.listener.onFinish(now);
  }

  private cancel(entry: Entry): void {
    if (entry.done) return;
    const queuedAt = this.queue.indexOf(entry);
    if (queuedAt >= 0) {
      this.queue.splice(queuedAt, 1);
      entry.done = true;
      return;
    }
    this.release(entry);
  }

  private release(entry: Entry): void {
    entry.done = true;
    entry.timer?.cancel();
    this.running.delete(entry);
    // Continuous batching: a freed slot is taken by the next waiter at once.
    while (this.running.size < this.timing.slots && this.queue.length > 0) {
      this.start(this.queue.shift() as Entry);
    }
  }
}
