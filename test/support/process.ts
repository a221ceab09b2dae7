import { spawn } from 'node:child_process';
import { accessSync, constants, statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

const KEPT_LINES = 200;

export class MissingBinaryError extends Error {
  readonly code = 'MISSING_BINARY';

  constructor(
    readonly binary: string,
    readonly aptPackage: string,
  ) {
    super(
      `${binary} is not installed: run \`apt-get install -y ${aptPackage}\` (see .ci/install-services.sh)`,
    );
    this.name = 'MissingBinaryError';
  }
}

function isExecutableFile(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/** Looks for `name` on PATH, then in `extraDirs` (sbin and versioned dirs are often off PATH). */
export function findBinary(name: string, extraDirs: readonly string[] = [], aptPackage = name): string {
  const pathDirs = (process.env.PATH ?? '').split(delimiter).filter(Boolean);
  for (const dir of [...pathDirs, ...extraDirs]) {
    const candidate = join(dir, name);
    if (isExecutableFile(candidate)) return candidate;
  }
  throw new MissingBinaryError(name, aptPackage);
}

export interface RunAs {
  uid: number;
  gid: number;
}

/**
 * Wraps a command in util-linux's setpriv, which execs in place: the pid we hold is the
 * server itself, so stop signals reach it (runuser forks and does not pass SIGINT on).
 * --pdeathsig kills the server if the test worker dies without stopping it.
 */
export function viaSetpriv(command: string, args: readonly string[], runAs?: RunAs): [string, string[]] {
  const setpriv = findBinary('setpriv', ['/usr/bin', '/bin'], 'util-linux');
  const user = runAs ? [`--reuid=${runAs.uid}`, `--regid=${runAs.gid}`, '--clear-groups'] : [];
  return [setpriv, ['--pdeathsig=SIGKILL', ...user, '--', command, ...args]];
}

export interface ServerProcess {
  stop(): Promise<void>;
}

export interface StartOptions {
  /** Shown in error messages. */
  name: string;
  command: string;
  args: readonly string[];
  cwd?: string;
  runAs?: RunAs;
  /** Resolves true once the server answers; a rejection counts as "not yet". */
  ready: () => Promise<boolean>;
  /** Below vitest's test timeout, so a server that never gets ready is still stopped by us. */
  readyTimeoutMs?: number;
  /** Postgres wants SIGINT for a fast shutdown; SIGTERM suits the others. */
  stopSignal?: NodeJS.Signals;
  stopGraceMs?: number;
}

/** Spawns a server, waits until `ready` says yes, and hands back a way to stop it. */
export async function startProcess(options: StartOptions): Promise<ServerProcess> {
  const { name, readyTimeoutMs = 20_000, stopSignal = 'SIGTERM', stopGraceMs = 5_000 } = options;
  const [command, args] = viaSetpriv(options.command, options.args, options.runAs);
  const child = spawn(command, args, { cwd: options.cwd, stdio: ['ignore', 'pipe', 'pipe'] });

  // The last lines the server printed, for error messages.
  const lines: string[] = [];
  const keepLines = () => {
    let partial = '';
    return (chunk: Buffer) => {
      const parts = (partial + chunk.toString('utf8')).split('\n');
      partial = parts.pop()!;
      lines.push(...parts);
      if (lines.length > KEPT_LINES) lines.splice(0, lines.length - KEPT_LINES);
    };
  };
  child.stdout.on('data', keepLines());
  child.stderr.on('data', keepLines());
  const output = () => lines.join('\n');

  let exitReason: string | undefined;
  const exited = new Promise<void>((resolve) => {
    child.once('error', (error) => {
      exitReason = error.message;
      resolve();
    });
    child.once('exit', (code, signal) => {
      exitReason = signal ? `killed by ${signal}` : `exited with code ${code}`;
      resolve();
    });
  });

  const stop = async () => {
    if (exitReason !== undefined) return;
    child.kill(stopSignal);
    const graceOver = sleep(stopGraceMs).then(() => 'grace over' as const);
    if ((await Promise.race([exited, graceOver])) === 'grace over') {
      child.kill('SIGKILL');
      await exited;
    }
  };

  const deadline = Date.now() + readyTimeoutMs;
  while (true) {
    if (exitReason !== undefined) {
      throw new Error(`${name} stopped before it was ready (${exitReason}):\n${output()}`);
    }
    if (await options.ready().catch(() => false)) return { stop };
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`${name} was not ready after ${readyTimeoutMs} ms:\n${output()}`);
    }
    await sleep(50);
  }
}

export interface RunningServer {
  url: string;
  port: number;
  /** The server's own temp directory; gone once `stop` resolves. */
  dir: string;
  stop(): Promise<void>;
}

/** Starts a server in a fresh temp dir, removed again when the server stops or fails to start. */
export async function startInTempDir(
  name: string,
  start: (dir: string) => Promise<{ url: string; port: number; child: ServerProcess }>,
): Promise<RunningServer> {
  const dir = await mkdtemp(join(tmpdir(), `sluice-${name}-`));
  const remove = () => rm(dir, { recursive: true, force: true });
  try {
    const { url, port, child } = await start(dir);
    return {
      url,
      port,
      dir,
      stop: async () => {
        await child.stop();
        await remove();
      },
    };
  } catch (error) {
    await remove();
    throw error;
  }
}
