import { existsSync } from 'node:fs';
import { DuckDBInstance } from '@duckdb/node-api';
import { duckdbQuery } from './duckdb-query.js';
import type { EventReader } from './event-reader.js';

/**
 * An events file opened read-only, for `sluice query --data-dir` while no gateway runs. DuckDB
 * lets one process write a file, or many read it: a running gateway holds it, and this says so.
 */
export async function openDuckDBFile(path: string): Promise<EventReader & { close(): void }> {
  if (!existsSync(path))
    throw new Error(`no events file at ${path}: has a gateway with events.sink duckdb run here?`);
  let instance: DuckDBInstance;
  try {
    instance = await DuckDBInstance.create(path, {
      access_mode: 'READ_ONLY',
      enable_external_access: 'false',
    });
  } catch (error) {
    const message = (error as Error).message;
    if (/lock/i.test(message)) {
      throw new Error(
        `${path} is open in a running gateway (${message.replace(/^.*?(Conflicting lock[^\n]*).*$/s, '$1')}). Query through it with --url, or stop it first.`,
      );
    }
    throw error;
  }
  return {
    engine: 'duckdb',
    async query(statement, limits) {
      const connection = await instance.connect();
      try {
        return await duckdbQuery(connection, statement, limits);
      } finally {
        connection.closeSync();
      }
    },
    async execute() {
      throw new Error(`${path} is open read-only`);
    },
    close() {
      instance.closeSync();
    },
  };
}
