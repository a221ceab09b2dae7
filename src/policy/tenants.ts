import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { type ApiError, apiError } from '../http/api-error.js';
import type { ControlStore, Org, Team } from '../store/control-store.js';

const tenantName = z
  .string()
  .trim()
  .min(1)
  .max(100)
  .describe('Shown in events and analytics; unique among orgs, or among the teams of an org.');

export const createOrgBody = z.strictObject({ name: tenantName });
export const createTeamBody = z.strictObject({
  orgId: z.string().min(1).describe('The org the team belongs to.'),
  name: tenantName,
});
export const teamListQuery = z.strictObject({ orgId: z.string().min(1).optional() });

export interface OrgView {
  id: string;
  object: 'org';
  name: string;
  createdAt: string;
}

export interface TeamView {
  id: string;
  object: 'team';
  orgId: string;
  name: string;
  createdAt: string;
}

export interface Deleted {
  id: string;
  object: 'org' | 'team';
  deleted: true;
}

const orgView = (org: Org): OrgView => ({
  id: org.id,
  object: 'org',
  name: org.name,
  createdAt: new Date(org.createdAt).toISOString(),
});

const teamView = (team: Team): TeamView => ({
  id: team.id,
  object: 'team',
  orgId: team.orgId,
  name: team.name,
  createdAt: new Date(team.createdAt).toISOString(),
});

const orgNotFound = (id: string, param?: string) =>
  apiError('not_found', 404, `No org with id '${id}'. List orgs with GET /admin/orgs.`, {
    code: 'org_not_found',
    param,
  });

const teamNotFound = (id: string) =>
  apiError('not_found', 404, `No team with id '${id}'. List teams with GET /admin/teams.`, {
    code: 'team_not_found',
  });

/** What still refers to an org or team, e.g. ["2 teams", "1 key"]. */
function uses(counts: Record<string, number>): string[] {
  return Object.entries(counts)
    .filter(([, n]) => n > 0)
    .map(([noun, n]) => `${n} ${noun}${n === 1 ? '' : 's'}`);
}

const inUse = (kind: 'org' | 'team', name: string, what: string[]) =>
  apiError(
    'invalid_request',
    409,
    `The ${kind} '${name}' still has ${what.join(', ')}: only an unused ${kind} can be deleted. Keys are never deleted (a revoked key keeps its history), so a ${kind} that had keys stays.`,
    { code: `${kind}_in_use` },
  );

/** The admin operations on orgs and teams, the tenants keys belong to. */
export function tenantAdmin(deps: { store: ControlStore; now?: () => number }) {
  const { store } = deps;
  const now = deps.now ?? Date.now;

  return {
    async createOrg(body: z.infer<typeof createOrgBody>): Promise<OrgView | ApiError> {
      const inserted = await store.orgs.insert({
        id: `org_${randomBytes(8).toString('hex')}`,
        name: body.name,
        createdAt: now(),
      });
      if (typeof inserted === 'string') {
        return apiError('invalid_request', 409, `An org named '${body.name}' already exists.`, {
          code: 'org_name_taken',
          param: 'name',
        });
      }
      return orgView(inserted);
    },

    async listOrgs(): Promise<OrgView[]> {
      return (await store.orgs.list()).map(orgView);
    },

    async showOrg(id: string): Promise<OrgView | ApiError> {
      const org = await store.orgs.get(id);
      return org ? orgView(org) : orgNotFound(id);
    },

    async deleteOrg(id: string): Promise<Deleted | ApiError> {
      const org = await store.orgs.get(id);
      if (!org) return orgNotFound(id);
      const [teams, keys, budgets] = await Promise.all([
        store.teams.list({ orgId: id }),
        store.keys.list({ orgId: id }),
        store.budgets.list({ scope: 'org', scopeName: org.name }),
      ]);
      const used = uses({ team: teams.length, key: keys.length, budget: budgets.length });
      if (used.length > 0) return inUse('org', org.name, used);
      const deleted = await store.orgs.delete(id);
      if (deleted === 'missing') return orgNotFound(id);
      if (deleted === 'in_use') return inUse('org', org.name, ['teams or keys created just now']);
      return { id, object: 'org', deleted: true };
    },

    async createTeam(body: z.infer<typeof createTeamBody>): Promise<TeamView | ApiError> {
      const inserted = await store.teams.insert({
        id: `team_${randomBytes(8).toString('hex')}`,
        orgId: body.orgId,
        name: body.name,
        createdAt: now(),
      });
      if (inserted === 'dangling') return orgNotFound(body.orgId, 'orgId');
      if (inserted === 'conflict') {
        return apiError(
          'invalid_request',
          409,
          `Org '${body.orgId}' already has a team named '${body.name}'.`,
          {
            code: 'team_name_taken',
            param: 'name',
          },
        );
      }
      return teamView(inserted);
    },

    async listTeams(query: z.infer<typeof teamListQuery>): Promise<TeamView[]> {
      return (await store.teams.list({ orgId: query.orgId })).map(teamView);
    },

    async showTeam(id: string): Promise<TeamView | ApiError> {
      const team = await store.teams.get(id);
      return team ? teamView(team) : teamNotFound(id);
    },

    async deleteTeam(id: string): Promise<Deleted | ApiError> {
      const team = await store.teams.get(id);
      if (!team) return teamNotFound(id);
      const [keys, budgets] = await Promise.all([
        store.keys.list({ teamId: id }),
        store.budgets.list({ scope: 'team', scopeName: team.name }),
      ]);
      const used = uses({ key: keys.length, budget: budgets.length });
      if (used.length > 0) return inUse('team', team.name, used);
      const deleted = await store.teams.delete(id);
      if (deleted === 'missing') return teamNotFound(id);
      if (deleted === 'in_use') return inUse('team', team.name, ['keys created just now']);
      return { id, object: 'team', deleted: true };
    },
  };
}

export type TenantAdmin = ReturnType<typeof tenantAdmin>;
