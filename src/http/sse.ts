import type { ServerResponse } from 'node:http';

/** Starts a Server-Sent Events response on a raw Node response (the reply is hijacked). */
export function startEventStream(res: ServerResponse, headers: Record<string, string> = {}): void {
  res.writeHead(200, {
    ...headers,
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache',
    connection: 'keep-alive',
    'x-accel-buffering': 'no',
  });
  res.flushHeaders();
}

/** Writes one event: `data:` only (OpenAI style) or `event:` + `data:` (Anthropic style). */
export function writeEvent(res: ServerResponse, data: string, event?: string): boolean {
  if (res.destroyed || res.writableEnded) return false;
  return res.write(event ? `event: ${event}\ndata: ${data}\n\n` : `data: ${data}\n\n`);
}
