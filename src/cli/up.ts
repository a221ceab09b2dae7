import { pino } from 'pino';
import { analyticsSettings, createAnalytics } from '../analytics/analytics.js';
import { startMaintenanceJob } from '../analytics/maintenance-job.js';
import { defaultConfig } from '../config/defaults.js';
import { ConfigError, formatConfigProblems, loadConfigFile } from '../config/load.js';
import type { SluiceConfig } from '../config/schema.js';
import { openEventPipeline } from '../events/event-sink.js';
import { buildGatewayServer } from '../http/gateway-server.js';
import { type Command, intOption, UsageError } from './command.js';

export const upCommand: Command = {
  name: 'up',
  summary: 'Run the gateway: one OpenAI- and Anthropic-compatible API over every configured provider.',
  details: [
    'Without --config (and no ./sluice.yaml), it starts the built-in simulator as its upstream with the',
    'routes default, sim-fast, sim-smart, sim-reasoner and sim-embed, plus OpenAI, Anthropic and Gemini',
    'as "provider/model" when OPENAI_API_KEY, ANTHROPIC_API_KEY or GEMINI_API_KEY is set.',
    'SIGHUP reloads the config file; SIGTERM drains in-flight requests, then exits.',
    'See docs/configuration.md.',
  ].join('\n'),
  options: {
    config: {
      type: 'string',
      short: 'c',
      value: 'file',
      description: 'The platform file (default: ./sluice.yaml if present).',
    },
    port: {
      type: 'string',
      short: 'p',
      value: 'N',
      description: 'Port, overriding server.port (default 7878).',
    },
    host: { type: 'string', value: 'addr', description: 'Address to bind, overriding server.host.' },
    'log-level': {
      type: 'string',
      value: 'level',
      description: 'fatal, error, warn, info, debug, trace or silent.',
    },
  },
  async run(values) {
    const { existsSync } = await import('node:fs');
    const file = values.config
      ? String(values.config)
      : existsSync('sluice.yaml')
        ? 'sluice.yaml'
        : undefined;
    const load = async (): Promise<SluiceConfig> => {
      const config = file ? await loadConfigFile(file) : defaultConfig();
      const port = intOption(values, 'port', { min: 0, max: 65_535 });
      if (port !== undefined) config.server.port = port;
      if (values.host) config.server.host = String(values.host);
      if (values['log-level']) config.logLevel = String(values['log-level']) as SluiceConfig['logLevel'];
      return config;
    };
    let config: SluiceConfig;
    try {
      config = await load();
    } catch (error) {
      if (error instanceof ConfigError)
        throw new UsageError(`${file} is invalid:\n${formatConfigProblems(error.problems)}`);
      throw error;
    }
    const logger = pino({ name: 'sluice', level: config.logLevel });
    const needsSim = Object.values(config.providers).some((p) => p.type === 'sim' && !p.baseUrl);
    // Imported only when used: the simulator (and its tokenizer tables) weighs ~80 MB of heap.
    const sim = needsSim
      ? await (await import('../sim/server.js')).startSimServer({
          logger: logger.child({ component: 'sim' }),
        })
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
      analytics,
      logger,
      simUrl: sim?.url,
      loadConfig: file ? load : undefined,
    });
    await app.listen({ host: config.server.host, port: config.server.port });
    const address = app.server.address();
    const port = typeof address === 'object' && address ? address.port : config.server.port;
    const url = `http://${config.server.host === '0.0.0.0' ? '127.0.0.1' : config.server.host}:${port}`;
    logger.info(
      { url, config: file ?? '(built-in: simulator upstream)', routes: [...gateway.runtime.routes.keys()] },
      'sluice is up',
    );
    if (config.auth.apiKeys.length === 0)
      logger.warn('no auth.apiKeys configured: the client API is open to anyone who can reach it');
    process.stderr.write(quickStart(url, [...gateway.runtime.routes.keys()]));

    process.on('SIGHUP', () => {
      if (!file) return logger.warn('SIGHUP ignored: running without a config file');
      gateway.reload().catch((error: unknown) => {
        const detail =
          error instanceof ConfigError ? formatConfigProblems(error.problems) : (error as Error).message;
        logger.error({ detail }, 'reload failed: keeping the running configuration');
      });
    });
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) process.exit(1);
      stopping = true;
      logger.info({ signal, graceMs: config.server.shutdownGraceMs }, 'draining in-flight requests');
      const force = setTimeout(() => {
        logger.warn('shutdown grace period over: closing remaining connections');
        app.server.closeAllConnections();
      }, config.server.shutdownGraceMs);
      force.unref();
      // Connections that go idle after their last stream would hold the exit until the grace ends.
      setInterval(() => app.server.closeIdleConnections(), 100).unref();
      Promise.resolve(maintenance?.stop())
        .then(() => app.close())
        .then(() => sim?.close())
        .then(
          () => process.exit(0),
          (error: unknown) => {
            logger.error({ err: error }, 'shutdown failed');
            process.exit(1);
          },
        );
    };
    process.on('SIGINT', () => stop('SIGINT'));
    process.on('SIGTERM', () => stop('SIGTERM'));
  },
};

function quickStart(url: string, routes: string[]): string {
  const model = routes.includes('default') ? 'default' : (routes[0] ?? 'default');
  return `
  Sluice is up at ${url}   (routes: ${routes.join(', ')})

  curl ${url}/v1/chat/completions -H 'content-type: application/json' \\
    -d '{"model":"${model}","messages":[{"role":"user","content":"What is 12 + 30?"}]}'

  OpenAI SDK:     new OpenAI({ baseURL: '${url}/v1', apiKey: '<your key>' })
  Anthropic SDK:  new Anthropic({ baseURL: '${url}', apiKey: '<your key>' })

`;
}
