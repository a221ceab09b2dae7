import type { CustomEvent } from './custom-event.js';
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

/**
 * Where custom events (POST /v1/events) go. Resolves, event by event, true once it is durable
 * (spooled on disk, or handed to its stream) and false when the spool refused it (full, failing).
 */
export interface CustomEventSink {
  accept(events: readonly CustomEvent[]): Promise<boolean[]>;
}

/** With the `none` sink custom events are validated, answered, and not kept, like wide events. */
export const discardCustomSink: CustomEventSink = {
  accept: async (events) => events.map(() => true),
};
