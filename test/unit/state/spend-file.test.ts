import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { memoryStateWithSpendFile } from '../../../src/state/spend-file.js';

const now = Date.parse('2026-03-14T10:00:00.000Z');

async function tempFile(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-spend-'));
  onTestFinished(() => rm(dir, { recursive: true, force: true }));
  return join(dir, 'nested', 'spend.json');
}

const open = (file: string, errors: Error[] = [], everyMs = 3_600_000) =>
  memoryStateWithSpendFile({ file, everyMs, now: () => now, onError: (e) => errors.push(e) });

describe('memory state with a spend file', () => {
  it('keeps settled spend across a clean stop and start', async () => {
    const file = await tempFile();
    const first = open(file);
    await first.settle('a', [{ counter: 'c', amount: 1234, expiresAt: null }], now);
    await first.reserve('b', [{ counter: 'c', amount: 10, limit: 2000, expiresAt: null }], now + 60_000, now);
    await first.close();

    const second = open(file);
    onTestFinished(() => second.close());
    expect(await second.balances(['c'], now)).toEqual([{ spent: 1234, reserved: 0 }]);
  });

  it('writes periodically while running, so a crash loses only the last interval', async () => {
    const file = await tempFile();
    const errors: Error[] = [];
    const state = open(file, errors, 50);
    onTestFinished(() => state.close());
    await state.settle('a', [{ counter: 'c', amount: 7, expiresAt: null }], now);
    await expect
      .poll(async () => JSON.parse(await readFile(file, 'utf8').catch(() => '{}')), { timeout: 20_000 })
      .toEqual({ version: 1, spend: { c: { spent: 7, expiresAt: null } } });
    expect(errors).toEqual([]);
  });

  it('refuses to start from a damaged file rather than hand every budget its whole limit again', async () => {
    const file = await tempFile();
    await mkdir(dirname(file), { recursive: true });
    await writeFile(file, '{"version":1,"spend":');
    expect(() => open(file)).toThrow(
      /spend\.json is not a readable spend file .* delete it to start every budget from zero/,
    );
  });
});
