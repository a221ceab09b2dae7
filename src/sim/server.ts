import Fastify, {
  type FastifyBaseLogger,
  type FastifyError,
  type FastifyInstance,
  LogController,
} from 'fastify';
import { anthropicErrorBody, apiError, openAIErrorBody } from '../http/api-error.js';
import { frameworkError } from '../http/framework-error.js';
import { type Clock, systemClock } from '../time/clock.js';
import { registerAnthropicRoutes } from './anthropic-routes.js';
import { resolveSimConfig, type SimConfigInput } from './config.js';
import { registerControlRoutes } from './control-routes.js';
import { registerGeminiRoutes } from './gemini-routes.js';
import { registerOpenAIRoutes } from './openai-routes.js';
import { Simulator } from './simulator.js';

export interface SimServerOptions {
  config?: SimConfigInput;
  clock?: Clock;
  logger?: FastifyBaseLogger;
}

/** The simulator's HTTP server: OpenAI (and Azure OpenAI), Anthropic and Gemini wire formats plus the /sim control API. */
export function buildSimServer(options: SimServerOptions = {}): { app: FastifyInstance; sim: Simulator } {
  const config = resolveSimConfig(options.config);
  const sim = new Simulator(config, options.clock ?? systemClock);
  const app = Fastify({
    bodyLimit: config.maxBodyBytes,
    loggerInstance: options.logger,
    // A load-testing upstream must not log every request.
    logController: new LogController({ disableRequestLogging: true }),
    return503OnClosing: true,
    forceCloseConnections: true,
  });
  // Only JSON bodies: Fastify's built-in text/plain parser would hand routes a string, which they
  // would reject as "not a JSON object" instead of naming the content type.
  app.removeContentTypeParser('text/plain');
  const bodyFor = (url: string) => (url.startsWith('/v1/messages') ? anthropicErrorBody : openAIErrorBody);
  app.setErrorHandler((error: FastifyError, request, reply) => {
    const apiErr = frameworkError(error);
    if (apiErr.status >= 500) request.log.error({ err: error }, 'simulator error');
    return reply.code(apiErr.status).send(bodyFor(request.url)(apiErr));
  });
  app.setNotFoundHandler((request, reply) => {
    const error = apiError(
      'not_found',
      404,
      `Unknown request URL: ${request.method} ${request.url}. Please check the URL for typos.`,
      { code: 'unknown_url' },
    );
    return reply.code(404).send(bodyFor(request.url)(error));
  });
  app.get('/healthz', async () => ({ status: 'ok' }));
  registerOpenAIRoutes(app, sim);
  registerAnthropicRoutes(app, sim);
  registerGeminiRoutes(app, sim);
  registerControlRoutes(app, sim);
  return { app, sim };
}

export interface RunningSimulator {
  url: string;
  port: number;
  sim: Simulator;
  app: FastifyInstance;
  close(): Promise<void>;
}

/** Starts the simulator on `host:port` (port 0 picks a free one). */
export async function startSimServer(
  options: SimServerOptions & { host?: string; port?: number } = {},
): Promise<RunningSimulator> {
  const { app, sim } = buildSimServer(options);
  await app.listen({ host: options.host ?? '127.0.0.1', port: options.port ?? 0 });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : (options.port ?? 0);
  const host = options.host && options.host !== '0.0.0.0' ? options.host : '127.0.0.1';
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    port,
    sim,
    app,
    close: () => app.close(),
  };
}
