import type { FastifyInstance, FastifyReply } from 'fastify';
import { z } from 'zod';
import type { Analytics } from '../analytics/analytics.js';
import type { Scope } from '../analytics/query.js';
import { authenticate, isAdmin, presentedKey } from '../gateway/admit.js';
import type { Principal } from '../gateway/call.js';
import type { Runtime } from '../gateway/runtime.js';
import { type ApiError, apiError, isApiError, openAIErrorBody } from './api-error.js';
import { parseRequest } from './wire/invalid-request.js';

/** Who called /api: the admin (every event) or a client key (only its own events). */
export type ApiViewer = { admin: true } | { admin: false; principal: Principal };

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by the authentication hook on /api routes. */
    viewer?: ApiViewer;
  }
}

/**
 * /api authentication: the admin key, or a client API key. A client key must name a tenant (a
 * key id or name): when the client API is open (no keys configured) there is none, so only the
 * admin key gets in.
 */
export function authenticateApi(
  runtime: Runtime,
  headers: Record<string, string | string[] | undefined>,
): ApiViewer | ApiError {
  if (isAdmin(runtime, headers)) return { admin: true };
  if (!presentedKey(headers)) {
    return apiError(
      'authentication',
      401,
      'The analytics API needs a key: send the admin key or an API key as "Authorization: Bearer <key>".',
      { code: 'missing_api_key' },
    );
  }
  const principal = authenticate(runtime, headers);
  if (isApiError(principal)) return principal;
  if (principal.keyName === null && !principal.keyId) {
    return apiError('authentication', 401, 'Invalid API key: check the key or ask an admin for a new one.', {
      code: 'invalid_api_key',
    });
  }
  return { admin: false, principal };
}

function scopeOf(viewer: ApiViewer): Scope {
  if (viewer.admin) return { kind: 'all' };
  const { principal } = viewer;
  return { kind: 'key', keyId: principal.keyId ?? null, keyName: principal.keyName };
}

type ParamKind = 'text' | 'int' | 'bool' | 'list';

/** The named parameters of each endpoint; every other parameter is a filter by dimension. */
export type ParamKinds = Record<string, ParamKind>;
const selectionParams = { from: 'text', to: 'text', errors_only: 'bool' } as const;
export const endpointParams = {
  timeseries: { ...selectionParams, step: 'text', metrics: 'list', groupBy: 'text', limit: 'int' },
  breakdown: { ...selectionParams, by: 'text', metrics: 'list', limit: 'int' },
  summary: { ...selectionParams, metrics: 'list' },
  requests: { ...selectionParams, limit: 'int', cursor: 'text' },
} as const satisfies Record<string, Record<string, ParamKind>>;

const paramNames: Record<string, string> = { errors_only: 'errorsOnly' };

/**
 * A query string as the query model: `metrics=a,b`, `limit=20`, `errors_only=true`, and
 * `route=chat&route=other` (repeated = IN) for any dimension. Types are left to the schema's
 * messages, except that a named parameter given twice is refused here.
 */
export function queryFromParams(
  raw: Record<string, string | string[] | undefined>,
  known: Record<string, ParamKind>,
): Record<string, unknown> | ApiError {
  const query: Record<string, unknown> = {};
  const filters: Record<string, string[]> = {};
  for (const [name, value] of Object.entries(raw)) {
    if (value === undefined) continue;
    const values = Array.isArray(value) ? value : [value];
    const kind = known[name];
    if (!kind) {
      filters[name] = values;
      continue;
    }
    if (kind === 'list') {
      query[name] = values
        .flatMap((item) => item.split(','))
        .map((item) => item.trim())
        .filter(Boolean);
      continue;
    }
    if (values.length > 1) {
      return apiError('invalid_request', 400, `'${name}' was given ${values.length} times; give it once.`, {
        param: name,
        code: 'duplicate_parameter',
      });
    }
    const text = values[0] as string;
    const key = paramNames[name] ?? name;
    if (kind === 'int') query[key] = /^\d{1,9}$/.test(text) ? Number(text) : text;
    else if (kind === 'bool')
      query[key] = text === 'true' || text === '1' ? true : text === 'false' || text === '0' ? false : text;
    else query[key] = text;
  }
  if (Object.keys(filters).length > 0) query.filters = filters;
  return query;
}

const sqlBodySchema = z.strictObject({ sql: z.string().min(1).describe('One SELECT or WITH statement.') });

function send(reply: FastifyReply, result: unknown): unknown {
  if (isApiError(result)) return reply.code(result.status).send(openAIErrorBody(result));
  return result;
}

/**
 * The analytics API (docs/analytics.md, "Queries"): time series, breakdowns, summaries, the
 * request list and detail, and read-only SQL for the admin. Authentication is the /api hook in
 * gateway-server.ts; every query carries the caller's scope, injected by the compiler.
 */
export function registerAnalyticsRoutes(
  app: FastifyInstance,
  options: { analytics?: Analytics; sink: string },
): void {
  const unavailable = apiError(
    'overloaded',
    503,
    `Analytics needs events.sink duckdb or clickhouse; this gateway sends events to "${options.sink}".`,
    { code: 'analytics_unavailable' },
  );
  const viewerOf = (request: { viewer?: ApiViewer }): ApiViewer => {
    if (!request.viewer) throw new Error('an /api route ran without the authentication hook');
    return request.viewer;
  };

  app.get('/api/whoami', async (request) => {
    const viewer = viewerOf(request);
    if (viewer.admin) return { admin: true, keyName: null, keyId: null, team: null, org: null };
    const { principal } = viewer;
    return {
      admin: false,
      keyName: principal.keyName,
      keyId: principal.keyId ?? null,
      team: principal.team ?? null,
      org: principal.org ?? null,
    };
  });

  for (const endpoint of ['timeseries', 'breakdown', 'summary'] as const) {
    app.get(`/api/analytics/${endpoint}`, async (request, reply) => {
      const { analytics } = options;
      if (!analytics) return send(reply, unavailable);
      const query = queryFromParams(
        request.query as Record<string, string | string[]>,
        endpointParams[endpoint],
      );
      if (isApiError(query)) return send(reply, query);
      const scope = scopeOf(viewerOf(request));
      return send(reply, await analytics[endpoint](query as never, scope));
    });
  }

  app.get('/api/requests', async (request, reply) => {
    const { analytics } = options;
    if (!analytics) return send(reply, unavailable);
    const query = queryFromParams(
      request.query as Record<string, string | string[]>,
      endpointParams.requests,
    );
    if (isApiError(query)) return send(reply, query);
    return send(reply, await analytics.requests(query as never, scopeOf(viewerOf(request))));
  });

  app.get('/api/requests/:id', async (request, reply) => {
    const { analytics } = options;
    if (!analytics) return send(reply, unavailable);
    const { id } = request.params as { id: string };
    return send(reply, await analytics.request(id, scopeOf(viewerOf(request))));
  });

  app.post('/api/sql', async (request, reply) => {
    if (!viewerOf(request).admin) {
      return send(
        reply,
        apiError('permission', 403, 'SQL is for the admin key only; client keys use /api/analytics.', {
          code: 'admin_required',
        }),
      );
    }
    const { analytics } = options;
    if (!analytics) return send(reply, unavailable);
    const body = parseRequest(sqlBodySchema, request.body);
    if (!body.ok) return send(reply, body.error);
    return send(reply, await analytics.sql(body.data.sql));
  });
}
