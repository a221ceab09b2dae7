import { randomBytes } from 'node:crypto';
import { defaultConfig } from '../config/defaults.js';
import type { SluiceConfig } from '../config/schema.js';
import { limitAlgorithmSchema } from '../flow/limit-algorithms.js';
import { type DemoCaller, demoCallers } from '../sim/demo-traffic.js';

export interface Demo {
  config: SluiceConfig;
  callers: DemoCaller[];
  /** Whether the admin key was made up for this run (not from SLUICE_ADMIN_KEY), so it must be shown. */
  generatedAdminKey: boolean;
}

const secret = (prefix: string) => `${prefix}-${randomBytes(12).toString('base64url')}`;

/**
 * The platform `sluice up --demo` runs: the built-in one (simulator upstream), with an admin key
 * for the console and one API key per demo caller, each made up for this run.
 */
export function demoConfig(env: NodeJS.ProcessEnv = process.env): Demo {
  const config = defaultConfig(env);
  const callers = demoCallers({
    'web-app': secret('sk-demo-web'),
    'support-bot': secret('sk-demo-support'),
    search: secret('sk-demo-search'),
    'nightly-batch': secret('sk-demo-batch'),
  });
  const adminKey = env.SLUICE_ADMIN_KEY || secret('sk-demo-admin');
  config.auth = {
    ...config.auth,
    adminKey,
    apiKeys: callers.map((c) => ({ name: c.name, key: c.key, priority: c.priority })),
  };
  // A small limit and a short queue in front of the slow reasoner, so the batch bursts are
  // queued and partly shed, which the Routes and targets page shows.
  config.flow.queue.maxQueue = 40;
  for (const target of config.routes['sim-reasoner']?.targets ?? []) {
    target.limit = limitAlgorithmSchema.parse({ algorithm: 'gradient2', initialLimit: 6, maxLimit: 12 });
  }
  return { config, callers, generatedAdminKey: !env.SLUICE_ADMIN_KEY };
}

/** What to print once the demo is up: where the console is and the keys to sign in with. */
export function demoBanner(url: string, demo: Demo): string {
  const admin = demo.config.auth.adminKey;
  const keyLines = demo.callers.map((c) => `    ${c.name.padEnd(14)} ${c.key}`).join('\n');
  return `
  Sluice demo is up: sample traffic is flowing through the built-in simulator,
  with a fault now and then and an occasional burst of batch work.

  Console:  ${url}/
  Admin key (sees everything):  ${demo.generatedAdminKey ? admin : '$SLUICE_ADMIN_KEY'}

  API keys (each sees only its own requests in the console):
${keyLines}

  curl ${url}/v1/chat/completions -H 'authorization: Bearer ${demo.callers[0]?.key}' \\
    -H 'content-type: application/json' \\
    -d '{"model":"default","messages":[{"role":"user","content":"What is 12 + 30?"}]}'

  These keys are made up for this run only. Stop with Ctrl-C.

`;
}
