import Fastify, {
  type FastifyBaseLogger,
  type FastifyError,
  type FastifyInstance,
  LogController,
} from 'fastify';
import { z } from 'zod';
import type { Analytics } from '../analytics/analytics.js';
import type { SluiceConfig } from '../config/schema.js';
import type { EventBusStats } from '../events/bus.js';
import { requestId } from '../events/request-id.js';
import { type CustomEventSink, discardCustomSink, type EventSink } from '../events/sink.js';
import { authenticate, authorizeAdmin } from '../gateway/admit.js';
import { flowHistoryDefaults, recordFlowHistory } from '../gateway/flow-history.js';
import { Gateway } from '../gateway/gateway.js';
import { BudgetDirectory } from '../policy/budget-directory.js';
import { KeyDirectory } from '../policy/key-directory.js';
import type { ControlStore } from '../store/control-store.js';
import { controlStoreFor } from '../store/open-control-store.js';
import { systemClock } from '../time/clock.js';
import { authenticateApi, registerAnalyticsRoutes } from './analytics-routes.js';
import { anthropicErrorBody, apiError, isApiError, openAIErrorBody } from './api-error.js';
import { registerBudgetAdminRoutes } from './budget-admin-routes.js';
import { registerConsole } from './console.js';
import { EVENTS_PATH, registerEventRoutes } from './events-routes.js';
import { frameworkError } from './framework-error.js';
import { registerGatewayRoutes } from './gateway-routes.js';
import { registerKeyAdminRoutes } from './key-admin-routes.js';
import { GatewayMetrics } from './metrics.js';
import { parseRequest } from './wire/invalid-request.js';

export interface GatewayServerOptions {
  config: SluiceConfig;
  sink: EventSink;
  logger: FastifyBaseLogger;
  simUrl?: string;
  loadConfig?: () => Promise<SluiceConfig>;
  /** The event bus's state, when events go through one (DuckDB, ClickHouse). */
  eventStats?: () => EventBusStats;
  /** Wall-clock epoch milliseconds, for cache and key expiry; tests pass a manual clock's. */
  now?: () => number;
  /** Keys, teams, orgs and budgets; default: the config's `store`. The server opens and closes it. */
  store?: ControlStore;
  /** Where POST /v1/events puts custom events; default: validated and discarded. */
  customEvents?: CustomEventSink;
  customEventStats?: () => EventBusStats;
  /** The built web console (default: dist/console); served at `/`. */
  consoleDir?: string;
  /** Queries over the stored events (/api), when the sink is DuckDB or ClickHouse. */
  analytics?: Analytics;
}

const errorBodyFor = (url: string) => (url.startsWith('/v1/messages') ? anthropicErrorBody : openAIErrorBody);

/** The gateway's HTTP server: the client API (/v1), health, metrics and the admin API. */
export function buildGatewayServer(options: GatewayServerOptions): {
  app: FastifyInstance;
  gateway: Gateway;
} {
  const { config } = options;
  const metrics = new GatewayMetrics();
  const store = options.store ?? controlStoreFor(config.store, config.dataDir);
  const keys = new KeyDirectory({
    store,
    refreshMs: config.auth.keyRefreshMs,
    now: options.now,
    onRefreshError: (error) =>
      options.logger.warn(
        { store: store.description, error: (error as Error).message },
        'virtual keys not refreshed: the control store is unavailable; the keys already loaded stay in force',
      ),
  });
  // Store budgets reload on the keys' interval: both are the control store's, seen alike.
  const storedBudgets = new BudgetDirectory({
    store,
    refreshMs: config.auth.keyRefreshMs,
    onRefreshError: (error) =>
      options.logger.warn(
        { store: store.description, error: (error as Error).message },
        'budgets not refreshed: the control store is unavailable; the budgets already loaded stay in force',
      ),
  });
  const gateway = new Gateway({ ...options, metrics, virtualKeys: keys, storedBudgets });
  metrics.watchFlow(gateway.flow);
  metrics.watchCache(() => gateway.cache);
  if (options.eventStats) metrics.watchEvents(options.eventStats);
  const app = Fastify({
    loggerInstance: options.logger,
    logController: new LogController({ disableRequestLogging: true }),
    genReqId: () => requestId(),
    bodyLimit: config.server.bodyLimitBytes,
    http: { maxHeaderSize: config.server.headerLimitBytes },
    requestTimeout: config.server.requestTimeoutMs,
    return503OnClosing: true,
  });
  app.removeContentTypeParser('text/plain');

  app.setErrorHandler((error: FastifyError, request, reply) => {
    const apiErr = frameworkError(error);
    if (apiErr.status >= 500) request.log.error({ err: error, reqId: request.id }, 'unhandled error');
    return reply
      .code(apiErr.status)
      .header('x-sluice-request-id', request.id)
      .send(errorBodyFor(request.url)(apiErr));
  });
  app.setNotFoundHandler((request, reply) => {
    const error = apiError(
      'not_found',
      404,
      `Unknown request URL: ${request.method} ${request.url.split('?')[0]}. The API is under /v1 (chat/completions, messages, embeddings, models).`,
      { code: 'unknown_url' },
    );
    return reply.code(404).send(errorBodyFor(request.url)(error));
  });

  // Authenticate before the body is read: a stranger cannot make us parse 10 MB.
  app.addHook('onRequest', async (request, reply) => {
    // The route matched, not the raw URL: the router decodes %-escapes, so "/%761/..." is "/v1/...".
    const path = request.routeOptions.url ?? request.url;
    // POST /v1/events authenticates on its own: it takes the admin key too (events-routes.ts).
    if (path.startsWith('/v1/') && path !== EVENTS_PATH) {
      const principal = authenticate(gateway.runtime, request.headers, request.raw.socket);
      if (isApiError(principal)) {
        // Refused calls are recorded too: a burst of 401s is worth seeing.
        const wire = path.startsWith('/v1/messages') ? 'anthropic' : 'openai';
        const operation = path.startsWith('/v1/embeddings') ? 'embeddings' : 'chat';
        const call = gateway.begin(wire, operation, { keyName: null }, request.id);
        call.error = principal;
        gateway.finish(call, principal.status);
        return reply
          .code(principal.status)
          .header('x-sluice-request-id', request.id)
          .send(errorBodyFor(path)(principal));
      }
      request.principal = principal;
    } else if (path.startsWith('/api/')) {
      // The admin key sees every event; a client key only its own (enforced in the query compiler).
      const viewer = authenticateApi(gateway.runtime, request.headers);
      if (isApiError(viewer)) return reply.code(viewer.status).send(openAIErrorBody(viewer));
      request.viewer = viewer;
    } else if (path.startsWith('/admin/')) {
      const allowed = authorizeAdmin(gateway.runtime, request.headers);
      if (allowed !== true) return reply.code(allowed.status).send(openAIErrorBody(allowed));
    }
  });

  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_request, reply) => {
    const { routes, providers } = gateway.runtime;
    if (routes.size === 0) {
      return reply.code(503).send({ status: 'not ready', reason: 'no routes are configured' });
    }
    return { status: 'ready', routes: routes.size, providers: providers.size };
  });
  app.get('/metrics', async (_request, reply) => {
    return reply.header('content-type', metrics.registry.contentType).send(await metrics.registry.metrics());
  });
  app.post('/admin/config/reload', async (_request, reply) => {
    if (!gateway.canReload) {
      const error = apiError(
        'invalid_request',
        409,
        'This gateway runs without a config file: nothing to reload.',
        {
          code: 'no_config_file',
        },
      );
      return reply.code(409).send(openAIErrorBody(error));
    }
    try {
      const runtime = await gateway.reload();
      return { reloaded: true, routes: [...runtime.routes.keys()], providers: [...runtime.providers.keys()] };
    } catch (error) {
      const apiErr = apiError(
        'invalid_request',
        400,
        `The config was not reloaded: ${(error as Error).message}`,
        {
          code: 'invalid_config',
        },
      );
      return reply.code(400).send(openAIErrorBody(apiErr));
    }
  });
  app.get('/admin/events', async () => ({
    sink: config.events.sink,
    bus: options.eventStats?.() ?? null,
    customBus: options.customEventStats?.() ?? null,
  }));
  app.get('/admin/flow', async () => ({
    enabled: gateway.flow.enabled,
    targets: gateway.flow.snapshot(),
    retryBudgets: gateway.flow.budgetSnapshot(),
    routes: Object.fromEntries(
      [...gateway.runtime.routes.values()].map((route) => [
        route.name,
        { targets: route.targets.map((t) => t.id), fallbacks: route.fallbacks.map((t) => t.id) },
      ]),
    ),
  }));
  const flowHistory = recordFlowHistory({ sample: () => gateway.flow.snapshot(), clock: systemClock });
  const maxHistorySeconds = (flowHistoryDefaults.intervalMs * flowHistoryDefaults.capacity) / 1000;
  const historyQuery = z.strictObject({
    seconds: z.coerce.number().int().min(1).max(maxHistorySeconds).default(maxHistorySeconds),
  });
  app.get('/admin/flow/history', async (request, reply) => {
    const query = parseRequest(historyQuery, request.query);
    if (!query.ok) return reply.code(400).send(openAIErrorBody(query.error));
    return flowHistory.read(query.data.seconds);
  });
  registerConsole(app, options.consoleDir);
  registerGatewayRoutes(app, gateway);
  registerAnalyticsRoutes(app, { analytics: options.analytics, sink: config.events.sink });
  registerEventRoutes(app, {
    gateway,
    sink: options.customEvents ?? discardCustomSink,
    maxBodyBytes: config.events.ingest.maxBodyBytes,
  });
  registerKeyAdminRoutes(app, { store, directory: keys, runtime: () => gateway.runtime });
  registerBudgetAdminRoutes(app, {
    store,
    directory: storedBudgets,
    configBudgets: () => gateway.runtime.config.budgets,
    status: (rules) => gateway.limits.status(rules),
  });
  // The store opens before the server listens: a gateway never serves without its keys.
  app.addHook('onReady', async () => {
    await store.open();
    await Promise.all([keys.start(), storedBudgets.start()]);
    options.logger.info(
      { store: store.description, keys: keys.size, budgets: storedBudgets.policy().budgets().length },
      'control store open',
    );
  });
  app.addHook('onClose', async () => {
    flowHistory.stop();
    keys.stop();
    storedBudgets.stop();
    await Promise.all([keys.settled(), storedBudgets.settled()]);
    await gateway.close();
    await store.close();
  });
  return { app, gateway };
}
