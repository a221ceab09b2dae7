import Fastify, {
  type FastifyBaseLogger,
  type FastifyError,
  type FastifyInstance,
  LogController,
} from 'fastify';
import { type ApiError, anthropicErrorBody, apiError, openAIErrorBody } from '../http/api-error.js';
import { type Clock, systemClock } from '../time/clock.js';
import { registerAnthropicRoutes } from './anthropic-routes.js';
import { resolveSimConfig, type SimConfigInput } from './config.js';
import { registerControlRoutes } from './control-routes.js';
import { registerOpenAIRoutes } from './openai-routes.js';
import { Simulator } from './simulator.js';

export interface SimServerOptions {
  config?: SimConfigInput;
  clock?: Clock;
  logger?: FastifyBaseLogger;
}

/** Maps framework errors (bad JSON, body too large, wrong content type) to a provider-style client error. */
function frameworkError(error: FastifyError): ApiError {
  switch (error.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return apiError('too_large', 413, `The request body is too large: ${error.message}.`, {
        code: 'request_too_large',
      });
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return apiError(
        'invalid_request',
        415,
        'Unsupported Content-Type: send the body as application/json.',
        {
          code: 'unsupported_media_type',
        },
      );
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return apiError('invalid_request', 400, 'The request body is empty: send a JSON object.', {
        code: 'invalid_body',
      });
    default:
      if (error.statusCode === 400 || error instanceof SyntaxError) {
        return apiError(
          'invalid_request',
          400,
          `We could not parse the JSON body of your request: ${error.message}. Send valid JSON with Content-Type: application/json.`,
          { code: 'invalid_json' },
        );
      }
      if (error.statusCode && error.statusCode >= 400 && error.statusCode < 500) {
        return apiError('invalid_request', error.statusCode, error.message, { code: null });
      }
      return apiError('server_error', 500, 'The simulator failed while processing the request.', {
        code: 'internal_error',
      });
  }
}

/** The simulator's HTTP server: OpenAI and Anthropic wire formats plus the /sim control API. */
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
