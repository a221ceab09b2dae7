import { type OptionSpec, UsageError } from './command.js';

/** The options every command that talks to a running gateway's admin API takes. */
export const adminOptions: Record<string, OptionSpec> = {
  url: {
    type: 'string',
    value: 'url',
    description: 'The running gateway (default: $SLUICE_URL, else http://127.0.0.1:7878).',
  },
  'admin-key': {
    type: 'string',
    value: 'key',
    description:
      'The admin key, or a key with admin scope (default: $SLUICE_ADMIN_KEY, which keeps it out of `ps`).',
  },
  json: { type: 'boolean', description: 'Print the API’s JSON instead of a table.' },
};

export interface AdminClient {
  url: string;
  call(method: 'GET' | 'POST' | 'PATCH' | 'DELETE', path: string, body?: unknown): Promise<unknown>;
}

type Values = Record<string, string | boolean | undefined>;

/** A client of the admin API; errors carry the gateway's message and code, never the key. */
export function adminClient(values: Values, env: NodeJS.ProcessEnv = process.env): AdminClient {
  const url = String(values.url ?? env.SLUICE_URL ?? 'http://127.0.0.1:7878').replace(/\/+$/, '');
  const key = values['admin-key'] ?? env.SLUICE_ADMIN_KEY;
  if (typeof key !== 'string' || key === '') {
    throw new UsageError('no admin key: set SLUICE_ADMIN_KEY or pass --admin-key');
  }
  return {
    url,
    async call(method, path, body) {
      const headers: Record<string, string> = { authorization: `Bearer ${key}` };
      if (body !== undefined) headers['content-type'] = 'application/json';
      let response: Response;
      try {
        response = await fetch(`${url}${path}`, {
          method,
          headers,
          body: body === undefined ? undefined : JSON.stringify(body),
        });
      } catch (error) {
        const cause = (error as { cause?: { code?: string; message?: string } }).cause;
        throw new Error(
          `cannot reach the gateway at ${url} (${cause?.code ?? cause?.message ?? (error as Error).message}): is \`sluice up\` running there? Pass --url or set SLUICE_URL.`,
        );
      }
      const text = await response.text();
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch {
        throw new Error(
          `${url} answered HTTP ${response.status} with a body that is not JSON: is it a Sluice gateway?`,
        );
      }
      if (!response.ok) {
        const error = (parsed as { error?: { message?: string; code?: string | null } }).error;
        const code = error?.code ? `, ${error.code}` : '';
        throw new Error(`${error?.message ?? text} (HTTP ${response.status}${code})`);
      }
      return parsed;
    },
  };
}

/** One subcommand (`create`, `list`, …): `ids` are the positionals after its name. */
export type AdminAction = (client: AdminClient, values: Values, ids: string[]) => Promise<void>;

/** Runs the subcommand named first in `positionals`, connected to the gateway. */
export async function runAdminAction(
  actions: Record<string, AdminAction>,
  values: Values,
  positionals: string[],
): Promise<void> {
  const [name, ...ids] = positionals;
  const names = Object.keys(actions);
  const action = name === undefined ? undefined : actions[name];
  if (!action) {
    const all = `${names.slice(0, -1).join(', ')} or ${names.at(-1)}`;
    throw new UsageError(
      name === undefined ? `name a subcommand: ${all}` : `unknown subcommand "${name}": use ${all}`,
    );
  }
  await action(adminClient(values), values, ids);
}
