import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ControlStore } from '../../src/store/control-store.js';
import { sqliteStore } from '../../src/store/sqlite-store.js';

/** Two handles on one SQLite file: this node's store, and another node writing to the same data. */
export interface TwoNodes {
  store: ControlStore;
  otherNode: ControlStore;
  /** Closes both handles and removes the file. */
  close(): Promise<void>;
}

export async function openTwoNodes(prefix: string): Promise<TwoNodes> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  const store = sqliteStore({ path: join(dir, 'control.db') });
  const otherNode = sqliteStore({ path: join(dir, 'control.db') });
  await store.open();
  await otherNode.open();
  return {
    store,
    otherNode,
    async close() {
      await store.close();
      await otherNode.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
