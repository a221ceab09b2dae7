import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

/**
 * Tests that run the CLI run the compiled `dist/`: build it once, before any test file starts,
 * so no test sees a stale or half-written build.
 */
export default async function setup(): Promise<void> {
  await promisify(execFile)(
    process.execPath,
    ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.build.json'],
    {
      timeout: 180_000,
    },
  );
}
