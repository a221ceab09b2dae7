import { type Clock, systemClock, type Timer } from '../time/clock.js';

export interface PeriodicReloadOptions {
  /** Reads the store and swaps the in-memory copy. */
  load: () => Promise<void>;
  /** How often to reload, so changes made on other nodes sharing the store take effect here. */
  refreshMs: number;
  /** Schedules the reloads. */
  clock?: Clock;
  /** A periodic reload failed (the store is down): what was loaded before stays in force. */
  onError?: (error: unknown) => void;
}

/**
 * Keeps an in-memory copy of the control store fresh: one load at start, then one every
 * `refreshMs` until `stop()`, with overlapping reloads coalesced.
 */
export class PeriodicReload {
  private running: Promise<void> | undefined;
  private queued: Promise<void> | undefined;
  private timer: Timer | undefined;
  private stopped = false;
  private readonly clock: Clock;

  constructor(private readonly options: PeriodicReloadOptions) {
    this.clock = options.clock ?? systemClock;
  }

  async start(): Promise<void> {
    this.stopped = false;
    await this.refresh();
    this.schedule();
  }

  stop(): void {
    this.stopped = true;
    this.timer?.cancel();
    this.timer = undefined;
  }

  /**
   * Reloads now. Calls during a reload share one more reload that starts after it, so a
   * write made before the call is always seen once the promise resolves.
   */
  refresh(): Promise<void> {
    if (!this.running) {
      this.running = this.options.load().finally(() => {
        this.running = undefined;
      });
      return this.running;
    }
    this.queued ??= this.running
      .catch(() => {})
      .then(() => {
        this.queued = undefined;
        return this.refresh();
      });
    return this.queued;
  }

  /** Resolves when no reload is in flight. */
  async settled(): Promise<void> {
    while (this.running || this.queued) await (this.queued ?? this.running)?.catch(() => {});
  }

  private schedule(): void {
    if (this.stopped) return;
    // Fixed rate: a reload still running when the next is due coalesces with it (see refresh).
    this.timer = this.clock.setTimer(this.options.refreshMs, () => {
      this.schedule();
      this.refresh().catch((error: unknown) => this.options.onError?.(error));
    });
  }
}
