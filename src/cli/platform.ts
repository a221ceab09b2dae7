import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import type { SluiceConfig } from '../config/schema.js';
import { openEventPipeline } from '../events/event-sink.js';
import type { Gateway } from '../gateway/gateway.js';
import { buildGatewayServer } from '../http/gateway-server.js';
import type { RunningSimulator } from '../sim/server.js';

export interface RunningPlatform {
  /** Where clients and the console reach the gateway, e.g. http://127.0.0.1:7878. */
  url: string;
  app: FastifyInstance;
  gateway: Gateway;
  /** The in-process simulator, when a `sim` provider has no baseUrl. */
  sim?: RunningSimulator;
  /** Stops the gateway (draining requests in flight), then the simulator. */
  close(): Promise<void>;
}

export interface PlatformOptions {
  logger: FastifyBaseLogger;
  /** Reads the config file again, for reloads; absent when running without a file. */
  loadConfig?: () => Promise<SluiceConfig>;
  /** The built console to serve at `/` (default: dist/console). */
  consoleDir?: string;
}

/**
 * Everything `sluice up` runs, started and listening: the simulator when the config needs it, the
 * event pipeline, and the gateway's HTTP server. End-to-end tests start the same thing.
 */
export async function startPlatform(
  config: SluiceConfig,
  options: PlatformOptions,
): Promise<RunningPlatform> {
  const { logger } = options;
  const needsSim = Object.values(config.providers).some((p) => p.type === 'sim' && !p.baseUrl);
  // Imported only when used: the simulator (and its tokenizer tables) weighs ~80 MB of heap.
  const sim = needsSim
    ? await (await import('../sim/server.js')).startSimServer({ logger: logger.child({ component: 'sim' }) })
    : undefined;
  const events = await openEventPipeline(config, logger);
  const { app, gateway } = buildGatewayServer({
    config,
    sink: events.sink,
    eventStats: events.stats,
    logger,
    simUrl: sim?.url,
    loadConfig: options.loadConfig,
    consoleDir: options.consoleDir,
  });
  try {
    await app.listen({ host: config.server.host, port: config.server.port });
  } catch (error) {
    await app.close();
    await sim?.close();
    throw error;
  }
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : config.server.port;
  const host = config.server.host === '0.0.0.0' ? '127.0.0.1' : config.server.host;
  return {
    url: `http://${host}:${port}`,
    app,
    gateway,
    sim,
    close: async () => {
      await app.close();
      await sim?.close();
    },
  };
}
