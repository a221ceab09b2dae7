import { type SluiceConfig, type SluiceConfigInput, sluiceConfigSchema } from './schema.js';

/**
 * The platform `sluice up` runs without a config file: the built-in simulator as upstream, one
 * route per simulated model plus "default", and any provider whose key is in the environment,
 * reachable as "provider/model".
 */
export function defaultConfig(env: NodeJS.ProcessEnv = process.env): SluiceConfig {
  const providers: NonNullable<SluiceConfigInput['providers']> = { sim: { type: 'sim' } };
  if (env.OPENAI_API_KEY) providers.openai = { type: 'openai', apiKey: env.OPENAI_API_KEY };
  if (env.ANTHROPIC_API_KEY) providers.anthropic = { type: 'anthropic', apiKey: env.ANTHROPIC_API_KEY };
  if (env.GEMINI_API_KEY) providers.gemini = { type: 'gemini', apiKey: env.GEMINI_API_KEY };
  const simRoute = (model: string) => ({ targets: [{ provider: 'sim', model }] });
  return sluiceConfigSchema.parse({
    providers,
    routes: {
      default: {
        description: 'The fast simulated model, falling back to the smart one.',
        targets: [{ provider: 'sim', model: 'sim-fast' }],
        fallbacks: [{ provider: 'sim', model: 'sim-smart' }],
      },
      'sim-fast': simRoute('sim-fast'),
      'sim-smart': simRoute('sim-smart'),
      'sim-reasoner': simRoute('sim-reasoner'),
      'sim-embed': simRoute('sim-embed'),
    },
    directModels: true,
    auth: env.SLUICE_ADMIN_KEY ? { adminKey: env.SLUICE_ADMIN_KEY } : undefined,
  });
}
