import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { priorities } from '../flow/priority.js';
import { type ApiError, apiError, isApiError } from '../http/api-error.js';
import type { ControlStore, KeyRecord } from '../store/control-store.js';
import type { KeyDirectory, TenantNames } from './key-directory.js';
import { keyStatus, newSecret } from './virtual-key.js';

const keyName = z.string().trim().min(1).max(100).describe('Shown in lists, logs and events.');
const routes = z
  .array(z.string().min(1))
  .min(1)
  .describe('Routes (or "provider/model") the key may call; absent: all.');
// The same rules as x-sluice-tags, whose values override these per request.
const tags = z
  .record(
    z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'tag names are 1–64 letters, digits, "_", "." or "-"'),
    z.string().max(128),
  )
  .refine((value) => Object.keys(value).length <= 16, 'at most 16 tags')
  .describe(
    'Labels on every request of the key, e.g. {"env": "prod"}; a request’s x-sluice-tags override them.',
  );
const expiresAt = z.iso.datetime({ offset: true }).describe('ISO 8601 time after which the key is refused.');

export const createKeyBody = z.strictObject({
  name: keyName,
  teamId: z.string().min(1).optional().describe('The team the key belongs to (and so its org).'),
  orgId: z.string().min(1).optional().describe('The org of a key without a team.'),
  routes: routes.optional(),
  admin: z.boolean().default(false).describe('May use the admin API.'),
  priority: z
    .enum(priorities)
    .default('normal')
    .describe('Flow-control priority unless a request says otherwise.'),
  tags: tags.default({}),
  expiresAt: expiresAt.optional(),
});

export const updateKeyBody = z.strictObject({
  name: keyName.optional(),
  routes: routes.nullable().optional().describe('null: every route.'),
  admin: z.boolean().optional(),
  priority: z.enum(priorities).optional(),
  tags: tags.optional(),
  expiresAt: expiresAt.nullable().optional().describe('null: never; a past time expires the key now.'),
});

export const keyListQuery = z.strictObject({
  teamId: z.string().min(1).optional(),
  orgId: z.string().min(1).optional(),
  status: z.enum(['active', 'expired', 'revoked']).optional(),
});

/** A key as the admin API shows it: never the secret, never its digest. */
export interface KeyView {
  id: string;
  object: 'api_key';
  name: string;
  /** The secret's first characters, e.g. "sk-sluice-ab12". */
  prefix: string;
  status: ReturnType<typeof keyStatus>;
  orgId: string | null;
  teamId: string | null;
  admin: boolean;
  routes: string[] | null;
  priority: string;
  tags: Record<string, string>;
  createdAt: string;
  expiresAt: string | null;
  revokedAt: string | null;
  rotatedAt: string | null;
}

/** A key with its secret: the one time the secret is shown (creation, rotation). */
export type KeyWithSecret = KeyView & { secret: string };

export interface KeyAdminDeps {
  store: ControlStore;
  directory: KeyDirectory;
  /** True when a key may name this route: a route of the running config, or a direct "provider/model". */
  isRoute(name: string): boolean;
  /** The routes to suggest when one is unknown. */
  routeNames(): string[];
  /** Epoch milliseconds. */
  now?: () => number;
}

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

export function keyView(key: KeyRecord, now: number): KeyView {
  return {
    id: key.id,
    object: 'api_key',
    name: key.name,
    prefix: key.prefix,
    status: keyStatus(key, now),
    orgId: key.orgId,
    teamId: key.teamId,
    admin: key.admin,
    routes: key.routes,
    priority: key.priority,
    tags: key.tags,
    createdAt: new Date(key.createdAt).toISOString(),
    expiresAt: iso(key.expiresAt),
    revokedAt: iso(key.revokedAt),
    rotatedAt: iso(key.rotatedAt),
  };
}

const notFound = (id: string) =>
  apiError('not_found', 404, `No key with id '${id}'. List keys with GET /admin/keys.`, {
    code: 'key_not_found',
  });

/**
 * The admin operations on virtual keys. Each checks what the store cannot (routes, times,
 * references), writes to the store, then puts the result in this node's directory so it is in
 * force before the response leaves.
 */
export function keyAdmin(deps: KeyAdminDeps) {
  const { store, directory } = deps;
  const now = deps.now ?? Date.now;

  const unknownRoute = (list: readonly string[] | null | undefined): ApiError | undefined => {
    const index = list?.findIndex((name) => !deps.isRoute(name)) ?? -1;
    if (!list || index < 0) return undefined;
    const known = deps.routeNames();
    return apiError(
      'invalid_request',
      400,
      `Unknown route '${list[index]}'. Routes of this gateway: ${known.join(', ') || '(none)'}.`,
      { code: 'unknown_route', param: `routes[${index}]` },
    );
  };

  /** The team and org a key belongs to, checked, with their names for the directory. */
  const placement = async (
    teamId: string | undefined,
    orgId: string | undefined,
  ): Promise<{ teamId: string | null; orgId: string | null; names: TenantNames } | ApiError> => {
    if (teamId !== undefined) {
      const team = await store.teams.get(teamId);
      if (!team) {
        return apiError('not_found', 404, `No team with id '${teamId}'. List teams with GET /admin/teams.`, {
          code: 'team_not_found',
          param: 'teamId',
        });
      }
      if (orgId !== undefined && orgId !== team.orgId) {
        return apiError(
          'invalid_request',
          400,
          `Team '${teamId}' belongs to org '${team.orgId}', not '${orgId}': leave orgId out, a key of a team is in the team's org.`,
          { code: 'team_not_in_org', param: 'orgId' },
        );
      }
      const org = await store.orgs.get(team.orgId);
      return { teamId, orgId: team.orgId, names: { team: team.name, org: org?.name ?? null } };
    }
    if (orgId !== undefined) {
      const org = await store.orgs.get(orgId);
      if (!org) {
        return apiError('not_found', 404, `No org with id '${orgId}'. List orgs with GET /admin/orgs.`, {
          code: 'org_not_found',
          param: 'orgId',
        });
      }
      return { teamId: null, orgId, names: { team: null, org: org.name } };
    }
    return { teamId: null, orgId: null, names: { team: null, org: null } };
  };

  const namesOf = async (key: KeyRecord): Promise<TenantNames> => ({
    team: key.teamId === null ? null : ((await store.teams.get(key.teamId))?.name ?? null),
    org: key.orgId === null ? null : ((await store.orgs.get(key.orgId))?.name ?? null),
  });

  const nameTaken = (name: string) =>
    apiError(
      'invalid_request',
      409,
      `A live key named '${name}' already exists in the same team (or org): pick another name, or revoke that key first.`,
      { code: 'key_name_taken', param: 'name' },
    );

  /** The key, or 404; with `live`, 409 when it is revoked. */
  const existing = async (id: string, live: boolean): Promise<KeyRecord | ApiError> => {
    const key = await store.keys.get(id);
    if (!key) return notFound(id);
    if (live && key.revokedAt !== null) {
      return apiError(
        'invalid_request',
        409,
        `Key '${id}' is revoked: a revoked key cannot change. Create a new key.`,
        {
          code: 'key_revoked',
        },
      );
    }
    return key;
  };

  return {
    async create(body: z.infer<typeof createKeyBody>): Promise<KeyWithSecret | ApiError> {
      const routeError = unknownRoute(body.routes);
      if (routeError) return routeError;
      const createdAt = now();
      const expires = body.expiresAt === undefined ? null : Date.parse(body.expiresAt);
      if (expires !== null && expires <= createdAt) {
        return apiError('invalid_request', 400, `expiresAt ${body.expiresAt} is not in the future.`, {
          code: 'expires_in_past',
          param: 'expiresAt',
        });
      }
      const place = await placement(body.teamId, body.orgId);
      if (isApiError(place)) return place;
      const { secret, digest, prefix } = newSecret();
      const record: KeyRecord = {
        id: `key_${randomBytes(8).toString('hex')}`,
        name: body.name,
        orgId: place.orgId,
        teamId: place.teamId,
        digest,
        prefix,
        admin: body.admin,
        routes: body.routes ?? null,
        priority: body.priority,
        tags: body.tags,
        createdAt,
        expiresAt: expires,
        revokedAt: null,
        rotatedAt: null,
      };
      const inserted = await store.keys.insert(record);
      if (inserted === 'conflict') return nameTaken(body.name);
      if (inserted === 'dangling') {
        return apiError(
          'not_found',
          404,
          'The team or org of this key was deleted while it was being created.',
          {
            code: body.teamId === undefined ? 'org_not_found' : 'team_not_found',
            param: body.teamId === undefined ? 'orgId' : 'teamId',
          },
        );
      }
      directory.put(inserted, place.names);
      return { ...keyView(inserted, createdAt), secret };
    },

    async list(query: z.infer<typeof keyListQuery>): Promise<KeyView[]> {
      const at = now();
      const keys = await store.keys.list({ teamId: query.teamId, orgId: query.orgId });
      return keys
        .map((key) => keyView(key, at))
        .filter((view) => !query.status || view.status === query.status);
    },

    async show(id: string): Promise<KeyView | ApiError> {
      const key = await existing(id, false);
      return isApiError(key) ? key : keyView(key, now());
    },

    async update(id: string, body: z.infer<typeof updateKeyBody>): Promise<KeyView | ApiError> {
      const key = await existing(id, true);
      if (isApiError(key)) return key;
      const routeError = unknownRoute(body.routes);
      if (routeError) return routeError;
      const updated = await store.keys.update(id, {
        name: body.name,
        routes: body.routes,
        admin: body.admin,
        priority: body.priority,
        tags: body.tags,
        expiresAt:
          body.expiresAt === undefined
            ? undefined
            : body.expiresAt === null
              ? null
              : Date.parse(body.expiresAt),
      });
      if (updated === 'conflict') return nameTaken(body.name ?? key.name);
      if (updated === 'missing' || updated === 'dangling') return notFound(id);
      directory.put(updated, await namesOf(updated));
      return keyView(updated, now());
    },

    /** A new secret for the key; the old one stops working at once on this node. */
    async rotate(id: string): Promise<KeyWithSecret | ApiError> {
      const key = await existing(id, true);
      if (isApiError(key)) return key;
      const at = now();
      if (keyStatus(key, at) === 'expired') {
        return apiError(
          'invalid_request',
          409,
          `Key '${id}' expired at ${iso(key.expiresAt)}: extend it first (PATCH /admin/keys/${id} with expiresAt), then rotate.`,
          { code: 'key_expired' },
        );
      }
      const { secret, digest, prefix } = newSecret();
      const updated = await store.keys.update(id, { digest, prefix, rotatedAt: at });
      if (typeof updated === 'string') return notFound(id);
      directory.put(updated, await namesOf(updated), key.digest);
      return { ...keyView(updated, at), secret };
    },

    /** Revokes the key for good; revoking a revoked key changes nothing. */
    async revoke(id: string): Promise<KeyView | ApiError> {
      const key = await existing(id, false);
      if (isApiError(key)) return key;
      if (key.revokedAt !== null) return keyView(key, now());
      const updated = await store.keys.update(id, { revokedAt: now() });
      if (typeof updated === 'string') return notFound(id);
      directory.put(updated, await namesOf(updated));
      return keyView(updated, now());
    },
  };
}

export type KeyAdmin = ReturnType<typeof keyAdmin>;
