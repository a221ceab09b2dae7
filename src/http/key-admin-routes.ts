import type { FastifyInstance, FastifyReply } from 'fastify';
import type { z } from 'zod';
import { directRoute } from '../gateway/resolve.js';
import type { Runtime } from '../gateway/runtime.js';
import type { KeyDirectory } from '../policy/key-directory.js';
import { createKeyBody, keyAdmin, keyListQuery, updateKeyBody } from '../policy/keys.js';
import { createOrgBody, createTeamBody, teamListQuery, tenantAdmin } from '../policy/tenants.js';
import type { ControlStore } from '../store/control-store.js';
import { type ApiError, apiError, isApiError, openAIErrorBody } from './api-error.js';
import { invalidRequestFromIssues, parseRequest } from './wire/invalid-request.js';

export interface KeyAdminRouteDeps {
  store: ControlStore;
  directory: KeyDirectory;
  /** The running config's routes, which keys may be scoped to. */
  runtime(): Runtime;
}

type IdParams = { Params: { id: string } };

/** Query parameters, checked like a body; an unknown one is named with the ones allowed. */
function parseQuery<S extends z.ZodObject>(
  schema: S,
  query: unknown,
): { ok: true; data: z.infer<S> } | { ok: false; error: ApiError } {
  const result = schema.safeParse(query ?? {}, { reportInput: true });
  if (result.success) return { ok: true, data: result.data };
  const issue = result.error.issues[0];
  if (issue?.code === 'unrecognized_keys') {
    const name = String(issue.keys[0]);
    return {
      ok: false,
      error: apiError(
        'invalid_request',
        400,
        `Unknown query parameter '${name}': use ${Object.keys(schema.shape).join(', ')}.`,
        { code: 'unknown_parameter', param: name },
      ),
    };
  }
  return { ok: false, error: invalidRequestFromIssues(result.error.issues) };
}

/**
 * The admin API for tenants and virtual keys: /admin/orgs, /admin/teams, /admin/keys. The
 * server's hook has already checked the caller is an admin (admin key or admin-scoped key).
 */
export function registerKeyAdminRoutes(app: FastifyInstance, deps: KeyAdminRouteDeps): void {
  const keys = keyAdmin({
    store: deps.store,
    directory: deps.directory,
    isRoute: (name) => {
      const runtime = deps.runtime();
      return (
        runtime.routes.has(name) || (runtime.config.directModels && directRoute(runtime, name) !== undefined)
      );
    },
    routeNames: () => [...deps.runtime().routes.keys()],
  });
  const tenants = tenantAdmin({ store: deps.store });

  const send = (reply: FastifyReply, result: unknown, status = 200) =>
    isApiError(result)
      ? reply.code(result.status).send(openAIErrorBody(result))
      : reply.code(status).send(result);
  const list = (data: unknown[]) => ({ object: 'list', data });

  app.post('/admin/keys', async (request, reply) => {
    const body = parseRequest(createKeyBody, request.body);
    if (!body.ok) return send(reply, body.error);
    return send(reply, await keys.create(body.data), 201);
  });
  app.get('/admin/keys', async (request, reply) => {
    const query = parseQuery(keyListQuery, request.query);
    if (!query.ok) return send(reply, query.error);
    return send(reply, list(await keys.list(query.data)));
  });
  app.get<IdParams>('/admin/keys/:id', async (request, reply) =>
    send(reply, await keys.show(request.params.id)),
  );
  app.patch<IdParams>('/admin/keys/:id', async (request, reply) => {
    const body = parseRequest(updateKeyBody, request.body);
    if (!body.ok) return send(reply, body.error);
    return send(reply, await keys.update(request.params.id, body.data));
  });
  app.post<IdParams>('/admin/keys/:id/rotate', async (request, reply) =>
    send(reply, await keys.rotate(request.params.id)),
  );
  app.post<IdParams>('/admin/keys/:id/revoke', async (request, reply) =>
    send(reply, await keys.revoke(request.params.id)),
  );

  app.post('/admin/orgs', async (request, reply) => {
    const body = parseRequest(createOrgBody, request.body);
    if (!body.ok) return send(reply, body.error);
    return send(reply, await tenants.createOrg(body.data), 201);
  });
  app.get('/admin/orgs', async (_request, reply) => send(reply, list(await tenants.listOrgs())));
  app.get<IdParams>('/admin/orgs/:id', async (request, reply) =>
    send(reply, await tenants.showOrg(request.params.id)),
  );
  app.delete<IdParams>('/admin/orgs/:id', async (request, reply) =>
    send(reply, await tenants.deleteOrg(request.params.id)),
  );

  app.post('/admin/teams', async (request, reply) => {
    const body = parseRequest(createTeamBody, request.body);
    if (!body.ok) return send(reply, body.error);
    return send(reply, await tenants.createTeam(body.data), 201);
  });
  app.get('/admin/teams', async (request, reply) => {
    const query = parseQuery(teamListQuery, request.query);
    if (!query.ok) return send(reply, query.error);
    return send(reply, list(await tenants.listTeams(query.data)));
  });
  app.get<IdParams>('/admin/teams/:id', async (request, reply) =>
    send(reply, await tenants.showTeam(request.params.id)),
  );
  app.delete<IdParams>('/admin/teams/:id', async (request, reply) =>
    send(reply, await tenants.deleteTeam(request.params.id)),
  );
}
