import { execFile } from 'node:child_process';
import { readdirSync, realpathSync } from 'node:fs';
import { chown } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from './ports.js';
import {
  findBinary,
  type RunAs,
  type RunningServer,
  startInTempDir,
  startProcess,
  viaSetpriv,
} from './process.js';

const run = promisify(execFile);
const VERSIONS_DIR = '/usr/lib/postgresql';

/**
 * The bin dir of one PostgreSQL install, so initdb, postgres, pg_isready and psql share a version.
 * Debian keeps it off PATH; an initdb on PATH is often a lone symlink into it, hence realpath.
 */
export function postgresBinDir(): string {
  let others: string[] = [];
  try {
    others = readdirSync(VERSIONS_DIR)
      .filter((version) => version !== '15')
      .sort((a, b) => Number(b) - Number(a))
      .map((version) => join(VERSIONS_DIR, version, 'bin'));
  } catch {
    // No Debian-style install; PATH may still have one.
  }
  const initdb = findBinary('initdb', [join(VERSIONS_DIR, '15', 'bin'), ...others], 'postgresql-15');
  return dirname(realpathSync(initdb));
}

/** initdb and postgres refuse to run as root, so as root they run as the `postgres` user. */
async function postgresUser(): Promise<RunAs | undefined> {
  if (process.getuid?.() !== 0) return undefined;
  try {
    const id = async (flag: string) => Number((await run('id', [flag, 'postgres'])).stdout.trim());
    return { uid: await id('-u'), gid: await id('-g') };
  } catch {
    throw new Error(
      'running as root, postgres needs a `postgres` user to run as: ' +
        'run `apt-get install -y postgresql-15`, which creates it (see .ci/install-services.sh)',
    );
  }
}

/** A throwaway PostgreSQL with trust auth and durability off, on loopback TCP and a socket in its temp dir. */
export async function startPostgres(): Promise<RunningServer> {
  const bin = postgresBinDir();
  const runAs = await postgresUser();
  return startInTempDir('postgres', async (dir) => {
    if (runAs) await chown(dir, runAs.uid, runAs.gid);
    const data = join(dir, 'data');
    const initdbArgs = [
      '-D',
      data,
      '-U',
      'postgres',
      '--auth=trust',
      '--no-sync',
      '-E',
      'UTF8',
      '--locale=C',
    ];
    try {
      await run(...viaSetpriv(join(bin, 'initdb'), initdbArgs, runAs), { cwd: dir });
    } catch (error) {
      const { stdout = '', stderr = '' } = error as { stdout?: string; stderr?: string };
      throw new Error(`initdb failed: ${(error as Error).message}\n${stdout}${stderr}`);
    }

    const port = await freePort();
    const pgIsReady = join(bin, 'pg_isready');
    const child = await startProcess({
      name: 'postgres',
      command: join(bin, 'postgres'),
      args: [
        ...['-D', data, '-h', '127.0.0.1', '-p', String(port), '-k', dir],
        ...['-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off'],
      ],
      cwd: dir,
      runAs,
      // -U/-d keep the probe from logging "role root does not exist" on every try.
      ready: async () => {
        await run(pgIsReady, [
          '-h',
          '127.0.0.1',
          '-p',
          String(port),
          '-U',
          'postgres',
          '-d',
          'postgres',
          '-t',
          '1',
        ]);
        return true;
      },
      stopSignal: 'SIGINT', // fast shutdown: SIGTERM would wait for clients to disconnect
    });
    return { url: `postgres://postgres@127.0.0.1:${port}/postgres`, port, child };
  });
}
