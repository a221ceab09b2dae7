import { afterAll, beforeAll } from 'vitest';
import type { RunningServer } from './process.js';

/**
 * A server (PostgreSQL, Redis, ClickHouse) started before the enclosing suite's tests and
 * stopped after them. Call it while the suite is declared; read the server inside a test.
 */
export function serverForSuite(start: () => Promise<RunningServer>): RunningServer {
  let server: RunningServer | undefined;
  beforeAll(async () => {
    server = await start();
  });
  afterAll(() => server?.stop());
  const started = (): RunningServer => {
    if (!server) throw new Error('The suite’s server starts in beforeAll: read it inside a test.');
    return server;
  };
  return {
    get url() {
      return started().url;
    },
    get port() {
      return started().port;
    },
    get dir() {
      return started().dir;
    },
    stop: () => started().stop(),
  };
}
