import { createWriteStream, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Writable } from 'node:stream';
import type { EventSink } from './sink.js';
import type { WideEvent } from './wide-event.js';

/**
 * One JSON line per event, appended to a file (or written to a stream such as stdout).
 * Writes are buffered by the stream, so a request never waits for the disk.
 */
export function jsonlSink<E = WideEvent>(target: { path: string } | { stream: Writable }): EventSink<E> {
  let stream: Writable;
  if ('path' in target) {
    mkdirSync(dirname(target.path), { recursive: true });
    stream = createWriteStream(target.path, { flags: 'a' });
  } else {
    stream = target.stream;
  }
  const owned = 'path' in target;
  return {
    write(event: E) {
      stream.write(`${JSON.stringify(event)}\n`);
    },
    close() {
      if (!owned) return Promise.resolve();
      return new Promise<void>((resolve, reject) =>
        stream.end((error?: Error | null) => (error ? reject(error) : resolve())),
      );
    },
  };
}
