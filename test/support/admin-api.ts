export type Json = Record<string, unknown> & {
  error?: { code: string; message: string; param: string | null };
};

/** A gateway's answer: the status, its body parsed (`{}` when empty) and as text. */
export interface Answer {
  status: number;
  body: Json;
  text: string;
}

/** One JSON request to a gateway, with `key` as the bearer token when given. */
export async function request(
  url: string,
  method: string,
  path: string,
  options: { key?: string; body?: unknown; headers?: Record<string, string> } = {},
): Promise<Answer> {
  const headers: Record<string, string> = { ...options.headers };
  if (options.key) headers.authorization = `Bearer ${options.key}`;
  if (options.body !== undefined) headers['content-type'] = 'application/json';
  const response = await fetch(`${url}${path}`, {
    method,
    headers,
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
  });
  const text = await response.text();
  return { status: response.status, body: text ? (JSON.parse(text) as Json) : {}, text };
}

/** `adminApi(gw)`: the admin API of one gateway as `adminKey`, or `adminApi(gw, key)` as another key. */
export function adminApiFor(adminKey: string) {
  return (gw: { url: string }, key = adminKey) => ({
    get: (path: string) => request(gw.url, 'GET', path, { key }),
    post: (path: string, body?: unknown) => request(gw.url, 'POST', path, { key, body }),
    patch: (path: string, body: unknown) => request(gw.url, 'PATCH', path, { key, body }),
    delete: (path: string) => request(gw.url, 'DELETE', path, { key }),
  });
}
