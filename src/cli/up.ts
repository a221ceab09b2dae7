import { pino } from 'pino';
import { defaultConfig } from '../config/defaults.js';
import { ConfigError, formatConfigProblems, loadConfigFile } from '../config/load.js';
import type { SluiceConfig } from '../config/schema.js';
import type { DemoTraffic } from '../sim/demo-traffic.js';
import { type Command, intOption, UsageError } from './command.js';
import { type Demo, demoBanner, demoConfig } from './demo.js';

export const upCommand: Command = {
  name: 'up',
  summary: 'Run the gateway: one OpenAI- and Anthropic-compatible API over every configured provider.',
  details: [
    'Without --config (and no ./sluice.yaml), it starts the built-in simulator as its upstream with the',
    'routes default, sim-fast, sim-smart, sim-reasoner and sim-embed, plus OpenAI, Anthropic and Gemini',
    'as "provider/model" when OPENAI_API_KEY, ANTHROPIC_API_KEY or GEMINI_API_KEY is set.',
    'The web console is served at / (sign in with auth.adminKey, e.g. $SLUICE_ADMIN_KEY).',
    '--demo runs that built-in platform with sample traffic, so the console has something to show.',
    'SIGHUP reloads the config file; SIGTERM drains in-flight requests, then exits.',
    'See docs/configuration.md and docs/console.md.',
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
    demo: {
      type: 'boolean',
      description: 'Send steady sample traffic (with the odd fault) through the built-in simulator.',
    },
  },
  async run(values) {
    const { existsSync } = await import('node:fs');
    const demo: Demo | undefined = values.demo ? demoConfig() : undefined;
    if (demo && values.config) {
      throw new UsageError('--demo runs the built-in simulator platform: leave out --config.');
    }
    const file = demo
      ? undefined
      : values.config
        ? String(values.config)
        : existsSync('sluice.yaml')
          ? 'sluice.yaml'
          : undefined;
    const load = async (): Promise<SluiceConfig> => {
      const config = file ? await loadConfigFile(file) : (demo?.config ?? defaultConfig());
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
    // Loaded here, not at the top: every other command (`sluice keys list`) starts without them.
    const { startPlatform } = await import('./platform.js');
    const logger = pino({ name: 'sluice', level: config.logLevel });
    if (demo && existsSync('sluice.yaml'))
      logger.warn('--demo runs the built-in simulator platform: ./sluice.yaml is not read');
    const platform = await startPlatform(config, { logger, loadConfig: file ? load : undefined });
    const { url, gateway } = platform;
    const routes = [...gateway.runtime.routes.keys()];
    logger.info(
      { url, config: file ?? (demo ? '(built-in, demo)' : '(built-in: simulator upstream)'), routes },
      'sluice is up',
    );
    let traffic: DemoTraffic | undefined;
    if (demo) {
      const { startDemoTraffic } = await import('../sim/demo-traffic.js');
      traffic = startDemoTraffic({
        gatewayUrl: url,
        simUrl: platform.sim?.url,
        callers: demo.callers,
        onError: (error) =>
          logger.warn({ err: error.message }, 'demo traffic: a request did not get through'),
      });
      process.stderr.write(demoBanner(url, demo));
    } else {
      if (config.auth.apiKeys.length === 0 && gateway.runtime.virtualKeys.size === 0)
        logger.warn(
          'no API keys (auth.apiKeys or `sluice keys create`): the client API is open to anyone who can reach it',
        );
      process.stderr.write(quickStart(url, routes, config.auth.adminKey !== undefined));
    }

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
        platform.app.server.closeAllConnections();
      }, config.server.shutdownGraceMs);
      force.unref();
      // Connections that go idle after their last stream would hold the exit until the grace ends.
      setInterval(() => platform.app.server.closeIdleConnections(), 100).unref();
      Promise.resolve(traffic?.stop())
        .then(() => platform.close())
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

function quickStart(url: string, routes: string[], hasAdminKey: boolean): string {
  const model = routes.includes('default') ? 'default' : (routes[0] ?? 'default');
  const consoleLine = hasAdminKey
    ? `Console:        ${url}/   (sign in with the admin key)`
    : `Console:        ${url}/   (to sign in, restart with SLUICE_ADMIN_KEY=<a key of 16+ characters>)`;
  return `
  Sluice is up at ${url}   (routes: ${routes.join(', ')})

  curl ${url}/v1/chat/completions -H 'content-type: application/json' \\
    -d '{"model":"${model}","messages":[{"role":"user","content":"What is 12 + 30?"}]}'

  OpenAI SDK:     new OpenAI({ baseURL: '${url}/v1', apiKey: '<your key>' })
  Anthropic SDK:  new Anthropic({ baseURL: '${url}', apiKey: '<your key>' })
  ${consoleLine}

  New here? \`npm start -- --demo\` (or \`sluice up --demo\`) sends sample traffic for the console to show.

`;
}
