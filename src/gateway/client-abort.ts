/**
 * What dispatch needs to know of the client: whether it went away, and to be told when it does.
 * An AbortSignal is one; `ClientAbort` is a cheaper one for the request path.
 */
export interface ClientSignal {
  readonly aborted: boolean;
  addEventListener(type: 'abort', listener: () => void, options?: { once?: boolean }): void;
  removeEventListener(type: 'abort', listener: () => void): void;
}

/**
 * Aborts when the client goes away before its answer is complete. One per request and listened
 * to by every attempt, so its listeners are a plain list: an AbortController and its EventTarget
 * cost several µs of CPU a request for the same. `signal` makes a real AbortSignal only for a
 * consumer that needs one (the semantic cache combines it with its own timeout).
 */
export class ClientAbort implements ClientSignal {
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
    for (const listener of listeners) listener();
    this.controller?.abort();
  }

  get signal(): AbortSignal {
    if (!this.controller) {
      this.controller = new AbortController();
      if (this.aborted) this.controller.abort();
    }
    return this.controller.signal;
  }
}
