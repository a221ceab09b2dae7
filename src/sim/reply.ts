import { randomFillSync } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { ApiError } from '../http/api-error.js';
import type { Generation, Outcome } from './simulator.js';

// Random bytes drawn 4 KiB at a time: one call into the system's generator per ~100 ids
// rather than one per id (two ids a request, at benchmark rates).
const pool = Buffer.alloc(4096);
let used = pool.length;

export function randomId(prefix: string, length = 24): string {
  if (used + length > pool.length) {
    randomFillSync(pool);
    used = 0;
  }
  const bytes = pool.subarray(used, used + length);
  used += length;
  return prefix + bytes.toString('base64url').replace(/[-_]/g, 'x').slice(0, length);
}

/**
 * Resolves when the response is finished or the client has gone away; `onGone` runs only in
 * the second case (so a queued or decoding request frees its place at once).
 */
export function whenClosed(reply: FastifyReply, onGone: () => void): Promise<void> {
  return new Promise((resolve) => {
    reply.raw.once('close', () => {
      if (!reply.raw.writableFinished) onGone();
      resolve();
    });
  });
}

/** Drops the connection without a response, as a crashed upstream would. */
export function dropConnection(request: FastifyRequest, reply: FastifyReply): void {
  reply.raw.destroy();
  request.raw.socket?.destroy();
}

/** Sends an error in a wire format's body shape, with its headers (retry-after, rate limits). */
export function sendError(
  reply: FastifyReply,
  error: ApiError,
  body: (e: ApiError) => unknown,
  headers: Record<string, string> = {},
): FastifyReply {
  return reply
    .code(error.status)
    .headers({ ...headers, ...error.headers })
    .send(body(error));
}

/** Runs a generation to its end for a non-streaming answer; resolves undefined if the client left or it was cut. */
export function awaitGeneration(
  request: FastifyRequest,
  reply: FastifyReply,
  start: (listener: { onToken(): void; onFinish(): void; onCut(): void }) => Outcome<Generation>,
): { outcome: Outcome<Generation>; finished: Promise<boolean> } {
  let settle: (finished: boolean) => void = () => {};
  const finished = new Promise<boolean>((resolve) => {
    settle = resolve;
  });
  const outcome = start({
    onToken: () => {},
    onFinish: () => settle(true),
    onCut: () => {
      dropConnection(request, reply);
      settle(false);
    },
  });
  if (outcome.ok) {
    const generation = outcome.value;
    void whenClosed(reply, () => {
      generation.cancel();
      settle(false);
    });
  }
  return { outcome, finished };
}
