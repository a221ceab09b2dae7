/**
 * What waits on a cancellation needs of it: whether it happened, and to be told when it does.
 * An AbortSignal is one; a `Cancellation` is a cheaper one for the request path.
 */
export interface CancelSignal {
  readonly aborted: boolean;
  addEventListener(type: 'abort', listener: () => void, options?: { once?: boolean }): void;
  removeEventListener(type: 'abort', listener: () => void): void;
}

/**
 * A cancellation whose listeners are a plain list. A request has one for its client going away
 * and one for each attempt's deadlines; as AbortControllers with their EventTarget listeners
 * they cost several µs of CPU a request. undici takes it as a request's `signal` (it accepts any
 * object with addEventListener). `signal` makes a real AbortSignal only for a consumer that
 * needs one (the semantic cache combines the client's with its own timeout).
 */
export class Cancellation implements CancelSignal {
  aborted = false;
  private listeners: Array<() => void> = [];
  private controller: AbortController | undefined;

  addEventListener(_type: 'abort', listener: () => void): void {
    if (!this.aborted) this.listeners.push(listener);
  }

  removeEventListener(_type: 'abort', listener: () => void): void {
    const at = this.listeners.indexOf(listener);
    if (at >= 0) this.listeners.splice(at, 1);
  }

  abort(): void {
    if (this.aborted) return;
    this.aborted = true;
    const listeners = this.listeners;
    this.listeners = [];
    // Like an EventTarget, one listener's exception does not keep the others from hearing it.
    let failure: { error: unknown } | undefined;
    for (const listener of listeners) {
      try {
        listener();
      } catch (error) {
        failure ??= { error };
      }
    }
    this.controller?.abort();
    if (failure) throw failure.error;
  }

  get signal(): AbortSignal {
    if (!this.controller) {
      this.controller = new AbortController();
      if (this.aborted) this.controller.abort();
    }
    return this.controller.signal;
  }
}
