import type { KeyView, KeyWithSecret } from '../policy/keys.js';
import { type AdminAction, adminOptions, runAdminAction } from './admin-client.js';
import { type Command, UsageError } from './command.js';
import { formatFields, formatTable } from './table.js';

type Values = Record<string, string | boolean | undefined>;

const units: Record<string, number> = { m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/** `--expires`: a date or time, a duration from now (90m, 12h, 30d, 4w), or "never" (null). */
export function parseExpiry(text: string, now: number = Date.now()): string | null {
  if (text === 'never') return null;
  const duration = /^(\d+)([mhdw])$/.exec(text);
  if (duration)
    return new Date(now + Number(duration[1]) * (units[duration[2] as string] ?? 0)).toISOString();
  const at = Date.parse(text);
  if (Number.isNaN(at)) {
    throw new UsageError(
      `--expires "${text}" is not a date (2026-12-31, 2026-12-31T18:00:00Z), a duration (90m, 12h, 30d, 4w) or "never"`,
    );
  }
  return new Date(at).toISOString();
}

/** `--tags env=prod,owner=search` as {"env": "prod", "owner": "search"}. */
export function parseTags(text: string): Record<string, string> {
  const tags: Record<string, string> = {};
  for (const pair of text.split(',').filter(Boolean)) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new UsageError(`--tags "${pair}" is not name=value`);
    tags[pair.slice(0, eq).trim()] = pair.slice(eq + 1).trim();
  }
  return tags;
}

const list = (text: string) =>
  text
    .split(',')
    .map((item) => item.trim())
    .filter(Boolean);

const shown = (key: KeyView) => ({
  prefix: `${key.prefix}…`,
  routes: key.routes?.join(',') ?? 'all',
  tags:
    Object.entries(key.tags)
      .map(([name, value]) => `${name}=${value}`)
      .join(',') || '-',
  expires: key.expiresAt ?? 'never',
});

function keyFields(key: KeyView | KeyWithSecret): string {
  const view = shown(key);
  const fields: [string, string][] = [
    ['id', key.id],
    ['name', key.name],
    ['prefix', view.prefix],
    ['status', key.status],
    ['team', key.teamId ?? '-'],
    ['org', key.orgId ?? '-'],
    ['routes', view.routes],
    ['priority', key.priority],
    ['admin', key.admin ? 'yes' : 'no'],
    ['tags', view.tags],
    ['created', key.createdAt],
    ['expires', view.expires],
  ];
  if (key.rotatedAt) fields.push(['rotated', key.rotatedAt]);
  if (key.revokedAt) fields.push(['revoked', key.revokedAt]);
  if ('secret' in key) fields.push(['secret', key.secret]);
  return formatFields(fields);
}

function keyTable(keys: KeyView[]): string {
  return formatTable(
    ['ID', 'NAME', 'PREFIX', 'STATUS', 'TEAM', 'ORG', 'ROUTES', 'PRIORITY', 'ADMIN', 'EXPIRES'],
    keys.map((key) => {
      const view = shown(key);
      return [
        key.id,
        key.name,
        view.prefix,
        key.status,
        key.teamId ?? '-',
        key.orgId ?? '-',
        view.routes,
        key.priority,
        key.admin ? 'yes' : 'no',
        view.expires,
      ];
    }),
  );
}

function print(values: Values, body: unknown, text: () => string): void {
  process.stdout.write(values.json ? `${JSON.stringify(body, null, 2)}\n` : text());
}

function printSecret(values: Values, key: KeyWithSecret): void {
  print(values, key, () => keyFields(key));
  process.stderr.write(
    'The secret is shown this once: store it now. It cannot be recovered, only rotated.\n',
  );
}

/** The one key id a subcommand takes, ready for a URL path. */
function oneId(subcommand: string, ids: string[]): string {
  if (ids.length !== 1) throw new UsageError(`${subcommand} takes one key id (see \`sluice keys list\`)`);
  return encodeURIComponent(ids[0] as string);
}

/** The fields of a create or update body that flags set. */
function keyFieldsFrom(values: Values): Record<string, unknown> {
  const body: Record<string, unknown> = {};
  if (typeof values.name === 'string') body.name = values.name;
  if (typeof values.routes === 'string') body.routes = list(values.routes);
  if (values['all-routes']) body.routes = null;
  if (typeof values.priority === 'string') body.priority = values.priority;
  if (typeof values.tags === 'string') body.tags = parseTags(values.tags);
  if (typeof values.expires === 'string') body.expiresAt = parseExpiry(values.expires);
  if (values.admin) body.admin = true;
  if (values['no-admin']) body.admin = false;
  return body;
}

const actions: Record<string, AdminAction> = {
  async create(client, values, ids) {
    if (ids.length > 0) throw new UsageError('create takes no id: name the key with --name');
    if (typeof values.name !== 'string') throw new UsageError('create needs --name');
    if (values['all-routes'] || values['no-admin']) {
      throw new UsageError(
        '--all-routes and --no-admin are for update: a new key has all routes and no admin scope',
      );
    }
    const body = keyFieldsFrom(values);
    if (body.expiresAt === null) delete body.expiresAt;
    if (typeof values.team === 'string') body.teamId = values.team;
    if (typeof values.org === 'string') body.orgId = values.org;
    printSecret(values, (await client.call('POST', '/admin/keys', body)) as KeyWithSecret);
  },
  async list(client, values, ids) {
    if (ids.length > 0) throw new UsageError('list takes no id: filter with --team, --org or --status');
    const query = new URLSearchParams();
    if (typeof values.team === 'string') query.set('teamId', values.team);
    if (typeof values.org === 'string') query.set('orgId', values.org);
    if (typeof values.status === 'string') query.set('status', values.status);
    const path = `/admin/keys${query.size > 0 ? `?${query}` : ''}`;
    const answer = (await client.call('GET', path)) as { data: KeyView[] };
    print(values, answer, () => (answer.data.length === 0 ? 'No keys.\n' : keyTable(answer.data)));
  },
  async show(client, values, ids) {
    const key = (await client.call('GET', `/admin/keys/${oneId('show', ids)}`)) as KeyView;
    print(values, key, () => keyFields(key));
  },
  async update(client, values, ids) {
    const id = oneId('update', ids);
    if (typeof values.team === 'string' || typeof values.org === 'string') {
      throw new UsageError('a key cannot change team or org: create a new key there and revoke this one');
    }
    const body = keyFieldsFrom(values);
    if (Object.keys(body).length === 0) {
      throw new UsageError(
        'update needs a change: --name, --routes, --all-routes, --priority, --tags, --expires, --admin or --no-admin',
      );
    }
    const key = (await client.call('PATCH', `/admin/keys/${id}`, body)) as KeyView;
    print(values, key, () => keyFields(key));
  },
  async rotate(client, values, ids) {
    const key = (await client.call('POST', `/admin/keys/${oneId('rotate', ids)}/rotate`)) as KeyWithSecret;
    printSecret(values, key);
  },
  async revoke(client, values, ids) {
    const key = (await client.call('POST', `/admin/keys/${oneId('revoke', ids)}/revoke`)) as KeyView;
    print(values, key, () => keyFields(key));
  },
};

export const keysCommand: Command = {
  name: 'keys',
  summary: 'Create, list, show, update, rotate and revoke virtual keys on a running gateway.',
  details: [
    'Subcommands:',
    '  create --name N [--team ID | --org ID] [--routes a,b] [--priority P] [--tags k=v,...]',
    '         [--expires WHEN] [--admin]     Prints the new key with its secret, shown this once.',
    '  list [--team ID] [--org ID] [--status active|expired|revoked]',
    '  show <id>',
    '  update <id> [--name N] [--routes a,b | --all-routes] [--priority P] [--tags k=v,...]',
    '         [--expires WHEN|never] [--admin | --no-admin]',
    '  rotate <id>                          A new secret; the old one stops working.',
    '  revoke <id>                          For good: the key is refused from now on.',
    '',
    'WHEN is a date or time (2026-12-31, 2026-12-31T18:00:00Z) or a duration from now (90m, 12h, 30d, 4w).',
    '',
    'Examples:',
    '  export SLUICE_ADMIN_KEY=...',
    '  sluice keys create --name search-prod --team team_3f9a0c1b2d4e5f60 --routes chat --expires 90d',
    '  sluice keys list --status active',
    '  sluice keys revoke key_8c2e4a6b0d1f3e5c',
    '',
    'See docs/keys-and-budgets.md.',
  ].join('\n'),
  options: {
    ...adminOptions,
    name: { type: 'string', value: 'name', description: 'The key’s name (create, update).' },
    team: { type: 'string', value: 'id', description: 'The team the key belongs to (create), or to list.' },
    org: {
      type: 'string',
      value: 'id',
      description: 'The org of a key without a team (create), or to list.',
    },
    routes: { type: 'string', value: 'a,b', description: 'The only routes the key may call.' },
    'all-routes': { type: 'boolean', description: 'Lift a route restriction (update).' },
    priority: { type: 'string', value: 'level', description: 'critical, high, normal, low or batch.' },
    tags: { type: 'string', value: 'k=v,...', description: 'Labels carried by the key’s requests.' },
    expires: { type: 'string', value: 'when', description: 'When the key stops working (see WHEN).' },
    admin: { type: 'boolean', description: 'Give the key admin scope: it may use the admin API.' },
    'no-admin': { type: 'boolean', description: 'Take admin scope away (update).' },
    status: { type: 'string', value: 'status', description: 'List only active, expired or revoked keys.' },
  },
  run: (values, positionals) => runAdminAction(actions, values, positionals),
};
