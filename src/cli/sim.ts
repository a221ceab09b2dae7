import { pino } from 'pino';
import { ZodError } from 'zod';
import { loadSimConfigFile, type SimConfigInput } from '../sim/config.js';
import { type Command, intOption, UsageError } from './command.js';
import { describeConfigError, onShutdown } from './process.js';

export const simCommand: Command = {
  name: 'sim',
  summary:
    'Run the upstream simulator: a realistic LLM server (OpenAI and Anthropic APIs) for tests and load tests.',
  details: [
    'It queues when its slots are full, slows per token as its batch fills, enforces quotas with',
    'provider rate-limit headers, and misbehaves on a fault timeline or through POST /sim/faults.',
    'See docs/simulator.md for the serving model, the config and fault file formats, and examples.',
  ].join('\n'),
  options: {
    port: {
      type: 'string',
      short: 'p',
      value: 'N',
      default: '7979',
      description: 'Port to listen on (0 picks a free one).',
    },
    host: { type: 'string', value: 'addr', default: '127.0.0.1', description: 'Address to bind.' },
    seed: {
      type: 'string',
      value: 'N',
      description: 'Seed for content and fault rolls (config default: 42).',
    },
    slots: {
      type: 'string',
      value: 'N',
      description: 'Concurrent sequences per model, overriding the config.',
    },
    config: {
      type: 'string',
      short: 'c',
      value: 'file',
      description: 'Simulator config (YAML): models, quotas, faults.',
    },
    faults: {
      type: 'string',
      value: 'file',
      description: 'Fault timeline (YAML): a list of faults, or {faults: [...]}.',
    },
  },
  async run(values) {
    const port = intOption(values, 'port', { min: 0, max: 65535 }) ?? 7979;
    const seed = intOption(values, 'seed', { min: 0, max: 2 ** 32 - 1 });
    const slots = intOption(values, 'slots', { min: 1, max: 100_000 });
    const config: SimConfigInput = values.config ? await loadSimConfigFile(String(values.config)) : {};
    if (seed !== undefined) config.seed = seed;
    if (slots !== undefined) config.slots = slots;
    if (values.faults) {
      const file = (await loadSimConfigFile(String(values.faults))) as unknown;
      const faults = Array.isArray(file) ? file : (file as { faults?: unknown }).faults;
      if (!Array.isArray(faults))
        throw new UsageError(`${values.faults}: expected a list of faults or {faults: [...]}`);
      config.faults = [...(config.faults ?? []), ...(faults as NonNullable<SimConfigInput['faults']>)];
    }
    const logger = pino({ name: 'sluice-sim' });
    // Loaded here, not at the top: other commands start without the server.
    const { startSimServer } = await import('../sim/server.js');
    let running: Awaited<ReturnType<typeof startSimServer>>;
    try {
      running = await startSimServer({ config, host: String(values.host), port, logger });
    } catch (error) {
      if (error instanceof ZodError) throw new UsageError(describeConfigError(error, 'simulator config'));
      throw error;
    }
    const { sim } = running;
    logger.info(
      {
        url: running.url,
        seed: sim.config.seed,
        models: sim.models.map((m) => `${m.name}(${m.slots} slots)`),
      },
      `simulator listening on ${running.url}`,
    );
    onShutdown(logger, () => running.close());
  },
};
