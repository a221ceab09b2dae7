import type { ServerResponse } from 'node:http';

/** Resolves once `res` can take more data, or is gone: a slow client pauses its upstream. */
export function drained(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}

/** Writes `text`; returns a promise only when the socket buffer is full. */
export function writeOrWait(res: ServerResponse, text: string): Promise<void> | undefined {
  if (res.destroyed || res.writableEnded) return undefined;
  return res.write(text) ? undefined : drained(res);
}
