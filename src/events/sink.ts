import type { WideEvent } from './wide-event.js';

/** Where wide events go. `write` never blocks the request that produced the event. */
export interface EventSink {
  write(event: WideEvent): void;
  /** Flushes what is buffered and releases the sink. */
  close(): Promise<void>;
}

export const discardSink: EventSink = {
  write: () => {},
  close: async () => {},
};
