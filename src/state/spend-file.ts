import { mkdirSync, readFileSync } from 'node:fs';
import { rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { MemoryState, type SpendSnapshot } from './memory-state.js';
import type { SharedState } from './shared-state.js';

export interface SpendFileOptions {
  /** e.g. <dataDir>/spend.json */
  file: string;
  /** How often settled spend is written when it changed. */
  everyMs: number;
  /** Epoch milliseconds: counters whose period is over are neither written nor read back. */
  now: () => number;
  /** A periodic write failed; the next one tries again. */
  onError: (error: Error) => void;
}

/**
 * A MemoryState whose settled spend survives a restart of its single node: read once at start,
 * written every `everyMs` when it changed and on close. Each write goes to a temp file that is
 * then renamed, so a crash mid-write leaves the previous file whole. A crash (not a clean stop)
 * loses the spend settled since the last write: at most `everyMs` of it. Holds are not kept:
 * their requests died with the process.
 */
export function memoryStateWithSpendFile(options: SpendFileOptions): SharedState {
  const state = new MemoryState();
  state.restore(readSpend(options.file), options.now());
  let written = state.version;
  let writing: Promise<void> = Promise.resolve();

  const write = () => {
    // A failed write was reported already; the next one starts afresh.
    writing = writing
      .catch(() => {})
      .then(async () => {
        if (state.version === written) return;
        const version = state.version;
        const body = JSON.stringify({ version: 1, spend: state.snapshot(options.now()) });
        mkdirSync(dirname(options.file), { recursive: true });
        const temp = `${options.file}.${process.pid}.tmp`;
        await writeFile(temp, body);
        await rename(temp, options.file);
        written = version;
      });
    return writing;
  };
  const timer = setInterval(() => write().catch(options.onError), options.everyMs);
  timer.unref();

  return {
    reserve: state.reserve.bind(state),
    settle: state.settle.bind(state),
    release: state.release.bind(state),
    balances: state.balances.bind(state),
    take: state.take.bind(state),
    adjust: state.adjust.bind(state),
    async close() {
      clearInterval(timer);
      await write();
    },
  };
}

function readSpend(file: string): SpendSnapshot {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw error;
  }
  try {
    const doc = JSON.parse(text) as { version?: unknown; spend?: unknown };
    if (doc.version !== 1 || typeof doc.spend !== 'object' || doc.spend === null)
      throw new Error('not a spend file');
    return doc.spend as SpendSnapshot;
  } catch (error) {
    // Starting from zero would quietly hand every budget its whole limit again.
    throw new Error(
      `${file} is not a readable spend file (${(error as Error).message}): restore it from a backup, or delete it to start every budget from zero`,
    );
  }
}
