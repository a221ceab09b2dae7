import { request } from 'undici';

/**
 * POSTs `body` as JSON to `url`, giving up after `timeoutMs`. Rejects on a network error, a
 * timeout or a non-2xx answer; the caller decides what a failed notification is worth.
 */
export async function postJson(url: string, body: unknown, timeoutMs: number): Promise<void> {
  const response = await request(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'user-agent': 'sluice' },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(timeoutMs),
  });
  // Read the answer out so the connection goes back to the pool.
  await response.body.dump();
  if (response.statusCode < 200 || response.statusCode >= 300) {
    throw new Error(`${url} answered ${response.statusCode}`);
  }
}
