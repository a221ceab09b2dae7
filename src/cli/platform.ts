import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import { analyticsSettings, createAnalytics } from '../analytics/analytics.js';
import { startMaintenanceJob } from '../analytics/maintenance-job.js';
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
  /** Stops analytics maintenance, the gateway (draining requests in flight), then the simulator. */
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
 * event pipeline and the analytics over it, and the gateway's HTTP server. End-to-end tests start
 * the same thing.
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
  const store = events.store;
  const analytics = store
    ? createAnalytics({
        reader: store,
        settings: analyticsSettings(config.events),
        open: () => store.open(),
      })
    : undefined;
  // Rollups and retention, in the background; every gateway may run it (the work is idempotent).
  const maintenance = analytics
    ? startMaintenanceJob({
        intervalMs: config.events.rollups.intervalMs,
        pass: async () => {
          const report = await analytics.maintain();
          logger.debug({ report }, 'analytics maintenance done');
        },
        onError: (error) =>
          logger.warn(
            { error: (error as Error).message },
            'analytics maintenance failed: retrying at the next interval',
          ),
      })
    : undefined;
  const { app, gateway } = buildGatewayServer({
    config,
    sink: events.sink,
    eventStats: events.stats,
    customEvents: events.custom,
    customEventStats: events.customStats,
    analytics,
    logger,
    simUrl: sim?.url,
    loadConfig: options.loadConfig,
    consoleDir: options.consoleDir,
  });
  try {
    await app.listen({ host: config.server.host, port: config.server.port });
  } catch (error) {
    await maintenance?.stop();
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
      await maintenance?.stop();
      await app.close();
      await sim?.close();
    },
  };
}
