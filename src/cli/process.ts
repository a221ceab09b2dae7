import type { Logger } from 'pino';
import type { ZodError } from 'zod';
import { paramPath } from '../http/wire/invalid-request.js';

/** Closes cleanly on SIGINT/SIGTERM; a second signal exits at once. */
export function onShutdown(logger: Logger, close: () => Promise<void>): void {
  let closing = false;
  const stop = (signal: string): void => {
    if (closing) process.exit(1);
    closing = true;
    logger.info({ signal }, 'shutting down');
    close().then(
      () => process.exit(0),
      (error: unknown) => {
        logger.error({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

/** One line per problem: "models[0].slots: Too small: expected number to be >=1". */
export function describeConfigError(error: ZodError, what: string): string {
  const lines = error.issues.map((issue) => `  ${paramPath(issue.path) || '(top level)'}: ${issue.message}`);
  return `invalid ${what}:\n${lines.join('\n')}`;
}
