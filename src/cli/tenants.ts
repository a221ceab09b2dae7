import type { OrgView, TeamView } from '../policy/tenants.js';
import { type AdminAction, adminOptions, runAdminAction } from './admin-client.js';
import { type Command, UsageError } from './command.js';
import { formatFields, formatTable } from './table.js';

type Values = Record<string, string | boolean | undefined>;

function print(values: Values, body: unknown, text: () => string): void {
  process.stdout.write(values.json ? `${JSON.stringify(body, null, 2)}\n` : text());
}

function oneId(what: string, subcommand: string, ids: string[]): string {
  if (ids.length !== 1)
    throw new UsageError(`${subcommand} takes one ${what} id (see \`sluice ${what}s list\`)`);
  return encodeURIComponent(ids[0] as string);
}

const orgFields = (org: OrgView) =>
  formatFields([
    ['id', org.id],
    ['name', org.name],
    ['created', org.createdAt],
  ]);

const teamFields = (team: TeamView) =>
  formatFields([
    ['id', team.id],
    ['name', team.name],
    ['org', team.orgId],
    ['created', team.createdAt],
  ]);

const orgActions: Record<string, AdminAction> = {
  async create(client, values, ids) {
    if (ids.length > 0 || typeof values.name !== 'string')
      throw new UsageError('create takes --name and no id');
    const org = (await client.call('POST', '/admin/orgs', { name: values.name })) as OrgView;
    print(values, org, () => orgFields(org));
  },
  async list(client, values) {
    const answer = (await client.call('GET', '/admin/orgs')) as { data: OrgView[] };
    print(values, answer, () =>
      answer.data.length === 0
        ? 'No orgs.\n'
        : formatTable(
            ['ID', 'NAME', 'CREATED'],
            answer.data.map((org) => [org.id, org.name, org.createdAt]),
          ),
    );
  },
  async show(client, values, ids) {
    const org = (await client.call('GET', `/admin/orgs/${oneId('org', 'show', ids)}`)) as OrgView;
    print(values, org, () => orgFields(org));
  },
  async delete(client, values, ids) {
    const id = oneId('org', 'delete', ids);
    const answer = await client.call('DELETE', `/admin/orgs/${id}`);
    print(values, answer, () => `Deleted org ${decodeURIComponent(id)}.\n`);
  },
};

const teamActions: Record<string, AdminAction> = {
  async create(client, values, ids) {
    if (ids.length > 0 || typeof values.name !== 'string' || typeof values.org !== 'string') {
      throw new UsageError('create takes --org and --name, and no id');
    }
    const team = (await client.call('POST', '/admin/teams', {
      orgId: values.org,
      name: values.name,
    })) as TeamView;
    print(values, team, () => teamFields(team));
  },
  async list(client, values) {
    const path =
      typeof values.org === 'string'
        ? `/admin/teams?orgId=${encodeURIComponent(values.org)}`
        : '/admin/teams';
    const answer = (await client.call('GET', path)) as { data: TeamView[] };
    print(values, answer, () =>
      answer.data.length === 0
        ? 'No teams.\n'
        : formatTable(
            ['ID', 'NAME', 'ORG', 'CREATED'],
            answer.data.map((team) => [team.id, team.name, team.orgId, team.createdAt]),
          ),
    );
  },
  async show(client, values, ids) {
    const team = (await client.call('GET', `/admin/teams/${oneId('team', 'show', ids)}`)) as TeamView;
    print(values, team, () => teamFields(team));
  },
  async delete(client, values, ids) {
    const id = oneId('team', 'delete', ids);
    const answer = await client.call('DELETE', `/admin/teams/${id}`);
    print(values, answer, () => `Deleted team ${decodeURIComponent(id)}.\n`);
  },
};

export const orgsCommand: Command = {
  name: 'orgs',
  summary: 'Create, list, show and delete orgs (the top of the org → team → key hierarchy).',
  details: [
    'Subcommands:',
    '  create --name N',
    '  list',
    '  show <id>',
    '  delete <id>    Only an org without teams, keys or budgets.',
    '',
    'See docs/keys-and-budgets.md.',
  ].join('\n'),
  options: {
    ...adminOptions,
    name: { type: 'string', value: 'name', description: 'The org’s name (create).' },
  },
  run: (values, positionals) => runAdminAction(orgActions, values, positionals),
};

export const teamsCommand: Command = {
  name: 'teams',
  summary: 'Create, list, show and delete teams; a team belongs to an org, keys belong to a team.',
  details: [
    'Subcommands:',
    '  create --org ID --name N',
    '  list [--org ID]',
    '  show <id>',
    '  delete <id>    Only a team without keys or budgets.',
    '',
    'See docs/keys-and-budgets.md.',
  ].join('\n'),
  options: {
    ...adminOptions,
    org: { type: 'string', value: 'id', description: 'The org (create; list filter).' },
    name: { type: 'string', value: 'name', description: 'The team’s name (create).' },
  },
  run: (values, positionals) => runAdminAction(teamActions, values, positionals),
};
