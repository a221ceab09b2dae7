import type { WideEvent } from './wide-event.js';

/** Where wide events (or another kind of event) go. `write` never blocks the request that produced it. */
export interface EventSink<E = WideEvent> {
  write(event: E): void;
  /** Flushes what is buffered and releases the sink. */
  close(): Promise<void>;
}

export const discardSink: EventSink = {
  write: () => {},
  close: async () => {},
};
