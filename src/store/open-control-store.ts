import { join } from 'node:path';
import type { ControlStore } from './control-store.js';
import { postgresStore } from './postgres-store.js';
import { sqliteStore } from './sqlite-store.js';

export type ControlStoreOptions =
  | { type: 'sqlite'; path?: string }
  | { type: 'postgres'; url: string; maxConnections?: number };

/** The configured control store (not yet opened): SQLite under the data dir unless told otherwise. */
export function controlStoreFor(options: ControlStoreOptions, dataDir: string): ControlStore {
  return options.type === 'postgres'
    ? postgresStore(options)
    : sqliteStore({ path: options.path ?? join(dataDir, 'control.db') });
}
